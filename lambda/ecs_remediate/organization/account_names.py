"""The organization's accounts as the hub sees them: their names (for notices) and the ACTIVE ones (for a sweep).

Both read AWS Organizations from the hub, which works from the management account and from a delegated
administrator. A name is a courtesy: when it cannot be read (no permission, not an organization, throttled),
the account id alone is shown and nothing fails. The list of accounts is not a courtesy: a sweep of `org` that
cannot list them stops with the reason (an empty list would look like a clean organization).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ..adapters.aws import BotoCoreError, ClientError, safe_error
from .member_accounts import check_account

_ACCOUNT = re.compile(r"^\d{12}\Z", re.ASCII)

# Names change rarely. A name read from Organizations is kept a day in the hub's table (shared by every instance of
# the function: Organizations' API rate is low, and a cold start then needs no Organizations client) and an hour in
# each instance's memory; a name that cannot be read is not asked again for a while either (the answer would be
# the same).
NAME_TTL = timedelta(hours=1)
TABLE_TTL = timedelta(days=1)
FAILURE_TTL = timedelta(minutes=15)
NAME_LIMIT = 50  # Organizations' own limit on an account name
KEY_PREFIX = "ecs-remediate#account-name#"
EXPIRY_ATTRIBUTE = "expiration"  # the idempotency table's TTL attribute (Powertools' default): DynamoDB deletes it


class AccountNames:
    """organizations:DescribeAccount, cached per account in memory and, with `dynamodb` and `table`, in the hub's
    table (dynamodb:GetItem / PutItem); "" when the name cannot be read. Never raises: a name is a courtesy."""

    def __init__(
        self,
        organizations: Callable[[], Any],
        *,
        dynamodb: Any = None,
        table: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ttl: timedelta = NAME_TTL,
        failure_ttl: timedelta = FAILURE_TTL,
    ) -> None:
        self._organizations = organizations  # built on first use: a cold start that finds the name needs none
        self._dynamodb: Any = dynamodb if table else None
        self._table: str | None = table
        self._clock, self._ttl, self._failure_ttl = clock, ttl, failure_ttl
        self._names: dict[str, tuple[datetime, str]] = {}
        self._lock = threading.Lock()

    def name(self, account: str) -> str:
        now = self._clock()
        with self._lock:
            cached = self._names.get(account)
        if cached is not None and now < cached[0]:
            return cached[1]
        if not _ACCOUNT.match(account):
            return ""
        stored = self._stored(account, now)
        if stored is not None:
            name, ttl = stored, self._ttl
        else:
            name, ttl = self._describe(account)
            self._store(account, name, now + (TABLE_TTL if name else self._failure_ttl))
        with self._lock:
            self._names[account] = (now + ttl, name)
        return name

    def _describe(self, account: str) -> tuple[str, timedelta]:
        try:
            described = self._organizations().describe_account(AccountId=account)
        except (ClientError, BotoCoreError):
            return "", self._failure_ttl
        name = described.get("Account", {}).get("Name")
        return (clean_name(name), self._ttl) if isinstance(name, str) else ("", self._failure_ttl)

    def _stored(self, account: str, now: datetime) -> str | None:
        """The name another instance read (or "" for one that could not be read), unless expired; None: ask."""
        if self._dynamodb is None:
            return None
        try:
            item = self._dynamodb.get_item(TableName=self._table, Key={"id": {"S": KEY_PREFIX + account}}).get("Item")
        except (ClientError, BotoCoreError):
            return None
        if not item or int(item.get(EXPIRY_ATTRIBUTE, {}).get("N", "0")) <= now.timestamp():
            return None  # TTL deletion runs late: an expired item is a miss
        return clean_name(str(item.get("name", {}).get("S", "")))

    def _store(self, account: str, name: str, until: datetime) -> None:
        if self._dynamodb is None:
            return
        item = {
            "id": {"S": KEY_PREFIX + account},
            "name": {"S": name},
            EXPIRY_ATTRIBUTE: {"N": str(int(until.timestamp()))},
        }
        with contextlib.suppress(ClientError, BotoCoreError):
            self._dynamodb.put_item(TableName=self._table, Item=item)


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
        raise AccountListingFailed(f"organizations:ListAccounts failed: {safe_error(error)}") from None
    if not found:
        raise AccountListingFailed(
            "organizations:ListAccounts lists no ACTIVE account: run from the management account or a delegated "
            "administrator, or pass the account ids"
        )
    return sorted(set(found))


def clean_name(name: str) -> str:
    """An account name as the hub keeps and shows it: its administrator wrote it, so control, format (bidirectional
    overrides), line and paragraph separator characters become spaces, spaces are collapsed, at most NAME_LIMIT."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in name).split())[:NAME_LIMIT]


__all__ = ["AccountListingFailed", "AccountNames", "active_accounts", "clean_name"]
