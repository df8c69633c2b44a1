"""What every `ecs-remediate` command shares: exit codes and the one-line errors."""

from __future__ import annotations

import signal

# 0: nothing left to fix; 1: findings (FAIL or ERROR rows, or `fix --check` found a privileged container); 2: usage
# (bad arguments, input or environment); 3: nothing could be judged (no credentials, unknown profile, unreachable
# endpoint, every Region failed); 128 + N: stopped by signal N (130: Ctrl-C). docs/cli.md#exit-codes
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_UNJUDGED = 0, 1, 2, 3
EXIT_INTERRUPTED = 128 + signal.SIGINT


class UsageError(Exception):
    """Bad input or arguments: one line on stderr, exit 2, nothing on stdout."""


class Unjudged(Exception):
    """AWS could not be asked at all (credentials, profile, endpoint): one line on stderr, exit 3."""


def printable(text: str) -> str:
    """`text` on one line, without control characters (file contents, tags and AWS error texts reach a terminal)."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def one_line(text: str) -> str:
    return printable(text)[:500]
