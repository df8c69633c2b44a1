"""ECS Managed Daemons: the IAM statements the daemon path adds to the remediation statements
(`runtime_iam.runtime_statements` appends `daemon_statements`, so the single-account function, the scheduled sweep
and the organization's member role get the same ones).

Resource types, from the Service Authorization Reference: `daemon-task-definition`
(`daemon-task-definition/${Family}:${Revision}`) for Describe/Register/Delete and tag-on-create, `daemon`
(`daemon/${Cluster}/${Daemon}`) for DescribeDaemon/UpdateDaemon, `daemon-revision` and `daemon-deployment` for their
Describe calls. ListDaemonTaskDefinitions, ListDaemons and ListClusters take no resource type ("*"), and
ListTagsForResource's resource types do not include daemon task definitions ("*").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from .arns import ecs_arns
from .settings import StackSettings

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
