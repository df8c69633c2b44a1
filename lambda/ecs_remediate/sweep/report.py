"""The sweep's rows and report: one Finding per revision, the counts, and the text of what was done."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..core.attribution import Attribution
from ..core.described import Described
from ..core.exemptions.judgement import Exemption
from ..core.outcomes import Result
from ..core.policy import ERROR, EXEMPT, EXPIRY_WARNING_DAYS, FAIL, PASS
from ..remediation.rollout import short_ref
from .rates import CallStats

if TYPE_CHECKING:
    from ..core.config import Config
    from ..remediation.restore import Restoration
    from ..remediation.superseded import Superseded

STATUSES = (PASS, FAIL, EXEMPT, ERROR)

# Actions (the part before the first ":" is the code; what follows explains it).
ACTION_NONE = "none"
ACTION_REPORTED = "reported"
ACTION_REMEDIATED = "remediated"
ACTION_SUPERSEDED = "superseded"
ACTION_RETIRED = "retired"
ACTION_FAILED = "failed"
ACTION_SKIPPED = "skipped"
ACTION_FORGED = "forged"
ACTION_INTERRUPTED = f"{ACTION_SKIPPED}: interrupted before its copy was registered"


@dataclass
class Finding:
    """One row of the sweep: the verdict on one revision and what was done about it."""

    task_definition_arn: str
    status: str
    privileged_containers: list[str] = field(default_factory=list)
    action: str = ACTION_NONE
    new_task_definition_arn: str | None = None
    error: str | None = None
    region: str = ""
    family: str = ""
    revision: int = 0
    marker: str | None = field(default=None, repr=False)  # the marker tag's value: a fixed copy names its source
    expiring: bool = False  # EXEMPT with an exemption that expires within 7 days
    registered_at: datetime | None = field(default=None, repr=False)
    host_equivalents: list[str] = field(default_factory=list)  # still host root without `privileged` (hostroot)
    host_access: list[str] = field(default_factory=list)  # reaches the host, not root by itself (hostroot)
    forged: str | None = None  # claims to be a fixed copy (marker tag) and is not: why
    registered_by: str = ""
    by_family_glob: str | None = None  # EXEMPT through a configured family glob (listed in every summary)
    described: Described | None = field(default=None, repr=False, compare=False)  # kept for provenance checks
    exemption: Exemption | None = field(default=None, repr=False)  # the claim judged (reason, expiry) for reports
    attribution: Attribution | None = None  # where a privileged revision came from (a hint: never a reason to skip)
    account: str = ""  # the member account of an organization sweep ("": the caller's own account)

    @property
    def open(self) -> bool:
        """Left to deal with: an ERROR, a FAIL that was neither remediated nor retired, or a forged copy."""
        return (
            self.status == ERROR
            or (self.status == FAIL and not (self.remediated or self.retired))
            or self.forged is not None
        )

    @property
    def remediated(self) -> bool:
        return self.status == FAIL and self.action.startswith(ACTION_REMEDIATED)

    @property
    def retired(self) -> bool:
        """Deregistered (INACTIVE): scanners that judge every ACTIVE revision no longer see it."""
        return self.status == FAIL and self.action.startswith(ACTION_RETIRED)

    def to_json(self) -> dict[str, Any]:
        return {
            "taskDefinitionArn": self.task_definition_arn,
            "status": self.status,
            "privilegedContainers": list(self.privileged_containers),
            "action": self.action,
            "newTaskDefinitionArn": self.new_task_definition_arn,
            "error": self.error,
            "hostEquivalents": list(self.host_equivalents),
            "hostAccess": list(self.host_access),
            "forged": self.forged,
            "source": self.attribution.summary() if self.attribution else None,
            "attribution": self.attribution.to_json() if self.attribution else None,
            # a registry claim that does not cover the revision: what differs ("other family", "too broad")
            "exemptionMismatch": self.exemption.mismatch if self.exemption is not None else "",
        }


# A row's verdict columns, in the order the CSV outputs give them (the CLI's, the organization sweep's).
VERDICT_COLUMNS = (
    "taskDefinitionArn",
    "status",
    "privilegedContainers",
    "action",
    "newTaskDefinitionArn",
    "error",
    "hostEquivalents",
    "hostAccess",
)


@dataclass
class SweepReport:
    scope: str
    regions: list[str]
    findings: list[Finding]
    stats: CallStats
    seconds: float
    remediate: bool = False
    family_globs: list[str] = field(default_factory=list)  # configured family-glob exemptions (acknowledged)
    too_broad: list[str] = field(
        default_factory=list
    )  # image-digest registry items of earlier versions (exempt nothing)
    inventory: list[InventoryOutcome] = field(default_factory=list)  # per Region where AWS Config was asked
    accounts: list[str] = field(default_factory=list)  # an organization sweep's member accounts ([]: one account)
    kinds: list[str] = field(default_factory=list)  # task-definitions, daemon-task-definitions ([]: not said)
    interrupted: bool = False  # stopped (Ctrl-C) before it finished: the rows are what it judged and did until then
    units: int = 0  # (account,) Region places swept
    unswept: list[str] = field(default_factory=list)  # places where no listing completed: nothing was judged there
    daemon_api_absent: dict[str, str] = field(default_factory=dict)  # place -> why it has no daemon API

    def add_unit(self, account: str, region: str, *, swept: bool, daemon_api_absent: str | None) -> None:
        """What one (account,) Region contributed besides its rows: whether anything was listed there, and whether
        its endpoint has the daemon API."""
        place = f"{account} {region}" if account else region
        self.units += 1
        if not swept:
            self.unswept.append(place)
        if daemon_api_absent is not None:
            self.daemon_api_absent[place] = daemon_api_absent

    @property
    def nothing_judged(self) -> bool:
        """No listing completed anywhere (no credentials that work there, an endpoint that does not answer, access
        denied everywhere): not a verdict of any kind."""
        return self.units > 0 and len(self.unswept) == self.units

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for finding in self.findings:
            counts[finding.status] = counts.get(finding.status, 0) + 1
        return counts

    @property
    def remediated(self) -> int:
        return sum(1 for f in self.findings if f.remediated)

    @property
    def retired(self) -> int:
        return sum(1 for f in self.findings if f.retired)

    @property
    def open(self) -> int:
        return sum(1 for f in self.findings if f.open)

    @property
    def expiring(self) -> list[Finding]:
        """EXEMPT revisions whose exemption expires within 7 days."""
        return [f for f in self.findings if f.expiring]

    def summary(self) -> str:
        counts = self.counts()
        statuses = ", ".join(f"{counts[s]} {s}" for s in STATUSES)
        retired = f"{self.retired} retired; " if self.retired else ""
        text = (
            f"{len(self.findings)} revision(s), {self.scope} scope, {', '.join(self.regions)}: {statuses}; "
            f"{self.remediated} remediated; {retired}{self.open} left to fix; {self.seconds:.1f}s"
        )
        text += "".join(f"\n{outcome.text()}" for outcome in self.inventory)
        if self.daemon_api_absent:
            reasons = sorted(set(self.daemon_api_absent.values()))
            text += (
                f"\nno daemon API at the ECS endpoint of {', '.join(self.daemon_api_absent)} ({'; '.join(reasons)}): "
                "daemon task definitions not swept there"
            )
        host = sum(1 for f in self.findings if f.host_equivalents)
        if host:
            text += f"\n{host} revision(s) still host-equivalent without privileged (hostEquivalents, HOST ACCESS)"
        expiring = self.expiring
        if expiring:
            text += f"\n{len(expiring)} exemption(s) expire within {EXPIRY_WARNING_DAYS} days:"
            text += "".join(f"\n  {f.task_definition_arn}: {f.action}" for f in expiring)
        if self.family_globs:
            text += f"\nfamily globs exempt every matching family, later ones included: {', '.join(self.family_globs)}"
        if self.too_broad:
            text += f"\n{too_broad_text(self.too_broad)}"
        forged = self.forged
        if forged:
            text += f"\n{len(forged)} revision(s) claim to be fixed copies and are not:"
            text += "".join(f"\n  {f.task_definition_arn}: {f.forged}" for f in forged)
        return text

    @property
    def exempt(self) -> list[Finding]:
        return [f for f in self.findings if f.status == EXEMPT]

    @property
    def forged(self) -> list[Finding]:
        return [f for f in self.findings if f.forged is not None]


class Progress(Protocol):
    def add_total(self, count: int) -> None: ...

    def advance(self, count: int = 1) -> None: ...


class NoProgress:
    def add_total(self, count: int) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass


def too_broad_text(digests: Sequence[str]) -> str:
    """Every sweep names the image-digest items of earlier versions until an approver replaces them."""
    return (
        f"{len(digests)} image-digest exemption(s) in the registry are too broad (any family, any account, any "
        "command and host access) and exempt nothing; `ecs-remediate exempt migrate` approves what the revisions "
        f"running them hold: {', '.join(digests[:20])}{' and more' if len(digests) > 20 else ''}"
    )


def name_error_rows(findings: Sequence[Finding]) -> None:
    """Latest scope: a family whose describe failed has no ARN yet; give it the family's ARN prefix when any
    other row shows the account (the revision stays unknown: `...:task-definition/family`)."""
    prefix = next((f.task_definition_arn.split("task-definition/")[0] for f in findings if f.revision), None)
    if prefix is None:
        return
    for finding in findings:
        if finding.status == ERROR and ":" not in finding.task_definition_arn:
            finding.task_definition_arn = f"{prefix}task-definition/{finding.task_definition_arn}"


def services_text(updated: Sequence[Mapping[str, str]], manual: Sequence[Mapping[str, str]]) -> list[str]:
    """The services rollout moved (with their deployments) and those left for a person (with the step)."""
    parts = []
    if updated:
        parts.append(
            "moved "
            + ", ".join(
                f"{s['cluster']}/{s['service']} (deployment {s['deploymentId']})"
                + (f" [{s['note']}]" if "note" in s else "")
                for s in updated
            )
        )
    if manual:
        parts.append(
            "still used by "
            + "; ".join(
                f"{s['cluster']}/{s['service']} ({s['controller']}): {s['step']}"
                + (f" [{s['note']}]" if "note" in s else "")
                for s in manual
            )
        )
    return parts


def followup_text(result: Result) -> str:
    """What rollout/retire did after a remediation (the Remediator's result)."""
    parts = services_text(result.services_updated, result.services_manual)
    if not result.services_updated and not result.services_manual:
        parts.append("no service uses the privileged revision")
    if result.retire_note:
        parts.append(result.retire_note)
    if result.remaining_privileged is not None:
        bound = "+" if result.remaining_is_lower_bound else ""
        parts.append(f"{result.remaining_privileged}{bound} ACTIVE privileged revision(s) left in the family")
    return "; ".join(parts)


def superseded_action(outcome: Superseded, config: Config) -> str:
    """An older privileged revision's row action: what finish_superseded found and did."""
    services = ", ".join(
        f"{s.cluster_name}/{s.name} ({s.controller}{': ' + s.held_by if s.held_by else ''})" for s in outcome.services
    )
    if not outcome.services:
        if outcome.retired:
            return f"{ACTION_RETIRED}: no service uses it; deregistered (INACTIVE)"
        return f"{ACTION_SUPERSEDED}: no service uses it; --retire would deregister it"
    used = f"used by {len(outcome.services)} service(s): {services}"
    if all(s.held_by for s in outcome.services):  # deployments or task sets only: nothing to move
        return f"{ACTION_SUPERSEDED}: {used}; never retired while a deployment or task set runs it"
    if not config.rollout:
        return f"{ACTION_SUPERSEDED}: {used}; --rollout moves them onto a fixed copy of it (never retired while used)"
    if outcome.followup is None or outcome.copy_arn is None:
        return f"{ACTION_SUPERSEDED}: {used}; {outcome.skipped}"
    followup = outcome.followup
    copy_ref = f":{outcome.copy_arn.rsplit(':', 1)[-1]}"
    parts = [f"fixed copy {copy_ref} {'registered' if outcome.copy_registered else 'found'}"]
    if outcome.restoration is not None:
        parts.append(restored_text(outcome.restoration))
    parts += services_text(followup.services_updated, followup.services_manual)
    if followup.retired:
        parts.append("deregistered (INACTIVE)")
    elif config.retire:
        parts.append(followup.retire_note)
    else:
        parts.append("--retire would deregister it once no service uses it")
    return f"{ACTION_RETIRED if outcome.retired else ACTION_SUPERSEDED}: " + "; ".join(parts)


def restored_text(restoration: Restoration) -> str:
    """A row's words for what was registered to keep the family's latest (remediation/restore.py)."""
    text = ""
    if restoration.restored and restoration.restored_from:
        text = (
            f"family latest restored as :{restoration.restored.rsplit(':', 1)[-1]} "
            f"(copy of {short_ref(restoration.restored_from)})"
        )
    if restoration.raced or restoration.lost:
        text += f"{'; ' if text else ''}{restoration.note}"
    return text


@dataclass
class InventoryOutcome:
    """What the Config plan did in one Region: how many rows came from Config, why the others were described."""

    region: str
    source: str
    listed: int = 0
    from_config: int = 0
    privileged: int = 0  # described: Config says a container is privileged
    marked: int = 0  # described: the record carries the marker tag
    unknown: int = 0  # described: Config has no record of that ARN
    unreadable: int = 0  # described: the record does not read cleanly
    after_failure: int = 0  # described: Config failed before they were decided
    records: int = 0  # records Config returned (INACTIVE revisions it remembers included)
    fallback: str | None = None  # why describes replaced Config (a failure, or Config knows none of them)

    @property
    def described(self) -> int:
        return self.listed - self.from_config

    def text(self) -> str:
        where = f"{self.region}: AWS Config ({self.source})"
        if self.fallback is not None:
            return f"{where}: {self.fallback}; {self.described} of {self.listed} revision(s) described"
        reasons = [
            f"{count} {why}"
            for count, why in (
                (self.privileged, "privileged per Config"),
                (self.marked, "with the marker tag"),
                (self.unknown, "Config has no record of"),
                (self.unreadable, "with a record that does not read cleanly"),
            )
            if count
        ]
        return (
            f"{where}: {self.from_config} of {self.listed} revision(s) judged PASS from Config's records; "
            f"{self.described} described" + (f" ({', '.join(reasons)})" if reasons else "")
        )
