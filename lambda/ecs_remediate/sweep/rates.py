"""Calling ECS at the account's rate: per-operation token buckets in front of a botocore client.

ECS throttles per account and Region with a token bucket per action. A client-side bucket per operation (same
shape: burst, then a sustained rate) gates every HTTP attempt, and adapts when ECS answers ThrottlingException
because someone else in the account is spending the same bucket.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config as BotoConfig

from ..adapters import aws

DESCRIBE = "DescribeTaskDefinition"
LIST_REVISIONS = "ListTaskDefinitions"
LIST_FAMILIES = "ListTaskDefinitionFamilies"
REGISTER = "RegisterTaskDefinition"
SELECT = "SelectResourceConfig"  # AWS Config advanced queries (the sweep's Config plan)
SELECT_AGGREGATE = "SelectAggregateResourceConfig"
# Daemon task definitions (sweep/daemons.py): the same documented rates, each sharing its group's bucket (RateLimiter).
DAEMON_DESCRIBE = "DescribeDaemonTaskDefinition"
DAEMON_TAGS = "ListTagsForResource"
DAEMON_LIST = "ListDaemonTaskDefinitions"
DAEMON_REGISTER = "RegisterDaemonTaskDefinition"

DEFAULT_CONCURRENCY = 16
# Attempts per call, the first included. Backoff doubles up to 20 s with full jitter: a describe that is
# throttled every time is retried for about a minute before its revision is reported ERROR.
DEFAULT_MAX_ATTEMPTS = 8
THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})


class SweepError(ValueError):
    """A sweep setting is invalid (bad rate, scope, concurrency); the message says which."""


@dataclass(frozen=True)
class Rate:
    """A token bucket: `burst` calls at once, then `per_second` sustained."""

    per_second: float
    burst: int

    def __str__(self) -> str:
        return f"{self.per_second:g}/s burst {self.burst}"


# ECS's per-account, per-Region buckets: AWS documents 50 burst / 20 per second for its read actions
# (the Describe*/List* family); RegisterTaskDefinition is observed at about 1 per second sustained.
# The client keeps 1 of the 50 burst tokens in reserve, against rounding: calls in flight count against the burst
# (TokenBucket), so calls that arrive late or bunched (scheduling, network) cannot overrun the account's bucket.
# AWS Config publishes no rate for its Select operations (docs/sweep-config.md#rates): the client assumes 2 per second
# with a burst of 4, below the 2/s burst 5 the benchmark emulates; a throttling answer lowers it as for ECS.
# Override with --rate or SWEEP_RATES when your account's quotas differ or others share the bucket.
DEFAULT_RATES: dict[str, Rate] = {
    DESCRIBE: Rate(20.0, 49),
    LIST_REVISIONS: Rate(20.0, 49),
    LIST_FAMILIES: Rate(20.0, 49),
    REGISTER: Rate(1.0, 1),
    SELECT: Rate(2.0, 4),
    SELECT_AGGREGATE: Rate(2.0, 4),
    DAEMON_DESCRIBE: Rate(20.0, 49),
    DAEMON_TAGS: Rate(20.0, 49),
    DAEMON_LIST: Rate(20.0, 49),
    DAEMON_REGISTER: Rate(1.0, 1),
}
RATE_ALIASES: dict[str, tuple[str, ...]] = {
    "describe": (DESCRIBE, DAEMON_DESCRIBE, DAEMON_TAGS),
    "list": (LIST_REVISIONS, LIST_FAMILIES, DAEMON_LIST),
    "register": (REGISTER, DAEMON_REGISTER),
    "config": (SELECT, SELECT_AGGREGATE),
}


def parse_rates(specs: Iterable[str], base: Mapping[str, Rate] | None = None) -> dict[str, Rate]:
    """`describe=20`, `list=10/30`, `register=0.5/1` or a full operation name; comma-separated or repeated."""
    rates = dict(base if base is not None else DEFAULT_RATES)
    for spec in (part.strip() for text in specs for part in text.split(",")):
        if not spec:
            continue
        name, sep, value = spec.partition("=")
        name = name.strip()
        operations = RATE_ALIASES.get(name.lower()) or ((name,) if name in DEFAULT_RATES else ())
        if not sep or not operations:
            known = ", ".join([*RATE_ALIASES, *DEFAULT_RATES])
            raise SweepError(f"rate {spec!r}: expected NAME=PER_SECOND[/BURST] with NAME one of {known}")
        per_second_text, _, burst_text = value.partition("/")
        try:
            per_second = float(per_second_text)
            burst = int(burst_text) if burst_text else None
        except ValueError:
            raise SweepError(f"rate {spec!r}: PER_SECOND is a number and BURST a whole number") from None
        if not 0 < per_second <= 10_000 or (burst is not None and not 1 <= burst <= 10_000):
            raise SweepError(f"rate {spec!r}: PER_SECOND must be in (0, 10000] and BURST in [1, 10000]")
        for operation in operations:
            rates[operation] = Rate(per_second, burst if burst is not None else rates[operation].burst)
    return rates


class TokenBucket:
    """Thread-safe token bucket: starts full; each acquire takes a token, waiting for the refill when none
    is left. Waiters reserve their slot under the lock and sleep outside it, so they leave in order and
    the long-run rate is exact.

    Calls in flight count against the burst: a token is taken when a call is sent and the call stays in flight until
    its answer (or error) arrives (`release`), and the tokens left plus the calls in flight never exceed the burst.
    ECS's bucket spends a token when the request reaches it, which can be well after the client sent it (a slow first
    connection, a busy network or host); a client that refilled its burst meanwhile would send the refill on top of
    the requests still on their way, and the account's bucket would receive more than its burst at once. Counted
    this way, whatever arrives at the account's bucket within any span of time is at most the client's burst plus
    what the rate refills in that span, however the requests are delayed or bunched on the way; with a client burst
    no larger than the account's, nothing is throttled unless someone else spends the same bucket. It costs nothing
    while answers come back faster than the burst lasts at the sustained rate (49 tokens at 20 per second: 2.45 s).

    Adaptive per operation: a throttling answer means someone else is spending the account's bucket too,
    so the rate drops to 70% (at most once a second, so one burst of answers counts once) and climbs back
    by 2% of the configured rate per success. botocore's own adaptive mode does this per client, where a
    throttled RegisterTaskDefinition would slow every DescribeTaskDefinition as well.
    """

    DECREASE, INCREASE, MIN_FRACTION = 0.7, 0.02, 0.05
    # A call counted in flight for longer is taken as lost (its answer never reached `release`): botocore gives an
    # attempt 5 s to connect and 30 s to read (aws.BOTO_CONFIG), so it cannot still be on its way.
    LOST_AFTER = 60.0

    def __init__(
        self,
        rate: Rate,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.per_second = rate.per_second
        self._clock, self._sleep = clock, sleep
        self._tokens = float(rate.burst)
        self._in_flight: deque[float] = deque()  # when each call not yet released took its token
        self._updated = clock()
        self._last_cut = float("-inf")
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def _expire(self, now: float) -> None:
        while self._in_flight and now - self._in_flight[0] > self.LOST_AFTER:
            self._in_flight.popleft()

    def _refill(self, now: float) -> None:
        self._expire(now)
        room = float(self.rate.burst - len(self._in_flight))  # tokens + calls in flight stay within the burst
        refilled = self._tokens + (now - self._updated) * self.per_second
        self._tokens = max(self._tokens, min(room, refilled))
        self._updated = now

    def acquire(self) -> float:
        """Take one token for a call about to be sent (`release` it when the call is answered); returns the seconds
        waited."""
        with self._lock:
            since = self._clock()
            while len(self._in_flight) >= self.rate.burst:
                # As many calls in flight as the burst: none is added until one is answered (the account's bucket
                # may not have seen them yet), or is taken as lost.
                self._released.wait(timeout=max(0.01, self._in_flight[0] + self.LOST_AFTER - self._clock()))
                self._expire(self._clock())
            now = self._clock()
            blocked = now - since
            self._refill(now)
            self._tokens -= 1.0
            wait = -self._tokens / self.per_second if self._tokens < 0 else 0.0
            self._in_flight.append(now + wait)  # sent when the wait is over
        if wait > 0:
            self._sleep(wait)
        return blocked + wait

    def release(self) -> None:
        """The call a token was taken for is over (answered, or failed without an answer)."""
        with self._lock:
            self._refill(self._clock())
            if self._in_flight:
                self._in_flight.popleft()
            self._released.notify()

    def throttled(self) -> None:
        with self._lock:
            now = self._clock()
            self._refill(now)
            if now - self._last_cut < 1.0:
                return
            self._last_cut = now
            floor = max(self.rate.per_second * self.MIN_FRACTION, min(self.rate.per_second, 0.5))
            self.per_second = max(floor, self.per_second * self.DECREASE)
            self._tokens = min(self._tokens, 0.0)  # the account's bucket is empty now

    def succeeded(self) -> None:
        if self.per_second >= self.rate.per_second:
            return
        with self._lock:
            self._refill(self._clock())
            self.per_second = min(self.rate.per_second, self.per_second + self.rate.per_second * self.INCREASE)


@dataclass
class CallStats:
    """HTTP attempts and throttling answers per operation (thread-safe)."""

    calls: dict[str, int] = field(default_factory=dict)
    throttles: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, operation: str, *, throttled: bool = False) -> None:
        with self._lock:
            target = self.throttles if throttled else self.calls
            target[operation] = target.get(operation, 0) + 1

    def merge(self, other: CallStats) -> None:
        with self._lock:
            for mine, theirs in ((self.calls, other.calls), (self.throttles, other.throttles)):
                for operation, count in theirs.items():
                    mine[operation] = mine.get(operation, 0) + count


class RateLimiter:
    """Token buckets in front of botocore clients (ECS, and Config for its queries), counting calls and throttles.

    The operations of one RATE_ALIASES group at the same rate share one bucket: a task definition's and a daemon
    task definition's describes, say. ECS documents no bucket of its own for the daemon operations, and the daemon
    phase of a sweep starts right after the task definitions' describes have spent the bucket: with a fresh burst of
    its own it would overrun the account's bucket if ECS counts the two together. Shared, the daemon phase goes on
    at the sustained rate (slower by at most the burst's worth, 2.45 s at 20 per second, when there are daemon task
    definitions to describe; nothing when there are none)."""

    def __init__(self, rates: Mapping[str, Rate] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rates = dict(rates if rates is not None else DEFAULT_RATES)
        self.buckets: dict[str, TokenBucket] = {}
        for operation, rate in self.rates.items():
            group = next((ops for ops in RATE_ALIASES.values() if operation in ops), (operation,))
            shared = next((self.buckets[op] for op in group if op in self.buckets and self.rates[op] == rate), None)
            self.buckets[operation] = shared or TokenBucket(rate, clock)
        self.stats = CallStats()
        # The bucket whose token this thread's attempt holds (botocore sends and answers an attempt in one thread).
        self._holding = threading.local()

    def attach(self, client: Any) -> Any:
        events = client.meta.events
        service = client.meta.service_model.service_id.hyphenize()  # "ecs", "config-service"
        events.register(f"before-send.{service}", self._before_send, unique_id="ecs-remediate-rate-limit")
        # After every attempt, answered or not (botocore catches a failed send and emits this all the same).
        events.register(f"response-received.{service}", self._answered, unique_id="ecs-remediate-rate-release")
        events.register(f"needs-retry.{service}", self._after_attempt, unique_id="ecs-remediate-throttle-count")
        return client

    def _before_send(self, event_name: str = "", **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        self.stats.add(operation)
        self._release()  # this thread's previous attempt, if nothing released it (a hook before ours raised)
        bucket = self.buckets.get(operation)
        if bucket is not None:
            bucket.acquire()
            self._holding.bucket = bucket

    def _release(self) -> None:
        bucket = getattr(self._holding, "bucket", None)
        if bucket is not None:
            self._holding.bucket = None
            bucket.release()

    def _answered(self, **_: Any) -> None:
        self._release()

    def _after_attempt(self, event_name: str = "", response: Any = None, **_: Any) -> None:
        self._release()  # as in _answered (a hook may have raised before it)
        operation = event_name.rsplit(".", 1)[-1]
        bucket = self.buckets.get(operation)
        if not (isinstance(response, tuple) and len(response) == 2 and isinstance(response[1], dict)):
            return  # a network error: botocore retries it; it says nothing about the rate
        code = str(response[1].get("Error", {}).get("Code", ""))
        if code in THROTTLING_CODES:
            self.stats.add(operation, throttled=True)
            if bucket is not None:
                bucket.throttled()
        elif bucket is not None:
            bucket.succeeded()


def ecs_client_config(*, max_attempts: int = DEFAULT_MAX_ATTEMPTS, pool: int = DEFAULT_CONCURRENCY) -> BotoConfig:
    """The botocore Config of a sweep's ECS client: the function's, with standard retries (exponential backoff
    with jitter, `max_attempts` in total) and a connection pool as large as the thread pool. The rate adapts in
    RateLimiter, per operation."""
    return aws.BOTO_CONFIG.merge(
        BotoConfig(retries={"mode": "standard", "total_max_attempts": max_attempts}, max_pool_connections=pool + 4)
    )


def ecs_client(region: str | None, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS, pool: int = DEFAULT_CONCURRENCY) -> Any:
    """A fresh ECS client for one sweep (`ecs_client_config`). Endpoint and credentials come from the standard
    chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...)."""
    config = ecs_client_config(max_attempts=max_attempts, pool=pool)
    return aws.new_session().client("ecs", region_name=region, config=config)
