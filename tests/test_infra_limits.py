"""Synth refuses what AWS would refuse (infra/limits.py, run by app.build_app on the synthesized templates): each limit
at its boundary, one under passes and one over fails naming the context key and the limit, and a refused synth leaves
no template behind.

Where context can reach a limit it is driven there through build_app: the Lambda environment (exemptionApprovers in
the single-account stack, excludedAccounts in the hub's sweep control function), the member role's policies
(regions) and the SCP (breakGlassPrincipals, checked where the document is built). The function and sweep roles, the
event patterns and the StackSet body stay under their limits at every setting (figures below), so their over side is
the check's own, on the synthesized templates with one value grown past the limit.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from app import SKIP_BUNDLING, build_app, hub_of, stack_of
from ecs_remediate.organization.guardrail import render
from infra import limits
from infra.settings import ContextError

EMAIL = {"notificationEmails": "secops@example.com"}
APPROVER = "arn:aws:iam::123456789012:role/security-team/exemption-approver-{:03d}"  # 67 characters
BREAK_GLASS = "arn:aws:iam::123456789012:role/break-glass/incident-responder-{:03d}"  # 65 characters
# The Regions enabled by default in every account, in this order.
REGIONS = [
    *("us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"),
    *("eu-north-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3"),
    *("ap-south-1", "ca-central-1", "sa-east-1"),
]
EVERY_OPTION = {
    "rollout": "true",
    "retire": "true",
    "rolloutManaged": "true",
    "daemonRollout": "true",
    "securityHub": "true",
    "tagExemptions": "true",
    "sweepInventory": "auto",
    "exemptFamilies": "legacy-*",
    "exemptFamiliesAcknowledged": "true",
}
ROLE_OPTIONS = "rollout/retire/daemonRollout/securityHub/sweepInventory/tagExemptions"
# The hub at its limits: 8 Regions with rollout, retire and daemon rollout (the member role), 205 excluded accounts (the
# sweep control function's environment), 66 break-glass patterns (the SCP).
HUB = {
    **EMAIL,
    "organization": "true",
    "organizationId": "o-abcdefghij",
    "targetOus": "ou-ab12-11111111",
    "rollout": "true",
    "retire": "true",
    "daemonRollout": "true",
    "guardrail": "attach",
}
HUB_REGIONS, HUB_EXCLUDED, HUB_BREAK_GLASS = 8, 205, 66


def listed(pattern: str, count: int) -> str:
    return ",".join(pattern.format(i) for i in range(count))


def accounts(count: int) -> str:
    return ",".join(str(100000000000 + i) for i in range(count))


def hub_context(regions: int = HUB_REGIONS, excluded: int = HUB_EXCLUDED, break_glass: int = HUB_BREAK_GLASS) -> Any:
    return {
        **HUB,
        "regions": ",".join(REGIONS[:regions]),
        "excludedAccounts": accounts(excluded),
        "breakGlassPrincipals": listed(BREAK_GLASS, break_glass),
    }


def figures(app: Any, **options: Any) -> dict[str, limits.Figure]:
    """Every figure of the app's synthesized stacks, by where."""
    stacks = [(stack.stack_name, stack.template) for stack in app.synth().stacks]
    return {figure.where: figure for figure in limits.measure_stacks(stacks, **options)}


def refused(context: dict[str, Any], tmp: Path) -> str:
    with pytest.raises(ContextError) as error:
        build_app({**SKIP_BUNDLING, **context}, outdir=str(tmp))
    assert not list(tmp.glob("*.template.json")) and not (tmp / "manifest.json").exists()  # nothing left to deploy
    return str(error.value)


@pytest.fixture(scope="module")
def every_option(tmp_path_factory: pytest.TempPathFactory) -> Any:
    context = {**SKIP_BUNDLING, **EMAIL, **EVERY_OPTION, "exemptionApprovers": listed(APPROVER, 10)}
    return build_app(context, outdir=str(tmp_path_factory.mktemp("every-option")))


