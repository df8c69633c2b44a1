"""The Lambda handler against moto: real registrations, read back from the emulator."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from conftest import SHARED_FIXTURES, load_handler, load_json, shared_taskdefs
from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.core.taskdef import default_register_model, parse_document, privileged_containers
from ecs_remediate.remediation.remediator import RemediationFailed

MARKER = "ecs-remediate:source-revision"


def registrable(path: Path) -> dict[str, Any]:
    """A fixture as RegisterTaskDefinition input (placeholders such as $$$TASK_ROLE$$$ kept as they are)."""
    document = parse_document(load_json(path))
    model = default_register_model()
    params = {k: v for k, v in document.task_definition.items() if k in model.input_members}
    if document.tags:
        params["tags"] = document.tags
    return params


PRIVILEGED = [p for p in shared_taskdefs() if "INVALID" not in p.name and privileged_containers(registrable(p))]
COMPLIANT = [p for p in shared_taskdefs() if "INVALID" not in p.name and not privileged_containers(registrable(p))]


def invoke(handler: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = handler.lambda_handler(event, LambdaContext())
    return result


def without(value: Any, key: str) -> Any:
    return [{k: v for k, v in item.items() if k != key} for item in value]


def ecs_calls(sandbox: Sandbox, operation: str) -> list[str]:
    """Records every call of `operation` that our adapters make (transport level, not a mock)."""
    seen: list[str] = []
    client = aws.client("ecs")
    client.meta.events.register(f"before-call.ecs.{operation}", lambda **kw: seen.append(operation))
    return seen


@pytest.mark.parametrize("path", PRIVILEGED, ids=lambda p: p.name)
def test_privileged_fixture_is_replaced_by_a_faithful_copy(sandbox: Sandbox, handler: ModuleType, path: Path) -> None:
    params = registrable(path)
    params["tags"] = [*params.get("tags", []), {"key": "team", "value": "payments"}]
    response = sandbox.register(params)
    source = sandbox.describe(response["taskDefinition"]["taskDefinitionArn"])
    event = sandbox.event_for(params, response)

    result = invoke(handler, event)

    assert result["outcome"] == "remediated"
    new_arn = result["new_task_definition_arn"]
    copy_ = sandbox.describe(new_arn)
    fixed, original = copy_["taskDefinition"], source["taskDefinition"]
    assert fixed["revision"] == original["revision"] + 1
    assert privileged_containers(fixed) == []
    # identical but for privileged: every container field kept, in order
    assert [c["name"] for c in fixed["containerDefinitions"]] == [c["name"] for c in original["containerDefinitions"]]
    expected = copy.deepcopy(original["containerDefinitions"])
    for container in expected:
        if container.get("privileged"):
            container["privileged"] = False
    assert fixed["containerDefinitions"] == expected
    for member in default_register_model().input_members - {"containerDefinitions", "tags", "family"}:
        assert fixed.get(member) == original.get(member), member
    tags = {t["key"]: t["value"] for t in copy_["tags"]}
    assert tags["team"] == "payments"
    assert tags[MARKER] == f"{original['family']}:{original['revision']}"

    notes = sandbox.inbox()
    assert len(notes) == 1
    note = notes[0]
    assert note.attributes["outcome"] == "remediated"
    assert note.attributes["severity"] == "MEDIUM"
    assert note.payload["newTaskDefinitionArn"] == new_arn
    assert note.payload["privileged"] == privileged_containers(original)
    assert note.payload["registration"]["userArn"] == "arn:aws:sts::123456789012:assumed-role/Dev/alice"
    assert len(note.subject) < 100 and note.subject.startswith("[ECS.4] ")
    assert any("update-service" in c for c in note.payload["nextCommands"])
    text = json.dumps(note.payload) + note.subject
    # the notice names host paths (core/hostroot.py); an environment value that happens to be one of them (PATH=/sbin
    # beside a /sbin mount) appears as that path, not as the value
    host_paths = {v.get("host", {}).get("sourcePath") for v in original.get("volumes", [])}
    for container in original["containerDefinitions"]:
        for variable in container.get("environment", []):
            value = variable["value"]
            assert value not in text or len(value) < 3 or value in host_paths

    # the same event again, and the copy's own registration event: no new revision, no new notice
    assert invoke(handler, event)["outcome"] == "remediated"
    own = sandbox.event_for(fixed, {"taskDefinition": fixed})
    assert invoke(handler, own)["outcome"] == "compliant"
    assert len(sandbox.active_revisions(original["family"])) == 2
    assert sandbox.inbox() == []


@pytest.mark.parametrize("path", COMPLIANT, ids=lambda p: p.name)
def test_compliant_fixture_is_left_alone(sandbox: Sandbox, handler: ModuleType, path: Path) -> None:
    params = registrable(path)
    try:
        response = sandbox.register(params)
    except aws.ClientError as error:  # moto is stricter than ECS on some Fargate shapes
        pytest.skip(f"moto refuses to register this fixture: {error}")
    registers = ecs_calls(sandbox, "RegisterTaskDefinition")
    assert invoke(handler, sandbox.event_for(params, response))["outcome"] == "compliant"
    assert registers == []
    assert sandbox.inbox() == []


def test_email_text_names_who_what_and_next_commands(sandbox: Sandbox, handler: ModuleType) -> None:
    params = {
        "family": "payments-api",
        "containerDefinitions": [
            {
                "name": "app",
                "image": "nginx",
                "memory": 128,
                "privileged": True,
                "environment": [{"name": "DB_PASSWORD", "value": "hunter2-very-secret"}],
            },
            {"name": "log-router", "image": "fluent-bit", "memory": 64, "privileged": True},
        ],
    }
    response = sandbox.register(params)
    event = sandbox.event_for(params, response, invoked_by="cloudformation.amazonaws.com")
    invoke(handler, event)
    from ecs_remediate.core.notice import build_message
    from ecs_remediate.core.outcomes import Result

    note = sandbox.inbox()[0]
    assert note.subject == "[ECS.4] payments-api:1 -> :2 privileged removed (app, log-router)"
    text = build_message(Result.from_dict(_snake(note.payload))).text
    assert "Registered by:   arn:aws:sts::123456789012:assumed-role/Dev/alice" in text
    assert "Invoked by:      cloudformation.amazonaws.com" in text
    assert "aws ecs update-service --cluster CLUSTER --service SERVICE --task-definition payments-api:2" in text
    assert "aws ecs deregister-task-definition --task-definition payments-api:1" in text
    assert "hunter2-very-secret" not in text and "hunter2-very-secret" not in json.dumps(note.payload)


def _snake(payload: dict[str, Any]) -> dict[str, Any]:
    import re

    def snake(name: str) -> str:
        return re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), name)

    return {snake(k): (_snake(v) if isinstance(v, dict) else v) for k, v in payload.items()}


@pytest.mark.parametrize(
    "event",
    [
        load_json(SHARED_FIXTURES / "events" / "powertools-tests__eventbridge_cloudtrail_s3_HeadObject_envelope.json"),
        load_json(SHARED_FIXTURES / "events" / "aws-ecs-devguide__cloudtrail_CreateCluster.json"),
        load_json(SHARED_FIXTURES / "events" / "aws-cloudtrail-userguide__error-code-and-message_UpdateTrail.json"),
        load_json(
            SHARED_FIXTURES
            / "events"
            / "datadog-securitylabs__ecs-cryptomining_RegisterTaskDefinition_REDACTED-excerpt.json"
        ),
        {},
        [],
        "not an event",
        None,
        {"detail-type": "AWS API Call via CloudTrail", "source": "aws.ecs", "detail": "oops"},
    ],
    ids=[
        "s3-headobject",
        "ecs-createcluster",
        "failed-updatetrail",
        "datadog-excerpt",
        "empty",
        "list",
        "str",
        "null",
        "detail-not-object",
    ],
)
def test_events_that_are_not_registrations_write_nothing(sandbox: Sandbox, handler: ModuleType, event: Any) -> None:
    describes = ecs_calls(sandbox, "DescribeTaskDefinition")
    result = invoke(handler, event)
    assert result["outcome"] == "skipped" and result["reason"]
    assert describes == []
    assert sandbox.inbox() == []


def test_failed_call_and_missing_revision_are_skipped(sandbox: Sandbox, handler: ModuleType) -> None:
    params = {"family": "web", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64, "privileged": True}]}
    failed = sandbox.event_for(params, None, error_code="AccessDeniedException")
    assert "AccessDeniedException" in invoke(handler, failed)["reason"]
    # an event about a revision that does not exist (or was deleted): described, then skipped, nothing written
    ghost = sandbox.event_for(
        params,
        {"taskDefinition": {"taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/ghost:12345"}},
    )
    result = invoke(handler, ghost)
    assert (result["outcome"], result["reason"]) == ("skipped", "the revision no longer exists")
    assert sandbox.active_revisions("ghost") == [] and sandbox.inbox() == []


def test_inactive_revision_is_skipped(sandbox: Sandbox, handler: ModuleType) -> None:
    params = {"family": "web", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64, "privileged": True}]}
    response = sandbox.register(params)
    sandbox.client("ecs").deregister_task_definition(taskDefinition=response["taskDefinition"]["taskDefinitionArn"])
    result = invoke(handler, sandbox.event_for(params, response))
    assert (result["outcome"], result["reason"]) == ("skipped", "the revision is INACTIVE")
    assert sandbox.active_revisions("web") == []


def test_report_mode_notifies_and_writes_nothing(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = load_handler(sandbox, monkeypatch, MODE="report")
    params = {"family": "web", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64, "privileged": True}]}
    response = sandbox.register(params)
    assert invoke(handler, sandbox.event_for(params, response))["outcome"] == "reported"
    assert len(sandbox.active_revisions("web")) == 1
    [note] = sandbox.inbox()
    assert note.attributes == {"outcome": "reported", "severity": "HIGH", "family": "web"}


def test_exempt_by_the_registry_and_by_an_acknowledged_family_glob(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, EXEMPT_FAMILIES="monitoring-*", EXEMPT_FAMILIES_ACKNOWLEDGED="true")
    container = [{"name": "a", "image": "x", "memory": 64, "privileged": True}]
    registered = {"family": "csi-driver", "containerDefinitions": container}
    response = sandbox.register(registered)
    until = (date.today() + timedelta(days=30)).isoformat()
    sandbox.exempt(response["taskDefinition"]["taskDefinitionArn"], "CSI driver mounts block devices", until)
    globbed = {"family": "monitoring-agent", "containerDefinitions": container}
    assert invoke(handler, sandbox.event_for(registered, response))["outcome"] == "exempt"
    assert invoke(handler, sandbox.event_for(globbed, sandbox.register(globbed)))["outcome"] == "exempt"
    for family in ("csi-driver", "monitoring-agent"):
        assert len(sandbox.active_revisions(family)) == 1
    notes = {n.payload["family"]: n for n in sandbox.inbox()}  # every exemption is notified by default
    assert set(notes) == {"csi-driver", "monitoring-agent"}
    assert "approved by arn:aws:iam::123456789012:role/SecurityApprover" in notes["csi-driver"].payload["exemption"]
    assert notes["monitoring-agent"].payload["exemptionSource"] == "configuration"


def test_exemption_tags_do_not_exempt(sandbox: Sandbox, handler: ModuleType) -> None:
    params = {
        "family": "csi-driver",
        "containerDefinitions": [{"name": "a", "image": "x", "memory": 64, "privileged": True}],
        "tags": [
            {"key": "ecs-remediate:exempt-reason", "value": "CSI driver mounts block devices"},
            {"key": "ecs-remediate:exempt-until", "value": "2999-01-01"},
        ],
    }
    assert invoke(handler, sandbox.event_for(params, sandbox.register(params)))["outcome"] == "remediated"
    [note] = sandbox.inbox()
    assert "not honoured" in note.payload["exemption"]


def test_same_revision_from_two_events_registers_one_copy(sandbox: Sandbox, handler: ModuleType) -> None:
    params = {"family": "web", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64, "privileged": True}]}
    response = sandbox.register(params)
    first = sandbox.event_for(params, response)
    second = sandbox.event_for(params, response, user_arn="arn:aws:iam::123456789012:user/bob")
    assert invoke(handler, first)["outcome"] == "remediated"
    assert invoke(handler, second)["outcome"] == "remediated"
    assert len(sandbox.active_revisions("web")) == 2
    assert len(sandbox.inbox()) == 1


def throttle_first(client: Any, operation: str, times: int) -> list[int]:
    """Answer the first `times` calls of `operation` with ThrottlingException at the HTTP layer;
    botocore's retry logic sees a real throttling response."""
    calls: list[int] = []

    def respond(request: Any, **_: Any) -> AWSResponse | None:
        calls.append(1)
        if len(calls) > times:
            return None
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        return AWSResponse(request.url, 400, {"x-amzn-errortype": "ThrottlingException"}, _Raw(body))

    client.meta.events.register_first(f"before-send.ecs.{operation}", respond)
    return calls


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


