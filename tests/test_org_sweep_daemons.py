"""The organization sweep's item judges a member's daemon task definitions as it judges its task definitions: against
the project's emulator (moto + the ECS daemon API, emulators/server.py), through the member role, the rows read
back from the report bucket. Rows naming another account or Region stay ERROR rows, for either kind."""

from __future__ import annotations

import json
from typing import Any

import pytest
from daemon_support import daemon_task_definition
from org_support import compliant, privileged

from demo.org_sandbox import Organization
from demo.sandbox import Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.core.config import Config
from ecs_remediate.core.policy import ERROR, FAIL, PASS
from ecs_remediate.organization.member_accounts import MemberAccounts
from ecs_remediate.organization.sweep_item import _own, sweep_item
from ecs_remediate.organization.sweep_items import parse_item
from ecs_remediate.sweep.report import Finding

REGION = "us-east-1"
BUCKET = "org-sweep-daemons"
FAST = {"SWEEP_RATES": "describe=1000/1000,list=1000/1000,register=1000/1000"}


def rows_of(sandbox: Sandbox, result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    body = sandbox.client("s3").get_object(Bucket=BUCKET, Key=result["key"])["Body"].read()
    return {row["taskDefinitionArn"]: row for row in json.loads(body)["rows"]}


def test_a_members_daemon_task_definitions_are_judged_not_taken_for_another_accounts(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    sandbox = Sandbox(endpoint_url=moto_endpoint).create()
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    org = Organization(endpoint_url=moto_endpoint).create(["sensors-prod"])
    [account] = org.accounts
    ecs = org.client("ecs", account, REGION)
    agent = ecs.register_daemon_task_definition(**daemon_task_definition("agent"))["daemonTaskDefinitionArn"]
    logs = ecs.register_daemon_task_definition(**daemon_task_definition("logs", privileged=False))
    web = org.register(account, REGION, privileged())["taskDefinition"]["taskDefinitionArn"]
    api = org.register(account, REGION, compliant())["taskDefinition"]["taskDefinitionArn"]
    aws.reset_clients()

    result = sweep_item(
        {"account": account, "region": REGION, "run": "r1"}, Config(), MemberAccounts(), aws.client("s3"), BUCKET
    )

    rows = rows_of(sandbox, result)
    assert {arn: row["status"] for arn, row in rows.items()} == {
        agent: FAIL,
        logs["daemonTaskDefinitionArn"]: PASS,
        web: FAIL,
        api: PASS,
    }
    assert rows[agent]["privilegedContainers"] == ["agent"] and rows[agent]["error"] is None
    assert result["counts"][ERROR] == 0
    assert result["calls"]["ListDaemonTaskDefinitions"] == 1


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:ecs:us-east-1:222222222222:daemon-task-definition/agent:1",  # another account's
        "arn:aws:ecs:eu-west-1:111111111111:daemon-task-definition/agent:1",  # another Region's
        "arn:aws:ecs:us-east-1:111111111111:xdaemon-task-definition/agent:1",  # not a revision ARN at all
        "arn:aws:ecs:us-east-1:111111111111daemon-task-definition/agent:1",
        "arn:aws:ecs:us-east-1:222222222222:task-definition/web:1",
    ],
)
def test_a_row_naming_a_revision_outside_the_item_is_an_error_for_either_kind(arn: str) -> None:
    item = parse_item({"account": "111111111111", "region": REGION, "run": "r1"})
    row = _own(Finding(arn, PASS, region=REGION, family="agent", revision=1), item)
    assert row.status == ERROR and "outside 111111111111 us-east-1" in (row.error or "")
    own = Finding("arn:aws:ecs:us-east-1:111111111111:daemon-task-definition/agent:1", FAIL, region=REGION)
    assert _own(own, item) is own
