"""What a sweep lists and judges by: revision ARNs and their family and number."""

from __future__ import annotations

from ..adapters.aws import Ecs
from ..core.taskdef import DAEMON_TASK_DEFINITION_ARN_RE, TASK_DEFINITION_ARN_RE

# The adapter makes "latest ACTIVE revision of a family" exact (Ecs.latest_active); the name stays for callers.
SweepEcs = Ecs


def family_revision(arn: str) -> tuple[str, int]:
    """(family, revision) of a task definition or daemon task definition ARN; ("", 0) for anything else."""
    match = TASK_DEFINITION_ARN_RE.match(arn) or DAEMON_TASK_DEFINITION_ARN_RE.match(arn)
    return (match["family"], int(match["revision"])) if match else ("", 0)
