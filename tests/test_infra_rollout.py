"""Rollout and retire: their permissions exist only when they are on, and only in remediate mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match
from synth_cache import synthesized_app
from test_infra import ecs_arn_of_this_account_and_region

from app import stack_of
from infra.daemon_iam import DAEMON_SIDS
from infra.settings import ContextError, StackSettings

SERVICES_ARN = ecs_arn_of_this_account_and_region("service/*/*")
OPTIONAL_ACTIONS = {
    "ecs:ListClusters",
    "ecs:ListServices",
    "ecs:DescribeServices",
    "ecs:UpdateService",
    "ecs:DeregisterTaskDefinition",
}


def synth(context: dict[str, Any], tmp: Path) -> tuple[Any, dict[str, Any]]:
    stack = stack_of(synthesized_app(context))
    from aws_cdk.assertions import Template

    return stack, Template.from_stack(stack).to_json()


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") not in DAEMON_SIDS  # the daemon statements: tests/test_daemon_infra.py
    ]


def actions_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for statement in statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            found[action] = statement
    return found


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({}, set()),
        ({"rollout": "true"}, {"ecs:ListClusters", "ecs:ListServices", "ecs:DescribeServices", "ecs:UpdateService"}),
        (
            {"retire": True},
            {"ecs:ListClusters", "ecs:ListServices", "ecs:DescribeServices", "ecs:DeregisterTaskDefinition"},
        ),
        ({"rollout": True, "retire": "true"}, OPTIONAL_ACTIONS),
        ({"rollout": True, "retire": True, "mode": "report"}, set()),
    ],
    ids=["off", "rollout", "retire", "both", "report-mode"],
)
def test_optional_permissions_follow_the_settings(context: dict[str, Any], expected: set[str], tmp_path: Path) -> None:
    stack, template = synth(context, tmp_path)
    actions = actions_of(template)
    assert OPTIONAL_ACTIONS & set(actions) == expected
    if "ecs:UpdateService" in expected:
        assert actions["ecs:UpdateService"]["Resource"] == SERVICES_ARN
    if "ecs:DescribeServices" in expected:
        assert actions["ecs:DescribeServices"]["Resource"] == SERVICES_ARN
        assert actions["ecs:ListServices"]["Resource"] == "*"
    if "ecs:DeregisterTaskDefinition" in expected:
        assert actions["ecs:DeregisterTaskDefinition"]["Resource"] == "*"
    function = next(
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == "ecs_remediate.functions.handler.queue_handler"
    )
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["ROLLOUT"] == str("ecs:UpdateService" in expected).lower()
    assert variables["RETIRE"] == str("ecs:DeregisterTaskDefinition" in expected).lower()
    annotations = Annotations.from_stack(stack)
    assert [e.entry.data for e in annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*"))] == []
    assert [w.entry.data for w in annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))] == []


@pytest.mark.parametrize("value", ["yes", 1, "on"])
def test_bad_rollout_value_names_the_key(value: Any) -> None:
    with pytest.raises(ContextError, match=r"^rollout: expected one of true, false"):
        StackSettings.from_mapping({"rollout": value})
