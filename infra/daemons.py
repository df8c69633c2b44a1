"""ECS Managed Daemons: the rules that send daemon events to the remediation function, and the IAM statements the
daemon path adds to the remediation statements (`runtime_iam.runtime_statements` appends `daemon_statements`, so the
single-account function, the scheduled sweep and the organization's member role get the same ones).

Resource types, from the Service Authorization Reference: `daemon-task-definition`
(`daemon-task-definition/${Family}:${Revision}`) for Describe/Register/Delete and tag-on-create, `daemon`
(`daemon/${Cluster}/${Daemon}`) for DescribeDaemon/UpdateDaemon, `daemon-revision` and `daemon-deployment` for their
Describe calls. ListDaemonTaskDefinitions, ListDaemons and ListClusters take no resource type ("*"), and
ListTagsForResource's resource types do not include daemon task definitions ("*").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from . import event_pattern
from .arns import ecs_arns
from .settings import StackSettings

if TYPE_CHECKING:
    from .remediator import Remediator

# The Sids of the daemon statements (tests of the task-definition permissions look past them).
DAEMON_SIDS = frozenset(
    {
        "ReadDaemonTaskDefinitions",
        "ListDaemonTaskDefinitionsAndDaemons",
        "DescribeDaemons",
        "RegisterFixedDaemonCopies",
        "TagDaemonCopiesOnCreateOnly",
        "RollDaemonsOntoFixedCopies",
        "DescribeDaemonDeployments",
        "DeleteReplacedDaemonTaskDefinitions",
    }
)
# (resource type, resource name pattern) of the daemon resources, as ARNs are formatted.
_RESOURCES = {
    "task_definitions": ("daemon-task-definition", "*"),
    "daemons": ("daemon", "*/*"),
    "revisions": ("daemon-revision", "*/*/*"),
    "deployments": ("daemon-deployment", "*/*/*"),
}


@dataclass(frozen=True)
class DaemonArns:
    """One account's daemon resources in one or more Regions."""

    task_definitions: list[str]
    daemons: list[str]
    revisions: list[str]
    deployments: list[str]

    @classmethod
    def of_stack(cls, stack: Stack, regions: Sequence[str]) -> DaemonArns:
        return cls(**{field: ecs_arns(stack, regions, *resource) for field, resource in _RESOURCES.items()})


def daemon_statements(settings: StackSettings, arns: DaemonArns) -> list[iam.PolicyStatement]:
    """What the daemon path needs, per mode: reads always (the function judges and the sweep reports in report mode
    too), register/tag on create with `remediate` (PassRole for the copy's roles: the task-definition statement,
    the same roles to the same service), UpdateDaemon with `daemonRollout`, delete with `retire`."""
    statements = [
        iam.PolicyStatement(
            sid="ReadDaemonTaskDefinitions",
            actions=["ecs:DescribeDaemonTaskDefinition"],
            resources=arns.task_definitions,
        ),
        # No resource type for these Lists; ListTagsForResource's do not include daemon task definitions (whose
        # Describe returns no tags). ListClusters and ListDaemons find the daemons that run a revision.
        iam.PolicyStatement(
            sid="ListDaemonTaskDefinitionsAndDaemons",
            actions=["ecs:ListDaemonTaskDefinitions", "ecs:ListTagsForResource", "ecs:ListClusters", "ecs:ListDaemons"],
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="DescribeDaemons",
            actions=["ecs:DescribeDaemon", "ecs:DescribeDaemonRevisions"],
            resources=[*arns.daemons, *arns.revisions],
        ),
    ]
    if not settings.remediates:
        return statements
    statements += [
        iam.PolicyStatement(
            sid="RegisterFixedDaemonCopies",
            actions=["ecs:RegisterDaemonTaskDefinition"],
            resources=arns.task_definitions,
        ),
        iam.PolicyStatement(
            sid="TagDaemonCopiesOnCreateOnly",
            actions=["ecs:TagResource"],
            resources=arns.task_definitions,
            conditions={"StringEquals": {"ecs:CreateAction": "RegisterDaemonTaskDefinition"}},
        ),
    ]
    if settings.daemon_rollout:
        statements += [
            iam.PolicyStatement(sid="RollDaemonsOntoFixedCopies", actions=["ecs:UpdateDaemon"], resources=arns.daemons),
            iam.PolicyStatement(
                sid="DescribeDaemonDeployments",
                actions=["ecs:DescribeDaemonDeployments"],
                resources=[*arns.daemons, *arns.deployments],
            ),
        ]
    if settings.retire:
        statements.append(
            iam.PolicyStatement(
                sid="DeleteReplacedDaemonTaskDefinitions",
                actions=["ecs:DeleteDaemonTaskDefinition"],
                resources=arns.task_definitions,
            )
        )
    return statements


