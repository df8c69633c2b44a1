"""The remediation rule's event pattern, as synthesized, run through an EventBridge-faithful engine.

The pattern is read from the synthesized template (demo.synthesized.synthesized_rule_pattern), never
copied; matching uses LocalStack's rule engine, which implements EventBridge's array semantics.
Goal: the function is invoked for every successful registration with a privileged container (whoever made
it, CloudFormation included) and for registrations whose event carries no request parameters, and for
nothing else: zero invocations for compliant registrations, the remediation's own copy included.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from demo.synthesized import synthesized_rule_pattern
from ecs_remediate.core.taskdef import build_fixed_copy, default_register_model, parse_document, privileged_containers
from emulators.eventbridge import matches

EVENTS = Path(__file__).resolve().parent / "fixtures" / "events"
SHARED_TASKDEFS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "taskdefs"
LOCAL_TASKDEFS = Path(__file__).resolve().parent / "fixtures" / "taskdefs"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return data


def envelope(detail: dict[str, Any], source: str = "aws.ecs", detail_type: str = "AWS API Call via CloudTrail"):
    """A CloudTrail record as EventBridge delivers it."""
    return {
        "version": "0",
        "id": "00000000-0000-4000-8000-000000000000",
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2024-05-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


BASE = load("SYNTHETIC__eventbridge_RegisterTaskDefinition_privileged.json")


def registration(containers: list[dict[str, Any]], **detail_changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(BASE)
    event["detail"]["requestParameters"]["containerDefinitions"] = containers
    event["detail"].update(detail_changes)
    return event


def container(name: str, privileged: bool | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": "busybox", "memory": 64}
    if privileged is not None:
        c["privileged"] = privileged
    return c


@pytest.fixture(scope="module")
def pattern() -> dict[str, Any]:
    return synthesized_rule_pattern()


# --- fixture events ---

FIXTURE_EXPECTATIONS = {
    "SYNTHETIC__eventbridge_RegisterTaskDefinition_privileged.json": True,
    "cloudformation__RegisterTaskDefinition_privileged-last-container.json": True,
    "RegisterTaskDefinition_without-requestParameters.json": True,
    "RegisterTaskDefinition_requestParameters-null.json": True,
    "RegisterTaskDefinition_requestParameters-truncated.json": True,
    "cloudformation__RegisterTaskDefinition_compliant.json": False,
    "ecs-remediate__RegisterTaskDefinition_own-fixed-copy.json": False,
    "RegisterTaskDefinition_privileged_failed-ClientException.json": False,
    "powertools-tests__eventbridge_cloudtrail_s3_HeadObject_envelope.json": False,
}


@pytest.mark.parametrize(("name", "expected"), sorted(FIXTURE_EXPECTATIONS.items()))
def test_fixture_events(pattern: dict[str, Any], name: str, expected: bool) -> None:
    assert matches(pattern, load(name)) is expected


def test_every_enveloped_fixture_has_an_expectation() -> None:
    enveloped = {p.name for p in EVENTS.glob("*.json") if "detail-type" in json.loads(p.read_text())}
    assert enveloped == set(FIXTURE_EXPECTATIONS)


def test_ecs_devguide_record_other_event_name(pattern: dict[str, Any]) -> None:
    """The ECS developer guide's CloudTrail record (CreateCluster), delivered by EventBridge."""
    assert not matches(pattern, envelope(load("aws-ecs-devguide__cloudtrail_CreateCluster.json")))


def test_cloudtrail_userguide_failed_call_record(pattern: dict[str, Any]) -> None:
    record = load("aws-cloudtrail-userguide__error-code-and-message_UpdateTrail.json")["Records"][0]
    assert not matches(pattern, envelope(record, source="aws.cloudtrail"))
    # Its failure shape (top-level errorCode, responseElements null) on a privileged registration.
    failed = registration([container("app", True)], errorCode=record["errorCode"], errorMessage="x")
    failed["detail"]["responseElements"] = None
    assert not matches(pattern, failed)


def test_real_attacker_request_parameters(pattern: dict[str, Any]) -> None:
    """Datadog's redacted cryptomining RegisterTaskDefinition: not privileged, then made privileged."""
    detail = copy.deepcopy(BASE["detail"])
    detail.update(load("datadog-securitylabs__ecs-cryptomining_RegisterTaskDefinition_REDACTED-excerpt.json"))
    assert not matches(pattern, envelope(detail))
    detail["requestParameters"]["containerDefinitions"][0]["privileged"] = True
    assert matches(pattern, envelope(detail))


# --- where the privileged container is ---


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([True], True),
        ([True, None, None], True),  # first
        ([None, True, None], True),  # middle
        ([False, None, False, True], True),  # last
        ([True, True], True),
        ([None], False),
        ([False], False),
        ([None, False, None], False),
        ([False] * 10, False),
    ],
    ids=lambda v: "-".join(map(str, v)) if isinstance(v, list) else str(v),
)
def test_position_of_privileged_container(pattern: dict[str, Any], flags: list[bool | None], expected: bool) -> None:
    containers = [container(f"c{i}", flag) for i, flag in enumerate(flags)]
    assert matches(pattern, registration(containers)) is expected


