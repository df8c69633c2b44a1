"""Helpers of the `ecs-remediate verify` tests: the synthesized stack stood in for in the emulator
(demo/stack_standin.py), the handler loaded with its environment, and what the tests read back."""

from __future__ import annotations

import importlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from demo.stack_standin import StandIn
from ecs_remediate.adapters import aws
from ecs_remediate.cli.main import main
from ecs_remediate.cli.verify_canary import CANARY_FAMILY

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


def deploy(
    template: dict[str, Any], endpoint: str, monkeypatch: pytest.MonkeyPatch, *, deliver: bool = True, **kw: Any
) -> StandIn:
    """The stand-in deployed; the handler loaded with its environment and (deliver) its delivery running."""
    stand_in = StandIn(template, endpoint_url=endpoint, **kw).deploy()
    for name, value in stand_in.environment.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    if deliver:
        import ecs_remediate.functions.handler as module

        stand_in.start(importlib.reload(module))
    return stand_in


def inbox(stand_in: StandIn) -> str:
    """An SQS queue subscribed to the stack's topic (the email address's stand-in); returns its URL."""
    sqs, sns = stand_in.client("sqs"), stand_in.client("sns")
    url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = outputs(stand_in)["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return str(url)


def notices(stand_in: StandIn, url: str) -> list[dict[str, Any]]:
    sqs = stand_in.client("sqs")
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            envelope = json.loads(message["Body"])
            found.append({"subject": envelope.get("Subject"), **json.loads(envelope["Message"])})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def outputs(stand_in: StandIn) -> dict[str, str]:
    stack = stand_in.client("cloudformation").describe_stacks(StackName=stand_in.name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def canary_revisions(stand_in: StandIn) -> dict[str, list[str]]:
    """Every revision of the canary family the emulator still has, by status."""
    ecs = stand_in.client("ecs")
    return {
        status: ecs.list_task_definitions(familyPrefix=CANARY_FAMILY, status=status)["taskDefinitionArns"]
        for status in ("ACTIVE", "INACTIVE")
    }


def verify(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["verify", *args], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()
