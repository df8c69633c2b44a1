"""The organization sweep's resources in the synthesized hub template (`sweepSchedule` set): the report bucket
(encrypted, private, SSL only, lifecycle), the state machine's Distributed Map, the schedule, IAM, cdk-nag; and the
context keys that fail synth. cfn-lint and checkov run on this variant in tests/test_reliability_template.py
(org-all-on); the machine itself is executed in tests/test_org_sweep_sfn.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match
from synth_cache import synthesized_app

from app import SKIP_BUNDLING, build_app, hub_of
from demo.org_sweep_machine import HUB_CONTEXT, Names, SynthesizedSweep
from infra.settings import ContextError

NAMES = Names("bucket-x", "table-x", "exemptions-x", "arn:aws:sns:us-east-1:123456789012:topic-x")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    app = synthesized_app(HUB_CONTEXT)
    hub = hub_of(app)
    return hub, app.synth().get_stack_by_name(hub.stack_name).template


def of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def policies_of(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    statements = []
    for policy in of_type(template, "AWS::IAM::Policy").values():
        roles = [r.get("Ref", "") for r in policy["Properties"].get("Roles", [])]
        if any(r.startswith(role_prefix) for r in roles):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_the_hub_sweeps_daily_by_default_and_off_gives_it_up(tmp_path: Path) -> None:
    """Without sweepSchedule the hub has its state machine and a daily schedule, as the single-account stack has its
    sweep: events are best effort, the sweep is the backstop. `off` builds none (and so no member role trusts it)."""
    context = {k: v for k, v in HUB_CONTEXT.items() if k != "sweepSchedule"}
    app = build_app({**SKIP_BUNDLING, **context}, outdir=str(tmp_path / "default"))
    template = app.synth().get_stack_by_name(hub_of(app).stack_name).template
    ((machine_id, _),) = of_type(template, "AWS::StepFunctions::StateMachine").items()
    schedules = [
        r["Properties"]
        for r in of_type(template, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]
    assert [(s["ScheduleExpression"], s["State"]) for s in schedules] == [("rate(1 day)", "ENABLED")]
    assert [t["Arn"] for t in schedules[0]["Targets"]] == [{"Ref": machine_id}]
    assert hub_of(app).org.sweep.schedule == "rate(1 day)" and len(of_type(template, "AWS::S3::Bucket")) == 1

    off = build_app({**SKIP_BUNDLING, **context, "sweepSchedule": "off"}, outdir=str(tmp_path / "off"))
    template = off.synth().get_stack_by_name(hub_of(off).stack_name).template
    assert of_type(template, "AWS::StepFunctions::StateMachine") == {} and of_type(template, "AWS::S3::Bucket") == {}
    assert not [r for r in of_type(template, "AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]


def test_report_bucket_encrypted_private_ssl_only_with_expiry(built: tuple[Any, dict[str, Any]]) -> None:
    template = built[1]
    ((bucket_id, bucket),) = of_type(template, "AWS::S3::Bucket").items()
    props = bucket["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (expiry,) = props["LifecycleConfiguration"]["Rules"]
    assert expiry["ExpirationInDays"] == 90 and expiry["Status"] == "Enabled"
    assert bucket["DeletionPolicy"] == "Retain"
    (policy,) = of_type(template, "AWS::S3::BucketPolicy").values()
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert policy["Properties"]["Bucket"] == {"Ref": bucket_id}


def test_distributed_map_reads_items_from_s3_tolerates_failures_and_never_drops_an_item(
    built: tuple[Any, dict[str, Any]],
) -> None:
    definition = SynthesizedSweep(built[1], *_machine(built[1])).definition_json(NAMES)
    assert definition["StartAt"] == "ListItems" and definition["States"]["ListItems"]["Next"] == "SweepItems"
    sweep = definition["States"]["SweepItems"]
    assert sweep["Next"] == "Summarize" and definition["States"]["Summarize"]["End"] is True
    assert sweep["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert sweep["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert sweep["ItemReader"]["Parameters"] == {"Bucket": "bucket-x", "Key.$": "$.items.key"}
    assert sweep["MaxConcurrency"] == 25 and sweep["ToleratedFailurePercentage"] == 100.0
    assert sweep["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert sweep["ResultWriter"]["Parameters"]["Bucket"] == "bucket-x"
    states = sweep["ItemProcessor"]["States"]
    item = states["SweepItem"]
    (retry,) = item["Retry"]
    assert {"MemberAccessTransient", "ItemIncomplete", "Lambda.TooManyRequestsException"} <= set(retry["ErrorEquals"])
    assert retry["BackoffRate"] == 2 and retry["MaxAttempts"] >= 3 and retry["JitterStrategy"] == "FULL"
    assert "MemberRoleUnavailable" not in retry["ErrorEquals"]  # permanent: straight to its ERROR row
    (catch,) = item["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == "ItemError"
    assert states["ItemError"]["Type"] == "Pass" and states["ItemError"]["Parameters"]["action"] == "error"
    assert states["ItemError"]["Next"] == "RecordError" and states["RecordError"]["End"] is True
    assert item["Parameters"]["FunctionName"] == states["RecordError"]["Parameters"]["FunctionName"]


def _machine(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (machine_id,) = of_type(template, "AWS::StepFunctions::StateMachine")
    functions = {
        v["Properties"]["Handler"]: v["Properties"]
        for v in of_type(template, "AWS::Lambda::Function").values()
        if "org_sweep_handler" in v["Properties"].get("Handler", "")
    }
    return machine_id, functions


def test_schedule_starts_the_state_machine_and_the_member_role_trusts_the_item_role(
    built: tuple[Any, dict[str, Any]],
) -> None:
    template = built[1]
    machine_id, _ = _machine(template)
    rules = [r for r in of_type(template, "AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]
    (rule,) = rules
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 day)"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": machine_id}
    (stack_set,) = of_type(template, "AWS::CloudFormation::StackSet").values()
    (trusted,) = [p for p in stack_set["Properties"]["Parameters"] if p["ParameterKey"] == "HubFunctionRoleArns"]
    roles = json.dumps(trusted["ParameterValue"])
    assert "OrgSweepItemRole" in roles and "RemediatorFunctionRole" in roles and "ControlRole" not in roles


def test_least_privilege_of_the_sweep_roles(built: tuple[Any, dict[str, Any]]) -> None:
    template = built[1]
    item = policies_of(template, "OrgSweepItemRole")
    control = policies_of(template, "OrgSweepControlRole")
    item_actions = {a for s in item for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    control_actions = {a for s in control for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert "sts:AssumeRole" in item_actions and "sts:AssumeRole" not in control_actions
    assert not any(a.startswith(("ecs:", "organizations:List")) for a in item_actions)  # it acts as member roles
    assert {"organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent"} <= control_actions
    assert "sns:Publish" in control_actions and "sns:Publish" not in item_actions
    assert not any(a.startswith("s3:Delete") for a in item_actions | control_actions)
    (item_put,) = [s for s in item if "s3:PutObject" in s["Action"]]
    assert json.dumps(item_put["Resource"]).endswith('"/runs/*/items/*"]]}')
    (assume,) = [s for s in item if s["Action"] == "sts:AssumeRole"]
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "o-abcdefghij"}}


def test_cdk_nag_clean_with_the_sweep(built: tuple[Any, dict[str, Any]]) -> None:
    annotations = Annotations.from_stack(built[0])
    assert [e.entry.data for e in annotations.find_error("*", Match.any_value())] == []
    assert [w.entry.data for w in annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))] == []


def test_concurrency_and_report_days_from_context(tmp_path: Path) -> None:
    app = build_app(
        {**SKIP_BUNDLING, **HUB_CONTEXT, "orgSweepConcurrency": "100", "orgSweepReportDays": 30}, outdir=str(tmp_path)
    )
    template = app.synth().get_stack_by_name(hub_of(app).stack_name).template
    definition = SynthesizedSweep(template, *_machine(template)).definition_json(NAMES)
    assert definition["States"]["SweepItems"]["MaxConcurrency"] == 100
    ((_, bucket),) = of_type(template, "AWS::S3::Bucket").items()
    assert bucket["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 30


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"orgSweepConcurrency": "0"}, "orgSweepConcurrency: expected 1-10000, got 0"),
        ({"orgSweepConcurrency": "many"}, "orgSweepConcurrency: expected a whole number"),
        ({"orgSweepReportDays": "0"}, "orgSweepReportDays: expected 1-3650"),
        ({"sweepSchedule": "daily"}, "sweepSchedule: expected an EventBridge schedule"),
        ({"sweepInventory": "config"}, "sweepInventory: the organization sweep describes every revision"),
    ],
)
def test_bad_sweep_context_fails_synth_naming_the_key(extra: dict[str, str], message: str) -> None:
    with pytest.raises(ContextError, match=message):
        build_app({**SKIP_BUNDLING, **HUB_CONTEXT, **extra})
