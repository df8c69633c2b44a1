"""Pure: a family's recent remediations (what the ledger keeps per family, adapters/ledger.py; what
remediation/repeats.py escalates on).

Names, ARNs and times only: the registrant's principal ARN and the source's one-line summary (core/attribution.py),
never task-definition content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_HISTORY = 20  # entries kept per family: a pipeline that deploys every minute cannot grow the item unbounded


@dataclass(frozen=True)
class Remediation:
    """One remediation of a family: which revision, its fixed copy, who registered the privileged revision and
    from which source (attribution.summary()), and when. Names and ARNs only."""

    source_arn: str
    copy_arn: str
    registered_by: str
    source: str
    at: datetime

    @property
    def family_key(self) -> str:
        """The revision ARN without its revision: one history per account, Region and family."""
        return self.source_arn.rsplit(":", 1)[0]

    def to_json(self) -> dict[str, str]:
        return {
            "revision": self.source_arn.rsplit("/", 1)[-1],
            "copy": self.copy_arn.rsplit("/", 1)[-1],
            "registeredBy": self.registered_by,
            "source": self.source,
            "at": self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sourceArn": self.source_arn,
            "copyArn": self.copy_arn,
        }

    @classmethod
    def from_item(cls, item: Any) -> Remediation | None:
        """From a stored map (`{"M": {...}}`); None for anything malformed."""
        fields = item.get("M") if isinstance(item, dict) else None
        if not isinstance(fields, dict):
            return None
        text: dict[str, str] = {
            str(k): str(v["S"]) for k, v in fields.items() if isinstance(v, dict) and isinstance(v.get("S"), str)
        }
        try:
            at = datetime.fromisoformat(str(text.get("at")))
        except ValueError:
            return None
        if not text.get("sourceArn"):
            return None
        return cls(
            text["sourceArn"],
            text.get("copyArn", ""),
            text.get("registeredBy", ""),
            text.get("source", ""),
            at if at.tzinfo else at.replace(tzinfo=UTC),
        )

    def to_item(self) -> dict[str, Any]:
        values = {
            "sourceArn": self.source_arn,
            "copyArn": self.copy_arn,
            "registeredBy": self.registered_by[:512],
            "source": self.source[:300],
            "at": self.at.astimezone(UTC).isoformat(timespec="seconds"),
        }
        return {"M": {k: {"S": v} for k, v in values.items()}}


def within_window(entries: list[Remediation], entry: Remediation, window: timedelta) -> list[Remediation]:
    """The family's history once `entry` is added: entries older than the window dropped, an earlier entry for the
    same revision replaced (a retry is not a new remediation), oldest first, at most MAX_HISTORY."""
    since = entry.at - window
    kept = [e for e in entries if e.source_arn != entry.source_arn and e.at > since]
    return sorted([*kept, entry], key=lambda e: e.at)[-MAX_HISTORY:]
