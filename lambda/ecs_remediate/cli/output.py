"""What `ecs-remediate scan` writes: its rows as a table, JSON or CSV (or a report format of reports.py), and the
progress bar on a terminal's stderr."""

from __future__ import annotations

import json
import threading
import time
from typing import TextIO

from ..reports import render as reports
from ..reports.csv_rows import write_rows
from ..sweep import run as sweep
from ..sweep.report import VERDICT_COLUMNS

OUTPUTS = ("table", "json", "csv", *reports.FORMATS)
_COLUMNS = (*VERDICT_COLUMNS, "forged", "source")
_DAEMON_COLUMNS = ("resourceType", "daemons")  # only when daemon task definitions were swept (sweep/daemons.py)


def write_findings(report: sweep.SweepReport, output: str, stdout: TextIO) -> None:
    if output in reports.FORMATS:
        reports.write_report(report, output, stdout)
        return
    # An organization sweep's rows name their account and Region first.
    rows = [
        {**({"account": f.account, "region": f.region} if report.accounts else {}), **f.to_json()}
        for f in report.findings
    ]
    if output == "json":
        json.dump(rows, stdout, indent=2)
        stdout.write("\n")
    elif output == "csv":
        daemons = any("resourceType" in row for row in rows)
        columns = (
            *(("account", "region") if report.accounts else ()),
            *_COLUMNS,
            *(_DAEMON_COLUMNS if daemons else ()),
        )
        write_rows(stdout, columns, rows)  # lists joined by ";", every cell safe from spreadsheet formulas
    else:
        from .table import write_table  # noqa: PLC0415 - the table's code, for the table only

        write_table(report, stdout, terminal=isatty(stdout))


def isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """`[#####-----] 512/1000  20.1/s  ETA 24s` on one stderr line, redrawn at most 10 times a second."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._total = self._done = 0
        self._started = time.monotonic()
        self._drawn = 0.0
        self._lock = threading.Lock()

    def add_total(self, count: int) -> None:
        with self._lock:
            self._total += count
            self._draw()

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self._done += count
            self._draw(force=self._done == self._total)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        total, done = max(self._total, 1), self._done
        filled = int(self.WIDTH * done / total)
        rate = done / max(now - self._started, 1e-6)
        eta = f"ETA {int((self._total - done) / rate)}s" if rate > 0 and done < self._total else ""
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self._stream.write(f"\r[{bar}] {done}/{self._total} revisions  {rate:.1f}/s  {eta}".ljust(72))
        self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._drawn:
                self._stream.write("\r" + " " * 72 + "\r")
                self._stream.flush()
