"""Every CSV the project writes (`scan --output csv`, the organization sweep's report.csv): rows in, safe text out.

Cells carry names the policed wrote (families, containers, daemons, clusters, services, tag values) and they are
opened in spreadsheets, which run a cell that starts with a formula character. Per OWASP's CSV injection guidance
(https://owasp.org/www-community/attacks/CSV_Injection): every cell is quoted (a separator or a quote inside a name
cannot start another cell), and a cell that starts with `=`, `+`, `-`, `@`, a tab or a line break (also after
leading spaces or control characters, and in their full-width forms, which some spreadsheets fold into them) gets
a leading `'`, so that it is read as text and still shows the name. List cells join their items with ";", each
item treated the same way.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

_TRIGGERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
LIST_SEPARATOR = ";"
_LEADING_BLANKS = re.compile(r"^[\s\x00-\x1f\x7f]+")  # spaces and control characters a reader may skip


def safe_cell(value: Any) -> str:
    """`value` as a cell no spreadsheet evaluates: "" for None, a list's items joined by ";" (each made safe), and a
    leading `'` when the text could start a formula."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return safe_cell(LIST_SEPARATOR.join(safe_cell(item) for item in value))
    text = str(value)
    start = text[:1] + _LEADING_BLANKS.sub("", text)[:1]
    return f"'{text}" if any(ch in _TRIGGERS for ch in start) else text


def write_rows(stream: TextIO, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """A header of `columns` and one line per row (other keys ignored), every cell quoted and `safe_cell`."""
    writer = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(column)) for column in columns])


__all__ = ["LIST_SEPARATOR", "safe_cell", "write_rows"]
