"""`ecs-remediate verify`: what one account and Region reports (a row), and how the stack's notice record is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from ..remediation import once

PASS, FAIL, ERROR, INTERRUPTED = "PASS", "FAIL", "ERROR", "INTERRUPTED"
COMPLETED = once.COMPLETED  # Powertools' status of a notice SNS accepted


@dataclass
class Row:
    """One account and Region: what verify saw, and what it left."""

    account: str
    region: str
    outcome: str = ERROR
    latency: float | None = None  # seconds from the canary's registration to the copy's (ECS's clock)
    latency_bound: bool = False  # report mode: an upper bound, when the notice record was first seen
    notice: str = "-"
    reason: str = ""
    canary: str | None = None
    copy: str | None = None
    left: list[str] = field(default_factory=list)  # "ARN (status)" of what clean-up could not remove

    @property
    def passed(self) -> bool:
        return self.outcome == PASS

    def latency_text(self) -> str:
        if self.latency is None:
            return "-"
        return f"{'<= ' if self.latency_bound else ''}{self.latency:.1f} s"

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "region": self.region,
            "outcome": self.outcome,
            "latencySeconds": None if self.latency is None else round(self.latency, 3),
            "latencyIsUpperBound": self.latency_bound,
            "notice": self.notice,
            "reason": self.reason,
            "canary": self.canary,
            "copy": self.copy,
            "left": list(self.left),
        }


class NoticeRecords:
    """The stack's record of its notices in the idempotency table (remediation/once.py): a notice's own record, or,
    for the notice of the invocation that made a copy, the copy's record that names it sent."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=dynamodb)
        self._notices, self._copies = once.Records.notices(persistence), once.Records.copies(persistence)

    def status(self, key: str, copy_of: str | None = None) -> str | None:
        """COMPLETED (SNS accepted it), INPROGRESS (being published), or None (no notice recorded). `copy_of`: the
        source revision of a remediated notice, whose copy's record may hold it."""
        if copy_of is not None:
            copy = self._copies.get(copy_of)
            if once.notified(copy, key):
                return COMPLETED
            if once.in_progress(copy):
                return once.INPROGRESS
        record = self._notices.get(key)
        return None if record is None else str(record.status)


__all__ = ["COMPLETED", "ERROR", "FAIL", "INTERRUPTED", "PASS", "NoticeRecords", "Row"]
