"""The pure core: every fixture through the fixer; copies valid per botocore, identical but for privileged."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from conftest import load_json, local_taskdefs, shared_taskdefs
from ecs_remediate.core.taskdef import (
    Document,
    TaskDefinitionError,
    build_fixed_copy,
    default_register_model,
    drop_nulls,
    family_and_revision,
    parse_document,
    privileged_containers,
)

MODEL = default_register_model()
ALL_FIXTURES = shared_taskdefs() + local_taskdefs()
VALID = [p for p in ALL_FIXTURES if "INVALID" not in p.name]


def expected_copy(document: Document) -> dict[str, Any]:
    """What the copy must be: the input members as they were, privileged true -> false, nothing else."""
    task_definition = drop_nulls(copy.deepcopy(document.task_definition))
    for container in task_definition["containerDefinitions"]:
        if container.get("privileged") is True:
            container["privileged"] = False
    return {k: v for k, v in task_definition.items() if k in MODEL.input_members}


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_fixture_copy_is_valid_and_identical_but_for_privileged(path: Path) -> None:
    document = parse_document(load_json(path))
    fix = build_fixed_copy(document, MODEL)

    MODEL.validate(fix.register_input if "family" in fix.register_input else {"family": "x", **fix.register_input})
    expected = expected_copy(document)
    got = {k: v for k, v in fix.register_input.items() if k != "tags"}
    assert got == expected
    assert privileged_containers(fix.register_input) == []
    assert fix.privileged == privileged_containers(document.task_definition)
    kept = [t for t in document.tags or [] if not t["key"].startswith("aws:")]
    assert fix.register_input.get("tags", []) == kept


def test_shared_fixtures_cover_the_documented_privileged_containers() -> None:
    found = {
        p.name: privileged_containers(parse_document(load_json(p)).task_definition)
        for p in shared_taskdefs()
        if "INVALID" not in p.name
    }
    assert found["sysdig-docs__ecs-on-ec2_kernel-module-driver.json"] == ["sysdig-agent", "sysdig-agent-kmodule"]
    assert found["newrelic-nri-ecs__task_definition_example.json"] == ["newrelic-infra"]
    assert found["aws-amazon-ecs-agent__appmesh-plugin-validator.json"] == ["app-mesh"]
    assert found["aws-amazon-ecs-agent__privileged.json"] == ["exit"]
    assert sum(1 for names in found.values() if names) == 4


def test_invalid_fixture_is_refused_naming_its_field() -> None:
    [invalid] = [p for p in shared_taskdefs() if "INVALID" in p.name]
    with pytest.raises(TaskDefinitionError) as error:
        build_fixed_copy(parse_document(load_json(invalid)), MODEL)
    assert error.value.field == "containerDefinitions[0].portBindings"
    assert "portBindings" in str(error.value)


def test_console_export_drops_nulls_output_members_and_reserved_tags() -> None:
    [path] = [p for p in local_taskdefs() if p.name.startswith("console-export")]
    fix = build_fixed_copy(parse_document(load_json(path)), MODEL, marker=("ecs-remediate:source-revision", "x:1"))
    params = fix.register_input
    for output_only in (
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "pidMode",
        "ipcMode",
    ):
        assert output_only not in params
    assert params["taskRoleArn"] == "arn:aws:iam::210987654321:role/payments-task"
    assert params["volumes"][1] == {
        "name": "scratch",
        "dockerVolumeConfiguration": {"scope": "task", "driver": "local"},
    }
    assert [c.get("privileged") for c in params["containerDefinitions"]] == [False, False, None]
    assert fix.privileged == ["log-router"]
    assert fix.dropped_tags == ["aws:cloudformation:stack-name"]
    assert params["tags"][-1] == {"key": "ecs-remediate:source-revision", "value": "x:1"}
    assert fix.marker_added


def test_container_array_keeps_order_and_every_field() -> None:
    [path] = [p for p in local_taskdefs() if p.name.startswith("terraform")]
    fix = build_fixed_copy(parse_document(load_json(path)), MODEL)
    containers = fix.register_input["containerDefinitions"]
    assert [c["name"] for c in containers] == ["dind", "runner"]
    assert containers[0] == {
        "name": "dind",
        "image": "docker:26-dind",
        "essential": True,
        "privileged": False,
        "memory": 1024,
        "environment": [{"name": "DOCKER_TLS_CERTDIR", "value": ""}],
    }
    assert "family" not in fix.register_input


def test_fifty_tags_leave_no_room_for_the_marker() -> None:
    tags = [{"key": f"k{i}", "value": str(i)} for i in range(50)]
    document = Document(
        "describe-response",
        {"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "memory": 8, "privileged": True}]},
        tags,
    )
    fix = build_fixed_copy(document, MODEL, marker=("ecs-remediate:source-revision", "f:1"))
    assert fix.register_input["tags"] == tags and not fix.marker_added


def test_marker_replaces_an_inherited_marker() -> None:
    tags = [{"key": "ecs-remediate:source-revision", "value": "f:1"}]
    document = Document(
        "describe-response",
        {"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "memory": 8, "privileged": True}]},
        tags,
    )
    fix = build_fixed_copy(document, MODEL, marker=("ecs-remediate:source-revision", "f:2"))
    assert fix.register_input["tags"] == [{"key": "ecs-remediate:source-revision", "value": "f:2"}]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"family": "f", "containerDefinitions": [{"name": "a", "image": "x"}], "futureField": 1}, "futureField"),
        (
            {"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "memory": "lots"}]},
            "containerDefinitions[0].memory",
        ),
        ({"containerDefinitions": [{"name": "a", "image": "x"}]}, "family"),
        (
            {
                "family": "f",
                "containerDefinitions": [{"name": "a", "image": "x"}],
                "tags": [{"key": "bad\nkey", "value": "v"}],
            },
            "tags",
        ),
        ({"family": "f", "containerDefinitions": "nope"}, "containerDefinitions"),
        ({"family": "f"}, "containerDefinitions"),
        (
            {"taskDefinition": {"family": "f", "containerDefinitions": [{"name": "a", "image": "x"}]}, "tags": "x"},
            "tags",
        ),
    ],
)
def test_invalid_inputs_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(TaskDefinitionError) as error:
        build_fixed_copy(parse_document(raw), MODEL)
    assert error.value.field == field


@pytest.mark.parametrize("raw", [[], [1, 2], "text", 3, None, {"containers": []}])
def test_non_task_definitions_are_refused(raw: Any) -> None:
    with pytest.raises(TaskDefinitionError):
        parse_document(raw)


def test_validation_errors_never_echo_values() -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    raw = {"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "memory": secret}]}
    with pytest.raises(TaskDefinitionError) as error:
        build_fixed_copy(parse_document(raw), MODEL)
    assert secret not in str(error.value)


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:ecs:us-east-1:123456789012:task-definition/web:1", ("web", 1)),
        ("arn:aws:ecs:eu-west-1:123456789012:task-definition/web_app-2:12", ("web_app-2", 12)),
        ("arn:aws-us-gov:ecs:us-gov-west-1:123456789012:task-definition/a:1000000", ("a", 1000000)),
        ("arn:aws-cn:ecs:cn-north-1:123456789012:task-definition/" + "f" * 255 + ":99", ("f" * 255, 99)),
    ],
)
def test_revision_arns_of_any_length(arn: str, expected: tuple[str, int]) -> None:
    assert family_and_revision(arn) == expected


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:ecs:us-east-1:123456789012:task-definition/web",
        "arn:aws:ecs:us-east-1:123:task-definition/web:1",
        "arn:aws:ecs:us-east-1:123456789012:task-definition/web:0",
        "web:1",
        "",
    ],
)
def test_malformed_revision_arns_are_refused(arn: str) -> None:
    with pytest.raises(TaskDefinitionError):
        family_and_revision(arn)


def test_unknown_output_members_are_found_at_any_depth() -> None:
    raw = {
        "family": "f",
        "revision": 1,
        "futureTop": True,
        "containerDefinitions": [
            {"name": "a", "image": "x", "linuxParameters": {"capabilities": {"add": [], "futureCap": 1}}}
        ],
        "volumes": [{"name": "v", "host": {"sourcePath": "/", "futureHost": "x"}}],
    }
    assert MODEL.unknown_output_members(raw) == [
        "futureTop",
        "containerDefinitions[0].linuxParameters.capabilities.futureCap",
        "volumes[0].host.futureHost",
    ]


def test_allow_list_comes_from_the_model() -> None:
    assert {"taskRoleArn", "volumes", "trustedExecutionConfiguration"} <= MODEL.input_members
    assert {"taskDefinitionArn", "revision", "status", "registeredAt"} <= MODEL.output_only_members
    assert MODEL.tag_limits.max_count == 50


@pytest.mark.parametrize("path", VALID[:8], ids=lambda p: p.name)
def test_the_copy_shares_no_mutable_part_with_the_source(path: Path) -> None:
    """The copy is built by our own JSON copy (not copy.deepcopy): changing every list and dict of it in place
    leaves the described revision as it was."""
    document = parse_document(load_json(path))
    before = copy.deepcopy(document.task_definition)
    fix = build_fixed_copy(document, MODEL)

    def scribble(value: Any) -> None:
        if isinstance(value, dict):
            for item in list(value.values()):
                scribble(item)
            value["scribbled"] = True
        elif isinstance(value, list):
            for item in list(value):
                scribble(item)
            value.append("scribbled")

    scribble(fix.register_input)
    assert document.task_definition == before
