"""Older privileged revisions (the sweep's `--scope active`): retired when unused; with rollout, the ones services
use get a fixed copy of their own. A copy of an older revision becomes the family's latest, which would roll back
anyone who deploys by family name; so right after registering it, the family's previous latest (or a deploy newer
still, registered meanwhile) is registered again (remediation/restore.py), and "latest" keeps its content."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..adapters.aws import BotoCoreError, ClientError, Ecs, RevisionNotFound, error_code, safe_error
from ..adapters.ledger import Ledger
from ..core import managed
from ..core.config import Config
from ..core.described import Described
from ..core.services import Service
from ..core.taskdef import Document, TaskDefinitionError, build_fixed_copy, privileged_containers, tag_value
from .provenance import content_matches
from .restore import Restoration, Restorer
from .rollout import Followup, ReferenceFinder, finish, marker_revision, marker_value, retire_if_unreferenced, short_ref


class SupersededError(Exception):
    """A step for an older revision failed for a permanent reason; the message says which and what was undone."""


class ServiceLookupFailed(Exception):
    """ListClusters/ListServices/DescribeServices failed: nobody knows which services use the revision."""


@dataclass
class Superseded:
    """What `finish_superseded` found and did for one older privileged revision."""

    services: list[Service] = field(default_factory=list)  # services using it when looked up
    copy_arn: str | None = None  # its fixed copy (registered now or found)
    copy_registered: bool = False
    restoration: Restoration | None = None  # what was registered after the copy to keep the family's latest
    skipped: str = ""  # why no copy was made although services use it
    followup: Followup | None = None
    retired: bool = False


def finish_superseded(
    ecs: Ecs,
    config: Config,
    source: Described,
    copy_arn: str | None = None,
    latest: Described | None = None,
    *,
    ledger: Ledger,
    restorer: Restorer,
    references: ReferenceFinder | None = None,
) -> Superseded:
    """An ACTIVE privileged revision that is not its family's latest.

    - No service uses it: deregistered with `retire` (unless a rule target or schedule names it); otherwise left.
    - Services use it and `rollout` is on: a fixed copy of it is registered (marker tag naming it, recorded in the
      ledger) unless `copy_arn` names one already (a copy the caller verified: provenance.verify_copy), the
      family's previous latest (or a deploy newer still, registered meanwhile) is registered again right after by
      `restorer` (remediation/restore.py) so that the family's latest content does not go back, then ECS-controlled
      services move onto the copy (the others are listed with the manual step) and, with `retire`, it is
      deregistered once nothing uses it.
    - The previous latest must be free of privileged containers (the copy of it is registered unchanged), and some
      service must be movable (not all CloudFormation-managed, unless rollout_managed: core/managed.py); otherwise
      nothing is copied and `skipped` says why.

    Safe to repeat: a rerun finds the copy (pass it as `copy_arn`), moved services and INACTIVE revisions.
    ClientError/BotoCoreError from the service lookup propagate (the caller keeps the revision ERROR)."""
    try:
        outcome = Superseded(services=ecs.services_using(source.arn))
    except (ClientError, BotoCoreError) as error:
        raise ServiceLookupFailed(f"service lookup failed: {safe_error(error)}") from error
    if not outcome.services:
        if config.retire:
            followup = Followup(services_checked=True)
            retire_if_unreferenced(ecs, source.arn, references, followup)
            outcome.retired, outcome.followup = followup.retired, followup
        return outcome
    if not config.rollout:
        return outcome
    if all(s.held_by for s in outcome.services):
        held = "; ".join(f"{s.cluster_name}/{s.name}: {s.held_by}" for s in outcome.services[:5])
        outcome.skipped = (
            f"not copied: no service runs it as its task definition, only deployments or task sets ({held}); it is not "
            "retired while they do"
        )
        return outcome
    if not any(managed.moves(s, config.rollout_managed) for s in outcome.services if not s.held_by):
        stacks = ", ".join(sorted({s.stack.name for s in outcome.services if s.stack is not None}))
        outcome.skipped = (
            f"not copied: every service that uses it belongs to a CloudFormation stack ({stacks}); moving them would "
            "give the stack drift: fix Privileged in the template and update the stack (rolloutManaged=true moves "
            "them anyway)"
        )
        return outcome
    if copy_arn is not None:
        try:
            found = ecs.describe(copy_arn)
        except RevisionNotFound:
            found = None
        copy_arn = copy_arn if found is not None and found.status == "ACTIVE" else None
    if copy_arn is None:
        latest = latest or ecs.describe(source.family)
        if privileged_containers(latest.task_definition):
            outcome.skipped = (
                f"not copied: the latest revision :{latest.revision} is itself privileged, so the family's latest "
                "could not be restored after the copy"
            )
            return outcome
        copied, outcome.restoration = _register_copy_and_restore(
            ecs, config, source, latest, ledger=ledger, restorer=restorer
        )
        outcome.copy_arn, outcome.copy_registered = copied.arn, True
    else:
        outcome.copy_arn = copy_arn
    outcome.followup = finish(
        ecs, config, source.arn, outcome.copy_arn, services=outcome.services, count=False, references=references
    )
    outcome.retired = outcome.followup.retired
    return outcome


def restore_if_rolled_back(
    ecs: Ecs, config: Config, family: str, *, restorer: Restorer, is_our_copy: Callable[[Described], bool]
) -> Restoration | None:
    """Repairs an interrupted `finish_superseded`: when the family's latest is our verified copy of an older
    revision (`is_our_copy`; its marker names revision k), the newest deploy between k and it is registered again
    (remediation/restore.py: re-checked, bounded). Returns what was done, or None when nothing needed doing."""
    latest = ecs.describe(family)
    named = marker_revision(tag_value(latest.tags, config.marker_tag_key))
    if named is None or named >= latest.revision - 1 or not is_our_copy(latest):
        return None
    restoration = restorer.keep_latest(latest.arn, named + 1)
    return restoration if restoration.restored or restoration.lost else None


def _register_copy_and_restore(
    ecs: Ecs, config: Config, source: Described, latest: Described, *, ledger: Ledger, restorer: Restorer
) -> tuple[Described, Restoration]:
    # Both documents are built (and validated offline) before anything is registered.
    for described in (source, latest):
        if described.unknown_members:
            raise SupersededError(
                f"{short_ref(described.arn)}: the API returned field(s) this SDK's model does not know "
                f"({', '.join(described.unknown_members[:10])}); a copy would lose them"
            )
    _params(ecs, config, source)
    _params(ecs, config, latest)
    copied = _register_fixed(ecs, config, source, ledger)
    restoration = restorer.keep_latest(copied.arn, latest.revision + 1, want=latest)
    if restoration.restored is None:  # nothing registered after the copy: undo it, the latest is what it was
        try:
            ecs.deregister(copied.arn)
        except ClientError as undo_error:
            raise SupersededError(
                f"restoring the family's latest after {short_ref(copied.arn)} failed ({restoration.failure}) and "
                f"deregistering {short_ref(copied.arn)} failed too ({error_code(undo_error)}): the family's latest is "
                f"a copy of {short_ref(source.arn)}; deregister it or rerun"
            ) from undo_error
        raise SupersededError(
            f"restoring the family's latest after {short_ref(copied.arn)} failed ({restoration.failure}); "
            f"{short_ref(copied.arn)} was deregistered again, nothing changed"
        )
    return copied, restoration


def _params(ecs: Ecs, config: Config, described: Described) -> dict[str, Any]:
    try:
        fix = build_fixed_copy(
            Document("describe-response", described.task_definition, described.tags),
            ecs.model,
            _marker(config, described),
        )
    except TaskDefinitionError as error:
        raise SupersededError(f"{short_ref(described.arn)}: {error}") from error
    return fix.register_input


def _marker(config: Config, described: Described) -> tuple[str, str]:
    return config.marker_tag_key, marker_value(described.family, described.revision)


def _register_fixed(ecs: Ecs, config: Config, described: Described, ledger: Ledger) -> Described:
    """Register the fixed copy of `described` and record it in the ledger. After an ambiguous failure the
    family's latest counts as registered only if it holds exactly that copy."""
    marker = _marker(config, described)

    def already_registered() -> Described | None:
        latest = ecs.describe(described.family)
        if latest.revision > described.revision and content_matches(latest, described, ecs.model, marker):
            return latest
        return None

    registered = ecs.register(_params(ecs, config, described), already_registered)
    ledger.record_copy(described.arn, registered.arn, "sweep")
    return registered
