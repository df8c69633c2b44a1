"""Pure: one self-contained HTML page for a sweep, for people who would rather look than read JSON.

No network: the style and the sorting script are inline and the Content-Security-Policy allows nothing
else (no images, fonts, frames or requests). Every value is escaped; the script only reorders rows and reads
`data-sort` attributes, it never builds markup from the data.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..core.policy import ERROR, EXEMPT, FAIL, PASS
from .rows import TITLE, Row, rows_from_report

STATUSES = (PASS, FAIL, EXEMPT, ERROR)
STATUS_RANK = {ERROR: 0, FAIL: 1, EXEMPT: 2, PASS: 3}  # what needs a person first
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
COLUMNS = (
    "Status",
    "Account",
    "Region",
    "Task definition",
    "Privileged containers",
    "Host access",
    "Action",
    "Fix command",
    "Source",
)
HOST_ITEMS = 20  # per level in a cell; the JSON, CSV, OCSF and ASFF outputs have every one

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
p.meta{color:#57606a;margin:0 0 12px}
table{border-collapse:collapse;width:100%;margin-bottom:8px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;white-space:nowrap}
#findings th{cursor:pointer;user-select:none}
#findings th[aria-sort=ascending]::after{content:" \\25B2"}
#findings th[aria-sort=descending]::after{content:" \\25BC"}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
#findings td:nth-child(-n+4){white-space:nowrap}
tfoot td{font-weight:600;background:#f6f8fa}
pre{margin:0;white-space:pre-wrap;word-break:break-all;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
.badge{display:inline-block;padding:0 6px;border-radius:10px;font-weight:600;font-size:12px}
.PASS{background:#dafbe1;color:#116329}.FAIL{background:#ffebe9;color:#a40e26}
.EXEMPT{background:#fff8c5;color:#7d4e00}.ERROR{background:#1b1f24;color:#fff}
tr.fixed td{opacity:.75}
.small{color:#57606a;font-size:12px}
td.host ul{margin:0;padding-left:16px}td.host b{display:block}
.host-equivalent b{color:#a40e26}.host-access b{color:#7d4e00}
"""

# Sort the findings table by the clicked column: numbers as numbers, text as text, stable, toggling.
_SCRIPT = """
(function () {
  var table = document.getElementById("findings");
  var headers = table.tHead.rows[0].cells;
  function key(row, index, numeric) {
    var value = row.cells[index].getAttribute("data-sort");
    return numeric ? parseFloat(value) : value;
  }
  function sortBy(index) {
    var header = headers[index];
    var numeric = header.getAttribute("data-type") === "number";
    var direction = header.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, position) {
      return {row: row, position: position};
    });
    rows.sort(function (a, b) {
      var x = key(a.row, index, numeric), y = key(b.row, index, numeric);
      if (x < y) return -direction;
      if (x > y) return direction;
      return a.position - b.position;
    });
    rows.forEach(function (item) { body.appendChild(item.row); });
    for (var i = 0; i < headers.length; i++) headers[i].removeAttribute("aria-sort");
    header.setAttribute("aria-sort", direction === 1 ? "ascending" : "descending");
  }
  for (var i = 0; i < headers.length; i++) {
    headers[i].addEventListener("click", sortBy.bind(null, i));
  }
})();
"""


@dataclass
class Counts:
    """Verdicts for one account and Region (or all of them)."""

    statuses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    remediated: int = 0
    retired: int = 0
    open: int = 0

    def add(self, row: Row) -> None:
        self.statuses[row.status] = self.statuses.get(row.status, 0) + 1
        self.remediated += row.fixed and not row.retired
        self.retired += row.retired
        self.open += row.open

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def cells(self) -> list[int]:
        return [self.total, *(self.statuses[s] for s in STATUSES), self.remediated, self.retired, self.open]


def counts_by_account_and_region(rows: Iterable[Row]) -> tuple[dict[tuple[str, str], Counts], Counts]:
    groups: dict[tuple[str, str], Counts] = {}
    total = Counts()
    for row in rows:
        groups.setdefault((row.account or "unknown", row.region or "unknown"), Counts()).add(row)
        total.add(row)
    return dict(sorted(groups.items())), total


