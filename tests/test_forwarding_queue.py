"""organization/forwarding_queue.py on its own: which queued events the sweep covered (pure), and a queue read and
drained in moto:
bounded for a flooded queue, every message counted, nothing deleted that was not covered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ecs_remediate.organization import forwarding_queue
from ecs_remediate.organization.forwarding_queue import covered, inspect

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
OLD = "2026-05-01T11:00:00Z"
LATER = "2026-05-01T12:30:00Z"


def event(name: str = "RegisterTaskDefinition", time: Any = OLD, event_time: Any = OLD, **envelope: Any) -> str:
    body = {
        "source": "aws.ecs",
        "detail-type": "AWS API Call via CloudTrail",
        "time": time,
        "detail": {"eventName": name, "eventTime": event_time},
        **envelope,
    }
    return json.dumps(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (event(), True),
        (event("RegisterDaemonTaskDefinition"), True),
        (event("CreateDaemon"), True),
        (event("UpdateDaemon"), True),
        (event(time=None), True),  # one time is enough
        (event("TagResource"), False),  # not a call whose revision the sweep judges
        (event("DeleteDaemon"), False),
        (event(time=LATER), False),  # either time after the sweep began: not covered
        (event(event_time=LATER), False),
        (event(time="yesterday", event_time=None), False),  # no time to place it
        (event(source="aws.ec2"), False),
        (event(**{"detail-type": "ECS Daemon Deployment State Change"}), False),
        ("not json", False),
        ("[1, 2]", False),
        (json.dumps({"source": "aws.ecs", "detail-type": "AWS API Call via CloudTrail", "detail": "x"}), False),
    ],
)
def test_covered(body: str, expected: bool) -> None:
    assert covered(body, NOW) is expected


@pytest.fixture
def queue() -> Any:
    with mock_aws():
        sqs = boto3.client("sqs", "us-east-1")
        url = sqs.create_queue(QueueName="q-forwarding-dlq")["QueueUrl"]
        yield sqs, url


def test_a_missing_queue_is_said_so(queue: Any) -> None:
    sqs, _ = queue
    state = inspect(sqs, "123456789012", "other-forwarding-dlq", judged_before=NOW)
    assert (state.status, state.queued, state.drained) == ("missing", 0, 0)


def test_without_judged_before_nothing_is_received_or_deleted(queue: Any) -> None:
    sqs, url = queue
    for _ in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=event())
    state = inspect(sqs, "123456789012", "q-forwarding-dlq", judged_before=None)
    assert state.to_json() == {"status": "ok", "queued": 3, "drained": 0, "kept": 0}
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "3"  # still there, still visible


def test_a_flooded_queue_is_drained_in_bounded_batches(queue: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Covered and uncovered messages beyond the bound (MAX_BATCHES batches of 10; 100 deployed, 5 here: moto's
    ReceiveMessage slows down with the queue's size): one run receives at most the bound, deletes only covered
    ones, and counts all of them; the next run goes on."""
    monkeypatch.setattr(forwarding_queue, "MAX_BATCHES", 5)
    bound = 5 * 10
    sqs, url = queue
    bodies = [event() for _ in range(60)] + [event(time=LATER) for _ in range(20)]
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)

    first = inspect(sqs, "123456789012", "q-forwarding-dlq", judged_before=NOW)

    assert first.queued == 80
    assert first.drained + first.kept == bound  # bounded
    assert first.drained <= 60 and first.kept <= 20
    left = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert sum(int(v) for v in left.values()) == 80 - first.drained  # nothing deleted beyond what was covered
    assert first.reasons == {"OTHER": bound}  # no EventBridge ERROR_CODE on these
    second = inspect(sqs, "123456789012", "q-forwarding-dlq", judged_before=NOW)
    assert second.queued == 80 - first.drained and first.drained + second.drained == 60


def test_delete_failures_are_kept_not_counted_as_drained(queue: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sqs, url = queue
    for _ in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=event())
    real = sqs.delete_message_batch

    def half(**kwargs: Any) -> dict[str, Any]:
        entries = kwargs["Entries"]
        answer: dict[str, Any] = real(QueueUrl=kwargs["QueueUrl"], Entries=entries[:2])
        failed = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in entries[2:]]
        return {**answer, "Failed": failed}

    monkeypatch.setattr(sqs, "delete_message_batch", half)
    state = inspect(sqs, "123456789012", "q-forwarding-dlq", judged_before=NOW + timedelta(hours=1))
    assert (state.drained, state.kept) == (2, 2)
