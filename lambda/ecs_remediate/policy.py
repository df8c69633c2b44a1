"""Pure decisions: is a revision exempt, and what is its verdict. No AWS calls."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import date, timedelta

from .config import Config
from .taskdef import privileged_containers, tag_value

EXPIRY_WARNING_DAYS = 7


@dataclass(frozen=True)
class Exemption:
    """An exemption claim and whether it holds; `why` explains either way."""

    valid: bool
    why: str
    reason: str = ""
    until: date | None = None
    by_family_glob: str | None = None

    def expires_within(self, today: date, days: int = EXPIRY_WARNING_DAYS) -> bool:
        return self.valid and self.until is not None and self.until <= today + timedelta(days=days)


def evaluate_exemption(family: str, tags: list[dict[str, str]] | None, config: Config, today: date) -> Exemption | None:
    """None when nothing claims an exemption; otherwise whether the claim holds.

    A tag exemption needs a reason and an expiry (`YYYY-MM-DD`) not yet past, so that no exemption
    silences the control forever. A family glob from the configuration is an exemption on its own
    (the operator stated it in the deployment).
    """
    for glob in config.exempt_families:
        if fnmatch.fnmatchcase(family, glob):
            return Exemption(True, f"family matches the configured exemption {glob!r}", by_family_glob=glob)
    reason = tag_value(tags, config.exempt_reason_tag_key)
    until_text = tag_value(tags, config.exempt_until_tag_key)
    if reason is None and until_text is None:
        return None
    until: date | None = None
    if until_text is not None:
        try:
            until = date.fromisoformat(until_text.strip())
        except ValueError:
            return Exemption(False, f"{config.exempt_until_tag_key}={until_text!r} is not a YYYY-MM-DD date")
    if reason is None or not reason.strip():
        return Exemption(False, f"no {config.exempt_reason_tag_key} tag: an exemption needs a reason", until=until)
    if until is None:
        return Exemption(
            False, f"no {config.exempt_until_tag_key} tag: an exemption needs an expiry date", reason=reason
        )
    if until < today:
        return Exemption(False, f"exemption expired on {until.isoformat()}", reason=reason, until=until)
    return Exemption(True, f"exempt until {until.isoformat()}: {reason}", reason=reason, until=until)


PASS, FAIL, EXEMPT, ERROR = "PASS", "FAIL", "EXEMPT", "ERROR"


@dataclass(frozen=True)
class Assessment:
    """The verdict on one revision, as ECS.4 and Prowler's check would give it, plus exemptions."""

    verdict: str  # PASS | FAIL | EXEMPT
    privileged: list[str]
    exemption: Exemption | None


def assess(
    task_definition: dict[str, object], tags: list[dict[str, str]] | None, config: Config, today: date
) -> Assessment:
    privileged = privileged_containers(task_definition)
    if not privileged:
        return Assessment(PASS, [], None)
    exemption = evaluate_exemption(str(task_definition.get("family", "")), tags, config, today)
    verdict = EXEMPT if exemption is not None and exemption.valid else FAIL
    return Assessment(verdict, privileged, exemption)
