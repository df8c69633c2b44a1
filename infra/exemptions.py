"""The exemption registry: a table the policed cannot write.

An exemption is an item (a revision ARN, or the approvals of one account's family: see
ecs_remediate/exemption_items.py; a reason, the approver, an expiry) in a DynamoDB table owned by the stack. Its
resource policy denies every write to every principal but the configured approver roles (`exemptionApprovers`), so
a developer who can register and tag task definitions cannot exempt their own; the stack's functions only read it.
With no approvers configured nobody can write it (exemptions are then only the acknowledged family globs of the
configuration).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from ecs_remediate.core.exemptions.records import REGISTRY_KEY

READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Scan")  # the function and the sweep
WRITE_ACTIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
)


class ExemptionRegistry(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, approvers: Sequence[str]) -> None:
        super().__init__(scope, construct_id)
        self.approvers = tuple(approvers)
        # Only approvers write; the condition key is the calling role's ARN (an assumed-role session's role), so
        # patterns are role ARNs such as arn:aws:iam::111122223333:role/SecurityApprover.
        conditions = {"ArnNotLike": {"aws:PrincipalArn": list(self.approvers)}} if self.approvers else None
        policy = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="OnlyApproversWriteExemptions",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=list(WRITE_ACTIONS),
                    resources=["*"],  # in a resource policy: this table
                    conditions=conditions,
                )
            ]
        )
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=REGISTRY_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            resource_policy=policy,
            removal_policy=RemovalPolicy.RETAIN,  # the record of who exempted what outlives the stack
        )

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.table.grant(grantee, *READ_ACTIONS)
