"""The IAM the sweep's AWS Config plan needs (docs/sweep-config.md#iam), declared once for the single-account
schedule (the account's recorder) and the hub's organization sweep (an aggregator)."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct


def config_query_policy(
    scope: Construct, construct_id: str, role: iam.IRole, *, aggregator_arn: str | None = None
) -> iam.Policy:
    """config:SelectResourceConfig on "*" (the account's recorder: the action supports no resource-level
    permission), or, with `aggregator_arn`, config:SelectAggregateResourceConfig on that aggregator only."""
    if aggregator_arn is None:
        statement = iam.PolicyStatement(
            sid="SelectResourceConfig", actions=["config:SelectResourceConfig"], resources=["*"]
        )
    else:
        statement = iam.PolicyStatement(
            sid="SelectAggregateResourceConfig",
            actions=["config:SelectAggregateResourceConfig"],
            resources=[aggregator_arn],
        )
    policy = iam.Policy(scope, construct_id, statements=[statement])
    policy.attach_to_role(role)
    if aggregator_arn is None:
        NagSuppressions.add_resource_suppressions(
            policy,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    applies_to=["Resource::*"],
                    reason=f"{construct_id}: config:SelectResourceConfig supports only '*' as its resource (the "
                    "advanced query of the account's recorder); granted only when the sweep's Config plan is asked.",
                )
            ],
        )
    return policy
