"""The outputs `ecs-remediate verify` reads (lambda/ecs_remediate/cli/verify_stack.py), on both stacks: where the stack
records its copies and notices, and the settings that decide what it does with a privileged registration."""

from __future__ import annotations

from .remediator import Remediator
from .settings import StackSettings


def verify_outputs(settings: StackSettings, remediator: Remediator) -> list[tuple[str, str, str]]:
    """(output id, value, description) for the stack's CfnOutputs."""
    return [
        ("IdempotencyTableName", remediator.table.table_name, "the ledger of copies and the record of each notice"),
        ("Mode", settings.mode, "remediate: fixed copies and notices; report: notices only"),
        ("TagPrefix", settings.tag_prefix, "the prefix of the marker tag on fixed copies"),
        ("NotifyOn", ",".join(settings.notify_on), "the outcomes that are notified"),
    ]
