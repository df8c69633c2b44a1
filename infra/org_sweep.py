"""The organization sweep on Step Functions (hub stack, daily unless `sweepSchedule` says otherwise): every (account,
Region) of the target OUs swept in parallel on AWS's own fan-out engine, one report and one notice per run.

  schedule rule -> state machine:
    ListItems     (control function)  ACTIVE accounts of the target OUs (recursively), minus excludedAccounts, times
                                      the Regions, written to runs/<run>/items.json in the report bucket
    SweepItems    Distributed Map     reads that file (ItemReader: 17,000 items and more, where inline state stops at
                                      256 KiB), `orgSweepConcurrency` items at once, each a child execution:
                    SweepItem         (item function) one account-Region through its member role, then the member's
                                      forwarding dead-letter queue there (depth; drained once judged); Retry with
                                      backoff on Lambda's transient errors and on MemberAccessTransient / ItemIncomplete
                    Catch -> ItemError (Pass: the ERROR row's fields) -> RecordError (item function): that item's ERROR
                                      row with the error text. No child fails, so no item is missing; the map
                                      tolerates 100% failures anyway and the summary reads the items file.
    Summarize     (control function)  report.json / report.csv, one notice on the hub's topic

Child executions are STANDARD: an item of a large account takes longer than Express's 5-minute limit at ECS's
describe rate (6,000 revisions at 20/s), and Standard's price is per state transition (about 3 per item).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from ecs_remediate.core.config import ENV_MEMBER_ROLE_NAME
from ecs_remediate.functions.org_sweep import (
    ENV_EXCLUDED,
    ENV_FORWARDING_QUEUE,
    ENV_OUS,
    ENV_REGIONS,
    ENV_REPORT_BUCKET,
    ENV_SWEEP_SCOPE,
)

from .org_settings import OrgSettings
from .remediator import IDEMPOTENCY_ITEM_ACTIONS, Remediator

ITEM_HANDLER = "ecs_remediate.functions.org_sweep.item_handler"
CONTROL_HANDLER = "ecs_remediate.functions.org_sweep.control_handler"
ITEM_TIMEOUT = Duration.minutes(15)  # 18,000 describes at 20/s: one account-Region's sweep
ITEM_MEMORY_MB = 512
CONTROL_TIMEOUT = Duration.minutes(15)  # the summary reads 17,000 item objects (16 at a time)
CONTROL_MEMORY_MB = 1024  # the report of 17,000 items is built in memory
# Lambda's own transient errors (as CDK's default retry lists them) and TooManyRequests (the Region's concurrency).
LAMBDA_TRANSIENT = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# Raised by the item function for what a later attempt can fix (STS throttled; a listing cut short).
ITEM_TRANSIENT = ["MemberAccessTransient", "ItemIncomplete"]
MAP_RESULTS_PREFIX = "map-results"


class OrgSweep(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        remediator: Remediator,
        org: OrgSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        assert org.sweep.schedule is not None, "build the construct only when sweepSchedule is set"
        self.bucket = s3.Bucket(
            self,
            "ReportBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,  # as the stack's other stores: AWS-managed keys
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireReports",
                    expiration=Duration.days(org.report_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.bucket,
            [
                NagPackSuppression(
                    id="AwsSolutions-S1",
                    reason="ReportBucket: written and read only by the sweep's own roles (no principal outside this "
                    "stack, public access blocked, SSL only); CloudTrail records its management calls. A log bucket "
                    "would need the same justification.",
                )
            ],
        )

        shared = remediator.shared_function_props()
        environment = {
            **shared.pop("environment"),
            ENV_MEMBER_ROLE_NAME: org.member_role_name,
            ENV_REPORT_BUCKET: self.bucket.bucket_name,
            ENV_SWEEP_SCOPE: org.sweep.scope,
        }
        self.item_role = iam.Role(
            self,
            "ItemRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="ecs-remediate organization sweep item: one account-Region through its member role",
        )
        self.control_role = iam.Role(
            self,
            "ControlRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="ecs-remediate organization sweep: lists the items, writes the report, sends the notice",
        )
        for role in (self.item_role, self.control_role):
            remediator.log_group.grant_write(role)
        # Item: its rows (and nothing else) in the bucket; the hub's idempotency table (copies made once, shared with
        # the real-time function) and exemption registry. sts:AssumeRole of the member roles: the hub's
        # MemberAccessPolicy, attached by the hub stack (this role is one the member role trusts).
        remediator.table.grant(self.item_role, *IDEMPOTENCY_ITEM_ACTIONS)
        remediator.registry.grant_read(self.item_role)
        self.bucket.grant_put(self.item_role, "runs/*/items/*")
        # Control: the run's files; the topic (one notice per run); Organizations' listing; the exemption registry
        # (the notice names its too-broad image-digest items of earlier versions).
        remediator.registry.grant_read(self.control_role)
        self.bucket.grant_read(self.control_role, "runs/*")
        self.bucket.grant_put(self.control_role, "runs/*")
        remediator.notifications.grant_publish(self.control_role)
        listing = iam.Policy(
            self,
            "ListTargetAccountsPolicy",
            statements=[
                iam.PolicyStatement(
                    sid="ListAccountsOfTheTargetOus",
                    actions=["organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent"],
                    resources=["*"],
                )
            ],
        )
        listing.attach_to_role(self.control_role)
        NagSuppressions.add_resource_suppressions(
            listing,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    applies_to=["Resource::*"],
                    reason="ListTargetAccountsPolicy: organizations:ListAccountsForParent and "
                    "ListOrganizationalUnitsForParent are read-only List actions listed with no resource type in "
                    "the Service Authorization Reference: '*' is their only resource. Nothing else is granted.",
                )
            ],
        )

        self.item_function = lambda_.Function(
            self,
            "ItemFunction",
            description="ecs-remediate organization sweep: one account and Region through its member role",
            handler=ITEM_HANDLER,
            memory_size=ITEM_MEMORY_MB,
            timeout=ITEM_TIMEOUT,
            role=self.item_role,
            # the members' forwarding dead-letter queue, read and drained through the member role (item only: the
            # control function's environment is the one near Lambda's 4 KB with many excluded accounts)
            environment={**environment, ENV_FORWARDING_QUEUE: org.forwarding_queue_name},
            retry_attempts=0,  # invoked synchronously by the state machine, which retries
            **shared,
        )
        self.control_function = lambda_.Function(
            self,
            "ControlFunction",
            description="ecs-remediate organization sweep: items from Organizations, the report and its notice",
            handler=CONTROL_HANDLER,
            memory_size=CONTROL_MEMORY_MB,
            timeout=CONTROL_TIMEOUT,
            role=self.control_role,
            environment={
                **environment,
                ENV_OUS: ",".join(org.target_ous),
                ENV_REGIONS: ",".join(org.regions),
                ENV_EXCLUDED: ",".join(org.excluded_accounts),
            },
            retry_attempts=0,
            **shared,
        )
        self._suppress_generated_wildcards()
        self.state_machine = self._state_machine(org)
        NagSuppressions.add_resource_suppressions(
            self.state_machine,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    applies_to=[
                        "Resource::<OrgSweepControlFunction826F6DB9.Arn>:*",
                        "Resource::<OrgSweepItemFunctionDFAF9E6E.Arn>:*",
                        "Resource::arn:<AWS::Partition>:s3:::<OrgSweepReportBucketA87E1ECB>/*",
                        "Resource::*",
                        RegexAppliesTo(
                            regex="/^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
                            "execution:.*OrgSweepOrgSweepStateMachine2EB56669.*$/g"
                        ),
                    ],
                    reason="OrgSweepStateMachine role (CDK's grants for its own states): lambda:InvokeFunction on the "
                    "sweep's two functions and their versions (<fn>:*); the report bucket's objects for the map's "
                    "ItemReader (runs/<run>/items.json, named at run time) and ResultWriter (map-results/); "
                    "states:StartExecution/DescribeExecution/StopExecution on this state machine's own map-run "
                    "executions (<machine>/*), which a Distributed Map needs; logs:*LogDelivery/DescribeLogGroups/"
                    "PutResourcePolicy and xray:Put*/GetSampling* support only '*'.",
                )
            ],
            apply_to_children=True,
        )
        self.rule = events.Rule(
            self,
            "OrgSweepScheduleRule",
            description="Runs the ecs-remediate organization sweep on a schedule",
            schedule=events.Schedule.expression(org.sweep.schedule),
            targets=[targets.SfnStateMachine(self.state_machine, retry_attempts=2, max_event_age=Duration.hours(1))],
        )

    def _suppress_generated_wildcards(self) -> None:
        common = ["Resource::*", "Action::s3:Abort*"]
        for role, name, extra, reason in (
            (
                self.item_role,
                "ItemRole",
                ["Resource::<OrgSweepReportBucketA87E1ECB.Arn>/runs/*/items/*"],
                "s3:PutObject/Abort* on runs/*/items/* only (the item's own rows; run and key known at run time)",
            ),
            (
                self.control_role,
                "ControlRole",
                [
                    "Resource::<OrgSweepReportBucketA87E1ECB.Arn>/runs/*",
                    "Action::s3:GetBucket*",
                    "Action::s3:GetObject*",
                    "Action::s3:List*",
                ],
                "CDK's grant_read/grant_put on runs/* only (the run's items, results, report, notice marker; "
                "the run's name is known at run time): s3:GetObject*, GetBucket*, List*, PutObject, Abort*",
            ),
        ):
            NagSuppressions.add_resource_suppressions(
                role,
                [
                    NagPackSuppression(
                        id="AwsSolutions-IAM5",
                        applies_to=[*common, *extra],
                        reason=f"{name} default policy: xray:PutTraceSegments/PutTelemetryRecords (Tracing.ACTIVE) "
                        f"support only '*'; {reason}.",
                    )
                ],
                apply_to_children=True,
            )

    def _state_machine(self, org: OrgSettings) -> sfn.StateMachine:
        run = sfn.JsonPath.string_at("$$.Execution.Name")
        list_items = tasks.LambdaInvoke(
            self,
            "ListItems",
            lambda_function=self.control_function,
            payload=sfn.TaskInput.from_object({"action": "list", "run": run}),
            payload_response_only=False,
            retry_on_service_exceptions=False,
            result_selector={"bucket.$": "$.Payload.bucket", "key.$": "$.Payload.key", "count.$": "$.Payload.count"},
            result_path="$.items",
        )
        list_items.add_retry(errors=LAMBDA_TRANSIENT, interval=Duration.seconds(2), max_attempts=4, backoff_rate=2)

        sweep_item = tasks.LambdaInvoke(
            self,
            "SweepItem",
            lambda_function=self.item_function,
            payload=sfn.TaskInput.from_json_path_at("$"),
            payload_response_only=False,
            retry_on_service_exceptions=False,
            output_path="$.Payload",
        )
        # Backoff with full jitter: thousands of items retrying at once would otherwise retry in lockstep.
        sweep_item.add_retry(
            errors=LAMBDA_TRANSIENT + ITEM_TRANSIENT,
            interval=Duration.seconds(5),
            max_attempts=4,
            backoff_rate=2,
            max_delay=Duration.minutes(2),
            jitter_strategy=sfn.JitterType.FULL,
        )
        item_error = sfn.Pass(
            self,
            "ItemError",
            parameters={
                "action": "error",
                "account.$": "$.account",
                "region.$": "$.region",
                "run.$": "$.run",
                "error.$": "$.failure.Error",
                "cause.$": "$.failure.Cause",
            },
        )
        record_error = tasks.LambdaInvoke(
            self,
            "RecordError",
            lambda_function=self.item_function,
            payload=sfn.TaskInput.from_json_path_at("$"),
            payload_response_only=False,
            retry_on_service_exceptions=False,
            output_path="$.Payload",
        )
        record_error.add_retry(errors=LAMBDA_TRANSIENT, interval=Duration.seconds(5), max_attempts=4, backoff_rate=2)
        sweep_item.add_catch(item_error.next(record_error), errors=["States.ALL"], result_path="$.failure")

        sweep_items = sfn.DistributedMap(
            self,
            "SweepItems",
            item_reader=sfn.S3JsonItemReader(bucket=self.bucket, key=sfn.JsonPath.string_at("$.items.key")),
            item_selector={
                "account.$": "$$.Map.Item.Value.account",
                "region.$": "$$.Map.Item.Value.region",
                "run.$": "$$.Execution.Name",
            },
            max_concurrency=org.sweep_concurrency,
            tolerated_failure_percentage=100,
            map_execution_type=sfn.StateMachineType.STANDARD,
            # Child outputs to S3, not into the state (17,000 x 200 bytes would pass 256 KiB): the summary reads the
            # items' own objects, this is the engine's record of each child.
            result_writer_v2=sfn.ResultWriterV2(bucket=self.bucket, prefix=MAP_RESULTS_PREFIX),
            result_path="$.map",
        )
        sweep_items.item_processor(sweep_item)

        summarize = tasks.LambdaInvoke(
            self,
            "Summarize",
            lambda_function=self.control_function,
            payload=sfn.TaskInput.from_object({"action": "summary", "run": run}),
            payload_response_only=False,
            retry_on_service_exceptions=False,
            output_path="$.Payload",
        )
        summarize.add_retry(errors=LAMBDA_TRANSIENT, interval=Duration.seconds(2), max_attempts=4, backoff_rate=2)

        log_group = logs.LogGroup(self, "StateMachineLogs", retention=logs.RetentionDays.THREE_MONTHS)
        machine = sfn.StateMachine(
            self,
            "OrgSweepStateMachine",
            comment="ecs-remediate organization sweep",
            definition_body=sfn.DefinitionBody.from_chainable(list_items.next(sweep_items).next(summarize)),
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            timeout=Duration.hours(24),
        )
        return machine
