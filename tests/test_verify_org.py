"""`ecs-remediate verify --accounts` against the organization hub, stood in for in the emulator.

The hub's synthesized template becomes a moto CloudFormation stack (its bus, the rule on it, its queues and tables, its
outputs; the StackSet is left out), the real handler runs in hub mode with the template's environment, and a member's
registration reaches the hub's rule as a member forwarding rule with the same pattern would put it there. The members
are moto accounts of an organization created in the emulator; verify reaches each through the role named by
--role-name, as an operator does.
"""

from __future__ import annotations

import importlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from org_support import MEMBER_ROLE, deny_member_role
from synth_cache import synthesized_app

from app import hub_of
from demo.org_sandbox import ADMIN_ROLE, Organization
from demo.stack_standin import StandIn
from ecs_remediate.adapters import aws
from ecs_remediate.cli import verify as cli_verify
from ecs_remediate.cli.main import main
from ecs_remediate.cli.verify_canary import CANARY_FAMILY

VERIFY_ROLE = f"{MEMBER_ROLE}-verify"
ORG_CONTEXT = {
    "organization": "true",
    "organizationId": "o-abcdefghij",
    "targetOus": "ou-ab12-11111111",
    "regions": "us-east-1,eu-west-1",
    "notificationEmails": "secops@example.com",
}


@pytest.fixture(scope="module")
def hub_template() -> dict[str, Any]:
    app = synthesized_app(ORG_CONTEXT)
    hub = hub_of(app)
    template: dict[str, Any] = app.synth().get_stack_by_name(hub.stack_name).template
    return template


@pytest.fixture
def hub(
    hub_template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[StandIn, Organization]]:
    org = Organization(endpoint_url=moto_endpoint).create(["payments-prod", "analytics-dev"])
    stand_in = StandIn(hub_template, endpoint_url=moto_endpoint, name="EcsRemediateHub").deploy()
    for name, value in stand_in.environment.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    import ecs_remediate.functions.handler as module

    loaded = importlib.reload(module)
    assert loaded.HUB_MODE and stand_in.environment["MEMBER_ROLE_NAME"] == MEMBER_ROLE
    with stand_in.start(loaded):
        yield stand_in, org
    monkeypatch.undo()
    aws.reset_clients()
    importlib.reload(module)


def deny(monkeypatch: pytest.MonkeyPatch, account: str) -> None:
    """STS refuses verify's AssumeRole into `account` (the role is not there, or does not trust the caller)."""
    deny_member_role(monkeypatch, cli_verify, account)


def verify(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["verify", "--stack-name", "EcsRemediateHub", *args], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_a_member_passes_and_a_member_without_the_role_is_an_error_row(
    hub: tuple[StandIn, Organization], monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in, org = hub
    working, missing = org.accounts
    deny(monkeypatch, missing)
    code, out, err = verify(
        "--accounts", f"{working},{missing}", "--region", "eu-west-1", "--timeout", "30", "-o", "json"
    )  # fmt: skip
    assert code == 1, (err, stand_in.failures)
    rows = {row["account"]: row for row in json.loads(out)}
    assert set(rows) == {working, missing}
    passed, error = rows[working], rows[missing]
    assert (passed["region"], passed["outcome"], passed["notice"], passed["left"]) == ("eu-west-1", "PASS", "sent", [])
    assert passed["canary"].startswith(f"arn:aws:ecs:eu-west-1:{working}:task-definition/{CANARY_FAMILY}:")
    assert error["outcome"] == "ERROR" and error["canary"] is None
    assert "AccessDenied" in error["reason"] and f"{missing}:role/{VERIFY_ROLE}" in error["reason"]
    # The canary was registered through the verify role (the hub's VerifyRoleName output), the copy by the member role.
    for account in (working, missing):
        ecs = org.client("ecs", account, "eu-west-1")
        for status in ("ACTIVE", "INACTIVE"):
            assert ecs.list_task_definitions(familyPrefix=CANARY_FAMILY, status=status)["taskDefinitionArns"] == []
    (event,) = stand_in.delivered  # the canary only; the hub's copy was compliant, the missing member registered none
    assert event["account"] == working
    assert f":{working}:assumed-role/{VERIFY_ROLE}/ecs-remediate-verify" in event["detail"]["userIdentity"]["arn"]


def test_role_name_overrides_the_hubs_verify_role(
    hub: tuple[StandIn, Organization], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, org = hub
    deny(monkeypatch, org.accounts[0])
    code, out, _ = verify("--accounts", org.accounts[0], "--role-name", ADMIN_ROLE, "--timeout", "5", "-o", "json")
    (row,) = json.loads(out)
    assert code == 1 and row["outcome"] == "ERROR" and f"{org.accounts[0]}:role/{ADMIN_ROLE}" in row["reason"]


def test_the_hub_without_accounts_is_a_usage_error(hub: tuple[StandIn, Organization]) -> None:
    code, out, err = verify("--timeout", "5")
    assert code == 2 and out == "" and "is the organization hub: pass --accounts" in err
