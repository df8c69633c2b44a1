"""The daemon rules' event patterns, as synthesized (daemon rollout on, so both exist), run through LocalStack's
EventBridge rule engine: privileged daemon task definition registrations invoke the function, compliant ones (the
function's own fixed copies included) never do; CreateDaemon/UpdateDaemon always do (their events carry no container
definitions); deployment outcomes reach the function, the rest of ECS's events do not."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from daemon_strategies import daemon_register_inputs
from hypothesis import given, settings
from strategies import scaled
from test_event_pattern import TRUNCATIONS, truncate

from conftest import SHARED_FIXTURES, load_json
from demo.daemon_sandbox import call_event, deployment_event
from demo.sandbox import Sandbox
from demo.synthesized import synthesized_daemon_rule_patterns, synthesized_rule_pattern
from ecs_remediate.core.taskdef import Document, build_fixed_copy, default_daemon_register_model, privileged_containers
from emulators.eventbridge import matches

SENSOR = load_json(SHARED_FIXTURES / "daemons" / "crafted__security-sensor_privileged_register-input.json")
LOG_ROUTER = load_json(SHARED_FIXTURES / "daemons" / "crafted__log-router_compliant_describe-response.json")
MARKER = ("ecs-remediate:source-revision", "security-sensor:1")
ARN = "arn:aws:ecs:us-east-1:123456789012:daemon-task-definition/security-sensor:1"
DAEMON = "arn:aws:ecs:us-east-1:123456789012:daemon/agents/sensor"
DEPLOYMENT = "arn:aws:ecs:us-east-1:123456789012:daemon-deployment/agents/sensor/0EYSiB0qap8xf0N76FsbE"


@pytest.fixture(scope="module")
def patterns() -> tuple[dict[str, Any], dict[str, Any]]:
    return synthesized_daemon_rule_patterns()


def register(params: dict[str, Any], **detail: Any) -> dict[str, Any]:
    event = call_event(Sandbox(), "RegisterDaemonTaskDefinition", params, {"daemonTaskDefinitionArn": ARN})
    event["detail"].update(detail)
    return event


def fixed(params: dict[str, Any]) -> dict[str, Any]:
    document = Document("daemon-task-definition", {k: v for k, v in params.items() if k != "tags"}, params.get("tags"))
    return dict(build_fixed_copy(document, default_daemon_register_model(), MARKER).register_input)


def log_router_input() -> dict[str, Any]:
    model = default_daemon_register_model()
    return {k: v for k, v in LOG_ROUTER["daemonTaskDefinition"].items() if k in model.input_members}


def test_the_shared_fixtures_and_the_fixed_copy(patterns: tuple[dict[str, Any], dict[str, Any]]) -> None:
    rule, _ = patterns
    assert matches(rule, register(SENSOR))
    assert not matches(rule, register(log_router_input()))
    assert not matches(rule, register(fixed(SENSOR)))  # the function's own registration: no loop


@given(daemon_register_inputs())
@settings(max_examples=scaled(60), deadline=None)
def test_generated_registrations_invoke_exactly_when_privileged(params: dict[str, Any]) -> None:
    rule, _ = synthesized_daemon_rule_patterns()
    assert matches(rule, register(params)) is bool(privileged_containers(params))
    assert not matches(rule, register(fixed(params)))


@pytest.mark.parametrize(
    "flags", [[True], [None, True], [False, None, True], [True, True], [None], [False], [False] * 10]
)
def test_where_the_privileged_container_is(patterns: tuple[dict[str, Any], dict[str, Any]], flags: list[Any]) -> None:
    containers = [
        {"name": f"c{i}", "image": "agent:1", **({} if f is None else {"privileged": f})} for i, f in enumerate(flags)
    ]
    assert matches(patterns[0], register({"family": "agent", "containerDefinitions": containers})) is (True in flags)


def test_registrations_without_request_parameters_are_handed_to_the_function(
    patterns: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    event = register(SENSOR)
    del event["detail"]["requestParameters"]
    assert matches(patterns[0], event)
    event["detail"]["requestParameters"] = None
    assert matches(patterns[0], event)


@pytest.mark.parametrize("shape", TRUNCATIONS)
def test_truncated_registrations_are_handed_to_the_function(
    patterns: tuple[dict[str, Any], dict[str, Any]], shape: str
) -> None:
    """CloudTrail cut the container list (test_event_pattern.truncate): compliant or privileged, the function gets
    it and describes the revision; the same call failed, or another call truncated the same way, does not invoke."""
    for params in (SENSOR, log_router_input(), fixed(SENSOR)):
        assert matches(patterns[0], truncate(register(params), shape))
    failed = truncate(register(SENSOR, errorCode="ClientException", responseElements=None), shape)
    assert not matches(patterns[0], failed)
    other = truncate(register(SENSOR, eventName="DeleteDaemonTaskDefinition"), shape)
    assert not any(matches(p, other) for p in patterns)


@pytest.mark.parametrize("name", ["CreateDaemon", "UpdateDaemon"])
def test_daemon_assignments_always_invoke(patterns: tuple[dict[str, Any], dict[str, Any]], name: str) -> None:
    """Their events carry no container definitions: the function describes the revision (a no-op if compliant)."""
    request = {"daemonArn": DAEMON, "daemonTaskDefinitionArn": ARN, "capacityProviderArns": ["arn:cp"]}
    event = call_event(Sandbox(), name, request, {"daemonArn": DAEMON})
    assert matches(patterns[0], event)
    event["detail"]["errorCode"] = "ClientException"
    assert not matches(patterns[0], event)


@pytest.mark.parametrize(
    "name",
    [
        "DeleteDaemonTaskDefinition",
        "DescribeDaemonTaskDefinition",
        "DeleteDaemon",
        "RegisterTaskDefinition",
        "registerdaemontaskdefinition",
        "TagResource",
    ],
)
def test_other_calls_do_not_invoke(patterns: tuple[dict[str, Any], dict[str, Any]], name: str) -> None:
    assert not matches(patterns[0], register(SENSOR, eventName=name))


@pytest.mark.parametrize("error_code", ["ClientException", "AccessDeniedException", ""])
def test_failed_registrations_do_not_invoke(patterns: tuple[dict[str, Any], dict[str, Any]], error_code: str) -> None:
    assert not matches(patterns[0], register(SENSOR, errorCode=error_code, responseElements=None))


def test_only_this_account_and_only_ecs(patterns: tuple[dict[str, Any], dict[str, Any]]) -> None:
    foreign = register(SENSOR)
    foreign["account"] = "210987654321"
    assert not matches(patterns[0], foreign)
    other = register(SENSOR, eventSource="ec2.amazonaws.com")
    assert not matches(patterns[0], other)
    ec2 = register(SENSOR)
    ec2["source"] = "aws.ec2"
    assert not matches(patterns[0], ec2)


def test_the_two_rules_do_not_overlap(patterns: tuple[dict[str, Any], dict[str, Any]]) -> None:
    task_definition_rule = synthesized_rule_pattern()
    task_event = copy.deepcopy(register(SENSOR, eventName="RegisterTaskDefinition"))
    assert matches(task_definition_rule, task_event) and not matches(patterns[0], task_event)
    assert not matches(task_definition_rule, register(SENSOR))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DAEMON_DEPLOYMENT_SUCCESSFUL", True),
        ("DAEMON_DEPLOYMENT_STOPPED", True),
        ("DAEMON_DEPLOYMENT_ROLLBACK_IN_PROGRESS", True),
        ("DAEMON_DEPLOYMENT_ROLLBACK_SUCCESSFUL", True),
        ("DAEMON_DEPLOYMENT_ROLLBACK_FAILED", True),
        ("DAEMON_DEPLOYMENT_PENDING", False),
        ("DAEMON_DEPLOYMENT_IN_PROGRESS", False),
        ("DAEMON_DEPLOYMENT_STOP_REQUESTED", False),
    ],
)
def test_deployment_outcomes(patterns: tuple[dict[str, Any], dict[str, Any]], name: str, expected: bool) -> None:
    _, outcome_rule = patterns
    event = deployment_event(DEPLOYMENT, DAEMON, name)
    assert matches(outcome_rule, event) is expected
    assert not matches(patterns[0], event)
    foreign = copy.deepcopy(event)
    foreign["account"] = "210987654321"
    assert not matches(outcome_rule, foreign)


def test_daemon_service_actions_do_not_invoke(patterns: tuple[dict[str, Any], dict[str, Any]]) -> None:
    event = deployment_event(DEPLOYMENT, DAEMON, "DAEMON_DEPLOYMENT_SUCCESSFUL")
    event["detail-type"] = "ECS Daemon Service Action"
    event["detail"]["eventName"] = "DAEMON_TASK_START_IMPAIRED"
    assert not any(matches(p, event) for p in patterns)


def test_pattern_shape(patterns: tuple[dict[str, Any], dict[str, Any]]) -> None:
    rule, outcome_rule = patterns
    assert rule["source"] == ["aws.ecs"] and rule["detail-type"] == ["AWS API Call via CloudTrail"]
    assert rule["account"] == ["123456789012"] and outcome_rule["account"] == ["123456789012"]
    assert rule["detail"]["errorCode"] == [{"exists": False}]
    assert outcome_rule["detail-type"] == ["ECS Daemon Deployment State Change"]
