"""The organization hub (`-c organization=true`): one deploy in the security-tooling account covers the
target OUs' accounts in the configured Regions.

  * a custom event bus whose policy admits the organization with one `aws:PrincipalOrgID` statement;
  * the remediation function (infra/remediator.py, the same construct as the single-account stack) with its rule
    and the daemon rules (infra/daemons.py) on that bus, the idempotency table, topic, dead-letter queue and
    alarms; its role may assume the member role of accounts of the organization, and has no ECS permission of its
    own;
  * the member StackSet (service-managed, auto-deployment to the target OUs) whose template, synthesized from
    infra/member_stack.py, is inlined (no asset);
  * with `guardrail=attach`, the guardrail SCP attached to the target OUs.

What the function does with a member's event (assume the member role of the event's account, act there) is the
runtime's part: the environment carries MEMBER_ROLE_NAME for
`ecs_remediate.organization.member_accounts.MemberAccounts.from_env`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aws_cdk import (
    Annotations,
    Aws,
    CfnCondition,
    CfnOutput,
    CfnResource,
    Duration,
    Fn,
    ICfnConditionExpression,
    Stack,
)
from aws_cdk import aws_cloudformation as cloudformation
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_organizations as organizations
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from ecs_remediate.cli.verify_stack import verify_role_name
from ecs_remediate.core.config import ENV_MEMBER_ROLE_NAME
from ecs_remediate.organization.guardrail import render

from .bundling import function_code
from .daemons import DaemonRules
from .exemptions import ExemptionRegistry
from .member_stack import (
    PARAM_HUB_EVENT_BUS_ARN,
    PARAM_HUB_FUNCTION_ROLE_ARNS,
    PARAM_MEMBER_ROLE_REGION,
    MemberTemplate,
)
from .notifications import Notifications
from .org_settings import OrgSettings
from .org_sweep import OrgSweep
from .outputs import verify_outputs
from .remediator import RUNTIME, Remediator
from .settings import (
    HUB_DEFAULT_QUEUE_CONCURRENCY,
    HUB_QUEUE_BATCH_SIZE,
    HUB_QUEUE_BATCHING_WINDOW_SECONDS,
    StackSettings,
)

# StackSets operation preferences, for speed with a stated failure tolerance (they apply to create and update
# operations; auto-deployment to an account that joins a target OU runs on its own):
#   SOFT_FAILURE_TOLERANCE keeps MaxConcurrentPercentage whatever fails (STRICT would cap concurrency at the
#   tolerance + 1); every account of a Region at once, and every Region at once (PARALLEL).
#   10% of a Region's accounts may fail (a role of that name left by hand, an SCP) before StackSets stops the
#   operation there: one broken account does not hold up the others; a systematic failure stops early.
MEMBER_STACK_SET_ID = "MemberStackSet"
OPERATION_PREFERENCES = {
    "ConcurrencyMode": "SOFT_FAILURE_TOLERANCE",
    "MaxConcurrentPercentage": 100,
    "FailureTolerancePercentage": 10,
    "RegionConcurrencyType": "PARALLEL",
}


class HubStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        org: OrgSettings,
        member_template: MemberTemplate,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings, self.org, self.member_template = settings, org, member_template
        self.notifications = Notifications(
            self, "Notifications", emails=settings.notification_emails, alarm_name_prefix=f"{self.stack_name}-"
        )

        # Members' forwarding rules put their events here; nobody outside the organization can.
        self.event_bus = events.EventBus(self, "HubEventBus", event_bus_name=f"{self.stack_name}-hub")
        self.event_bus_policy = self._organization_bus_policy()

        # Exemptions for every member account live here, in the hub, written by the approvers only.
        self.exemptions = ExemptionRegistry(self, "Exemptions", approvers=settings.exemption_approvers)
        self.remediator = Remediator(
            self,
            "Remediator",
            settings=settings,
            code=function_code(RUNTIME),
            notifications=self.notifications,
            registry=self.exemptions,
            event_bus=self.event_bus,
            runtime_permissions=False,  # it acts through the member roles, which have them
            # Large batches, handled in round-robin order of the member accounts: one member's burst does not hold
            # back another member's registration (ecs_remediate/delivery.py, docs/performance.md#burst).
            batch_size=HUB_QUEUE_BATCH_SIZE,
            batching_window=Duration.seconds(HUB_QUEUE_BATCHING_WINDOW_SECONDS),
            default_concurrency=HUB_DEFAULT_QUEUE_CONCURRENCY,
        )
        self.remediator.function.add_environment(ENV_MEMBER_ROLE_NAME, org.member_role_name)
        # The daemon rules on the hub's bus: what the members' daemon forwarding rules put there
        # (organization/hub_daemons.py).
        self.daemons = DaemonRules(self, "Daemons", remediator=self.remediator, settings=settings, on_bus=True)
        self.operator_role = self._operator_role()
        # The organization sweep (daily unless sweepSchedule=off): its item function acts through the member roles too.
        self.org_sweep = OrgSweep(self, "OrgSweep", remediator=self.remediator, org=org) if org.sweep.schedule else None
        self.function_roles: list[iam.IRole] = [self.remediator.role, self.operator_role]
        if self.org_sweep is not None:
            self.function_roles.append(self.org_sweep.item_role)
        self.member_access_policy = self._grant_member_access(self.function_roles)
        self.remediator.function.node.add_dependency(self.member_access_policy)

        self.stack_set = self._member_stack_set(member_template)
        self.guardrail = self._guardrail() if org.guardrail == "attach" else None

        for output_id, value, description in (
            ("HubEventBusArn", self.event_bus.event_bus_arn, "the bus the member rules forward to"),
            (
                "HubFunctionRoleArns",
                Fn.join(",", [role.role_arn for role in self.function_roles]),
                "the roles the member role trusts",
            ),
            (
                "OperatorRoleArn",
                self.operator_role.role_arn,
                "assume it to run ecs-remediate scan --accounts from the hub",
            ),
            ("MemberStackSetId", self.stack_set.attr_stack_set_id, "the member StackSet"),
            ("TopicArn", self.notifications.topic.topic_arn, "SNS topic of notices and alarms"),
            ("FunctionName", self.remediator.function.function_name, "the remediation function"),
            ("LogGroupName", self.remediator.log_group.log_group_name, "the function's logs"),
            ("DeadLetterQueueUrl", self.remediator.dead_letter_queue.queue_url, "events that could not be processed"),
            ("RuleName", self.remediator.rule.rule_name, "the rule on the hub's bus"),
            ("MemberRoleName", org.member_role_name, "the member role the hub acts through"),
            ("VerifyRoleName", verify_role_name(org.member_role_name), "the members' role for verify --accounts"),
            *verify_outputs(settings, self.remediator),
        ):
            CfnOutput(self, output_id, value=value, description=description)

    def _organization_bus_policy(self) -> CfnResource:
        """PutEvents on the hub's bus for the organization's accounts only (one aws:PrincipalOrgID statement).

        The resource `EventBus.add_to_resource_policy` made, written as a plain CfnResource at the same path (same
        logical id, statement id and properties, so a deployed hub sees no change): cdk-nag's EVB1 rule reads the
        deprecated `principal` of every CfnEventBusPolicy, which printed a deprecation warning on each organization
        synth. tests/test_org_policies.py evaluates this policy with a real IAM policy evaluator instead."""
        statement_id = "cdk-OrganizationPutEvents"  # the id add_to_resource_policy gave it ("cdk-" + the Sid)
        statement = iam.PolicyStatement(
            sid=statement_id,
            principals=[iam.AnyPrincipal()],
            actions=["events:PutEvents"],
            resources=[self.event_bus.event_bus_arn],
            conditions={"StringEquals": {"aws:PrincipalOrgID": self.org.organization_id}},
        )
        return CfnResource(
            Construct(self.event_bus, statement_id),
            "Resource",
            type="AWS::Events::EventBusPolicy",
            properties={
                "EventBusName": self.event_bus.event_bus_name,
                "Statement": statement.to_statement_json(),
                "StatementId": statement_id,
            },
        )

    def _operator_role(self) -> iam.Role:
        """The role operators assume in the hub to sweep members (`ecs-remediate scan --accounts`): the member roles
        trust it as they trust the function's, so it gets exactly the function's member access (added with theirs)
        and the listing of the organization's accounts for `--accounts org`; and, for `ecs-remediate verify
        --accounts`, the members' verify roles and the reads of this stack verify makes (docs/organization.md). Only
        this account's principals whose
        own IAM policy allows sts:AssumeRole on it can assume it: who operates is the hub account's decision."""
        role = iam.Role(
            self,
            "OperatorRole",
            assumed_by=iam.AccountPrincipal(self.account),
            description="ecs-remediate operators: scan --accounts through the member roles",
            max_session_duration=Duration.hours(1),
        )
        remediator = self.remediator
        policy = iam.Policy(
            self,
            "OperatorListAccountsPolicy",
            statements=[
                iam.PolicyStatement(
                    sid="ListTheOrganizationsAccounts",
                    actions=["organizations:ListAccounts"],
                    resources=["*"],
                ),
                # ecs-remediate verify --accounts: the members' verify roles (the canary, registered and removed), and
                # what it reads of this stack: its outputs, its rule, its ledger and notice records, its DLQ's depth.
                iam.PolicyStatement(
                    sid="AssumeVerifyRolesOfTheOrganization",
                    actions=["sts:AssumeRole"],
                    resources=[
                        self.format_arn(
                            service="iam",
                            region="",
                            account="*",
                            resource="role",
                            resource_name=verify_role_name(self.org.member_role_name),
                        )
                    ],
                    conditions={"StringEquals": {"aws:ResourceOrgID": self.org.organization_id}},
                ),
                iam.PolicyStatement(
                    sid="VerifyReadsTheStack", actions=["cloudformation:DescribeStacks"], resources=[self.stack_id]
                ),
                iam.PolicyStatement(
                    sid="VerifyReadsTheRule",
                    actions=["events:DescribeRule", "events:ListTargetsByRule"],
                    resources=[remediator.rule.rule_arn],
                ),
                iam.PolicyStatement(
                    sid="VerifyReadsCopiesAndNotices",
                    actions=["dynamodb:GetItem"],
                    resources=[remediator.table.table_arn],
                ),
                iam.PolicyStatement(
                    sid="VerifyReadsTheDeadLetterQueueDepth",
                    actions=["sqs:GetQueueAttributes"],
                    resources=[remediator.dead_letter_queue.queue_arn],
                ),
            ],
        )
        policy.attach_to_role(role)
        NagSuppressions.add_resource_suppressions(
            policy,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    applies_to=[
                        "Resource::*",
                        f"Resource::arn:<AWS::Partition>:iam::*:role/{verify_role_name(self.org.member_role_name)}",
                    ],
                    reason="OperatorListAccountsPolicy: organizations:ListAccounts supports no resource-level "
                    "permission (the service authorization reference lists no resource type for it); read-only, "
                    "for scan --accounts org. The verify role of whichever member account verify --accounts is "
                    "given (any account of the organization, aws:ResourceOrgID)",
                )
            ],
        )
        return role

    def member_role_arns(self) -> str:
        """The member role in any account (the function's AssumeRole resource; the organization condition limits it)."""
        return self.format_arn(
            service="iam", region="", account="*", resource="role", resource_name=self.org.member_role_name
        )

    def member_account_arns(self) -> str:
        """Every account of the organization as Organizations names it (`account/<org id>/<account id>`; the ARN's
        account field is the management account's, which a delegated administrator's hub need not know)."""
        return self.format_arn(
            service="organizations",
            region="",
            account="*",
            resource="account",
            resource_name=f"{self.org.organization_id}/*",
        )

    def _grant_member_access(self, roles: Sequence[iam.IRole]) -> iam.Policy:
        policy = iam.Policy(
            self,
            "MemberAccessPolicy",
            statements=[
                iam.PolicyStatement(
                    sid="AssumeMemberRolesOfTheOrganization",
                    actions=["sts:AssumeRole"],
                    resources=[self.member_role_arns()],
                    conditions={"StringEquals": {"aws:ResourceOrgID": self.org.organization_id}},
                ),
                # A notice names the member account by its name too
                # (ecs_remediate.organization.account_names.AccountNames); read-only, this organization's accounts
                # only. Without it a notice shows the account id alone.
                iam.PolicyStatement(
                    sid="NameMemberAccountsInNotices",
                    actions=["organizations:DescribeAccount"],
                    resources=[self.member_account_arns()],
                ),
            ],
        )
        for role in roles:
            policy.attach_to_role(role)
        NagSuppressions.add_resource_suppressions(
            policy,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    applies_to=[
                        f"Resource::arn:<AWS::Partition>:iam::*:role/{self.org.member_role_name}",
                        f"Resource::arn:<AWS::Partition>:organizations::*:account/{self.org.organization_id}/*",
                    ],
                    reason="MemberAccessPolicy: the member role of whichever account sent the event (any account "
                    "of the organization, aws:ResourceOrgID); which one is known only at run time, and the member "
                    "role trusts only these function roles. organizations:DescribeAccount on the accounts of this "
                    "organization only (account/<org id>/*; the management account's id in the ARN is not "
                    "known to a delegated administrator's hub), to name the account in a notice",
                )
            ],
        )
        return policy

    def _member_stack_set(self, member_template: MemberTemplate) -> cloudformation.CfnStackSet:
        org = self.org
        for error in member_template.errors:  # the member stack's cdk-nag findings fail this synth too
            Annotations.of(self).add_error(f"member template: {error}")
        for warning in member_template.warnings:
            Annotations.of(self).add_warning(f"member template: {warning}")
        targets = cloudformation.CfnStackSet.DeploymentTargetsProperty(
            organizational_unit_ids=list(org.target_ous),
            accounts=list(org.excluded_accounts) or None,
            account_filter_type="DIFFERENCE" if org.excluded_accounts else None,
        )
        prefs = OPERATION_PREFERENCES
        return cloudformation.CfnStackSet(
            self,
            MEMBER_STACK_SET_ID,
            stack_set_name=f"{self.stack_name}-member",
            description="ecs-remediate member side: forwarding rule per Region, member role per account",
            permission_model="SERVICE_MANAGED",
            auto_deployment=cloudformation.CfnStackSet.AutoDeploymentProperty(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            call_as=org.stack_set_call_as,
            capabilities=["CAPABILITY_NAMED_IAM"],  # the member role has a fixed name
            managed_execution={"Active": True},  # queue conflicting operations instead of failing them
            operation_preferences=cloudformation.CfnStackSet.OperationPreferencesProperty(
                concurrency_mode=str(prefs["ConcurrencyMode"]),
                max_concurrent_percentage=int(prefs["MaxConcurrentPercentage"]),
                failure_tolerance_percentage=int(prefs["FailureTolerancePercentage"]),
                region_concurrency_type=str(prefs["RegionConcurrencyType"]),
            ),
            parameters=[
                cloudformation.CfnStackSet.ParameterProperty(
                    parameter_key=PARAM_HUB_EVENT_BUS_ARN, parameter_value=self.event_bus.event_bus_arn
                ),
                cloudformation.CfnStackSet.ParameterProperty(
                    parameter_key=PARAM_HUB_FUNCTION_ROLE_ARNS,
                    parameter_value=Fn.join(",", [role.role_arn for role in self.function_roles]),
                ),
                cloudformation.CfnStackSet.ParameterProperty(
                    parameter_key=PARAM_MEMBER_ROLE_REGION, parameter_value=self._member_role_region()
                ),
            ],
            stack_instances_group=[
                cloudformation.CfnStackSet.StackInstancesProperty(deployment_targets=targets, regions=list(org.regions))
            ],
            template_body=member_template.body,
        )

    def _member_role_region(self) -> str:
        """The one Region whose member stack instance creates the member role, pinned: memberRoleRegion, else this
        hub's own Region when it is among `regions` (resolved by CloudFormation at deploy: a stack never changes
        Region), else the first listed. Adding, removing or reordering other Regions never moves it, so the role is
        never deleted under running stacks (the pinned Region leaving `regions` fails synth, org_settings.py)."""
        org = self.org
        if org.member_role_region is not None:
            return org.member_role_region
        Annotations.of(self).add_info(
            f"memberRoleRegion not set: the member role is created in the hub's Region if it is one of regions, "
            f"else in {org.fallback_role_region} (the first listed); set memberRoleRegion to pin it explicitly"
        )
        targeted = CfnCondition(self, "HubRegionIsTargeted", expression=_any_of(list(org.regions)))
        return Fn.condition_if(targeted.logical_id, Aws.REGION, org.fallback_role_region).to_string()

    def _guardrail(self) -> organizations.CfnPolicy:
        return organizations.CfnPolicy(
            self,
            "GuardrailPolicy",
            name=f"{self.stack_name}-guardrail",
            type="SERVICE_CONTROL_POLICY",
            description="ecs-remediate guardrail: no privileged task definitions, exemption tags by approvers only",
            content=self.org.guardrail_policy(self.settings.tag_prefix),
            target_ids=list(self.org.target_ous),
        )


def _any_of(regions: list[str]) -> ICfnConditionExpression:
    """True when the stack's Region is one of `regions` (Fn::Or takes 2 to 10 conditions: nested beyond)."""
    conditions = [Fn.condition_equals(Aws.REGION, region) for region in regions]
    while len(conditions) > 1:
        conditions = [
            Fn.condition_or(*group) if len(group) > 1 else group[0]
            for group in (conditions[i : i + 10] for i in range(0, len(conditions), 10))
        ]
    return conditions[0]


def write_guardrail(org: OrgSettings, tag_prefix: str, outdir: str) -> Path:
    """`guardrail=print`: the SCP as a file next to the templates (compact JSON, as submitted)."""
    path = Path(outdir) / "guardrail-scp.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(org.guardrail_policy(tag_prefix)) + "\n", encoding="utf-8")
    return path


__all__ = ["MEMBER_STACK_SET_ID", "OPERATION_PREFERENCES", "HubStack", "write_guardrail"]
