"""Delivery through the stack's queue (issue 23): EventBridge puts each matched event on an encrypted SQS queue, and
the function takes them in batches through an event source mapping whose MaximumConcurrency bounds how many run at
once (so a burst drains at what the account's ECS rates allow, instead of a thousand invocations throttling each
other into the dead-letter queue).

What becomes of one record of a batch (`handle_batch`, through Powertools' batch utility, which reports the failed
ones back to the mapping as batchItemFailures):
  * handled (remediated, compliant, skipped, notified): done, the mapping deletes it;
  * transient (ECS throttled after botocore's own retries, a 5xx, another invocation holds the revision's write, the
    member role not reachable now): the event is sent to the queue again with DelaySeconds (backoff with jitter, up
    to SQS's 900) and this delivery counts as done. A deferral is a new message, so it never uses up the queue's
    receive count: throttled work waits for as long as a burst takes to drain, until it succeeds or its revision is
    gone (then the retry finds it INACTIVE or deleted: skipped). Deferrals stop after DEFER_FOR_SECONDS (the
    scheduled sweep's period): the record then fails like any other;
  * failed (a permanent failure, already notified; or an error nobody expected, a poisoned message): reported as a
    batch item failure, so SQS delivers it again after the visibility timeout, up to the queue's maxReceiveCount
    (MAX_RECEIVES), and then moves it to the dead-letter queue, whose alarm notifies. On that last delivery a FAILED
    notice names the revision (or the family and event) and says where the event went: never silent.

Copies are idempotent per source revision (remediate.py), so a redelivery, a deferral that raced its original, or
the mapping's at-least-once delivery make no second copy.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)

from .aws import is_transient

# Deferral backoff: the first after about DEFER_BASE_SECONDS, doubling, at most SQS's largest DelaySeconds.
DEFER_BASE_SECONDS = 15.0
DEFER_MAX_SECONDS = 900
# How long a throttled event keeps being deferred before it fails (and goes on to the dead-letter queue with a
# notice): a day, the scheduled sweep's period.
DEFER_FOR_SECONDS = 24 * 3600
ATTR_DEFERRALS = "ecsRemediateDeferrals"  # how many times this event was deferred
ATTR_FIRST_SEEN = "ecsRemediateFirstSeen"  # epoch seconds when the queue first held it

HandleOne = Callable[[dict[str, Any]], Any]
# (the event or None when unreadable, why) -> None: the FAILED notice of a record on its last delivery
NotifyUndeliverable = Callable[[dict[str, Any] | None, str], None]
GroupOf = Callable[[dict[str, Any]], str | None]


def is_deferrable(error: BaseException) -> bool:
    """Worth trying again later, as it is: throttling, 5xx, the network, another invocation's write in progress, the
    idempotency table unavailable, the member role not reachable now (accounts.MemberAccessTransient)."""
    if isinstance(error, IdempotencyAlreadyInProgressError | IdempotencyPersistenceLayerError):
        return True
    if type(error).__name__ == "MemberAccessTransient":  # not imported: only the hub loads accounts.py
        return True
    return is_transient(error)


class Delivery:
    """The queue side of one function: where deferrals go, and how many deliveries a record gets."""

    def __init__(
        self,
        sqs: Any | None,
        queue_url: str | None,
        max_receives: int,
        *,
        group_of: GroupOf | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.sqs, self.queue_url, self.max_receives = sqs, queue_url, max_receives
        self.group_of = group_of
        self.now = now
        self.deferred = 0  # this process's deferrals (the bench reads it)
        self.last_batch: dict[str, Any] = {}  # messageId -> what handling it returned, for the latest batch (the demo)

    def handle_batch(
        self, event: Mapping[str, Any], context: Any, handle: HandleOne, notify: NotifyUndeliverable
    ) -> dict[str, Any]:
        """The batch's partial response ({"batchItemFailures": [...]}) for the event source mapping."""
        from aws_lambda_powertools.utilities.batch import (  # noqa: PLC0415 - the queue entry point only
            BatchProcessor,
            EventType,
            process_partial_response,
        )

        self.last_batch = {}

        def record_handler(record: Any) -> None:
            self.last_batch[record.message_id] = self.handle_record(record.raw_event, handle, notify)

        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        response = process_partial_response(
            event=dict(event), record_handler=record_handler, processor=processor, context=context
        )
        return dict(response)

    def handle_record(self, record: Mapping[str, Any], handle: HandleOne, notify: NotifyUndeliverable) -> Any:
        """One record of the batch: returns what `handle` returned when it is done (None when deferred), raises when
        SQS should deliver it again."""
        last = self.receive_count(record) >= self.max_receives
        try:
            body = json.loads(str(record.get("body") or ""))
            if not isinstance(body, dict):
                raise ValueError("the message is not a JSON object")
        except ValueError as error:
            if last:
                notify(None, f"the queued message is not an event ({error.__class__.__name__}){_WHERE}")
            raise
        try:
            return handle(body)
        except Exception as error:
            if is_deferrable(error) and self.defer(record, body):
                return None
            if last and not _notified(error):
                notify(body, _why(error, self.max_receives))
            raise

    def defer(self, record: Mapping[str, Any], body: dict[str, Any]) -> bool:
        """Send the event again with a delay; False when it may not be (no queue, or deferred for too long)."""
        if self.sqs is None or not self.queue_url:
            return False
        attributes = record.get("messageAttributes") or {}
        deferrals = _int_attribute(attributes, ATTR_DEFERRALS) + 1
        sent = _int_attribute(record.get("attributes") or {}, "SentTimestamp", plain=True) / 1000
        first_seen = _int_attribute(attributes, ATTR_FIRST_SEEN) or int(sent or self.now())
        if self.now() - first_seen > DEFER_FOR_SECONDS:
            return False
        ceiling = min(DEFER_MAX_SECONDS, DEFER_BASE_SECONDS * 2 ** min(deferrals - 1, 10))
        delay = round(random.uniform(ceiling / 2, ceiling))  # noqa: S311 - jitter, not cryptography
        request: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MessageBody": str(record.get("body")),
            "DelaySeconds": max(0, min(DEFER_MAX_SECONDS, delay)),
            "MessageAttributes": {
                ATTR_DEFERRALS: {"DataType": "Number", "StringValue": str(deferrals)},
                ATTR_FIRST_SEEN: {"DataType": "Number", "StringValue": str(first_seen)},
            },
        }
        group = self.group_of(body) if self.group_of is not None else None
        if group:
            request["MessageGroupId"] = group
        self.sqs.send_message(**request)
        self.deferred += 1
        return True

    @staticmethod
    def receive_count(record: Mapping[str, Any]) -> int:
        return _int_attribute(record.get("attributes") or {}, "ApproximateReceiveCount", plain=True) or 1


def _int_attribute(attributes: Mapping[str, Any], name: str, *, plain: bool = False) -> int:
    """A whole number from the record's system attributes (`plain`: a string) or message attributes ({stringValue})."""
    value = attributes.get(name)
    if not plain and isinstance(value, Mapping):
        value = value.get("stringValue")
    text = str(value or "").strip()
    return int(text) if text.isascii() and text.isdigit() else 0


_WHERE = "; SQS moves it to the dead-letter queue"


def _notified(error: BaseException) -> bool:
    """A permanent failure of the remediation path has sent its own notice (remediate.RemediationFailed)."""
    return type(error).__name__ == "RemediationFailed"


def _why(error: BaseException, receives: int) -> str:
    """What the notice says (the error's type or code only: AWS error texts can echo request content)."""
    from .aws import error_code  # noqa: PLC0415

    return f"not processed after {receives} deliveries ({error_code(error)}){_WHERE}"
