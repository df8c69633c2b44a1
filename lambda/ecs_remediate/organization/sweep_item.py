"""One item of the organization sweep's Distributed Map: one account and Region swept through its member role.

`sweep_item` assumes the account's member role (accounts.MemberAccounts: the credentials' account is checked), runs
`sweep.sweep_unit` there at the account's own rate floor (ECS's buckets are per account and Region) and writes the
rows to the report bucket at `runs/<run>/items/<account>-<region>.json`. It returns only counts and that key:
Step Functions caps a state's payload at 256 KiB, and an account can have thousands of revisions.

Fail-closed, as everywhere: a member role that cannot be assumed raises (MemberRoleUnavailable, permanent, or
MemberAccessTransient, retried by the state machine), and so does a listing that failed (ItemIncomplete: a retry
lists again). After the retries the state machine's Catch hands the error to `record_error`, which writes that
item's ERROR row in the same place. A failed item is never missing and never PASS.

A row the member's answers place in another account or Region (an ARN that names one) is not trusted: it becomes
an ERROR row of this item, and nothing of the other account is reported or touched.

With `forwarding_queue` (the hub's FORWARDING_QUEUE_NAME), the item then reads the member's forwarding dead-letter
queue there and, when the sweep judged every ACTIVE revision (active scope, no ERROR row), drains what it covered
(organization/forwarding_queue.py); the queue's state is the item's `forwarding` field, in its object and in what the
map keeps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from ..adapters.ledger import Ledger
from ..core.config import Config
from ..core.exemptions.evaluate import ExemptionSource
from ..core.policy import ERROR
from ..sweep.rates import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RATES,
    LIST_FAMILIES,
    LIST_REVISIONS,
    Rate,
    ecs_client_config,
)
from ..sweep.report import STATUSES, Finding
from ..sweep.run import sweep_unit
from ..sweep.sweeper import ACTIVE
from .forwarding_queue import DRAIN_MARGIN, inspect
from .member_accounts import MemberAccounts
from .sweep_items import Item, check_run, item_key, parse_item

# A task definition's or a daemon task definition's ARN (the item sweeps both kinds).
_ARN = re.compile(r"^arn:[a-z-]+:ecs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}|\*):(?:daemon-)?task-definition/")
ERROR_TEXT_LIMIT = 1000
LISTINGS = (LIST_REVISIONS, LIST_FAMILIES)  # the sweeper's row for a listing that failed starts with its operation


class ItemIncomplete(Exception):
    """The account's task definitions could not be listed to the end (after botocore's retries): sweep it again."""


def row(finding: Finding, item: Item) -> dict[str, Any]:
    """The compact row of the report: where, which revision, the verdict and what was done."""
    return {
        "account": item.account,
        "region": item.region,
        "taskDefinitionArn": finding.task_definition_arn,
        "status": finding.status,
        "privilegedContainers": list(finding.privileged_containers),
        "action": finding.action,
        "newTaskDefinitionArn": finding.new_task_definition_arn,
        "error": finding.error,
        "hostEquivalents": list(finding.host_equivalents),
        "hostAccess": list(finding.host_access),
    }


def counts_of(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for entry in rows:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return counts


def _is_own(arn: str, item: Item) -> bool:
    match = _ARN.match(arn)
    return match is not None and match["region"] == item.region and match["account"] in (item.account, "*")


def _foreign(item: Item, arn: str, what: str) -> Finding:
    return Finding(
        f"arn:aws:ecs:{item.region}:{item.account}:task-definition/*",
        ERROR,
        error=f"the member's {what} names a revision outside {item.account} {item.region}: {arn[:200]!r}; "
        "not described, judged or reported as swept",
        region=item.region,
        family="~",
        account=item.account,
    )


def _own(finding: Finding, item: Item) -> Finding:
    """The finding, or an ERROR row when an ARN in it names another account or Region than the item's."""
    for arn in (finding.task_definition_arn, finding.new_task_definition_arn):
        if arn is not None and not _is_own(arn, item):
            return _foreign(item, arn, "answer")
    return finding


class ForeignListings:
    """An after-call hook on the item's ECS client: a listed revision ARN of another account or Region is taken out
    of the answer before anything describes it, and remembered (each becomes an ERROR row of this item)."""

    def __init__(self, item: Item) -> None:
        self.item = item
        self.found: list[str] = []

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        arns = parsed.get("taskDefinitionArns")
        if isinstance(arns, list):
            foreign = [arn for arn in arns if not (isinstance(arn, str) and _is_own(arn, self.item))]
            self.found += [str(arn) for arn in foreign]
            parsed["taskDefinitionArns"] = [arn for arn in arns if arn not in foreign]


