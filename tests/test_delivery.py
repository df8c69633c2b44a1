"""The delivery path (issue 23): EventBridge -> the queue -> the event source mapping -> `queue_handler`, against moto's
SQS (visibility, DelaySeconds, receive counts and the redrive to the dead-letter queue are moto's) and a moto ECS.
Everything is read back: revisions from ECS, notices from the queue subscribed to the topic, messages from the queues.
"""

from __future__ import annotations

import json
import time
from types import ModuleType
from typing import Any

import pytest
from botocore.config import Config as BotoConfig
from botocore.retries.standard import ExponentialBackoff
from test_handler import throttle_first

from conftest import load_handler
from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.functions import delivery
from emulators.event_queue import EventQueue

ATTEMPTS = 4  # botocore's total attempts of one call with retries max_attempts=3 (fast_retries)
PRIVILEGED = {"family": "web", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64, "privileged": True}]}
COMPLIANT = {"family": "api", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64}]}


@pytest.fixture
def queue(sandbox: Sandbox) -> EventQueue:
    # Visibility 0: a record reported as failed comes back at the next poll instead of after six minutes.
    return EventQueue(sandbox.client("sqs"), visibility_timeout=0, max_receives=3).create()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's decisions kept, its sleeps shortened (as tests/test_reliability_faults.py), ATTEMPTS a call, and
    deferrals of about a second."""
    scales = {**ExponentialBackoff._DEFAULT_BACKOFF_CONFIG, "throttling_base_scale": 0.05}
    monkeypatch.setattr(ExponentialBackoff, "_DEFAULT_BACKOFF_CONFIG", scales)
    monkeypatch.setattr(
        aws,
        "BOTO_CONFIG",
        aws.BOTO_CONFIG.merge(BotoConfig(retries={"mode": aws.BOTO_CONFIG.retries["mode"], "max_attempts": 3})),
    )
    monkeypatch.setattr(delivery, "DEFER_BASE_SECONDS", 2.0)


def queued_handler(sandbox: Sandbox, queue: EventQueue, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_handler(sandbox, monkeypatch, **queue.env())


def drain_until_empty(queue: EventQueue, handler: ModuleType, seconds: float = 15.0) -> None:
    """Poll as the mapping would until the queue holds nothing (deferred messages included)."""
    deadline = time.monotonic() + seconds
    while queue.depth() and time.monotonic() < deadline:
        if not queue.poll(handler.queue_handler, LambdaContext()):
            time.sleep(0.2)
    assert queue.depth() == 0, "the queue did not drain"


def test_partial_batch_failure_deletes_the_handled_and_returns_the_failed(
    sandbox: Sandbox, queue: EventQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = queued_handler(sandbox, queue, monkeypatch)
    privileged = sandbox.register(PRIVILEGED)
    compliant = sandbox.register(COMPLIANT)
    queue.put(sandbox.event_for(PRIVILEGED, privileged))
    queue.sqs.send_message(QueueUrl=queue.queue_url, MessageBody="{not json")
    queue.put(sandbox.event_for(COMPLIANT, compliant))

    messages = queue.sqs.receive_message(
        QueueUrl=queue.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    assert len(messages) == 3
    response = handler.queue_handler({"Records": [queue._record(m) for m in messages]}, LambdaContext())

    poisoned = [m["MessageId"] for m in messages if m["Body"] == "{not json"]
    assert response == {"batchItemFailures": [{"itemIdentifier": poisoned[0]}]}
    assert len(sandbox.active_revisions("web")) == 2  # the privileged one was fixed in the same batch
    assert len(sandbox.active_revisions("api")) == 1
    [note] = sandbox.inbox()
    assert note.attributes["outcome"] == "remediated"


def test_a_throttled_register_is_deferred_and_retried_until_it_is_fixed(
    sandbox: Sandbox, queue: EventQueue, monkeypatch: pytest.MonkeyPatch, fast_retries: None
) -> None:
    handler = queued_handler(sandbox, queue, monkeypatch)
    response = sandbox.register(PRIVILEGED)
    queue.put(sandbox.event_for(PRIVILEGED, response))
    # Throttled through botocore's attempts of the first delivery: the event is sent again with a delay.
    calls = throttle_first(aws.client("ecs"), "RegisterTaskDefinition", ATTEMPTS)
    assert queue.poll(handler.queue_handler, LambdaContext()) == 1
    assert len(calls) == ATTEMPTS
    assert list(handler.delivery().deferred_why.values()) == ["ThrottlingException"]
    assert len(sandbox.active_revisions("web")) == 1
    attributes = queue.sqs.get_queue_attributes(QueueUrl=queue.queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # the deferral, not a redelivery
    assert attributes["ApproximateNumberOfMessages"] == "0"

    drain_until_empty(queue, handler)

    assert len(calls) == ATTEMPTS + 1  # one more register, which ECS accepted
    assert len(sandbox.active_revisions("web")) == 2
    [note] = sandbox.inbox()
    assert note.attributes["outcome"] == "remediated"
    assert queue.dead_letters() == []


def test_deferrals_do_not_use_up_the_receive_count(
    sandbox: Sandbox, queue: EventQueue, monkeypatch: pytest.MonkeyPatch, fast_retries: None
) -> None:
    """Throttled on more deliveries than the queue's maxReceiveCount (3): still fixed, nothing in the DLQ."""
    monkeypatch.setattr(delivery, "DEFER_BASE_SECONDS", 0.5)
    monkeypatch.setattr(delivery, "DEFER_MAX_SECONDS", 1)
    handler = queued_handler(sandbox, queue, monkeypatch)
    response = sandbox.register(PRIVILEGED)
    queue.put(sandbox.event_for(PRIVILEGED, response))
    calls = throttle_first(aws.client("ecs"), "RegisterTaskDefinition", ATTEMPTS * 5)  # five deliveries' worth

    drain_until_empty(queue, handler, seconds=30)

    assert len(calls) == ATTEMPTS * 5 + 1
    assert handler.delivery().deferred == 5
    assert len(sandbox.active_revisions("web")) == 2
    assert [n.attributes["outcome"] for n in sandbox.inbox()] == ["remediated"]
    assert queue.dead_letters() == []


