"""The verdict on one revision: privileged containers, what else reaches the host (core/hostroot.py), and exemptions.

`assess` is pure. `Judge` gathers what it needs (registry items, a recorded tag approval) through the sources it
is given, and only for privileged revisions: a compliant one costs no lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from .config import Config
from .exemptions.evaluate import ExemptionSource, evaluate_exemption, registry_targets
from .exemptions.judgement import EXPIRY_WARNING_DAYS, Exemption
from .exemptions.records import ExemptionRecord
from .hostroot import host_equivalents, texts_by_level
from .taskdef import privileged_containers

if TYPE_CHECKING:
    from .exemptions.records import RegistryItem

PASS, FAIL, EXEMPT, ERROR = "PASS", "FAIL", "EXEMPT", "ERROR"

__all__ = ["ERROR", "EXEMPT", "EXPIRY_WARNING_DAYS", "FAIL", "PASS", "Assessment", "Exemption", "Judge", "assess"]


@dataclass(frozen=True)
class Assessment:
    """The verdict on one revision, as ECS.4 and Prowler's check would give it, plus exemptions."""

    verdict: str  # PASS | FAIL | EXEMPT
    privileged: list[str]
    exemption: Exemption | None
    host_equivalents: list[str] = field(default_factory=list)  # hostroot texts, level host-equivalent
    host_access: list[str] = field(default_factory=list)  # hostroot texts, level host-access


def assess(
    task_definition: Mapping[str, Any],
    *,
    arn: str,
    tags: Iterable[Mapping[str, str]] | None,
    config: Config,
    today: date,
    records: Sequence[RegistryItem] = (),
    tag_approval: ExemptionRecord | None = None,
) -> Assessment:
    privileged = privileged_containers(task_definition)
    equivalents, access = texts_by_level(host_equivalents(task_definition))
    if not privileged:
        return Assessment(PASS, [], None, equivalents, access)
    exemption = evaluate_exemption(
        family=str(task_definition.get("family", "")),
        arn=arn,
        task_definition=task_definition,
        tags=tags,
        records=records,
        tag_approval=tag_approval,
        rules=config.exemption_rules,
        today=today,
    )
    verdict = EXEMPT if exemption is not None and exemption.valid else FAIL
    return Assessment(verdict, privileged, exemption, equivalents, access)


def host_equivalent_texts(task_definition: Mapping[str, Any]) -> list[str]:
    """Everything that reaches the host besides `privileged`, both levels (capabilities, host mounts, pidMode host)."""
    return [item.text for item in host_equivalents(task_definition)]


def today_utc() -> date:
    return datetime.now(UTC).date()


class Judge:
    """Assessments with the exemption sources of a stack: the registry, and recorded tag approvals."""

    def __init__(
        self,
        config: Config,
        registry: ExemptionSource | None = None,
        tag_approvals: Callable[[str], ExemptionRecord | None] | None = None,
        today: Callable[[], date] = today_utc,
    ) -> None:
        self.config = config
        self.registry = registry
        self.tag_approvals = tag_approvals
        self.today = today

    def assess(
        self, arn: str, task_definition: Mapping[str, Any], tags: Iterable[Mapping[str, str]] | None
    ) -> Assessment:
        """Raises exemptions.RegistryUnavailable when the registry cannot be read for a privileged revision."""
        if not privileged_containers(task_definition):
            return assess(task_definition, arn=arn, tags=tags, config=self.config, today=self.today())
        records = self.registry.lookup(registry_targets(arn, task_definition)) if self.registry is not None else []
        approval = None
        if self.config.tag_exemptions and self.tag_approvals is not None:
            approval = self.tag_approvals(arn)
        return assess(
            task_definition,
            arn=arn,
            tags=tags,
            config=self.config,
            today=self.today(),
            records=records,
            tag_approval=approval,
        )