def write_rows(s3: Any, bucket: str, item: Item, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """The item's rows at its key; returns what the map keeps of it (counts and the key, never the rows)."""
    counts = counts_of(rows)
    body = {"account": item.account, "region": item.region, "run": item.run, "counts": counts, "rows": rows, **extra}
    s3.put_object(
        Bucket=bucket,
        Key=item.key,
        Body=json.dumps(body, separators=(",", ":")).encode(),
        ContentType="application/json",
    )
    return {"account": item.account, "region": item.region, "key": item.key, "counts": counts, **extra}


def sweep_item(
    event: Any,
    config: Config,
    members: MemberAccounts,
    s3: Any,
    bucket: str,
    *,
    scope: str = ACTIVE,
    rates: Mapping[str, Rate] | None = None,
    persistence: BasePersistenceLayer | None = None,
    registry: ExemptionSource | None = None,
    ledger: Ledger | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    lambda_context: Any = None,
    forwarding_queue: str | None = None,
) -> dict[str, Any]:
    """Sweep the item's account and Region (remediating when the hub's MODE is remediate), write its rows, return
    {"account", "region", "key", "counts", "remediated", "calls", "seconds"[, "forwarding"]}. Raises BadItem,
    MemberAccessError, ItemIncomplete."""
    item = parse_item(event)
    started = datetime.now(UTC)
    ecs = members.new_client(
        "ecs", item.account, item.region, ecs_client_config(max_attempts=max_attempts, pool=concurrency)
    )
    foreign = ForeignListings(item)
    ecs.meta.events.register("after-call.ecs.ListTaskDefinitions", foreign)
    references = None
    remediate = config.mode == "remediate"
    if remediate and config.retire:
        from ..remediation.references import References  # noqa: PLC0415 - only retiring sweeps need it

        references = References(
            members.new_client("events", item.account, item.region),
            members.new_client("scheduler", item.account, item.region),
        )
    unit = sweep_unit(
        ecs,
        # The copies registered there are the member role's; per-revision notices are off: the run sends one
        # summary for the whole organization, and the report lists every revision fixed.
        replace(
            config, trusted_principals=(members.role_arn(item.account), *config.trusted_principals), topic_arn=None
        ),
        account=item.account,
        scope=scope,
        remediate=remediate,
        rates=rates if rates is not None else DEFAULT_RATES,
        concurrency=concurrency,
        persistence=persistence,
        registry=registry,
        ledger=ledger,
        references=references,
        lambda_context=lambda_context,
        max_attempts=max_attempts,
    )
    listing_failed = [f for f in unit.findings if f.status == ERROR and (f.error or "").startswith(LISTINGS)]
    if listing_failed:
        raise ItemIncomplete(f"{item.account} {item.region}: {listing_failed[0].error}"[:ERROR_TEXT_LIMIT])
    rows = [row(_own(finding, item), item) for finding in unit.findings]
    rows += [row(_foreign(item, arn, "listing"), item) for arn in foreign.found]
    remediated = sum(1 for finding in unit.findings if finding.remediated)
    extra: dict[str, Any] = {}
    if forwarding_queue:
        judged_all = scope == ACTIVE and not any(entry["status"] == ERROR for entry in rows)
        state = inspect(
            members.client("sqs", item.account, item.region),
            item.account,
            forwarding_queue,
            judged_before=started - DRAIN_MARGIN if judged_all else None,
        )
        extra["forwarding"] = state.to_json()
    return write_rows(
        s3, bucket, item, rows, remediated=remediated, calls=unit.stats.calls, seconds=round(unit.seconds, 2), **extra
    )


def error_text(error: Any, cause: Any) -> str:
    """One line from the state machine's Catch (Error, Cause): Lambda's {"errorType", "errorMessage"} without its
    stack trace (never in a report), or the Step Functions error as given."""
    text = str(cause or "")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and ("errorMessage" in parsed or "errorType" in parsed):
        text = f"{parsed.get('errorType') or error}: {parsed.get('errorMessage', '')}"
    elif error and not text.startswith(str(error)):
        text = f"{error}: {text}" if text else str(error)
    return " ".join(text.split())[:ERROR_TEXT_LIMIT] or "the item failed without a cause"


def record_error(event: Any, s3: Any, bucket: str, partition: str = "aws") -> dict[str, Any]:
    """The Catch's path: the item's ERROR row (one per account and Region, with the error text) at its key. An
    item too broken to name its account and Region cannot be written here; the summary reports it from the
    items file, which is the authority on what should have been swept."""
    item = parse_item(event)
    text = error_text(event.get("error"), event.get("cause"))
    role_missing = str(event.get("error")) in ("MemberRoleUnavailable", "CredentialsAccountMismatch")
    hint = "deploy or fix the member role there" if role_missing else "sweep again"
    finding = Finding(
        f"arn:{partition}:ecs:{item.region}:{item.account}:task-definition/*",
        ERROR,
        error=f"not swept: {text} ({hint})"[:ERROR_TEXT_LIMIT],
        region=item.region,
        family="~",
        account=item.account,
    )
    return write_rows(s3, bucket, item, [row(finding, item)], remediated=0, calls=0, seconds=0)


__all__ = ["ItemIncomplete", "check_run", "counts_of", "error_text", "item_key", "record_error", "sweep_item"]
