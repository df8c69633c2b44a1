"""The `ecs-remediate` console script: Ctrl-C while the CLI's modules load (most of a second) is one line too."""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # cli_common's, without importing anything yet


def main() -> int:
    try:
        from .main import main as cli_main  # noqa: PLC0415 - imported here so that an interrupt during it is caught
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): stopped before it finished", file=sys.stderr)
        return EXIT_INTERRUPTED
    return cli_main()