def test_privileged_as_string_is_not_a_registration(pattern: dict[str, Any]) -> None:
    """ECS rejects a non-boolean privileged; such an event could only come from a failed call."""
    assert not matches(pattern, registration([{"name": "a", "privileged": "true"}]))


# --- calls that must not invoke ---


@pytest.mark.parametrize("error_code", ["ClientException", "AccessDenied", "ThrottlingException", ""])
def test_failed_calls(pattern: dict[str, Any], error_code: str) -> None:
    """Any errorCode, even an empty string, means the call failed: nothing was registered."""
    event = registration([container("app", True)], errorCode=error_code)
    event["detail"]["responseElements"] = None
    assert not matches(pattern, event)


@pytest.mark.parametrize(
    "event_name",
    [
        "DeregisterTaskDefinition",
        "DescribeTaskDefinition",
        "DeleteTaskDefinitions",
        "RunTask",
        "CreateService",
        "UpdateService",
        "TagResource",
        "registertaskdefinition",
    ],
)
def test_other_event_names(pattern: dict[str, Any], event_name: str) -> None:
    assert not matches(pattern, registration([container("app", True)], eventName=event_name))


@pytest.mark.parametrize(
    ("source", "detail_type", "event_source"),
    [
        ("aws.ec2", "AWS API Call via CloudTrail", "ecs.amazonaws.com"),
        ("aws.ecs", "ECS Task State Change", "ecs.amazonaws.com"),
        ("aws.ecs", "AWS Service Event via CloudTrail", "ecs.amazonaws.com"),
        ("aws.ecs", "AWS Console Action via CloudTrail", "ecs.amazonaws.com"),
        ("aws.ecs", "AWS API Call via CloudTrail", "ec2.amazonaws.com"),
        ("custom.app", "AWS API Call via CloudTrail", "ecs.amazonaws.com"),
    ],
)
def test_other_sources_and_detail_types(
    pattern: dict[str, Any], source: str, detail_type: str, event_source: str
) -> None:
    event = registration([container("app", True)], eventSource=event_source)
    event["source"], event["detail-type"] = source, detail_type
    assert not matches(pattern, event)


# --- CloudFormation ---


@pytest.mark.parametrize(("flags", "expected"), [([None, True], True), ([True, None], True), ([None, False], False)])
def test_cloudformation_registrations(pattern: dict[str, Any], flags: list[bool | None], expected: bool) -> None:
    """Registrations made by CloudFormation are matched on content like any other (no exclusion by caller)."""
    event = load("cloudformation__RegisterTaskDefinition_compliant.json")
    event["detail"]["requestParameters"]["containerDefinitions"] = [
        container(f"c{i}", flag) for i, flag in enumerate(flags)
    ]
    assert event["detail"]["userIdentity"]["invokedBy"] == "cloudformation.amazonaws.com"
    assert event["detail"]["sourceIPAddress"] == "cloudformation.amazonaws.com"
    assert matches(pattern, event) is expected


# --- the function's own registrations and real task definitions ---


def _taskdef_files() -> list[Path]:
    return sorted(p for d in (SHARED_TASKDEFS, LOCAL_TASKDEFS) if d.is_dir() for p in d.glob("*.json"))


def _register_input(path: Path) -> dict[str, Any] | None:
    try:
        document = parse_document(json.loads(path.read_text(encoding="utf-8")))
        return _with_family(
            build_fixed_copy(document, default_register_model()).register_input
            | {"containerDefinitions": document.task_definition["containerDefinitions"]}
        )
    except Exception:  # noqa: BLE001 - fixtures invalid on purpose are simply not registrations
        return None


def _with_family(params: dict[str, Any]) -> dict[str, Any]:
    """A bare containerDefinitions fixture has no family; every real RegisterTaskDefinition request has one."""
    return {"family": "fixture", **params}


@pytest.mark.parametrize("path", _taskdef_files(), ids=lambda p: p.stem)
def test_task_definition_fixtures_and_their_fixed_copies(pattern: dict[str, Any], path: Path) -> None:
    """Each fixture as registered matches iff it has a privileged container; its fixed copy never does."""
    original = _register_input(path)
    if original is None:
        pytest.skip(f"{path.name} is not a valid RegisterTaskDefinition input (on purpose)")
    privileged = bool(privileged_containers(original))
    assert matches(pattern, envelope({**BASE["detail"], "requestParameters": original})) is privileged
    document = parse_document(json.loads(path.read_text(encoding="utf-8")))
    fixed = build_fixed_copy(document, default_register_model(), marker=("ecs-remediate:source-revision", "x"))
    assert not matches(pattern, envelope({**BASE["detail"], "requestParameters": _with_family(fixed.register_input)}))


