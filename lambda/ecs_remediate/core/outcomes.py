"""The result of checking one revision: what was found, what was done, and why."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from .attribution import Attribution, Tool
from .events import Registration

COMPLIANT = "compliant"  # no privileged container: nothing to do (the remediation's own copies land here)
EXEMPT = "exempt"  # privileged, but a valid exemption holds
REPORTED = "reported"  # privileged; report-only mode, nothing written
REMEDIATED = "remediated"  # a non-privileged copy was registered (now or by an earlier attempt)
FAILED = "failed"  # privileged, and the copy could not be registered
SUPERSEDED = "superseded"  # privileged, ACTIVE, but no longer its family's latest: not copied (a roll-back), notified
UNRESOLVED = "unresolved"  # a registration whose revision could not be identified: notified, nothing written
SKIPPED = "skipped"  # nothing to judge (not found, not ACTIVE)

SEVERITY = {
    REMEDIATED: "MEDIUM",
    REPORTED: "HIGH",
    FAILED: "HIGH",
    SUPERSEDED: "HIGH",
    UNRESOLVED: "HIGH",
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
    # After a remediation (see remediation/rollout.py): services moved or left for a person, retirement, what remains.
    services_checked: bool = False
    services_updated: list[dict[str, str]] = field(default_factory=list)
    services_manual: list[dict[str, str]] = field(default_factory=list)
    retired: bool = False
    retire_note: str = ""
    remaining_privileged: int | None = None
    remaining_is_lower_bound: bool = False
    # What was checked, so that a notice states only that (see core/notice.py).
    registered_by: str = ""  # ECS's registeredBy of the source revision
    host_equivalents: list[str] = field(default_factory=list)  # still host root without `privileged` (hostroot)
    host_access: list[str] = field(default_factory=list)  # reaches the host, not root by itself (hostroot)
    copy_check: str = ""  # how the copy was read back: "" when it was not
    copy_verified: bool = False  # read back: no privileged container, every other member and tag as the source's
    copy_proof: str = ""  # why the copy is the stack's own (ledger or registeredBy)
    latest_arn: str | None = None  # superseded: the family's latest ACTIVE revision
    forged_copies: list[dict[str, str]] = field(default_factory=list)  # arn, registeredBy, why
    restored_arn: str | None = None  # a newer deploy arrived during the copy: the copy of it that is latest again
    restored_from: str | None = None
    race_note: str = ""  # what was registered in between, and what was done (remediation/restore.py)
    race_lost: bool = False  # the family's latest may hold older content than a deploy below it (race_note says)
    buried_arn: str | None = None  # ... that deploy, when known
    race_step: str = ""  # ... and the command that makes its content the latest again (or shows the family)
    exemption_source: str = ""
    exemption_mismatch: str = ""  # a registry claim that does not cover the revision: what differs ("other family")
    # Where the revision came from (a hint: never a reason to skip or exempt), and the family's remediations
    # within the escalation window (the stack's ledger); `escalation` says why the notice escalates, "" if not.
    attribution: Attribution | None = None
    repeats: list[dict[str, str]] = field(default_factory=list)
    escalation: str = ""

    @property
    def severity(self) -> str:
        if self.forged_copies or self.escalation or self.race_lost:
            return "HIGH"
        return SEVERITY.get(self.outcome, "INFO")

    def to_dict(self) -> dict[str, Any]:
        """What `dataclasses.asdict` gives, without deep-copying the immutable leaves (a notice builds it per event)."""
        plain: dict[str, Any] = _plain(self)
        return plain

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("registration"), dict):
            values["registration"] = Registration(**values["registration"])
        if isinstance(values.get("attribution"), dict):
            values["attribution"] = _attribution(values["attribution"])
        return cls(**values)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {item.name: _plain(getattr(value, item.name)) for item in fields(value)}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _attribution(data: dict[str, Any]) -> Attribution:
    """From `asdict` output, snake_case or camelCase (a notice's JSON payload camel-cases nested keys)."""
    by_name = {key.replace("_", "").lower(): value for key, value in data.items()}
    values: dict[str, Any] = {}
    for item in fields(Attribution):
        value = by_name.get(item.name.replace("_", "").lower())
        if value is not None:
            values[item.name] = value
    values["tool"] = Tool(values.get("tool", Tool.UNKNOWN))
    values["evidence"] = tuple(values.get("evidence", ()))
    return Attribution(**values)
