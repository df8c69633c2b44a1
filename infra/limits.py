"""What AWS refuses at deploy time and synth can see: the size limits, how AWS counts each, and one check over the
synthesized templates (app.py runs it; a figure over its limit fails synth naming the context key behind it).

  Lambda environment   4 KB (4,096 bytes) per function: the variables as Lambda measures them, the JSON object of
                       names and values (its error quotes "String measured: {...}")
  IAM role policies    10,240 characters for all the inline policies of one role together, whitespace not counted
  EventBridge pattern  2,048 characters per rule (the default quota; counted on the compact JSON)
  StackSet template    51,200 bytes for an inline TemplateBody (the member template of the organization hub)
  SCP                  5,120 characters: checked where the document is built,
                       ecs_remediate.organization.guardrail.build_guardrail
                       (the CLI, guardrail=print and guardrail=attach all pass through it)

Values CloudFormation fills in only at deploy time are bounded from above: a 12-digit account, the longest partition
(aws-us-gov), 16 characters of Region (the longest Region name has 15), and for a name CloudFormation generates,
"<stack>-<logical id>-<13-character suffix>" cut to the service's longest name (a StackSets instance's stack name is
"StackSet-<StackSet name>-<36-character id>"); a parameter's value at CloudFormation's 4,096 bytes. So a figure here is
at least what AWS will count, and a deployment that passes this check is within the limit whatever those values are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecs_remediate.core import config as env
from ecs_remediate.functions.org_sweep import ENV_EXCLUDED, ENV_OUS, ENV_REGIONS

from .settings import (
    CTX_DAEMON_ROLLOUT,
    CTX_EXCLUDED_ACCOUNTS,
    CTX_EXEMPT_FAMILIES,
    CTX_EXEMPTION_APPROVERS,
    CTX_MEMBER_ROLE_NAME,
    CTX_NOTIFY_ON,
    CTX_REGIONS,
    CTX_RETIRE,
    CTX_ROLLOUT,
    CTX_SECURITY_HUB,
    CTX_SWEEP_INVENTORY,
    CTX_TAG_EXEMPTIONS,
    CTX_TAG_PREFIX,
    CTX_TARGET_OUS,
    ContextError,
    StackSettings,
)

LAMBDA_ENVIRONMENT_BYTES = 4096
IAM_ROLE_POLICIES_CHARACTERS = 10_240
EVENT_PATTERN_CHARACTERS = 2048
STACK_SET_TEMPLATE_BODY_BYTES = 51_200

# The variables whose size a context key sets (the others are fixed, or names CloudFormation gives).
VARIABLE_KEYS = {
    env.ENV_EXEMPTION_APPROVERS: CTX_EXEMPTION_APPROVERS,
    env.ENV_EXEMPT_FAMILIES: CTX_EXEMPT_FAMILIES,
    env.ENV_NOTIFY_ON: CTX_NOTIFY_ON,
    env.ENV_TAG_PREFIX: CTX_TAG_PREFIX,
    env.ENV_MEMBER_ROLE_NAME: CTX_MEMBER_ROLE_NAME,
    ENV_OUS: CTX_TARGET_OUS,
    ENV_REGIONS: CTX_REGIONS,
    ENV_EXCLUDED: CTX_EXCLUDED_ACCOUNTS,
}
# The options that add statements to the function and sweep roles (runtime_iam.py, daemons.py, security_hub.py).
ROLE_OPTION_KEYS = (
    CTX_ROLLOUT,
    CTX_RETIRE,
    CTX_DAEMON_ROLLOUT,
    CTX_SECURITY_HUB,
    CTX_SWEEP_INVENTORY,
    CTX_TAG_EXEMPTIONS,
)

PARTITION = "aws-us-gov"
REGION = "r" * 16
ACCOUNT = "1" * 12
URL_SUFFIX = "amazonaws.com.cn"
GENERATED_SUFFIX = 13
PARAMETER_BYTES = 4096
STACK_SET_STACK_NAME = "StackSet-{name}-" + "u" * 36


@dataclass(frozen=True)
class _Kind:
    """How a resource type answers Ref and Fn::GetAtt: its name property, the longest name the service takes (a
    generated name is cut to it), what Ref returns, and its ARN."""

    name_property: str | None
    longest_name: int
    ref: str  # what Ref returns: "name" (or an id), "arn" or "url"
    arn: str


_KINDS = {
    "AWS::IAM::Role": _Kind("RoleName", 64, "name", "arn:{p}:iam::{a}:role{path}{name}"),
    "AWS::Lambda::Function": _Kind("FunctionName", 64, "name", "arn:{p}:lambda:{r}:{a}:function:{name}"),
    "AWS::DynamoDB::Table": _Kind("TableName", 255, "name", "arn:{p}:dynamodb:{r}:{a}:table/{name}"),
    "AWS::SNS::Topic": _Kind("TopicName", 256, "arn", "arn:{p}:sns:{r}:{a}:{name}"),
    "AWS::SQS::Queue": _Kind("QueueName", 80, "url", "arn:{p}:sqs:{r}:{a}:{name}"),
    "AWS::Logs::LogGroup": _Kind("LogGroupName", 512, "name", "arn:{p}:logs:{r}:{a}:log-group:{name}:*"),
    "AWS::KMS::Key": _Kind(None, 36, "name", "arn:{p}:kms:{r}:{a}:key/{name}"),  # its "name": a 36-character key id
    "AWS::S3::Bucket": _Kind("BucketName", 63, "name", "arn:{p}:s3:::{name}"),
    "AWS::StepFunctions::StateMachine": _Kind(
        "StateMachineName", 80, "arn", "arn:{p}:states:{r}:{a}:stateMachine:{name}"
    ),
    "AWS::Events::EventBus": _Kind("Name", 256, "name", "arn:{p}:events:{r}:{a}:event-bus/{name}"),
}
_GENERIC = _Kind(None, 256, "name", "arn:{p}:{service}:{r}:{a}:{name}")
_NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class Bounds:
    """Resolves a fragment of one template to the longest value each intrinsic can take at deploy time."""

    def __init__(self, template: Mapping[str, Any], stack_name: str) -> None:
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.parameters: Mapping[str, Any] = template.get("Parameters", {})
        self.mappings: Mapping[str, Any] = template.get("Mappings", {})
        self.stack_name = stack_name

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), *_ = value.items()
            if function == "Ref":
                return self._ref(argument)
            if function.startswith("Fn::") and function != "Fn::Transform":
                return self._function(function, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _function(self, function: str, argument: Any) -> Any:
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self._attribute(logical_id, attribute)
        if function == "Fn::Join":
            separator, parts = argument
            return str(separator).join(str(part) for part in self.resolve(parts))
        if function == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text)).split(separator)
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
        if function == "Fn::If":  # the longer branch
            _, *branches = argument
            return max((self.resolve(branch) for branch in branches), key=lambda v: len(json.dumps(v)))
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return _SUB_VARIABLE.sub(lambda match: self._sub_variable(match.group(1), variables), text)
        if function == "Fn::FindInMap":
            values = list(_leaves(self.mappings.get(self.resolve(argument[0]), {})))  # the longest of the map
            return max(values, key=lambda v: len(json.dumps(v))) if values else "m" * PARAMETER_BYTES
        if function == "Fn::Base64":
            return "b" * (-(-len(str(self.resolve(argument))) // 3) * 4)
        if function == "Fn::GetAZs":
            return [REGION + "z"] * 6
        raise ValueError(f"infra/limits.py cannot bound {function}; add it")

    def _sub_variable(self, name: str, variables: Mapping[str, Any]) -> str:
        if name in variables:
            return str(self.resolve(variables[name]))
        if "." in name and not name.startswith("AWS::"):
            logical_id, attribute = name.split(".", 1)
            return str(self._attribute(logical_id, attribute))
        return str(self._ref(name))

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION,
            "AWS::Region": REGION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{self.stack_name}/{'u' * 36}",
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            parameter = self.parameters[name]
            value = "v" * int(parameter.get("MaxLength", PARAMETER_BYTES))
            return [value] if "List" in str(parameter.get("Type", "")) else value
        ref = self._kind(name)[0].ref
        return self._arn(name) if ref == "arn" else self._url(name) if ref == "url" else self._name(name)

    def _attribute(self, logical_id: str, attribute: str) -> Any:
        if attribute == "QueueUrl":
            return self._url(logical_id)
        if attribute.endswith("Name") or attribute in ("KeyId", "Id"):
            return self._name(logical_id)
        return self._arn(logical_id)  # Arn, TopicArn, and anything else: an ARN is the longest

    def _kind(self, logical_id: str) -> tuple[_Kind, Mapping[str, Any]]:
        resource = self.resources[logical_id]
        return _KINDS.get(resource["Type"], _GENERIC), resource

    def _name(self, logical_id: str) -> str:
        kind, resource = self._kind(logical_id)
        given = resource.get("Properties", {}).get(kind.name_property) if kind.name_property else None
        if given is not None:
            return str(self.resolve(given))
        generated = len(self.stack_name) + 1 + len(logical_id) + 1 + GENERATED_SUFFIX
        return "n" * (kind.longest_name if kind.name_property is None else min(kind.longest_name, generated))

    def _url(self, logical_id: str) -> str:
        return f"https://sqs.{REGION}.{URL_SUFFIX}/{ACCOUNT}/{self._name(logical_id)}"

    def _arn(self, logical_id: str) -> str:
        kind, resource = self._kind(logical_id)
        service = str(resource["Type"]).split("::")[1].lower()
        path = str(self.resolve(resource.get("Properties", {}).get("Path", "/")))  # an IAM path, "/" by default
        name = self._name(logical_id)
        return kind.arn.format(p=PARTITION, r=REGION, a=ACCOUNT, name=name, service=service, path=path)


def _leaves(mapping: Mapping[str, Any]) -> Iterable[Any]:
    for value in mapping.values():
        yield from _leaves(value) if isinstance(value, Mapping) else [value]


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def environment_bytes(variables: Mapping[str, str]) -> int:
    """Lambda's count: the JSON object of the variables, in bytes."""
    return len(compact(dict(variables)).encode("utf-8"))