def test_throttling_then_success_gives_one_copy(sandbox: Sandbox, handler: ModuleType) -> None:
    params = {"family": "web", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64, "privileged": True}]}
    response = sandbox.register(params)
    handler.remediator()  # clients exist; inject below them
    calls = throttle_first(aws.client("ecs"), "RegisterTaskDefinition", 2)
    assert invoke(handler, sandbox.event_for(params, response))["outcome"] == "remediated"
    assert len(calls) == 3
    assert len(sandbox.active_revisions("web")) == 2


def test_access_denied_on_register_sends_failure_notice_and_raises(sandbox: Sandbox, handler: ModuleType) -> None:
    params = {
        "family": "web",
        "taskRoleArn": "arn:aws:iam::123456789012:role/app",
        "containerDefinitions": [{"name": "a", "image": "x", "memory": 64, "privileged": True}],
    }
    response = sandbox.register(params)
    handler.remediator()

    def deny(request: Any, **_: Any) -> AWSResponse:
        body = json.dumps(
            {
                "__type": "AccessDeniedException",
                "message": "not authorized to perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/app",
            }
        )
        return AWSResponse(request.url, 400, {}, _Raw(body.encode()))

    aws.client("ecs").meta.events.register_first("before-send.ecs.RegisterTaskDefinition", deny)
    with pytest.raises(RemediationFailed):
        invoke(handler, sandbox.event_for(params, response))
    assert len(sandbox.active_revisions("web")) == 1
    [note] = sandbox.inbox()
    assert note.attributes["outcome"] == "failed"
    assert note.payload["errorCode"] == "AccessDeniedException"
    assert "iam:PassRole" in note.payload["errorMessage"]


def test_field_unknown_to_the_sdk_model_is_never_dropped(sandbox: Sandbox, handler: ModuleType) -> None:
    params = {"family": "web", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64, "privileged": True}]}
    response = sandbox.register(params)
    handler.remediator()

    def add_future_field(response_dict: dict[str, Any], **_: Any) -> None:
        body = json.loads(response_dict["body"])
        body["taskDefinition"]["containerDefinitions"][0]["gpuSharingPolicy"] = {"mode": "EXCLUSIVE"}
        response_dict["body"] = json.dumps(body).encode()

    aws.client("ecs").meta.events.register_first("before-parse.ecs.DescribeTaskDefinition", add_future_field)
    with pytest.raises(RemediationFailed) as failure:
        invoke(handler, sandbox.event_for(params, response))
    assert "containerDefinitions[0].gpuSharingPolicy" in failure.value.result.error_message
    assert len(sandbox.active_revisions("web")) == 1
    assert sandbox.inbox()[0].payload["errorCode"] == "UnknownField"
