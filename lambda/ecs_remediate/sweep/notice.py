"""The scheduled sweep's summary notice: counts, the rows still open, what was fixed, retired, exempt or expiring,
and the next command (the function's per-revision notices are core/notice.py's)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.hostroot_model import describe
from ..core.message import Message
from ..core.notice import CONTROL
from .report import too_broad_text

_SCOPE_TEXT = {"latest": "newest ACTIVE revision of each family", "active": "every ACTIVE revision"}
SUMMARY_ROWS = 20  # rows named in a sweep summary; the topic sends each body in several formats (256 KB cap)


def build_sweep_summary(
    *,
    region: str,
    scope: str,
    mode: str,
    counts: Mapping[str, int],
    open_rows: Sequence[Mapping[str, Any]],
    remediated_rows: Sequence[Mapping[str, Any]],
    seconds: float,
    account: str = "",
    retired_rows: Sequence[Mapping[str, Any]] = (),
    expiring_rows: Sequence[Mapping[str, Any]] = (),
    exempt_rows: Sequence[Mapping[str, Any]] = (),
    family_globs: Sequence[str] = (),
    too_broad: Sequence[str] = (),
    inventory: Sequence[str] = (),
    inventory_fallback: bool = False,
    host_rows: Sequence[Mapping[str, Any]] = (),
) -> Message:
    """One notice for a scheduled sweep: counts, the revisions left to fix (FAIL and ERROR), those fixed, the
    older privileged revisions deregistered (retire), the exemptions that expire within 7 days, and the revisions
    with no privileged container that are still host-equivalent (`host_rows`: core/hostroot.py's verdict).

    Rows are the sweep's JSON rows (ARNs, container names, actions, errors): nothing from a task definition's
    body, so no environment value can leak into the notice.
    """
    fails, errors = counts.get("FAIL", 0), counts.get("ERROR", 0)
    left = len(open_rows)
    parts = [f"{left} left to fix" if left else "nothing left to fix"]
    if remediated_rows:
        parts.append(f"{len(remediated_rows)} remediated")
    if retired_rows:
        parts.append(f"{len(retired_rows)} retired")
    if exempt_rows:
        parts.append(f"{len(exempt_rows)} exempt")
    if expiring_rows:
        parts.append(f"{len(expiring_rows)} exemption(s) expiring")
    forged_rows = [row for row in open_rows if row.get("forged")]
    if forged_rows:
        parts.append(f"{len(forged_rows)} FORGED copy marker(s)")
    if errors:
        parts.append(f"{errors} ERROR")
    if host_rows:
        parts.append(f"{len(host_rows)} without privileged still host-equivalent")
    if inventory_fallback:
        parts.append("AWS Config not used (fell back to describes)")
    if too_broad:
        parts.append(f"{len(too_broad)} too-broad exemption(s)")
    title = f"[{CONTROL}] sweep {region or 'unknown'}: {', '.join(parts)}"
    severity = "HIGH" if left else "MEDIUM"
    if family_globs:
        lines_globs = [
            "",
            "Family globs exempt every matching family, including families created later by anyone who can "
            f"register one: {', '.join(family_globs)}",
        ]
    else:
        lines_globs = []
    if too_broad:
        lines_globs += ["", too_broad_text(too_broad)]
    lines = [
        title,
        "",
        f"Region:          {region or 'unknown'}",
        f"Account:         {account or 'unknown'}",
        f"Scope:           {scope} ({_SCOPE_TEXT.get(scope, scope)})",
        f"Mode:            {mode}",
        f"Verdicts:        {', '.join(f'{counts.get(s, 0)} {s}' for s in ('PASS', 'FAIL', 'EXEMPT', 'ERROR'))}"
        f" ({fails} FAIL includes the {len(remediated_rows)} remediated)",
        f"Duration:        {seconds:.0f} s",
        *(f"AWS Config:      {line}" for line in inventory),  # where the sweep judged from Config, or why not
    ]
    if errors:
        lines += [
            "",
            "ERROR rows could not be judged (fail-closed: never counted as PASS); the next sweep retries them.",
        ]
    for heading, rows in (
        ("Left to fix:", open_rows),
        ("Remediated (a non-privileged copy is now the latest revision):", remediated_rows),
        ("Retired (older privileged revisions deregistered; running tasks are not affected):", retired_rows),
        (
            "Exemptions expiring within 7 days (renew the exemption in the registry, or fix the workload):",
            expiring_rows,
        ),
        ("Exempt (privileged, an approved exemption holds):", exempt_rows),
        ("No privileged container, still host-equivalent (root on the host without privileged):", host_rows),
    ):
        lines += _row_section(heading, rows)
    lines += lines_globs
    region_flag = f" --region {shlex.quote(region)}" if region else ""
    commands = [f"ecs-remediate scan{region_flag} --scope {scope} --output table"]
    if open_rows:
        commands.append(f"ecs-remediate scan{region_flag} --scope {scope} --remediate")
    lines += ["", "Next:"] + [f"  {c}" for c in commands]
    payload: dict[str, Any] = {
        "control": CONTROL,
        "kind": "sweep",
        "account": account,
        "region": region,
        "scope": scope,
        "mode": mode,
        "severity": severity,
        "counts": dict(counts),
        "open": left,
        "remediated": len(remediated_rows),
        "openFindings": [_trim(row) for row in open_rows[:SUMMARY_ROWS]],
        "remediatedFindings": [_trim(row) for row in remediated_rows[:SUMMARY_ROWS]],
        "retired": len(retired_rows),
        "retiredFindings": [_trim(row) for row in retired_rows[:SUMMARY_ROWS]],
        "expiringExemptions": [_trim(row) for row in expiring_rows[:SUMMARY_ROWS]],
        "exempt": len(exempt_rows),
        "exemptFindings": [_trim(row) for row in exempt_rows[:SUMMARY_ROWS]],
        "hostEquivalent": len(host_rows),
        "hostEquivalentFindings": [_trim(row) for row in host_rows[:SUMMARY_ROWS]],
        "familyGlobExemptions": list(family_globs),
        "tooBroadExemptions": list(too_broad),
        "inventory": list(inventory),
        "truncated": max(0, left - SUMMARY_ROWS)
        + max(0, len(remediated_rows) - SUMMARY_ROWS)
        + max(0, len(retired_rows) - SUMMARY_ROWS)
        + max(0, len(expiring_rows) - SUMMARY_ROWS)
        + max(0, len(exempt_rows) - SUMMARY_ROWS)
        + max(0, len(host_rows) - SUMMARY_ROWS),
        "nextCommands": commands,
    }
    attributes = {"outcome": "sweep", "severity": severity, "family": "*"}
    return Message(title, "\n".join(lines) + "\n", payload, attributes)  # Message fits the subject to SNS


def _row_section(heading: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """A titled list of at most SUMMARY_ROWS rows, and how many more there are; nothing for no rows."""
    if not rows:
        return []
    lines = ["", heading] + [_row_line(row) for row in rows[:SUMMARY_ROWS]]
    if len(rows) > SUMMARY_ROWS:
        lines.append(f"  ... and {len(rows) - SUMMARY_ROWS} more")
    return lines


def _row_line(row: Mapping[str, Any]) -> str:
    text = f"  - {row.get('status')} {row.get('taskDefinitionArn')}"
    if row.get("privilegedContainers"):
        text += f" ({', '.join(row['privilegedContainers'])})"
    if row.get("newTaskDefinitionArn"):
        text += f" -> {row['newTaskDefinitionArn']}"
    elif row.get("action") and row.get("action") != "none":
        text += f": {str(row['action'])[:200]}"
    if row.get("error"):
        text += f" [{str(row['error'])[:200]}]"
    if row.get("forged"):
        text += f" [FORGED: {str(row['forged'])[:200]}]"
    host = describe(_texts(row.get("hostEquivalents")), _texts(row.get("hostAccess")), max_chars=200)
    if host:
        text += f" [{host}]"
    if row.get("source"):
        text += f" [source: {str(row['source'])[:200]}]"
    return text


def _texts(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _trim(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v[:300] if isinstance(v, str) else v) for k, v in row.items()}
