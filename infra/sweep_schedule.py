"""The scheduled sweep: a second function of the same package that runs `ecs_remediate.functions.handler.sweep_handler`
on a schedule, over the stack's Region, in the stack's mode (remediate or report).

It shares the remediation function's code asset, environment, idempotency table (so the sweep and the
real-time path dedupe each other), topic and log group, and gets the same remediation permissions through
`Remediator.grant_runtime`, plus the one listing call only the sweep makes.

Context (read once in `SweepSettings.from_context`):
  sweepSchedule   an EventBridge schedule expression, `rate(...)` or `cron(...)`; `off` builds nothing
  sweepScope      `active` (every ACTIVE revision, as Prowler judges: no privileged revision is left unseen;
                  default) or `latest` (newest ACTIVE revision of each family, as Security Hub ECS.4 judges)
  sweepInventory  `describe` (default), `config` or `auto`: with the active scope, judge from AWS Config's records
                  of the account's recorder and describe only what Config cannot vouch for (docs/sweep-config.md);
                  grants config:SelectResourceConfig. `config` needs sweepScope active and notifies when Config
                  could not be used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from ecs_remediate.sweep.run import ACTIVE, DESCRIBE, SCOPES, SweepError, check_inventory

from .config_queries import config_query_policy
from .remediator import Remediator
from .settings import CTX_SWEEP_INVENTORY, CTX_SWEEP_SCHEDULE, CTX_SWEEP_SCOPE, ContextError

DEFAULT_SWEEP_SCHEDULE = "rate(1 day)"
SWEEP_HANDLER = "ecs_remediate.functions.handler.sweep_handler"
# A sweep at ECS's read rate (20 describes a second) judges about 15,000 revisions in 15 minutes.
SWEEP_TIMEOUT_SECONDS = 900
SWEEP_MEMORY_MB = 512
_RATE_RE = re.compile(r"^rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)$")
_CRON_RE = re.compile(r"^cron\((\S+ ){5}\S+\)$")
_OFF = ("off", "none", "disabled", "false")


@dataclass(frozen=True, kw_only=True)
class SweepSettings:
    schedule: str | None = DEFAULT_SWEEP_SCHEDULE  # None: no scheduled sweep
    scope: str = ACTIVE
    inventory: str = DESCRIBE

    @property
    def input(self) -> dict[str, str]:
        """The schedule's event for sweep_handler (inventory only when it is not the default)."""
        return {"scope": self.scope} | ({"inventory": self.inventory} if self.inventory != DESCRIBE else {})

    @classmethod
    def from_context(cls, get: Callable[[str], Any], default_schedule: str = DEFAULT_SWEEP_SCHEDULE) -> SweepSettings:
        raw = get(CTX_SWEEP_SCHEDULE)
        schedule = default_schedule if raw is None else raw
        if not isinstance(schedule, str):
            raise ContextError(f"{CTX_SWEEP_SCHEDULE}: expected rate(...), cron(...) or off, got {schedule!r}")
        schedule = " ".join(schedule.split())
        scope = get(CTX_SWEEP_SCOPE) or ACTIVE
        if scope not in SCOPES:
            raise ContextError(f"{CTX_SWEEP_SCOPE}: expected one of {', '.join(SCOPES)}, got {scope!r}")
        inventory = get(CTX_SWEEP_INVENTORY) or DESCRIBE
        try:
            check_inventory(inventory, scope)
        except SweepError as error:
            raise ContextError(f"{CTX_SWEEP_INVENTORY}: {error}") from None
        if schedule.lower() in _OFF:
            return cls(schedule=None, scope=scope, inventory=inventory)
        if not (_RATE_RE.match(schedule) or _CRON_RE.match(schedule)):
            raise ContextError(
                f"{CTX_SWEEP_SCHEDULE}: expected an EventBridge schedule such as 'rate(1 day)', 'rate(6 hours)' "
                f"or 'cron(0 3 * * ? *)', or 'off'; got {schedule!r}"
            )
        return cls(schedule=schedule, scope=scope, inventory=inventory)


