"""The organization's daemon rules, as synthesized: in the member template (the one the StackSet inlines) a forwarding
rule per daemon rule of the single-account stack, with that rule's pattern, to the hub's bus through the one forwarder
role; on the hub's bus the same daemon rules invoking the hub function. Patterns are compared with the single-account
stack's as synthesized, and run through LocalStack's rule engine. cfn-lint and checkov on these templates:
tests/test_reliability_template.py (its org-all-on variant has daemon rollout on)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_infra_org import MEMBER, ORG_CONTEXT, of_type, only, remediation_function, stack_set, synth

from demo.daemon_sandbox import call_event, deployment_event
from demo.sandbox import Sandbox
from demo.synthesized import synthesized_daemon_rule_patterns
from emulators.eventbridge import matches

ROLLOUT = {**ORG_CONTEXT, "daemonRollout": "true"}
FORWARD_DAEMONS = "ForwardPrivilegedDaemonRule"
FORWARD_DEPLOYMENTS = "ForwardDaemonDeploymentOutcomeRule"
FORWARD_REGISTRATIONS = "ForwardPrivilegedRegistrations"


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any], dict[str, Any], Any]:
    return synth(ROLLOUT, tmp_path_factory.mktemp("cdk-hub-daemons"))


def rules(template: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [r for rid, r in of_type(template, "AWS::Events::Rule").items() if rid.startswith(prefix)]


def without_account(pattern: dict[str, Any]) -> dict[str, Any]:
    """A single-account rule's pattern without its `account` filter (the member's default bus is its own; the hub's
    bus receives every member's events and acts in the sending one)."""
    assert pattern["account"] == ["123456789012"]
    return {k: v for k, v in pattern.items() if k != "account"}


def member_event(event: dict[str, Any], account: str = MEMBER, region: str = "eu-west-1") -> dict[str, Any]:
    event["account"], event["region"] = account, region
    event["detail"]["recipientAccountId"] = account
    event["detail"]["awsRegion"] = region
    return event


def test_member_forwards_the_single_account_daemon_patterns_to_the_hub_bus(rollout: tuple[Any, ...]) -> None:
    member = rollout[2]
    single_daemons, single_deployments = synthesized_daemon_rule_patterns()
    (daemons,) = rules(member, FORWARD_DAEMONS)
    (deployments,) = rules(member, FORWARD_DEPLOYMENTS)
    assert daemons["Properties"]["EventPattern"] == without_account(single_daemons)
    assert deployments["Properties"]["EventPattern"] == without_account(single_deployments)
    (registrations,) = rules(member, FORWARD_REGISTRATIONS)
    forwarder = registrations["Properties"]["Targets"][0]["RoleArn"]
    for rule in (daemons, deployments):
        assert "Condition" not in rule and "EventBusName" not in rule["Properties"]  # every Region, default bus
        assert rule["Properties"]["State"] == "ENABLED"
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == {"Ref": "HubEventBusArn"}
        assert target["RoleArn"] == forwarder  # the one forwarder role, as for task definitions


def test_the_forwarder_role_is_unchanged_put_events_on_the_hub_bus_only(rollout: tuple[Any, ...]) -> None:
    member = rollout[2]
    roles = of_type(member, "AWS::IAM::Role")
    (forwarder_id,) = [rid for rid in roles if rid.startswith("ForwarderRole")]
    assert set(roles) == {forwarder_id, "MemberRole", "VerifyRole"}  # no role of its own for the daemon rules
    assert roles[forwarder_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
        }
    ]
    policies = of_type(member, "AWS::IAM::Policy")
    assert [p["Properties"]["PolicyDocument"]["Statement"] for p in policies.values()] == [
        [{"Action": "events:PutEvents", "Effect": "Allow", "Resource": {"Ref": "HubEventBusArn"}}]
    ]
    assert [p["Properties"]["Roles"] for p in policies.values()] == [[{"Ref": forwarder_id}]]
    for rule in of_type(member, "AWS::Events::Rule").values():
        assert [t["RoleArn"] for t in rule["Properties"]["Targets"]] == [{"Fn::GetAtt": [forwarder_id, "Arn"]}]


