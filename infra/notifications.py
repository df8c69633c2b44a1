"""Notifications: an SNS topic encrypted with a customer-managed KMS key, SSL enforced, email subscribers.

The key and topic policies let CloudWatch alarms of this account and region (whose names start with the
given prefix) publish; `grant_publish` gives a function exactly sns:Publish on the topic and the two key
actions SNS needs to encrypt a message, with no wildcard action (unlike `Topic.grant_publish`, which grants
`kms:GenerateDataKey*`).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

# What SNS calls on a customer-managed key to encrypt a published message.
KMS_PUBLISH_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
CLOUDWATCH = "cloudwatch.amazonaws.com"


class Notifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        emails: Sequence[str],
        alarm_name_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.alarm_name_prefix = alarm_name_prefix
        alarm_arns = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{alarm_name_prefix}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        from_our_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": alarm_arns},
        }

        self.key = kms.Key(
            self,
            "Key",
            description=f"{stack.stack_name}: encrypts the ecs-remediate notification topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # CloudWatch alarms publish to an encrypted topic only if the key lets them (SNS docs:
        # "compatibility between event sources from AWS services and encrypted topics").
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowOurCloudWatchAlarmsToUseTheKey",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=list(KMS_PUBLISH_ACTIONS),
                resources=["*"],  # in a key policy, "*" means this key
                conditions=from_our_alarms,
            )
        )

        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="ecs-remediate",
            master_key=self.key,
            enforce_ssl=True,
        )
        # The stack's topic policy replaces SNS's default one, so allow our alarms explicitly.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowOurCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=from_our_alarms,
            )
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        """sns:Publish on this topic, and the key actions SNS performs on the publisher's behalf."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(sid="PublishNotices", actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EncryptNoticesWithTheTopicKey", actions=list(KMS_PUBLISH_ACTIONS), resources=[self.key.key_arn]
            )
        )
