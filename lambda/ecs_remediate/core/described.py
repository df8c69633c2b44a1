"""A revision as ECS describes it (DescribeTaskDefinition, or a daemon task definition behind the same interface):
the authority every judgement reads, never the event body."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Described:
    """A revision as DescribeTaskDefinition returned it."""

    task_definition: dict[str, Any]
    tags: list[dict[str, str]]
    unknown_members: list[str] = field(default_factory=list)  # in the raw body, not in the SDK model

    @property
    def arn(self) -> str:
        return str(self.task_definition.get("taskDefinitionArn", ""))

    @property
    def family(self) -> str:
        return str(self.task_definition.get("family", ""))

    @property
    def revision(self) -> int:
        return int(self.task_definition.get("revision", 0))

    @property
    def status(self) -> str:
        return str(self.task_definition.get("status", ""))

    @property
    def registered_by(self) -> str:
        """ECS's own record of the principal that registered the revision ("" when it gives none)."""
        return str(self.task_definition.get("registeredBy") or "")[:2048]