class SweepSchedule(Construct):
    """Schedule rule -> sweep function (same asset and environment as the remediator's function)."""

    def __init__(self, scope: Construct, construct_id: str, *, remediator: Remediator, settings: SweepSettings) -> None:
        super().__init__(scope, construct_id)
        assert settings.schedule is not None, "build the construct only when a schedule is set"
        notifications = remediator.notifications
        self.role = iam.Role(
            self,
            "SweepRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="ecs-remediate sweep: lists and judges task definitions, and in remediate mode fixes them",
        )
        remediator.log_group.grant_write(self.role)
        # The remediation path's own permissions (describe, list, and per mode register/tag/PassRole, the
        # idempotency table, the topic), from the construct that owns them: not repeated here.
        runtime_policy = remediator.grant_runtime(self.role, scope=self)
        # Only the sweep lists families (latest scope). ListTaskDefinitionFamilies, like the other task
        # definition reads, supports no resource-level permission: "*" is the only valid resource.
        list_policy = iam.Policy(
            self,
            "SweepListPolicy",
            statements=[
                iam.PolicyStatement(
                    sid="ListTaskDefinitionFamilies", actions=["ecs:ListTaskDefinitionFamilies"], resources=["*"]
                )
            ],
        )
        list_policy.attach_to_role(self.role)
        NagSuppressions.add_resource_suppressions(
            list_policy,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    applies_to=["Resource::*"],
                    reason="SweepListPolicy: ecs:ListTaskDefinitionFamilies supports only '*' as its resource.",
                )
            ],
        )

        policies: list[iam.Policy] = [list_policy]
        if settings.inventory != DESCRIBE:
            # The Config plan asks the account's recorder; that read can see every recorded configuration, hence opt-in.
            policies.append(config_query_policy(self, "SweepConfigQueryPolicy", self.role))

        self.function = lambda_.Function(
            self,
            "SweepFunction",
            description="Sweeps existing task definitions for privileged containers on a schedule (ecs-remediate)",
            handler=SWEEP_HANDLER,
            memory_size=SWEEP_MEMORY_MB,
            timeout=Duration.seconds(SWEEP_TIMEOUT_SECONDS),
            role=self.role,
            **remediator.shared_function_props(),
            # One sweep at a time: two would share the account's ECS rate and slow each other down.
            reserved_concurrent_executions=1,
            # A failed sweep is not retried (the next one comes); the alarm below tells the topic.
            retry_attempts=0,
        )
        NagSuppressions.add_resource_suppressions(
            self.role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    applies_to=["Resource::*"],
                    reason="SweepRole default policy: xray:PutTraceSegments and xray:PutTelemetryRecords "
                    "(added by Tracing.ACTIVE) support no resource-level permissions, only '*'.",
                )
            ],
            apply_to_children=True,
        )
        self.function.node.add_dependency(runtime_policy, *policies)

        self.rule = events.Rule(
            self,
            "SweepScheduleRule",
            description=f"Runs the ecs-remediate sweep ({settings.scope} scope) on a schedule",
            schedule=events.Schedule.expression(settings.schedule),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    event=events.RuleTargetInput.from_object(settings.input),
                    retry_attempts=2,
                    max_event_age=Duration.hours(1),
                )
            ],
        )

        # The sweep's own notice covers what it found; this covers a sweep that failed or timed out.
        self.alarm = cloudwatch.Alarm(
            self,
            "SweepErrorsAlarm",
            alarm_name=f"{notifications.alarm_name_prefix}SweepErrors",
            alarm_description="ecs-remediate: the scheduled sweep failed or timed out; see the function's logs",
            metric=self.function.metric_errors(period=Duration.hours(1), statistic="Sum"),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(cloudwatch_actions.SnsAction(notifications.topic))
