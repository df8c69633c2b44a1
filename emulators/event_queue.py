"""The stack's delivery path in the emulator: the queue EventBridge puts matched events on, its dead-letter queue, and
a stand-in for Lambda's SQS event source mapping that hands batches to `handler.queue_handler`.

The queue and its redrive policy are moto's own SQS (visibility timeout, DelaySeconds, ApproximateReceiveCount and
the move to the dead-letter queue after maxReceiveCount are moto's). The mapping is ours, as AWS documents it for a
standard queue with ReportBatchItemFailures: ReceiveMessage up to the batch size, one invocation per batch with the
records in Lambda's SQS event shape, then DeleteMessage for every record not named in batchItemFailures; the ones
named are left in flight and come back after the visibility timeout (an invocation that raises leaves them all).
With a batching window (the hub's mapping), records are gathered with further ReceiveMessage calls, POLLERS at once
(Lambda starts five pollers for a standard queue), until the batch is full or the window has passed, as Lambda
does. The queue's name, its maxReceiveCount and the function's QUEUE_URL / MAX_RECEIVES (`env()`) are the stack's
(infra/remediator.py), written here, not imported.

Where it may differ from AWS:
- the real mapping long-polls continuously and scales its pollers and concurrent invocations with the backlog (up
  to MaximumConcurrency); here one batch is taken when the caller asks (`poll`, `drain`) and invocations run one at
  a time, so ordering and concurrency under load are not Lambda's;
- gathering within the window is as fast as moto answers (moto's ReceiveMessage scans the whole queue), at most five
  ReceiveMessage calls of 10 at once; once a round finds nothing, one call each IDLE_POLL_SECONDS (Lambda long-polls,
  which moto's whole-second WaitTimeSeconds cannot do within a window of a second), so a message that arrives then
  waits up to that long to join the batch;
- the invocation is a call in this process: no 6 MB payload limit, no timeout, no throttled or retried invocation;
  an exception leaves the whole batch in flight, as Lambda does; a message attribute's binary value is dropped
  (`stringValue` only);
- SQS itself is moto's: its counts are exact where SQS's are approximate, and its ordering, visibility and delay
  timing are moto's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

# What the stack sets (infra/remediator.py): the queue's maxReceiveCount and the mapping's batch size.
MAX_RECEIVES = 5
BATCH_SIZE = 10
POLLERS = 5  # ReceiveMessage calls at once while a batch is gathered
# Within the window, once a round of ReceiveMessage finds nothing: how long until the next (one call). Not 0.05 s with
# five calls: moto's ReceiveMessage walks every message of the queue, and four invocation slots asking 100 times a
# second took about a core of a two-core machine from every other call to the emulator (bench/hub_burst.py).
IDLE_POLL_SECONDS = 0.2

Invoke = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class EventQueue:
    """The delivery queue and its dead-letter queue in one emulator (`sqs`: a boto3 SQS client)."""

    sqs: Any
    name: str = "ecs-remediate-events"
    visibility_timeout: int = 360
    max_receives: int = MAX_RECEIVES
    queue_url: str = ""
    queue_arn: str = ""
    dlq_url: str = ""
    region: str = "us-east-1"
    invocations: int = 0
    deleted: int = 0
    _dead: list[dict[str, Any]] = field(default_factory=list)

    def create(self) -> EventQueue:
        self.dlq_url = self.sqs.create_queue(QueueName=f"{self.name}-dlq")["QueueUrl"]
        dlq_arn = self._arn(self.dlq_url)
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self.max_receives})
        self.queue_url = self.sqs.create_queue(
            QueueName=self.name,
            Attributes={"VisibilityTimeout": str(self.visibility_timeout), "RedrivePolicy": redrive},
        )["QueueUrl"]
        self.queue_arn = self._arn(self.queue_url)
        return self

    def env(self) -> dict[str, str]:
        """The function's environment for this queue, as the stack sets it."""
        return {"QUEUE_URL": self.queue_url, "MAX_RECEIVES": str(self.max_receives)}

    def put(self, event: dict[str, Any]) -> None:
        """What EventBridge's SQS target does with a matched event: the event, as JSON, is the message body."""
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(event))

    def poll(
        self, invoke: Invoke, context: Any, *, batch_size: int = BATCH_SIZE, wait: int = 0, window: float = 0.0
    ) -> int:
        """One batch (a ReceiveMessage, and more within `window` seconds up to `batch_size`) and, when it holds records,
        one invocation; returns how many records it handed over."""
        messages = self._receive(min(10, batch_size), wait)
        if not messages:
            return 0
        ends = time.monotonic() + window
        if window > 0 and len(messages) < batch_size:
            with ThreadPoolExecutor(POLLERS) as pollers:
                pollers_now = POLLERS
                while len(messages) < batch_size and time.monotonic() < ends:
                    wanted = batch_size - len(messages)
                    counts = [min(10, wanted - 10 * n) for n in range(pollers_now) if wanted - 10 * n > 0]
                    more = [m for got in pollers.map(lambda c: self._receive(c, 0), counts) for m in got]
                    # Lambda's pollers long-poll; SQS's WaitTimeSeconds is whole seconds, longer than what is left of
                    # the window, so an empty round is followed by one ReceiveMessage each IDLE_POLL_SECONDS instead.
                    pollers_now = POLLERS if more else 1
                    if not more:
                        time.sleep(max(0.0, min(IDLE_POLL_SECONDS, ends - time.monotonic())))
                    messages += more
        event = {"Records": [self._record(m) for m in messages]}
        self.invocations += 1
        try:
            response = invoke(event, context)
        except Exception:  # noqa: BLE001 - an invocation error leaves the whole batch in flight, as Lambda does
            return len(messages)
        failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
            )
        self.deleted += len(done)
        return len(messages)

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return messages

    def drain(self, invoke: Invoke, context: Any, *, polls: int = 100) -> int:
        """Poll until a ReceiveMessage returns nothing (at most `polls` times); returns the invocations made."""
        made = 0
        while made < polls and self.poll(invoke, context):
            made += 1
        return made

    def dead_letters(self) -> list[dict[str, Any]]:
        """Everything the dead-letter queue holds (read and kept here: a second call returns them again)."""
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return list(self._dead)
            for message in messages:
                self._dead.append(message)
                self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=message["ReceiptHandle"])

    def depth(self) -> int:
        """Messages in the queue, visible, in flight or delayed (SQS's approximate counts; exact in moto)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """A received message as Lambda's SQS event record."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes") or {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value.get("DataType", "String"),
                }
                for name, value in (message.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }

    def _arn(self, url: str) -> str:
        return str(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
