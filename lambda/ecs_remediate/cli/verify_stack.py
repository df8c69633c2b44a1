"""`ecs-remediate verify`: what it reads of the deployed stack before it registers anything.

The stack's CloudFormation outputs (cloudformation:DescribeStacks) name the rule, the topic, the idempotency table (the
ledger of copies and the record of each notice), the mode, the tag prefix and the outcomes notified; the rule's state
and targets come from EventBridge (events:DescribeRule, events:ListTargetsByRule), so that a disabled rule or a rule
without a target is said as such, whatever the delivery behind it (the function itself, or a queue in front of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..adapters.aws import ClientError, error_code
from ..core.config import DEFAULT_NOTIFY_ON, DEFAULT_TAG_PREFIX, MODES
from .common import one_line

DEFAULT_STACK_NAME = "EcsRemediate"
CANARY_FAMILY = "ecs-remediate-verify-canary"  # the canary's own family: the verify roles may act on it alone
# The outputs verify cannot do without (a stack deployed before they existed is named as such).
REQUIRED_OUTPUTS = ("RuleName", "IdempotencyTableName", "Mode")
# A stack that can be read: created or updated, including an update that rolled back to the previous template.
USABLE_STATUSES = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"})


def verify_role_name(member_role_name: str) -> str:
    """The role each member account has for `verify --accounts` (the member StackSet creates it beside the member
    role): it may register and delete the canary family, and deregister (ECS allows no narrower resource)."""
    return f"{member_role_name[:57]}-verify"


class StackUnusable(Exception):
    """The stack cannot be verified (absent, not deployed, or without the outputs verify reads): one line."""


@dataclass(frozen=True)
class DeployedStack:
    name: str
    region: str
    account: str
    outputs: Mapping[str, str]

    @property
    def mode(self) -> str:
        return self.outputs["Mode"]

    @property
    def rule_name(self) -> str:
        return self.outputs["RuleName"]

    @property
    def idempotency_table(self) -> str:
        return self.outputs["IdempotencyTableName"]

    @property
    def tag_prefix(self) -> str:
        return self.outputs.get("TagPrefix") or DEFAULT_TAG_PREFIX

    @property
    def marker_key(self) -> str:
        return f"{self.tag_prefix}:source-revision"

    @property
    def notify_on(self) -> frozenset[str]:
        if "NotifyOn" not in self.outputs:
            return frozenset(DEFAULT_NOTIFY_ON)
        return frozenset(item.strip() for item in self.outputs["NotifyOn"].split(",") if item.strip())

    @property
    def dead_letter_queue_url(self) -> str | None:
        return self.outputs.get("DeadLetterQueueUrl") or None

    @property
    def is_hub(self) -> bool:
        """The organization hub (its rule is on its own bus, and it acts in member accounts only)."""
        return "HubEventBusArn" in self.outputs

    @property
    def event_bus(self) -> str | None:
        """The bus of the stack's rule: the hub's, by ARN; None for the default bus."""
        return self.outputs.get("HubEventBusArn") or None

    @property
    def member_role_name(self) -> str | None:
        return self.outputs.get("MemberRoleName") or None

    @property
    def verify_role_name(self) -> str | None:
        return self.outputs.get("VerifyRoleName") or None

    @property
    def function_roles(self) -> tuple[str, ...]:
        """The hub's roles the member roles trust (HubFunctionRoleArns): registrants of nothing themselves."""
        return tuple(arn for arn in (self.outputs.get("HubFunctionRoleArns") or "").split(",") if arn)


