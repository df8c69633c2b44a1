"""What every `ecs-remediate` command shares: exit codes and the one-line usage error."""

from __future__ import annotations

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input or arguments: one line on stderr, exit 2, nothing on stdout."""


def one_line(text: str) -> str:
    return " ".join(text.split())[:500]
