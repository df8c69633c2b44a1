"""Pure: which tool registered a revision (CloudFormation, CDK, Terraform, Pulumi, Copilot, by hand), and what
to change at that source so the next deploy does not bring the privileged definition back.

Read from what AWS records and what the policed can write alike: the revision's tags (the `aws:` ones only
AWS can set), the CloudTrail registration (`invokedBy` is AWS's; the user agent is the caller's and can be
forged) and DescribeTaskDefinition's `registeredBy`. So an attribution is a hint for the notice, never a
reason to skip or exempt anything. Every string in the result is a name, an ARN or a product token, cleaned
and length-capped: safe to put in a notice (no task-definition content, no whole user-agent string).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

STACK_NAME_TAG = "aws:cloudformation:stack-name"
LOGICAL_ID_TAG = "aws:cloudformation:logical-id"
STACK_ID_TAG = "aws:cloudformation:stack-id"
CLOUDFORMATION_PRINCIPAL = "cloudformation.amazonaws.com"
COPILOT_TAGS = ("copilot-application", "copilot-environment", "copilot-service", "copilot-task")
NEXT_DEPLOY = "The next {deploy} registers the privileged definition again until the source is fixed."
MAX_TAGS = 200  # more than ECS allows (50): a hostile list is cut, not walked
MAX_CONTAINERS_SHOWN = 10

_STACK_ARN_RE = re.compile(
    r"arn:aws[a-z-]*:cloudformation:[a-z0-9-]+:\d{12}:stack/(?P<name>[A-Za-z][A-Za-z0-9-]{0,127})/[A-Za-z0-9-]{1,64}",
    re.ASCII,
)
_STACK_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}", re.ASCII)
_LOGICAL_ID_RE = re.compile(r"[A-Za-z0-9]{1,255}", re.ASCII)
_ARN_RE = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:[A-Za-z0-9:/_+=,.@-]{1,400}", re.ASCII)
# CDK bootstrap roles (default synthesizer): cdk-<qualifier>-<kind>-role-<account>-<region>; CloudFormation
# deploys through cfn-exec-role, `cdk deploy --hotswap` calls ECS itself with deploy-role.
_CDK_ROLE_RE = re.compile(r"\bcdk-[a-z0-9]{1,10}-(?:cfn-exec|deploy)-role-\d{12}-[a-z0-9-]+", re.ASCII)
# Product tokens of user agents, as the tools send them (see docs/iac.md for the sources); in each tuple the
# more specific token first.
_VERSION = r"/v?[0-9][\w.+-]{0,40}"
_TERRAFORM = (re.compile(r"\bterraform-provider-aws" + _VERSION), re.compile(r"\bHashiCorp/1\.0 Terraform" + _VERSION))
_CDK = (re.compile(r"\baws-cdk" + _VERSION),)
_PULUMI = (re.compile(r"\b(?:Pulumi-Aws|pulumi-aws|PulumiAwsNative)" + _VERSION), re.compile(r"\bPulumi" + _VERSION))
_COPILOT = (re.compile(r"\b(?:aws-copilot|aws-ecs-cli-v2)" + _VERSION),)
_GITHUB_ACTION = "amazon-ecs-deploy-task-definition-for-github-actions"
_CLI = (re.compile(r"\baws-cli" + _VERSION),)
_SDK = (re.compile(r"\b(?:Boto3|aws-sdk-[a-z0-9-]{1,20})" + _VERSION),)
_CONSOLE_RE = re.compile(r"\A(?:[a-z0-9-]+\.)?console\.amazonaws\.com\Z")
_SAFE = re.compile(r"[^A-Za-z0-9 _.:/=+@,#-]")


class Tool(StrEnum):
    CLOUDFORMATION = "CloudFormation"
    CDK = "CDK"
    TERRAFORM = "Terraform"
    PULUMI = "Pulumi"
    COPILOT = "Copilot"
    GITHUB_ACTIONS = "GitHub Actions"
    MANUAL = "by hand"  # the console, or the AWS CLI (by hand or from a script)
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CloudFormationStack:
    """The stack that manages a resource, from its `aws:cloudformation:*` tags."""

    name: str
    logical_id: str = ""
    arn: str = ""


@dataclass(frozen=True)
class Attribution:
    tool: Tool
    evidence: tuple[str, ...]  # what it was recognised from, e.g. "tag aws:cloudformation:stack-name=app"
    stack_name: str = ""
    logical_id: str = ""
    stack_arn: str = ""
    principal: str = ""  # who registered it (registeredBy, or the event's user ARN)
    product: str = ""  # the recognised product token, e.g. "terraform-provider-aws/5.57.0", "AWS CLI"
    copilot_application: str = ""
    copilot_environment: str = ""
    copilot_service: str = ""

    @property
    def from_code(self) -> bool:
        """A tool that registers again on its next run (so a copy alone does not last)."""
        return self.tool not in (Tool.MANUAL, Tool.UNKNOWN)

    def summary(self) -> str:
        """One line for a notice or a sweep row."""
        stack = f"stack {self.stack_name}" if self.stack_name else ""
        where = f"{stack}, resource {self.logical_id}" if stack and self.logical_id else stack
        if self.tool is Tool.COPILOT:
            names = "/".join(n for n in (self.copilot_application, self.copilot_environment, self.copilot_service) if n)
            return _cap(f"Copilot {names}".strip() + (f" ({where})" if where else ""), 300)
        if self.tool in (Tool.CLOUDFORMATION, Tool.CDK):
            return _cap(f"{self.tool.value} {where}".strip(), 300)
        if self.tool is Tool.MANUAL:
            return f"registered by hand ({self.product or 'console or AWS CLI'})"
        if self.tool is Tool.UNKNOWN:
            return "source not recognised" + (f" ({self.product})" if self.product else "")
        return _cap(f"{self.tool.value} ({self.product})" if self.product else self.tool.value, 300)

    def snippet(self, containers: Sequence[str]) -> str:
        """What to change at the source, for this tool, for these containers (names as registered)."""
        names = [_cap(_SAFE.sub("", str(c)), 64) or "?" for c in list(containers)[:MAX_CONTAINERS_SHOWN]]
        more = len(containers) - len(names)
        shown = ", ".join(repr(n) for n in names) + (f" and {more} more" if more > 0 else "")
        lines = _SNIPPETS[self.tool](self, names)
        return "\n".join([f"Containers: {shown}." if names else "", *lines]).lstrip("\n")

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool.value,
            "evidence": list(self.evidence),
            "stackName": self.stack_name,
            "logicalId": self.logical_id,
            "stackArn": self.stack_arn,
            "principal": self.principal,
            "product": self.product,
            "copilot": {
                "application": self.copilot_application,
                "environment": self.copilot_environment,
                "service": self.copilot_service,
            },
        }


def attribute(tags: Any = None, registration: Any = None, registered_by: Any = None) -> Attribution:
    """Recognise the source of a revision.

    tags: the revision's tags as DescribeTaskDefinition returns them (`[{"key", "value"}]`; `Key`/`Value`
    and a plain mapping are read too). registration: an events.Registration (its invoked_by, user_agent and
    user_arn are read), or None in the sweep. registered_by: DescribeTaskDefinition's `registeredBy`.
    Never raises, whatever the types.
    """
    tag_map = tag_dict(tags)
    invoked_by = _text(getattr(registration, "invoked_by", ""), 256)
    user_agent = _text(getattr(registration, "user_agent", ""), 4096)
    user_arn = _arn(getattr(registration, "user_arn", ""))
    principal = _arn(registered_by) or user_arn
    evidence: list[str] = []

    stack = _stack(tag_map, evidence)
    by_cloudformation = CLOUDFORMATION_PRINCIPAL in (invoked_by, user_agent.strip())
    if invoked_by == CLOUDFORMATION_PRINCIPAL:
        evidence.append(f"CloudTrail invokedBy {CLOUDFORMATION_PRINCIPAL}")
    elif user_agent.strip() == CLOUDFORMATION_PRINCIPAL:
        evidence.append(f"CloudTrail userAgent {CLOUDFORMATION_PRINCIPAL}")
    stack_fields = {
        "stack_name": stack.name if stack else "",
        "logical_id": stack.logical_id if stack else "",
        "stack_arn": stack.arn if stack else "",
        "principal": principal,
    }

    copilot = {key: _clean_tag(tag_map.get(key, "")) for key in COPILOT_TAGS}
    copilot_agent = _token(_COPILOT, user_agent)
    if any(copilot.values()) or copilot_agent:
        evidence += [f"tag {key}={value}" for key, value in copilot.items() if value]
        if copilot_agent:
            evidence.append(f"user agent {copilot_agent}")
        return Attribution(
            Tool.COPILOT,
            tuple(evidence),
            product=copilot_agent,
            copilot_application=copilot["copilot-application"],
            copilot_environment=copilot["copilot-environment"],
            copilot_service=copilot["copilot-service"] or copilot["copilot-task"],
            **stack_fields,
        )

    cdk_role = next((m[0] for m in (_CDK_ROLE_RE.search(a) for a in (principal, user_arn) if a) if m), "")
    cdk_agent = _token(_CDK, user_agent)
    if cdk_role or cdk_agent:
        if cdk_role:
            evidence.append(f"CDK bootstrap role {cdk_role}")
        if cdk_agent:
            evidence.append(
                f"user agent {cdk_agent}" + ("" if stack or by_cloudformation else " (cdk deploy --hotswap)")
            )
        return Attribution(Tool.CDK, tuple(evidence), product=cdk_agent, **stack_fields)

    if stack or by_cloudformation:
        return Attribution(Tool.CLOUDFORMATION, tuple(evidence), **stack_fields)

    for tool, pattern in ((Tool.PULUMI, _PULUMI), (Tool.TERRAFORM, _TERRAFORM)):
        # Pulumi first: its AWS provider is built on Terraform's and older versions sent Terraform's agent too.
        if product := _token(pattern, user_agent):
            return Attribution(tool, (*evidence, f"user agent {product}"), principal=principal, product=product)
    if _GITHUB_ACTION in user_agent:
        evidence.append(f"user agent {_GITHUB_ACTION}")
        return Attribution(
            Tool.GITHUB_ACTIONS, tuple(evidence), principal=principal, product="amazon-ecs-deploy-task-definition"
        )
    if cli := _token(_CLI, user_agent):
        product = "AWS CloudShell" if "exec-env/CloudShell" in user_agent else "AWS CLI"
        return Attribution(Tool.MANUAL, (*evidence, f"user agent {cli}"), principal=principal, product=product)
    if _CONSOLE_RE.match(user_agent.strip()):
        agent = _cap(_SAFE.sub("", user_agent.strip()), 64)
        return Attribution(Tool.MANUAL, (*evidence, f"user agent {agent}"), principal=principal, product="AWS console")
    sdk = _token(_SDK, user_agent)
    if sdk:
        evidence.append(f"user agent {sdk} (an AWS SDK: a script or a tool this does not know)")
    elif registration is None:
        evidence.append("no CloudTrail registration event (sweep): tags and registeredBy only")
    return Attribution(Tool.UNKNOWN, tuple(evidence), principal=principal, product=sdk)


def cloudformation_stack_of(tags: Any) -> CloudFormationStack | None:
    """The CloudFormation stack a resource belongs to, from its tags (e.g. DescribeServices include=TAGS),
    or None. Only AWS can set `aws:` tags, so a developer cannot make a resource look stack-managed."""
    return _stack(tag_dict(tags), [])


def tag_dict(tags: Any) -> dict[str, str]:
    """Tags as a mapping, from `[{"key", "value"}]`, `[{"Key", "Value"}]` or a mapping; the first of a
    duplicate key wins; anything that is not a string pair is skipped."""
    pairs: Iterable[Any]
    if isinstance(tags, Mapping):
        pairs = list(tags.items())[:MAX_TAGS]
    elif isinstance(tags, list | tuple):
        pairs = []
        for tag in tags[:MAX_TAGS]:
            if isinstance(tag, Mapping):
                key = tag.get("key", tag.get("Key"))
                value = tag.get("value", tag.get("Value", ""))
                pairs.append((key, value))
    else:
        return {}
    result: dict[str, str] = {}
    for key, value in pairs:
        if isinstance(key, str) and isinstance(value, str) and len(key) <= 128 and key not in result:
            result[key] = value[:256]
    return result


def _stack(tags: Mapping[str, str], evidence: list[str]) -> CloudFormationStack | None:
    name = _match(_STACK_NAME_RE, tags.get(STACK_NAME_TAG, ""))
    logical_id = _match(_LOGICAL_ID_RE, tags.get(LOGICAL_ID_TAG, ""))
    arn_match = _STACK_ARN_RE.fullmatch(tags.get(STACK_ID_TAG, ""))
    arn = arn_match[0] if arn_match else ""
    name = name or (arn_match["name"] if arn_match else "")
    if not name:
        return None
    for key, value in ((STACK_NAME_TAG, name), (LOGICAL_ID_TAG, logical_id), (STACK_ID_TAG, arn)):
        if value and key in tags:
            evidence.append(f"tag {key}={value}")
    return CloudFormationStack(name, logical_id, arn)


def _snippet_cloudformation(attribution: Attribution, names: list[str]) -> list[str]:
    where = _where(attribution, "in the template")
    return [
        f"Fix it {where}: set Privileged to false under each named container:",
        "  ContainerDefinitions:",
        *[line for name in names for line in (f"    - Name: {name}", "      Privileged: false")],
        '(In a JSON template: "Privileged": false.) `ecs-remediate fix TEMPLATE` makes exactly this change.',
        NEXT_DEPLOY.format(deploy="stack update"),
    ]


def _snippet_cdk(attribution: Attribution, names: list[str]) -> list[str]:
    stack = f" that deploys stack {attribution.stack_name}" if attribution.stack_name else ""
    resource = f" (resource {attribution.logical_id} of its template)" if attribution.logical_id else ""
    return [
        f"Fix it in the CDK app{stack}{resource}: privileged: false where each container is added:",
        *[f"  taskDefinition.addContainer('{name}', {{ /* ... */ privileged: false }});" for name in names],
        "(Python: privileged=False; an L1 CfnTaskDefinition or CfnDaemonTaskDefinition: privileged: false in its"
        " container definition.) `ecs-remediate fix cdk.out/STACK.template.json` shows the change in the"
        " synthesized template.",
        NEXT_DEPLOY.format(deploy="cdk deploy"),
    ]


def _snippet_terraform(_: Attribution, names: list[str]) -> list[str]:
    return [
        "Fix it in the Terraform configuration: privileged = false for each named container.",
        "  aws_ecs_task_definition, in container_definitions = jsonencode([...]):",
        *[f'    {{ name = "{name}", /* ... */ privileged = false }}' for name in names],
        '  (a JSON file read with file(): "privileged": false)',
        "  aws_ecs_daemon_task_definition: container_definition { name = ... privileged = false }",
        "`ecs-remediate fix --check` on `terraform show -json` output lists the addresses still privileged.",
        NEXT_DEPLOY.format(deploy="terraform apply"),
    ]


def _snippet_pulumi(_: Attribution, names: list[str]) -> list[str]:
    return [
        "Fix it in the Pulumi program: privileged: false in the containerDefinitions of each named container:",
        *[f'  {{ name: "{name}", /* ... */ privileged: false }}' for name in names],
        NEXT_DEPLOY.format(deploy="pulumi up"),
    ]


def _snippet_copilot(attribution: Attribution, names: list[str]) -> list[str]:
    service = attribution.copilot_service or "SERVICE"
    return [
        f"Fix it in copilot/{service}/: the manifest's taskdef_overrides (or a YAML patch under overrides/) sets"
        " Privileged; set it to false (index n: the container's place in the task definition):",
        "  taskdef_overrides:",
        "    - path: ContainerDefinitions[n].Privileged",
        "      value: false",
        NEXT_DEPLOY.format(deploy="copilot deploy"),
    ]


def _snippet_github_actions(_: Attribution, names: list[str]) -> list[str]:
    return [
        "Fix it in the task-definition JSON file that the workflow's amazon-ecs-deploy-task-definition step reads"
        ' (its task-definition input): "privileged": false for each named container.',
        "`ecs-remediate fix FILE` writes the fixed file.",
        NEXT_DEPLOY.format(deploy="workflow run"),
    ]


def _snippet_manual(attribution: Attribution, names: list[str]) -> list[str]:
    return [
        f"Registered by hand ({attribution.product or 'console or AWS CLI'}): register the next revision without"
        ' privileged (console: turn off Privileged for the container; CLI: "privileged": false in its container'
        " definition). Nothing re-registers it on its own, but a saved copy of the privileged JSON would.",
    ]


def _snippet_unknown(_: Attribution, names: list[str]) -> list[str]:
    return [
        'Source not recognised: set "privileged": false for each named container where this family is defined.',
        NEXT_DEPLOY.format(deploy="registration from that source"),
    ]


_SNIPPETS = {
    Tool.CLOUDFORMATION: _snippet_cloudformation,
    Tool.CDK: _snippet_cdk,
    Tool.TERRAFORM: _snippet_terraform,
    Tool.PULUMI: _snippet_pulumi,
    Tool.COPILOT: _snippet_copilot,
    Tool.GITHUB_ACTIONS: _snippet_github_actions,
    Tool.MANUAL: _snippet_manual,
    Tool.UNKNOWN: _snippet_unknown,
}


def _where(attribution: Attribution, default: str) -> str:
    if not attribution.stack_name:
        return default
    resource = f", resource {attribution.logical_id}" if attribution.logical_id else ""
    return f"in the template of stack {attribution.stack_name}{resource}"


def _token(patterns: tuple[re.Pattern[str], ...], user_agent: str) -> str:
    """The first of `patterns` found anywhere in the user agent (a specific product beats a generic token)."""
    for pattern in patterns:
        match = pattern.search(user_agent)
        if match:
            return _cap(_SAFE.sub("", match[0]), 80)
    return ""


def _match(pattern: re.Pattern[str], value: str) -> str:
    return value if pattern.fullmatch(value) else ""


def _arn(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    match = _ARN_RE.fullmatch(value.strip())
    return match[0] if match else ""


def _clean_tag(value: str) -> str:
    return _cap(_SAFE.sub("", value).strip(), 128)


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