def read_stack(cloudformation: Any, name: str, account: str) -> DeployedStack:
    """The stack `name` in the client's Region. StackUnusable (one line) when it cannot be verified; other AWS errors
    (access denied, throttling after retries) are raised as they are."""
    region = str(cloudformation.meta.region_name)
    try:
        stacks = cloudformation.describe_stacks(StackName=name).get("Stacks") or []
    except ClientError as error:
        if error_code(error) == "ValidationError" and "does not exist" in str(error):
            raise StackUnusable(
                f"no stack {name} in {region} (deploy it there, or pass --stack-name or --region)"
            ) from None
        raise
    if not stacks:
        raise StackUnusable(f"no stack {name} in {region}")
    stack = stacks[0]
    status = str(stack.get("StackStatus", ""))
    if status not in USABLE_STATUSES:
        raise StackUnusable(f"the stack {name} in {region} is {status}: nothing to verify until it is deployed")
    outputs = {str(o.get("OutputKey")): str(o.get("OutputValue", "")) for o in stack.get("Outputs") or []}
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    if missing:
        raise StackUnusable(
            f"the stack {name} in {region} has no {', '.join(missing)} output (deployed by an ecs-remediate before "
            "verify existed, or not an ecs-remediate stack): deploy it again"
        )
    if outputs["Mode"] not in MODES:
        raise StackUnusable(f"the stack {name} in {region}: Mode output {one_line(outputs['Mode'])[:40]!r} unknown")
    return DeployedStack(name=name, region=region, account=account, outputs=outputs)


@dataclass(frozen=True)
class Delivery:
    """The stack's rule as EventBridge holds it: its state and where it sends what it matches."""

    rule_name: str
    state: str
    targets: tuple[str, ...]  # target ARNs
    bus: str | None = None  # the hub's bus; None: the default bus

    def problem(self) -> str | None:
        """Why nothing the rule matches can reach the stack, or None."""
        if self.state != "ENABLED":
            return (
                f"the stack's rule {self.rule_name} is {self.state or 'in an unknown state'}: EventBridge delivers "
                f"nothing to the stack (aws events enable-rule --name {self.rule_name}{self._bus_option()})"
            )
        if not self.targets:
            return (
                f"the stack's rule {self.rule_name} has no target: what it matches goes nowhere; deploy the stack again"
            )
        return None

    def text(self) -> str:
        kinds = ", ".join(target_kind(arn) for arn in self.targets) or "no target"
        return f"rule {self.rule_name} ({self.state}) -> {kinds}"

    def _bus_option(self) -> str:
        return f" --event-bus-name {self.bus}" if self.bus else ""


def target_kind(arn: str) -> str:
    """A rule target in a few words: 'Lambda function NAME', 'SQS queue NAME', ..."""
    parts = arn.split(":")
    service = parts[2] if len(parts) > 2 else ""
    name = parts[-1] if service == "lambda" else arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    kind = {"lambda": "Lambda function", "sqs": "SQS queue", "events": "event bus", "states": "state machine"}
    return f"{kind.get(service, service or 'target')} {name}"


def read_delivery(events: Any, stack: DeployedStack) -> Delivery:
    """events:DescribeRule and events:ListTargetsByRule on the stack's rule (on the hub's bus for a hub)."""
    bus = {"EventBusName": stack.event_bus} if stack.event_bus else {}
    try:
        rule = events.describe_rule(Name=stack.rule_name, **bus)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return Delivery(stack.rule_name, "DELETED", (), bus=stack.event_bus)
        raise
    targets: list[str] = []
    for page in events.get_paginator("list_targets_by_rule").paginate(Rule=stack.rule_name, **bus):
        targets += [str(t.get("Arn", "")) for t in page.get("Targets") or []]
    return Delivery(stack.rule_name, str(rule.get("State", "")), tuple(targets), bus=stack.event_bus)


def queue_depth(sqs: Any, queue_url: str) -> int | None:
    """Messages in a queue (visible and in flight), or None when it cannot be read: a hint on a failure only."""
    try:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    except (ClientError, KeyError):
        return None
    return sum(int(value) for value in attributes.values())


__all__ = [
    "CANARY_FAMILY",
    "DEFAULT_STACK_NAME",
    "Delivery",
    "DeployedStack",
    "StackUnusable",
    "queue_depth",
    "read_delivery",
    "read_stack",
    "target_kind",
    "verify_role_name",
]
