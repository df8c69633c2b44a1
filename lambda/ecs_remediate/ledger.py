"""The stack's own record of what it registered: which revision is the fixed copy of which.

A marker tag on a revision is a claim anyone with tag-on-create can make; this record is written only by the
stack's roles (the idempotency table, which the policed cannot write), right after each registration, and never
expires. It is one of the two proofs `provenance.verify_copy` accepts (the other: ECS's own `registeredBy`).

Items live in the idempotency table under their own key prefix, without the TTL attribute, so DynamoDB keeps
them. Without a table (the CLI run by hand) a `MemoryLedger` remembers the run's own registrations only.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any, Protocol

from .aws import ClientError, is_transient
from .exemptions import ExemptionRecord

KEY_PREFIX = "ecs-remediate#copy#"
APPROVAL_PREFIX = "ecs-remediate#tag-approval#"  # exemption tags an approver set (tag_approvals.py)
ATTR_KEY = "id"  # the idempotency table's partition key (Powertools' default)


class Ledger(Protocol):
    def record_copy(self, source_arn: str, copy_arn: str, by: str) -> None: ...

    def copy_of(self, source_arn: str) -> str | None: ...

    def record_tag_approval(self, record: ExemptionRecord) -> None: ...

    def tag_approval(self, task_definition_arn: str) -> ExemptionRecord | None: ...


class MemoryLedger:
    """What this process registered (the CLI without the stack's table)."""

    def __init__(self) -> None:
        self._copies: dict[str, str] = {}
        self._approvals: dict[str, ExemptionRecord] = {}
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
