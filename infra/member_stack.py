"""The member side of an organization deployment: what StackSets put in every target account and Region.

No asset and no Lambda, so StackSets need no bucket in any Region, and a plain synthesizer without the
bootstrap-version rule (member accounts are not CDK-bootstrapped):
  * in every Region: an EventBridge rule on the default bus with the remediation rule's own pattern
    (infra/event_pattern.py), and the daemon rules' (infra/daemons.py: daemon calls, and with daemon rollout the
    deployment outcomes), forwarding to the hub's bus through one role that may only PutEvents there; what they
    cannot deliver goes to a dead-letter queue, alarmed, that the hub's organization sweep reads and drains
    (infra/member_forwarding.py);
  * once per account (IAM is global; the stack instance of the Region in the `MemberRoleRegion` parameter creates
    it, the others skip it through a Condition; the hub pins that Region, infra/hub_stack.py): the member role,
    named `memberRoleName`, trusted only by the hub's function roles (template parameter, filled in by the hub's
    StackSet) and only from inside the organization, with exactly the single-account function's ECS/PassRole
    statements (`runtime_iam.runtime_statements`), for each target Region of this account, and a policy of its own
    to read and drain the forwarding dead-letter queue (the organization sweep's); beside it, created with it, the
    verify role (`ecs-remediate verify --accounts`: the canary family only, and DeregisterTaskDefinition).

`synthesize_member_template` builds it in an app of its own (the StackSet inlines the template body); with
`-c memberTemplate=true` app.py also adds it to the main app as a plain stack, for the management account.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import Aws, CfnCondition, CfnParameter, Fn, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions
from constructs import Construct

from ecs_remediate.cli.verify_stack import CANARY_FAMILY, verify_role_name

from . import event_pattern
from .arns import ecs_arns
from .checkov import CheckovSuppressions
from .daemon_iam import daemon_nag_applies_to
from .daemons import daemon_rules
from .member_forwarding import ForwardingFailures
from .org_settings import OrgSettings
from .runtime_iam import RuntimeArns, runtime_statements
from .settings import StackSettings

MEMBER_STACK_ID = "EcsRemediateMember"
PARAM_HUB_EVENT_BUS_ARN = "HubEventBusArn"
PARAM_HUB_FUNCTION_ROLE_ARNS = "HubFunctionRoleArns"
PARAM_MEMBER_ROLE_REGION = "MemberRoleRegion"
CONDITION_MEMBER_ROLE_REGION = "CreatesMemberRole"
MEMBER_POLICY_NAME = "EcsRemediateRemediation"
FORWARDING_QUEUE_POLICY_NAME = "EcsRemediateForwardingQueue"
# What the organization sweep does with a member's forwarding dead-letter queue (lambda/ecs_remediate/
# organization/forwarding_queue.py): find it, read its depth, receive and delete what the sweep judged.
FORWARDING_QUEUE_ACTIONS = ("sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage")
EVENTS_SERVICE = "events.amazonaws.com"
_EVENT_BUS_ARN_PATTERN = r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/[A-Za-z0-9._\-/]+$"
_REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$"


class MemberStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StackSettings, org: OrgSettings, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            synthesizer=cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
            analytics_reporting=False,
            description="ecs-remediate member: forwards privileged task definition and daemon events to the hub, "
            "and the role the hub acts through",
            **kwargs,
        )
        self.settings, self.org = settings, org
        hub_bus_arn = CfnParameter(
            self,
            PARAM_HUB_EVENT_BUS_ARN,
            type="String",
            allowed_pattern=_EVENT_BUS_ARN_PATTERN,
            description="ARN of the hub's event bus (the hub stack's HubEventBusArn output)",
        )
        hub_roles = CfnParameter(
            self,
            PARAM_HUB_FUNCTION_ROLE_ARNS,
            type="CommaDelimitedList",
            description="ARNs of the hub's function roles, the only principals the member role trusts (the hub "
            "stack's HubFunctionRoleArns output)",
        )

        # Forwarding: this Region's default bus -> the hub's bus. A bus that admits an organization requires the
        # sending rule to use a role; this one can only put events on that bus, and only for rules of this account.
        self.forwarder_role = iam.Role(
            self,
            "ForwarderRole",
            assumed_by=iam.ServicePrincipal(
                EVENTS_SERVICE, conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description="ecs-remediate member: lets the forwarding rule put events on the hub's bus",
        )
        hub_bus = events.EventBus.from_event_bus_arn(self, "HubEventBus", hub_bus_arn.value_as_string)
        self.forwarding = ForwardingFailures(self, "Forwarding", queue_name=org.forwarding_queue_name)
        self.rule = events.Rule(
            self,
            "ForwardPrivilegedRegistrations",
            description="RegisterTaskDefinition calls (CloudTrail) with a privileged container, without request "
            "parameters, or truncated by CloudTrail, go to the ecs-remediate hub",
            event_pattern=events.EventPattern(
                source=event_pattern.SOURCES,
                detail_type=event_pattern.DETAIL_TYPES,
                detail=event_pattern.remediation_detail(),
            ),
            targets=[targets.EventBus(hub_bus, role=self.forwarder_role)],
        )
        # ECS Managed Daemons: the single-account stack's daemon rules (infra/daemons.py), forwarded the same way.
        self.daemon_rules = [
            events.Rule(
                self,
                f"Forward{rule.construct_id}",
                description=rule.forwarded,
                event_pattern=events.EventPattern(
                    source=event_pattern.SOURCES, detail_type=list(rule.detail_type), detail=rule.detail
                ),
                targets=[targets.EventBus(hub_bus, role=self.forwarder_role)],
            )
            for rule in daemon_rules(settings)
        ]
        self.forwarding.attach([self.rule, *self.daemon_rules])
        self.alarms = self.forwarding.alarms([self.rule, *self.daemon_rules])

        # The member role: once per account (fixed name; IAM is global), by the stack instance of the pinned Region.
        role_region = CfnParameter(
            self,
            PARAM_MEMBER_ROLE_REGION,
            type="String",
            allowed_pattern=_REGION_PATTERN,
            default=org.fallback_role_region,
            description="The one Region whose stack instance creates the member role (the hub's StackSet passes the "
            "pinned Region: memberRoleRegion, or the hub's Region when targeted)",
        )
        creates_role = CfnCondition(
            self,
            CONDITION_MEMBER_ROLE_REGION,
            expression=Fn.condition_equals(Aws.REGION, role_region.value_as_string),
        )
        statements = runtime_statements(settings, RuntimeArns.of_stack(self, org.regions))
        # Its size grows with the Regions: infra/limits.py refuses it over IAM's limit, naming regions.
        document = iam.PolicyDocument(statements=statements)
        queue_document = iam.PolicyDocument(statements=[self._forwarding_queue_statement()])
        self.member_role = iam.CfnRole(
            self,
            "MemberRole",
            role_name=org.member_role_name,
            description="ecs-remediate member role: the hub's function acts in this account only through it",
            max_session_duration=3600,
            assume_role_policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "HubFunctionRolesOfTheOrganizationOnly",
                        "Effect": "Allow",
                        "Principal": {"AWS": hub_roles.value_as_list},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:PrincipalOrgID": org.organization_id}},
                    }
                ],
            },
            policies=[
                iam.CfnRole.PolicyProperty(policy_name=MEMBER_POLICY_NAME, policy_document=document),
                iam.CfnRole.PolicyProperty(policy_name=FORWARDING_QUEUE_POLICY_NAME, policy_document=queue_document),
            ],
        )
        self.member_role.cfn_options.condition = creates_role
        NagSuppressions.add_resource_suppressions(self.member_role, [self._wildcard_suppression()])
        self.verify_role = self._verify_role(hub_roles.value_as_list, creates_role)

    def _verify_role(self, hub_roles: list[str], creates_role: CfnCondition) -> iam.CfnRole:
        """`ecs-remediate verify --accounts`: registers a privileged canary in its own family and removes it. A role
        of its own, beside the member role (created with it, once per account), so that the hub's function never
        holds what the clean-up needs (DeregisterTaskDefinition, which ECS allows only on '*'). Trusted as the member
        role is; of the hub's roles only the operator role's own policy lets it be assumed."""
        canary = ecs_arns(self, self.org.regions, "task-definition", f"{CANARY_FAMILY}:*")
        document = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="RegisterAndDeleteTheCanaryOnly",
                    actions=["ecs:RegisterTaskDefinition", "ecs:DeleteTaskDefinitions"],
                    resources=canary,
                ),
                iam.PolicyStatement(
                    sid="ReadBackAndDeregister",
                    actions=["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions", "ecs:DeregisterTaskDefinition"],
                    resources=["*"],
                ),
            ]
        )
        role = iam.CfnRole(
            self,
            "VerifyRole",
            role_name=verify_role_name(self.org.member_role_name),
            description="ecs-remediate verify: a privileged canary task definition, registered and removed",
            max_session_duration=3600,
            assume_role_policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "HubOperatorsOfTheOrganizationOnly",
                        "Effect": "Allow",
                        "Principal": {"AWS": hub_roles},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:PrincipalOrgID": self.org.organization_id}},
                    }
                ],
            },
            policies=[iam.CfnRole.PolicyProperty(policy_name="EcsRemediateVerifyCanary", policy_document=document)],
        )
        role.cfn_options.condition = creates_role
        NagSuppressions.add_resource_suppressions(
            role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    applies_to=[
                        "Resource::*",
                        *(
                            f"Resource::arn:<AWS::Partition>:ecs:{region}:<AWS::AccountId>:task-definition/"
                            f"{CANARY_FAMILY}:*"
                            for region in self.org.regions
                        ),
                    ],
                    reason="VerifyRole: ecs:DescribeTaskDefinition, ListTaskDefinitions and DeregisterTaskDefinition "
                    "support only '*' (a revision must be deregistered before it can be deleted); registering and "
                    "deleting only in the canary family, whose revision numbers are unknown until registered",
                )
            ],
        )
        return role

    def _forwarding_queue_statement(self) -> iam.PolicyStatement:
        """The forwarding dead-letter queue of this account, by its name, and nothing else of SQS. Any Region (`*`):
        one resource instead of one per Region keeps the role's inline policies (10,240 characters, the limit on
        `regions`) where they were; the queue exists in the target Regions only, and the sweep reads only those."""
        return iam.PolicyStatement(
            sid="ForwardingDeadLetters",
            actions=list(FORWARDING_QUEUE_ACTIONS),
            resources=[self.format_arn(service="sqs", region="*", resource=self.org.forwarding_queue_name)],
        )

    def _wildcard_suppression(self) -> NagPackSuppression:
        """IAM5 for the member role's wildcards: the single-account function's, Region by Region."""
        s = self.settings
        applies_to = ["Resource::*"]
        regional: list[str] = []
        if s.remediates:
            regional.append("task-definition/*")
        if s.remediates and (s.rollout or s.retire):
            regional.append("service/*/*")
        for resource in regional:
            applies_to += [
                f"Resource::arn:<AWS::Partition>:ecs:{region}:<AWS::AccountId>:{resource}"
                for region in self.org.regions
            ]
        if s.remediates:
            applies_to.append("Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*")
        if s.remediates and s.retire:  # the rule targets and schedules that name a revision (remediation/references.py)
            for region in self.org.regions:
                applies_to += [
                    f"Resource::arn:<AWS::Partition>:events:{region}:<AWS::AccountId>:rule/*",
                    f"Resource::arn:<AWS::Partition>:scheduler:{region}:<AWS::AccountId>:schedule/*/*",
                ]
        applies_to += daemon_nag_applies_to(s, self.org.regions)  # the daemon statements (infra/daemon_iam.py)
        applies_to.append(f"Resource::arn:<AWS::Partition>:sqs:*:<AWS::AccountId>:{self.org.forwarding_queue_name}")
        return NagPackSuppression(
            id="AwsSolutions-IAM5",
            applies_to=applies_to,
            reason="MemberRole: the single-account function's RemediationPolicy statements (one definition, "
            "runtime_iam.runtime_statements), on this account's resources in each target Region: Describe/List/"
            "Deregister support only '*'; a copy's revision is unknown until registered (TagResource only on create); "
            "PassRole only to ecs-tasks.amazonaws.com; the services to move are known only at run time; with retire, "
            "the account's rule targets and schedules are listed to find any that names the revision; the forwarding "
            "dead-letter queue by name in any Region (shorter than one ARN per Region)",
        )


@dataclass(frozen=True)
class MemberTemplate:
    """The synthesized member template, and what cdk-nag said about it (to be reported on the StackSet)."""

    template: dict[str, Any]
    errors: list[str]
    warnings: list[str]
    asset_count: int

    @property
    def body(self) -> str:
        return json.dumps(self.template, separators=(",", ":"), sort_keys=True)


def synthesize_member_template(
    settings: StackSettings, org: OrgSettings, *, context: Mapping[str, Any]
) -> MemberTemplate:
    """The member stack synthesized in an app of its own (same context and the same checks as the main app), in a
    directory of its own: the main app's cloud assembly is left alone."""
    with tempfile.TemporaryDirectory(prefix="ecs-remediate-member-") as outdir:
        app = cdk.App(context=dict(context), outdir=outdir)
        stack = MemberStack(app, MEMBER_STACK_ID, settings=settings, org=org)
        cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
        cdk.Aspects.of(app).add(CheckovSuppressions())
        artifact = app.synth().get_stack_by_name(stack.stack_name)
        messages = [(str(m.level), f"{m.id}: {m.entry.data}") for m in artifact.messages]
        template = artifact.template  # read from the directory, before it goes
        asset_count = len(artifact.assets)
    return MemberTemplate(
        template=template,
        errors=[text for level, text in messages if level.endswith("ERROR")],
        warnings=[text for level, text in messages if level.endswith("WARNING")],
        asset_count=asset_count,
    )