def test_there_are_privileged_and_compliant_task_definition_fixtures() -> None:
    inputs = [i for i in map(_register_input, _taskdef_files()) if i is not None]
    if not inputs:
        pytest.skip("no task definition fixtures in this checkout")
    assert any(privileged_containers(i) for i in inputs)
    assert not all(privileged_containers(i) for i in inputs)


def test_a_stream_of_registrations_invokes_only_for_the_privileged(pattern: dict[str, Any]) -> None:
    """A privileged registration followed by the remediation's copy: exactly one invocation."""
    stream = [
        load("SYNTHETIC__eventbridge_RegisterTaskDefinition_privileged.json"),
        load("ecs-remediate__RegisterTaskDefinition_own-fixed-copy.json"),
        load("cloudformation__RegisterTaskDefinition_compliant.json"),
        registration([container("a", False), container("b")]),
    ]
    assert [matches(pattern, e) for e in stream] == [True, False, False, False]


# --- the missing-requestParameters branch is a leaf test, not a catch-all ----------------------------------


def test_requestparameters_without_family_invokes(pattern: dict[str, Any]) -> None:
    """A request that somehow lacks `family` is handed to the function (which describes the revision)."""
    event = copy.deepcopy(BASE)
    del event["detail"]["requestParameters"]["family"]
    event["detail"]["requestParameters"]["containerDefinitions"][0]["privileged"] = False
    assert matches(pattern, event)


# --- CloudTrail truncation: a registration that lost its container list still reaches the function --------------
#
# "CloudTrail truncates a field if the field's contents exceeds the maximum field size. If a field is truncated,
# `omitted` is present with a value of `true`" (CloudTrail record contents; requestParameters: 100 KB). Where the
# marker sits is not documented: each placement below is a shape the rule must match.

TRUNCATIONS = ("family-kept", "all-cut", "list-replaced", "marker-on-record")


def truncate(event: dict[str, Any], shape: str, *, response_cut: bool = False) -> dict[str, Any]:
    """`event` as CloudTrail records it when its request is over the field size, in one of TRUNCATIONS."""
    event = copy.deepcopy(event)
    detail = event["detail"]
    request = detail["requestParameters"]
    if shape == "family-kept":
        detail["requestParameters"] = {"family": request["family"], "omitted": True}
    elif shape == "all-cut":
        detail["requestParameters"] = {"omitted": True}
    elif shape == "list-replaced":
        request["containerDefinitions"] = {"omitted": True}
    else:
        del request["containerDefinitions"]
        detail["omitted"] = True
    if response_cut:  # the response holds the whole task definition: it is cut too
        detail["responseElements"] = {"omitted": True}
    return event


@pytest.mark.parametrize("response_cut", [False, True], ids=["response-kept", "response-cut"])
@pytest.mark.parametrize("shape", TRUNCATIONS)
@pytest.mark.parametrize("flags", [[None], [False, None], [None, True]], ids=["compliant", "compliant2", "privileged"])
def test_truncated_registrations_invoke_whatever_they_were(
    pattern: dict[str, Any], shape: str, response_cut: bool, flags: list[bool | None]
) -> None:
    """The container list is gone: nothing tells a privileged registration from a compliant one, so both invoke (the
    function describes the revision and judges what ECS holds)."""
    event = registration([container(f"c{i}", flag) for i, flag in enumerate(flags)])
    assert matches(pattern, event) is (True in flags)  # complete: only the privileged one
    assert matches(pattern, truncate(event, shape, response_cut=response_cut))


@pytest.mark.parametrize("shape", TRUNCATIONS)
def test_truncated_calls_that_failed_do_not_invoke(pattern: dict[str, Any], shape: str) -> None:
    event = truncate(registration([container("app", True)]), shape)
    event["detail"].update(errorCode="ClientException", errorMessage="x", responseElements=None)
    assert not matches(pattern, event)


def test_complete_registrations_are_not_mistaken_for_truncated(pattern: dict[str, Any]) -> None:
    """A large but complete compliant request (a hundred containers, long environments), the function's own copy of
    it, and one whose `omitted` is false: no invocation."""
    environment = [{"name": f"K{j}", "value": "v" * 200} for j in range(5)]
    containers = [{**container(f"c{i}", False if i % 2 else None), "environment": environment} for i in range(100)]
    assert not matches(pattern, registration(containers))
    assert not matches(pattern, registration(containers, omitted=False))
    assert not matches(pattern, load("ecs-remediate__RegisterTaskDefinition_own-fixed-copy.json"))


def test_pattern_shape(pattern: dict[str, Any]) -> None:
    assert pattern["source"] == ["aws.ecs"]
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    detail = pattern["detail"]
    assert detail["eventSource"] == ["ecs.amazonaws.com"]
    assert detail["eventName"] == ["RegisterTaskDefinition"]
    assert detail["errorCode"] == [{"exists": False}]
    assert {"requestParameters": {"containerDefinitions": {"privileged": [True]}}} in detail["$or"]
