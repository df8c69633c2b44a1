"""checkov suppressions, each with its reason, written as the `Metadata.checkov.skip` that checkov reads.

An aspect (added in app.py, next to cdk-nag's) rather than edits in every construct: the findings are per
resource type and hold for every resource of that type in this stack. Two are per resource (the functions'
dead-letter handling differs), named by construct path; a new function gets no such suppression and its
author has to state its own. tests/test_reliability_template.py runs checkov on the synthesized templates:
zero unsuppressed findings, and every suppression here has a reason.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import CfnResource, IAspect
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import IConstruct

FUNCTION_SKIPS = {
    "CKV_AWS_117": "Not in a VPC: the function calls only public AWS APIs (ECS, SNS, DynamoDB) and reaches "
    "no private resource; a VPC would add NAT or endpoints and no protection.",
    "CKV_AWS_173": "Environment variables hold no secret (mode, topic ARN, table name, tag prefix, globs); "
    "Lambda encrypts them at rest with its AWS managed key. A customer key would protect nothing more.",
}
REMEDIATOR_FUNCTION_SKIPS = {
    "CKV_AWS_116": "Async failures go to the on-failure destination (EventInvokeConfig -> DeadLetterQueue, "
    "which records the error as well as the event); a DeadLetterConfig would be a second copy of the same.",
    "CKV_AWS_115": "No reserved concurrency: reserving takes capacity from the account's unreserved pool and "
    "fails deployment where it is small (10 on new accounts). Loops are prevented by design (marker, "
    "compliant copies, idempotency) and the Throttles alarm notifies.",
}
SWEEP_FUNCTION_SKIPS = {
    "CKV_AWS_116": "A failed scheduled sweep is not retried (the next run repeats the whole sweep); the "
    "SweepErrors alarm notifies the topic. A DLQ would hold only the fixed schedule input.",
}
ORG_SWEEP_FUNCTION_SKIPS = {
    "CKV_AWS_116": "Invoked synchronously by the organization sweep's state machine (never asynchronously): its "
    "Retry and Catch handle a failure, and a failed item becomes that account's ERROR row in the report.",
    "CKV_AWS_115": "No reserved concurrency: the state machine's MaxConcurrency (orgSweepConcurrency) bounds it; "
    "reserving would take capacity from the account's unreserved pool and fail deployment where it is small.",
}
REPORT_BUCKET_SKIPS = {
    "CKV_AWS_18": "Reports written and read only by the sweep's own roles (public access blocked, SSL only); "
    "CloudTrail records the bucket's management calls. An access-log bucket would need the same reasoning.",
    "CKV_AWS_21": "Each run writes new keys under runs/<execution name>/ and never overwrites another run's; "
    "reports expire by the lifecycle rule. Versions would only keep expired reports longer.",
}
TABLE_SKIPS = {
    "CKV_AWS_119": "Encrypted at rest with the AWS managed DynamoDB key (TableEncryption.AWS_MANAGED). Items are "
    "short-lived idempotency records (revision ARN, outcome, registrant ARN); no secret and no task "
    "definition body.",
}
QUEUE_SKIPS = {
    "CKV_AWS_27": "Encrypted at rest with SQS managed SSE (SqsManagedSseEnabled: true); this checkov check "
    "only recognises KmsMasterKeyId. Messages are failed events (names and ARNs).",
}
LOG_GROUP_SKIPS = {
    "CKV_AWS_158": "CloudWatch Logs encrypts log data at rest with its own keys. The function logs names, "
    "ARNs and outcomes only, never a task definition body or an environment value (tested).",
}


def skips_for(node: IConstruct) -> dict[str, str]:
    path = node.node.path
    if isinstance(node, lambda_.CfnFunction):
        if path.endswith("/Remediator/Function/Resource"):
            return {**FUNCTION_SKIPS, **REMEDIATOR_FUNCTION_SKIPS}
        if path.endswith("/SweepFunction/Resource"):
            return {**FUNCTION_SKIPS, **SWEEP_FUNCTION_SKIPS}
        if "/OrgSweep/" in path:
            return {**FUNCTION_SKIPS, **ORG_SWEEP_FUNCTION_SKIPS}
        return dict(FUNCTION_SKIPS)
    if isinstance(node, s3.CfnBucket) and path.endswith("/OrgSweep/ReportBucket/Resource"):
        return dict(REPORT_BUCKET_SKIPS)
    if isinstance(node, dynamodb.CfnTable):
        return dict(TABLE_SKIPS)
    if isinstance(node, sqs.CfnQueue):
        return dict(QUEUE_SKIPS)
    if isinstance(node, logs.CfnLogGroup):
        return dict(LOG_GROUP_SKIPS)
    return {}


@jsii.implements(IAspect)
class CheckovSuppressions:
    def visit(self, node: IConstruct) -> None:
        skips = skips_for(node)
        if skips and isinstance(node, CfnResource):
            entries: list[dict[str, Any]] = [{"id": k, "comment": v} for k, v in sorted(skips.items())]
            node.add_metadata("checkov", {"skip": entries})