def test_the_hub_bus_has_the_daemon_rules_with_the_members_patterns(rollout: tuple[Any, ...]) -> None:
    _, template, member, _ = rollout
    bus_id, _ = only(template, "AWS::Events::EventBus")
    _, function = remediation_function(template)
    [queue_id] = [k for k in of_type(template, "AWS::SQS::Queue") if k.startswith("RemediatorEventQueue")]
    (daemons,) = rules(template, "DaemonsPrivilegedDaemonRule")
    (deployments,) = rules(template, "DaemonsDaemonDeploymentOutcomeRule")
    assert daemons["Properties"]["EventPattern"] == rules(member, FORWARD_DAEMONS)[0]["Properties"]["EventPattern"]
    assert (
        deployments["Properties"]["EventPattern"] == rules(member, FORWARD_DEPLOYMENTS)[0]["Properties"]["EventPattern"]
    )
    for rule in (daemons, deployments):
        props = rule["Properties"]
        assert props["EventBusName"] == {"Ref": bus_id}
        (target,) = props["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}  # the event queue the function drains
        assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 8
    on_default_bus = [
        r for r in of_type(template, "AWS::Events::Rule").values() if "EventBusName" not in r["Properties"]
    ]
    assert [r["Properties"].get("ScheduleExpression") for r in on_default_bus] == ["rate(1 day)"]  # the org sweep's
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["DAEMON_ROLLOUT"] == "true" and variables["MEMBER_ROLE_NAME"] == "ecs-remediate-member"
    # The event queue takes messages from each of the rules on the hub's bus, and only from them.
    assert of_type(template, "AWS::Lambda::Permission") == {}  # nothing invokes the function but its queue's mapping
    [policy] = [
        p["Properties"]
        for p in of_type(template, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    sources = {json.dumps(s["Condition"]["ArnEquals"]["aws:SourceArn"], sort_keys=True) for s in allows}
    rule_ids = [rid for rid, r in of_type(template, "AWS::Events::Rule").items() if "EventBusName" in r["Properties"]]
    assert sources == {json.dumps({"Fn::GetAtt": [rid, "Arn"]}, sort_keys=True) for rid in rule_ids}


def test_without_daemon_rollout_no_deployment_rule_anywhere(tmp_path: Path) -> None:
    for context in (ORG_CONTEXT, {**ROLLOUT, "mode": "report"}):
        _, template, member, _ = synth(context, tmp_path / context.get("mode", "remediate"))
        assert len(rules(member, FORWARD_DAEMONS)) == 1 and len(rules(template, "DaemonsPrivilegedDaemonRule")) == 1
        assert rules(member, FORWARD_DEPLOYMENTS) == [] and rules(template, "DaemonsDaemonDeployment") == []


def test_member_daemon_pattern_forwards_privileged_daemon_calls_only(rollout: tuple[Any, ...]) -> None:
    member = rollout[2]
    daemons = rules(member, FORWARD_DAEMONS)[0]["Properties"]["EventPattern"]
    deployments = rules(member, FORWARD_DEPLOYMENTS)[0]["Properties"]["EventPattern"]
    tasks = rules(member, FORWARD_REGISTRATIONS)[0]["Properties"]["EventPattern"]
    arn = f"arn:aws:ecs:eu-west-1:{MEMBER}:daemon-task-definition/agent:1"
    containers = [{"name": "a", "image": "x"}, {"name": "b", "image": "y", "privileged": True}]
    privileged = member_event(
        call_event(
            Sandbox(),
            "RegisterDaemonTaskDefinition",
            {"family": "agent", "containerDefinitions": containers},
            {"daemonTaskDefinitionArn": arn},
        )
    )
    compliant_params = {"family": "agent", "containerDefinitions": [{"name": "a", "image": "x", "privileged": False}]}
    compliant = member_event(
        call_event(Sandbox(), "RegisterDaemonTaskDefinition", compliant_params, {"daemonTaskDefinitionArn": arn})
    )
    daemon = f"arn:aws:ecs:eu-west-1:{MEMBER}:daemon/agents/sensor"
    update = member_event(
        call_event(Sandbox(), "UpdateDaemon", {"daemonArn": daemon, "daemonTaskDefinitionArn": arn}, None)
    )
    failed = member_event(
        call_event(Sandbox(), "UpdateDaemon", {"daemonArn": daemon}, None, error_code="AccessDeniedException")
    )
    assert matches(daemons, privileged) and matches(daemons, update)
    assert not matches(daemons, compliant) and not matches(daemons, failed)
    assert not matches(tasks, privileged)  # each call has one rule: the hub is invoked once per event
    outcome = deployment_event(
        f"arn:aws:ecs:eu-west-1:{MEMBER}:daemon-deployment/agents/sensor/d1",
        daemon,
        "DAEMON_DEPLOYMENT_ROLLBACK_SUCCESSFUL",
        region="eu-west-1",
    )
    outcome["account"] = MEMBER
    assert matches(deployments, outcome) and not matches(daemons, outcome)
    pending = {**outcome, "detail": {**outcome["detail"], "eventName": "DAEMON_DEPLOYMENT_IN_PROGRESS"}}
    assert not matches(deployments, pending)


def test_member_template_stays_inline_and_asset_free_with_the_daemon_rules(rollout: tuple[Any, ...]) -> None:
    hub, template, member, _ = rollout
    assert hub.member_template.asset_count == 0 and hub.member_template.errors == []
    assert hub.member_template.warnings == []  # cdk-nag on the member template, daemon rules included
    assert len(stack_set(template)["TemplateBody"]) < 51_200  # CloudFormation's inline template body limit
    assert not {"AWS::Lambda::Function", "AWS::S3::Bucket"} & {r["Type"] for r in member["Resources"].values()}
