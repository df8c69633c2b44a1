"""Pure: whether one exemption claim holds (a reason, an approver, an expiry within the configured maximum), and the
configuration's part of the rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

EXPIRY_WARNING_DAYS = 7


@dataclass(frozen=True)
class Exemption:
    """An exemption claim and whether it holds; `why` explains either way."""

    valid: bool
    why: str
    reason: str = ""
    until: date | None = None
    by_family_glob: str | None = None
    approver: str = ""
    source: str = ""  # registry | configuration | tags
    mismatch: str = ""  # a claim that does not cover the revision: what differs ("other family, more host access")

    def expires_within(self, today: date, days: int = EXPIRY_WARNING_DAYS) -> bool:
        return self.valid and self.until is not None and self.until <= today + timedelta(days=days)


@dataclass(frozen=True)
class ExemptionRules:
    """The configuration's part: family globs (with their acknowledgement), tag mode, the maximum expiry."""

    tag_prefix: str
    family_globs: tuple[str, ...] = ()
    max_days: int = 90
    tag_exemptions: bool = False

    @property
    def reason_tag(self) -> str:
        return f"{self.tag_prefix}:exempt-reason"

    @property
    def until_tag(self) -> str:
        return f"{self.tag_prefix}:exempt-until"


class _Claim(Protocol):
    @property
    def reason(self) -> str: ...
    @property
    def approver(self) -> str: ...
    @property
    def until(self) -> str: ...


def judge_record(
    record: _Claim, rules: ExemptionRules, today: date, *, what: str, source: str = "registry", scope: str = ""
) -> Exemption:
    if not record.reason.strip():
        return Exemption(False, f"the exemption of {what} has no reason", source=source)
    if not record.approver.strip():
        return Exemption(False, f"the exemption of {what} names no approver", reason=record.reason, source=source)
    try:
        until = date.fromisoformat(record.until.strip())
    except ValueError:
        return Exemption(
            False, f"the exemption of {what} has no valid expiry date", reason=record.reason, source=source
        )
    if until < today:
        return Exemption(
            False, f"exemption expired on {until.isoformat()}", reason=record.reason, until=until, source=source
        )
    if until > today + timedelta(days=rules.max_days):
        return Exemption(
            False,
            f"the exemption's expiry {until.isoformat()} is beyond the {rules.max_days}-day maximum",
            reason=record.reason,
            until=until,
            source=source,
        )
    return Exemption(
        True,
        f"exempt until {until.isoformat()}: {record.reason} (approved by {record.approver}{scope})",
        reason=record.reason,
        until=until,
        approver=record.approver,
        source=source,
    )
