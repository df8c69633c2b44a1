"""The remediator: the function, its trigger, its state, its failure path and its alarms.

Reusable pieces for later capabilities (a scheduled sweep, rollout, retire) without touching this file:
  * `code` and `environment`: a second function of the same package can share them;
  * `grant_runtime(grantee)`: what any function running the remediation path needs (describe/register/tag,
    pass the task roles, the idempotency table, the topic); extra permissions belong to the new construct;
  * `role`, `function`, `table`, `dead_letter_queue`, `rule`, `alarms` are public attributes;
  * for the organization hub (infra/hub_stack.py): `event_bus` puts the rule on that bus instead of the default
    bus, `runtime_permissions=False` leaves the ECS/PassRole statements to the member role, and
    `runtime_iam.runtime_statements` is the one definition of those statements, for any account and Regions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsii
from aws_cdk import Duration, IStableStringProducer, Lazy, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from ecs_remediate.core import config as env

from . import event_pattern
from .exemptions import ExemptionRegistry
from .notifications import Notifications
from .runtime_iam import RuntimeArns, runtime_nag, runtime_statements
from .settings import (
    ASYNC_MAX_EVENT_AGE_SECONDS,
    ASYNC_RETRY_ATTEMPTS,
    DEFAULT_QUEUE_CONCURRENCY,
    FUNCTION_MEMORY_MB,
    FUNCTION_TIMEOUT_SECONDS,
    QUEUE_AGE_ALARM_SECONDS,
    QUEUE_BATCH_SIZE,
    QUEUE_MAX_RECEIVES,
    QUEUE_VISIBILITY_TIMEOUT_SECONDS,
    StackSettings,
)

RUNTIME = lambda_.Runtime.PYTHON_3_14
HANDLER = "ecs_remediate.functions.handler.queue_handler"  # batches from the event queue (ecs_remediate/delivery.py)
SERVICE_NAME = "ecs-remediate"
METRICS_NAMESPACE = "EcsRemediate"
# Powertools Idempotency's DynamoDB defaults.
IDEMPOTENCY_PARTITION_KEY = "id"
IDEMPOTENCY_EXPIRY_ATTRIBUTE = "expiration"
IDEMPOTENCY_ITEM_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
_APPLICATION_LOG_LEVEL = {
    "DEBUG": lambda_.ApplicationLogLevel.DEBUG,
    "INFO": lambda_.ApplicationLogLevel.INFO,
    "WARNING": lambda_.ApplicationLogLevel.WARN,
    "ERROR": lambda_.ApplicationLogLevel.ERROR,
}


@jsii.implements(IStableStringProducer)
class _RoleArns:
    """The ARNs of roles added until synthesis (the sweep's role joins after the function exists)."""

    def __init__(self, roles: list[iam.IRole]) -> None:
        self.roles = roles

    def produce(self) -> str:
        return ",".join(role.role_arn for role in self.roles)


class Remediator(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        code: lambda_.Code,
        notifications: Notifications,
        registry: ExemptionRegistry,
        event_bus: events.IEventBus | None = None,
        runtime_permissions: bool = True,
        batch_size: int = QUEUE_BATCH_SIZE,
        batching_window: Duration | None = None,
        default_concurrency: int = DEFAULT_QUEUE_CONCURRENCY,
    ) -> None:
        """`event_bus`: where the rule listens (default: the account's default bus, where CloudTrail delivers).
        `runtime_permissions=False`: the function gets the table and topic but no ECS/PassRole statement (a hub
        acts in member accounts through their member role, which has them)."""
        super().__init__(scope, construct_id)
        self.settings = settings
        self.code = code
        self.notifications = notifications
        self.registry = registry
        # The stack's own principals: a revision one of them registered can be the stack's copy
        # (remediation/provenance.py).
        # The scheduled sweep's role joins through `trust`.
        self.trusted_roles: list[iam.IRole] = []

        # Idempotency: one item per processed revision, expired by DynamoDB TTL.
        self.table = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name=IDEMPOTENCY_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=IDEMPOTENCY_EXPIRY_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.DESTROY,  # only short-lived idempotency records
        )

        # Events the function could not process after its retries (or that grew too old) land here.
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        NagSuppressions.add_resource_suppressions(
            self.dead_letter_queue,
            [
                NagPackSuppression(
                    id="AwsSolutions-SQS3",
                    reason="DeadLetterQueue is itself the dead-letter queue (the event queue's redrive target, the "
                    "rule targets' DLQ and the function's on-failure destination); a queue for a queue's failures "
                    "would be circular.",
                )
            ],
        )

        # Every matched event waits here for the function, which takes batches at a bounded concurrency (a burst
        # drains at what ECS's rates allow); what fails QUEUE_MAX_RECEIVES deliveries goes to the dead-letter queue.
        # Throttled events are sent back with a delay by the function (functions/delivery.py), which uses no receive.
        self.queue = sqs.Queue(
            self,
            "EventQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(QUEUE_VISIBILITY_TIMEOUT_SECONDS),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=QUEUE_MAX_RECEIVES, queue=self.dead_letter_queue),
        )

        self.log_group = logs.LogGroup(
            self,
            "FunctionLogs",
            retention=settings.log_retention,
            removal_policy=RemovalPolicy.RETAIN,  # the record of what was remediated outlives the stack
        )

        # An explicit role: no AWSLambdaBasicExecutionRole (whose logs:CreateLogGroup/PutLogEvents are on "*").
        self.role = iam.Role(
            self,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="ecs-remediate function: describes, and in remediate mode registers, task definitions",
        )
        self.log_group.grant_write(self.role)  # logs:CreateLogStream and logs:PutLogEvents on this group
        self.trust(self.role)

        self.function = lambda_.Function(
            self,
            "Function",
            description="Registers a non-privileged copy of task definitions registered with privileged containers",
            handler=HANDLER,
            memory_size=FUNCTION_MEMORY_MB,
            timeout=Duration.seconds(FUNCTION_TIMEOUT_SECONDS),
            role=self.role,
            **self.shared_function_props(),
            retry_attempts=ASYNC_RETRY_ATTEMPTS,
            max_event_age=Duration.seconds(ASYNC_MAX_EVENT_AGE_SECONDS),
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
        )
        # The mapping grants receive, delete and change-visibility; deferrals send the event back
        # (functions/delivery.py).
        self.event_source_mapping = event_sources.SqsEventSource(
            self.queue,
            batch_size=batch_size,
            max_batching_window=batching_window,
            report_batch_item_failures=True,
            max_concurrency=settings.queue_concurrency or default_concurrency,
        )
        self.function.add_event_source(self.event_source_mapping)
        self.queue.grant_send_messages(self.role)
        NagSuppressions.add_resource_suppressions(
            self.role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    applies_to=["Resource::*"],
                    reason="FunctionRole default policy: xray:PutTraceSegments and xray:PutTelemetryRecords "
                    "(added by Tracing.ACTIVE) support no resource-level permissions, only '*'.",
                )
            ],
            apply_to_children=True,
        )
        # Deployed before the function, so that its first invocation already has the permissions.
        if runtime_permissions:
            self.function.node.add_dependency(self.grant_runtime(self.role))
        else:
            self.grant_state(self.role)

        # Only this account's calls on its default bus: another account's event never reaches the function (a hub's
        # bus admits the organization; the function then acts only in the sending account).
        self.event_bus = event_bus
        self.rule = self.add_rule(
            self,
            "PrivilegedRegistrationRule",
            description="RegisterTaskDefinition calls (CloudTrail) with a privileged container, without request "
            "parameters, or truncated by CloudTrail, invoke the ecs-remediate function",
            detail=event_pattern.remediation_detail(),
        )
        if settings.tag_exemptions:
            self.exemption_tags_rule = self.add_rule(
                self,
                "ExemptionTagsRule",
                description="TagResource calls that set ecs-remediate exemption tags: the function records an "
                "approver's (only approvers' tags can exempt)",
                detail=event_pattern.exemption_tags_detail(settings.tag_prefix),
            )
        self.alarms = self._alarms()

    def add_rule(
        self,
        scope: Construct,
        construct_id: str,
        *,
        description: str,
        detail: dict[str, Any],
        detail_type: Sequence[str] = event_pattern.DETAIL_TYPES,
        on_bus: bool = True,
    ) -> events.Rule:
        """A rule on aws.ecs events that puts them on this function's event queue: on the stack's bus (the hub's, or the
        account's default bus with this account's events only), EventBridge's retries and, when it cannot deliver to
        the queue, the dead-letter queue. `on_bus=False`: the default bus whatever the stack's."""
        bus = self.event_bus if on_bus else None
        return events.Rule(
            scope,
            construct_id,
            event_bus=bus,
            description=description,
            event_pattern=events.EventPattern(
                source=event_pattern.SOURCES,
                detail_type=list(detail_type),
                account=[Stack.of(self).account] if bus is None else None,
                detail=detail,
            ),
            targets=[
                targets.SqsQueue(
                    self.queue,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=8,
                    max_event_age=Duration.hours(2),
                )
            ],
        )

    def shared_function_props(self) -> dict[str, Any]:
        """What every function of this package has in common (this one and the scheduled sweep): runtime,
        architecture, the code asset, JSON logs to the one log group at the configured level, X-Ray, env."""
        return {
            "runtime": RUNTIME,
            "architecture": lambda_.Architecture.ARM_64,
            "code": self.code,
            "log_group": self.log_group,
            "logging_format": lambda_.LoggingFormat.JSON,
            "application_log_level_v2": _APPLICATION_LOG_LEVEL[self.settings.log_level],
            "system_log_level_v2": lambda_.SystemLogLevel.INFO,
            "tracing": lambda_.Tracing.ACTIVE,
            "environment": self.environment,
        }

    @property
    def environment(self) -> dict[str, str]:
        """The function's configuration (names from ecs_remediate.core.config, the runtime's contract)."""
        s = self.settings
        return {
            env.ENV_MODE: s.mode,
            env.ENV_TOPIC_ARN: self.notifications.topic.topic_arn,
            env.ENV_IDEMPOTENCY_TABLE: self.table.table_name,
            env.ENV_IDEMPOTENCY_TTL: str(s.idempotency_ttl_seconds),
            env.ENV_TAG_PREFIX: s.tag_prefix,
            env.ENV_EXEMPT_FAMILIES: ",".join(s.exempt_families),
            env.ENV_NOTIFY_ON: ",".join(s.notify_on),
            env.ENV_ROLLOUT: str(s.rollout and s.remediates).lower(),
            env.ENV_RETIRE: str(s.retire and s.remediates).lower(),
            env.ENV_DAEMON_ROLLOUT: str(s.daemon_rollout and s.remediates).lower(),
            env.ENV_EXEMPTIONS_TABLE: self.registry.table.table_name,
            env.ENV_EXEMPTION_MAX_DAYS: str(s.exemption_max_days),
            env.ENV_EXEMPT_FAMILIES_ACKNOWLEDGED: str(bool(s.exempt_families)).lower(),
            env.ENV_EXEMPTION_APPROVERS: ",".join(s.exemption_approvers),
            env.ENV_TAG_EXEMPTIONS: str(s.tag_exemptions).lower(),
            env.ENV_TRUSTED_PRINCIPALS: Lazy.string(_RoleArns(self.trusted_roles)),
            env.ENV_ESCALATE_AFTER: str(s.escalate_after),
            env.ENV_ESCALATE_WINDOW_HOURS: str(s.escalate_window_hours),
            env.ENV_ROLLOUT_MANAGED: str(s.rollout_managed and s.rollout and s.remediates).lower(),
            env.ENV_SECURITY_HUB: str(s.security_hub).lower(),
            env.ENV_QUEUE_URL: self.queue.queue_url,
            env.ENV_MAX_RECEIVES: str(QUEUE_MAX_RECEIVES),
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": s.log_level,
        }

    def trust(self, role: iam.IRole) -> None:
        """`role` runs the remediation path: revisions it registers count as the stack's own (with matching content)."""
        self.trusted_roles.append(role)

    def grant_runtime(self, role: iam.IRole, *, scope: Construct | None = None) -> iam.Policy:
        """Everything a function running the remediation path needs, and nothing else.

        The ECS and PassRole statements go into a policy of their own (created under `scope`, default this
        construct) so that their cdk-nag suppressions name exactly them. In `report` mode the function never
        registers, so it gets no register, tag or PassRole permission.
        """
        self.grant_state(role)
        statements = runtime_statements(self.settings, RuntimeArns.of_stack(Stack.of(self)))
        policy = iam.Policy(scope or self, "RemediationPolicy", statements=statements)
        policy.attach_to_role(role)
        applies_to, reasons = runtime_nag(self.settings)
        NagSuppressions.add_resource_suppressions(
            policy,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5", applies_to=applies_to, reason="RemediationPolicy: " + "; ".join(reasons)
                )
            ],
        )
        return policy

    def grant_state(self, role: iam.IRole) -> None:
        """The idempotency table (records and the ledger of copies), the exemption registry (read) and the topic:
        what the function needs in its own account, hub or not."""
        self.table.grant(role, *IDEMPOTENCY_ITEM_ACTIONS)
        self.registry.grant_read(role)
        self.notifications.grant_publish(role)

    def _alarms(self) -> list[cloudwatch.Alarm]:
        prefix = self.notifications.alarm_name_prefix
        five_minutes = Duration.minutes(5)
        # (id, what is above its threshold, metric, threshold)
        definitions: list[tuple[str, str, cloudwatch.IMetric, int]] = [
            (
                "FunctionErrors",
                "function errors above zero",
                self.function.metric_errors(period=five_minutes, statistic="Sum"),
                0,
            ),
            (
                "FunctionThrottles",
                "function throttles above zero",
                self.function.metric_throttles(period=five_minutes, statistic="Sum"),
                0,
            ),
            (
                "EventQueueBacklog",
                f"the oldest queued event older than {QUEUE_AGE_ALARM_SECONDS // 60} minutes (a backlog that is not "
                "draining)",
                self.queue.metric_approximate_age_of_oldest_message(period=five_minutes, statistic="Maximum"),
                QUEUE_AGE_ALARM_SECONDS,
            ),
            (
                "DeadLetterQueueDepth",
                "events in the dead-letter queue above zero",
                self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=five_minutes, statistic="Maximum"
                ),
                0,
            ),
        ]
        alarms = []
        for alarm_id, what, metric, threshold in definitions:
            alarm = cloudwatch.Alarm(
                self,
                f"{alarm_id}Alarm",
                alarm_name=f"{prefix}{alarm_id}",
                alarm_description=f"ecs-remediate: {what}; see the function's logs and the DLQ",
                metric=metric,
                threshold=threshold,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.notifications.topic))
            alarms.append(alarm)
        return alarms
