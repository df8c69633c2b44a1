"""Tag exemptions, only when turned on: only tags an approver role applied (a TagResource call CloudTrail recorded)
exempt; the registrant's tags, at registration or after, and any change to an approved value, do not."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from test_handler import invoke

from conftest import load_handler
from demo.sandbox import ACCOUNT, Sandbox
from demo.synthesized import resolve_pseudo_parameters
from ecs_remediate.cli.main import main
from emulators.eventbridge import matches

APPROVER_ROLE = "SecurityApprover"
APPROVERS = f"arn:aws:iam::{ACCOUNT}:role/{APPROVER_ROLE}"
PRIVILEGED = {
    "family": "csi",
    "containerDefinitions": [{"name": "a", "image": "csi", "memory": 64, "privileged": True}],
}
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]


def tags(until: str, reason: str = "CSI node plugin") -> list[dict[str, str]]:
    return [
        {"key": "ecs-remediate:exempt-reason", "value": reason},
        {"key": "ecs-remediate:exempt-until", "value": until},
    ]


def soon(days: int = 30) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


@pytest.fixture
def tag_mode(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_handler(sandbox, monkeypatch, TAG_EXEMPTIONS="true", EXEMPTION_APPROVERS=APPROVERS)


def scan_status(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, arn: str) -> dict[str, Any]:
    for name, value in sandbox.env(MODE="report", TAG_EXEMPTIONS="true", EXEMPTION_APPROVERS=APPROVERS).items():
        monkeypatch.setenv(name, value)
    stdout = io.StringIO()
    main(["scan", "--output", "json", *FAST], stdout, io.StringIO())
    return {row["taskDefinitionArn"]: row for row in json.loads(stdout.getvalue())}[arn]


def tag(box: Sandbox, arn: str, tag_list: list[dict[str, str]]) -> None:
    box.client("ecs").tag_resource(resourceArn=arn, tags=tag_list)


def test_an_approvers_tags_exempt_and_a_registrants_change_undoes_it(
    sandbox: Sandbox, tag_mode: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = sandbox.register(PRIVILEGED)["taskDefinition"]["taskDefinitionArn"]
    approver = sandbox.as_principal(APPROVER_ROLE, "jane")
    tag(approver, arn, tags(soon()))
    result = invoke(tag_mode, sandbox.tag_event(arn, tags(soon()), role=APPROVER_ROLE))
    assert result == {"outcome": "approval-recorded", "task_definition_arn": arn, "approver": APPROVERS}
    row = scan_status(sandbox, monkeypatch, arn)
    assert row["status"] == "EXEMPT" and f"approved by {APPROVERS}" in row["action"]
    # the registrant moves the expiry: the tags no longer match what the approver set
    attacker = sandbox.as_principal("Dev", "mallory")
    tag(attacker, arn, tags("2099-12-31"))
    invoke(tag_mode, sandbox.tag_event(arn, tags("2099-12-31"), role="Dev"))  # recorded as nothing
    row = scan_status(sandbox, monkeypatch, arn)
    assert row["status"] == "FAIL" and "not applied by an approver" in row["error"]


def test_the_registrants_own_tags_never_exempt(sandbox: Sandbox, tag_mode: ModuleType) -> None:
    attacker = sandbox.as_principal("Dev", "mallory")
    params = {**PRIVILEGED, "tags": tags(soon())}
    response = attacker.register(params)
    arn = response["taskDefinition"]["taskDefinitionArn"]
    skipped = invoke(tag_mode, sandbox.tag_event(arn, tags(soon()), role="Dev"))
    assert skipped["outcome"] == "skipped" and "not an approver" in skipped["reason"]
    result = invoke(tag_mode, sandbox.event_for(params, response))
    assert result["outcome"] == "remediated"
    [note] = sandbox.inbox()
    assert "not applied by an approver" in note.payload["exemption"]


def test_an_approver_sets_both_keys_in_one_call(sandbox: Sandbox, tag_mode: ModuleType) -> None:
    arn = sandbox.register(PRIVILEGED)["taskDefinition"]["taskDefinitionArn"]
    only_until = [{"key": "ecs-remediate:exempt-until", "value": soon()}]
    skipped = invoke(tag_mode, sandbox.tag_event(arn, only_until, role=APPROVER_ROLE))
    assert skipped["outcome"] == "skipped" and "both exemption tags" in skipped["reason"]


def test_tag_events_do_nothing_when_tag_exemptions_are_off(sandbox: Sandbox, handler: ModuleType) -> None:
    arn = sandbox.register(PRIVILEGED)["taskDefinition"]["taskDefinitionArn"]
    result = invoke(handler, sandbox.tag_event(arn, tags(soon()), role=APPROVER_ROLE))
    assert result == {"outcome": "skipped", "reason": "tag exemptions are off"}


def test_tag_mode_needs_approvers(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from ecs_remediate.core.config import ConfigError

    with pytest.raises(ConfigError, match=r"^TAG_EXEMPTIONS:"):
        load_handler(sandbox, monkeypatch, TAG_EXEMPTIONS="true")


def test_the_tag_rule_exists_only_in_tag_mode_and_matches_exemption_keys_only(sandbox: Sandbox) -> None:
    from app import SKIP_BUNDLING, build_app, stack_of

    def tag_rules(context: dict[str, Any]) -> list[dict[str, Any]]:
        app = build_app({**SKIP_BUNDLING, "sweepSchedule": "off", **context})
        template = app.synth().get_stack_by_name(stack_of(app).stack_name).template
        return [
            r["Properties"]["EventPattern"]
            for key, r in template["Resources"].items()
            if r["Type"] == "AWS::Events::Rule" and key.startswith("RemediatorExemptionTagsRule")
        ]

    assert tag_rules({}) == []
    [pattern] = tag_rules({"tagExemptions": "true", "exemptionApprovers": APPROVERS})
    pattern = resolve_pseudo_parameters(pattern, ACCOUNT)
    arn = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/csi:1"
    assert matches(pattern, sandbox.tag_event(arn, tags(soon()), role=APPROVER_ROLE))
    assert not matches(pattern, sandbox.tag_event(arn, [{"key": "team", "value": "x"}], role=APPROVER_ROLE))
