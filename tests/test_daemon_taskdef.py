"""The pure core on daemon task definitions (ECS Managed Daemons): the shared fixtures and generated documents give
one copy each, valid per botocore's RegisterDaemonTaskDefinition model and identical but for `privileged`; unknown
members are refused by name; daemon documents are told apart from task definitions by their shape."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from botocore.validate import ParamValidator
from daemon_strategies import DAEMON_MODEL, daemon_documents, daemon_register_inputs
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import FUZZ, json_values, record, scaled

from conftest import SHARED_FIXTURES, load_json, local_taskdefs, shared_taskdefs
from ecs_remediate.core.taskdef import (
    Document,
    TaskDefinitionError,
    build_fixed_copy,
    daemon_family_and_revision,
    default_register_model,
    drop_nulls,
    looks_like_daemon,
    model_for,
    parse_document,
    privileged_containers,
)

DAEMON_FIXTURES = sorted((SHARED_FIXTURES / "daemons").glob("*.json"))
MARKER = ("ecs-remediate:source-revision", "security-sensor:3")
COUNTS: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def figures() -> Any:
    yield
    record("fuzz_daemon_taskdef", **COUNTS)


def unprivileged(params: dict[str, Any]) -> dict[str, Any]:
    expected = copy.deepcopy(params)
    for container in expected["containerDefinitions"]:
        if container.get("privileged") is True:
            container["privileged"] = False
    return expected


def test_the_model_is_read_from_botocore() -> None:
    ecs = DAEMON_MODEL.service_model
    assert DAEMON_MODEL.input_members == frozenset(
        ecs.operation_model("RegisterDaemonTaskDefinition").input_shape.members
    )
    assert DAEMON_MODEL.output_only_members == {
        "daemonTaskDefinitionArn",
        "revision",
        "status",
        "registeredAt",
        "registeredBy",
        "deleteRequestedAt",
    }
    assert "networkMode" not in DAEMON_MODEL.input_members and "tags" in DAEMON_MODEL.input_members
    assert (DAEMON_MODEL.tag_limits.max_count, DAEMON_MODEL.tag_limits.max_key_length) == (50, 128)
    assert (DAEMON_MODEL.describe_member, DAEMON_MODEL.arn_member) == (
        "daemonTaskDefinition",
        "daemonTaskDefinitionArn",
    )
    assert DAEMON_MODEL.is_daemon and not default_register_model().is_daemon


@pytest.mark.parametrize("path", DAEMON_FIXTURES, ids=lambda p: p.name)
def test_shared_fixture_copy_is_valid_and_identical_but_for_privileged(path: Path) -> None:
    raw = load_json(path)
    document = parse_document(raw)
    assert document.is_daemon and model_for(document) is DAEMON_MODEL
    fix = build_fixed_copy(document, DAEMON_MODEL)
    DAEMON_MODEL.validate(fix.register_input)
    source = drop_nulls(raw.get("daemonTaskDefinition", raw))
    expected = unprivileged({k: v for k, v in source.items() if k in DAEMON_MODEL.input_members})
    assert fix.register_input == expected
    assert privileged_containers(fix.register_input) == []


def test_shared_fixtures_are_the_documented_ones() -> None:
    found = {p.name: parse_document(load_json(p)) for p in DAEMON_FIXTURES}
    sensor = found["crafted__security-sensor_privileged_register-input.json"]
    log_router = found["crafted__log-router_compliant_describe-response.json"]
    assert (sensor.kind, log_router.kind) == ("daemon-task-definition", "daemon-describe-response")
    assert privileged_containers(sensor.task_definition) == ["init-container", "sensor"]
    assert privileged_containers(log_router.task_definition) == []
    assert sensor.tags == [{"key": "team", "value": "secops"}, {"key": "cost-center", "value": "42"}]
    assert log_router.tags is None  # DescribeDaemonTaskDefinition returns no tags
    fix = build_fixed_copy(sensor, DAEMON_MODEL, marker=MARKER)
    assert fix.register_input["tags"][-1] == {"key": MARKER[0], "value": MARKER[1]} and fix.marker_added


@pytest.mark.parametrize(
    "path", [p for p in shared_taskdefs() + local_taskdefs() if "INVALID" not in p.name], ids=lambda p: p.name
)
def test_task_definitions_stay_task_definitions(path: Path) -> None:
    document = parse_document(load_json(path))
    assert not document.is_daemon and model_for(document) is default_register_model()


@pytest.mark.slow  # 1,500 generated documents
@settings(FUZZ, max_examples=scaled(1500))
@given(case=daemon_documents(), with_marker=st.booleans())
def test_generated_documents_give_one_valid_copy_identical_but_for_privileged(case: Any, with_marker: bool) -> None:
    kind, raw, params, tags = case
    COUNTS["daemon_documents"] = COUNTS.get("daemon_documents", 0) + 1
    document = parse_document(raw)
    assert (document.kind, document.tags) == (kind, tags)
    fix = build_fixed_copy(document, model_for(document), MARKER if with_marker else None)
    assert not ParamValidator().validate(fix.register_input, DAEMON_MODEL.input_shape).has_errors()
    expected = unprivileged({k: v for k, v in params.items() if k != "tags"})
    kept = [t for t in tags or [] if not with_marker or t["key"] != MARKER[0]]
    if with_marker and len(kept) < 50:
        kept.append({"key": MARKER[0], "value": MARKER[1]})
    if kept:
        expected["tags"] = kept
    assert fix.register_input == expected
    assert fix.privileged == privileged_containers(params)
    assert privileged_containers(fix.register_input) == []
    linux = [c["linuxParameters"] for c in params["containerDefinitions"]]
    assert all(set(p) == {"capabilities", "devices", "initProcessEnabled", "tmpfs"} for p in linux)
    if len(params["containerDefinitions"]) == 10:
        COUNTS["daemon_10_containers"] = COUNTS.get("daemon_10_containers", 0) + 1
    if "shared" in (params.get("pidMode"), params.get("ipcMode")):
        COUNTS["daemon_shared_namespaces"] = COUNTS.get("daemon_shared_namespaces", 0) + 1


@st.composite
def with_unknown_member(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    params = draw(daemon_register_inputs(max_containers=3))
    params["pidMode"] = "shared"
    where = draw(st.sampled_from(["top", "container", "linuxParameters", "task-only-top", "task-only-container"]))
    value = draw(json_values.filter(lambda v: v is not None))
    index = draw(st.integers(0, len(params["containerDefinitions"]) - 1))
    container = params["containerDefinitions"][index]
    if where == "top":
        params["futureField"] = value
        return params, "futureField"
    if where == "task-only-top":  # a task definition member the daemon API does not take
        params["networkMode"] = "host"
        return params, "networkMode"
    if where == "task-only-container":
        container["portMappings"] = [{"containerPort": 80}]
        return params, f"containerDefinitions[{index}].portMappings"
    if where == "container":
        container["futureField"] = value
        return params, f"containerDefinitions[{index}].futureField"
    container["linuxParameters"]["futureField"] = value
    return params, f"containerDefinitions[{index}].linuxParameters.futureField"


@settings(FUZZ, max_examples=scaled(300))
@given(case=with_unknown_member())
def test_a_member_the_daemon_model_does_not_know_is_refused_by_name(case: tuple[dict[str, Any], str]) -> None:
    params, path = case
    document = parse_document(params)
    assert document.is_daemon
    with pytest.raises(TaskDefinitionError) as error:
        build_fixed_copy(document, DAEMON_MODEL)
    assert error.value.field is not None
    assert error.value.field == path or error.value.field.endswith(path.rsplit(".", 1)[-1]), (error.value.field, path)


def test_unknown_output_members_are_found_in_a_raw_describe_body() -> None:
    body = load_json(SHARED_FIXTURES / "daemons" / "crafted__log-router_compliant_describe-response.json")
    definition = body["daemonTaskDefinition"]
    assert DAEMON_MODEL.unknown_output_members(definition) == []
    definition["futureTop"] = 1
    definition["containerDefinitions"][0]["linuxParameters"] = {"capabilities": {"add": [], "futureCap": 1}}
    definition["volumes"][0]["host"]["futureHost"] = "x"
    assert sorted(DAEMON_MODEL.unknown_output_members(definition)) == [
        "containerDefinitions[0].linuxParameters.capabilities.futureCap",
        "futureTop",
        "volumes[0].host.futureHost",
    ]


@pytest.mark.parametrize(
    ("definition", "daemon"),
    [
        ({"family": "f", "containerDefinitions": [], "pidMode": "shared"}, True),
        ({"family": "f", "containerDefinitions": [], "ipcMode": "shared"}, True),
        ({"family": "f", "containerDefinitions": [], "pidMode": "none"}, True),
        (
            {"family": "f", "containerDefinitions": [], "volumes": [{"name": "v", "logDriverVolumeConfiguration": {}}]},
            True,
        ),
        ({"family": "f", "containerDefinitions": [], "daemonTaskDefinitionArn": "x"}, True),
        ({"family": "f", "containerDefinitions": [], "ipcMode": "none"}, False),  # task definitions take it too
        ({"family": "f", "containerDefinitions": [], "pidMode": "host"}, False),
        ({"family": "f", "containerDefinitions": [], "taskDefinitionArn": "x", "pidMode": "shared"}, False),
        ({"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "privileged": True}]}, False),
    ],
)
def test_daemon_documents_are_told_apart_by_shape(definition: dict[str, Any], daemon: bool) -> None:
    assert looks_like_daemon(definition) is daemon


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"taskDefinition": {"containerDefinitions": []}, "daemonTaskDefinition": {"containerDefinitions": []}}, None),
        ({"containerDefinitions": [], "taskDefinitionArn": "a", "daemonTaskDefinitionArn": "b"}, None),
        ({"daemonTaskDefinition": {"family": "f", "containerDefinitions": "x"}}, "containerDefinitions"),
        ({"daemonTaskDefinition": {"family": "f", "containerDefinitions": []}, "tags": "x"}, "tags"),
    ],
)
def test_ambiguous_or_broken_daemon_documents_are_refused(raw: Any, field: str | None) -> None:
    with pytest.raises(TaskDefinitionError) as error:
        document = parse_document(raw)
        build_fixed_copy(document, model_for(document))
    assert field is None or error.value.field == field


def test_a_document_is_never_copied_with_the_other_model() -> None:
    daemon = Document("daemon-task-definition", {"family": "f", "containerDefinitions": []}, None)
    with pytest.raises(TaskDefinitionError, match="cannot be copied with the RegisterTaskDefinition model"):
        build_fixed_copy(daemon, default_register_model())
    task = Document("task-definition", {"family": "f", "containerDefinitions": []}, None)
    with pytest.raises(TaskDefinitionError, match="RegisterDaemonTaskDefinition model"):
        build_fixed_copy(task, DAEMON_MODEL)


def test_daemon_revision_arns() -> None:
    arn = "arn:aws:ecs:eu-west-1:123456789012:daemon-task-definition/security-sensor:1234"
    assert daemon_family_and_revision(arn) == ("security-sensor", 1234)
    for bad in (
        "arn:aws:ecs:eu-west-1:123456789012:task-definition/security-sensor:1",
        "arn:aws:ecs:eu-west-1:123456789012:daemon-task-definition/security-sensor",
        arn + "\n",
    ):
        with pytest.raises(TaskDefinitionError):
            daemon_family_and_revision(bad)
