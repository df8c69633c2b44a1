"""Issue 13 acceptance, real time: privileged daemon task definitions (the shared fixtures and generated ones) through
the real handler against the daemon emulator, EventBridge deciding on the synthesized pattern what the function sees.
Every check reads state back from the emulator (the revisions, the daemons) or the inbox queue (the notices)."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from daemon_strategies import daemon_register_inputs
from hypothesis import given, settings
from strategies import FUZZ, Fault, scaled
from test_handler import invoke

from conftest import SHARED_FIXTURES, load_handler, load_json
from demo.daemon_sandbox import call_event, cluster_with_provider
from demo.sandbox import Sandbox
from demo.synthesized import synthesized_daemon_rule_patterns
from ecs_remediate.adapters import aws
from ecs_remediate.core.taskdef import default_daemon_register_model, privileged_containers
from emulators.eventbridge import matches

MARKER = "ecs-remediate:source-revision"
SENSOR = SHARED_FIXTURES / "daemons" / "crafted__security-sensor_privileged_register-input.json"
LOG_ROUTER = SHARED_FIXTURES / "daemons" / "crafted__log-router_compliant_describe-response.json"
MODEL = default_daemon_register_model()


@pytest.fixture(scope="module")
def pattern() -> dict[str, Any]:
    return synthesized_daemon_rule_patterns()[0]


@pytest.fixture
def emails(handler: ModuleType) -> Iterator[dict[str, str]]:
    """subject -> the email text the function published (SNS's `email` member, as sent)."""
    sent: dict[str, str] = {}

    def record(params: dict[str, Any], **_: Any) -> None:
        if params.get("MessageStructure") == "json":
            sent[str(params["Subject"])] = str(json.loads(params["Message"])["email"])

    aws.client("sns").meta.events.register("provide-client-params.sns.Publish", record, unique_id="emails")
    yield sent
    aws.client("sns").meta.events.unregister("provide-client-params.sns.Publish", unique_id="emails")


def register(sandbox: Sandbox, params: dict[str, Any]) -> str:
    return str(sandbox.client("ecs").register_daemon_task_definition(**params)["daemonTaskDefinitionArn"])


def describe(sandbox: Sandbox, ref: str) -> dict[str, Any]:
    found: dict[str, Any] = sandbox.client("ecs").describe_daemon_task_definition(daemonTaskDefinition=ref)
    return dict(found["daemonTaskDefinition"])


def tags(sandbox: Sandbox, arn: str) -> list[dict[str, str]]:
    return list(sandbox.client("ecs").list_tags_for_resource(resourceArn=arn)["tags"])


def revisions(sandbox: Sandbox, family: str) -> list[str]:
    listed = sandbox.client("ecs").list_daemon_task_definitions(family=family, status="ALL")
    return [str(s["arn"]) for s in listed["daemonTaskDefinitions"]]


def register_event(sandbox: Sandbox, params: dict[str, Any], arn: str, **kwargs: Any) -> dict[str, Any]:
    return call_event(sandbox, "RegisterDaemonTaskDefinition", params, {"daemonTaskDefinitionArn": arn}, **kwargs)


def assert_faithful_copy(sandbox: Sandbox, source_arn: str, copy_arn: str, source_tags: list[dict[str, str]]) -> None:
    """Identical but for privileged (true -> false), every tag kept and the marker added where there is room."""
    source, fixed = describe(sandbox, source_arn), describe(sandbox, copy_arn)
    assert fixed["family"] == source["family"] and fixed["revision"] == source["revision"] + 1
    assert privileged_containers(fixed) == []
    expected = copy.deepcopy(source["containerDefinitions"])
    for container in expected:
        if container.get("privileged") is True:
            container["privileged"] = False
    assert fixed["containerDefinitions"] == expected
    for member in MODEL.input_members - {"containerDefinitions", "tags"}:
        assert fixed.get(member) == source.get(member), member
    MODEL.validate({k: v for k, v in fixed.items() if k in MODEL.input_members})  # valid per the model
    copied = tags(sandbox, copy_arn)
    marker = {"key": MARKER, "value": f"{source['family']}:{source['revision']}"}
    assert [t for t in copied if t["key"] != MARKER] == source_tags
    assert (marker in copied) == (len(source_tags) < MODEL.tag_limits.max_count)


def test_the_shared_privileged_fixture_gets_one_faithful_copy_and_a_notice(
    sandbox: Sandbox, handler: ModuleType, emails: dict[str, str], pattern: dict[str, Any]
) -> None:
    params = load_json(SENSOR)
    arn = register(sandbox, params)
    event = register_event(sandbox, params, arn)
    assert matches(pattern, event)
    result = invoke(handler, event)

    assert (result["outcome"], result["resource_type"]) == ("remediated", "daemon task definition")
    assert result["privileged"] == ["init-container", "sensor"]
    assert revisions(sandbox, "security-sensor") == [arn, result["new_task_definition_arn"]]  # one copy
    assert_faithful_copy(sandbox, arn, result["new_task_definition_arn"], params["tags"])
    [note] = sandbox.inbox()
    assert note.subject.startswith("[ECS.4] daemon task definition security-sensor:1 -> :2 privileged removed")
    assert note.payload["resourceType"] == "daemon task definition" and note.payload["copyVerified"] is True
    assert {i["image"] for i in note.payload["images"]} == {c["image"] for c in params["containerDefinitions"]}
    text = emails[note.subject]
    assert "Daemon task definition: " + arn in text
    assert "linuxParameters.capabilities.add" in text and "sensor:7.2" in text  # the image, and the alternative
    assert "every other member and tag is as in security-sensor:1" in text  # what was read back, and only that
    assert "No daemon runs it." in text
    assert "SENSOR_CID" not in text and "ecs,managed-instances" not in text  # no value from the body
    # the same event again (EventBridge delivers at least once): no second copy, no second notice
    invoke(handler, event)
    assert len(revisions(sandbox, "security-sensor")) == 2 and sandbox.inbox() == []


def test_the_copy_s_own_registration_does_not_loop(
    sandbox: Sandbox, handler: ModuleType, pattern: dict[str, Any]
) -> None:
    sent: list[dict[str, Any]] = []
    aws.client("ecs").meta.events.register(
        "provide-client-params.ecs.RegisterDaemonTaskDefinition", lambda params, **_: sent.append(copy.deepcopy(params))
    )
    params = load_json(SENSOR)
    arn = register(sandbox, params)
    result = invoke(handler, register_event(sandbox, params, arn))
    [own] = sent  # what the function registered, as CloudTrail would record it
    own_event = register_event(
        sandbox, own, result["new_task_definition_arn"], user_arn="arn:aws:sts::123456789012:assumed-role/fn/x"
    )
    assert not matches(pattern, own_event)  # EventBridge never delivers it
    sandbox.inbox()
    delivered = invoke(handler, own_event)  # and were it delivered: compliant, nothing written, no notice
    assert delivered["outcome"] == "compliant"
    assert len(revisions(sandbox, "security-sensor")) == 2 and sandbox.inbox() == []


def test_a_compliant_daemon_task_definition_never_invokes_the_function(
    sandbox: Sandbox, handler: ModuleType, pattern: dict[str, Any]
) -> None:
    source = load_json(LOG_ROUTER)["daemonTaskDefinition"]
    params = {k: v for k, v in source.items() if k in MODEL.input_members}
    arn = register(sandbox, params)
    assert not matches(pattern, register_event(sandbox, params, arn))
    assert revisions(sandbox, "log-router") == [arn] and sandbox.inbox() == []


@settings(FUZZ, max_examples=scaled(25))
@given(params=daemon_register_inputs())
def test_generated_daemon_task_definitions_through_the_handler(
    sandbox: Sandbox, handler: ModuleType, pattern: dict[str, Any], params: dict[str, Any]
) -> None:
    """1-10 containers, every linuxParameters member, host volumes, pidMode/ipcMode shared, 0-50 tags: one faithful
    copy of each privileged one; a compliant one is never delivered."""
    params = {**params, "family": f"gen-{uuid.uuid4().hex[:12]}"}
    arn = register(sandbox, params)
    event = register_event(sandbox, params, arn)
    if not privileged_containers(params):
        assert not matches(pattern, event)
        assert revisions(sandbox, params["family"]) == [arn]
        return
    assert matches(pattern, event)
    result = invoke(handler, event)
    assert result["outcome"] == "remediated", result
    assert revisions(sandbox, params["family"]) == [arn, result["new_task_definition_arn"]]
    assert_faithful_copy(sandbox, arn, result["new_task_definition_arn"], params.get("tags", []))
    [note] = sandbox.inbox()
    assert note.payload["copyVerified"] is True and note.payload["taskDefinitionArn"] == arn
    secrets = {s for s in _strings(params) if s.startswith("SECRET-")}  # the strategy's stand-ins for secrets
    assert not any(secret in json.dumps(note.payload) for secret in secrets)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_tags_that_cannot_be_read_are_said_so_in_the_notice(
    sandbox: Sandbox, handler: ModuleType, emails: dict[str, str]
) -> None:
    params = load_json(SENSOR)
    arn = register(sandbox, params)
    Fault(aws.client("ecs"), "ListTagsForResource", "access-denied", times=None)
    result = invoke(handler, register_event(sandbox, params, arn))
    assert result["outcome"] == "remediated"
    assert tags(sandbox, result["new_task_definition_arn"]) == [{"key": MARKER, "value": "security-sensor:1"}]
    [note] = sandbox.inbox()
    assert note.payload["tagsError"] == "AccessDeniedException"
    text = emails[note.subject]
    assert "could not read the source's tags (AccessDeniedException)" in text
    assert "every other member and tag is as in" not in text  # never claimed
    assert "every other member is as in security-sensor:1" in text and note.payload["copyVerified"] is True
    assert "the copy's tags could not be read back (AccessDeniedException): taken as registered" in text


def test_report_mode_writes_nothing_and_names_the_daemons_running_it(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, MODE="report")
    params = load_json(SENSOR)
    arn = register(sandbox, params)
    cluster, provider = cluster_with_provider(sandbox)
    sandbox.client("ecs").create_daemon(
        daemonName="sensor", clusterArn=cluster, daemonTaskDefinitionArn=arn, capacityProviderArns=[provider]
    )
    result = invoke(handler, register_event(sandbox, params, arn))
    assert result["outcome"] == "reported"
    assert revisions(sandbox, "security-sensor") == [arn]
    [note] = sandbox.inbox()
    assert [(d["cluster"], d["daemon"], d["revisions"]) for d in note.payload["daemons"]] == [
        ("agents", "sensor", ["security-sensor:1"])
    ]
    assert (
        "aws ecs register-daemon-task-definition --cli-input-json file://fixed.json --region us-east-1"
        in (note.payload["nextCommands"])
    )


def test_an_approved_exemption_holds_and_is_notified(sandbox: Sandbox, handler: ModuleType) -> None:
    params = load_json(SENSOR)
    arn = register(sandbox, params)
    sandbox.exempt(arn, "vendor sensor needs privileged (ticket SEC-42)", _in_days(30))
    result = invoke(handler, register_event(sandbox, params, arn))
    assert result["outcome"] == "exempt" and revisions(sandbox, "security-sensor") == [arn]
    [note] = sandbox.inbox()
    assert note.payload["exemptionSource"] == "registry" and "SEC-42" in note.payload["exemption"]


def _in_days(days: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def test_a_registration_event_without_response_elements_is_identified(sandbox: Sandbox, handler: ModuleType) -> None:
    """Found from the family, the time and the registrant (ECS's registeredBy against CloudTrail's user)."""
    params = load_json(SENSOR)
    arn = register(sandbox.as_principal("Dev", "alice"), params)
    event = call_event(sandbox, "RegisterDaemonTaskDefinition", params, None)  # responseElements null
    result = invoke(handler, event)
    assert (result["outcome"], result["task_definition_arn"]) == ("remediated", arn)
