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

Fair across accounts (the organization hub, where `group_of` names each event's member account): a batch is handled
in round-robin order of its accounts, fewest records first (every account's first record, then every account's
second, ...), so one member's burst in the same batch does not delay another member's registration. Each execution
environment tries an account's records at ACCOUNT_RATE a second, ACCOUNT_BURST at once (a token bucket per account
that outlives the batch); the others, and those within SATURATED_SECONDS of a throttled call in that account, are
deferred untried, spread at that rate after the ones already deferred, with the account as their MessageGroupId (in
a standard queue that makes SQS order them as a fair queue: one member's backlog does not raise the others' dwell
time). A member's burst then costs an invocation one try and the SendMessageBatch calls of its deferrals (sent ten
at once), not a second of work per record, so the others' registrations wait for little. A record reached when the
invocation has less than DEADLINE_MARGIN_SECONDS left is deferred too, rather than cut off by the timeout.

Copies are idempotent per source revision (remediation/remediator.py), so a redelivery, a deferral that raced its
original, or the mapping's at-least-once delivery make no second copy.
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

from ..adapters.aws import error_code, is_transient

# Deferral backoff: the first after about DEFER_BASE_SECONDS, doubling, at most SQS's largest DelaySeconds.
DEFER_BASE_SECONDS = 15.0
DEFER_MAX_SECONDS = 900
# How long a throttled event keeps being deferred before it fails (and goes on to the dead-letter queue with a
# notice): a day, the scheduled sweep's period.
DEFER_FOR_SECONDS = 24 * 3600
# After a throttled call in an account, how long its other records are deferred without trying (about two refills of
# ECS's register bucket, which refills one token a second).
SATURATED_SECONDS = 2.0
# In the hub, how fast one execution environment tries an account's records: ACCOUNT_BURST at once, then ACCOUNT_RATE a
# second; the rest are deferred, spread at that rate. With the hub's default MaximumConcurrency of 4
# (infra/settings.py) an account's records are tried about once a second together, ECS's register refill per account,
# so a member's burst waits for its own account's rate without holding a batch; a larger `queueConcurrency` tries
# them faster by as much.
ACCOUNT_BURST = 2
ACCOUNT_RATE = 0.25
# SendMessageBatch calls of a batch's deferrals at once (a batch of 1,000 defers up to 100 of them).
DEFERRAL_SENDERS = 10
# A record reached with less than this left of the invocation is deferred unhandled (a remediation takes well under).
DEADLINE_MARGIN_SECONDS = 10.0
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
    # not imported: only the hub loads organization/member_accounts.py
    if type(error).__name__ == "MemberAccessTransient":
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
        self.saturated: dict[str, float] = {}  # account -> until when (self.now()) its records are deferred untried
        self._tokens: dict[str, tuple[float, float]] = {}  # account -> (tries left, when counted): its bucket
        self._spread_until: dict[str, float] = {}  # account -> when its latest deferral untried comes back
        self._pending: list[tuple[str, dict[str, Any]]] = []  # this batch's deferrals: (messageId, entry)
        self.deferred = 0  # this process's deferrals (the bench reads it)
        self.last_batch: dict[str, Any] = {}  # messageId -> what handling it returned, for the latest batch (the demo)
        self.deferred_why: dict[str, str] = {}  # messageId -> why it was deferred (an error code, "paced", "deadline")

    def handle_batch(
        self, event: Mapping[str, Any], context: Any, handle: HandleOne, notify: NotifyUndeliverable
    ) -> dict[str, Any]:
        """The batch's partial response ({"batchItemFailures": [...]}) for the event source mapping."""
        from aws_lambda_powertools.utilities.batch import (  # noqa: PLC0415 - the queue entry point only
            BatchProcessor,
            EventType,
            process_partial_response,
        )

        self.last_batch, self.deferred_why, self._pending = {}, {}, []
        deadline = _deadline(context, self.now)

        def record_handler(record: Any) -> None:
            self.last_batch[record.message_id] = self.handle_record(record.raw_event, handle, notify, deadline)

        records = list(event.get("Records") or [])
        ordered = {**event, "Records": self.fair_order(records) if self.group_of is not None else records}
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        response: dict[str, Any] = dict(
            process_partial_response(event=ordered, record_handler=record_handler, processor=processor, context=context)
        )
        unsent = self.flush()
        if unsent:  # not deferred after all: delivered again after the visibility timeout
            response["batchItemFailures"] = [*list(response.get("batchItemFailures") or []), *unsent]
        return response

    def flush(self) -> list[dict[str, str]]:
        """Send this batch's deferrals (SendMessageBatch, 10 a call); the records whose deferral failed, as
        batchItemFailures."""
        pending, self._pending = self._pending, []
        if self.sqs is None:
            return [{"itemIdentifier": message_id} for message_id, _ in pending]
        chunks = [pending[start : start + 10] for start in range(0, len(pending), 10)]
        if len(chunks) > 1:  # DEFERRAL_SENDERS calls at once (boto3 clients are thread-safe)
            from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - a hub burst's batches only

            with ThreadPoolExecutor(min(DEFERRAL_SENDERS, len(chunks))) as senders:
                answers = list(senders.map(self._send, chunks))
        else:
            answers = [self._send(chunk) for chunk in chunks]
        failed = [item for answer in answers for item in answer]
        self.deferred += len(pending) - len(failed)
        return failed

    def _send(self, chunk: list[tuple[str, dict[str, Any]]]) -> list[dict[str, str]]:
        """One SendMessageBatch of up to 10 deferrals; the records it did not take, as batchItemFailures."""
        assert self.sqs is not None
        entries = [{**entry, "Id": str(n)} for n, (_, entry) in enumerate(chunk)]
        try:
            answer = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            refused = {int(f["Id"]) for f in answer.get("Failed") or []}
        except Exception:  # noqa: BLE001 - whatever failed, those records are retried by SQS
            refused = set(range(len(chunk)))
        return [{"itemIdentifier": chunk[n][0]} for n in sorted(refused)]

    def fair_order(self, records: list[Any]) -> list[Any]:
        """Round-robin over the records' accounts, the accounts with the fewest records first (ties in order of first
        appearance): each account's first record, then each account's second, and so on. A member with one registration
        goes before a member's burst; an unreadable record counts as an account of its own."""
        queues: dict[str, list[Any]] = {}
        for n, record in enumerate(records):
            queues.setdefault(self._group(record) or f"#{n}", []).append(record)
        smallest_first = sorted(queues.values(), key=len)
        ordered: list[Any] = []
        depth = 0
        while len(ordered) < len(records):
            ordered += [queue[depth] for queue in smallest_first if len(queue) > depth]
            depth += 1
        return ordered

    def _group(self, record: Any) -> str | None:
        try:
            body = json.loads(str(record.get("body") or "")) if isinstance(record, Mapping) else None
        except ValueError:
            return None
        return self.group_of(body) if isinstance(body, dict) and self.group_of is not None else None

    def handle_record(
        self, record: Mapping[str, Any], handle: HandleOne, notify: NotifyUndeliverable, deadline: float | None = None
    ) -> Any:
        """One record of the batch: returns what `handle` returned when it is done (None when deferred), raises when
        SQS should deliver it again. `deadline`: when (self.now()) the invocation must have stopped handling records."""
        last = self.receive_count(record) >= self.max_receives
        try:
            body = json.loads(str(record.get("body") or ""))
            if not isinstance(body, dict):
                raise ValueError("the message is not a JSON object")
        except ValueError as error:
            if last:
                notify(None, f"the queued message is not an event ({error.__class__.__name__}){_WHERE}")
            raise
        group = self.group_of(body) if self.group_of is not None else None
        if group is not None and (self.saturated.get(group, 0.0) > self.now() or not self._take(group)):
            now = self.now()
            self._spread_until[group] = max(now, self._spread_until.get(group, now)) + 1 / ACCOUNT_RATE
            if self.defer(record, body, delay=self._spread_until[group] - now):
                return self._deferred(record, "paced")
        if deadline is not None and self.now() > deadline and self.defer(record, body, delay=0):
            return self._deferred(record, "deadline")
        try:
            return handle(body)
        except Exception as error:
            if is_deferrable(error) and self.defer(record, body):
                if group is not None and _throttled(error):
                    self.saturated[group] = self.now() + SATURATED_SECONDS
                return self._deferred(record, error_code(error))
            if last and not _notified(error):
                notify(body, _why(error, self.max_receives))
            raise

    def _deferred(self, record: Mapping[str, Any], why: str) -> None:
        self.deferred_why[str(record.get("messageId") or "")] = why

    def _take(self, group: str) -> bool:
        """One try of `group`'s records from its bucket (ACCOUNT_BURST, refilled at ACCOUNT_RATE); False when empty."""
        now = self.now()
        left, counted = self._tokens.get(group, (float(ACCOUNT_BURST), now))
        left = min(float(ACCOUNT_BURST), left + (now - counted) * ACCOUNT_RATE)
        taken = left >= 1.0
        self._tokens[group] = (left - 1.0 if taken else left, now)
        return taken

    def defer(self, record: Mapping[str, Any], body: dict[str, Any], delay: float | None = None) -> bool:
        """Send the event again (at the end of the batch) with `delay` seconds, by default the backoff of its deferral
        count; False when it may not be (no queue, or deferred for too long)."""
        if self.sqs is None or not self.queue_url:
            return False
        attributes = record.get("messageAttributes") or {}
        deferrals = _int_attribute(attributes, ATTR_DEFERRALS) + 1
        sent = _int_attribute(record.get("attributes") or {}, "SentTimestamp", plain=True) / 1000
        first_seen = _int_attribute(attributes, ATTR_FIRST_SEEN) or int(sent or self.now())
        if self.now() - first_seen > DEFER_FOR_SECONDS:
            return False
        if delay is None:
            ceiling = min(DEFER_MAX_SECONDS, DEFER_BASE_SECONDS * 2 ** min(deferrals - 1, 10))
            delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography
        request: dict[str, Any] = {
            "MessageBody": str(record.get("body")),
            "DelaySeconds": max(0, min(DEFER_MAX_SECONDS, round(delay))),
            "MessageAttributes": {
                ATTR_DEFERRALS: {"DataType": "Number", "StringValue": str(deferrals)},
                ATTR_FIRST_SEEN: {"DataType": "Number", "StringValue": str(first_seen)},
            },
        }
        group = self.group_of(body) if self.group_of is not None else None
        if group:
            request["MessageGroupId"] = group
        self._pending.append((str(record.get("messageId") or ""), request))
        return True

    @staticmethod
    def receive_count(record: Mapping[str, Any]) -> int:
        return _int_attribute(record.get("attributes") or {}, "ApproximateReceiveCount", plain=True) or 1


def _deadline(context: Any, now: Callable[[], float]) -> float | None:
    """When handling must stop, from the Lambda context's remaining time (None without one)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return float(now() + remaining() / 1000 - DEADLINE_MARGIN_SECONDS)


def _throttled(error: BaseException) -> bool:
    return "Throttl" in error_code(error) or "LimitExceeded" in error_code(error)


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
    return f"not processed after {receives} deliveries ({error_code(error)}){_WHERE}"