def policy_characters(document: Any) -> int:
    """IAM's count: the policy's characters, whitespace not counted."""
    return sum(1 for character in compact(document) if not character.isspace())


@dataclass(frozen=True)
class Limit:
    what: str
    service: str
    maximum: int
    unit: str  # and how it is counted


LAMBDA_ENVIRONMENT = Limit("the environment", "Lambda", LAMBDA_ENVIRONMENT_BYTES, "bytes (its variables as JSON)")
ROLE_POLICIES = Limit(
    "the inline policies", "IAM", IAM_ROLE_POLICIES_CHARACTERS, "characters (all together, whitespace not counted)"
)
EVENT_PATTERN = Limit("the event pattern", "EventBridge", EVENT_PATTERN_CHARACTERS, "characters")
STACK_SET_BODY = Limit("the inline TemplateBody", "CloudFormation", STACK_SET_TEMPLATE_BODY_BYTES, "bytes")


@dataclass(frozen=True)
class Figure:
    """One measured value against its limit, and the context key that drives it ("" when none: a fixed size)."""

    limit: Limit
    where: str
    size: int
    key: str
    hint: str = ""

    @property
    def over(self) -> bool:
        return self.size > self.limit.maximum

    def message(self) -> str:
        key = self.key or "(no context key: a defect of ecs-remediate)"
        hint = f"; {self.hint}" if self.hint else ""
        limit = self.limit
        return (
            f"{key}: {limit.what} of {self.where} would be {self.size:,} {limit.unit}, over {limit.service}'s limit of "
            f"{limit.maximum:,}{hint}"
        )


