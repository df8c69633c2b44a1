"""The remediator's surroundings in an AWS emulator (moto): idempotency table, SNS topic with an SQS
queue standing in for the email inbox, CloudTrail-shaped events. Used by the demo and the tests.

Works inside moto's in-process `mock_aws()` or against a moto server (`endpoint_url`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"
DEFAULT_USER = f"arn:aws:sts::{ACCOUNT}:assumed-role/Dev/alice"
APPROVER = f"arn:aws:iam::{ACCOUNT}:role/SecurityApprover"


@dataclass
class Note:
    """One notification as a subscriber receives it."""

    subject: str
    payload: dict[str, Any]
    attributes: dict[str, str]


@dataclass
class Sandbox:
    region: str = REGION
    endpoint_url: str | None = None
    table_name: str = "ecs-remediate-idempotency"
    exemptions_table: str = "ecs-remediate-exemptions"
    topic_arn: str = ""
    queue_url: str = ""
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)
        return self._clients[service]

    def create(self) -> Sandbox:
        """The resources the stack would create: idempotency table (which holds the ledger too), exemption
        registry, topic, and an inbox queue."""
        for name, key in ((self.table_name, "id"), (self.exemptions_table, "target")):
            self.client("dynamodb").create_table(
                TableName=name,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        self.topic_arn = self.client("sns").create_topic(Name="ecs-remediate-notices")["TopicArn"]
        self.queue_url = self.client("sqs").create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = self.client("sqs").get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.client("sns").subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)
        return self

    def env(self, **overrides: str) -> dict[str, str]:
        """The function's environment, as the stack sets it."""
        values = {
            "MODE": "remediate",
            "TOPIC_ARN": self.topic_arn,
            "IDEMPOTENCY_TABLE": self.table_name,
            "EXEMPTIONS_TABLE": self.exemptions_table,
        }
        values.update(overrides)
        return values

    def register(self, params: dict[str, Any]) -> dict[str, Any]:
        """Register a task definition; returns the RegisterTaskDefinition response."""
        response: dict[str, Any] = self.client("ecs").register_task_definition(**params)
        return response

    def exempt(self, target: str, reason: str, until: str, approver: str = APPROVER) -> None:
        """What an approver does: an item in the exemption registry (a revision ARN or an image digest)."""
        item = {"target": target, "reason": reason, "until": until, "approver": approver}
        self.client("dynamodb").put_item(TableName=self.exemptions_table, Item={k: {"S": v} for k, v in item.items()})

    def as_principal(self, role: str = "Dev", session: str = "mallory") -> Sandbox:
        """The same emulator, seen through credentials of an assumed role in this account (moto's STS): what a
        developer with only RegisterTaskDefinition and TagResource would use."""
        credentials = self.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName=session
        )["Credentials"]
        other = Sandbox(
            self.region, self.endpoint_url, self.table_name, self.exemptions_table, self.topic_arn, self.queue_url
        )
        for service in ("ecs",):
            other._clients[service] = boto3.client(
                service,
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
            )
        return other

    def describe(self, ref: str) -> dict[str, Any]:
        response: dict[str, Any] = self.client("ecs").describe_task_definition(taskDefinition=ref, include=["TAGS"])
        return response

    def active_revisions(self, family: str) -> list[str]:
        arns: list[str] = []
        for page in self.client("ecs").get_paginator("list_task_definitions").paginate(status="ACTIVE"):
            arns += [a for a in page["taskDefinitionArns"] if a.rsplit("/", 1)[1].rsplit(":", 1)[0] == family]
        return arns

    def event_for(
        self,
        params: dict[str, Any],
        response: dict[str, Any] | None,
        *,
        user_arn: str = DEFAULT_USER,
        invoked_by: str | None = None,
        error_code: str | None = None,
        account: str = ACCOUNT,
    ) -> dict[str, Any]:
        """The EventBridge event CloudTrail would deliver for a RegisterTaskDefinition call in `account` (in an
        organization, a member's event reaches the hub's bus with its own `account` and `region`)."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        identity: dict[str, Any] = {"type": "AssumedRole", "arn": user_arn, "accountId": account}
        if invoked_by:
            identity["invokedBy"] = invoked_by
        detail: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": now,
            "eventSource": "ecs.amazonaws.com",
            "eventName": "RegisterTaskDefinition",
            "awsRegion": self.region,
            "sourceIPAddress": invoked_by or "203.0.113.10",
            "userAgent": "aws-cli/2.15.0",
            "requestParameters": params,
            "responseElements": None,
            "requestID": str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
        }
        if error_code:
            detail["errorCode"], detail["errorMessage"] = error_code, "the call failed"
        elif response is not None:
            detail["responseElements"] = json.loads(json.dumps(response_body(response), default=str))
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.ecs",
            "account": account,
            "time": now,
            "region": self.region,
            "resources": [],
            "detail": detail,
        }

    def tag_event(self, arn: str, tags: list[dict[str, str]], *, role: str, session: str = "s") -> dict[str, Any]:
        """The EventBridge event CloudTrail would deliver for an ECS TagResource call by an assumed role."""
        event = self.event_for({"family": "unused", "containerDefinitions": []}, None)
        detail = event["detail"]
        detail["eventName"] = "TagResource"
        detail["userIdentity"] = {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
            "accountId": ACCOUNT,
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "accountId": ACCOUNT}
            },
        }
        detail["requestParameters"] = {"resourceArn": arn, "tags": tags}
        detail["responseElements"] = None
        return event

    def inbox(self) -> list[Note]:
        """Every notification delivered so far (drains the queue)."""
        notes: list[Note] = []
        sqs = self.client("sqs")
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return notes
            for message in messages:
                envelope = json.loads(message["Body"])
                attributes = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
                notes.append(Note(envelope.get("Subject", ""), json.loads(envelope["Message"]), attributes))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def response_body(response: dict[str, Any]) -> dict[str, Any]:
    """A RegisterTaskDefinition response without the SDK's metadata."""
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


class LambdaContext:
    """The attributes Powertools reads from the Lambda context object."""

    function_name = "ecs-remediate"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecs-remediate"
    log_group_name = "/aws/lambda/ecs-remediate"
    log_stream_name = "local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 60_000
