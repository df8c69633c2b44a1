"""Pure: daemon events into calls, deployments or skips (ecs_remediate.daemons.events). Nothing beyond ARNs is read from
an event, and only ARNs of the function's account and Region are taken."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from demo.daemon_sandbox import call_event, deployment_event
from demo.sandbox import Sandbox
from ecs_remediate.core.events import Skip, Unidentified, parse_registration_event
from ecs_remediate.core.routing import DAEMON_KINDS, TASK_DEFINITION, UNROUTABLE, route
from ecs_remediate.daemons.events import DeploymentEvent, parse_daemon_call, parse_deployment_event
from ecs_remediate.daemons.result import DaemonCall

ACCOUNT, REGION = "123456789012", "us-east-1"
TD = f"arn:aws:ecs:{REGION}:{ACCOUNT}:daemon-task-definition/agent:3"
DAEMON = f"arn:aws:ecs:{REGION}:{ACCOUNT}:daemon/agents/agent"
DEPLOYMENT = f"arn:aws:ecs:{REGION}:{ACCOUNT}:daemon-deployment/agents/agent/0EYSiB0qap8xf0N76FsbE"


def call(name: str, request: dict[str, Any], response: dict[str, Any] | None) -> dict[str, Any]:
    return call_event(Sandbox(), name, request, response)


def parse(event: dict[str, Any]) -> Any:
    return parse_daemon_call(route(event, member=False, account=ACCOUNT, region=REGION), event)


def deployment(event: dict[str, Any]) -> DeploymentEvent | Skip:
    return parse_deployment_event(route(event, member=False, account=ACCOUNT, region=REGION), event)


def is_daemon_event(event: Any) -> bool:
    """What the handler sends down the daemon path: a daemon kind of the router."""
    return route(event, member=False, account=ACCOUNT, region=REGION).kind in DAEMON_KINDS


def test_a_registration_names_its_revision_and_its_registrant() -> None:
    parsed = parse(call("RegisterDaemonTaskDefinition", {"family": "agent"}, {"daemonTaskDefinitionArn": TD}))
    assert isinstance(parsed, DaemonCall)
    assert (parsed.task_definition_arn, parsed.event_name, parsed.daemon_arn) == (
        TD,
        "RegisterDaemonTaskDefinition",
        "",
    )
    assert parsed.user_arn.endswith(":assumed-role/Dev/alice") and parsed.account == ACCOUNT


def test_a_registration_without_response_elements_is_identified_by_family() -> None:
    parsed = parse(call("RegisterDaemonTaskDefinition", {"family": "agent"}, None))
    assert isinstance(parsed, Unidentified) and parsed.registration.family == "agent"
    parsed = parse(call("RegisterDaemonTaskDefinition", {"family": "no such/family"}, None))
    assert isinstance(parsed, Unidentified) and parsed.registration.family == ""


@pytest.mark.parametrize(
    ("name", "request_", "response", "expected"),
    [
        ("CreateDaemon", {"daemonTaskDefinitionArn": TD, "daemonName": "agent"}, {"daemonArn": DAEMON}, (TD, DAEMON)),
        ("CreateDaemon", {"daemonTaskDefinitionArn": TD}, None, (TD, "")),
        ("UpdateDaemon", {"daemonArn": DAEMON, "daemonTaskDefinitionArn": "agent:3"}, None, ("", DAEMON)),
        ("UpdateDaemon", {"daemonArn": DAEMON, "daemonTaskDefinitionArn": TD}, {"daemonArn": DAEMON}, (TD, DAEMON)),
    ],
)
def test_daemon_assignments_name_the_daemon_and_the_revision(
    name: str, request_: dict[str, Any], response: dict[str, Any] | None, expected: tuple[str, str]
) -> None:
    parsed = parse(call(name, request_, response))
    assert isinstance(parsed, DaemonCall) and (parsed.task_definition_arn, parsed.daemon_arn) == expected


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"errorCode": "ClientException"}, "the call failed"),
        ({"eventSource": "ec2.amazonaws.com"}, "not an ECS call"),
    ],
)
def test_failed_and_foreign_calls_are_skipped(change: dict[str, Any], reason: str) -> None:
    event = call("RegisterDaemonTaskDefinition", {"family": "agent"}, {"daemonTaskDefinitionArn": TD})
    event["detail"].update(change)
    parsed = parse(event)
    assert isinstance(parsed, Skip) and parsed.reason.startswith(reason)


def test_other_accounts_and_regions_are_refused() -> None:
    for arn, reason in (
        (TD.replace(ACCOUNT, "210987654321"), "foreign account"),
        (TD.replace(REGION, "eu-west-1"), "the daemon task definition is in eu-west-1"),
        ("arn:aws:ecs:us-east-1:123456789012:task-definition/agent:3", "malformed daemon task definition ARN"),
    ):
        parsed = parse(call("RegisterDaemonTaskDefinition", {}, {"daemonTaskDefinitionArn": arn}))
        assert isinstance(parsed, Skip) and parsed.reason.startswith(reason), parsed
    sent = call("RegisterDaemonTaskDefinition", {}, {"daemonTaskDefinitionArn": TD})
    sent["account"] = "210987654321"
    assert parse(sent).reason.startswith("foreign account: the event came from")


def test_the_task_definition_parser_and_the_daemon_parser_keep_to_their_events() -> None:
    daemon = call("RegisterDaemonTaskDefinition", {"family": "agent"}, {"daemonTaskDefinitionArn": TD})
    assert is_daemon_event(daemon) and isinstance(parse_registration_event(daemon, REGION, ACCOUNT), Skip)
    task = copy.deepcopy(daemon)
    task["detail"]["eventName"] = "RegisterTaskDefinition"
    assert not is_daemon_event(task) and isinstance(parse(task), Skip)
    assert not is_daemon_event([]) and not is_daemon_event({"source": "aws.ecs"})
    assert route(task, member=False).kind == TASK_DEFINITION
    assert route([], member=False).kind == route({"source": "aws.ecs"}, member=False).kind == UNROUTABLE


def test_deployment_events() -> None:
    parsed = deployment(deployment_event(DEPLOYMENT, DAEMON, "DAEMON_DEPLOYMENT_ROLLBACK_SUCCESSFUL"))
    assert not isinstance(parsed, Skip)
    assert (parsed.deployment_arn, parsed.event_name) == (DEPLOYMENT, "DAEMON_DEPLOYMENT_ROLLBACK_SUCCESSFUL")
    pending = deployment(deployment_event(DEPLOYMENT, DAEMON, "DAEMON_DEPLOYMENT_PENDING"))
    assert isinstance(pending, Skip) and "not an outcome" in pending.reason
    foreign = deployment_event(DEPLOYMENT.replace(ACCOUNT, "210987654321"), DAEMON)
    assert deployment(foreign).reason.startswith("foreign account")  # type: ignore[union-attr]
    broken = deployment_event("arn:aws:ecs:us-east-1:123456789012:service/x/y", DAEMON)
    assert deployment(broken).reason.startswith("malformed daemon deployment ARN")  # type: ignore[union-attr]
