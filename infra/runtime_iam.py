"""The remediation path's IAM, for any account and Regions: the statements (the single-account function's
RemediationPolicy, the sweep's, and the organization's member role are all built from `runtime_statements`, so they
cannot drift) and the cdk-nag reasons for their wildcards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from ecs_remediate.remediation import references

from .arns import ecs_arns
from .daemon_iam import DAEMON_NAG_REASON, DaemonArns, daemon_nag_applies_to, daemon_statements
from .settings import StackSettings

ECS_TASKS_SERVICE = "ecs-tasks.amazonaws.com"


@dataclass(frozen=True)
class RuntimeArns:
    """Where the remediation statements apply: one account's task definitions, services and roles, in the stack's
    own Region (`of_stack(stack)`) or in each of `regions` (the member role, IAM being global)."""

    task_definitions: list[str]
    services: list[str]
    roles: str
    # what the retire step lists before deregistering (references.IAM_ACTIONS): (actions, resources), per Region
    scheduled_uses: list[tuple[list[str], list[str]]]
    daemons: DaemonArns | None = None  # ECS Managed Daemons (infra/daemon_iam.py)

    @classmethod
    def of_stack(cls, stack: Stack, regions: Sequence[str] | None = None) -> RuntimeArns:
        in_regions = list(regions) if regions is not None else [stack.region]

        by_resource: dict[str, list[str]] = {}
        for action, resource, _ in references.IAM_ACTIONS:
            by_resource.setdefault(resource, []).append(action)
        scheduled_uses = [
            (
                actions,
                sorted({r.format(partition=stack.partition, region=g, account=stack.account) for g in in_regions}),
            )
            for r, actions in by_resource.items()
        ]
        return cls(
            task_definitions=ecs_arns(stack, in_regions, "task-definition", "*"),
            services=ecs_arns(stack, in_regions, "service", "*/*"),
            roles=stack.format_arn(service="iam", region="", resource="role", resource_name="*"),
            scheduled_uses=scheduled_uses,
            daemons=DaemonArns.of_stack(stack, in_regions),
        )


def runtime_statements(settings: StackSettings, arns: RuntimeArns) -> list[iam.PolicyStatement]:
    """The ECS and PassRole statements of the remediation path, on `arns` (one account, one or more Regions):
    the single-account function's RemediationPolicy and the organization's member role are both built from
    here, so they cannot drift. In `report` mode nothing that registers, tags or passes a role."""
    statements = [
        # DescribeTaskDefinition and ListTaskDefinitions support no resource-level permissions: "*" is the
        # only valid resource. Listing counts the family's ACTIVE privileged revisions left for the notice.
        iam.PolicyStatement(
            sid="ReadTaskDefinitions",
            actions=["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"],
            resources=["*"],
        )
    ]
    task_definitions = arns.task_definitions
    if settings.remediates:
        statements += [
            iam.PolicyStatement(
                sid="RegisterFixedCopies", actions=["ecs:RegisterTaskDefinition"], resources=task_definitions
            ),
            # Tags travel with the copy; tagging is allowed only as part of the registration.
            iam.PolicyStatement(
                sid="TagCopiesOnCreateOnly",
                actions=["ecs:TagResource"],
                resources=task_definitions,
                conditions={"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
            ),
            # The copy keeps the task and execution roles; ECS requires PassRole for them.
            iam.PolicyStatement(
                sid="PassTaskRolesToEcsTasksOnly",
                actions=["iam:PassRole"],
                resources=[arns.roles],
                conditions={"StringEquals": {"iam:PassedToService": ECS_TASKS_SERVICE}},
            ),
        ]
    services = arns.services
    if settings.remediates and (settings.rollout or settings.retire):
        # Finding the services that run the privileged revision (rollout moves them; retire checks none is
        # left). ListClusters and ListServices support only "*"; DescribeServices takes service ARNs.
        statements += [
            iam.PolicyStatement(sid="FindServices", actions=["ecs:ListClusters", "ecs:ListServices"], resources=["*"]),
            iam.PolicyStatement(sid="DescribeServices", actions=["ecs:DescribeServices"], resources=services),
        ]
    if settings.remediates and settings.rollout:
        statements.append(
            iam.PolicyStatement(sid="RollServicesOntoFixedCopies", actions=["ecs:UpdateService"], resources=services)
        )
    if settings.remediates and settings.retire:
        # DeregisterTaskDefinition supports no resource-level permissions: "*" is the only valid resource.
        statements.append(
            iam.PolicyStatement(
                sid="RetirePrivilegedRevisions", actions=["ecs:DeregisterTaskDefinition"], resources=["*"]
            )
        )
        # Before retiring: which EventBridge rule targets and Scheduler schedules name the revision
        # (remediation/references.py; the List actions take only "*", the rest this account's rules and schedules).
        for index, (actions, resources) in enumerate(arns.scheduled_uses, start=1):
            statement = iam.PolicyStatement(sid=f"FindScheduledUses{index}", actions=actions, resources=resources)
            statements.append(statement)
    if arns.daemons is not None:  # daemon task definitions and daemons (infra/daemon_iam.py)
        statements += daemon_statements(settings, arns.daemons)
    return statements


def runtime_nag(settings: StackSettings) -> tuple[list[str], list[str]]:
    """The wildcard resources of `runtime_statements` on the stack's own account and Region (cdk-nag's applies_to)
    and the reason for each."""
    applies_to = ["Resource::*"]
    reasons = ["ecs:DescribeTaskDefinition and ecs:ListTaskDefinitions support only '*'"]
    if settings.remediates and (settings.rollout or settings.retire):
        applies_to.append("Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:service/*/*")
        reasons.append(
            "ecs:ListClusters/ListServices support only '*'; DescribeServices/UpdateService on this "
            "account's and region's services (which ones run the privileged revision is known only at run time)"
        )
    if settings.remediates and settings.retire:
        reasons.append("ecs:DeregisterTaskDefinition supports only '*'")
        applies_to += [
            "Resource::arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/*",
            "Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/*/*",
        ]
        reasons.append(
            "events:ListEventBuses/ListRules and scheduler:ListScheduleGroups/ListSchedules support only '*'; "
            "events:ListTargetsByRule and scheduler:GetSchedule on this account's and region's rules and "
            "schedules (which one names the revision is known only after listing them)"
        )
    if settings.remediates:
        applies_to += [
            "Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task-definition/*",
            "Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*",
        ]
        reasons += [
            "ecs:RegisterTaskDefinition/TagResource: the copy's family and revision are unknown until "
            "registration, so any task definition of this account and region (TagResource only on create)",
            "iam:PassRole: the copy keeps whatever task/execution role the original names, so any role of "
            "this account, only to ecs-tasks.amazonaws.com (iam:PassedToService)",
        ]
    applies_to += daemon_nag_applies_to(settings)
    reasons.append(DAEMON_NAG_REASON)
    return applies_to, reasons
