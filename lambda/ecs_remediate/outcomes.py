"""The result of checking one revision: what was found, what was done, and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .events import Registration

COMPLIANT = "compliant"  # no privileged container: nothing to do (the remediation's own copies land here)
EXEMPT = "exempt"  # privileged, but a valid exemption holds
REPORTED = "reported"  # privileged; report-only mode, nothing written
REMEDIATED = "remediated"  # a non-privileged copy was registered (now or by an earlier attempt)
FAILED = "failed"  # privileged, and the copy could not be registered
SKIPPED = "skipped"  # nothing to judge (not found, not ACTIVE, superseded by a newer revision)

SEVERITY = {
    REMEDIATED: "MEDIUM",
    REPORTED: "HIGH",
    FAILED: "HIGH",
    EXEMPT: "LOW",
    COMPLIANT: "INFO",
    SKIPPED: "INFO",
}


@dataclass
class Result:
    outcome: str
    task_definition_arn: str
    family: str = ""
    revision: int = 0
    privileged: list[str] = field(default_factory=list)
    new_task_definition_arn: str | None = None
    reason: str = ""
    error_code: str | None = None
    error_message: str | None = None
    exemption: str | None = None  # why an exemption holds or does not
    exemption_until: str | None = None
    dropped_tags: list[str] = field(default_factory=list)
    marker_added: bool = False
    registration: Registration | None = None
    # After a remediation (see rollout.py): services moved or left for a person, retirement, what remains.
    services_checked: bool = False
    services_updated: list[dict[str, str]] = field(default_factory=list)
    services_manual: list[dict[str, str]] = field(default_factory=list)
    retired: bool = False
    retire_note: str = ""
    remaining_privileged: int | None = None
    remaining_is_lower_bound: bool = False

    @property
    def severity(self) -> str:
        return SEVERITY.get(self.outcome, "INFO")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("registration"), dict):
            values["registration"] = Registration(**values["registration"])
        return cls(**values)
