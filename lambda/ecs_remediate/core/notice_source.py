"""Pure: the parts of a notice about the revision's source (issue 15): who or what registered it, what to change
there (the snippet for that tool), and, for a family remediated again and again, the escalation with its history.

Everything here is a name, an ARN, a product token or a time (core/attribution.py cleans and caps them), so it can go
into a notice as it is.
"""

from __future__ import annotations

from .outcomes import EXEMPT, FAILED, REMEDIATED, REPORTED, SUPERSEDED, Result

# Outcomes whose revision is still privileged somewhere upstream: the notice says what to change at the source.
FIX_AT_SOURCE = (REMEDIATED, REPORTED, FAILED, SUPERSEDED)
MAX_HISTORY_LINES = 20
TRUST_NOTE = "(a hint from tags, CloudTrail and the user agent; the user agent is whatever the caller sends)"


def source_lines(result: Result) -> list[str]:
    """`Source:` with the evidence and, for a privileged revision, the change to make at the source."""
    attribution = result.attribution
    if attribution is None or result.outcome not in (*FIX_AT_SOURCE, EXEMPT):
        return []
    lines = ["", f"Source:          {attribution.summary()} {TRUST_NOTE}"]
    if attribution.evidence:
        lines.append(f"Recognised from: {'; '.join(attribution.evidence)}")
    if attribution.stack_arn:
        lines.append(f"Stack:           {attribution.stack_arn}")
    if result.outcome in FIX_AT_SOURCE:
        lines += ["", "What to change at the source:"]
        lines += [f"  {line}" if line else "" for line in attribution.snippet(result.privileged).splitlines()]
    return lines


def escalation_lines(result: Result) -> list[str]:
    """For a family remediated again within the window: why this notice escalates, and the history."""
    if not result.escalation:
        return []
    lines = [
        "",
        f"ESCALATED:       {result.escalation}.",
        "                 Each copy lasts only until the next registration from that source; fix the source "
        "(see below), or this family is remediated again on every deploy.",
        "",
        "Remediations of this family in the window (oldest first):",
    ]
    for entry in result.repeats[-MAX_HISTORY_LINES:]:
        who = entry.get("registeredBy") or "unknown"
        source = f" [{entry['source']}]" if entry.get("source") else ""
        lines.append(f"  - {entry.get('at', '?')} {entry.get('revision', '?')} -> {entry.get('copy', '?')}")
        lines.append(f"    registered by {who}{source}")
    return [*lines, ""]


def escalated_title(result: Result) -> str:
    """The subject's title for an escalated notice (ASCII, short)."""
    return f"privileged AGAIN ({len(result.repeats)}x): fix the source"
