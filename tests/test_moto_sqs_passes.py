"""moto's SQS with emulators/moto_fidelity.py's one-pass queue walks (applied by conftest for every test): what a
receive hands out and what a delete accepts are what SQS (and moto unpatched) answer."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws


@pytest.fixture
def queue() -> Any:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        yield sqs, sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]


def receive(sqs: Any, url: str, visibility: int | None = None) -> list[dict[str, Any]]:
    extra = {} if visibility is None else {"VisibilityTimeout": visibility}
    return list(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **extra).get("Messages", []))


def test_a_receive_hands_out_neither_delayed_nor_in_flight_messages(queue: Any) -> None:
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="now")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)
    assert [m["Body"] for m in receive(sqs, url)] == ["now"]
    assert receive(sqs, url) == []  # "now" is in flight for the visibility timeout, "later" is delayed


def test_a_delete_removes_the_message_once_and_accepts_the_same_handle_again(queue: Any) -> None:
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="a")
    sqs.send_message(QueueUrl=url, MessageBody="b")
    first = receive(sqs, url, visibility=0)
    handle = next(m["ReceiptHandle"] for m in first if m["Body"] == "a")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)  # deleted already: accepted
    assert [m["Body"] for m in receive(sqs, url)] == ["b"]


def test_a_message_received_again_is_deleted_by_an_earlier_receipt_handle_as_moto_does(queue: Any) -> None:
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="a")
    [first] = receive(sqs, url, visibility=0)
    [again] = receive(sqs, url, visibility=0)
    assert again["ReceiptHandle"] != first["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    assert receive(sqs, url) == []


def test_a_receipt_handle_the_queue_never_gave_is_refused(queue: Any) -> None:
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="a")
    with pytest.raises(ClientError) as refused:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert refused.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"
    assert [m["Body"] for m in receive(sqs, url)] == ["a"]


def test_a_fifo_queue_still_deduplicates_by_content_and_the_counts_stay_exact(queue: Any) -> None:
    sqs, url = queue
    fifo = sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})[
        "QueueUrl"
    ]
    for _ in range(2):
        sqs.send_message(QueueUrl=fifo, MessageBody="same", MessageGroupId="g")
    sqs.send_message(QueueUrl=url, MessageBody="now")
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": "later", "DelaySeconds": 600} for n in range(3)]
    )
    assert [m["Body"] for m in receive(sqs, fifo)] == ["same"]  # the second was a duplicate
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesDelayed"]) == ("1", "3")
