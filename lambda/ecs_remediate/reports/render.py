"""The sweep as a finding report file (`scan -o ocsf|asff|html`): one renderer per format, each pure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from . import asff, html, ocsf

FORMATS = ("ocsf", "asff", "html")


def write_report(report: Any, output: str, stream: TextIO, *, now: datetime | None = None) -> None:
    """Render a `SweepReport` as `output` (one of FORMATS) to `stream`."""
    renderers: dict[str, Callable[..., str]] = {"ocsf": ocsf.render, "asff": asff.render, "html": html.render}
    if output not in renderers:
        raise ValueError(f"report format: expected one of {', '.join(FORMATS)}, got {output!r}")
    stream.write(renderers[output](report, now=now or datetime.now(UTC)))
