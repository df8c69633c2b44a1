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
  attempt, a bounded thread pool keeps enough calls in flight to use it, and the bucket's rate drops if
  someone else in the account is spending the same bucket (sweep/rates.py; botocore's standard retries below it).

Judging uses `policy.assess` (the function's verdict); fixing goes through `Remediator.process`, so
exemptions, idempotency (shared with the function through IDEMPOTENCY_TABLE), the marker tag, the
"only the latest revision is copied" guard and notices are the same code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from ..adapters import aws
from ..adapters.aws import BotoCoreError, ClientError, safe_error
from ..adapters.exemption_registry import ExemptionRegistry
from ..adapters.ledger import DynamoLedger, Ledger
from ..core.config import Config
from ..core.exemptions.evaluate import ExemptionSource, RegistryUnavailable, StaticRegistry, UnreadableRegistry
from ..core.exemptions.records import ExemptionRecord
from ..core.policy import Judge
from ..remediation.remediator import Remediator
from ..remediation.rollout import ReferenceFinder
from . import daemons as daemon_sweep
from .config_queries import ConfigSource
from .inventory import AUTO, CONFIG, DESCRIBE, INVENTORIES, check_inventory, config_plan
from .listing import SweepEcs
from .rates import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RATES,
    RATE_ALIASES,
    CallStats,
    Rate,
    RateLimiter,
    SweepError,
    TokenBucket,
    ecs_client,
    parse_rates,
)
from .report import STATUSES, Finding, InventoryOutcome, Progress, SweepReport
from .sweeper import ACTIVE, LATEST, MAX_CONCURRENCY, SCOPES, Sweeper

MAX_PARALLEL_REGIONS = 4
# What a sweep judges (`ecs-remediate scan --kinds`): both by default.
TASK_DEFINITIONS, DAEMON_TASK_DEFINITIONS = "task-definitions", "daemon-task-definitions"
KINDS = (TASK_DEFINITIONS, DAEMON_TASK_DEFINITIONS)


def build_remediator(
    config: Config,
    ecs: SweepEcs,
    persistence: BasePersistenceLayer | None = None,
    registry: ExemptionSource | None = None,
    *,
    references: ReferenceFinder | None = None,
    topic: aws.Topic | None = None,
) -> Remediator:
    """The function's Remediator on the sweep's rate-limited ECS adapter, with the shared idempotency table
    (IDEMPOTENCY_TABLE, which also holds the stack's ledger of copies), the notice topic (TOPIC_ARN) when
    configured, the exemption registry and, with retire, the lookup of schedules that name a revision.
    `references` and `topic` replace the caller's own (a member account's lookups, the hub's topic for it)."""
    if persistence is None and config.idempotency_table:
        persistence = DynamoDBPersistenceLayer(table_name=config.idempotency_table, boto3_client=aws.client("dynamodb"))
    if topic is None and config.topic_arn:
        parts = config.topic_arn.split(":")
        region = parts[3] if len(parts) > 3 and parts[3] else None
        topic = aws.Topic(aws.client("sns", region), config.topic_arn)
    if references is None and config.retire:
        from ..remediation.references import References  # noqa: PLC0415 - only retiring sweeps need it

        references = References(aws.client("events", ecs.region), aws.client("scheduler", ecs.region))
    return Remediator(config, ecs, topic, persistence, registry=registry, references=references, recorded_by="sweep")


def _approvals(ledger: Ledger | None) -> Callable[[str], ExemptionRecord | None] | None:
    return ledger.tag_approval if ledger is not None else None


def exemption_snapshot(config: Config) -> ExemptionSource | None:
    """The registry read once for the whole sweep (EXEMPTIONS_TABLE); unreadable: every privileged row is ERROR."""
    if not config.exemptions_table:
        return None
    try:
        return ExemptionRegistry(aws.client("dynamodb"), config.exemptions_table).snapshot()
    except (RegistryUnavailable, ClientError, BotoCoreError) as error:
        return UnreadableRegistry(f"the exemption registry could not be read: {safe_error(error)}")


def too_broad(registry: ExemptionSource | None) -> list[str]:
    """The registry's image-digest items of earlier versions (a snapshot's; [] when it could not be read)."""
    return registry.too_broad if isinstance(registry, StaticRegistry) else []


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
    scope: str = ACTIVE,
    remediate: bool = False,
    rates: Mapping[str, Rate] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    progress: Progress | None = None,
    make_client: Callable[[str | None], Any] | None = None,
    persistence: BasePersistenceLayer | None = None,
    lambda_context: Any = None,
    inventory: str = DESCRIBE,
    config_source: ConfigSource | None = None,
    make_config_client: Callable[[str | None], Any] | None = None,
    kinds: Sequence[str] = KINDS,
    stop: threading.Event | None = None,
) -> SweepReport:
    """Sweep each Region (in parallel: ECS throttles each Region separately). `remediate` registers fixed
    copies through the Remediator (the Config's mode is set to remediate); otherwise nothing is written
    and no notice is sent. `inventory` config (or auto, in the active scope) judges from AWS Config's records
    where they vouch for a revision and describes the rest (sweep/inventory.py). `kinds`: task definitions, daemon
    task definitions or both. `stop`, once set, starts nothing new (what is under way finishes and is in the report,
    marked interrupted)."""
    check_settings(scope=scope, concurrency=concurrency, max_attempts=max_attempts, inventory=inventory, kinds=kinds)
    if remediate and config.mode != "remediate":
        config = replace(config, mode="remediate")
    started = time.monotonic()
    stats = CallStats()
    registry = exemption_snapshot(config)
    # Proofs of provenance for a read-only sweep: the stack's ledger when its table is named.
    ledger = DynamoLedger(aws.client("dynamodb"), config.idempotency_table) if config.idempotency_table else None

    outcomes: list[InventoryOutcome] = []
    stop = stop or threading.Event()

    def one_region(region: str | None) -> UnitReport:
        client = (make_client or (lambda r: ecs_client(r, max_attempts=max_attempts, pool=concurrency)))(region)
        if stop.is_set():  # interrupted before this Region started: no rows, and the report says it was interrupted
            return UnitReport("", client.meta.region_name, [], CallStats(), 0.0)
        unit = sweep_unit(
            client,
            config,
            scope=scope,
            remediate=remediate,
            rates=rates,
            concurrency=concurrency,
            progress=progress,
            persistence=persistence,
            registry=registry,
            ledger=ledger,
            lambda_context=lambda_context,
            inventory=inventory,
            config_source=config_source,
            max_attempts=max_attempts,
            make_config_client=make_config_client,
            kinds=kinds,
            stop=stop,
        )
        stats.merge(unit.stats)
        if unit.inventory is not None:
            outcomes.append(unit.inventory)
        return unit

    if len(regions) == 1:
        results = [one_region(regions[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_REGIONS, len(regions))) as pool:
            results = list(pool.map(one_region, regions))
    report = SweepReport(
        scope=scope,
        regions=[unit.region for unit in results],
        findings=[finding for unit in results for finding in unit.findings],
        stats=stats,
        seconds=time.monotonic() - started,
        remediate=remediate,
        family_globs=list(config.exempt_families),
        too_broad=too_broad(registry),
        inventory=sorted(outcomes, key=lambda outcome: outcome.region),
        kinds=list(kinds),
        interrupted=stop.is_set(),
    )
    for unit in results:
        report.add_unit(unit.account, unit.region, swept=unit.swept, daemon_api_absent=unit.daemon_api_absent)
    return report


def check_settings(
    *, scope: str, concurrency: int, max_attempts: int, inventory: str = DESCRIBE, kinds: Sequence[str] = KINDS
) -> None:
    """SweepError for a setting no sweep accepts (before anything is asked of AWS)."""
    if scope not in SCOPES:
        raise SweepError(f"scope: expected one of {', '.join(SCOPES)}, got {scope!r}")
    if not 1 <= max_attempts <= 20:
        raise SweepError(f"max attempts: expected 1-20, got {max_attempts}")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise SweepError(f"concurrency: expected 1-{MAX_CONCURRENCY}, got {concurrency}")
    check_kinds(kinds)
    check_inventory(inventory, scope)


def check_kinds(kinds: Sequence[str]) -> None:
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise SweepError(f"kinds: expected one or more of {', '.join(KINDS)}, got {', '.join(unknown) or 'none'}")


@dataclass
class UnitReport:
    """One account and Region swept: its rows (each naming the account when one was given), calls and time."""

    account: str
    region: str
    findings: list[Finding]
    stats: CallStats
    seconds: float
    inventory: InventoryOutcome | None = None  # what AWS Config answered, when it was asked
    swept: bool = True  # False: no listing of any kind completed there (nothing was judged)
    daemon_api_absent: str | None = None  # why there was nothing to sweep of daemon task definitions


def sweep_unit(
    ecs_client: Any,
    config: Config,
    *,
    account: str = "",
    scope: str = ACTIVE,
    remediate: bool = False,
    rates: Mapping[str, Rate] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Progress | None = None,
    persistence: BasePersistenceLayer | None = None,
    registry: ExemptionSource | None = None,
    ledger: Ledger | None = None,
    references: ReferenceFinder | None = None,
    topic: aws.Topic | None = None,
    lambda_context: Any = None,
    inventory: str = DESCRIBE,
    config_source: ConfigSource | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    make_config_client: Callable[[str | None], Any] | None = None,
    kinds: Sequence[str] = KINDS,
    stop: threading.Event | None = None,
) -> UnitReport:
    """Sweep one account and Region through `ecs_client`: a client of its own (this attaches the rate limiter to
    it, at `rates`: each account and Region has its own ECS buckets) acting in that account and Region, e.g.
    `ecs_client(region)` for the caller's own account or `MemberAccounts.new_client("ecs", account, region,
    ecs_client_config())` for a member. `registry` and `ledger` are read once for a whole sweep (shared by its
    units); with `remediate`, fixes go through `build_remediator` (`references`, `topic`: see there); `inventory`
    config or auto asks AWS Config first (sweep/inventory.py). The rows name `account` when given ("" leaves them
    as a single-account sweep's). `kinds` and `stop`: see `sweep`."""
    check_kinds(kinds)
    started = time.monotonic()
    limiter = RateLimiter(rates)
    limiter.attach(ecs_client)
    ecs = SweepEcs(ecs_client)
    remediator = (
        build_remediator(config, ecs, persistence, registry, references=references, topic=topic) if remediate else None
    )
    if remediator is not None and lambda_context is not None:
        remediator.register_lambda_context(lambda_context)
    findings: list[Finding] = []
    listings = failures = 0
    plan = None
    judge: Judge = remediator.judge if remediator is not None else Judge(config, registry, _approvals(ledger))
    proofs: Ledger | None = remediator.ledger if remediator is not None else ledger
    if TASK_DEFINITIONS in kinds:
        plan = config_plan(
            inventory,
            scope,
            ecs,
            judge,
            config,
            source=config_source,
            limiter=limiter,
            max_attempts=max_attempts,
            make_client=make_config_client,
        )
        sweeper = Sweeper(
            ecs,
            config,
            scope=scope,
            remediator=remediator,
            concurrency=concurrency,
            progress=progress,
            judge=judge,
            ledger=proofs,
            plan=plan,
            stop=stop,
        )
        findings += sweeper.run()
        judge, proofs = sweeper.judge, sweeper.ledger
        listings, failures = listings + 1, failures + sweeper.listing_failed
    absent = None
    if DAEMON_TASK_DEFINITIONS in kinds and not (stop is not None and stop.is_set()):
        # ECS Managed Daemons: the account-Region's daemon task definitions, the same way (sweep/daemons.py)
        daemons = daemon_sweep.sweep_region(
            ecs_client,
            config,
            scope=scope,
            remediate=remediate,
            judge=judge,
            ledger=proofs,
            concurrency=concurrency,
            progress=progress,
            persistence=persistence,
            registry=registry,
            lambda_context=lambda_context,
            topic=topic,
            stop=stop,
        )
        findings += daemons.findings
        absent = daemons.absent
        if absent is None:
            listings, failures = listings + 1, failures + daemons.listing_failed
    if account:
        for finding in findings:
            finding.account = account
    outcome = plan.outcome if plan is not None else None
    swept = listings == 0 or failures < listings
    return UnitReport(
        account,
        ecs.region,
        findings,
        limiter.stats,
        time.monotonic() - started,
        outcome,
        swept=swept,
        daemon_api_absent=absent,
    )


__all__ = [
    "ACTIVE",
    "AUTO",
    "CONFIG",
    "DAEMON_TASK_DEFINITIONS",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_RATES",
    "DESCRIBE",
    "INVENTORIES",
    "KINDS",
    "LATEST",
    "RATE_ALIASES",
    "SCOPES",
    "STATUSES",
    "TASK_DEFINITIONS",
    "CallStats",
    "ConfigSource",
    "Finding",
    "Progress",
    "Rate",
    "RateLimiter",
    "SweepEcs",
    "SweepError",
    "SweepReport",
    "Sweeper",
    "TokenBucket",
    "UnitReport",
    "build_remediator",
    "check_inventory",
    "check_kinds",
    "check_settings",
    "ecs_client",
    "enabled_regions",
    "parse_rates",
    "sweep",
]
