"""The sweep's other plan for one account and Region (active scope): judge from AWS Config's records, describe only
what Config cannot vouch for.

ECS stays the authority on what is swept: only revisions its ACTIVE listing names get a row, and their status comes
from it, never from Config. For each listed revision:

- Config says it has a privileged container (the privileged query, or its record read back): described and judged
  as today (tags, exemptions, provenance, remediation come from the describe);
- its record carries the marker tag (it claims to be a fixed copy): described (provenance is checked on a describe);
- Config has no record of that exact ARN (not recorded yet, not recorded at all), or its record does not read
  cleanly: described;
- otherwise it is PASS from Config's record (the same judge, host equivalents included), without a describe.

A Config failure (refused, throttled after retries, an unknown answer) before a revision is decided sends it, and
every later one, to the describe path; the reason is kept in `InventoryOutcome`, printed in the summary and the
sweep notice. Fail-closed: Config can only spare a describe, never turn an ERROR or a FAIL into a PASS.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..adapters.aws import BotoCoreError, ClientError, safe_error
from ..adapters.aws_errors import scrub
from ..core.config import Config
from ..core.policy import PASS, Judge
from ..core.taskdef import privileged_containers, tag_value
from .config_queries import RESOURCE_TYPE, ConfigInventory, ConfigRecord, ConfigSource, UnreadableAnswer, config_client
from .listing import SweepEcs, family_revision
from .rates import RateLimiter, SweepError
from .report import Finding, InventoryOutcome

logger = logging.getLogger(__name__)

DESCRIBE, CONFIG, AUTO = "describe", "config", "auto"
INVENTORIES = (DESCRIBE, CONFIG, AUTO)
_ACTIVE = "active"  # sweeper.ACTIVE (not imported: the Sweeper imports this module)

# One decision: (revision ARN, None) to describe it, or (ARN, its row) when Config's record judged it.
Decision = tuple[str, Finding | None]


def check_inventory(inventory: str, scope: str) -> None:
    if inventory not in INVENTORIES:
        raise SweepError(f"inventory: expected one of {', '.join(INVENTORIES)}, got {inventory!r}")
    if inventory == CONFIG and scope != _ACTIVE:
        raise SweepError("inventory config needs the active scope (latest scope describes one revision per family)")


def config_plan(
    inventory: str,
    scope: str,
    ecs: SweepEcs,
    judge: Judge,
    config: Config,
    *,
    source: ConfigSource | None,
    limiter: RateLimiter,
    max_attempts: int,
    make_client: Callable[[str | None], Any] | None = None,
) -> ConfigPlan | None:
    """The Config plan for one Region when the setting asks for it (config; auto in the active scope), else None."""
    check_inventory(inventory, scope)
    if inventory == DESCRIBE or scope != _ACTIVE:
        return None
    source = source or ConfigSource()
    region = source.aggregator_region or ecs.region  # an aggregator is asked in its own Region (the hub's)
    client = (make_client or (lambda r: config_client(r, max_attempts=max_attempts)))(region)
    limiter.attach(client)
    reader = ConfigInventory(client, source, ecs.region, ecs.model.output_shape)
    return ConfigPlan(reader, judge, config, ecs.region)


class ConfigPlan:
    """`decisions(listed)`: the ECS listing and Config's two queries read side by side (each in a thread of its own,
    so describes start while later pages are still coming), and a decision for each listed revision."""

    def __init__(self, inventory: ConfigInventory, judge: Judge, config: Config, region: str) -> None:
        self.inventory, self.judge, self.config = inventory, judge, config
        self.outcome = InventoryOutcome(region=region, source=inventory.source.describe())

    def decisions(self, listed: Iterable[str]) -> Iterator[Decision]:
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()
        readers = [
            threading.Thread(target=self._read_config, args=(events, stop), name="sweep-config", daemon=True),
            threading.Thread(target=_read_listing, args=(listed, events, stop), name="sweep-list", daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            yield from self._decide(events)
        finally:
            stop.set()

    def _read_config(self, events: queue.Queue[tuple[str, Any]], stop: threading.Event) -> None:
        """The privileged query first (complete before any PASS is decided), then the inventory, page by page."""
        try:
            events.put(("privileged", self.inventory.privileged_arns()))
            for page in self.inventory.record_pages():
                if stop.is_set():
                    return
                events.put(("records", page))
            events.put(("config-done", None))
        except (ClientError, BotoCoreError, UnreadableAnswer) as error:
            events.put(("config-failed", f"AWS Config failed ({_why(error)})"))
        except Exception as error:  # fail-closed: a bug here sends every revision to the describe path
            scrub(error)  # the traceback logged says our words, not the error's text
            logger.exception("reading AWS Config's records failed unexpectedly")
            events.put(("config-failed", f"AWS Config's answer could not be used ({type(error).__name__})"))

    def _decide(self, events: queue.Queue[tuple[str, Any]]) -> Iterator[Decision]:
        state = _State()
        listing_open, listing_error = True, None
        while state.config_open or listing_open:
            kind, value = events.get()
            if kind == "arn":
                yield from self._listed(state, value)
            elif kind == "privileged":
                state.privileged = value
                for arn in [arn for arn in state.pending if arn in value]:
                    del state.pending[arn]
                    self.outcome.privileged += 1
                    yield arn, None
            elif kind == "records":
                for record in value:
                    self.outcome.records += 1
                    state.records[record.arn] = self._verdict(record)
                    if record.arn in state.pending:
                        del state.pending[record.arn]
                        yield self._decide_one(record.arn, state.records[record.arn])
            elif kind in ("config-done", "config-failed"):
                state.config_open, state.failed = False, kind == "config-failed"
                if state.failed:
                    self.outcome.fallback = value
                    self.outcome.after_failure += len(state.pending)
                for arn in list(state.pending):
                    yield (arn, None) if state.failed else self._decide_one(arn, None)
                state.pending.clear()
            elif kind == "listing-done":
                listing_open = False
            elif kind == "listing-failed":
                listing_open, listing_error = False, value
        outcome = self.outcome
        if outcome.fallback is None and outcome.listed and outcome.unknown == outcome.listed:
            outcome.fallback = (
                f"Config has no record of any of the {outcome.listed} listed revision(s) (no recorder in this Region, "
                f"or it does not record {RESOURCE_TYPE}, or the aggregator does not cover this account)"
            )
        if listing_error is not None:
            raise listing_error

    def _listed(self, state: _State, arn: str) -> Iterator[Decision]:
        """A revision from the ECS listing: decided now when Config has spoken for it, else held until it has."""
        if arn in state.seen:
            return
        state.seen.add(arn)
        self.outcome.listed += 1
        if state.failed:
            self.outcome.after_failure += 1
            yield arn, None
        elif state.privileged is not None and arn in state.privileged:
            self.outcome.privileged += 1
            yield arn, None
        elif arn in state.records or not state.config_open:
            yield self._decide_one(arn, state.records.get(arn))
        else:
            state.pending[arn] = None

    def _verdict(self, record: ConfigRecord) -> _Verdict:
        """What Config's record of exactly `record.arn` says: a PASS row, or why a describe must decide. Computed when
        the record arrives, so only this (not the record) is kept until the listing reaches the revision."""
        if record.problem is not None:
            return _Verdict(UNREADABLE)
        if tag_value(record.tags, self.config.marker_tag_key) is not None:
            return _Verdict(MARKED)
        if privileged_containers(record.task_definition):
            return _Verdict(PRIVILEGED)  # a container the privileged query did not name: the describe decides
        try:  # not privileged: the judge reads no exemption source, only the record
            assessment = self.judge.assess(record.arn, record.task_definition, record.tags)
        except Exception as error:  # fail-closed: whatever the judge makes of the record, a describe decides
            scrub(error)
            logger.exception("judging Config's record of %s failed", record.arn)
            return _Verdict(UNREADABLE)
        if assessment.verdict != PASS or assessment.privileged:
            return _Verdict(PRIVILEGED)
        family, revision = family_revision(record.arn)
        row = Finding(
            record.arn,
            PASS,
            region=self.outcome.region,
            family=family,
            revision=revision,
            host_equivalents=assessment.host_equivalents,
            host_access=assessment.host_access,
        )
        return _Verdict(FROM_CONFIG, row)

    def _decide_one(self, arn: str, verdict: _Verdict | None) -> Decision:
        """The row Config's record vouches for, or None (describe), counted in the outcome."""
        reason = UNKNOWN if verdict is None else verdict.reason
        setattr(self.outcome, reason, getattr(self.outcome, reason) + 1)
        if verdict is None or verdict.row is None:
            return arn, None
        row, verdict.row = verdict.row, None  # each row is handed out once
        return arn, row


FROM_CONFIG, PRIVILEGED, MARKED, UNKNOWN, UNREADABLE = "from_config", "privileged", "marked", "unknown", "unreadable"


@dataclass
class _Verdict:
    reason: str  # an InventoryOutcome counter
    row: Finding | None = None  # the PASS row (FROM_CONFIG only)


@dataclass
class _State:
    """What the decisions know so far."""

    privileged: set[str] | None = None  # the privileged query's answer, once complete
    records: dict[str, _Verdict] = field(default_factory=dict)  # by ARN, from Config's records
    pending: dict[str, None] = field(default_factory=dict)  # listed, waiting for Config (in listing order)
    seen: set[str] = field(default_factory=set)
    config_open: bool = True
    failed: bool = False


def _read_listing(listed: Iterable[str], events: queue.Queue[tuple[str, Any]], stop: threading.Event) -> None:
    try:
        for arn in listed:
            if stop.is_set():
                return
            events.put(("arn", arn))
        events.put(("listing-done", None))
    except BaseException as error:  # noqa: BLE001 - re-raised by the consumer (the Sweeper's ERROR row)
        events.put(("listing-failed", error))


def _why(error: BaseException) -> str:
    return safe_error(error)
