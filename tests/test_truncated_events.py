"""Registrations whose CloudTrail record lost its container list (`omitted: true`, tests/test_event_pattern.truncate)
through the real handler against the emulators: the synthesized rule delivers them, the function describes the
revision as for any event and judges what ECS holds. Read back: the revisions registered, the inbox queue.

The function's own copy of such a task definition is as large, so its registration is truncated too and is delivered
once: the function finds it compliant and writes nothing, so there is no loop. A record cut so far that it names
neither the revision nor the family cannot be identified: the function says so in a notice, never silently."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest
from test_daemon_handler import register as register_daemon
from test_daemon_handler import revisions as daemon_revisions
from test_event_pattern import TRUNCATIONS, truncate
from test_handler import invoke

from conftest import SHARED_FIXTURES, load_json
from demo.daemon_sandbox import call_event
from demo.sandbox import Sandbox
from demo.synthesized import synthesized_daemon_rule_patterns, synthesized_rule_pattern
from ecs_remediate.adapters import aws
from ecs_remediate.core.events import Registration, Unidentified, parse_registration_event
from ecs_remediate.core.taskdef import privileged_containers
from emulators.eventbridge import matches

SENSOR = SHARED_FIXTURES / "daemons" / "crafted__security-sensor_privileged_register-input.json"


@pytest.fixture(scope="module")
def pattern() -> dict[str, Any]:
    return synthesized_rule_pattern()


def large(family: str, privileged: bool) -> dict[str, Any]:
    """Forty containers with long environments, the last one privileged when asked."""
    containers = [
        {
            "name": f"c{i}",
            "image": "public.ecr.aws/docker/library/busybox:1.36",
            "memory": 64,
            "environment": [{"name": f"SETTING_{j}", "value": "x" * 100} for j in range(20)],
        }
        for i in range(40)
    ]
    containers[-1]["privileged"] = privileged
    return {"family": family, "containerDefinitions": containers}


def own_registrations(sandbox: Sandbox) -> list[dict[str, Any]]:
    """What the function sends to RegisterTaskDefinition (its copies), as CloudTrail would record the request."""
    sent: list[dict[str, Any]] = []
    aws.client("ecs").meta.events.register(
        "provide-client-params.ecs.RegisterTaskDefinition", lambda params, **_: sent.append(copy.deepcopy(params))
    )
    return sent


# --- the parser keeps every truncated registration --------------------------------------------------------------


@pytest.mark.parametrize("shape", TRUNCATIONS)
def test_the_parser_keeps_a_truncated_registration(sandbox: Sandbox, shape: str) -> None:
    params = large("big-app", True)
    response = sandbox.register(params)
    arn = response["taskDefinition"]["taskDefinitionArn"]
    kept = parse_registration_event(truncate(sandbox.event_for(params, response), shape), expected_region="us-east-1")
    assert isinstance(kept, Registration) and kept.task_definition_arn == arn
    cut = parse_registration_event(
        truncate(sandbox.event_for(params, response), shape, response_cut=True), expected_region="us-east-1"
    )
    assert isinstance(cut, Unidentified)  # found from family, time and registrant (or notified), never dropped
    assert cut.registration.family == ("" if shape == "all-cut" else "big-app")


# --- through the handler ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("response_cut", [False, True], ids=["response-kept", "response-cut"])
@pytest.mark.parametrize("shape", ["family-kept", "list-replaced", "marker-on-record"])
def test_a_truncated_privileged_registration_is_fixed_and_its_truncated_copy_does_not_loop(
    sandbox: Sandbox, handler: ModuleType, pattern: dict[str, Any], shape: str, response_cut: bool
) -> None:
    sent = own_registrations(sandbox)
    params = large("big-app", True)
    response = sandbox.as_principal("Dev", "alice").register(params)  # the registrant CloudTrail names
    event = truncate(sandbox.event_for(params, response), shape, response_cut=response_cut)
    assert matches(pattern, event)

    result = invoke(handler, event)

    source = response["taskDefinition"]["taskDefinitionArn"]
    assert (result["outcome"], result["task_definition_arn"]) == ("remediated", source)
    fixed = sandbox.describe(result["new_task_definition_arn"])["taskDefinition"]
    assert privileged_containers(fixed) == [] and len(fixed["containerDefinitions"]) == 40
    assert len(sandbox.active_revisions("big-app")) == 2
    [note] = sandbox.inbox()
    assert note.payload["outcome"] == "remediated"

    # The copy's own registration, truncated the same way: delivered once, compliant, nothing written, no notice.
    [own] = sent
    own_response = {"taskDefinition": fixed}
    own_event = truncate(
        sandbox.event_for(own, own_response, user_arn="arn:aws:sts::123456789012:assumed-role/fn/x"),
        shape,
        response_cut=False,
    )
    assert matches(pattern, own_event)
    assert invoke(handler, own_event)["outcome"] == "compliant"
    assert len(sandbox.active_revisions("big-app")) == 2 and sandbox.inbox() == []


@pytest.mark.parametrize("shape", TRUNCATIONS)
def test_a_truncated_compliant_registration_is_described_and_left_alone(
    sandbox: Sandbox, handler: ModuleType, pattern: dict[str, Any], shape: str
) -> None:
    params = large("quiet-app", False)
    response = sandbox.register(params)
    event = truncate(sandbox.event_for(params, response), shape)
    assert matches(pattern, event)
    result = invoke(handler, event)
    assert result["outcome"] == "compliant"
    assert len(sandbox.active_revisions("quiet-app")) == 1 and sandbox.inbox() == []


def test_a_record_cut_to_nothing_is_notified_never_silent(
    sandbox: Sandbox, handler: ModuleType, pattern: dict[str, Any]
) -> None:
    """Neither the revision (response cut) nor the family (request cut) is left: nothing can be identified, so nothing
    is written and the miss is notified (the sweep is the backstop)."""
    params = large("lost-app", True)
    response = sandbox.register(params)
    event = truncate(sandbox.event_for(params, response), "all-cut", response_cut=True)
    assert matches(pattern, event)
    result = invoke(handler, event)
    assert result["outcome"] == "unresolved"
    assert len(sandbox.active_revisions("lost-app")) == 1
    [note] = sandbox.inbox()
    assert note.payload["outcome"] == "unresolved" and "truncated" in note.payload["reason"]


# --- daemon task definitions --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", TRUNCATIONS)
def test_a_truncated_daemon_registration_is_fixed_and_its_truncated_copy_does_not_loop(
    sandbox: Sandbox, handler: ModuleType, shape: str
) -> None:
    rule, _ = synthesized_daemon_rule_patterns()
    sent: list[dict[str, Any]] = []
    aws.client("ecs").meta.events.register(
        "provide-client-params.ecs.RegisterDaemonTaskDefinition", lambda params, **_: sent.append(copy.deepcopy(params))
    )
    params = load_json(SENSOR)
    arn = register_daemon(sandbox.as_principal("Dev", "alice"), params)
    event = truncate(
        call_event(sandbox, "RegisterDaemonTaskDefinition", params, {"daemonTaskDefinitionArn": arn}), shape
    )
    assert matches(rule, event)

    result = invoke(handler, event)

    assert (result["outcome"], result["task_definition_arn"]) == ("remediated", arn)
    assert len(daemon_revisions(sandbox, "security-sensor")) == 2
    sandbox.inbox()
    [own] = sent
    own_event = truncate(
        call_event(
            sandbox,
            "RegisterDaemonTaskDefinition",
            own,
            {"daemonTaskDefinitionArn": result["new_task_definition_arn"]},
            user_arn="arn:aws:sts::123456789012:assumed-role/fn/x",
        ),
        shape,
    )
    assert matches(rule, own_event)
    assert invoke(handler, own_event)["outcome"] == "compliant"
    assert len(daemon_revisions(sandbox, "security-sensor")) == 2 and sandbox.inbox() == []
