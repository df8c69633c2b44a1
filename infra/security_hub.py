"""Security Hub (opt-in, `securityHub=true`): what a function needs to import its verdicts as findings.

`grant_security_hub_import(role)` attaches one policy to a role; the lead calls it for the function and
the scheduled sweep when `StackSettings.security_hub` is on (they then call
`ecs_remediate.reports.securityhub.import_result` / `import_sweep`). Every statement is scoped to this account's
and Region's Security Hub; none uses `*`.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

# Fields the function never changes on a finding (only Workflow.Status and Note): whatever else
# BatchUpdateFindings could set is denied, so the role cannot re-grade or re-label another product's findings.
CUSTOMER_FIELDS_DENIED = (
    "Severity.Label",
    "Severity.Normalized",
    "Severity.Product",
    "Confidence",
    "Criticality",
    "Types",
    "UserDefinedFields",
    "VerificationState",
    "RelatedFindings.Id",
    "RelatedFindings.ProductArn",
)


def default_product_arn(stack: Stack) -> str:
    """arn:<partition>:securityhub:<region>:<account>:product/<account>/default"""
    return stack.format_arn(service="securityhub", resource="product", resource_name=f"{stack.account}/default")


def hub_arn(stack: Stack) -> str:
    """arn:<partition>:securityhub:<region>:<account>:hub/default"""
    return stack.format_arn(service="securityhub", resource="hub", resource_name="default")


def grant_security_hub_import(
    role: iam.IRole, *, scope: Construct, construct_id: str = "SecurityHubImport"
) -> iam.Policy:
    """Attach the Security Hub policy to `role` (created under `scope`) and return it."""
    stack = Stack.of(scope)
    hub = hub_arn(stack)
    statements = [
        # One finding per verdict, under this account's default product only (the integration it needs no
        # subscription for): BatchImportFindings takes the product ARN as its resource.
        iam.PolicyStatement(
            sid="ImportFindingsUnderTheDefaultProduct",
            actions=["securityhub:BatchImportFindings"],
            resources=[default_product_arn(stack)],
        ),
        # Read the product's own findings back: their current workflow (an import cannot change it), their
        # CreatedAt (kept on update), and the ones a complete sweep no longer produces (archived).
        iam.PolicyStatement(sid="ReadFindingsOfThisHub", actions=["securityhub:GetFindings"], resources=[hub]),
        # Move a finding's workflow (RESOLVED once fixed, SUPPRESSED with the exemption's note, NEW when an
        # exemption ran out): once a finding exists, only BatchUpdateFindings can.
        iam.PolicyStatement(sid="MoveWorkflowOfFindings", actions=["securityhub:BatchUpdateFindings"], resources=[hub]),
    ]
    # BatchUpdateFindings acts on any product's findings in the hub (no condition key names the finding's
    # product): deny each field but Workflow.Status and Note, so the role cannot re-grade or relabel findings.
    statements += [
        iam.PolicyStatement(
            sid=f"DenyChanging{field.replace('.', '')}",
            effect=iam.Effect.DENY,
            actions=["securityhub:BatchUpdateFindings"],
            resources=[hub],
            conditions={"Null": {f"securityhub:ASFFSyntaxPath/{field}": "false"}},
        )
        for field in CUSTOMER_FIELDS_DENIED
    ]
    policy = iam.Policy(scope, construct_id, statements=statements)
    policy.attach_to_role(role)
    return policy