def page(rows: Sequence[Row], *, now: datetime, scope: str, regions: Sequence[str]) -> str:
    rows = sorted(rows, key=lambda r: (STATUS_RANK.get(r.status, 0), r.account, r.region, r.family, r.revision))
    groups, total = counts_by_account_and_region(rows)
    generated = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    statuses = ", ".join(f"{total.statuses[s]} {s}" for s in STATUSES)
    summary = (
        f"{total.total} revision(s), {scope} scope, {', '.join(regions) or 'no Region'}: {statuses}; "
        f"{total.remediated} remediated; {total.retired} retired; {total.open} left to fix"
    )
    host = sum(1 for row in rows if row.host_equivalents)
    if host:
        summary += f"; {host} still host-equivalent (root on the host without privileged: see Host access)"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>ecs-remediate scan: {_e(summary)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_e(TITLE)}</h1>",
        f'<p class="meta" id="summary">{_e(summary)}</p>',
        f'<p class="meta">Generated by ecs-remediate at {_e(generated)}.</p>',
        "<h2>Counts per account and Region</h2>",
        _counts_table(groups, total),
        "<h2>Findings</h2>",
        '<p class="small">Click a column header to sort; click again to reverse.</p>',
        _findings_table(rows),
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def render(report: Any, *, now: datetime) -> str:
    """`scan --output html`."""
    return page(rows_from_report(report), now=now, scope=report.scope, regions=report.regions)


def _counts_table(groups: dict[tuple[str, str], Counts], total: Counts) -> str:
    heads = ["Account", "Region", "Revisions", *STATUSES, "Remediated", "Retired", "Left to fix"]
    lines = ['<table id="counts"><thead><tr>']
    lines += [f'<th class="{"num" if i > 1 else ""}">{_e(h)}</th>' for i, h in enumerate(heads)]
    lines.append("</tr></thead><tbody>")
    for (account, region), counts in groups.items():
        numbers = "".join(f'<td class="num">{n}</td>' for n in counts.cells())
        lines.append(f'<tr data-account="{_e(account)}" data-region="{_e(region)}"><td>{_e(account)}</td>')
        lines.append(f"<td>{_e(region)}</td>{numbers}</tr>")
    numbers = "".join(f'<td class="num">{n}</td>' for n in total.cells())
    lines.append(f'</tbody><tfoot><tr><td colspan="2">All</td>{numbers}</tr></tfoot></table>')
    return "".join(lines)


def _findings_table(rows: Sequence[Row]) -> str:
    types = ("number", "text", "text", "text", "text", "text", "text", "text", "text")
    lines = ['<table id="findings"><thead><tr>']
    lines += [f'<th data-type="{t}" scope="col">{_e(c)}</th>' for c, t in zip(COLUMNS, types, strict=True)]
    lines.append("</tr></thead><tbody>")
    for row in rows:
        containers = ", ".join(row.privileged_containers) or "-"
        commands = "\n".join(row.fix_commands())
        details = row.action
        if row.error:
            details += f"\n{row.error}"
        if row.new_task_definition_arn:
            details += f"\nnew: {row.new_task_definition_arn}"
        cells = [
            (str(STATUS_RANK.get(row.status, 0)), f'<span class="badge {_e(row.status)}">{_e(row.status)}</span>'),
            (row.account, _e(row.account or "unknown")),
            (row.region, _e(row.region)),
            (f"{row.family} {row.revision:010d}", f'<span title="{_e(row.task_definition_arn)}">{_e(row.name)}</span>'),
            (containers, _e(containers)),
            _host_cell(row),
            (row.action, f"<pre>{_e(details)}</pre>"),
            (commands, f"<pre>{_e(commands)}</pre>" if commands else "-"),
            (row.source, _e(row.source or "-")),
        ]
        classes = "fixed" if row.fixed else ""
        lines.append(f'<tr class="{classes}" data-status="{_e(row.status)}" data-uid="{_e(row.uid)}">')
        classes_of = [' class="host"' if index == HOST_COLUMN else "" for index in range(len(cells))]
        lines += [
            f'<td data-sort="{_e(sort)}"{extra}>{content}</td>'
            for (sort, content), extra in zip(cells, classes_of, strict=True)
        ]
        lines.append("</tr>")
    lines.append("</tbody></table>")
    return "".join(lines)


HOST_COLUMN = COLUMNS.index("Host access")


def _host_cell(row: Row) -> tuple[str, str]:
    """(sort key, markup): the host access the revision keeps, by level (core/hostroot.py), "-" when none; sorted
    host-equivalent first, then host access, then none."""
    parts = []
    for level, word, texts in (
        ("host-equivalent", "still host-equivalent", row.host_equivalents),
        ("host-access", "host access", row.host_access),
    ):
        if texts:
            shown = [f"<li>{_e(text)}</li>" for text in texts[:HOST_ITEMS]]
            if len(texts) > HOST_ITEMS:
                shown.append(f"<li>and {len(texts) - HOST_ITEMS} more</li>")
            parts.append(f'<div class="{level}" data-level="{level}"><b>{_e(word)}</b><ul>{"".join(shown)}</ul></div>')
    if not parts:
        return "2", "-"
    return f"{0 if row.host_equivalents else 1} {row.host_text}", "".join(parts)


def _e(text: str) -> str:
    return html.escape(text, quote=True)