def daemon_nag_applies_to(settings: StackSettings, regions: Sequence[str] = ("<AWS::Region>",)) -> list[str]:
    """cdk-nag's AwsSolutions-IAM5 findings the daemon statements add (`*` itself is the task-definition reads')."""
    resources = ["daemon-task-definition/*", "daemon/*/*", "daemon-revision/*/*/*"]
    if settings.remediates and settings.daemon_rollout:
        resources.append("daemon-deployment/*/*/*")
    return [
        f"Resource::arn:<AWS::Partition>:ecs:{region}:<AWS::AccountId>:{r}" for r in resources for region in regions
    ]


DAEMON_NAG_REASON = (
    "daemons: ecs:ListDaemonTaskDefinitions/ListDaemons/ListClusters support only '*' and ListTagsForResource's "
    "resource types omit daemon task definitions; Describe/Register/TagResource (on create only)/Delete on this "
    "account's daemon task definitions (the copy's revision is unknown until registered); DescribeDaemon/"
    "DescribeDaemonRevisions/UpdateDaemon/DescribeDaemonDeployments on this account's daemons, their revisions and "
    "deployments (which daemons run a privileged revision is known only at run time)"
)


@dataclass(frozen=True)
class DaemonRule:
    """One daemon rule: where it is built (`construct_id`), what it matches, and its description on the function's
    bus and on a member's default bus (which forwards it to the hub's bus, infra/member_stack.py)."""

    construct_id: str
    detail: dict[str, Any]
    detail_type: tuple[str, ...]
    description: str
    forwarded: str


def daemon_rules(settings: StackSettings) -> list[DaemonRule]:
    """The daemon rule and, with daemon rollout in remediate mode, the deployment-outcome rule: one definition for the
    single-account stack, the hub's bus and the members' forwarding rules."""
    rules = [
        DaemonRule(
            "PrivilegedDaemonRule",
            event_pattern.daemon_detail(),
            tuple(event_pattern.DETAIL_TYPES),
            description="RegisterDaemonTaskDefinition calls (CloudTrail) with a privileged container, without "
            "request parameters or truncated by CloudTrail, and CreateDaemon/UpdateDaemon calls, invoke the "
            "ecs-remediate function",
            forwarded="RegisterDaemonTaskDefinition calls (CloudTrail) with a privileged container, without "
            "request parameters or truncated by CloudTrail, and CreateDaemon/UpdateDaemon calls, go to the "
            "ecs-remediate hub",
        )
    ]
    if settings.remediates and settings.daemon_rollout:
        rules.append(
            DaemonRule(
                "DaemonDeploymentOutcomeRule",
                event_pattern.daemon_deployment_detail(),
                tuple(event_pattern.DAEMON_DEPLOYMENT_DETAIL_TYPES),
                description="ECS Daemon Deployment State Change outcomes (succeeded, stopped, rolled back) invoke the "
                "ecs-remediate function, which reports those of the deployments it started",
                forwarded="ECS Daemon Deployment State Change outcomes (succeeded, stopped, rolled back) go to the "
                "ecs-remediate hub, which reports those of the deployments it started",
            )
        )
    return rules


class DaemonRules(Construct):
    """The daemon rules (`daemon_rules`); both invoke the remediation function, failures to its dead-letter queue.
    `on_bus=False` (the single-account stack): this account's default bus, this account's events only; `on_bus=True`
    (the hub): the hub's bus, where the members' forwarding rules put their daemon events."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        remediator: Remediator,
        settings: StackSettings,
        on_bus: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        built = [
            remediator.add_rule(
                self,
                rule.construct_id,
                description=rule.description,
                detail=rule.detail,
                detail_type=rule.detail_type,
                on_bus=on_bus,
            )
            for rule in daemon_rules(settings)
        ]
        self.rule: events.Rule = built[0]
        self.deployment_rule: events.Rule | None = built[1] if len(built) > 1 else None
