"""What a sweep lists and judges by: revision ARNs and their family and number."""

from __future__ import annotations

from .aws import Ecs
from .taskdef import TASK_DEFINITION_ARN_RE

# The adapter makes "latest ACTIVE revision of a family" exact (Ecs.latest_active); the name stays for callers.
SweepEcs = Ecs


def family_revision(arn: str) -> tuple[str, int]:
    match = TASK_DEFINITION_ARN_RE.match(arn)
    return (match["family"], int(match["revision"])) if match else ("", 0)