def measure(
    template: Mapping[str, Any],
    stack_name: str,
    *,
    label: str | None = None,
    enabled: Sequence[str] = (),
    tag_prefix: str = "",
    member: bool = False,
) -> list[Figure]:
    """Every limited value of one template. `label`: how a message names the template (default `stack_name`, the name
    the stack deploys under); `enabled`: the role options on (ROLE_OPTION_KEYS), named when a role's policies are over;
    `member`: the template is the organization's member template (its member role grows with `regions`). A StackSet's
    inline member template is measured as well, as a template of its own."""
    bounds = Bounds(template, stack_name)
    resources: Mapping[str, Any] = template.get("Resources", {})
    label = label or stack_name
    figures: list[Figure] = []
    role_policies: dict[str, list[Any]] = {}
    for logical_id, resource in resources.items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        where = f"{label}/{logical_id}"
        if kind == "AWS::Lambda::Function" and "Environment" in properties:
            figures.append(_environment(where, bounds.resolve(properties["Environment"]).get("Variables", {})))
        elif kind == "AWS::IAM::Policy":
            for role in properties.get("Roles", []):
                if isinstance(role, dict) and role.get("Ref") in resources:
                    role_policies.setdefault(role["Ref"], []).append(bounds.resolve(properties["PolicyDocument"]))
        elif kind == "AWS::IAM::Role":
            documents = [bounds.resolve(policy["PolicyDocument"]) for policy in properties.get("Policies", [])]
            role_policies.setdefault(logical_id, []).extend(documents)
        elif kind == "AWS::Events::Rule" and "EventPattern" in properties:
            pattern = compact(bounds.resolve(properties["EventPattern"]))
            key = CTX_TAG_PREFIX if tag_prefix and f'"{tag_prefix}:' in pattern else ""
            figures.append(Figure(EVENT_PATTERN, where, len(pattern), key))
        elif kind == "AWS::CloudFormation::StackSet":
            body = str(bounds.resolve(properties["TemplateBody"]))
            figures.append(stack_set_body(where, body))
            instance = STACK_SET_STACK_NAME.format(name=bounds.resolve(properties.get("StackSetName", "n" * 128)))
            options = {"enabled": enabled, "tag_prefix": tag_prefix}
            figures += measure(json.loads(body), instance, label=f"{where} (member template)", member=True, **options)
    for role, documents in role_policies.items():
        size = sum(policy_characters(document) for document in documents)
        if member and resources[role].get("Properties", {}).get("Policies"):
            key, hint = CTX_REGIONS, "the member role has its statements once per Region: cover fewer Regions"
        else:
            key, hint = "/".join(enabled), "turn an option off" if enabled else ""
        figures.append(Figure(ROLE_POLICIES, f"{label}/{role}", size, key, hint))
    return figures