@pytest.fixture(scope="module")
def hub_at_limits(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_app({**SKIP_BUNDLING, **hub_context()}, outdir=str(tmp_path_factory.mktemp("hub-at-limits")))


# --- Lambda's environment: 4,096 bytes ---


def test_42_approvers_fit_the_functions_environment_and_43_do_not(tmp_path: Path) -> None:
    """The issue's case: 45 exemptionApprovers ARNs made CreateFunction fail (and the stack roll back). Since the event
    queue's URL joined the environment, 43 are over."""
    app = build_app({**SKIP_BUNDLING, **EMAIL, "exemptionApprovers": listed(APPROVER, 42)}, outdir=str(tmp_path / "42"))
    environments = [f for f in figures(app).values() if f.limit is limits.LAMBDA_ENVIRONMENT]
    assert len(environments) == 2  # the function and the sweep, one environment
    assert all(4096 - 68 < f.size <= 4096 for f in environments)  # one more ARN and its comma would not fit

    message = refused({**EMAIL, "exemptionApprovers": listed(APPROVER, 43)}, tmp_path / "43")
    assert message.startswith(
        "exemptionApprovers: the environment of EcsRemediate/RemediatorFunctionBB34C223 would be 4,117 bytes "
        "(its variables as JSON), over Lambda's limit of 4,096; EXEMPTION_APPROVERS takes 2,923 of them"
    )
    assert "; exemptionApprovers: the environment of EcsRemediate/SweepSweepFunction" in message  # the sweep's too


def test_excluded_accounts_fill_the_hub_sweep_control_functions_environment(hub_at_limits: Any, tmp_path: Path) -> None:
    control = figures(hub_at_limits)["EcsRemediateHub/OrgSweepControlFunction826F6DB9"]
    assert (control.key, control.over) == ("excludedAccounts", False)
    assert 4096 - 13 < control.size <= 4096  # a 206th account (12 digits and a comma) would not fit

    message = refused(hub_context(excluded=HUB_EXCLUDED + 1), tmp_path)
    assert message.startswith(
        "excludedAccounts: the environment of EcsRemediateHub/OrgSweepControlFunction826F6DB9 would be "
    )
    assert "over Lambda's limit of 4,096; ORG_SWEEP_EXCLUDED takes 2,677 of them" in message


# --- IAM: a role's inline policies together, 10,240 characters without whitespace ---


def test_the_member_roles_policy_fits_8_regions_with_every_option_and_9_do_not(
    hub_at_limits: Any, tmp_path: Path
) -> None:
    member_role = figures(hub_at_limits)["EcsRemediateHub/MemberStackSet (member template)/MemberRole"]
    assert (member_role.key, member_role.over) == ("regions", False)
    assert 9_800 < member_role.size <= 10_240

    message = refused(hub_context(regions=HUB_REGIONS + 1), tmp_path)  # (the control function's Regions list too)
    assert "regions: the inline policies of EcsRemediateHub/MemberStackSet (member template)/MemberRole would be " in (
        message
    )
    assert "(all together, whitespace not counted), over IAM's limit of 10,240; the member role has its" in message


def test_the_function_and_sweep_roles_at_every_option_are_under_and_a_character_more_is_refused(
    every_option: Any,
) -> None:
    """No context grows these roles past what every option gives (8,334 and 8,038 characters measured), so the over
    side adds one policy to the sweep role of the synthesized template: exactly the limit passes, one more fails
    naming the options that give the role its statements."""
    stack = stack_of(every_option)
    assert {f.where: f.size for f in figures(every_option).values() if f.limit is limits.ROLE_POLICIES} == {
        "EcsRemediate/RemediatorFunctionRoleC2BE4706": 8334,
        "EcsRemediate/SweepSweepRole3BE364B2": 8038,
    }
    template = every_option.synth().get_stack_by_name(stack.stack_name).template
    enabled = limits.role_options(stack.settings, "auto")
    assert "/".join(enabled) == ROLE_OPTIONS

    def with_padding(characters: int) -> dict[str, Any]:
        grown = copy.deepcopy(template)
        statement = {"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}
        document: dict[str, Any] = {"Version": "2012-10-17", "Statement": [statement]}
        statement["Sid"] = "P" * (characters - limits.policy_characters(document) - len('"Sid":"",'))
        grown["Resources"]["Padding"] = {
            "Type": "AWS::IAM::Policy",
            "Properties": {"PolicyDocument": document, "PolicyName": "p", "Roles": [{"Ref": "SweepSweepRole3BE364B2"}]},
        }
        return grown

    room = 10_240 - 8038
    limits.check(limits.measure(with_padding(room), "EcsRemediate", enabled=enabled))
    with pytest.raises(ContextError) as error:
        limits.check(limits.measure(with_padding(room + 1), "EcsRemediate", enabled=enabled))
    assert str(error.value) == (
        f"{ROLE_OPTIONS}: the inline policies of EcsRemediate/SweepSweepRole3BE364B2 would be 10,241 characters "
        "(all together, whitespace not counted), over IAM's limit of 10,240; turn an option off"
    )


# --- EventBridge: an event pattern, 2,048 characters ---


def test_an_event_pattern_at_2048_characters_passes_and_one_more_is_refused(every_option: Any) -> None:
    """The longest pattern is 708 characters and only the exemption-tag rule's carries a context value (tagPrefix, at
    most a tag key long), so the over side grows a synthesized pattern."""
    stack = stack_of(every_option)
    template = every_option.synth().get_stack_by_name(stack.stack_name).template
    patterns = {f.where: f for f in figures(every_option, tag_prefix="ecs-remediate").values()}
    tags_rule = patterns["EcsRemediate/RemediatorExemptionTagsRuleA36D481D"]
    assert tags_rule.key == "tagPrefix"
    assert max(f.size for f in patterns.values() if f.limit is limits.EVENT_PATTERN) == 708

    def grown_to(characters: int) -> dict[str, Any]:
        grown = copy.deepcopy(template)
        pattern = grown["Resources"]["RemediatorExemptionTagsRuleA36D481D"]["Properties"]["EventPattern"]
        pattern["detail"]["eventName"].append("")  # then as long as it takes (the account resolved: 12 digits)
        resolved = limits.compact(limits.Bounds(grown, "EcsRemediate").resolve(pattern))
        pattern["detail"]["eventName"][-1] = "x" * (characters - len(resolved))
        return grown

    options = {"tag_prefix": "ecs-remediate"}
    limits.check(limits.measure(grown_to(2048), "EcsRemediate", **options))
    with pytest.raises(ContextError, match=r"^tagPrefix: the event pattern of EcsRemediate/RemediatorExemptionTags"):
        limits.check(limits.measure(grown_to(2049), "EcsRemediate", **options))
    with pytest.raises(ContextError, match=r"^\(no context key: a defect of ecs-remediate\): the event pattern of "):
        limits.check(limits.measure(grown_to(2049), "EcsRemediate"))  # a pattern no key sets: ours to fix


# --- CloudFormation: a StackSet's inline TemplateBody, 51,200 bytes ---


def test_a_stack_set_body_of_51200_bytes_passes_and_one_more_is_refused(hub_at_limits: Any) -> None:
    """The member template is 34,710 bytes here (8 Regions, every option, the verify role and the forwarding
    dead-letter queue included): the member role's policy limits the Regions first (refused at 9); the body passes
    51,200 bytes only from 14 Regions on (51,230; test_17_regions_with_every_option_...)."""
    hub = hub_of(hub_at_limits)
    body = figures(hub_at_limits)["EcsRemediateHub/MemberStackSet"]
    assert (body.key, body.over) == ("regions", False)
    assert 33_000 < body.size < 36_000
    template = hub_at_limits.synth().get_stack_by_name(hub.stack_name).template

    def body_of(size: int) -> dict[str, Any]:
        grown = copy.deepcopy(template)
        inner = {"Resources": {}, "Description": ""}
        inner["Description"] = "d" * (size - len(limits.compact(inner)))
        grown["Resources"]["MemberStackSet"]["Properties"]["TemplateBody"] = limits.compact(inner)
        return grown

    limits.check(limits.measure(body_of(51_200), "EcsRemediateHub"))
    with pytest.raises(ContextError) as error:
        limits.check(limits.measure(body_of(51_201), "EcsRemediateHub"))
    assert str(error.value) == (
        "regions: the inline TemplateBody of EcsRemediateHub/MemberStackSet would be 51,201 bytes, over "
        "CloudFormation's limit of 51,200; cover fewer Regions, or turn an option off"
    )


def test_17_regions_with_every_option_are_refused_naming_regions_before_cdk_validates_the_hub(tmp_path: Path) -> None:
    """Past 51,200 bytes CDK's own validation of the hub would fail the synth without naming a key: the member
    template's body is measured as soon as it is synthesized, and the message names `regions`."""
    message = refused(hub_context(regions=17), tmp_path)
    assert message.startswith("regions: the inline TemplateBody of EcsRemediateHub/MemberStackSet would be 5")
    assert message.endswith("over CloudFormation's limit of 51,200; cover fewer Regions, or turn an option off")


# --- Organizations: the SCP, 5,120 characters ---


def test_the_guardrail_scp_at_its_limit_is_attached_and_one_more_principal_is_refused(
    hub_at_limits: Any, tmp_path: Path
) -> None:
    hub = hub_of(hub_at_limits)
    template = hub_at_limits.synth().get_stack_by_name(hub.stack_name).template
    (policy,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Organizations::Policy"]
    assert 5120 - 66 < len(render(policy["Properties"]["Content"])) <= 5120  # a 67th pattern would not fit

    message = refused(hub_context(break_glass=HUB_BREAK_GLASS + 1), tmp_path)
    assert message.startswith(
        "breakGlassPrincipals/exemptionApprovers: the guardrail SCP would be 5168 characters, over the 5120 limit of "
        "Organizations"
    )


# --- the bounds of what CloudFormation fills in at deploy time ---


def test_deploy_time_values_are_bounded_by_their_longest() -> None:
    template = {
        "Parameters": {"Bus": {"Type": "String"}, "Short": {"Type": "String", "MaxLength": 20}},
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role"},
            "R" * 60: {"Type": "AWS::IAM::Role"},
            "Named": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "ecs-remediate-member"}},
            "Pathed": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "r", "Path": "/security/"}},
            "Table": {"Type": "AWS::DynamoDB::Table"},
            "Topic": {"Type": "AWS::SNS::Topic"},
            "Key": {"Type": "AWS::KMS::Key"},
            "Machine": {"Type": "AWS::StepFunctions::StateMachine"},
            "Queue": {"Type": "AWS::SQS::Queue"},
        },
    }
    bounds = limits.Bounds(template, "EcsRemediate")
    resolve = bounds.resolve
    # A generated name: "<stack>-<logical id>-<13-character suffix>", cut to the service's longest (IAM: 64).
    assert len(resolve({"Ref": "Role"})) == len("EcsRemediate-Role-") + 13
    assert len(resolve({"Ref": "R" * 60})) == 64
    assert resolve({"Fn::GetAtt": ["Named", "Arn"]}) == "arn:aws-us-gov:iam::111111111111:role/ecs-remediate-member"
    assert resolve({"Fn::GetAtt": ["Pathed", "Arn"]}) == "arn:aws-us-gov:iam::111111111111:role/security/r"
    assert len("EcsRemediate-Table-1ABCDEF2GHIJK") <= len(resolve({"Ref": "Table"}))  # a real one is no longer
    assert resolve({"Ref": "Topic"}).startswith("arn:aws-us-gov:sns:" + "r" * 16 + ":111111111111:")
    assert len(resolve({"Ref": "Key"})) == 36
    assert resolve({"Fn::Select": [6, {"Fn::Split": [":", {"Ref": "Machine"}]}]}) == bounds.resolve(
        {"Fn::GetAtt": ["Machine", "Name"]}
    )
    assert resolve({"Fn::Sub": "${AWS::Partition}/${Queue.QueueName}/${Named}"}).count("/") == 2
    assert resolve({"Ref": "Queue"}).startswith("https://sqs.")
    assert len(resolve({"Ref": "Bus"})) == 4096 and len(resolve({"Ref": "Short"})) == 20
    assert resolve({"A": {"Ref": "AWS::NoValue"}, "B": [1, {"Ref": "AWS::NoValue"}]}) == {"B": [1]}
    assert resolve({"Fn::If": ["C", "short", "longer one"]}) == "longer one"
    with pytest.raises(ValueError, match="cannot bound Fn::ImportValue"):
        resolve({"Fn::ImportValue": "x"})


def test_lambda_and_iam_count_as_aws_says() -> None:
    variables = {"A": "b", "LONG_NAME": "é"}
    assert limits.environment_bytes(variables) == len('{"A":"b","LONG_NAME":"é"}'.encode())  # UTF-8 bytes
    document = {"Statement": [{"Sid": "a b", "Action": "x"}]}
    assert limits.policy_characters(document) == len(json.dumps(document, separators=(",", ":"))) - 1  # the space
