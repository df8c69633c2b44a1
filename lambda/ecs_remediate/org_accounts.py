"""The organization's accounts as the hub sees them: their names (for notices) and the ACTIVE ones (for a sweep).

Both read AWS Organizations from the hub, which works from the management account and from a delegated
administrator. A name is a courtesy: when it cannot be read (no permission, not an organization, throttled),
the account id alone is shown and nothing fails. The list of accounts is not a courtesy: a sweep of `org` that
cannot list them stops with the reason (an empty list would look like a clean organization).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from .accounts import check_account
from .aws import BotoCoreError, ClientError

# Names change rarely; an hour keeps DescribeAccount calls (Organizations' API rate is low) to one per account per
# hour per function instance. A failure is not asked again for a while either: the answer would be the same.
NAME_TTL = timedelta(hours=1)
FAILURE_TTL = timedelta(minutes=15)
NAME_LIMIT = 50  # Organizations' own limit on an account name


class AccountNames:
    """organizations:DescribeAccount, cached per account; "" when the name cannot be read (never raises)."""

    def __init__(
        self,
        organizations: Callable[[], Any],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ttl: timedelta = NAME_TTL,
        failure_ttl: timedelta = FAILURE_TTL,
    ) -> None:
        self._organizations = organizations  # built on first use: a function that never notifies never pays for it
        self._clock, self._ttl, self._failure_ttl = clock, ttl, failure_ttl
        self._names: dict[str, tuple[datetime, str]] = {}
        self._lock = threading.Lock()

    def name(self, account: str) -> str:
        now = self._clock()
        with self._lock:
            cached = self._names.get(account)
        if cached is not None and now < cached[0]:
            return cached[1]
        name, ttl = self._describe(account)
        with self._lock:
            self._names[account] = (now + ttl, name)
        return name

    def _describe(self, account: str) -> tuple[str, timedelta]:
        try:
            check_account(account)
            described = self._organizations().describe_account(AccountId=account)
        except (ClientError, BotoCoreError, ValueError):
            return "", self._failure_ttl
        name = described.get("Account", {}).get("Name")
        return (_printable(name)[:NAME_LIMIT], self._ttl) if isinstance(name, str) else ("", self._failure_ttl)


class AccountListingFailed(Exception):
    """The organization's accounts could not be listed (the message says why and what to do)."""


def active_accounts(organizations: Any, *, page_size: int | None = None) -> list[str]:
    """organizations:ListAccounts over every page (of `page_size`, default the API's 20): the ids of the ACTIVE
    accounts, sorted. Raises AccountListingFailed when the call fails or lists nothing (only the management account
    or a delegated administrator can list the organization's accounts)."""
    found: list[str] = []
    paging = {"PageSize": page_size} if page_size else {}
    try:
        for page in organizations.get_paginator("list_accounts").paginate(PaginationConfig=paging):
            for account in page.get("Accounts", []):
                # `State` replaces the deprecated `Status`; either says ACTIVE for a usable account.
                state = account.get("State") or account.get("Status")
                if state == "ACTIVE":
                    found.append(check_account(str(account.get("Id", ""))))
    except (ClientError, BotoCoreError) as error:
        raise AccountListingFailed(f"organizations:ListAccounts failed: {' '.join(str(error).split())}") from None
    if not found:
        raise AccountListingFailed(
            "organizations:ListAccounts lists no ACTIVE account: run from the management account or a delegated "
            "administrator, or pass the account ids"
        )
    return sorted(set(found))


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable()).strip()


__all__ = ["AccountListingFailed", "AccountNames", "active_accounts"]
