"""What a member's forwarding rules do with an event they cannot deliver to the hub's bus: keep it.

EventBridge retries a target for 24 hours (185 attempts) and then drops the event, unless the target has a
dead-letter queue; a bus policy that refuses the sender, or a bus that does not exist, is not retried at all: the
event goes to the dead-letter queue at once, or is lost. So in every member account and Region:

  * one SQS queue (`OrgSettings.forwarding_queue_name`, the same name in every Region, so the member role can name
    it), encrypted (SSE-SQS), TLS only, keeping messages for SQS's maximum, 14 days: the organization sweep reads it
    daily; its policy lets EventBridge send to it only for this stack's forwarding rules (aws:SourceArn);
  * every forwarding rule's target with that DeadLetterConfig and an explicit RetryPolicy (EventBridge's own
    maximum, 24 hours and 185 attempts: a hub outage of a day is waited out, not queued), and one queue policy
    statement naming them all (CDK's EventBus target would add one per rule: the member template is inlined in the
    StackSet, whose body CloudFormation caps at 51,200 bytes);
  * two alarms in the member account: messages in the queue, and the forwarding rules' FailedInvocations (an
    event EventBridge could not even put in the queue, which only the rule's metric shows). They have no action:
    the member account has no topic of the hub's; the hub's operators see the queue through the organization sweep
    (lambda/ecs_remediate/organization/forwarding_queue.py), which reads its depth through the member role and drains
    what the sweep judged.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

RETENTION = Duration.days(14)  # SQS's maximum
MAX_EVENT_AGE = Duration.hours(24)  # EventBridge's maximum, and its default
MAX_RETRY_ATTEMPTS = 185  # EventBridge's maximum, and its default
ALARM_PERIOD = Duration.minutes(5)


class ForwardingFailures(Construct):
    """The forwarding rules' dead-letter queue and alarms; `target` builds each rule's target to the hub's bus."""

    def __init__(self, scope: Construct, construct_id: str, *, queue_name: str) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=queue_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=RETENTION,
        )
        NagSuppressions.add_resource_suppressions(
            self.queue,
            [
                NagPackSuppression(
                    id="AwsSolutions-SQS3",
                    reason="DeadLetterQueue is the forwarding rules' dead-letter queue: one for it would be circular",
                )
            ],
        )

    def attach(self, rules: Sequence[events.Rule]) -> None:
        """Each rule's (one) target gets the queue and the retry policy; the queue admits EventBridge for them only."""
        for rule in rules:
            cfn = rule.node.default_child
            assert isinstance(cfn, events.CfnRule)
            cfn.add_property_override("Targets.0.DeadLetterConfig", {"Arn": self.queue.queue_arn})
            cfn.add_property_override(
                "Targets.0.RetryPolicy",
                {
                    "MaximumEventAgeInSeconds": int(MAX_EVENT_AGE.to_seconds()),
                    "MaximumRetryAttempts": MAX_RETRY_ATTEMPTS,
                },
            )
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ForwardingRulesOnly",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": [rule.rule_arn for rule in rules]}},
            )
        )

    def alarms(self, rules: Sequence[events.Rule]) -> list[cloudwatch.Alarm]:
        depth = cloudwatch.Alarm(
            self,
            "QueuedAlarm",
            alarm_description="ecs-remediate: forwarding failures queued (the hub's sweep reports and drains them)",
            metric=self.queue.metric_approximate_number_of_messages_visible(period=ALARM_PERIOD, statistic="Maximum"),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        failed = cloudwatch.MathExpression(
            expression=" + ".join(f"FILL(f{i}, 0)" for i in range(len(rules))),
            using_metrics={
                f"f{i}": cloudwatch.Metric(
                    namespace="AWS/Events",
                    metric_name="FailedInvocations",
                    dimensions_map={"RuleName": rule.rule_name},
                    period=ALARM_PERIOD,
                    statistic="Sum",
                )
                for i, rule in enumerate(rules)
            },
            period=ALARM_PERIOD,
        )
        lost = cloudwatch.Alarm(
            self,
            "LostAlarm",
            alarm_description="ecs-remediate: a forwarding failure not queued either (lost; the sweep still judges)",
            metric=failed,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return [depth, lost]


__all__ = ["MAX_EVENT_AGE", "MAX_RETRY_ATTEMPTS", "RETENTION", "ForwardingFailures"]
