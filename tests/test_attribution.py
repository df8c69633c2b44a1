"""Source attribution from real shapes: CloudFormation's tags and invokedBy, CDK's bootstrap roles and CLI,
the Terraform AWS provider's, Pulumi's and Copilot's user agents, a hand-registered revision; and hostile
input (huge, odd, forged) that never raises and never puts anything but names and ARNs in the result."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import FUZZ, json_values, scaled

from conftest import LOCAL_FIXTURES, SHARED_FIXTURES, load_json
from ecs_remediate.core.attribution import (
    NEXT_DEPLOY,
    Attribution,
    CloudFormationStack,
    Tool,
    attribute,
    cloudformation_stack_of,
)
from ecs_remediate.core.events import Registration, parse_registration_event

ACCOUNT = "123456789012"
STACK_ARN = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/app-stack/6f1c5b8e-0000-4000-8000-000000000001"
CFN_TAGS = [
    {"key": "aws:cloudformation:stack-name", "value": "app-stack"},
    {"key": "aws:cloudformation:logical-id", "value": "WebTaskDefinition"},
    {"key": "aws:cloudformation:stack-id", "value": STACK_ARN},
]
CDK_EXEC_ROLE = f"arn:aws:sts::{ACCOUNT}:assumed-role/cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-us-east-1/AWSCloudFormation"

# User agents as recorded by CloudTrail (sources: docs/iac.md).
TERRAFORM_AGENTS = [
    "APN/1.0 HashiCorp/1.0 Terraform/0.15.5 (+https://www.terraform.io) terraform-provider-aws/3.75.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go/1.43.17 (go1.16; linux; amd64) "
    "exec-env/AWS_ECS_EC2",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.0 (+https://www.terraform.io) terraform-provider-aws/5.32.1 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.24.1 os/linux lang/go#1.20.12 "
    "md/GOOS#linux md/GOARCH#amd64 api/resourcegroups#1.19.7",
    "APN/1.0 HashiCorp/1.0 Terraform/1.5.7 (+https://www.terraform.io) terraform-provider-aws/6.14.1 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.39.0 ua/2.1 os/macos lang/go#1.24.6 "
    "md/GOOS#darwin md/GOARCH#amd64 api/iam#1.47.5 m/i",
]
CDK_CLI_AGENT = "aws-sdk-nodejs/2.1586.0 linux/v20.15.1 aws-cdk/2.135.0 promise"
PULUMI_AGENTS = [
    "APN/1.0 Pulumi/1.0 Pulumi-Aws/4.17.0-alpha.1629393364+0b9d696e.dirty (+https://www.pulumi.com) "
    "aws-sdk-go/1.40.20 (go1.16.4; darwin; amd64)",
    "APN/1.0 Pulumi/1.0 Pulumi/1.0 Pulumi-Aws/0.11+compatible (+https://www.pulumi.com) aws-sdk-go-v2/1.16.16 "
    "os/macos lang/go/1.19.1 md/GOOS/darwin md/GOARCH/amd64 api/sts/1.16.4",
]


def registration(user_agent: str = "", invoked_by: str = "", user_arn: str = "") -> Registration:
    return Registration(
        task_definition_arn=f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/web:3",
        user_agent=user_agent,
        invoked_by=invoked_by,
        user_arn=user_arn,
    )


def from_event(path: str) -> tuple[Attribution, dict[str, Any]]:
    event = load_json(LOCAL_FIXTURES / "events" / path)
    parsed = parse_registration_event(event)
    assert isinstance(parsed, Registration)
    detail = event["detail"]
    tags = (detail.get("requestParameters") or {}).get("tags")
    registered_by = detail["responseElements"]["taskDefinition"].get("registeredBy")
    return attribute(tags, parsed, registered_by), event


def test_the_cloudformation_fixture_names_the_stack_and_gives_the_template_snippet() -> None:
    found, _ = from_event("cloudformation__RegisterTaskDefinition_privileged-last-container.json")
    assert found.tool is Tool.CLOUDFORMATION
    assert found.stack_name == "app-stack"
    assert found.principal == f"arn:aws:sts::{ACCOUNT}:assumed-role/cfn-exec-role/AWSCloudFormation"
    assert found.evidence == (
        "tag aws:cloudformation:stack-name=app-stack",
        "CloudTrail invokedBy cloudformation.amazonaws.com",
    )
    snippet = found.snippet(["agent"])
    assert "in the template of stack app-stack" in snippet
    assert "    - Name: agent\n      Privileged: false" in snippet
    assert NEXT_DEPLOY.format(deploy="stack update") in snippet
    assert found.from_code and found.summary() == "CloudFormation stack app-stack"


def test_all_three_cloudformation_tags_give_stack_logical_id_and_arn() -> None:
    found = attribute(CFN_TAGS, registration("cloudformation.amazonaws.com", "cloudformation.amazonaws.com"))
    assert (found.tool, found.stack_name, found.logical_id, found.stack_arn) == (
        Tool.CLOUDFORMATION,
        "app-stack",
        "WebTaskDefinition",
        STACK_ARN,
    )
    assert found.summary() == "CloudFormation stack app-stack, resource WebTaskDefinition"
    assert "stack app-stack, resource WebTaskDefinition" in found.snippet(["log-router"])


def test_invoked_by_cloudformation_alone_is_enough() -> None:
    found = attribute([], registration(invoked_by="cloudformation.amazonaws.com"))
    assert found.tool is Tool.CLOUDFORMATION and found.stack_name == ""
    assert "Fix it in the template:" in found.snippet(["a"])


def test_a_stack_deployed_through_the_cdk_bootstrap_role_is_cdk() -> None:
    found = attribute(CFN_TAGS, registration(invoked_by="cloudformation.amazonaws.com"), CDK_EXEC_ROLE)
    assert found.tool is Tool.CDK
    assert (found.stack_name, found.logical_id, found.stack_arn) == ("app-stack", "WebTaskDefinition", STACK_ARN)
    assert f"CDK bootstrap role cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-us-east-1" in found.evidence
    snippet = found.snippet(["agent"])
    assert "taskDefinition.addContainer('agent', { /* ... */ privileged: false });" in snippet
    assert "the CDK app that deploys stack app-stack (resource WebTaskDefinition of its template)" in snippet
    assert NEXT_DEPLOY.format(deploy="cdk deploy") in snippet


def test_the_cdk_cli_user_agent_is_cdk_hotswap() -> None:
    found = attribute([], registration(CDK_CLI_AGENT, user_arn=f"arn:aws:iam::{ACCOUNT}:user/dev"))
    assert (found.tool, found.product) == (Tool.CDK, "aws-cdk/2.135.0")
    assert found.evidence == ("user agent aws-cdk/2.135.0 (cdk deploy --hotswap)",)


@pytest.mark.parametrize("agent", TERRAFORM_AGENTS, ids=["provider-3", "provider-5", "provider-6"])
def test_the_terraform_aws_provider_user_agent_is_terraform(agent: str) -> None:
    found = attribute([{"key": "team", "value": "web"}], registration(agent))
    assert found.tool is Tool.TERRAFORM
    assert found.product.startswith("terraform-provider-aws/")
    assert found.product in agent and len(found.product) < 40
    snippet = found.snippet(["agent"])
    assert '{ name = "agent", /* ... */ privileged = false }' in snippet
    assert NEXT_DEPLOY.format(deploy="terraform apply") in snippet


@pytest.mark.parametrize("agent", PULUMI_AGENTS, ids=["pulumi-aws-4", "pulumi-aws-5"])
def test_pulumi_user_agents_are_pulumi_not_terraform(agent: str) -> None:
    found = attribute(None, registration(agent))
    assert found.tool is Tool.PULUMI and found.product.startswith("Pulumi-Aws/")
    assert "privileged: false" in found.snippet(["agent"])


def test_copilot_tags_on_a_cloudformation_revision_are_copilot() -> None:
    tags = [
        *CFN_TAGS,
        {"key": "copilot-application", "value": "shop"},
        {"key": "copilot-environment", "value": "prod"},
        {"key": "copilot-service", "value": "api"},
    ]
    found = attribute(tags, registration(invoked_by="cloudformation.amazonaws.com"))
    assert found.tool is Tool.COPILOT
    assert (found.copilot_application, found.copilot_environment, found.copilot_service) == ("shop", "prod", "api")
    assert found.stack_name == "app-stack"
    assert found.summary() == "Copilot shop/prod/api (stack app-stack, resource WebTaskDefinition)"
    snippet = found.snippet(["api"])
    assert "copilot/api/" in snippet and "ContainerDefinitions[n].Privileged" in snippet and "value: false" in snippet


def test_the_copilot_cli_user_agent_is_copilot() -> None:
    found = attribute([], registration("aws-sdk-go/1.44.0 (go1.20; linux; amd64) aws-copilot/v1.32.1 (linux)"))
    assert (found.tool, found.product) == (Tool.COPILOT, "aws-copilot/v1.32.1")


@pytest.mark.parametrize(
    ("path", "product"),
    [
        (SHARED_FIXTURES / "events" / "SYNTHETIC__eventbridge_RegisterTaskDefinition_privileged.json", "AWS CLI"),
        (SHARED_FIXTURES / "events" / "aws-ecs-devguide__cloudtrail_CreateCluster.json", "AWS console"),
        (SHARED_FIXTURES / "events" / "aws-cloudtrail-userguide__error-code-and-message_UpdateTrail.json", "AWS CLI"),
    ],
    ids=["cli-2", "console", "cli-1"],
)
def test_a_hand_registered_revision_says_so(path: Any, product: str) -> None:
    event = load_json(path)
    detail = event["Records"][0] if "Records" in event else event.get("detail", event)  # log file or EventBridge
    identity = detail.get("userIdentity") or {}
    found = attribute(
        (detail.get("requestParameters") or {}).get("tags"),
        registration(detail.get("userAgent", ""), identity.get("invokedBy", ""), identity.get("arn", "")),
    )
    assert (found.tool, found.product) == (Tool.MANUAL, product)
    assert not found.from_code
    assert found.summary() == f"registered by hand ({product})"
    snippet = found.snippet(["exit"])
    assert "Registered by hand" in snippet and "registers the privileged definition again" not in snippet


def test_cloudshell_and_the_github_action_and_an_sdk() -> None:
    shell = attribute([], registration("aws-cli/2.17.0 ua/2.0 os/linux#6.1 exec-env/CloudShell md/command#ecs.x"))
    assert (shell.tool, shell.product) == (Tool.MANUAL, "AWS CloudShell")
    action = attribute(
        [],
        registration(
            "aws-sdk-js/3.600.0 ua/2.1 os/linux#6.5 lang/js md/nodejs#20.15 api/ecs#3.600.0 "
            "amazon-ecs-deploy-task-definition-for-github-actions"
        ),
    )
    assert action.tool is Tool.GITHUB_ACTIONS and "task-definition JSON file" in action.snippet(["web"])
    script = attribute([], registration("Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1 lang/python#3.11.6"))
    assert (script.tool, script.product, script.summary()) == (
        Tool.UNKNOWN,
        "Boto3/1.34.0",
        "source not recognised (Boto3/1.34.0)",
    )


def test_every_tool_has_a_snippet_even_without_container_names() -> None:
    for tool in Tool:
        snippet = Attribution(tool, ()).snippet([])
        assert snippet and not snippet.startswith("Containers") and "\n\n" not in snippet


def test_the_sweep_has_tags_and_registered_by_only() -> None:
    assert attribute(CFN_TAGS, None, CDK_EXEC_ROLE).tool is Tool.CDK
    assert attribute(CFN_TAGS, None, f"arn:aws:iam::{ACCOUNT}:user/alice").tool is Tool.CLOUDFORMATION
    unknown = attribute([{"key": "team", "value": "web"}], None, f"arn:aws:iam::{ACCOUNT}:user/alice")
    assert unknown.tool is Tool.UNKNOWN and unknown.principal == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert "no CloudTrail registration event" in unknown.evidence[0]


def test_cloudformation_stack_of_a_service() -> None:
    # DescribeServices include=TAGS: services[].tags, lower-case key/value.
    assert cloudformation_stack_of(CFN_TAGS) == CloudFormationStack("app-stack", "WebTaskDefinition", STACK_ARN)
    assert cloudformation_stack_of([{"key": "aws:cloudformation:stack-id", "value": STACK_ARN}]) == (
        CloudFormationStack("app-stack", "", STACK_ARN)
    )
    assert cloudformation_stack_of([{"Key": "aws:cloudformation:stack-name", "Value": "app"}]) == CloudFormationStack(
        "app"
    )
    assert cloudformation_stack_of([{"key": "team", "value": "web"}]) is None
    assert cloudformation_stack_of(None) is None
    # Not a stack name or not a stack ARN: ignored, not echoed.
    assert cloudformation_stack_of([{"key": "aws:cloudformation:stack-name", "value": "bad name\n<b>"}]) is None
    assert cloudformation_stack_of([{"key": "aws:cloudformation:stack-id", "value": "arn:aws:s3:::x"}]) is None


SECRET = "sk_live_TOPSECRET_0123456789"


def test_nothing_but_the_recognised_tokens_reaches_the_result() -> None:
    tags = [*CFN_TAGS, {"key": "db-password", "value": SECRET}, {"key": "copilot-service", "value": "api\n<b>x</b>"}]
    agent = f"{TERRAFORM_AGENTS[1]} {SECRET} <script>alert(1)</script>\n"
    found = attribute(tags, registration(agent, user_arn=f"arn:aws:iam::{ACCOUNT}:user/{SECRET}\nx"))
    rendered = repr(found.to_json()) + found.summary() + found.snippet(["agent"])
    assert SECRET not in rendered and "db-password" not in rendered
    assert "<script>" not in rendered and "<b>" not in rendered and "\n" not in repr(found.to_json())
    assert found.copilot_service == "apibx/b"  # a tag the policed can write: cleaned to name characters
    assert found.principal == ""  # not an ARN once the newline is in it


text = st.text(max_size=600) | st.sampled_from(["aws:cloudformation:stack-name", "copilot-service", "x" * 10_000])
hostile_tags = st.one_of(
    json_values,
    st.lists(
        st.dictionaries(st.sampled_from(["key", "value", "Key", "Value", "other"]), text | json_values), max_size=60
    ),
    st.dictionaries(text, text, max_size=20),
)
hostile_registration = st.one_of(
    st.none(),
    json_values,
    st.builds(
        SimpleNamespace, invoked_by=text | json_values, user_agent=text | json_values, user_arn=text | json_values
    ),
)


@settings(FUZZ, max_examples=scaled(1500))
@given(
    tags=hostile_tags,
    found_in=hostile_registration,
    registered_by=text | json_values,
    names=st.lists(text, max_size=30),
)
def test_hostile_input_never_raises_and_stays_small_and_printable(
    tags: Any, found_in: Any, registered_by: Any, names: list[str]
) -> None:
    found = attribute(tags, found_in, registered_by)
    fields = found.to_json()
    strings = [
        fields["tool"],
        *fields["evidence"],
        fields["stackName"],
        fields["logicalId"],
        fields["stackArn"],
        fields["principal"],
        fields["product"],
        *fields["copilot"].values(),
        found.summary(),
    ]
    for value in strings:
        assert isinstance(value, str) and len(value) <= 450 and value.isprintable(), value[:100]
    snippet = found.snippet(names)
    assert len(snippet) <= 4000 and all(line.isprintable() for line in snippet.splitlines())
    assert len(found.evidence) <= 8
    stack = cloudformation_stack_of(tags)
    assert stack is None or (stack.name.isprintable() and len(stack.name) <= 128)
