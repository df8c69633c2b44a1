"""The pure parts of the Config plan: the queries, the reading of Config's records back into the API's shape (so the
judge reads a record as it reads a describe), what makes a record unusable, the outcome's text; and its settings in
the CLI, the schedule (IAM) and the sweep notice."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from app import SKIP_BUNDLING, build_app, stack_of
from ecs_remediate.cli import inventory as cli_inventory
from ecs_remediate.core.policy import host_equivalent_texts
from ecs_remediate.core.taskdef import (
    TaskDefinitionError,
    default_register_model,
    parse_document,
    privileged_containers,
)
from ecs_remediate.sweep.config_queries import (
    ConfigSource,
    InventoryError,
    from_config_shape,
    inventory_query,
    parse_arn,
    parse_record,
    privileged_query,
)
from ecs_remediate.sweep.inventory import InventoryOutcome
from ecs_remediate.sweep.notice import build_sweep_summary
from emulators.config_queries import to_config_shape
from infra.settings import ContextError
from infra.sweep_schedule import SweepSettings
from tests.conftest import load_json, local_taskdefs, shared_taskdefs

SHAPE = default_register_model().output_shape
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3"
# Config's resource schema (awslabs/aws-config-resource-schema, AWS::ECS::TaskDefinition) lists these properties; the
# judge reads each of them from a record, so each must be what from_config_shape maps to the API's member.
JUDGED_PROPERTIES = {
    "configuration.ContainerDefinitions.Privileged": ("containerDefinitions", "privileged"),
    "configuration.ContainerDefinitions.Name": ("containerDefinitions", "name"),
    "configuration.ContainerDefinitions.LinuxParameters.Capabilities.Add": (
        "containerDefinitions",
        "linuxParameters",
        "capabilities",
        "add",
    ),
    "configuration.ContainerDefinitions.LinuxParameters.Capabilities.Drop": (
        "containerDefinitions",
        "linuxParameters",
        "capabilities",
        "drop",
    ),
    "configuration.ContainerDefinitions.LinuxParameters.Devices.HostPath": (
        "containerDefinitions",
        "linuxParameters",
        "devices",
        "hostPath",
    ),
    "configuration.ContainerDefinitions.MountPoints.SourceVolume": (
        "containerDefinitions",
        "mountPoints",
        "sourceVolume",
    ),
    "configuration.ContainerDefinitions.MountPoints.ReadOnly": ("containerDefinitions", "mountPoints", "readOnly"),
    "configuration.ContainerDefinitions.VolumesFrom.SourceContainer": (
        "containerDefinitions",
        "volumesFrom",
        "sourceContainer",
    ),
    "configuration.ContainerDefinitions.VolumesFrom.ReadOnly": ("containerDefinitions", "volumesFrom", "readOnly"),
    "configuration.Volumes.Name": ("volumes", "name"),
    "configuration.Volumes.Host.SourcePath": ("volumes", "host", "sourcePath"),
    "configuration.Volumes.DockerVolumeConfiguration.Driver": ("volumes", "dockerVolumeConfiguration", "driver"),
    "configuration.PidMode": ("pidMode",),
    "configuration.IpcMode": ("ipcMode",),
    "configuration.NetworkMode": ("networkMode",),
    "configuration.Family": ("family",),
    "configuration.TaskDefinitionArn": ("taskDefinitionArn",),
}


LISTS = {"ContainerDefinitions", "Volumes", "MountPoints", "VolumesFrom", "Devices"}


def record_text(configuration: dict[str, Any] | None = None, arn: str = ARN, **extra: Any) -> str:
    base = {
        "TaskDefinitionArn": arn,
        "Family": "web",
        "ContainerDefinitions": [{"Name": "app", "Image": "nginx", "Privileged": False}],
    }
    return json.dumps({"arn": arn, "configuration": configuration or base, "tags": [], **extra})


def test_queries_are_exactly_the_two_forms() -> None:
    recorder = ConfigSource()
    assert privileged_query(recorder, "us-east-1") == (
        "SELECT arn WHERE resourceType = 'AWS::ECS::TaskDefinition' "
        "AND configuration.ContainerDefinitions.Privileged = true"
    )
    assert inventory_query(recorder, "us-east-1") == (
        "SELECT arn, configuration, tags WHERE resourceType = 'AWS::ECS::TaskDefinition'"
    )
    hub = ConfigSource("org-aggregator", account="210987654321")
    assert inventory_query(hub, "eu-west-1").endswith("AND accountId = '210987654321' AND awsRegion = 'eu-west-1'")
    with pytest.raises(InventoryError):
        inventory_query(hub, "eu-west-1' OR resourceType = 'AWS::IAM::Role")  # nothing but a Region goes in


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"aggregator": "org'--", "account": "210987654321"}, "aggregator name"),
        ({"aggregator": "org"}, "12-digit ID"),
        ({"aggregator": "org", "account": "2109"}, "12-digit ID"),
        ({"aggregator": "org", "account": "210987654321", "aggregator_region": "moon"}, "Region"),
    ],
)
def test_bad_sources_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        ConfigSource(**kwargs)


def test_each_judged_property_is_read_back_to_the_api_member() -> None:
    for prop, path in JUDGED_PROPERTIES.items():
        names = prop.split(".")[1:]
        value: Any = "x"
        for name in reversed(names):  # {"ContainerDefinitions": [{"LinuxParameters": {...}}]}
            value = {name: [value] if name in LISTS else value}
        read: Any = from_config_shape(value, SHAPE)
        for member in path:
            read = read[0] if isinstance(read, list) else read
            read = read[member]
        assert read in ("x", ["x"]), prop


@pytest.mark.parametrize("path", shared_taskdefs() + local_taskdefs(), ids=lambda p: p.name)
def test_a_record_judges_as_its_describe(path: Path) -> None:
    """Every fixture task definition, recorded as Config records it and read back: the same privileged containers
    and host equivalents as the original."""
    try:
        document = parse_document(load_json(path))
    except TaskDefinitionError:
        pytest.skip("not a task definition")
    if document.is_daemon:
        pytest.skip("daemon task definitions are not AWS::ECS::TaskDefinition")
    original = {**document.task_definition, "taskDefinitionArn": ARN, "family": "web"}
    recorded = to_config_shape(original, SHAPE)
    read = from_config_shape(recorded, SHAPE)
    assert privileged_containers(read) == privileged_containers(original)
    assert host_equivalent_texts(read) == host_equivalent_texts(original)


def test_records_that_cannot_vouch_say_why() -> None:
    good = parse_record(record_text(), SHAPE)
    assert (
        good is not None and good.problem is None and good.task_definition["containerDefinitions"][0]["name"] == "app"
    )
    cases = {
        json.dumps({"arn": ARN, "tags": []}): "no configuration",
        json.dumps(
            {"arn": ARN, "configuration": {"TaskDefinitionArn": ARN.replace(":3", ":4")}}
        ): "not that of this ARN",
        record_text({"TaskDefinitionArn": ARN, "Family": "api", "ContainerDefinitions": [{"Name": "a"}]}): "family",
        record_text({"TaskDefinitionArn": ARN, "Family": "web", "ContainerDefinitions": []}): "container definitions",
        record_text(
            {"TaskDefinitionArn": ARN, "Family": "web", "ContainerDefinitions": [{"Name": "a", "Privileged": "true"}]}
        ): "not a boolean",
        record_text(tags="team=infra"): "tags in an unknown form",
    }
    for text, why in cases.items():
        record = parse_record(text, SHAPE)
        assert record is not None and record.problem is not None and why in record.problem, (text, record)
    for junk in ("not json", json.dumps({"arn": "arn:aws:s3:::bucket"}), json.dumps([1]), "x" * (2 << 20)):
        assert parse_record(junk, SHAPE) is None and parse_arn(junk) is None
    mapped = parse_record(record_text(tags={"team": "infra"}), SHAPE)
    assert mapped is not None and mapped.tags == [{"key": "team", "value": "infra"}]


def test_outcome_text() -> None:
    outcome = InventoryOutcome("us-east-1", "the account's recorder", listed=10, from_config=7, privileged=2, unknown=1)
    assert outcome.text() == (
        "us-east-1: AWS Config (the account's recorder): 7 of 10 revision(s) judged PASS from Config's records; "
        "3 described (2 privileged per Config, 1 Config has no record of)"
    )
    outcome.fallback = "AWS Config failed (AccessDeniedException: no)"
    assert outcome.text().endswith("AccessDeniedException: no); 3 of 10 revision(s) described")


def test_cli_options() -> None:
    parser = argparse.ArgumentParser()
    cli_inventory.add_arguments(parser)
    assert cli_inventory.options(parser.parse_args([]), ()) == {"inventory": "describe", "config_source": None}
    args = parser.parse_args(["--inventory", "config", "--config-aggregator", "org"])
    caller = ("arn:aws:sts::210987654321:assumed-role/Audit/me",)
    assert cli_inventory.options(args, caller)["config_source"] == ConfigSource("org", account="210987654321")
    with pytest.raises(InventoryError):
        cli_inventory.options(args, ())  # the caller's account is unknown
    with pytest.raises(InventoryError):
        cli_inventory.options(parser.parse_args(["--config-aggregator-region", "us-east-1"]), caller)


def test_sweep_notice_says_what_config_did() -> None:
    line = "us-east-1: AWS Config (the account's recorder): AWS Config failed (AccessDeniedException: no)"
    message = build_sweep_summary(
        region="us-east-1",
        scope="active",
        mode="report",
        counts={"PASS": 3},
        open_rows=[],
        remediated_rows=[],
        seconds=1.0,
        inventory=[line],
        inventory_fallback=True,
    )
    assert f"AWS Config:      {line}" in message.text
    assert "AWS Config not used" in message.subject
    assert message.payload["inventory"] == [line]


def statements(context: dict[str, Any], tmp: Path) -> dict[str, Any]:
    template = Template.from_stack(stack_of(build_app({**SKIP_BUNDLING, **context}, outdir=str(tmp)))).to_json()
    found: dict[str, Any] = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                for action in [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]:
                    found[action] = statement
        if resource["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in resource["Properties"]:
            found["input"] = json.loads(resource["Properties"]["Targets"][0]["Input"])
    return found


def test_the_schedule_grants_config_queries_only_when_asked(tmp_path: Path) -> None:
    default = statements({}, tmp_path / "default")
    assert "config:SelectResourceConfig" not in default and default["input"] == {"scope": "active"}
    asked = statements({"sweepInventory": "config"}, tmp_path / "config")
    assert asked["config:SelectResourceConfig"]["Resource"] == "*"  # the action takes no narrower resource
    assert asked["input"] == {"scope": "active", "inventory": "config"}
    assert not any(a.startswith("config:") and a != "config:SelectResourceConfig" for a in asked)
    assert SweepSettings.from_context({"sweepInventory": "auto", "sweepScope": "latest"}.get).inventory == "auto"
    for context, message in (
        ({"sweepInventory": "fast"}, "sweepInventory: inventory: expected one of describe, config, auto"),
        ({"sweepInventory": "config", "sweepScope": "latest"}, "sweepInventory: inventory config needs the active"),
    ):
        with pytest.raises(ContextError, match=message):
            SweepSettings.from_context(context.get)


def test_config_query_policies_are_nag_clean_and_the_aggregator_one_is_narrow(tmp_path: Path) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from aws_cdk.assertions import Annotations, Match

    from infra.config_queries import config_query_policy

    stack = stack_of(build_app({**SKIP_BUNDLING, "sweepInventory": "auto"}, outdir=str(tmp_path / "auto")))
    annotations = Annotations.from_stack(stack)
    assert [e.entry.data for e in annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*"))] == []
    assert [w.entry.data for w in annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))] == []

    hub = cdk.Stack(cdk.App(), "Hub")
    role = iam.Role(hub, "Item", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    arn = "arn:aws:config:us-east-1:111122223333:config-aggregator/config-aggregator-abcd1234"
    config_query_policy(hub, "ItemConfigQueryPolicy", role, aggregator_arn=arn)
    [policy] = Template.from_stack(hub).find_resources("AWS::IAM::Policy").values()
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Action": "config:SelectAggregateResourceConfig",
            "Effect": "Allow",
            "Resource": arn,
            "Sid": "SelectAggregateResourceConfig",
        }
    ]
