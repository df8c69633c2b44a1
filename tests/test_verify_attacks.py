"""`ecs-remediate verify` attacked and refused: a developer racing a revision into the canary family, a forged copy,
a canary refused by IAM or a guardrail SCP; and every call verify makes is in the IAM docs/deploy.md lists. Against the
stack stood in for in the emulator (tests/verify_support.py)."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest
from strategies import error_response
from verify_support import (
    ROOT,
    canary_revisions,
    deploy,
    outputs,
    verify,
)

from demo.stack_standin import wait_for
from ecs_remediate.adapters.ledger import DynamoLedger
from ecs_remediate.cli import verify as cli_verify
from ecs_remediate.cli.verify_canary import CANARY_FAMILY

# --- attacks: the policed developer, the canary family and verify's clean-up -------------------------------------


def test_a_developer_racing_into_the_canary_family_fails_verify_and_keeps_their_revision(
    stack_template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_reloaded: None
) -> None:
    """A revision registered in the canary family right after the canary: the stack reports the canary superseded (it
    never copies an older revision); verify says so and removes only what it registered."""
    stand_in = deploy(stack_template, moto_endpoint, monkeypatch, delay=1.0)
    dev = stand_in.client("ecs")
    theirs: list[str] = []

    def race() -> None:
        if wait_for(lambda: bool(canary_revisions(stand_in)["ACTIVE"]), 20):
            body = {"family": CANARY_FAMILY, "containerDefinitions": [{"name": "x", "image": "nginx", "memory": 8}]}
            theirs.append(dev.register_task_definition(**body)["taskDefinition"]["taskDefinitionArn"])

    racer = threading.Thread(target=race)
    racer.start()
    try:
        code, out, _ = verify("--timeout", "20", "-o", "json")
    finally:
        racer.join()
        stand_in.stop()
    assert code == 1
    (row,) = json.loads(out)
    assert row["outcome"] == "FAIL" and "another revision was registered in the canary family" in row["reason"]
    assert canary_revisions(stand_in) == {"ACTIVE": theirs, "INACTIVE": []}


def test_a_forged_copy_in_the_ledger_is_not_a_pass_and_is_not_removed(
    stack_template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_reloaded: None
) -> None:
    """Had a copy record named a revision that is not the canary's exact fixed copy (here: its image swapped), verify
    fails on provenance. (Only the stack's roles can write the ledger; the test writes it to play a broken stack.)"""
    stand_in = deploy(stack_template, moto_endpoint, monkeypatch, deliver=False)
    table = outputs(stand_in)["IdempotencyTableName"]
    ecs = stand_in.client("ecs")

    def forge() -> None:
        if not wait_for(lambda: bool(canary_revisions(stand_in)["ACTIVE"]), 20):
            return
        (canary,) = canary_revisions(stand_in)["ACTIVE"]
        source = ecs.describe_task_definition(taskDefinition=canary)["taskDefinition"]
        container = {**source["containerDefinitions"][0], "privileged": False, "image": "attacker/image"}
        forged = ecs.register_task_definition(
            family=CANARY_FAMILY,
            requiresCompatibilities=["EC2"],
            containerDefinitions=[container],
            tags=[{"key": "ecs-remediate:source-revision", "value": f"{CANARY_FAMILY}:1"}],
        )["taskDefinition"]["taskDefinitionArn"]
        DynamoLedger(stand_in.client("dynamodb"), table).record_copy(canary, forged, "test")

    forger = threading.Thread(target=forge)
    forger.start()
    code, out, _ = verify("--timeout", "20", "-o", "json")
    forger.join()
    assert code == 1
    (row,) = json.loads(out)
    assert row["outcome"] == "FAIL" and "not proven the stack's faithful copy" in row["reason"]
    assert "content differs" in row["reason"]
    # Removed: the canary, which verify registered. Kept, and named: the revision it cannot prove the stack's.
    (forged,) = canary_revisions(stand_in)["ACTIVE"]
    assert forged.endswith(f"{CANARY_FAMILY}:2") and canary_revisions(stand_in)["INACTIVE"] == []
    assert row["left"] == [f"{forged} (ACTIVE; not proven the stack's copy: not removed)"]


# --- the IAM docs/deploy.md lists is what verify calls -----------------------------------------------------------


def documented_actions() -> set[str]:
    """The `service:Action` names of docs/deploy.md's 'What verify needs (IAM)' table."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("### What verify needs (IAM)", 1)[1].split("###", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {action for row in rows for action in re.findall(r"`([a-z0-9]+:[A-Za-z]+)`", row.split("|")[1])}


def test_every_call_verify_makes_is_in_the_documented_iam(
    stack_template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_reloaded: None
) -> None:
    """Every AWS call of a passing run, a run that gives up (the dead-letter queue's depth read for the reason) and a
    disabled rule is in the table; and each row of the table is called by one of them, but the lost-answer search."""
    calls: set[str] = set()
    create = cli_verify._client

    def recording(session: Any, service: str, region: str) -> Any:
        client = create(session, service, region)
        prefix = client.meta.service_model.signing_name

        def record(model: Any, **_: Any) -> None:
            calls.add(f"{prefix}:{model.name}")

        client.meta.events.register("before-call", record)
        return client

    monkeypatch.setattr(cli_verify, "_client", recording)
    stand_in = deploy(stack_template, moto_endpoint, monkeypatch)
    assert verify("--timeout", "30")[0] == 0
    stand_in.stop()
    assert verify("--timeout", "1")[0] == 1  # nothing delivers now: the failed wait reads the DLQ's depth
    stand_in.set_rule_state(outputs(stand_in)["RuleName"], "DISABLED")
    assert verify("--timeout", "1")[0] == 1
    documented = documented_actions()
    assert calls <= documented, calls - documented
    assert documented - calls == {"ecs:ListTaskDefinitions"}  # only when a registration's answer was lost


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        (
            "User: arn:aws:sts::123456789012:assumed-role/Dev/alice is not authorized to perform: "
            "ecs:RegisterTaskDefinition with an explicit deny in a service control policy",
            "a guardrail SCP that refuses privileged registrations refuses the canary too",
        ),
        (
            "User: arn:aws:sts::123456789012:assumed-role/Dev/alice is not authorized to perform: "
            "ecs:RegisterTaskDefinition",
            "verify needs ecs:RegisterTaskDefinition on the canary family",
        ),
    ],
    ids=["scp", "iam"],
)
def test_a_refused_canary_is_an_error_row_that_says_why_and_registers_nothing(
    stack_template: dict[str, Any],
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    handler_reloaded: None,
    message: str,
    hint: str,
) -> None:
    create = cli_verify._client

    def refusing(session: Any, service: str, region: str) -> Any:
        client = create(session, service, region)
        if service == "ecs":

            def deny(request: Any, **_: Any) -> Any:
                return error_response(request, 400, "AccessDeniedException", message)

            client.meta.events.register_first("before-send.ecs.RegisterTaskDefinition", deny)
        return client

    monkeypatch.setattr(cli_verify, "_client", refusing)
    with deploy(stack_template, moto_endpoint, monkeypatch) as stand_in:
        code, out, _ = verify("--timeout", "30", "-o", "json")
    assert code == 1
    (row,) = json.loads(out)
    assert row["outcome"] == "ERROR" and row["canary"] is None and hint in row["reason"]
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []} and stand_in.delivered == []


@pytest.mark.parametrize("accounts", [(), ("--accounts", "111111111111")], ids=["account", "organization"])
def test_a_caller_who_may_not_read_the_stack_gets_exit_3_in_one_line(
    stack_template: dict[str, Any],
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    handler_reloaded: None,
    accounts: tuple[str, ...],
) -> None:
    create = cli_verify._client

    def refusing(session: Any, service: str, region: str) -> Any:
        client = create(session, service, region)
        if service == "cloudformation":

            def deny(request: Any, **_: Any) -> Any:
                return error_response(
                    request, 403, "AccessDenied", "not authorized to perform: DescribeStacks", protocol="query"
                )

            client.meta.events.register_first("before-send.cloudformation.DescribeStacks", deny)
        return client

    monkeypatch.setattr(cli_verify, "_client", refusing)
    stand_in = deploy(stack_template, moto_endpoint, monkeypatch, deliver=False)
    code, out, err = verify("--timeout", "5", *accounts)
    assert code == 3 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("error: nothing could be verified: reading the stack: ") and "AccessDenied" in line
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []}
