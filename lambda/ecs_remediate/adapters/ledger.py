"""The stack's own record of what it registered: which revision is the fixed copy of which.

A marker tag on a revision is a claim anyone with tag-on-create can make; this record is written only by the
stack's roles (the idempotency table, which the policed cannot write), right after each registration, and never
expires. It is one of the two proofs `provenance.verify_copy` accepts (the other: ECS's own `registeredBy`).

It also keeps each family's recent remediations (`record_remediation`): one item per family, written by the stack
when it remediates a revision, read back in the same step, and expired by the table's TTL after the window. A
family remediated again and again is a pipeline that still registers privileged: true (remediation/repeats.py).

Copy records live in the idempotency table under their own key prefix, without the TTL attribute, so DynamoDB
keeps them. Without a table (the CLI run by hand) a `MemoryLedger` remembers the run's own registrations only.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ..core.exemptions.records import ExemptionRecord
from ..core.history import MAX_HISTORY, Remediation, within_window
from .aws import ClientError, is_transient

KEY_PREFIX = "ecs-remediate#copy#"
APPROVAL_PREFIX = "ecs-remediate#tag-approval#"  # exemption tags an approver set (remediation/tag_approvals.py)
HISTORY_PREFIX = "ecs-remediate#history#"
ATTR_KEY = "id"  # the idempotency table's partition key (Powertools' default)
ATTR_EXPIRY = "expiration"  # the table's TTL attribute (Powertools' default): epoch seconds
# Stored history entries past which the item is rewritten to the window's (history.MAX_HISTORY are kept then).
COMPACT_AFTER = 2 * MAX_HISTORY

logger = logging.getLogger(__name__)


class Ledger(Protocol):
    def record_copy(self, source_arn: str, copy_arn: str, by: str) -> None: ...

    def copy_of(self, source_arn: str) -> str | None: ...

    def record_tag_approval(self, record: ExemptionRecord) -> None: ...

    def tag_approval(self, task_definition_arn: str) -> ExemptionRecord | None: ...
    def record_remediation(self, entry: Remediation, window: timedelta) -> list[Remediation]:
        """Add `entry` to its family's history; returns the history within `window`, `entry` included."""
        ...


class MemoryLedger:
    """What this process registered (the CLI without the stack's table)."""

    def __init__(self) -> None:
        self._copies: dict[str, str] = {}
        self._approvals: dict[str, ExemptionRecord] = {}
        self._history: dict[str, list[Remediation]] = {}
        self._lock = threading.Lock()

    def record_copy(self, source_arn: str, copy_arn: str, by: str) -> None:
        with self._lock:
            self._copies[source_arn] = copy_arn

    def copy_of(self, source_arn: str) -> str | None:
        with self._lock:
            return self._copies.get(source_arn)

    def record_tag_approval(self, record: ExemptionRecord) -> None:
        with self._lock:
            self._approvals[record.target] = record

    def tag_approval(self, task_definition_arn: str) -> ExemptionRecord | None:
        with self._lock:
            return self._approvals.get(task_definition_arn)

    def record_remediation(self, entry: Remediation, window: timedelta) -> list[Remediation]:
        with self._lock:
            history = within_window(self._history.get(entry.family_key, []), entry, window)
            self._history[entry.family_key] = history
            return list(history)


