"""The daemon path in the synthesized templates: its IAM statements per mode (resource types daemon-task-definition and
daemon, PassRole to ecs-tasks.amazonaws.com only, each `*` where no resource type exists), the daemon rules and the
DAEMON_ROLLOUT contract, in the single-account stack, the sweep's role and the organization's member role."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template
from synth_cache import synthesized_app
from test_infra import as_list, ecs_arn_of_this_account_and_region, of_type

from app import SKIP_BUNDLING, build_app, hub_of, stack_of
from infra.daemon_iam import DAEMON_SIDS
from infra.settings import ContextError, StackSettings

TASK_DEFINITIONS = ecs_arn_of_this_account_and_region("daemon-task-definition/*")
DAEMONS = ecs_arn_of_this_account_and_region("daemon/*/*")
REVISIONS = ecs_arn_of_this_account_and_region("daemon-revision/*/*/*")
DEPLOYMENTS = ecs_arn_of_this_account_and_region("daemon-deployment/*/*/*")


def synth(context: dict[str, Any], tmp: Path) -> dict[str, Any]:
    stack = stack_of(synthesized_app({"sweepSchedule": "off", **context}))
    return dict(Template.from_stack(stack).to_json()["Resources"])


def daemon_statements(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid") in DAEMON_SIDS:
                assert statement["Sid"] not in found
                found[statement["Sid"]] = statement
    return found


READS = {
    "ReadDaemonTaskDefinitions": (["ecs:DescribeDaemonTaskDefinition"], TASK_DEFINITIONS),
    "ListDaemonTaskDefinitionsAndDaemons": (
        ["ecs:ListDaemonTaskDefinitions", "ecs:ListTagsForResource", "ecs:ListClusters", "ecs:ListDaemons"],
        "*",
    ),
    "DescribeDaemons": (["ecs:DescribeDaemon", "ecs:DescribeDaemonRevisions"], [DAEMONS, REVISIONS]),
}


def assert_statements(found: dict[str, dict[str, Any]], expected: dict[str, tuple[list[str], Any]]) -> None:
    assert set(found) == set(expected)
    for sid, (actions, resource) in expected.items():
        assert sorted(as_list(found[sid]["Action"])) == sorted(actions), sid
        assert same(found[sid]["Resource"], resource), sid


def same(resource: Any, expected: Any) -> bool:
    """Resource lists compared as sets (CDK orders them)."""
    return sorted(map(json.dumps, as_list(resource))) == sorted(map(json.dumps, as_list(expected)))


def test_remediate_mode_reads_registers_and_tags_on_create_only(tmp_path: Path) -> None:
    resources = synth({}, tmp_path)
    found = daemon_statements(resources)
    assert_statements(
        found,
        {
            **READS,
            "RegisterFixedDaemonCopies": (["ecs:RegisterDaemonTaskDefinition"], TASK_DEFINITIONS),
            "TagDaemonCopiesOnCreateOnly": (["ecs:TagResource"], TASK_DEFINITIONS),
        },
    )
    assert found["TagDaemonCopiesOnCreateOnly"]["Condition"] == {
        "StringEquals": {"ecs:CreateAction": "RegisterDaemonTaskDefinition"}
    }
    assert all("Condition" not in s for sid, s in found.items() if sid != "TagDaemonCopiesOnCreateOnly")
    # the copy keeps its task and execution roles: the one PassRole statement, only to ecs-tasks.amazonaws.com
    pass_role = [
        s
        for p in of_type(resources, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "iam:PassRole" in as_list(s["Action"])
    ]
    assert [s["Condition"] for s in pass_role] == [{"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}]
    [function] = of_type(resources, "AWS::Lambda::Function").values()
    assert function["Properties"]["Environment"]["Variables"]["DAEMON_ROLLOUT"] == "false"
    rules = {k: v for k, v in of_type(resources, "AWS::Events::Rule").items() if k.startswith("Daemons")}
    assert [k for k in rules if "PrivilegedDaemonRule" in k] and not [k for k in rules if "Deployment" in k]


def test_report_mode_only_reads(tmp_path: Path) -> None:
    resources = synth({"mode": "report", "daemonRollout": "true", "retire": "true"}, tmp_path)
    assert_statements(daemon_statements(resources), READS)
    [function] = of_type(resources, "AWS::Lambda::Function").values()
    assert function["Properties"]["Environment"]["Variables"]["DAEMON_ROLLOUT"] == "false"
    assert not [k for k in of_type(resources, "AWS::Events::Rule") if "Deployment" in k]


def test_daemon_rollout_and_retire_add_update_describe_deployments_and_delete(tmp_path: Path) -> None:
    resources = synth({"daemonRollout": "true", "retire": "true"}, tmp_path)
    found = daemon_statements(resources)
    assert found["RollDaemonsOntoFixedCopies"]["Action"] == "ecs:UpdateDaemon"
    assert found["RollDaemonsOntoFixedCopies"]["Resource"] == DAEMONS
    assert same(found["DescribeDaemonDeployments"]["Resource"], [DAEMONS, DEPLOYMENTS])
    assert found["DeleteReplacedDaemonTaskDefinitions"]["Action"] == "ecs:DeleteDaemonTaskDefinition"
    assert found["DeleteReplacedDaemonTaskDefinitions"]["Resource"] == TASK_DEFINITIONS
    actions = {
        a
        for p in of_type(resources, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        for a in as_list(s["Action"])
    }
    assert "ecs:UpdateService" not in actions  # daemon rollout never touches application services
    [function] = of_type(resources, "AWS::Lambda::Function").values()
    assert function["Properties"]["Environment"]["Variables"]["DAEMON_ROLLOUT"] == "true"
    [outcome_rule] = [v for k, v in of_type(resources, "AWS::Events::Rule").items() if "DaemonDeploymentOutcome" in k]
    pattern = outcome_rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["ECS Daemon Deployment State Change"]
    assert pattern["account"] == [{"Ref": "AWS::AccountId"}]
    [target] = outcome_rule["Properties"]["Targets"]
    [queue_id] = [k for k in of_type(resources, "AWS::SQS::Queue") if k.startswith("RemediatorEventQueue")]
    assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]} and "DeadLetterConfig" in target  # the function's queue


def test_the_sweep_role_gets_the_same_daemon_statements(tmp_path: Path) -> None:
    stack = stack_of(build_app({**SKIP_BUNDLING, "sweepSchedule": "rate(1 day)"}, outdir=str(tmp_path)))
    resources = Template.from_stack(stack).to_json()["Resources"]
    sweep_role = stack.resolve(stack.sweep.role.role_arn)["Fn::GetAtt"][0] if stack.sweep else None
    policies = [
        p for p in of_type(resources, "AWS::IAM::Policy").values() if {"Ref": sweep_role} in p["Properties"]["Roles"]
    ]
    sids = {s.get("Sid") for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]}
    assert {"ReadDaemonTaskDefinitions", "ListDaemonTaskDefinitionsAndDaemons", "RegisterFixedDaemonCopies"} <= sids


def test_the_member_role_gets_them_region_by_region(tmp_path: Path) -> None:
    context = {
        "organization": "true",
        "organizationId": "o-abcdefghij",
        "targetOus": "ou-ab12-11111111",
        "regions": "us-east-1,eu-west-1",
        "daemonRollout": "true",
    }
    hub = hub_of(build_app({**SKIP_BUNDLING, **context}, outdir=str(tmp_path)))
    policies = hub.member_template.template["Resources"]["MemberRole"]["Properties"]["Policies"]
    (policy,) = [p for p in policies if p["PolicyName"] == "EcsRemediateRemediation"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] in DAEMON_SIDS}
    assert "RollDaemonsOntoFixedCopies" in statements
    resources = str(statements["RegisterFixedDaemonCopies"]["Resource"])
    assert ":ecs:us-east-1:" in resources and ":ecs:eu-west-1:" in resources


def test_daemon_rollout_context_is_validated() -> None:
    assert StackSettings.from_mapping({"daemonRollout": "true"}).daemon_rollout is True
    assert StackSettings.from_mapping({}).daemon_rollout is False
    with pytest.raises(ContextError, match="daemonRollout: expected one of true, false"):
        StackSettings.from_mapping({"daemonRollout": "yes please"})
