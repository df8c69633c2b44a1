"""CDK assertions on the synthesized stack: pattern, IAM, encryption, DLQ wiring, alarms, cdk-nag, cfn-lint.

Two apps are synthesized once per module (asset bundling skipped; tests/test_infra_bundling.py bundles):
the default context, and a report-mode one with every context key set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Annotations, Match, Template
from synth_cache import synthesized_app

from app import ROOT, stack_of
from ecs_remediate.core.config import Config
from infra.settings import RETENTION_DAYS, ContextError, StackSettings

REPORT_CONTEXT = {
    "notificationEmails": '["sec@example.com", "oncall@example.org"]',
    "mode": "report",
    "tagPrefix": "acme-sec",
    "exemptFamilies": "legacy-*,monitoring-agent",
    "exemptFamiliesAcknowledged": "true",
    "exemptionApprovers": "arn:aws:iam::123456789012:role/SecurityApprover,arn:aws:iam::123456789012:role/sec-*",
    "exemptionMaxDays": "30",
    "notifyOn": ["remediated", "reported", "failed", "exempt"],
    "logRetentionDays": "30",
    "logLevel": "debug",
    "idempotencyTtlSeconds": 3600,
}


def _synth(context: dict[str, Any], tmp: Path) -> tuple[cdk.Stack, Template, dict[str, Any]]:
    app = synthesized_app(context)
    stack = stack_of(app)
    template = Template.from_stack(stack)
    return stack, template, template.to_json()


# The remediator on its own: the scheduled sweep (on by default) is covered in test_infra_sweep.py, where
# the default stack, sweep included, also goes through cdk-nag and cfn-lint.
REMEDIATOR_ONLY = {"sweepSchedule": "off"}


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.Stack, Template, dict[str, Any]]:
    return _synth(REMEDIATOR_ONLY, tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="module")
def template(default: tuple[cdk.Stack, Template, dict[str, Any]]) -> Template:
    return default[1]


@pytest.fixture(scope="module")
def resources(default: tuple[cdk.Stack, Template, dict[str, Any]]) -> dict[str, Any]:
    res: dict[str, Any] = default[2]["Resources"]
    return res


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.Stack, Template, dict[str, Any]]:
    return _synth({**REPORT_CONTEXT, **REMEDIATOR_ONLY}, tmp_path_factory.mktemp("cdk-report"))


def of_type(resources: dict[str, Any], type_: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == type_}


def only(resources: dict[str, Any], type_: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
    found = {k: v for k, v in of_type(resources, type_).items() if k.startswith(prefix)}
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


IDEMPOTENCY = "RemediatorIdempotencyTable"


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def arn_of(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of every identity policy in the template."""
    out = []
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        out += policy["Properties"]["PolicyDocument"]["Statement"]
    for role in of_type(resources, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            out += policy["PolicyDocument"]["Statement"]
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statement_with(resources: dict[str, Any], action: str, sid: str | None = None) -> dict[str, Any]:
    found = [s for s in statements(resources) if action in as_list(s["Action"]) and sid in (None, s.get("Sid"))]
    assert len(found) == 1, f"{action}: expected one statement, found {found}"
    return found[0]


def flat(value: Any) -> str:
    """A CloudFormation value as text (Fn::Join parts concatenated), for suffix checks."""
    return json.dumps(value)


# --- the rule ---


DLQ, EVENT_QUEUE = "RemediatorDeadLetterQueue", "RemediatorEventQueue"


def test_rule_pattern_and_target(resources: dict[str, Any]) -> None:
    queue_id, _ = only(resources, "AWS::SQS::Queue", DLQ)
    events_id, _ = only(resources, "AWS::SQS::Queue", EVENT_QUEUE)
    _, rule = only(resources, "AWS::Events::Rule", "RemediatorPrivilegedRegistrationRule")
    props = rule["Properties"]
    assert "EventBusName" not in props  # the default bus, where CloudTrail delivers
    assert props["State"] == "ENABLED"
    pattern = props["EventPattern"]
    assert pattern["source"] == ["aws.ecs"]
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    assert pattern["detail"]["eventSource"] == ["ecs.amazonaws.com"]
    assert pattern["detail"]["eventName"] == ["RegisterTaskDefinition"]
    assert pattern["detail"]["errorCode"] == [{"exists": False}]
    assert pattern["detail"]["$or"] == [
        {"requestParameters": {"containerDefinitions": {"privileged": [True]}}},
        {"requestParameters": {"family": [{"exists": False}]}},
        # CloudTrail cut the request (omitted: true): the container list has no name leaf, or the marker is set
        {"requestParameters": {"containerDefinitions": {"name": [{"exists": False}]}}},
        {"requestParameters": {"omitted": [True]}},
        {"omitted": [True]},
    ]
    assert len(json.dumps(pattern, separators=(",", ":"))) < 2048  # EventBridge's default limit on a pattern
    (target,) = props["Targets"]
    assert target["Arn"] == arn_of(events_id)  # the event queue, which the function drains (functions/delivery.py)
    assert target["DeadLetterConfig"] == {"Arn": arn_of(queue_id)}
    assert of_type(resources, "AWS::Lambda::Permission") == {}  # nothing invokes the function but its mapping


# --- the function ---


def test_function_configuration(resources: dict[str, Any]) -> None:
    _, function = only(resources, "AWS::Lambda::Function")
    log_group_id, log_group = only(resources, "AWS::Logs::LogGroup")
    props = function["Properties"]
    latest_python = max(
        (r.name for r in lambda_.Runtime.ALL if r.name.startswith("python")),
        key=lambda name: tuple(int(p) for p in name.removeprefix("python").split(".")),
    )
    assert props["Runtime"] == latest_python
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "ecs_remediate.functions.handler.queue_handler"
    assert props["MemorySize"] == 256
    assert props["Timeout"] == 60
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert props["LoggingConfig"]["LogGroup"] == ref(log_group_id)
    assert log_group["Properties"]["RetentionInDays"] == 365
    assert "ReservedConcurrentExecutions" not in props


def test_function_environment_is_the_runtime_contract(resources: dict[str, Any]) -> None:
    topic_id, _ = only(resources, "AWS::SNS::Topic")
    table_id, _ = only(resources, "AWS::DynamoDB::Table", IDEMPOTENCY)
    registry_id, _ = only(resources, "AWS::DynamoDB::Table", "ExemptionsTable")
    role_id, _ = only(resources, "AWS::IAM::Role", "RemediatorFunctionRole")
    _, function = only(resources, "AWS::Lambda::Function")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables == {
        "MODE": "remediate",
        "TOPIC_ARN": ref(topic_id),
        "IDEMPOTENCY_TABLE": ref(table_id),
        "IDEMPOTENCY_TTL_SECONDS": "86400",
        "TAG_PREFIX": "ecs-remediate",
        "EXEMPT_FAMILIES": "",
        # every exemption, and every privileged revision left as it is, is notified by default
        "NOTIFY_ON": "remediated,reported,failed,exempt,superseded,unresolved",
        "ROLLOUT": "false",
        "RETIRE": "false",
        "DAEMON_ROLLOUT": "false",  # daemon rollout is its own opt-in (docs/daemons.md)
        "EXEMPTIONS_TABLE": ref(registry_id),
        "EXEMPTION_MAX_DAYS": "90",
        "EXEMPT_FAMILIES_ACKNOWLEDGED": "false",
        "EXEMPTION_APPROVERS": "",
        "TAG_EXEMPTIONS": "false",
        # the function's own role: what it registers can be the stack's copy (with the right content)
        "TRUSTED_PRINCIPALS": {"Fn::GetAtt": [role_id, "Arn"]},
        # a family remediated 3 times in 24 hours escalates; stack-managed services stay; no Security Hub
        "ESCALATE_AFTER": "3",
        "ESCALATE_WINDOW_HOURS": "24",
        "ROLLOUT_MANAGED": "false",
        "SECURITY_HUB": "false",
        # the event queue: deferrals go back to it; the 5th delivery that fails is notified (functions/delivery.py)
        "QUEUE_URL": {"Ref": only(resources, "AWS::SQS::Queue", EVENT_QUEUE)[0]},
        "MAX_RECEIVES": "5",
        "POWERTOOLS_SERVICE_NAME": "ecs-remediate",
        "POWERTOOLS_METRICS_NAMESPACE": "EcsRemediate",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_report_mode_environment_parses_with_the_runtime_config(report: tuple[cdk.Stack, Template, Any]) -> None:
    resources = report[2]["Resources"]
    _, function = only(resources, "AWS::Lambda::Function")
    variables = dict(function["Properties"]["Environment"]["Variables"])
    variables["TOPIC_ARN"] = "arn:aws:sns:us-east-1:123456789012:topic"
    variables["IDEMPOTENCY_TABLE"] = "table"
    variables["EXEMPTIONS_TABLE"] = "exemptions"
    variables["TRUSTED_PRINCIPALS"] = "arn:aws:iam::123456789012:role/fn"
    config = Config.from_env(variables)
    assert config.exemption_max_days == 30
    assert config.exemption_approvers == (
        "arn:aws:iam::123456789012:role/SecurityApprover",
        "arn:aws:iam::123456789012:role/sec-*",
    )
    assert config.mode == "report"
    assert config.tag_prefix == "acme-sec"
    assert config.exempt_families == ("legacy-*", "monitoring-agent")
    assert config.notify_on == frozenset({"remediated", "reported", "failed", "exempt"})
    assert config.idempotency_ttl_seconds == 3600
    assert variables["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert function["Properties"]["LoggingConfig"]["ApplicationLogLevel"] == "DEBUG"
    _, log_group = only(resources, "AWS::Logs::LogGroup")
    assert log_group["Properties"]["RetentionInDays"] == 30
    emails = sorted(s["Properties"]["Endpoint"] for s in of_type(resources, "AWS::SNS::Subscription").values())
    assert emails == ["oncall@example.org", "sec@example.com"]
    assert all(s["Properties"]["Protocol"] == "email" for s in of_type(resources, "AWS::SNS::Subscription").values())


def test_no_subscription_without_emails(resources: dict[str, Any]) -> None:
    assert of_type(resources, "AWS::SNS::Subscription") == {}


# --- failure path ---


def test_async_retries_event_age_and_dead_letter_queue(resources: dict[str, Any]) -> None:
    function_id, _ = only(resources, "AWS::Lambda::Function")
    queue_id, queue = only(resources, "AWS::SQS::Queue", DLQ)
    _, config = only(resources, "AWS::Lambda::EventInvokeConfig")
    props = config["Properties"]
    assert props["FunctionName"] == ref(function_id)
    assert props["MaximumRetryAttempts"] == 2
    assert 60 <= props["MaximumEventAgeInSeconds"] <= 21600
    assert props["DestinationConfig"] == {"OnFailure": {"Destination": arn_of(queue_id)}}
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    # The function may send to the dead-letter queue (the on-failure destination uses the function's role) and to
    # the event queue (deferrals).
    sent_to = [
        r for s in statements(resources) if "sqs:SendMessage" in as_list(s["Action"]) for r in as_list(s["Resource"])
    ]
    events_id, _ = only(resources, "AWS::SQS::Queue", EVENT_QUEUE)
    assert sorted(map(str, sent_to)) == sorted(map(str, [arn_of(queue_id), arn_of(events_id)]))


def test_event_queue_mapping_and_redrive(resources: dict[str, Any]) -> None:
    """The buffer between EventBridge and the function (issue 23): encrypted, TLS only, six function timeouts of
    visibility, five deliveries then the dead-letter queue; batches of 10 with partial failures reported, at most
    `queueConcurrency` (default 2) at once; EventBridge alone may send to it, from this stack's rules."""
    function_id, function = only(resources, "AWS::Lambda::Function")
    dlq_id, _ = only(resources, "AWS::SQS::Queue", DLQ)
    events_id, events = only(resources, "AWS::SQS::Queue", EVENT_QUEUE)
    props = events["Properties"]
    assert props["SqsManagedSseEnabled"] is True
    assert props["VisibilityTimeout"] == 6 * function["Properties"]["Timeout"]
    assert props["RedrivePolicy"] == {"deadLetterTargetArn": arn_of(dlq_id), "maxReceiveCount": 5}
    _, mapping = only(resources, "AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"] == {
        "BatchSize": 10,
        "EventSourceArn": arn_of(events_id),
        "FunctionName": ref(function_id),
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 2},
    }
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["QUEUE_URL"] == ref(events_id) and variables["MAX_RECEIVES"] == "5"
    [policy] = [
        p["Properties"]
        for p in of_type(resources, "AWS::SQS::QueuePolicy").values()
        if ref(events_id) in p["Properties"]["Queues"]
    ]
    assert _denies_insecure_transport(policy, arn_of(events_id))
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    rules = set(of_type(resources, "AWS::Events::Rule"))
    assert len(allows) == len(rules)  # one per rule of this stack, and nobody else
    for allow in allows:
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert "sqs:SendMessage" in as_list(allow["Action"])
        assert allow["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0] in rules
    # the function reads, deletes and changes the visibility of its records, and sends deferrals back
    actions = {
        a for s in statements(resources) if arn_of(events_id) in as_list(s["Resource"]) for a in as_list(s["Action"])
    }
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage"} <= actions


def test_queue_concurrency_is_a_context_key(tmp_path: Path) -> None:
    resources = _synth({**REMEDIATOR_ONLY, "queueConcurrency": "7"}, tmp_path)[2]["Resources"]
    _, mapping = only(resources, "AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 7}
    for bad in ("1", "1001", "two", "-3"):
        with pytest.raises(ContextError, match="queueConcurrency"):
            StackSettings.from_mapping({"queueConcurrency": bad})


def _denies_insecure_transport(policy: dict[str, Any], resource: Any) -> bool:
    return any(
        s["Effect"] == "Deny"
        and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and s["Resource"] == resource
        for s in policy["PolicyDocument"]["Statement"]
    )


def test_ssl_enforced_on_queue_and_topic(resources: dict[str, Any]) -> None:
    queue_id, _ = only(resources, "AWS::SQS::Queue", DLQ)
    topic_id, _ = only(resources, "AWS::SNS::Topic")
    _, queue_policy = only(resources, "AWS::SQS::QueuePolicy", DLQ)
    _, topic_policy = only(resources, "AWS::SNS::TopicPolicy")
    assert _denies_insecure_transport(queue_policy["Properties"], arn_of(queue_id))
    assert _denies_insecure_transport(topic_policy["Properties"], ref(topic_id))


# --- encryption and state ---


def test_topic_encrypted_with_rotating_customer_managed_key(resources: dict[str, Any]) -> None:
    key_id, key = only(resources, "AWS::KMS::Key")
    _, topic = only(resources, "AWS::SNS::Topic")
    assert topic["Properties"]["KmsMasterKeyId"] == arn_of(key_id)
    assert key["Properties"]["EnableKeyRotation"] is True


def test_key_and_topic_policies_let_our_cloudwatch_alarms_publish(resources: dict[str, Any]) -> None:
    _, key = only(resources, "AWS::KMS::Key")
    _, topic_policy = only(resources, "AWS::SNS::TopicPolicy")
    for document, actions in (
        (key["Properties"]["KeyPolicy"], ["kms:Decrypt", "kms:GenerateDataKey"]),
        (topic_policy["Properties"]["PolicyDocument"], "sns:Publish"),
    ):
        (grant,) = [s for s in document["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
        assert grant["Effect"] == "Allow"
        assert grant["Action"] == actions
        assert grant["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        assert flat(grant["Condition"]["ArnLike"]["aws:SourceArn"]).endswith(':alarm:EcsRemediate-*"]]}')


def test_idempotency_table(resources: dict[str, Any]) -> None:
    _, table = only(resources, "AWS::DynamoDB::Table", IDEMPOTENCY)
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


# --- IAM ---


def test_no_wildcard_action_and_no_managed_policy(resources: dict[str, Any]) -> None:
    for statement in statements(resources):
        for action in as_list(statement["Action"]):
            assert "*" not in action, statement
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
    for role in of_type(resources, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_only_actions_without_resource_scope_are_on_star(resources: dict[str, Any]) -> None:
    on_star = sorted(action for s in statements(resources) if s["Resource"] == "*" for action in as_list(s["Action"]))
    assert on_star == [
        "ecs:DescribeTaskDefinition",
        # daemons (infra/daemons.py): Lists without a resource type; ListTagsForResource's omit daemon task definitions
        "ecs:ListClusters",
        "ecs:ListDaemonTaskDefinitions",
        "ecs:ListDaemons",
        "ecs:ListTagsForResource",
        "ecs:ListTaskDefinitions",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    ]


def test_every_statement_is_expected(resources: dict[str, Any]) -> None:
    """The complete list of permissions: anything added later must be added here on purpose."""
    actions = sorted(a for s in statements(resources) for a in as_list(s["Action"]))
    assert actions == sorted(
        [
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "sqs:SendMessage",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            # the event queue: the mapping's receive, delete and visibility (deferrals are sent back through the
            # dead-letter queue's statement, which CDK merged: it names both queues)
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            # the exemption registry, read-only
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Scan",
            "sns:Publish",
            "kms:GenerateDataKey",
            "kms:Decrypt",
            "ecs:DescribeTaskDefinition",
            "ecs:ListTaskDefinitions",
            "ecs:RegisterTaskDefinition",
            "ecs:TagResource",
            "iam:PassRole",
            # daemon task definitions and daemons (infra/daemons.py)
            "ecs:DescribeDaemonTaskDefinition",
            "ecs:ListDaemonTaskDefinitions",
            "ecs:ListTagsForResource",
            "ecs:ListClusters",
            "ecs:ListDaemons",
            "ecs:DescribeDaemon",
            "ecs:DescribeDaemonRevisions",
            "ecs:RegisterDaemonTaskDefinition",
            "ecs:TagResource",
        ]
    )


def ecs_arn_of_this_account_and_region(resource: str) -> dict[str, Any]:
    """How CDK renders `arn:<partition>:ecs:<region>:<account>:<resource>` in the template."""
    parts = ["arn:", {"Ref": "AWS::Partition"}, ":ecs:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"}]
    return {"Fn::Join": ["", [*parts, f":{resource}"]]}


def test_register_and_tag_only_task_definitions_of_this_account_and_region(resources: dict[str, Any]) -> None:
    expected = ecs_arn_of_this_account_and_region("task-definition/*")
    register = statement_with(resources, "ecs:RegisterTaskDefinition")
    assert register["Action"] == "ecs:RegisterTaskDefinition"
    assert register["Resource"] == expected
    assert "Condition" not in register
    tag = statement_with(resources, "ecs:TagResource", "TagCopiesOnCreateOnly")
    assert tag["Action"] == "ecs:TagResource"
    assert tag["Resource"] == expected
    assert tag["Condition"] == {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}


def test_pass_role_only_to_ecs_tasks_for_roles_of_this_account(resources: dict[str, Any]) -> None:
    statement = statement_with(resources, "iam:PassRole")
    assert statement["Action"] == "iam:PassRole"
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert statement["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":role/*"]]
    }


def test_publish_table_key_and_log_statements_are_on_their_resources(resources: dict[str, Any]) -> None:
    topic_id, _ = only(resources, "AWS::SNS::Topic")
    key_id, _ = only(resources, "AWS::KMS::Key")
    table_id, _ = only(resources, "AWS::DynamoDB::Table", IDEMPOTENCY)
    log_group_id, _ = only(resources, "AWS::Logs::LogGroup")
    assert statement_with(resources, "sns:Publish")["Resource"] == ref(topic_id)
    kms = statement_with(resources, "kms:GenerateDataKey")
    assert sorted(kms["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert kms["Resource"] == arn_of(key_id)
    dynamo = statement_with(resources, "dynamodb:PutItem")
    assert sorted(dynamo["Action"]) == [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    assert dynamo["Resource"] == arn_of(table_id)
    assert statement_with(resources, "logs:PutLogEvents")["Resource"] == arn_of(log_group_id)


def test_function_waits_for_its_policies(resources: dict[str, Any]) -> None:
    _, function = only(resources, "AWS::Lambda::Function")
    policies = set(of_type(resources, "AWS::IAM::Policy"))
    assert policies <= set(function["DependsOn"])


def test_report_mode_cannot_register_tag_or_pass_roles(report: tuple[cdk.Stack, Template, Any]) -> None:
    actions = {a for s in statements(report[2]["Resources"]) for a in as_list(s["Action"])}
    assert "ecs:DescribeTaskDefinition" in actions
    assert not actions & {"ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole"}


# --- alarms ---


def test_alarms_publish_to_the_topic(resources: dict[str, Any]) -> None:
    topic_id, _ = only(resources, "AWS::SNS::Topic")
    function_id, _ = only(resources, "AWS::Lambda::Function")
    queue_id, _ = only(resources, "AWS::SQS::Queue", DLQ)
    events_id, _ = only(resources, "AWS::SQS::Queue", EVENT_QUEUE)
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {"Errors", "Throttles", "ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}
    backlog = alarms.pop("ApproximateAgeOfOldestMessage")  # a burst that does not drain within the hour
    assert backlog["Threshold"] == 3600 and backlog["AlarmActions"] == [ref(topic_id)]
    assert backlog["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [events_id, "QueueName"]}}]
    for metric, props in alarms.items():
        assert props["AlarmActions"] == [ref(topic_id)], metric
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["Threshold"] == 0
        assert props["EvaluationPeriods"] == 1
        assert props["TreatMissingData"] == "notBreaching"
        assert props["AlarmName"].startswith("EcsRemediate-")  # what the key and topic policies allow
    assert alarms["Errors"]["Namespace"] == "AWS/Lambda"
    assert alarms["Errors"]["Dimensions"] == [{"Name": "FunctionName", "Value": ref(function_id)}]
    assert alarms["Throttles"]["Dimensions"] == [{"Name": "FunctionName", "Value": ref(function_id)}]
    dlq = alarms["ApproximateNumberOfMessagesVisible"]
    assert dlq["Namespace"] == "AWS/SQS"
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]


# --- cdk-nag and cfn-lint ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["default", "report"])
def test_cdk_nag_aws_solutions_has_no_unsuppressed_findings(which: str, request: pytest.FixtureRequest) -> None:
    stack = request.getfixturevalue(which)[0]
    annotations = Annotations.from_stack(stack)
    errors = annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
    warnings = annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))
    assert [e.entry.data for e in errors] == []
    assert [w.entry.data for w in warnings] == []


def test_every_suppression_names_its_resource_and_a_reason(resources: dict[str, Any]) -> None:
    seen = 0
    for logical_id, resource in resources.items():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            seen += 1
            assert rule["id"].startswith("AwsSolutions-")
            assert len(rule["reason"]) >= 60, rule
            named = rule["reason"].split(":", 1)[0].split(" ", 1)[0]
            assert named and named in logical_id, (logical_id, rule["reason"])
            if rule["id"] == "AwsSolutions-IAM5":
                assert rule.get("applies_to"), "IAM5 suppressions must list the exact findings they cover"
    assert seen >= 3


def test_cfn_lint_finds_no_errors(default: tuple[cdk.Stack, Template, Any], tmp_path: Path) -> None:
    path = tmp_path / "EcsRemediate.template.json"
    path.write_text(json.dumps(default[2]))
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "parseable", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = [line for line in result.stdout.splitlines() if line.strip()]
    assert not result.returncode & 2, result.stdout + result.stderr  # bit 2: errors
    # W3005 (DependsOn besides a GetAtt) is how CDK orders a function after its role's policies.
    assert [f for f in findings if ":W3005:" not in f] == [], findings


# --- context validation ---


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("mode", "fix", "mode: expected one of remediate, report"),
        ("notifyOn", "remediated,paged", "notifyOn: expected one of remediated, reported, failed, exempt"),
        ("logRetentionDays", 10, "logRetentionDays: expected one of 1, 3, 5, 7, 14, 30"),
        ("logRetentionDays", "a year", "logRetentionDays: expected a whole number"),
        ("notificationEmails", "ops@example.com,not-an-email", "notificationEmails: 'not-an-email'"),
        ("notificationEmails", '["ops@example.com"', "notificationEmails: not a valid JSON list"),
        ("notificationEmails", {"to": "ops@example.com"}, "notificationEmails: expected a list of strings"),
        ("tagPrefix", "aws:mine", "tagPrefix: "),
        ("tagPrefix", "", "tagPrefix: expected a non-empty string"),
        ("exemptFamilies", ["ok-*", "bad family"], "exemptFamilies: 'bad family' is not a family glob"),
        ("logLevel", "verbose", "logLevel: expected one of DEBUG, INFO, WARNING, ERROR"),
        ("idempotencyTtlSeconds", 10, "idempotencyTtlSeconds: must be at least 60"),
        ("idempotencyTtlSeconds", True, "idempotencyTtlSeconds: expected a whole number"),
    ],
)
def test_bad_context_value_names_the_key_and_allowed_values(key: str, value: Any, expected: str) -> None:
    with pytest.raises(ContextError) as error:
        StackSettings.from_mapping({key: value})
    assert str(error.value).startswith(expected)


def test_context_spellings_and_defaults() -> None:
    assert StackSettings.from_mapping({}) == StackSettings()
    as_json = StackSettings.from_mapping({"notificationEmails": '["a@example.com","b@example.com"]'})
    as_csv = StackSettings.from_mapping({"notificationEmails": "a@example.com, b@example.com"})
    as_list = StackSettings.from_mapping({"notificationEmails": ["a@example.com", "b@example.com"]})
    assert as_json == as_csv == as_list
    assert as_list.notification_emails == ("a@example.com", "b@example.com")
    assert StackSettings.from_mapping({"mode": "REPORT", "logLevel": "warning"}).mode == "report"


def test_retention_table_covers_every_finite_cdk_value() -> None:
    finite = {member for member in logs.RetentionDays if member.name != "INFINITE"}
    assert set(RETENTION_DAYS.values()) == finite


def test_bad_context_fails_the_cdk_app_with_the_key_named(tmp_path: Path) -> None:
    """What `cdk synth -c mode=fix` runs: the app exits non-zero before synthesizing anything."""
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"mode": "fix"}), "CDK_OUTDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    assert result.returncode == 2
    assert "mode: expected one of remediate, report, got 'fix'" in result.stderr
    assert not list(tmp_path.glob("*.template.json"))


def test_outputs_for_the_readme_commands(template: Template) -> None:
    assert set(template.to_json()["Outputs"]) == {
        "ExemptionsTableName",
        "TopicArn",
        "FunctionName",
        "LogGroupName",
        "DeadLetterQueueUrl",
        "RuleName",
        # what `ecs-remediate verify` reads (infra/outputs.py)
        "IdempotencyTableName",
        "Mode",
        "TagPrefix",
        "NotifyOn",
    }


def test_verify_reads_the_settings_the_function_runs_with(
    default: tuple[cdk.Stack, Template, dict[str, Any]], report: tuple[cdk.Stack, Template, dict[str, Any]]
) -> None:
    """The Mode output is the functions' MODE (demo/stack_standin.with_mode changes the two together), and the table
    output is the one the function is given."""
    for synthesized, mode in ((default[2], "remediate"), (report[2], "report")):
        outputs, resources = synthesized["Outputs"], synthesized["Resources"]
        assert outputs["Mode"]["Value"] == mode
        _, function = only(resources, "AWS::Lambda::Function", "RemediatorFunction")
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["MODE"] == mode
        assert outputs["IdempotencyTableName"]["Value"] == variables["IDEMPOTENCY_TABLE"]
        assert outputs["TagPrefix"]["Value"] == variables["TAG_PREFIX"]
        assert outputs["NotifyOn"]["Value"] == variables["NOTIFY_ON"]


def test_only_approvers_may_write_the_exemption_registry(report: tuple[cdk.Stack, Template, Any]) -> None:
    """The registry's resource policy denies every write to every principal but the approver roles; the
    functions read it only. A developer who registers and tags task definitions cannot exempt their own."""
    resources = report[2]["Resources"]
    _, table = only(resources, "AWS::DynamoDB::Table", "ExemptionsTable")
    assert table["DeletionPolicy"] == "Retain"
    assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}
    [deny] = table["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} <= set(
        deny["Action"]
    )
    assert deny["Condition"] == {
        "ArnNotLike": {
            "aws:PrincipalArn": [
                "arn:aws:iam::123456789012:role/SecurityApprover",
                "arn:aws:iam::123456789012:role/sec-*",
            ]
        }
    }
    granted = {a for s in statements(resources) for a in as_list(s["Action"]) if a.startswith("dynamodb:")}
    assert not granted & {"dynamodb:BatchWriteItem", "dynamodb:PartiQLInsert"}


def test_without_approvers_nobody_writes_the_registry(resources: dict[str, Any]) -> None:
    _, table = only(resources, "AWS::DynamoDB::Table", "ExemptionsTable")
    [deny] = table["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and "Condition" not in deny


def test_the_rule_matches_only_this_accounts_events(resources: dict[str, Any]) -> None:
    rules = [r for r in of_type(resources, "AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    assert len(rules) == 2  # task definitions, and daemons (infra/daemons.py)
    for rule in rules:
        assert rule["Properties"]["EventPattern"]["account"] == [{"Ref": "AWS::AccountId"}]


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"exemptFamilies": "legacy-*"}, "exemptFamilies: a family glob also exempts families created later"),
        ({"exemptionApprovers": "SecurityApprover"}, "exemptionApprovers: 'SecurityApprover' is not an IAM role"),
        ({"exemptionMaxDays": "0"}, "exemptionMaxDays: expected 1 to 3650 days"),
    ],
)
def test_exemption_context_is_validated(context: dict[str, Any], expected: str) -> None:
    with pytest.raises(ContextError) as error:
        StackSettings.from_mapping(context)
    assert str(error.value).startswith(expected)