def test_a_revision_deregistered_while_it_waits_is_skipped(
    sandbox: Sandbox, queue: EventQueue, monkeypatch: pytest.MonkeyPatch, fast_retries: None
) -> None:
    handler = queued_handler(sandbox, queue, monkeypatch)
    response = sandbox.register(PRIVILEGED)
    queue.put(sandbox.event_for(PRIVILEGED, response))
    calls = throttle_first(aws.client("ecs"), "RegisterTaskDefinition", ATTEMPTS)
    queue.poll(handler.queue_handler, LambdaContext())
    assert handler.delivery().deferred == 1
    sandbox.client("ecs").deregister_task_definition(taskDefinition=response["taskDefinition"]["taskDefinitionArn"])

    drain_until_empty(queue, handler)

    assert len(calls) == ATTEMPTS  # no register after the revision went
    assert sandbox.active_revisions("web") == []
    assert sandbox.inbox() == []
    assert queue.dead_letters() == []


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", json.dumps("a string")], ids=["not-json", "list", "string"])
def test_a_poisoned_message_ends_in_the_dead_letter_queue_with_a_notice(
    sandbox: Sandbox, queue: EventQueue, monkeypatch: pytest.MonkeyPatch, body: str
) -> None:
    handler = queued_handler(sandbox, queue, monkeypatch)
    queue.sqs.send_message(QueueUrl=queue.queue_url, MessageBody=body)

    polls = queue.drain(handler.queue_handler, LambdaContext())

    assert polls == queue.max_receives  # delivered 3 times; on the 4th receive SQS moved it
    [dead] = queue.dead_letters()
    assert dead["Body"] == body
    [note] = sandbox.inbox()
    assert note.attributes["outcome"] == "failed"
    assert note.payload["errorCode"] == "Undeliverable"
    assert "dead-letter queue" in note.payload["errorMessage"]


def test_a_permanent_failure_is_notified_once_and_ends_in_the_dead_letter_queue(
    sandbox: Sandbox, queue: EventQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_handler import _Raw

    handler = queued_handler(sandbox, queue, monkeypatch)
    response = sandbox.register(PRIVILEGED)
    queue.put(sandbox.event_for(PRIVILEGED, response))

    def deny(request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        body = json.dumps({"__type": "AccessDeniedException", "message": "not authorized to perform: iam:PassRole"})
        return AWSResponse(request.url, 400, {}, _Raw(body.encode()))

    aws.client("ecs").meta.events.register_first("before-send.ecs.RegisterTaskDefinition", deny)
    queue.drain(handler.queue_handler, LambdaContext())

    assert len(queue.dead_letters()) == 1
    notes = sandbox.inbox()
    assert [n.attributes["outcome"] for n in notes] == ["failed"]  # its own failure notice, deduplicated
    assert notes[0].payload["errorCode"] == "AccessDeniedException"
    assert len(sandbox.active_revisions("web")) == 1


def test_a_burst_in_one_batch_registers_one_copy_per_revision(
    sandbox: Sandbox, queue: EventQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten revisions of five families, each event delivered twice (EventBridge is at least once): 5 copies (only a
    family's latest is copied), 5 superseded notices, nothing left."""
    handler = queued_handler(sandbox, queue, monkeypatch)
    for family in range(5):
        params = {**PRIVILEGED, "family": f"svc{family}"}
        for _ in range(2):
            event = sandbox.event_for(params, sandbox.register(params))
            queue.put(event)
            queue.put(event)

    drain_until_empty(queue, handler)

    for family in range(5):
        assert len(sandbox.active_revisions(f"svc{family}")) == 3  # two sources and one copy
    outcomes = sorted(n.attributes["outcome"] for n in sandbox.inbox())
    assert outcomes == ["remediated"] * 5 + ["superseded"] * 5
    assert queue.dead_letters() == []
