"""infra/security_hub.py: the Security Hub policy on a role (import under the default product only, read and
move workflows on this account's hub, every other finding field denied), cdk-nag clean; the `securityHub`
context key."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.security_hub import CUSTOMER_FIELDS_DENIED, grant_security_hub_import
from infra.settings import ContextError, StackSettings

ENV = cdk.Environment(account="123456789012", region="eu-west-1")


def synth() -> tuple[cdk.Stack, dict[str, Any]]:
    app = cdk.App()
    stack = cdk.Stack(app, "Hub", env=ENV)
    role = iam.Role(stack, "FunctionRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    grant_security_hub_import(role, scope=stack)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    template = Template.from_stack(stack)
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    return stack, policy


def test_statements_are_scoped_to_this_accounts_security_hub() -> None:
    stack, policy = synth()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    product = "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default"
    hub = "arn:aws:securityhub:eu-west-1:123456789012:hub/default"
    resolve = stack.resolve

    def resource(sid: str) -> Any:
        value = resolve(statements[sid]["Resource"])
        if isinstance(value, dict):  # Fn::Join of the partition and the literal parts
            parts = value["Fn::Join"][1]
            return "".join("aws" if isinstance(p, dict) else p for p in parts)
        return value

    assert statements["ImportFindingsUnderTheDefaultProduct"]["Action"] == "securityhub:BatchImportFindings"
    assert resource("ImportFindingsUnderTheDefaultProduct") == product
    assert statements["ReadFindingsOfThisHub"]["Action"] == "securityhub:GetFindings"
    assert resource("ReadFindingsOfThisHub") == hub
    assert statements["MoveWorkflowOfFindings"]["Action"] == "securityhub:BatchUpdateFindings"
    assert resource("MoveWorkflowOfFindings") == hub
    denies = [s for s in statements.values() if s["Effect"] == "Deny"]
    assert len(denies) == len(CUSTOMER_FIELDS_DENIED)
    assert sorted(next(iter(s["Condition"]["Null"])) for s in denies) == sorted(
        f"securityhub:ASFFSyntaxPath/{field}" for field in CUSTOMER_FIELDS_DENIED
    )
    assert all(s["Condition"]["Null"][next(iter(s["Condition"]["Null"]))] == "false" for s in denies)
    assert all(resource(sid) != "*" for sid in statements)
    allowed = {s["Action"] for s in statements.values() if s["Effect"] == "Allow"}
    assert allowed == {"securityhub:BatchImportFindings", "securityhub:GetFindings", "securityhub:BatchUpdateFindings"}


def test_cdk_nag_finds_nothing() -> None:
    stack, _ = synth()
    errors = Annotations.from_stack(stack).find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("AwsSolutions-IAM5.*"))
    assert errors == [] and warnings == []


@pytest.mark.parametrize(("value", "expected"), [(None, False), ("true", True), ("false", False), (True, True)])
def test_security_hub_context_key(value: Any, expected: bool) -> None:
    settings = StackSettings.from_context(lambda key: value if key == "securityHub" else None)
    assert settings.security_hub is expected


def test_security_hub_context_key_refuses_anything_else() -> None:
    with pytest.raises(ContextError, match="securityHub: expected one of true, false, got 'yes'"):
        StackSettings.from_mapping({"securityHub": "yes"})
