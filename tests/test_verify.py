"""`ecs-remediate verify` against the deployed stack, stood in for in the emulator (demo/stack_standin.py).

The stand-in is the synthesized template made into a moto CloudFormation stack (tables, topic, queues, the rules with
their synthesized patterns and states, the template's own outputs) plus the stack's delivery: every registration the
emulator answers becomes the CloudTrail event (emulators/trail.py), each of the stack's rules is read from EventBridge
as it is now and matched by LocalStack's engine, and a matched event runs the real handler with the template's
environment. Everything asserted is read back from the emulator: revisions left in the canary family, the notice from an
SQS queue subscribed to the stack's topic, the stack's ledger.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from verify_support import (
    REGION,
    canary_revisions,
    deploy,
    inbox,
    notices,
    outputs,
    verify,
)

from demo.sandbox import ACCOUNT
from demo.stack_standin import with_mode
from ecs_remediate.adapters.ledger import DynamoLedger
from ecs_remediate.cli.verify_canary import CANARY_FAMILY
from ecs_remediate.cli.verify_stack import target_kind


def test_a_working_stack_passes_and_nothing_is_left(
    stack_template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_reloaded: None
) -> None:
    with deploy(stack_template, moto_endpoint, monkeypatch, delay=0.3) as stand_in:
        queue = inbox(stand_in)
        code, out, err = verify("--timeout", "30", "-o", "json")
    assert code == 0, (out, err, stand_in.failures)
    (row,) = json.loads(out)
    assert (row["account"], row["region"], row["outcome"], row["notice"]) == (ACCOUNT, REGION, "PASS", "sent")
    assert row["latencySeconds"] >= 0.3 and row["left"] == []
    canary, copy = row["canary"], row["copy"]
    assert canary.endswith(f"{CANARY_FAMILY}:1") and copy.endswith(f"{CANARY_FAMILY}:2")
    # The stack did it: its ledger names the copy, its notice reached the subscriber.
    ledger = DynamoLedger(stand_in.client("dynamodb"), outputs(stand_in)["IdempotencyTableName"])
    assert ledger.copy_of(canary) == copy
    (notice,) = notices(stand_in, queue)
    assert notice["outcome"] == "remediated" and notice["newTaskDefinitionArn"] == copy
    # The delivery ran the canary and the stack's own copy through the rule: only the canary matched.
    assert [e["detail"]["responseElements"]["taskDefinition"]["taskDefinitionArn"] for e in stand_in.delivered] == [
        canary
    ]
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []}
    # The delivery as the stack has it (a queue in front of the function, or the function), read from EventBridge.
    rule = outputs(stand_in)["RuleName"]
    (target,) = stand_in.client("events").list_targets_by_rule(Rule=rule)["Targets"]
    assert (
        f"stack EcsRemediate in us-east-1 (remediate mode), rule {rule} (ENABLED) -> {target_kind(target['Arn'])}"
        in err
    )


def test_the_table_names_account_region_latency_notice_outcome(
    stack_template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_reloaded: None
) -> None:
    with deploy(stack_template, moto_endpoint, monkeypatch):
        code, out, _ = verify("--timeout", "30")
    assert code == 0
    header, line = out.splitlines()
    assert header.split() == ["ACCOUNT", "REGION", "LATENCY", "NOTICE", "OUTCOME", "REASON"]
    assert line.split()[:2] == [ACCOUNT, REGION] and line.split()[3:6] == ["s", "sent", "PASS"]


def test_report_mode_checks_the_notice_and_that_nothing_was_registered(
    stack_template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_reloaded: None
) -> None:
    with deploy(with_mode(stack_template, "report"), moto_endpoint, monkeypatch) as stand_in:
        queue = inbox(stand_in)
        code, out, err = verify("--timeout", "30", "-o", "json")
    assert code == 0, (out, err)
    (row,) = json.loads(out)
    assert row["outcome"] == "PASS" and row["notice"] == "sent" and row["copy"] is None
    assert row["latencyIsUpperBound"] is True
    assert "report mode" in row["reason"] and "(report mode)" in err
    (notice,) = notices(stand_in, queue)
    assert notice["outcome"] == "reported" and notice["taskDefinitionArn"] == row["canary"]
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []}


def test_a_disabled_rule_fails_naming_it_and_registers_nothing(
    stack_template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_reloaded: None
) -> None:
    with deploy(stack_template, moto_endpoint, monkeypatch) as stand_in:
        rule = outputs(stand_in)["RuleName"]
        stand_in.set_rule_state(rule, "DISABLED")
        started = time.monotonic()
        code, out, err = verify("--timeout", "30", "-o", "json")
    assert code == 1, err
    assert time.monotonic() - started < 10  # said at once, not after the timeout
    (row,) = json.loads(out)
    assert row["outcome"] == "FAIL" and row["canary"] is None
    assert f"the stack's rule {rule} is DISABLED" in row["reason"] and f"enable-rule --name {rule}" in row["reason"]
    assert f"rule {rule} (DISABLED)" in err
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []} and stand_in.delivered == []


def test_nothing_delivered_fails_after_the_timeout_and_still_cleans_up(
    stack_template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_reloaded: None
) -> None:
    """No CloudTrail (no trail logging): the rule is enabled, nothing ever reaches it."""
    stand_in = deploy(stack_template, moto_endpoint, monkeypatch, deliver=False)
    code, out, _ = verify("--timeout", "2", "-o", "json")
    assert code == 1
    (row,) = json.loads(out)
    assert row["outcome"] == "FAIL" and row["notice"] == "none" and row["canary"]
    assert row["reason"].startswith("no copy of the canary within 2 s") and "trail" in row["reason"]
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []}


def test_no_stack_is_exit_3_in_one_line(moto_endpoint: str) -> None:
    code, out, err = verify("--timeout", "5")
    assert code == 3 and out == ""
    assert err.strip().splitlines() == [
        "error: nothing could be verified: no stack EcsRemediate in us-east-1 (deploy it there, or pass "
        "--stack-name or --region)"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "0"], "--timeout: expected 1 to 3600 seconds"),
        (["--role-name", "x"], "--role-name needs --accounts"),
        (["--region", "mars"], "--region: not a Region name: mars"),
        (["--region", "all"], "--region all: name the Regions"),
    ],
)
def test_usage_errors_are_exit_2_before_any_call(args: list[str], message: str) -> None:
    code, out, err = verify(*args)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_boto3_is_pointed_at_the_emulator(moto_endpoint: str) -> None:
    """A guard for the tests above: nothing here can reach AWS."""
    assert boto3.client("ecs", region_name=REGION).meta.endpoint_url == moto_endpoint


def test_a_second_run_passes_on_new_revisions(
    stack_template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_reloaded: None
) -> None:
    """ECS never reuses a deleted revision's number (emulators/moto_fidelity.py makes moto agree): the second canary is
    :3, and the ledger's record of the first (:1 -> :2) is not taken for its copy."""
    with deploy(stack_template, moto_endpoint, monkeypatch) as stand_in:
        first = json.loads(verify("--timeout", "30", "-o", "json")[1])[0]
        second = json.loads(verify("--timeout", "30", "-o", "json")[1])[0]
    assert [first["outcome"], second["outcome"]] == ["PASS", "PASS"]
    assert [row["canary"].rsplit(":", 1)[1] for row in (first, second)] == ["1", "3"]
    assert second["copy"].endswith(f"{CANARY_FAMILY}:4")
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []}


def test_each_region_is_a_row_and_a_region_without_the_stack_is_an_error(
    stack_template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_reloaded: None
) -> None:
    with deploy(stack_template, moto_endpoint, monkeypatch) as stand_in:
        code, out, _ = verify("--region", "us-east-1,eu-west-1", "--timeout", "30", "-o", "json")
    assert code == 1
    rows = {row["region"]: row for row in json.loads(out)}
    assert rows["us-east-1"]["outcome"] == "PASS"
    assert rows["eu-west-1"]["outcome"] == "ERROR" and rows["eu-west-1"]["canary"] is None
    assert rows["eu-west-1"]["reason"].startswith("no stack EcsRemediate in eu-west-1")
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []}
