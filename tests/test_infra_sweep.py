"""CDK assertions on the scheduled sweep: schedule, target input, the function sharing the remediator's
asset and environment, IAM per mode, cdk-nag and cfn-lint clean, context validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template
from synth_cache import synthesized_app

from app import stack_of
from infra.daemon_iam import DAEMON_SIDS
from infra.settings import ContextError
from infra.sweep_schedule import SWEEP_HANDLER, SweepSettings

DAILY = {"sweepSchedule": "rate(1 day)"}


def synth(context: dict[str, Any], tmp: Path) -> tuple[cdk.Stack, dict[str, Any]]:
    stack = stack_of(synthesized_app(context))
    return stack, Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def daily(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.Stack, dict[str, Any]]:
    """The default stack, no context: the sweep runs daily."""
    return synth({}, tmp_path_factory.mktemp("cdk-sweep"))


def of_type(template: dict[str, Any], type_: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def function(template: dict[str, Any], handler: str) -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = [
        (k, v) for k, v in of_type(template, "AWS::Lambda::Function").items() if v["Properties"]["Handler"] == handler
    ]
    return logical_id, resource["Properties"]


def role_statements(template: dict[str, Any], role_id: str) -> dict[str, dict[str, Any]]:
    """Action -> statement, over every policy attached to the role."""
    found: dict[str, dict[str, Any]] = {}
    for policy in of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid") in DAEMON_SIDS:  # the daemon statements: tests/test_daemon_infra.py
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for action in actions:
                found[action] = statement
    return found


def test_schedule_rule_invokes_the_sweep_with_its_scope(daily: tuple[cdk.Stack, dict[str, Any]]) -> None:
    template = daily[1]
    function_id, _ = function(template, SWEEP_HANDLER)
    [rule] = [r for r in of_type(template, "AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 day)"
    assert rule["Properties"]["State"] == "ENABLED"
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert json.loads(target["Input"]) == {"scope": "active"}  # every ACTIVE privileged revision, by default
    permissions = [
        p["Properties"]
        for p in of_type(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    assert [p["Principal"] for p in permissions] == ["events.amazonaws.com"]


def test_sweep_function_shares_code_environment_and_logs(daily: tuple[cdk.Stack, dict[str, Any]]) -> None:
    template = daily[1]
    _, sweep = function(template, SWEEP_HANDLER)
    _, remediator = function(template, "ecs_remediate.functions.handler.queue_handler")
    assert sweep["Code"] == remediator["Code"]
    assert sweep["Environment"] == remediator["Environment"]
    assert sweep["LoggingConfig"]["LogGroup"] == remediator["LoggingConfig"]["LogGroup"]
    assert sweep["Runtime"] == remediator["Runtime"]
    assert sweep["Timeout"] == 900 and sweep["ReservedConcurrentExecutions"] == 1
    [config] = [
        c["Properties"]
        for c in of_type(template, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function(template, SWEEP_HANDLER)[0]}
    ]
    assert config["MaximumRetryAttempts"] == 0
    [topic_id] = of_type(template, "AWS::SNS::Topic")
    [alarm] = [
        a["Properties"]
        for a in of_type(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Dimensions"]
        == [{"Name": "FunctionName", "Value": {"Ref": function(template, SWEEP_HANDLER)[0]}}]
    ]
    assert alarm["MetricName"] == "Errors" and alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_sweep_permissions_in_remediate_mode(daily: tuple[cdk.Stack, dict[str, Any]]) -> None:
    template = daily[1]
    _, sweep = function(template, SWEEP_HANDLER)
    role_id = sweep["Role"]["Fn::GetAtt"][0]
    actions = role_statements(template, role_id)
    for action in ("ecs:ListTaskDefinitionFamilies", "ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition"):
        assert actions[action]["Resource"] == "*", action
    assert {"ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole", "sns:Publish"} <= set(actions)
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} <= set(actions)
    assert not any("*" in action for action in actions)
    assert actions["ecs:TagResource"]["Condition"] == {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}


def test_report_mode_sweep_cannot_register(tmp_path: Path) -> None:
    _, template = synth(
        {**DAILY, "mode": "report", "sweepScope": "active", "sweepSchedule": "cron(0 3 * * ? *)"}, tmp_path
    )
    _, sweep = function(template, SWEEP_HANDLER)
    actions = role_statements(template, sweep["Role"]["Fn::GetAtt"][0])
    assert "ecs:ListTaskDefinitionFamilies" in actions
    assert not {"ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole"} & set(actions)
    assert sweep["Environment"]["Variables"]["MODE"] == "report"
    [rule] = [r for r in of_type(template, "AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]
    assert rule["Properties"]["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert json.loads(rule["Properties"]["Targets"][0]["Input"]) == {"scope": "active"}


def test_off_builds_no_sweep(tmp_path: Path) -> None:
    _, template = synth({"sweepSchedule": "off"}, tmp_path)
    handlers = [f["Properties"]["Handler"] for f in of_type(template, "AWS::Lambda::Function").values()]
    assert handlers == ["ecs_remediate.functions.handler.queue_handler"]


def test_cdk_nag_clean_and_suppressions_name_their_resource(daily: tuple[cdk.Stack, dict[str, Any]]) -> None:
    stack, template = daily
    annotations = Annotations.from_stack(stack)
    assert [e.entry.data for e in annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*"))] == []
    assert [w.entry.data for w in annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))] == []
    for logical_id, resource in template["Resources"].items():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            named = rule["reason"].split(":", 1)[0].split(" ", 1)[0]
            assert named in logical_id and len(rule["reason"]) >= 60, (logical_id, rule)


# cfn-lint and checkov on the default stack (sweep included): tests/test_reliability_template.py.


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"sweepSchedule": "daily"}, "sweepSchedule: expected an EventBridge schedule"),
        ({"sweepSchedule": "rate(0 days)"}, "sweepSchedule: expected an EventBridge schedule"),
        ({"sweepSchedule": "rate(1 days)"}, "sweepSchedule: expected an EventBridge schedule"),
        ({"sweepSchedule": 24}, "sweepSchedule: expected rate(...), cron(...) or off"),
        ({"sweepScope": "all"}, "sweepScope: expected one of latest, active"),
    ],
)
def test_bad_sweep_context_names_the_key(context: dict[str, Any], expected: str) -> None:
    with pytest.raises(ContextError) as error:
        SweepSettings.from_context(context.get)
    assert str(error.value).startswith(expected)


def test_sweep_settings_defaults_and_spellings() -> None:
    assert SweepSettings.from_context({}.get) == SweepSettings(schedule="rate(1 day)", scope="active")
    assert SweepSettings.from_context({"sweepSchedule": "  rate(6   hours) "}.get).schedule == "rate(6 hours)"
    assert SweepSettings.from_context({"sweepSchedule": "OFF"}.get).schedule is None
