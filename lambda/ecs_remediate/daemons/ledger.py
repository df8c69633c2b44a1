"""The stack's record of the daemon deployments it started (UpdateDaemon onto a fixed copy).

`ECS Daemon Deployment State Change` events come for every deployment in the account; the follow-up notice is sent
only for a deployment recorded here, right after the stack's own UpdateDaemon. Items live in the idempotency table
beside the ledger of copies (adapters/ledger.py), without the TTL attribute, written only by the stack's roles.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ..adapters.aws import ClientError, is_transient
from ..adapters.ledger import ATTR_KEY

KEY_PREFIX = "ecs-remediate#daemon-deployment#"


@dataclass(frozen=True)
class StartedDeployment:
    deployment_arn: str
    daemon_arn: str
    source_arn: str  # the privileged daemon task definition the daemon ran
    copy_arn: str  # the verified fixed copy it was moved onto


class DeploymentLedger(Protocol):
    def record(self, started: StartedDeployment, by: str) -> None: ...

    def started(self, deployment_arn: str) -> StartedDeployment | None: ...


class MemoryDeploymentLedger:
    """What this process started (the CLI without the stack's table)."""

    def __init__(self) -> None:
        self._items: dict[str, StartedDeployment] = {}
        self._lock = threading.Lock()

    def record(self, started: StartedDeployment, by: str) -> None:
        with self._lock:
            self._items[started.deployment_arn] = started

    def started(self, deployment_arn: str) -> StartedDeployment | None:
        with self._lock:
            return self._items.get(deployment_arn)


class DynamoDeploymentLedger:
    """dynamodb:PutItem / GetItem on the idempotency table (the function already holds both)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._client = dynamodb_client
        self.table_name = table_name

    @classmethod
    def from_persistence(cls, persistence: Any) -> DynamoDeploymentLedger | None:
        client, table = getattr(persistence, "client", None), getattr(persistence, "table_name", None)
        return cls(client, table) if client is not None and isinstance(table, str) else None

    def record(self, started: StartedDeployment, by: str) -> None:
        self._client.put_item(
            TableName=self.table_name,
            Item={
                ATTR_KEY: {"S": KEY_PREFIX + started.deployment_arn},
                "daemonArn": {"S": started.daemon_arn},
                "sourceArn": {"S": started.source_arn},
                "copyArn": {"S": started.copy_arn},
                "recordedBy": {"S": by[:64]},
                "recordedAt": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
            },
        )

    def started(self, deployment_arn: str) -> StartedDeployment | None:
        """The record, or None (not the stack's deployment). A permanent read error counts as not recorded: no
        follow-up notice, never a false one; transient errors are raised (the event is retried)."""
        try:
            item = self._client.get_item(
                TableName=self.table_name, Key={ATTR_KEY: {"S": KEY_PREFIX + deployment_arn}}, ConsistentRead=True
            ).get("Item")
        except ClientError as error:
            if is_transient(error):
                raise
            return None
        if not item:
            return None
        text = {name: str(item.get(name, {}).get("S", "")) for name in ("daemonArn", "sourceArn", "copyArn")}
        return StartedDeployment(deployment_arn, text["daemonArn"], text["sourceArn"], text["copyArn"])
