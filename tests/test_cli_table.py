"""Issue 21, the table: on a terminal it fits the width and wraps, never cuts (every cell reassembled from the
wrapped lines equals the row's text); piped, one whole line per row; colour on a terminal only, NO_COLOR and TERM=dumb
honoured; control characters from hostile text never reach the terminal."""

from __future__ import annotations

import io
import re

import pytest

from ecs_remediate.cli.table import COLUMNS, GAP, fit, write_table
from ecs_remediate.sweep.rates import CallStats
from ecs_remediate.sweep.report import Finding, SweepReport

ANSI = re.compile(r"\x1b\[[0-9;]*m")
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition"
SUPERSEDED = (
    "superseded: used by 2 service(s): prod/web (ECS), prod/web-canary (ECS); --rollout moves them onto a fixed copy "
    "of it (never retired while used)"
)
THROTTLED = "describe failed after retries: ThrottlingException: Rate exceeded (reached max retries: 7)"


def report(*findings: Finding, regions: tuple[str, ...] = ("us-east-1",)) -> SweepReport:
    return SweepReport("active", list(regions), list(findings), CallStats(), 1.0)


def rows() -> SweepReport:
    return report(
        Finding(f"{ARN}/web-app:1", "FAIL", ["app", "sidecar"], action=SUPERSEDED),
        Finding(
            f"{ARN}/a-family-name-long-enough-to-fold-across-lines-of-its-column:12",
            "ERROR",
            error=THROTTLED,
            new_task_definition_arn=f"{ARN}/a-family-name-long-enough-to-fold-across-lines-of-its-column:13",
        ),
        Finding(f"{ARN}/api:1", "PASS"),
        Finding(f"{ARN}/legacy:3", "EXEMPT", ["agent"], action="none: exempt until 2099-01-01: vendor agent (SEC-7)"),
    )


def render(data: SweepReport, *, terminal: bool, columns: int = 80, **environ: str) -> str:
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", str(columns))  # shutil.get_terminal_size reads it first
        write_table(data, stdout, terminal=terminal, environ=environ)
    return stdout.getvalue()


def cells_by_row(text: str) -> list[dict[str, str]]:
    """Each row's cells reassembled from its wrapped lines, by the header's column offsets."""
    header, *lines = ANSI.sub("", text).splitlines()
    names = [c.header for c in COLUMNS if c.header in header]
    starts = [header.index(name) for name in names]
    ends = [*starts[1:], None]
    found: list[dict[str, list[str]]] = []
    for line in lines:
        parts = {name: line[start:end].strip() for name, start, end in zip(names, starts, ends, strict=True)}
        if parts["STATUS"]:
            found.append({name: [] for name in names})
        for name, part in parts.items():
            if part:
                found[-1][name].append(part)
    return [{name: "".join(parts) for name, parts in row.items()} for row in found]


def squeezed(text: str) -> str:
    return "".join(text.split())


def test_on_a_terminal_every_line_fits_and_nothing_is_cut() -> None:
    text = render(rows(), terminal=True, columns=80)
    plain = ANSI.sub("", text)
    assert max(len(line) for line in plain.splitlines()) <= 80
    assert len(plain.splitlines()) > 5  # it did wrap
    cells = cells_by_row(text)
    assert [row["STATUS"] for row in cells] == ["FAIL", "ERROR", "PASS", "EXEMPT"]
    assert squeezed(cells[0]["ACTION"]) == squeezed(SUPERSEDED)
    assert cells[0]["PRIVILEGED"] == "app,sidecar"
    assert squeezed(cells[1]["ERROR"]) == squeezed(THROTTLED)
    assert squeezed(cells[1]["NEW"]) == "a-family-name-long-enough-to-fold-across-lines-of-its-column:13"
    assert "…" not in text and "..." not in text


def test_piped_each_row_is_one_whole_line_without_escapes() -> None:
    text = render(rows(), terminal=False, columns=40)
    lines = text.splitlines()
    assert len(lines) == 5 and "\x1b" not in text
    header = ["STATUS", "TASK", "DEFINITION", "PRIVILEGED", "HOST", "ACCESS", "SOURCE", "ACTION", "NEW", "ERROR"]
    assert lines[0].split() == header
    assert lines[1].startswith("FAIL") and SUPERSEDED in lines[1]
    assert lines[2].startswith("ERROR") and lines[2].endswith(THROTTLED)


def test_a_terminal_narrower_than_the_headers_gets_whole_rows() -> None:
    text = render(rows(), terminal=True, columns=40, NO_COLOR="1")
    plain = ANSI.sub("", text).splitlines()
    assert len(plain) == 5 and SUPERSEDED in plain[1]


def test_colour_on_a_terminal_only_and_never_with_no_color_or_a_dumb_terminal() -> None:
    coloured = render(rows(), terminal=True, TERM="xterm-256color")
    assert "\x1b[1;31mFAIL\x1b[0m" in coloured and "\x1b[32mPASS\x1b[0m" in coloured
    assert "\x1b[33mEXEMPT\x1b[0m" in coloured and "\x1b[1;35mERROR\x1b[0m" in coloured
    for environ in ({"NO_COLOR": "1", "TERM": "xterm"}, {"TERM": "dumb"}):
        assert "\x1b" not in render(rows(), terminal=True, **environ)
    assert "\x1b" not in render(rows(), terminal=False, TERM="xterm-256color")
    assert ANSI.sub("", coloured) == render(rows(), terminal=True, NO_COLOR="1")  # the same table, uncoloured


@pytest.mark.parametrize("terminal", [True, False])
def test_control_characters_never_reach_the_terminal(terminal: bool) -> None:
    hostile = "AccessDenied: \x1b]0;owned\x07 \x1b[2J cleared\r\nsecond line\x00"
    text = render(report(Finding(f"{ARN}/x:1", "ERROR", error=hostile)), terminal=terminal, NO_COLOR="1")
    assert not set(text) & {"\x1b", "\x07", "\r", "\x00"}
    assert "cleared" in text and "secondline" in squeezed(text)


def test_organization_rows_name_account_and_region() -> None:
    finding = Finding(f"{ARN}/web:1", "FAIL", ["app"], region="eu-west-1", account="210987654321")
    data = report(finding, regions=("eu-west-1",))
    data.accounts = ["210987654321"]
    header, line = render(data, terminal=False).splitlines()
    assert header.split()[:4] == ["STATUS", "ACCOUNT", "REGION", "TASK"]
    assert line.split()[:4] == ["FAIL", "210987654321", "eu-west-1", "web:1"]


@pytest.mark.parametrize(
    ("natural", "minimum", "available", "expected"),
    [
        ([6, 10, 40], [6, 4, 5], 100, [6, 10, 40]),  # fits: unchanged
        ([6, 10, 40], [6, 4, 5], 40, [6, 10, 20]),  # the widest gives way first
        ([6, 30, 40], [6, 4, 5], 40, [6, 15, 15]),  # then the next widest with it
        ([6, 30, 40], [6, 20, 20], 40, [6, 30, 40]),  # even the minimums do not fit: left whole
        ([6, 30, 40], [6, 4, 20], 40, [6, 10, 20]),  # never below a minimum
    ],
)
def test_fit(natural: list[int], minimum: list[int], available: int, expected: list[int]) -> None:
    widths = fit(natural, minimum, available)
    assert widths == expected
    if widths != natural:
        assert sum(widths) + len(GAP) * (len(widths) - 1) <= available
