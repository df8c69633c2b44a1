"""`ecs-remediate scan -o table`: the rows for people.

On a terminal the table fits its width: the widest columns give way first (never below their header), long cells wrap
at spaces (a word longer than its column, e.g. an ARN, is split across lines), nothing is cut; a terminal narrower than
the headers gets whole rows, which it wraps itself. The STATUS column is coloured on a terminal only, and not with
NO_COLOR set (https://no-color.org) or TERM=dumb. Piped or redirected, each row stays on one line, whole (grep-able).
Cells are printed without control characters: task definitions, tags and AWS error texts are not the terminal's to
interpret.

Plain code rather than rich: rich's Table took 16.6 s for 5,000 rows (3.3 ms a row, measured), a sweep's size.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from ..core.hostroot_model import describe
from ..core.policy import ERROR, EXEMPT, FAIL, PASS
from ..sweep.report import Finding, SweepReport
from .common import printable

GAP = "  "  # between columns
BOLD, RESET = "\x1b[1m", "\x1b[0m"
STATUS_COLOURS = {PASS: "\x1b[32m", FAIL: "\x1b[1;31m", EXEMPT: "\x1b[33m", ERROR: "\x1b[1;35m"}


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Finding], str]
    shown: Callable[[SweepReport], bool] = lambda _report: True
    colours: Mapping[str, str] | None = None  # cell text -> ANSI colour, on a terminal that takes colour


def _short(arn: str | None) -> str:
    return (arn or "").split("task-definition/", 1)[-1] or "-"


def _name(finding: Finding) -> str:
    name = _short(finding.task_definition_arn)
    return f"daemon task definition {name}" if "daemon-task-definition/" in finding.task_definition_arn else name


COLUMNS = (
    Column("STATUS", lambda f: f.status, colours=STATUS_COLOURS),
    Column("ACCOUNT", lambda f: f.account, shown=lambda r: bool(r.accounts)),
    Column("REGION", lambda f: f.region, shown=lambda r: bool(r.accounts) or len(r.regions) > 1),
    Column("TASK DEFINITION", _name),
    Column("PRIVILEGED", lambda f: ",".join(f.privileged_containers) or "-"),
    Column("HOST ACCESS", lambda f: describe(f.host_equivalents, f.host_access)),  # by level (core/hostroot.py)
    Column("SOURCE", lambda f: f.attribution.summary() if f.attribution else "-"),
    Column("ACTION", lambda f: f.action),
    Column("NEW", lambda f: _short(f.new_task_definition_arn)),
    Column("ERROR", lambda f: f.error or "-"),
)


def write_table(
    report: SweepReport, stdout: TextIO, *, terminal: bool, environ: Mapping[str, str] = os.environ
) -> None:
    columns = [column for column in COLUMNS if column.shown(report)]
    rows = [[printable(column.cell(finding)) or "-" for column in columns] for finding in report.findings]
    headers = [column.header for column in columns]
    natural = [max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(headers)]
    widths = fit(natural, [len(h) for h in headers], shutil.get_terminal_size().columns) if terminal else natural
    colour = terminal and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"
    out = [_line([[h] for h in headers], widths, [BOLD if colour else ""] * len(columns))]
    for row in rows:
        cells = [_wrap(text, width) for text, width in zip(row, widths, strict=True)]
        styles = [(c.colours or {}).get(text, "") if colour else "" for c, text in zip(columns, row, strict=True)]
        out.append(_line(cells, widths, styles))
    stdout.write("".join(out))


def fit(natural: Sequence[int], minimum: Sequence[int], available: int) -> list[int]:
    """Column widths within `available` characters (gaps included): the widest columns narrowed first, none below
    its minimum. The natural widths when they fit, or when even the minimums do not."""
    widths = list(natural)
    room = available - len(GAP) * (len(widths) - 1)
    if sum(widths) <= room or sum(minimum) > room:
        return widths
    while sum(widths) > room:
        widest = max(range(len(widths)), key=lambda i: (widths[i] > minimum[i], widths[i]))
        second = max((w for i, w in enumerate(widths) if i != widest), default=0)
        excess = sum(widths) - room
        # down to the next widest (or by the excess, when that is less), at least by one, never below its minimum
        widths[widest] = max(minimum[widest], min(widths[widest] - 1, max(second, widths[widest] - excess)))
    return widths


def _wrap(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [text]


def _line(cells: Sequence[list[str]], widths: Sequence[int], styles: Sequence[str]) -> str:
    """One row, as many lines as its tallest cell; trailing spaces dropped."""
    lines = []
    for depth in range(max(len(cell) for cell in cells)):
        parts = []
        for cell, width, style in zip(cells, widths, styles, strict=True):
            text = cell[depth] if depth < len(cell) else ""
            padded = text.ljust(width)
            parts.append(f"{style}{text}{RESET}{padded[len(text) :]}" if style and text else padded)
        lines.append(GAP.join(parts).rstrip() + "\n")
    return "".join(lines)
