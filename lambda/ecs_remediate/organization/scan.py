"""The sweep of an organization's member accounts from the hub (`ecs-remediate scan --accounts`), as an operator.

Each (account, Region) is one `sweep.sweep_unit`, through that account's member role (accounts.MemberAccounts: one
AssumeRole per account per credential lifetime, regional STS, the credentials' account checked) and at its own rate
floor: ECS's buckets are per account and Region, so the units run in parallel and the sweep takes about as long as
the slowest one, not the sum. One report, every row naming its account and Region. An account whose member role
cannot be assumed is an ERROR row for each of its Regions, never a silent skip (fail-closed, as everywhere).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from ..adapters import aws
from ..adapters.aws_errors import scrub
from ..adapters.ledger import DynamoLedger
from ..core.config import Config
from ..core.policy import ERROR
from ..sweep.rates import DEFAULT_CONCURRENCY, DEFAULT_MAX_ATTEMPTS, CallStats, Rate, SweepError, ecs_client_config
from ..sweep.report import Finding, Progress, SweepReport
from ..sweep.run import KINDS, UnitReport, check_kinds, exemption_snapshot, sweep_unit, too_broad
from ..sweep.sweeper import ACTIVE
from .account_names import AccountNames
from .member_accounts import MemberAccessError, MemberAccounts, MemberRoleUnavailable
from .notice import AccountTopic

logger = logging.getLogger(__name__)

# Units swept at once. Each has `concurrency` calls in flight against its own account's buckets; 32 units of 16
# threads keep a laptop responsive. More accounts than this take a few rounds.
MAX_PARALLEL_UNITS = 32


def sweep_accounts(
    accounts: Sequence[str],
    regions: Sequence[str],
    config: Config,
    members: MemberAccounts,
    *,
    names: AccountNames | None = None,
    scope: str = ACTIVE,
    remediate: bool = False,
    rates: Mapping[str, Rate] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    progress: Progress | None = None,
    persistence: BasePersistenceLayer | None = None,
    max_parallel: int = MAX_PARALLEL_UNITS,
    kinds: Sequence[str] = KINDS,
    stop: threading.Event | None = None,
) -> SweepReport:
    """Sweep every Region of every account through its member role, in parallel. `remediate` fixes as the hub's
    function would (the caller's table, registry and topic; each account's member role trusted as its registrant);
    otherwise nothing is written and no notice sent. `kinds` and `stop`: as sweep.sweep."""
    if not 1 <= max_attempts <= 20:
        raise SweepError(f"max attempts: expected 1-20, got {max_attempts}")
    check_kinds(kinds)
    stop = stop or threading.Event()
    if not accounts or not regions:
        raise SweepError("an organization sweep needs at least one account and one Region")
    if remediate and config.mode != "remediate":
        config = replace(config, mode="remediate")
    started = time.monotonic()
    registry = exemption_snapshot(config)  # read once for every account
    ledger = DynamoLedger(aws.client("dynamodb"), config.idempotency_table) if config.idempotency_table else None
    client_config = ecs_client_config(max_attempts=max_attempts, pool=concurrency)
    sns = _topic_client(config) if remediate else None

    def one(unit: tuple[str, str]) -> UnitReport:
        account, region = unit
        if stop.is_set():  # interrupted before this unit started
            return UnitReport(account, region, [], CallStats(), 0.0)
        try:
            ecs = members.new_client("ecs", account, region, client_config)
            references = None
            if remediate and config.retire:
                from ..remediation.references import References  # noqa: PLC0415 - only retiring sweeps need it

                references = References(
                    members.new_client("events", account, region), members.new_client("scheduler", account, region)
                )
            topic = None
            if sns is not None and config.topic_arn:
                name_of = names.name if names is not None else (lambda _: "")
                topic = AccountTopic(sns, config.topic_arn, account=account, region=region, name_of=name_of)
            swept = sweep_unit(
                ecs,
                # The copies this sweep registers there are registered by that account's member role.
                replace(config, trusted_principals=(members.role_arn(account), *config.trusted_principals)),
                account=account,
                scope=scope,
                remediate=remediate,
                rates=rates,
                concurrency=concurrency,
                progress=progress,
                persistence=persistence,
                registry=registry,
                ledger=ledger,
                references=references,
                topic=topic,
                kinds=kinds,
                stop=stop,
            )
        except MemberAccessError as error:  # before the first call, or credentials that could not be renewed
            row = unreachable(account, region, str(error), error, members.partition)
            return UnitReport(account, region, [row], CallStats(), 0.0, swept=False)
        except Exception as error:  # fail-closed: one unit's failure is its ERROR row, the others go on
            text = scrub(error)  # the traceback logged says our words, not the error's text
            logger.exception("sweeping %s %s failed unexpectedly", account, region)
            row = unreachable(account, region, text, error, members.partition)
            return UnitReport(account, region, [row], CallStats(), 0.0, swept=False)
        return swept

    units = [(account, region) for account in dict.fromkeys(accounts) for region in dict.fromkeys(regions)]
    stats = CallStats()
    findings: list[Finding] = []
    swept_units: list[UnitReport] = []
    with ThreadPoolExecutor(max_workers=min(max_parallel, len(units)), thread_name_prefix="account") as pool:
        for result in pool.map(one, units):
            findings += result.findings
            stats.merge(result.stats)
            swept_units.append(result)
    report = SweepReport(
        scope=scope,
        regions=list(dict.fromkeys(regions)),
        findings=findings,
        stats=stats,
        seconds=time.monotonic() - started,
        remediate=remediate,
        family_globs=list(config.exempt_families),
        too_broad=too_broad(registry),
        accounts=list(dict.fromkeys(accounts)),
        kinds=list(kinds),
        interrupted=stop.is_set(),
    )
    for result in swept_units:
        report.add_unit(result.account, result.region, swept=result.swept, daemon_api_absent=result.daemon_api_absent)
    return report


def unreachable(account: str, region: str, text: str, error: BaseException, partition: str = "aws") -> Finding:
    """The ERROR row of a Region of an account that could not be swept: nothing there was judged."""
    kind = "deploy or fix the member role there" if isinstance(error, MemberRoleUnavailable) else "sweep again"
    return Finding(
        f"arn:{partition}:ecs:{region}:{account}:task-definition/*",
        ERROR,
        error=f"not swept: {text} ({kind})"[:1000],
        region=region,
        family="~",  # sorts last, as a listing that failed
        account=account,
    )


def _topic_client(config: Config) -> Any:
    if not config.topic_arn:
        return None
    parts = config.topic_arn.split(":")
    return aws.client("sns", parts[3] if len(parts) > 3 and parts[3] else None)


__all__ = ["MAX_PARALLEL_UNITS", "sweep_accounts", "unreachable"]