def stack_set_body(where: str, body: str) -> Figure:
    """The StackSet's inline TemplateBody (the member template; it grows with `regions`)."""
    return Figure(
        STACK_SET_BODY, where, len(body.encode("utf-8")), CTX_REGIONS, "cover fewer Regions, or turn an option off"
    )


def _environment(where: str, variables: Mapping[str, str]) -> Figure:
    sized = {name: len(str(value)) for name, value in variables.items() if name in VARIABLE_KEYS}
    largest = max(sized, key=lambda name: sized[name], default=None)
    if largest is None:
        return Figure(LAMBDA_ENVIRONMENT, where, environment_bytes(variables), "")
    hint = f"{largest} takes {sized[largest]:,} of them: give fewer or shorter values"
    return Figure(LAMBDA_ENVIRONMENT, where, environment_bytes(variables), VARIABLE_KEYS[largest], hint)


def check(figures: Iterable[Figure]) -> None:
    """Raise ContextError naming each figure over its limit (one line), before anything is deployed."""
    over = [figure.message() for figure in figures if figure.over]
    if over:
        raise ContextError("; ".join(over))


def measure_stacks(
    stacks: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    enabled: Sequence[str] = (),
    tag_prefix: str = "",
    member_stacks: Sequence[str] = (),
) -> list[Figure]:
    """Every figure of the synthesized stacks (name, template); `member_stacks`: the names of member templates
    synthesized as plain stacks (memberTemplate=true)."""
    figures: list[Figure] = []
    for name, template in stacks:
        figures += measure(template, name, enabled=enabled, tag_prefix=tag_prefix, member=name in member_stacks)
    return figures


def role_options(settings: StackSettings, sweep_inventory: str) -> list[str]:
    """The ROLE_OPTION_KEYS that are on: what a function or sweep role over its limit is blamed on."""
    on = {
        CTX_ROLLOUT: settings.rollout,
        CTX_RETIRE: settings.retire,
        CTX_DAEMON_ROLLOUT: settings.daemon_rollout,
        CTX_SECURITY_HUB: settings.security_hub,
        CTX_SWEEP_INVENTORY: sweep_inventory != "describe",
        CTX_TAG_EXEMPTIONS: settings.tag_exemptions,
    }
    return [key for key in ROLE_OPTION_KEYS if on[key]]
