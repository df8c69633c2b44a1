"""The stack: composes the constructs; holds no resources and no logic of its own."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from .bundling import function_code
from .daemons import DaemonRules
from .exemptions import ExemptionRegistry
from .notifications import Notifications
from .outputs import verify_outputs
from .remediator import RUNTIME, Remediator
from .security_hub import grant_security_hub_import
from .settings import StackSettings
from .sweep_schedule import SweepSchedule, SweepSettings


class EcsRemediateStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        sweep: SweepSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.notifications = Notifications(
            self,
            "Notifications",
            emails=settings.notification_emails,
            alarm_name_prefix=f"{self.stack_name}-",
        )
        self.exemptions = ExemptionRegistry(self, "Exemptions", approvers=settings.exemption_approvers)
        self.remediator = Remediator(
            self,
            "Remediator",
            settings=settings,
            code=function_code(RUNTIME),
            notifications=self.notifications,
            registry=self.exemptions,
        )
        self.daemons = DaemonRules(self, "Daemons", remediator=self.remediator, settings=settings)
        self.sweep = (
            SweepSchedule(self, "Sweep", remediator=self.remediator, settings=sweep) if sweep.schedule else None
        )
        if self.sweep is not None:
            self.remediator.trust(self.sweep.role)
        if settings.security_hub:  # one finding per verdict, under this account's default product
            self.security_hub_policies = [
                grant_security_hub_import(self.remediator.role, scope=self.remediator),
                *([grant_security_hub_import(self.sweep.role, scope=self.sweep)] if self.sweep is not None else []),
            ]
            self.remediator.function.node.add_dependency(self.security_hub_policies[0])
            if self.sweep is not None:
                self.sweep.function.node.add_dependency(self.security_hub_policies[1])
        # What the README's commands need after a deploy.
        remediator = self.remediator
        for output_id, value, description in (
            ("TopicArn", self.notifications.topic.topic_arn, "SNS topic of notices and alarms"),
            ("FunctionName", remediator.function.function_name, "the remediation function"),
            ("LogGroupName", remediator.log_group.log_group_name, "the function's logs"),
            ("DeadLetterQueueUrl", remediator.dead_letter_queue.queue_url, "events that could not be processed"),
            ("RuleName", remediator.rule.rule_name, "the EventBridge rule"),
            ("ExemptionsTableName", self.exemptions.table.table_name, "the exemption registry (approvers write it)"),
            *verify_outputs(settings, remediator),
        ):
            CfnOutput(self, output_id, value=value, description=description)
