"""The sweep: judge the task definitions that already exist, and optionally fix them the function's way.

Shared by `ecs-remediate scan` and the scheduled function. Three rules:

- Fail-closed. A revision whose DescribeTaskDefinition failed after retries is ERROR, never PASS; a
  listing that failed part-way is an ERROR row too, so a partial sweep can never look clean.
- Few calls. `latest` scope (what AWS Config and Security Hub ECS.4 judge) lists the ACTIVE families
  and describes the newest ACTIVE revision of each: about one describe per family. `active` scope
  (what Prowler judges) lists every ACTIVE revision and describes each. Every list is read to its last
  page (ECS pages at 100 items).
- At the API's rate, not over it. ECS throttles per account and Region with a token bucket per action.
  A client-side token bucket per operation (same shape: burst, then a sustained rate) gates every HTTP
  attempt, a bounded thread pool keeps enough calls in flight to use it, and botocore's adaptive retries
  back off further if someone else in the account is spending the same bucket.

Judging uses `policy.assess` (the function's verdict); fixing goes through `Remediator.process`, so
exemptions, idempotency (shared with the function through IDEMPOTENCY_TABLE), the marker tag, the
"only the latest revision is copied" guard and notices are the same code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import boto3
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import BaseError as IdempotencyError
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from botocore.config import Config as BotoConfig

from . import aws
from .aws import BotoCoreError, ClientError, Described, Ecs, RevisionNotFound, error_code
from .config import Config
from .events import Registration
from .outcomes import COMPLIANT, REMEDIATED, REPORTED, SKIPPED, Result
from .outcomes import EXEMPT as OUTCOME_EXEMPT
from .policy import ERROR, EXEMPT, EXPIRY_WARNING_DAYS, FAIL, PASS, Exemption, assess
from .remediate import RemediationFailed, Remediator, today_utc
from .rollout import (
    ServiceLookupFailed,
    Superseded,
    SupersededError,
    finish_superseded,
    marker_value,
    restore_if_rolled_back,
    short_ref,
)
from .taskdef import TASK_DEFINITION_ARN_RE, tag_value

logger = logging.getLogger(__name__)

LATEST, ACTIVE = "latest", "active"
SCOPES = (LATEST, ACTIVE)
STATUSES = (PASS, FAIL, EXEMPT, ERROR)

DESCRIBE = "DescribeTaskDefinition"
LIST_REVISIONS = "ListTaskDefinitions"
LIST_FAMILIES = "ListTaskDefinitionFamilies"
REGISTER = "RegisterTaskDefinition"

# Actions (the part before the first ":" is the code; what follows explains it).
ACTION_NONE = "none"
ACTION_REPORTED = "reported"
ACTION_REMEDIATED = "remediated"
ACTION_SUPERSEDED = "superseded"
ACTION_RETIRED = "retired"
ACTION_FAILED = "failed"
ACTION_SKIPPED = "skipped"

# A sweep without the function's idempotency table leaves revisions younger than this to the function.
RECENT_REGISTRATION = timedelta(minutes=30)
DEFAULT_CONCURRENCY = 16
# Attempts per call, the first included. Backoff doubles up to 20 s with full jitter: a describe that is
# throttled every time is retried for about a minute before its revision is reported ERROR.
DEFAULT_MAX_ATTEMPTS = 8
MAX_PARALLEL_REGIONS = 4
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
# The client keeps 5 of the 50 burst tokens in reserve: calls that leave at the exact rate can arrive
# bunched (scheduling, network), and the reserve absorbs 250 ms of that at 20/s for 0.25 s of run time.
# Override with --rate or SWEEP_RATES when your account's quotas differ or others share the bucket.
DEFAULT_RATES: dict[str, Rate] = {
    DESCRIBE: Rate(20.0, 45),
    LIST_REVISIONS: Rate(20.0, 45),
    LIST_FAMILIES: Rate(20.0, 45),
    REGISTER: Rate(1.0, 1),
}
RATE_ALIASES: dict[str, tuple[str, ...]] = {
    "describe": (DESCRIBE,),
    "list": (LIST_REVISIONS, LIST_FAMILIES),
    "register": (REGISTER,),
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

    Adaptive per operation: a throttling answer means someone else is spending the account's bucket too,
    so the rate drops to 70% (at most once a second, so one burst of answers counts once) and climbs back
    by 2% of the configured rate per success. botocore's own adaptive mode does this per client, where a
    throttled RegisterTaskDefinition would slow every DescribeTaskDefinition as well.
    """

    DECREASE, INCREASE, MIN_FRACTION = 0.7, 0.02, 0.05

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
        self._updated = clock()
        self._last_cut = float("-inf")
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(float(self.rate.burst), self._tokens + (now - self._updated) * self.per_second)
        self._updated = now

    def acquire(self) -> float:
        """Take one token; returns the seconds waited."""
        with self._lock:
            self._refill(self._clock())
            self._tokens -= 1.0
            wait = -self._tokens / self.per_second if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

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
    """One token bucket per operation in front of a botocore client, counting calls and throttles."""

    def __init__(self, rates: Mapping[str, Rate] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rates = dict(rates if rates is not None else DEFAULT_RATES)
        self.buckets = {operation: TokenBucket(rate, clock) for operation, rate in self.rates.items()}
        self.stats = CallStats()

    def attach(self, client: Any) -> Any:
        events = client.meta.events
        events.register("before-send.ecs", self._before_send, unique_id="ecs-remediate-rate-limit")
        events.register("needs-retry.ecs", self._after_attempt, unique_id="ecs-remediate-throttle-count")
        return client

    def _before_send(self, event_name: str = "", **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        self.stats.add(operation)
        bucket = self.buckets.get(operation)
        if bucket is not None:
            bucket.acquire()

    def _after_attempt(self, event_name: str = "", response: Any = None, **_: Any) -> None:
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


def ecs_client(region: str | None, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS, pool: int = DEFAULT_CONCURRENCY) -> Any:
    """A fresh ECS client for one sweep: the function's botocore Config with standard retries (exponential
    backoff with jitter, `max_attempts` in total) and a connection pool as large as the thread pool. The
    rate adapts in RateLimiter, per operation. Endpoint and credentials come from the standard chain
    (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...)."""
    config = aws.BOTO_CONFIG.merge(
        BotoConfig(retries={"mode": "standard", "total_max_attempts": max_attempts}, max_pool_connections=pool + 4)
    )
    return boto3.session.Session().client("ecs", region_name=region, config=config)


class SweepEcs(Ecs):
    """The ECS adapter with "latest ACTIVE revision of a family" made exact.

    DescribeTaskDefinition(taskDefinition=family) returns the latest ACTIVE revision on ECS, but moto
    (5.2.5) returns the highest revision even when it is INACTIVE, and a family whose revisions are all
    INACTIVE is still listed by ListTaskDefinitionFamilies(status=ACTIVE) there. When the answer is not an
    ACTIVE revision of that family, the family's ACTIVE revisions are listed (filtered to the exact
    family: familyPrefix matching is not the same everywhere) and the newest is described.
    """

    def describe(self, task_definition: str) -> Described:
        if ":" in task_definition:  # an ARN or family:revision
            return super().describe(task_definition)
        latest = self.latest_active(task_definition)
        if latest is None:
            raise RevisionNotFound(task_definition)
        return latest

    def latest_active(self, family: str) -> Described | None:
        """The newest ACTIVE revision of `family`, described with tags; None when it has none."""
        try:
            described: Described | None = super().describe(family)
        except RevisionNotFound:
            described = None
        if described is not None and described.status == "ACTIVE" and described.family == family:
            return described
        revisions = [revision for name, revision in map(_family_revision, self.revision_arns(family)) if name == family]
        if not revisions:
            return None
        newest = max(revisions)
        prefix = described.arn.rsplit(":", 1)[0] if described is not None and described.family == family else None
        try:
            described = super().describe(f"{prefix}:{newest}" if prefix else f"{family}:{newest}")
        except RevisionNotFound:
            return None
        return described if described.status == "ACTIVE" else None


def _family_revision(arn: str) -> tuple[str, int]:
    match = TASK_DEFINITION_ARN_RE.match(arn)
    return (match["family"], int(match["revision"])) if match else ("", 0)


@dataclass
class Finding:
    """One row of the sweep: the verdict on one revision and what was done about it."""

    task_definition_arn: str
    status: str
    privileged_containers: list[str] = field(default_factory=list)
    action: str = ACTION_NONE
    new_task_definition_arn: str | None = None
    error: str | None = None
    region: str = ""
    family: str = ""
    revision: int = 0
    marker: str | None = field(default=None, repr=False)  # the marker tag's value: a fixed copy names its source
    expiring: bool = False  # EXEMPT with an exemption that expires within 7 days
    registered_at: datetime | None = field(default=None, repr=False)
    exemption: Exemption | None = field(default=None, repr=False)  # the claim judged (reason, expiry) for reports

    @property
    def open(self) -> bool:
        """Left to deal with: an ERROR, or a FAIL that was neither remediated nor retired."""
        return self.status == ERROR or (self.status == FAIL and not (self.remediated or self.retired))

    @property
    def remediated(self) -> bool:
        return self.status == FAIL and self.action.startswith(ACTION_REMEDIATED)

    @property
    def retired(self) -> bool:
        """Deregistered (INACTIVE): scanners that judge every ACTIVE revision no longer see it."""
        return self.status == FAIL and self.action.startswith(ACTION_RETIRED)

    def to_json(self) -> dict[str, Any]:
        return {
            "taskDefinitionArn": self.task_definition_arn,
            "status": self.status,
            "privilegedContainers": list(self.privileged_containers),
            "action": self.action,
            "newTaskDefinitionArn": self.new_task_definition_arn,
            "error": self.error,
        }


@dataclass
class SweepReport:
    scope: str
    regions: list[str]
    findings: list[Finding]
    stats: CallStats
    seconds: float
    remediate: bool = False

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for finding in self.findings:
            counts[finding.status] = counts.get(finding.status, 0) + 1
        return counts

    @property
    def remediated(self) -> int:
        return sum(1 for f in self.findings if f.remediated)

    @property
    def retired(self) -> int:
        return sum(1 for f in self.findings if f.retired)

    @property
    def open(self) -> int:
        return sum(1 for f in self.findings if f.open)

    @property
    def expiring(self) -> list[Finding]:
        """EXEMPT revisions whose exemption expires within 7 days."""
        return [f for f in self.findings if f.expiring]

    def summary(self) -> str:
        counts = self.counts()
        statuses = ", ".join(f"{counts[s]} {s}" for s in STATUSES)
        retired = f"{self.retired} retired; " if self.retired else ""
        text = (
            f"{len(self.findings)} revision(s), {self.scope} scope, {', '.join(self.regions)}: {statuses}; "
            f"{self.remediated} remediated; {retired}{self.open} left to fix; {self.seconds:.1f}s"
        )
        expiring = self.expiring
        if expiring:
            text += f"\n{len(expiring)} exemption(s) expire within {EXPIRY_WARNING_DAYS} days:"
            text += "".join(f"\n  {f.task_definition_arn}: {f.action}" for f in expiring)
        return text


class Progress(Protocol):
    def add_total(self, count: int) -> None: ...

    def advance(self, count: int = 1) -> None: ...


class _NoProgress:
    def add_total(self, count: int) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass


class Sweeper:
    """The sweep of one Region: list, judge in parallel, then act on what failed."""

    def __init__(
        self,
        ecs: SweepEcs,
        config: Config,
        *,
        scope: str = LATEST,
        remediator: Remediator | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        today: Callable[[], date] = today_utc,
        progress: Progress | None = None,
    ) -> None:
        if scope not in SCOPES:
            raise SweepError(f"scope: expected one of {', '.join(SCOPES)}, got {scope!r}")
        if not 1 <= concurrency <= 256:
            raise SweepError(f"concurrency: expected 1-256, got {concurrency}")
        self.ecs, self.config, self.scope = ecs, config, scope
        self.remediator, self.concurrency = remediator, concurrency
        self._today = today
        self.progress: Progress = progress or _NoProgress()

    def run(self) -> list[Finding]:
        findings: list[Finding] = []
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="sweep") as pool:
            # Phase 1: judge. Describes start while later pages are still being listed.
            futures: list[tuple[str, Future[Finding | None]]] = []
            listing_error: Finding | None = None
            try:
                for ref in self._refs():
                    self.progress.add_total(1)
                    future = pool.submit(self._judge, ref)
                    future.add_done_callback(self._advance)
                    futures.append((ref, future))
            except (ClientError, BotoCoreError) as error:
                listing_error = self._listing_error(error)
            for ref, future in futures:
                finding = _result_or_error(future, ref, self.ecs.region)
                if finding is not None:
                    findings.append(finding)
            _name_error_rows(findings)
            # Phase 2: act. Only the newest ACTIVE revision of a family may be copied.
            newest: dict[str, int] = {}
            for finding in findings:  # ERROR rows count too: never copy a revision older than one unjudged
                newest[finding.family] = max(newest.get(finding.family, 0), finding.revision)
            actions: list[tuple[Finding, Future[None]]] = []
            superseded: dict[str, list[Finding]] = {}
            for finding in findings:
                if finding.status != FAIL:
                    continue
                if finding.revision < newest.get(finding.family, 0):
                    self._superseded(finding, newest[finding.family])
                    superseded.setdefault(finding.family, []).append(finding)
                elif self.remediator is not None and self._left_to_the_function(finding):
                    continue
                elif self.remediator is not None:
                    actions.append((finding, pool.submit(self._remediate, finding)))
                else:
                    finding.action = ACTION_REPORTED
            for finding, action in actions:
                try:
                    action.result()
                except Exception as error:  # fail-closed: a bug in one row must not lose the others
                    logger.exception("remediation of %s failed unexpectedly", finding.task_definition_arn)
                    finding.action, finding.error = ACTION_FAILED, f"{type(error).__name__}: {error}"[:1000]
            # Phase 3 (active scope, with rollout or retire): older privileged revisions, once the latest of each
            # family was dealt with. One task per family: its steps depend on the family's latest.
            if self.remediator is not None and (self.config.rollout or self.config.retire) and superseded:
                copies = _copies(findings)
                families = [
                    (rows, pool.submit(self._finish_family, family, rows, copies))
                    for family, rows in superseded.items()
                ]
                for rows, done in families:
                    try:
                        done.result()
                    except Exception as error:  # fail-closed, as above
                        logger.exception("finishing older revisions of %s failed unexpectedly", rows[0].family)
                        for row in rows:
                            if not (row.retired or row.status == ERROR):
                                row.action, row.error = ACTION_FAILED, f"{type(error).__name__}: {error}"[:1000]
        if listing_error is not None:
            findings.append(listing_error)
        return sorted(findings, key=lambda f: (f.family, f.revision, f.task_definition_arn))

    def _advance(self, _: Future[Finding | None]) -> None:
        self.progress.advance()

    def _refs(self) -> Iterator[str]:
        """Families (latest scope) or revision ARNs (active scope), every page."""
        if self.scope == LATEST:
            return self.ecs.families()
        return self.ecs.revision_arns()

    def _judge(self, ref: str) -> Finding | None:
        """Describe and assess one family's newest ACTIVE revision (latest) or one revision (active).
        None when there is nothing ACTIVE to judge (deregistered meanwhile, or a family with none)."""
        family, revision = _family_revision(ref) if ":" in ref else (ref, 0)
        try:
            described = self.ecs.latest_active(ref) if self.scope == LATEST else self.ecs.describe(ref)
        except RevisionNotFound:
            return None
        except (ClientError, BotoCoreError) as error:
            text = f"describe failed after retries: {_error_text(error)}"
            return Finding(ref, ERROR, error=text, region=self.ecs.region, family=family, revision=revision)
        if described is None or described.status != "ACTIVE":
            return None
        assessment = assess(described.task_definition, described.tags, self.config, self._today())
        finding = Finding(
            described.arn,
            assessment.verdict,
            assessment.privileged,
            region=self.ecs.region,
            family=described.family,
            revision=described.revision,
            marker=tag_value(described.tags, self.config.marker_tag_key),
        )
        registered_at = described.task_definition.get("registeredAt")
        if isinstance(registered_at, datetime):
            finding.registered_at = registered_at
        if assessment.exemption is not None:
            finding.exemption = assessment.exemption
            self._exemption_action(finding, assessment.exemption)
        return finding

    def _exemption_action(self, finding: Finding, exemption: Exemption) -> None:
        """EXEMPT rows say why (and when the exemption runs out soon); FAIL rows with an exemption that does
        not hold say why it does not."""
        if finding.status == EXEMPT:
            why = exemption.why
            today = self._today()
            if exemption.until is not None and exemption.expires_within(today):
                days = (exemption.until - today).days
                when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
                why = f"exempt until {exemption.until.isoformat()} (expires {when}): {exemption.reason}"
                finding.expiring = True
            finding.action = f"{ACTION_NONE}: {why}" if why.startswith("exempt") else f"{ACTION_NONE}: exempt: {why}"
        elif finding.status == FAIL:
            finding.error = f"not exempt: {exemption.why}"

    def _left_to_the_function(self, finding: Finding) -> bool:
        """Without an idempotency table shared with the function, the two could both copy a revision the
        function is handling right now (it sees a registration within seconds to minutes). A sweep without
        the table leaves such fresh registrations to it: the row stays FAIL, and the next sweep decides."""
        assert self.remediator is not None
        if self.remediator.shares_idempotency or finding.registered_at is None:
            return False
        age = datetime.now(UTC) - finding.registered_at.astimezone(UTC)
        if age >= RECENT_REGISTRATION:
            return False
        finding.action = (
            f"{ACTION_SKIPPED}: registered {max(int(age.total_seconds() // 60), 0)} min ago, left to the "
            "function (set IDEMPOTENCY_TABLE to the stack's table so the sweep and the function share idempotency)"
        )
        return True

    def _remediate(self, finding: Finding) -> None:
        """The function's path for one FAIL revision; outcomes map back onto the row, never to PASS."""
        assert self.remediator is not None
        try:
            result = self.remediator.process(Registration(task_definition_arn=finding.task_definition_arn))
        except RemediationFailed as failure:
            finding.action = ACTION_FAILED
            finding.error = f"{failure.result.error_code}: {failure.result.error_message}"
            return
        except IdempotencyAlreadyInProgressError:
            finding.status, finding.action = ERROR, ACTION_NONE
            finding.error = "in progress elsewhere: the function is handling this revision now; sweep again later"
            return
        except (ClientError, BotoCoreError, IdempotencyError) as error:
            finding.action, finding.error = ACTION_FAILED, _error_text(error)
            return
        if result.outcome == REMEDIATED:
            finding.action, finding.new_task_definition_arn = ACTION_REMEDIATED, result.new_task_definition_arn
            if result.services_checked:
                finding.action += f": {_followup_text(result)}"
        elif result.outcome == COMPLIANT:
            finding.status, finding.privileged_containers = PASS, []
        elif result.outcome == OUTCOME_EXEMPT:
            finding.status, finding.action = EXEMPT, f"{ACTION_NONE}: exempt: {result.exemption}"
        elif result.outcome == REPORTED:
            finding.action = ACTION_REPORTED
        elif result.outcome == SKIPPED and result.reason.startswith("superseded"):
            finding.action = f"{ACTION_SUPERSEDED}: {result.reason}"
        else:
            finding.action = f"{ACTION_SKIPPED}: {result.reason or result.outcome}"

    def _superseded(self, finding: Finding, newest: int) -> None:
        """An older privileged revision (active scope). Without rollout or retire it is only reported: a copy of
        it would become the family's latest (a roll-back). With them, `_finish_family` deals with it."""
        finding.action = (
            f"{ACTION_SUPERSEDED}: the latest ACTIVE revision is :{newest}; not copied (copying an older "
            "revision would roll the family back)"
        )

    def _finish_family(self, family: str, rows: list[Finding], copies: Mapping[tuple[str, str], str]) -> None:
        """Older privileged revisions of one family, oldest first (rollout.finish_superseded): retire the
        unused ones; with rollout, give the used ones a fixed copy, restore the family's latest, move services."""
        restored_note = ""
        if self.config.rollout:
            try:
                restored = restore_if_rolled_back(self.ecs, self.config, family)
            except (ClientError, BotoCoreError, SupersededError, RevisionNotFound) as error:
                text = f"the family's latest could not be checked for an interrupted earlier run: {_error_text(error)}"
                for row in rows:
                    row.action, row.error = ACTION_FAILED, text
                return
            if restored is not None:
                restored_note = (
                    f"family latest restored as :{restored[0].rsplit(':', 1)[-1]} (copy of {short_ref(restored[1])})"
                )
                logger.warning("%s: the latest was a copy of an older revision; %s", family, restored_note)
        for row in sorted(rows, key=lambda f: f.revision):
            self._finish_superseded(row, copies.get((family, marker_value(family, row.revision))))
            if restored_note:
                row.action += f"; {restored_note}"
                restored_note = ""

    def _finish_superseded(self, row: Finding, copy_arn: str | None) -> None:
        try:
            source = self.ecs.describe(row.task_definition_arn)
        except RevisionNotFound:
            row.action = f"{ACTION_SKIPPED}: the revision no longer exists"
            return
        except (ClientError, BotoCoreError) as error:
            row.status, row.error = ERROR, f"describe failed after retries: {_error_text(error)}"
            return
        if source.status != "ACTIVE":
            row.action = f"{ACTION_RETIRED}: already {source.status or 'not ACTIVE'}"
            return
        try:
            outcome = finish_superseded(self.ecs, self.config, source, copy_arn)
        except ServiceLookupFailed as error:  # fail-closed: unknown users, so nothing is done and nothing PASSes
            row.status, row.error = ERROR, str(error)[:1000]
            return
        except SupersededError as error:
            row.action, row.error = ACTION_FAILED, str(error)[:1000]
            return
        except (ClientError, BotoCoreError) as error:
            row.action, row.error = ACTION_FAILED, _error_text(error)
            return
        row.action = self._superseded_action(row, outcome)
        row.new_task_definition_arn = outcome.copy_arn

    def _superseded_action(self, row: Finding, outcome: Superseded) -> str:
        services = ", ".join(f"{s.cluster_name}/{s.name} ({s.controller})" for s in outcome.services)
        if not outcome.services:
            if outcome.retired:
                return f"{ACTION_RETIRED}: no service uses it; deregistered (INACTIVE)"
            return f"{ACTION_SUPERSEDED}: no service uses it; --retire would deregister it"
        used = f"used by {len(outcome.services)} service(s): {services}"
        if not self.config.rollout:
            return (
                f"{ACTION_SUPERSEDED}: {used}; --rollout moves them onto a fixed copy of it (never retired while used)"
            )
        if outcome.followup is None or outcome.copy_arn is None:
            return f"{ACTION_SUPERSEDED}: {used}; {outcome.skipped}"
        followup = outcome.followup
        copy_ref = f":{outcome.copy_arn.rsplit(':', 1)[-1]}"
        parts = [f"fixed copy {copy_ref} {'registered' if outcome.copy_registered else 'found'}"]
        if outcome.restored_arn and outcome.restored_from:
            parts.append(
                f"family latest restored as :{outcome.restored_arn.rsplit(':', 1)[-1]} "
                f"(copy of {short_ref(outcome.restored_from)})"
            )
        parts += _services_text(followup.services_updated, followup.services_manual)
        if followup.retired:
            parts.append("deregistered (INACTIVE)")
        elif self.config.retire:
            parts.append(followup.retire_note)
        else:
            parts.append("--retire would deregister it once no service uses it")
        return f"{ACTION_RETIRED if outcome.retired else ACTION_SUPERSEDED}: " + "; ".join(parts)

    def _listing_error(self, error: BaseException) -> Finding:
        operation = LIST_FAMILIES if self.scope == LATEST else LIST_REVISIONS
        return Finding(
            f"arn:aws:ecs:{self.ecs.region}:*:task-definition/*",
            ERROR,
            error=f"{operation} failed, the sweep is incomplete: {_error_text(error)}",
            region=self.ecs.region,
            family="~",  # sorts last
        )


def _copies(findings: Sequence[Finding]) -> dict[tuple[str, str], str]:
    """(family, marker value) -> the newest ACTIVE non-privileged revision carrying it: the fixed copies."""
    copies: dict[tuple[str, str], str] = {}
    for finding in sorted(findings, key=lambda f: f.revision):
        if finding.status == PASS and finding.marker:
            copies[(finding.family, finding.marker)] = finding.task_definition_arn
    return copies


def _result_or_error(future: Future[Finding | None], ref: str, region: str) -> Finding | None:
    try:
        return future.result()
    except Exception as error:  # fail-closed: an unexpected error is that revision's ERROR, never a PASS
        logger.exception("judging %s failed unexpectedly", ref)
        family, revision = _family_revision(ref) if ":" in ref else (ref, 0)
        text = f"{type(error).__name__}: {error}"[:1000]
        return Finding(ref, ERROR, error=text, region=region, family=family, revision=revision)


def _name_error_rows(findings: Sequence[Finding]) -> None:
    """Latest scope: a family whose describe failed has no ARN yet; give it the family's ARN prefix when any
    other row shows the account (the revision stays unknown: `...:task-definition/family`)."""
    prefix = next((f.task_definition_arn.split("task-definition/")[0] for f in findings if f.revision), None)
    if prefix is None:
        return
    for finding in findings:
        if finding.status == ERROR and ":" not in finding.task_definition_arn:
            finding.task_definition_arn = f"{prefix}task-definition/{finding.task_definition_arn}"


def _services_text(updated: Sequence[Mapping[str, str]], manual: Sequence[Mapping[str, str]]) -> list[str]:
    """The services rollout moved (with their deployments) and those left for a person (with the step)."""
    parts = []
    if updated:
        parts.append(
            "moved " + ", ".join(f"{s['cluster']}/{s['service']} (deployment {s['deploymentId']})" for s in updated)
        )
    if manual:
        parts.append(
            "still used by "
            + "; ".join(
                f"{s['cluster']}/{s['service']} ({s['controller']}): {s['step']}"
                + (f" [{s['note']}]" if "note" in s else "")
                for s in manual
            )
        )
    return parts


def _followup_text(result: Result) -> str:
    """What rollout/retire did after a remediation (the Remediator's result)."""
    parts = _services_text(result.services_updated, result.services_manual)
    if not result.services_updated and not result.services_manual:
        parts.append("no service uses the privileged revision")
    if result.retire_note:
        parts.append(result.retire_note)
    if result.remaining_privileged is not None:
        bound = "+" if result.remaining_is_lower_bound else ""
        parts.append(f"{result.remaining_privileged}{bound} ACTIVE privileged revision(s) left in the family")
    return "; ".join(parts)


def _error_text(error: BaseException) -> str:
    return f"{error_code(error)}: {' '.join(str(error).split())}"[:1000]


def build_remediator(config: Config, ecs: SweepEcs, persistence: BasePersistenceLayer | None = None) -> Remediator:
    """The function's Remediator on the sweep's rate-limited ECS adapter, with the shared idempotency table
    (IDEMPOTENCY_TABLE) and the notice topic (TOPIC_ARN) when configured."""
    if persistence is None and config.idempotency_table:
        persistence = DynamoDBPersistenceLayer(table_name=config.idempotency_table, boto3_client=aws.client("dynamodb"))
    topic = None
    if config.topic_arn:
        parts = config.topic_arn.split(":")
        region = parts[3] if len(parts) > 3 and parts[3] else None
        topic = aws.Topic(aws.client("sns", region), config.topic_arn)
    return Remediator(config, ecs, topic, persistence)


def enabled_regions(region: str | None = None) -> list[str]:
    """ec2:DescribeRegions (asked in `region`): the Regions enabled for the account (opted in, or needing no
    opt-in)."""
    response = aws.client("ec2", region).describe_regions(
        Filters=[{"Name": "opt-in-status", "Values": ["opt-in-not-required", "opted-in"]}]
    )
    return sorted(str(r["RegionName"]) for r in response.get("Regions", []))


def sweep(
    regions: Sequence[str | None],
    config: Config,
    *,
    scope: str = LATEST,
    remediate: bool = False,
    rates: Mapping[str, Rate] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    progress: Progress | None = None,
    make_client: Callable[[str | None], Any] | None = None,
    persistence: BasePersistenceLayer | None = None,
    lambda_context: Any = None,
) -> SweepReport:
    """Sweep each Region (in parallel: ECS throttles each Region separately). `remediate` registers fixed
    copies through the Remediator (the Config's mode is set to remediate); otherwise nothing is written
    and no notice is sent."""
    if not 1 <= max_attempts <= 20:
        raise SweepError(f"max attempts: expected 1-20, got {max_attempts}")
    if remediate and config.mode != "remediate":
        config = replace(config, mode="remediate")
    started = time.monotonic()
    stats = CallStats()

    def one_region(region: str | None) -> tuple[str, list[Finding]]:
        limiter = RateLimiter(rates)
        client = (make_client or (lambda r: ecs_client(r, max_attempts=max_attempts, pool=concurrency)))(region)
        limiter.attach(client)
        ecs = SweepEcs(client)
        remediator = build_remediator(config, ecs, persistence) if remediate else None
        if remediator is not None and lambda_context is not None:
            remediator.register_lambda_context(lambda_context)
        sweeper = Sweeper(ecs, config, scope=scope, remediator=remediator, concurrency=concurrency, progress=progress)
        findings = sweeper.run()
        stats.merge(limiter.stats)
        return ecs.region, findings

    if len(regions) == 1:
        results = [one_region(regions[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_REGIONS, len(regions))) as pool:
            results = list(pool.map(one_region, regions))
    findings = [finding for _, region_findings in results for finding in region_findings]
    return SweepReport(
        scope=scope,
        regions=[region for region, _ in results],
        findings=findings,
        stats=stats,
        seconds=time.monotonic() - started,
        remediate=remediate,
    )


__all__ = [
    "ACTIVE",
    "DEFAULT_RATES",
    "LATEST",
    "SCOPES",
    "CallStats",
    "Finding",
    "Rate",
    "RateLimiter",
    "SweepEcs",
    "SweepError",
    "SweepReport",
    "Sweeper",
    "TokenBucket",
    "build_remediator",
    "ecs_client",
    "enabled_regions",
    "parse_rates",
    "sweep",
]
