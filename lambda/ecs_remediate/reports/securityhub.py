"""Security Hub (opt-in): one ASFF finding per verdict, imported under the account's default product.

What Security Hub does with an import (AWS's documentation, checked here):
- BatchImportFindings takes at most 100 findings per call (240 KB each, 6 MB a call) at 10 calls per second
  per account and Region (burst 30); a finding it refuses comes back in `FailedFindings`.
- A finding with the same `Id` and `ProductArn` is updated, not added: the `Id` is stable (reports/rows.py).
- After a finding exists, BatchImportFindings no longer changes its `Workflow` or `Note`; only
  BatchUpdateFindings does. So a new finding gets its workflow in the import, and an existing one whose
  workflow must change (RESOLVED once remediated, retired or compliant; SUPPRESSED with the exemption's reason
  and expiry; NEW again when an exemption ran out) is moved with BatchUpdateFindings. Security Hub itself
  reopens a RESOLVED finding whose compliance leaves PASSED, but never a SUPPRESSED one.
- Findings of revisions a complete sweep no longer sees (deleted, deregistered, or no longer a family's latest
  in latest scope) are archived (RecordState ARCHIVED), as Prowler does with findings its run did not produce.

Throttling and refused findings are transient: botocore's standard retries handle the former per call, and
refused findings are sent again with backoff; whatever is still refused after the last attempt raises
SecurityHubImportFailed (never a silent partial import).

IAM (infra/security_hub.py): securityhub:BatchImportFindings on the default product ARN; BatchUpdateFindings
and GetFindings on the account's hub (`hub/default`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore import xform_name

from ..adapters.aws_errors import safe_failure
from ..core.outcomes import Result
from . import asff
from .rows import GENERATOR, NEW, RESOLVED, SUPPRESSED, Row, rows_from_report

logger = logging.getLogger(__name__)

BATCH = 100  # BatchImportFindings and BatchUpdateFindings take at most 100 findings a call
PAGE = 100  # GetFindings MaxResults
# Calls per second and burst, per account and Region. BatchImportFindings: documented (10/s, burst 30).
# GetFindings and BatchUpdateFindings: kept at 3/s and 5/s, below what Security Hub's quotas page states.
RATES: dict[str, tuple[float, int]] = {
    "BatchImportFindings": (10.0, 30),
    "BatchUpdateFindings": (5.0, 10),
    "GetFindings": (3.0, 6),
}
DEFAULT_ATTEMPTS = 5  # rounds of sending what Security Hub refused, the first included
UPDATED_BY = asff.UPDATED_BY


class SecurityHubImportFailed(Exception):
    """Findings Security Hub still refused after every attempt; `summary` says which and why."""

    def __init__(self, summary: ImportSummary) -> None:
        failed = summary.failed
        first = ": ".join(str(failed[0].get(key)) for key in ("Id", "ErrorCode", "ErrorMessage")) if failed else ""
        super().__init__(f"Security Hub refused {len(failed)} finding(s) after retries (first: {first})")
        self.summary = summary


@dataclass
class ImportSummary:
    imported: int = 0  # findings BatchImportFindings accepted (new or updated)
    archived: int = 0  # findings a complete sweep no longer produced, archived
    workflow_updates: dict[str, int] = field(default_factory=dict)  # status -> findings moved there
    failed: list[dict[str, str]] = field(default_factory=list)  # {"Id", "ErrorCode", "ErrorMessage"}
    calls: dict[str, int] = field(default_factory=dict)

    def merge(self, other: ImportSummary) -> None:
        self.imported += other.imported
        self.archived += other.archived
        self.failed += other.failed
        for mine, theirs in ((self.workflow_updates, other.workflow_updates), (self.calls, other.calls)):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count


class _Pacer:
    """A token bucket per operation: calls leave at the API's documented rate, never in a burst above it."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._clock, self._sleep = clock, sleep
        self._tokens = {op: float(burst) for op, (_, burst) in RATES.items()}
        self._updated = {op: clock() for op in RATES}
        self._lock = threading.Lock()

    def wait(self, operation: str) -> None:
        rate, burst = RATES[operation]
        with self._lock:
            now = self._clock()
            tokens = min(float(burst), self._tokens[operation] + (now - self._updated[operation]) * rate)
            self._updated[operation] = now
            self._tokens[operation] = tokens - 1.0
            wait = (1.0 - tokens) / rate if tokens < 1.0 else 0.0
        if wait > 0:
            self._sleep(wait)


