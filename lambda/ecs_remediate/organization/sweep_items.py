"""The organization sweep's items and where each run keeps its files (the Step Functions state machine's contract).

An item is one (account, Region) of one run (the execution's name). Items are listed from AWS Organizations: the
ACTIVE accounts of the target OUs, recursively into their child OUs, minus the excluded accounts, times the
configured Regions. They go to S3 as one JSON array that the Distributed Map reads (its ItemReader), not inline:
inline state is capped at 256 KiB, about 4,000 items, while the S3 reader takes 1,000 accounts x 17 Regions (17,000
items) and more.

Everything lives in the report bucket under `runs/<run>/`:

  runs/<run>/items.json                      the items (the map's input)
  runs/<run>/items/<account>-<region>.json   one item's rows (written by the item function, or its ERROR row)
  runs/<run>/report.json, report.csv         the run's report (written by the summary)
  runs/<run>/notice.json                     the summary notice was sent (a retried summary does not send twice)

Every name that becomes part of a key is checked here first (12-digit account, Region name, execution name).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..adapters.aws import BotoCoreError, ClientError, safe_error
from .account_names import AccountListingFailed

_ACCOUNT = re.compile(r"^\d{12}\Z", re.ASCII)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}\Z", re.ASCII)
_OU = re.compile(r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})\Z", re.ASCII)
# Step Functions execution names are 1-80 characters; the ones EventBridge and our tests give are of these.
_RUN = re.compile(r"^[A-Za-z0-9_-]{1,80}\Z", re.ASCII)
RUNS_PREFIX = "runs/"
# Organizations pages at 20 (ListAccountsForParent) and 20 (ListOrganizationalUnitsForParent) at most.
PAGE_SIZE = 20


class BadItem(ValueError):
    """An item (or run name) that is not one: the item fails, and becomes an ERROR row, never a PASS."""


@dataclass(frozen=True)
class Item:
    account: str
    region: str
    run: str

    @property
    def key(self) -> str:
        return item_key(self.run, self.account, self.region)

    def to_json(self) -> dict[str, str]:
        return {"account": self.account, "region": self.region}


def check_run(run: Any) -> str:
    if not isinstance(run, str) or not _RUN.match(run):
        raise BadItem(f"not a run (execution) name: {str(run)[:100]!r}")
    return run


def parse_item(event: Any) -> Item:
    """{"account": 12 digits, "region": a Region name, "run": the execution's name}, or BadItem."""
    if not isinstance(event, dict):
        raise BadItem(f"an item is an object, got {type(event).__name__}")
    account, region = event.get("account"), event.get("region")
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        raise BadItem(f"not an AWS account id (12 digits): {str(account)[:40]!r}")
    if not isinstance(region, str) or not _REGION.match(region):
        raise BadItem(f"not a Region name: {str(region)[:40]!r}")
    return Item(account, region, check_run(event.get("run")))


def run_prefix(run: str) -> str:
    return f"{RUNS_PREFIX}{check_run(run)}/"


def items_key(run: str) -> str:
    return run_prefix(run) + "items.json"


def item_key(run: str, account: str, region: str) -> str:
    return f"{run_prefix(run)}items/{account}-{region}.json"


def report_keys(run: str) -> tuple[str, str]:
    return run_prefix(run) + "report.json", run_prefix(run) + "report.csv"


def notice_key(run: str) -> str:
    return run_prefix(run) + "notice.json"


def check_ous(ous: Iterable[str]) -> list[str]:
    listed = [ou.strip() for ou in ous if ou.strip()]
    bad = [ou for ou in listed if not _OU.match(ou)]
    if bad:
        raise BadItem(f"not an OU or root id: {bad[0][:60]!r}")
    if not listed:
        raise BadItem("no target OU to sweep")
    return listed


def check_regions(regions: Iterable[str]) -> list[str]:
    listed = list(dict.fromkeys(region.strip() for region in regions if region.strip()))
    bad = [region for region in listed if not _REGION.match(region)]
    if bad:
        raise BadItem(f"not a Region name: {bad[0][:40]!r}")
    if not listed:
        raise BadItem("no Region to sweep")
    return listed


def ou_accounts(organizations: Any, ous: Sequence[str], *, excluded: Iterable[str] = ()) -> list[str]:
    """The ACTIVE accounts of `ous` and of every OU below them (organizations:ListAccountsForParent and
    ListOrganizationalUnitsForParent over every page), minus `excluded`, sorted. Raises AccountListingFailed when
    a call fails or nothing is left: an empty list would look like a clean organization."""
    skip = set(excluded)
    found: set[str] = set()
    queue, seen = deque(check_ous(ous)), set()
    try:
        while queue:
            parent = queue.popleft()
            if parent in seen:
                continue
            seen.add(parent)
            accounts = organizations.get_paginator("list_accounts_for_parent")
            for page in accounts.paginate(ParentId=parent, PaginationConfig={"PageSize": PAGE_SIZE}):
                for account in page.get("Accounts", []):
                    # `State` replaces the deprecated `Status`; either says ACTIVE for a usable account.
                    state = account.get("State") or account.get("Status")
                    account_id = str(account.get("Id", ""))
                    if state == "ACTIVE" and _ACCOUNT.match(account_id) and account_id not in skip:
                        found.add(account_id)
            children = organizations.get_paginator("list_organizational_units_for_parent")
            for page in children.paginate(ParentId=parent, PaginationConfig={"PageSize": PAGE_SIZE}):
                queue.extend(str(ou["Id"]) for ou in page.get("OrganizationalUnits", []) if "Id" in ou)
    except (ClientError, BotoCoreError) as error:
        raise AccountListingFailed(f"listing the target OUs' accounts failed: {safe_error(error)}") from None
    if not found:
        raise AccountListingFailed(
            "the target OUs hold no ACTIVE account outside the exclusions: check targetOus, and that the hub runs in "
            "the management account or a delegated administrator"
        )
    return sorted(found)


def items(accounts: Sequence[str], regions: Sequence[str]) -> list[dict[str, str]]:
    """Every (account, Region), account-major: the map's input."""
    return [{"account": account, "region": region} for account in accounts for region in regions]


__all__ = [
    "PAGE_SIZE",
    "RUNS_PREFIX",
    "BadItem",
    "Item",
    "check_regions",
    "check_run",
    "item_key",
    "items",
    "items_key",
    "notice_key",
    "ou_accounts",
    "parse_item",
    "report_keys",
    "run_prefix",
]
