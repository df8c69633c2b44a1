"""The organization context: the guardrail modes, the member template as a plain stack, the selection of the
hub stack, and context validation (a bad or missing value fails synth naming the key)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match
from test_infra_org import ORG_CONTEXT, of_type, only, stack_set, synth

from app import ROOT, SKIP_BUNDLING, build_app, cdk_json_context, hub_of, stack_of
from ecs_remediate.cli.main import main
from ecs_remediate.organization.guardrail import render
from infra.member_stack import MEMBER_STACK_ID
from infra.org_settings import OrgSettings
from infra.settings import ContextError


def test_guardrail_attach_creates_the_scp_on_the_target_ous(tmp_path: Path) -> None:
    context = {
        **ORG_CONTEXT,
        "targetOus": "ou-ab12-11111111,ou-ab12-22222222",
        "guardrail": "attach",
        "breakGlassPrincipals": "arn:aws:iam::*:role/BreakGlass*",
        "exemptionApprovers": '["arn:aws:iam::111122223333:role/security/Approver"]',
        "tagPrefix": "acme-sec",
    }
    _, template, _, _ = synth(context, tmp_path)
    _, policy = only(template, "AWS::Organizations::Policy")
    props = policy["Properties"]
    assert props["Type"] == "SERVICE_CONTROL_POLICY"
    assert props["TargetIds"] == ["ou-ab12-11111111", "ou-ab12-22222222"]

    out = io.StringIO()
    argv = ["guardrail", "--tag-prefix", "acme-sec", "--break-glass", "arn:aws:iam::*:role/BreakGlass*"]
    assert main([*argv, "--approver", "arn:aws:iam::111122223333:role/security/Approver"], stdout=out) == 0
    assert props["Content"] == json.loads(out.getvalue())  # the same document as the CLI prints
    assert props["Content"]["Statement"][1]["Condition"]["ForAnyValue:StringLike"] == {
        "aws:TagKeys": ["acme-sec:exempt-*"]
    }


def test_guardrail_attach_from_a_delegated_administrator_needs_it_said_for_policies_too(tmp_path: Path) -> None:
    """A StackSets delegated administrator (stackSetCallAs=DELEGATED_ADMIN) may create the SCP only as an Organizations
    delegated administrator for policies as well: with organizationsDelegatedAdmin=true the hub has both (the refusal
    without it: test_bad_org_context_names_the_key)."""
    context = {
        **ORG_CONTEXT,
        "guardrail": "attach",
        "stackSetCallAs": "DELEGATED_ADMIN",
        "organizationsDelegatedAdmin": "true",
    }
    _, template, _, _ = synth(context, tmp_path)
    assert only(template, "AWS::Organizations::Policy")[1]["Properties"]["TargetIds"] == ["ou-ab12-11111111"]
    assert stack_set(template)["CallAs"] == "DELEGATED_ADMIN"


def test_guardrail_print_writes_the_scp_at_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # its own synth (not the shared one of tests/synth_cache.py): what the synth writes and prints is the point
    app = build_app({**SKIP_BUNDLING, **ORG_CONTEXT, "guardrail": "print"}, outdir=str(tmp_path))
    template = app.synth().get_stack_by_name(hub_of(app).stack_name).template
    assert of_type(template, "AWS::Organizations::Policy") == {}
    written = (tmp_path / "guardrail-scp.json").read_text()
    settings = OrgSettings.from_context(ORG_CONTEXT.get, tag_prefix="ecs-remediate")
    assert written == render(settings.guardrail_policy("ecs-remediate")) + "\n"
    assert "guardrail SCP written to" in capsys.readouterr().err


# --- the member template as a plain stack (the management account) ---


def test_member_template_as_a_plain_stack_is_the_inlined_one(tmp_path: Path) -> None:
    app = build_app({**SKIP_BUNDLING, **ORG_CONTEXT, "memberTemplate": "true"}, outdir=str(tmp_path))
    assembly = app.synth()
    plain = assembly.get_stack_by_name(MEMBER_STACK_ID)
    inlined = json.loads(stack_set(assembly.get_stack_by_name("EcsRemediateHub").template)["TemplateBody"])
    assert plain.template == inlined
    assert [a for a in plain.assets if a.get("packaging") != "file" or "template" not in str(a.get("path"))] == []
    annotations = Annotations.from_stack(app.node.find_child(MEMBER_STACK_ID))  # type: ignore[arg-type]
    assert annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")) == []


# --- selection and validation ---


@pytest.mark.parametrize("value", [None, "false"])
def test_without_organization_the_single_account_stack_is_unchanged(value: str | None, tmp_path: Path) -> None:
    context = {} if value is None else {"organization": value, "targetOus": "not-even-checked"}
    app = build_app({**SKIP_BUNDLING, **context}, outdir=str(tmp_path))
    assert [child.node.id for child in app.node.children if hasattr(child, "stack_name")] == ["EcsRemediate"]
    assert stack_of(app).sweep is not None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"organizationId": None}, "organizationId: expected an organization id"),
        ({"organizationId": "o-short"}, "organizationId: expected an organization id"),
        ({"organizationId": "O-ABCDEFGHIJ"}, "organizationId: expected an organization id"),
        ({"targetOus": None}, "targetOus: required with organization=true"),
        ({"targetOus": ""}, "targetOus: required with organization=true"),
        ({"targetOus": "ou-ab12-1111"}, "targetOus: 'ou-ab12-1111' is not an OU id"),
        ({"targetOus": "ou-ab12-11111111,123456789012"}, "targetOus: '123456789012' is not an OU id"),
        ({"targetOus": ",".join(f"ou-ab12-{i:08d}" for i in range(51))}, "targetOus: at most 50 OUs"),
        ({"regions": None}, "regions: required with organization=true"),
        ({"regions": "us-east-1,mars-1"}, "regions: 'mars-1' is not a Region name"),
        ({"regions": "US-EAST-1"}, "regions: 'US-EAST-1' is not a Region name"),
        ({"excludedAccounts": "12345"}, "excludedAccounts: '12345' is not a 12-digit account id"),
        ({"memberRoleName": "a/b"}, "memberRoleName: not an IAM role name"),
        ({"guardrail": "on"}, "guardrail: expected one of off, print, attach"),
        ({"stackSetCallAs": "ADMIN"}, "stackSetCallAs: expected one of SELF, DELEGATED_ADMIN"),
        ({"breakGlassPrincipals": "root"}, "breakGlassPrincipals: break-glass principal: 'root'"),
        ({"exemptionApprovers": "arn:aws:iam::*:role/a b"}, "exemptionApprovers: 'arn:aws:iam::*:role/a b' is not"),
        ({"memberTemplate": "yes"}, "memberTemplate: expected one of true, false"),
        (
            {"guardrail": "attach", "stackSetCallAs": "DELEGATED_ADMIN"},
            "guardrail: attach creates the SCP, which only the management account or an AWS Organizations delegated "
            "administrator for policies may do",
        ),
        (
            {"guardrail": "attach", "stackSetCallAs": "DELEGATED_ADMIN", "organizationsDelegatedAdmin": "false"},
            "guardrail: attach creates the SCP",
        ),
        ({"organizationsDelegatedAdmin": "yes"}, "organizationsDelegatedAdmin: expected one of true, false"),
        ({"organization": "yes"}, "organization: expected one of true, false"),
    ],
)
def test_bad_org_context_names_the_key(change: dict[str, Any], expected: str, tmp_path: Path) -> None:
    context = {**ORG_CONTEXT, **change}
    context = {k: v for k, v in context.items() if v is not None}
    with pytest.raises(ContextError) as error:
        build_app({**SKIP_BUNDLING, **context}, outdir=str(tmp_path))
    assert str(error.value).startswith(expected)
    assert not list(tmp_path.glob("*.template.json"))


def test_bad_org_context_fails_the_cdk_app_with_the_key_named(tmp_path: Path) -> None:
    """What `make synth CONTEXT='-c organization=true ... -c regions=us-east-1,nowhere'` runs."""
    context = {**ORG_CONTEXT, "regions": "us-east-1,nowhere"}
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    assert result.returncode == 2
    assert "invalid CDK context: regions: 'nowhere' is not a Region name" in result.stderr
    assert not list(tmp_path.glob("*.template.json"))


@pytest.mark.slow  # app.py in a subprocess, as the CDK CLI runs it
def test_organization_synth_prints_nothing_on_the_pinned_node(tmp_path: Path) -> None:
    """`make synth CONTEXT='-c organization=true ...'` as the CDK CLI runs the app (cdk.json's context, on the Node.js
    22 that make install pins): no deprecation warning (cdk-nag's EVB1 rule read a deprecated property of the hub's
    bus policy, infra/hub_stack.py) and no Node.js end-of-life banner from jsii; stderr stays empty."""
    context = {**cdk_json_context(), **SKIP_BUNDLING, **ORG_CONTEXT, "notificationEmails": "secops@example.com"}
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert (tmp_path / "EcsRemediateHub.template.json").exists()