class SecurityHubExporter:
    """Imports the findings of one account and Region through a Security Hub client of that Region."""

    def __init__(
        self,
        client: Any,
        *,
        account: str,
        region: str,
        partition: str = "aws",
        max_attempts: int = DEFAULT_ATTEMPTS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client, self.account, self.region = client, account, region
        self.product_arn = asff.product_arn(region, account, partition)
        self.max_attempts, self._now, self._sleep = max_attempts, now, sleep
        self._pacer = _Pacer(clock, sleep)

    def export(self, rows: Sequence[Row], *, complete: bool = False) -> ImportSummary:
        """Import one finding per row, move workflows where Security Hub will not, and (when `complete`: a
        sweep that listed the whole Region) archive this product's findings the rows no longer include."""
        summary = ImportSummary()
        ids = {row.uid if row.account else _with_account(row.uid, self.account) for row in rows}
        existing = self._existing(summary, ids=None if complete else ids)
        now = self._now()
        findings, workflows = [], []
        for row in rows:
            current = existing.get(row.uid if row.account else _with_account(row.uid, self.account))
            finding = asff.finding(
                row,
                now=now,
                account=self.account,
                created_at=current.get("CreatedAt") if current else None,
                first_observed_at=current.get("FirstObservedAt") if current else None,
            )
            if current is not None:
                # An update: Security Hub keeps the finding's workflow and note; say so explicitly.
                finding.pop("Workflow", None)
                finding.pop("Note", None)
                change = _workflow_change(row, current)
                if change is not None:
                    workflows.append((finding["Id"], change))
            findings.append(finding)
        if complete:
            errored = {row.family for row in rows if row.status == "ERROR"}
            findings += [
                self._archived(finding, now)
                for finding_id, finding in existing.items()
                if finding_id not in ids and finding.get("RecordState") == "ACTIVE" and _family(finding) not in errored
            ]
            summary.archived = len(findings) - len(rows)
        self._import(findings, summary)
        self._move_workflows(workflows, summary)
        return summary

    def _existing(self, summary: ImportSummary, ids: set[str] | None) -> dict[str, dict[str, Any]]:
        """This product's findings in this account and Region (or only `ids`), by Id. The filters are checked
        again here: an emulator may not apply them."""
        filters: dict[str, list[dict[str, str]]] = {
            "ProductArn": [{"Value": self.product_arn, "Comparison": "EQUALS"}],
            "GeneratorId": [{"Value": GENERATOR, "Comparison": "EQUALS"}],
            "AwsAccountId": [{"Value": self.account, "Comparison": "EQUALS"}],
            "Region": [{"Value": self.region, "Comparison": "EQUALS"}],
        }
        if ids is not None:
            if not ids:
                return {}
            if len(ids) <= 20:  # a few findings (one result): ask for those only
                filters["Id"] = [{"Value": finding_id, "Comparison": "EQUALS"} for finding_id in sorted(ids)]
        found: dict[str, dict[str, Any]] = {}
        token: str | None = None
        while True:
            request: dict[str, Any] = {"Filters": filters, "MaxResults": PAGE}
            if token:
                request["NextToken"] = token
            response = self._call("GetFindings", summary, **request)
            for item in response.get("Findings", []):
                if (
                    item.get("ProductArn") == self.product_arn
                    and item.get("GeneratorId") == GENERATOR
                    and item.get("AwsAccountId") == self.account
                    and item.get("Region", self.region) == self.region
                    and (ids is None or item.get("Id") in ids)
                ):
                    found[str(item["Id"])] = item
            token = response.get("NextToken")
            if not token:
                return found

    def _archived(self, finding: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """The stored finding, archived: only what BatchImportFindings accepts, with a new UpdatedAt."""
        importable = self.client.meta.service_model.operation_model("BatchImportFindings").input_shape
        keep = importable.members["Findings"].member.members  # what the request takes, from the SDK's model
        archived = {key: value for key, value in finding.items() if key in keep}
        archived.pop("Workflow", None)
        archived.pop("Note", None)
        archived["RecordState"] = "ARCHIVED"
        archived["UpdatedAt"] = asff.timestamp(now)
        return archived

    def _import(self, findings: list[dict[str, Any]], summary: ImportSummary) -> None:
        pending = findings
        for attempt in range(1, self.max_attempts + 1):
            refused: list[dict[str, Any]] = []
            errors: list[dict[str, str]] = []
            for start in range(0, len(pending), BATCH):
                batch = pending[start : start + BATCH]
                response = self._call("BatchImportFindings", summary, Findings=batch)
                summary.imported += int(response.get("SuccessCount", 0))
                failed = {str(item.get("Id")): item for item in response.get("FailedFindings", [])}
                refused += [f for f in batch if f["Id"] in failed]
                errors += [_failure(item, "BatchImportFindings") for item in failed.values()]
            if not refused:
                return
            if attempt == self.max_attempts:
                summary.failed += errors
                return
            logger.warning("Security Hub refused %d finding(s); sending them again (attempt %d)", len(refused), attempt)
            self._backoff(attempt)
            pending = refused

    def _move_workflows(self, changes: list[tuple[str, tuple[str, str]]], summary: ImportSummary) -> None:
        """BatchUpdateFindings, grouped by (status, note): up to 100 findings a call."""
        groups: dict[tuple[str, str], list[str]] = {}
        for finding_id, change in changes:
            groups.setdefault(change, []).append(finding_id)
        for (status, note), finding_ids in groups.items():
            for start in range(0, len(finding_ids), BATCH):
                pending = finding_ids[start : start + BATCH]
                for attempt in range(1, self.max_attempts + 1):
                    request: dict[str, Any] = {
                        "FindingIdentifiers": [{"Id": i, "ProductArn": self.product_arn} for i in pending],
                        "Workflow": {"Status": status},
                    }
                    if note:
                        request["Note"] = {"Text": note, "UpdatedBy": UPDATED_BY}
                    response = self._call("BatchUpdateFindings", summary, **request)
                    done = len(response.get("ProcessedFindings", []))
                    summary.workflow_updates[status] = summary.workflow_updates.get(status, 0) + done
                    unprocessed = response.get("UnprocessedFindings", [])
                    if not unprocessed:
                        break
                    pending = [str(item["FindingIdentifier"]["Id"]) for item in unprocessed]
                    if attempt == self.max_attempts:
                        summary.failed += [
                            _failure({**item, "Id": item["FindingIdentifier"]["Id"]}, f"BatchUpdateFindings ({status})")
                            for item in unprocessed
                        ]
                        break
                    self._backoff(attempt)

    def _call(self, operation: str, summary: ImportSummary, **request: Any) -> dict[str, Any]:
        """One API call at the documented rate; botocore retries throttling and 5xx (standard mode)."""
        self._pacer.wait(operation)
        summary.calls[operation] = summary.calls.get(operation, 0) + 1
        response: dict[str, Any] = getattr(self.client, xform_name(operation))(**request)
        return response

    def _backoff(self, attempt: int) -> None:
        self._sleep(random.uniform(0, min(20.0, 0.5 * 2**attempt)))  # noqa: S311 (jitter, not a secret)


def _workflow_change(row: Row, current: Mapping[str, Any]) -> tuple[str, str] | None:
    """(status, note) to set on an existing finding, or None when its workflow already fits. A finding a person
    marked NOTIFIED stays so while it is open."""
    status = str((current.get("Workflow") or {}).get("Status") or current.get("WorkflowState") or NEW)
    wanted = row.workflow
    note = asff.workflow_note(row)
    if wanted == SUPPRESSED:
        current_note = str((current.get("Note") or {}).get("Text", ""))
        return None if status == SUPPRESSED and current_note == note else (SUPPRESSED, note)
    if wanted == RESOLVED:
        return None if status == RESOLVED else (RESOLVED, "")
    # open: reopen what an exemption or an earlier verdict closed
    return (NEW, "") if status in (SUPPRESSED, RESOLVED) else None


def _family(finding: Mapping[str, Any]) -> str | None:
    for resource in finding.get("Resources", []):
        family = ((resource.get("Details") or {}).get("AwsEcsTaskDefinition") or {}).get("Family")
        if family:
            return str(family)
    return None


def _with_account(uid: str, account: str) -> str:
    return uid.replace("unknown-account", account, 1)


def import_sweep(
    report: Any,
    *,
    client_for: Callable[[str, str], Any],
    account: str = "",
    archive_missing: bool = True,
    **options: Any,
) -> ImportSummary:
    """Import a `SweepReport`'s verdicts: one finding per row, per account and Region, through
    `client_for(account, region)` (a Security Hub client of that Region, credentials of that account: the
    default product takes findings only from its own account). `account` names the account of rows that show
    none. A Region whose listing failed is not complete: none of its findings are archived. Raises
    SecurityHubImportFailed when findings are still refused after the retries (the others are imported)."""
    rows = rows_from_report(report, default_account=account)
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.account or account, row.region), []).append(row)
    known = {a for a, _ in groups if a} | ({account} if account else set())
    for region in report.regions:  # a Region with no revision at all still archives what it had
        for acct in known:
            groups.setdefault((acct, region), [])
    summary = ImportSummary()
    for (acct, region), group in sorted(groups.items()):
        if not acct:
            logger.error("Security Hub: %d row(s) in %s show no account; not imported", len(group), region)
            continue
        listing_failed = any(row.status == "ERROR" and not row.family for row in group)
        exporter = SecurityHubExporter(client_for(acct, region), account=acct, region=region, **options)
        summary.merge(exporter.export(group, complete=archive_missing and not listing_failed))
    if summary.failed:
        raise SecurityHubImportFailed(summary)
    return summary


def import_result(result: Result, *, client: Any, region: str = "", account: str = "", **options: Any) -> ImportSummary:
    """Import the function's verdict on one revision (a `Remediator` result); nothing for a skip. `client` is
    a Security Hub client of the revision's Region. Raises SecurityHubImportFailed as import_sweep does."""
    row = Row.from_result(result, region=region, account=account)
    if row is None:
        return ImportSummary()
    if not row.account or not row.region:
        raise ValueError(f"{result.task_definition_arn}: the account and Region are needed for a Security Hub finding")
    summary = SecurityHubExporter(client, account=row.account, region=row.region, **options).export([row])
    if summary.failed:
        raise SecurityHubImportFailed(summary)
    return summary


def _failure(item: dict[str, Any], operation: str) -> dict[str, str]:
    """A finding Security Hub refused: its id and error code, and our words instead of its ErrorMessage (which can
    echo the finding)."""
    return {
        "Id": str(item.get("Id")),
        "ErrorCode": str(item.get("ErrorCode")),
        "ErrorMessage": safe_failure(item.get("ErrorCode"), operation),
    }


__all__ = [
    "ImportSummary",
    "SecurityHubExporter",
    "SecurityHubImportFailed",
    "import_result",
    "import_sweep",
]
