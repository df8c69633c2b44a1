"""The stack's side of issues 15 and 14: escalateAfter, escalateWindowHours and rolloutManaged become the function's
and the sweep's environment (validated as the function would); securityHub=true puts the Security Hub policy on
the function's and the sweep's roles (single-account stack), and is refused with organization=true."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match, Template
from synth_cache import synthesized_app

from app import SKIP_BUNDLING, build_app, stack_of
from ecs_remediate.core.config import Config
from infra.settings import ContextError, StackSettings


def synth(context: dict[str, Any], tmp: Path) -> dict[str, Any]:
    app = synthesized_app(context)
    template: dict[str, Any] = Template.from_stack(stack_of(app)).to_json()
    return template


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key: value["Properties"]
        for key, value in template["Resources"].items()
        if value["Type"] == "AWS::Lambda::Function" and "Handler" in value["Properties"]
    }


def test_escalation_and_rollout_managed_reach_both_functions(tmp_path: Path) -> None:
    context = {"escalateAfter": "5", "escalateWindowHours": 72, "rollout": "true", "rolloutManaged": "true"}
    found = functions(synth(context, tmp_path))
    assert len(found) == 2  # the function and the scheduled sweep
    for properties in found.values():
        variables = properties["Environment"]["Variables"]
        assert (variables["ESCALATE_AFTER"], variables["ESCALATE_WINDOW_HOURS"]) == ("5", "72")
        assert (variables["ROLLOUT"], variables["ROLLOUT_MANAGED"], variables["SECURITY_HUB"]) == (
            "true",
            "true",
            "false",
        )
        plain = {k: v for k, v in variables.items() if isinstance(v, str)}
        config = Config.from_env(plain)  # what the function parses at cold start
        assert (config.escalate_after, config.escalate_window_hours, config.rollout_managed) == (5, 72, True)


@pytest.mark.parametrize(
    ("context", "error"),
    [
        ({"escalateAfter": "1"}, "escalateAfter: expected 2 to 100 remediations, got 1"),
        ({"escalateAfter": "lots"}, "escalateAfter: expected a whole number"),
        ({"escalateWindowHours": 0}, "escalateWindowHours: expected 1 to 720 hours, got 0"),
        ({"escalateWindowHours": "1000"}, "escalateWindowHours: expected 1 to 720 hours, got 1000"),
        ({"rolloutManaged": "yes"}, "rolloutManaged: expected one of true, false"),
        (
            {"rolloutManaged": "true"},
            "rolloutManaged: moves stack-managed services during rollout; needs -c rollout=true",
        ),
    ],
)
def test_bad_context_values_name_the_key(context: dict[str, Any], error: str) -> None:
    with pytest.raises(ContextError, match=error.replace("(", r"\(")):
        StackSettings.from_mapping(context)


def policies_of(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        value["Properties"]
        for value in template["Resources"].values()
        if value["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in value["Properties"]["Roles"]
    ]


def security_hub_statements(template: dict[str, Any], role_fragment: str) -> list[str]:
    [role_id] = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::IAM::Role" and role_fragment in k]
    return sorted(
        statement["Sid"]
        for policy in policies_of(template, role_id)
        for statement in policy["PolicyDocument"]["Statement"]
        if str(statement["Action"]).startswith("securityhub:") and statement["Effect"] == "Allow"
    )


def test_security_hub_on_grants_both_roles_and_sets_the_variable(tmp_path: Path) -> None:
    template = synth({"securityHub": "true"}, tmp_path)
    expected = ["ImportFindingsUnderTheDefaultProduct", "MoveWorkflowOfFindings", "ReadFindingsOfThisHub"]
    assert security_hub_statements(template, "RemediatorFunctionRole") == expected
    assert security_hub_statements(template, "SweepRole") == expected
    for properties in functions(template).values():
        assert properties["Environment"]["Variables"]["SECURITY_HUB"] == "true"
    # each function waits for its policy: its first invocation can already import
    for key, value in template["Resources"].items():
        if value["Type"] == "AWS::Lambda::Function" and "Handler" in value["Properties"]:
            assert any("SecurityHubImport" in d for d in value.get("DependsOn", [])), key


def test_cdk_nag_finds_nothing_with_security_hub_on(tmp_path: Path) -> None:
    stack = stack_of(build_app({**SKIP_BUNDLING, "securityHub": "true"}, outdir=str(tmp_path)))
    annotations = Annotations.from_stack(stack)
    assert annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")) == []
    assert annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*")) == []


def test_security_hub_off_grants_nothing(tmp_path: Path) -> None:
    template = synth({}, tmp_path)
    assert security_hub_statements(template, "RemediatorFunctionRole") == []
    assert security_hub_statements(template, "SweepRole") == []


def test_security_hub_with_the_organization_hub_is_refused(tmp_path: Path) -> None:
    context = {
        "organization": "true",
        "organizationId": "o-abcdefghij",
        "targetOus": "ou-ab12-11111111",
        "regions": "us-east-1",
        "securityHub": "true",
    }
    with pytest.raises(ContextError, match="securityHub: supported by the single-account stack only"):
        build_app({**SKIP_BUNDLING, **context}, outdir=str(tmp_path))


def test_tag_exemptions_with_the_organization_hub_are_refused(tmp_path: Path) -> None:
    """Members do not forward TagResource to the hub: approvers' exemption tags would silently never count."""
    context = {
        "organization": "true",
        "organizationId": "o-abcdefghij",
        "targetOus": "ou-ab12-11111111",
        "regions": "us-east-1",
        "tagExemptions": "true",
        "exemptionApprovers": "arn:aws:iam::123456789012:role/Approver",
    }
    with pytest.raises(ContextError, match="tagExemptions: supported by the single-account stack only"):
        build_app({**SKIP_BUNDLING, **context}, outdir=str(tmp_path))