class DynamoLedger:
    """dynamodb:PutItem / GetItem on the idempotency table (the function already holds both)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._client = dynamodb_client
        self.table_name = table_name
        self._cache: dict[str, str] = {}  # copies are immutable facts: what was read once stays true
        self._lock = threading.Lock()

    @classmethod
    def from_persistence(cls, persistence: Any) -> DynamoLedger | None:
        """The ledger in the table of a Powertools DynamoDBPersistenceLayer (same client, same table)."""
        client, table = getattr(persistence, "client", None), getattr(persistence, "table_name", None)
        return cls(client, table) if client is not None and isinstance(table, str) else None

    def record_copy(self, source_arn: str, copy_arn: str, by: str) -> None:
        self._client.put_item(
            TableName=self.table_name,
            Item={
                ATTR_KEY: {"S": KEY_PREFIX + source_arn},
                "copyArn": {"S": copy_arn},
                "recordedBy": {"S": by[:64]},
                "recordedAt": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
            },
        )
        with self._lock:
            self._cache[source_arn] = copy_arn

    def copy_of(self, source_arn: str) -> str | None:
        with self._lock:
            if source_arn in self._cache:
                return self._cache[source_arn]
        try:
            item = self._client.get_item(
                TableName=self.table_name, Key={ATTR_KEY: {"S": KEY_PREFIX + source_arn}}, ConsistentRead=True
            ).get("Item")
        except ClientError as error:
            if is_transient(error):
                raise
            return None  # unreadable (AccessDenied): no proof from here; registeredBy may still prove it
        copy_arn = (item or {}).get("copyArn", {}).get("S")
        if isinstance(copy_arn, str):
            with self._lock:
                self._cache[source_arn] = copy_arn
        return copy_arn if isinstance(copy_arn, str) else None

    def record_tag_approval(self, record: ExemptionRecord) -> None:
        """The exemption tags an approver set on a revision (replaces an earlier approval of it)."""
        item = record.to_item()
        item[ATTR_KEY] = {"S": APPROVAL_PREFIX + record.target}
        self._client.put_item(TableName=self.table_name, Item=item)

    def tag_approval(self, task_definition_arn: str) -> ExemptionRecord | None:
        """Read afresh each time: an approval can be replaced (a later approver call) at any moment."""
        item = self._client.get_item(
            TableName=self.table_name, Key={ATTR_KEY: {"S": APPROVAL_PREFIX + task_definition_arn}}, ConsistentRead=True
        ).get("Item")
        return ExemptionRecord.from_item(item) if item else None

    def record_remediation(self, entry: Remediation, window: timedelta) -> list[Remediation]:
        """One UpdateItem on the family's history item: the entry appended (`list_append`, atomic, so two concurrent
        remediations of a family both count) and the item's expiry moved, the whole list returned (ALL_NEW) and read
        within the window. The item expires through the table's TTL once the window has passed since its newest
        entry. Past COMPACT_AFTER stored entries it is rewritten to the window's (`_compact`, a conditional write that
        gives way to a concurrent writer)."""
        key = {ATTR_KEY: {"S": HISTORY_PREFIX + entry.family_key}}
        expires = int((entry.at + window).timestamp())
        answer = self._client.update_item(
            TableName=self.table_name,
            Key=key,
            UpdateExpression="SET #entries = list_append(if_not_exists(#entries, :none), :entry), #expiry = :expires "
            "ADD #version :one",
            ExpressionAttributeNames={"#entries": "entries", "#expiry": ATTR_EXPIRY, "#version": "version"},
            ExpressionAttributeValues={
                ":none": {"L": []},
                ":entry": {"L": [entry.to_item()]},
                ":expires": {"N": str(expires)},
                ":one": {"N": "1"},
            },
            ReturnValues="ALL_NEW",
        )
        item = answer.get("Attributes") or {}
        raw = (item.get("entries") or {}).get("L", [])
        # A retried revision appears once per append: the latest append stands for it.
        latest = {r.source_arn: r for r in map(Remediation.from_item, raw) if r}
        history = within_window(list(latest.values()), entry, window)
        if len(raw) > COMPACT_AFTER:
            self._compact(key, item, history, expires)
        return history

    def _compact(self, key: dict[str, Any], item: dict[str, Any], history: list[Remediation], expires: int) -> None:
        """Rewrite the item to `history` unless another writer changed it since (its version): bounded, not exact."""
        version_text = (item.get("version") or {}).get("N", "0")
        version = int(version_text) if str(version_text).isdigit() else 0
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item={
                    **key,
                    "entries": {"L": [r.to_item() for r in history]},
                    "version": {"N": str(version + 1)},
                    ATTR_EXPIRY: {"N": str(expires)},
                },
                ConditionExpression="#version = :version",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":version": {"N": str(version)}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            logger.info("history of %s: compacted by another writer first", key[ATTR_KEY]["S"])
