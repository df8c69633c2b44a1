"""Finishing the job after a fixed copy exists (opt-in): move services onto it, retire the privileged
revision, or count what remains. Every step is safe to repeat: a retry finds the services already moved
and the revision already INACTIVE."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import managed
from .aws import BotoCoreError, ClientError, Described, Ecs, RevisionNotFound, Service, error_code, is_transient
from .config import Config
from .ledger import Ledger
from .provenance import content_matches
from .references import Reference, ReferenceLookupFailed, blocking
from .taskdef import (
    TASK_DEFINITION_ARN_RE,
    Document,
    TaskDefinitionError,
    build_fixed_copy,
    privileged_containers,
    tag_value,
)

# Describing every revision of a family to count the privileged ones has a cost; past this many we
# say "at least".
MAX_REVISIONS_COUNTED = 25


class ReferenceFinder(Protocol):
    """What names a revision besides services (EventBridge rule targets, Scheduler schedules: references.py).
    `find` raises ReferenceLookupFailed when it cannot tell, and then nothing is retired."""

    def find(self, task_definition_arn: str) -> list[Reference]: ...


@dataclass
class Followup:
    services_checked: bool = False  # services were looked up (rollout or retire on)
    services_updated: list[dict[str, str]] = field(default_factory=list)  # cluster, service, deploymentId
    services_manual: list[dict[str, str]] = field(default_factory=list)  # cluster, service, controller, step
    retired: bool = False
    retire_note: str = ""
    remaining_privileged: int | None = None  # ACTIVE privileged revisions left in the family
    remaining_is_lower_bound: bool = False


def manual_step(service: Service, new_ref: str, region: str) -> str:
    where = f"--cluster {shlex.quote(service.cluster_name)} --service {shlex.quote(service.name)}"
    region_flag = f" --region {region}" if region else ""
    if service.controller == "CODE_DEPLOY":
        return (
            f"blue/green (CodeDeploy): deploy an AppSpec whose TaskDefinition is {new_ref} "
            f"(aws deploy create-deployment ...{region_flag})"
        )
    if service.controller == "EXTERNAL":
        return f"external controller: aws ecs create-task-set {where} --task-definition {new_ref}{region_flag} ..."
    return f"aws ecs update-service {where} --task-definition {new_ref}{region_flag}"


def finish(
    ecs: Ecs,
    config: Config,
    source_arn: str,
    new_arn: str,
    *,
    services: list[Service] | None = None,
    count: bool = True,
    references: ReferenceFinder | None = None,
) -> Followup:
    """Roll services from `source_arn` onto `new_arn` and retire `source_arn`, as configured. `services`: the
    services using `source_arn` when the caller has just looked them up; `count`: count the privileged
    revisions left in the family when it is not retired."""
    followup = Followup()
    new_ref = short_ref(new_arn)
    followup.services_checked = config.rollout or config.retire
    if services is None:
        services = ecs.services_using(source_arn) if followup.services_checked else []
    still_using: list[Service] = []
    for service in services:
        if config.rollout and service.controller == "ECS" and managed.moves(service, config.rollout_managed):
            # Re-described just before the update: a deploy made since the lookup is never overwritten.
            now_on = ecs.service_task_definition(service)
            if now_on != source_arn:
                changed = short_ref(now_on) if now_on else "nothing (the service is gone)"
                followup.services_manual.append(
                    _manual(
                        service,
                        new_ref,
                        ecs.region,
                        f"not moved: its task definition changed to {changed} since it was looked up",
                    )
                )
                continue
            try:
                deployment = ecs.update_service(service, new_arn)
            except ClientError as error:
                if is_transient(error):
                    raise  # the whole event is retried; services already moved are no longer found
                still_using.append(service)
                followup.services_manual.append(
                    _manual(service, new_ref, ecs.region, f"UpdateService failed: {error_code(error)}")
                )
                continue
            moved = {"cluster": service.cluster_name, "service": service.name, "deploymentId": deployment}
            if service.stack is not None:
                moved["note"] = managed.moved_note(service.stack)
            followup.services_updated.append(moved)
        else:
            still_using.append(service)
            note = managed.not_moved_note(service.stack, config.rollout) if service.stack is not None else ""
            followup.services_manual.append(_manual(service, new_ref, ecs.region, note))

    if config.retire:
        if still_using:
            followup.retire_note = (
                f"not deregistered: {len(still_using)} service(s) still use it; move them, then run "
                f"aws ecs deregister-task-definition --task-definition {short_ref(source_arn)}"
            )
        else:
            _retire_if_unreferenced(ecs, source_arn, references, followup)
    if not followup.retired and count:
        followup.remaining_privileged, followup.remaining_is_lower_bound = count_privileged_active(
            ecs, new_arn, exclude={new_arn}
        )
    return followup


def retire_unused(ecs: Ecs, config: Config, source_arn: str, references: ReferenceFinder | None) -> Followup:
    """A superseded privileged revision (no fixed copy of it): with retire, deregistered when no service and nothing
    else names it; otherwise the services that use it are listed for the notice."""
    followup = Followup(services_checked=True)
    services = ecs.services_using(source_arn)
    followup.services_manual = [
        _manual(s, "a fixed copy (ecs-remediate scan --scope active --remediate --rollout)", ecs.region)
        for s in services
    ]
    if config.retire and not services:
        _retire_if_unreferenced(ecs, source_arn, references, followup)
    elif config.retire:
        followup.retire_note = f"not deregistered: {len(services)} service(s) still use it"
    return followup


def _retire_if_unreferenced(ecs: Ecs, source_arn: str, references: ReferenceFinder | None, followup: Followup) -> None:
    """Deregister `source_arn` unless a rule target or a schedule names it (or that cannot be told)."""
    command = f"aws ecs deregister-task-definition --task-definition {short_ref(source_arn)}"
    if references is not None:
        try:
            # Only revisions that are not their family's latest are retired, so a family reference is unaffected.
            found = blocking(references.find(source_arn), revision_is_latest_active=False)
        except ReferenceLookupFailed as error:  # fail-closed: nobody knows what would break, so nothing is retired
            followup.retire_note = f"not deregistered: {error}; check, then run {command}"[:1000]
            return
        if found:
            names = "; ".join(r.text for r in found[:5])
            followup.retire_note = (
                f"not deregistered: {len(found)} scheduled use(s) name it ({names}); point them at the fixed copy, "
                f"then run {command}"
            )
            return
    ecs.deregister(source_arn)
    followup.retired = True
    followup.retire_note = "deregistered (INACTIVE): no service or schedule uses it; running tasks are not affected"


def count_privileged_active(ecs: Ecs, any_arn: str, exclude: set[str]) -> tuple[int, bool]:
    """ACTIVE revisions of the family of `any_arn` that still have a privileged container."""
    match = TASK_DEFINITION_ARN_RE.match(any_arn)
    family = match["family"] if match else ""
    arns = [a for a in ecs.revision_arns(family) if _family_of(a) == family and a not in exclude]
    count = 0
    for arn in arns[-MAX_REVISIONS_COUNTED:]:
        try:
            described = ecs.describe(arn)
        except RevisionNotFound:
            continue
        if described.status == "ACTIVE" and privileged_containers(described.task_definition):
            count += 1
    return count, len(arns) > MAX_REVISIONS_COUNTED


def short_ref(arn: str) -> str:
    """`family:revision` from a revision ARN."""
    return arn.rsplit("/", 1)[-1]


def _family_of(arn: str) -> str:
    return short_ref(arn).rsplit(":", 1)[0]


def _manual(service: Service, new_ref: str, region: str, note: str = "") -> dict[str, Any]:
    step = (
        managed.stack_step(service.stack, region)
        if service.stack is not None
        else manual_step(service, new_ref, region)
    )
    entry = {"cluster": service.cluster_name, "service": service.name, "controller": service.controller, "step": step}
    if note:
        entry["note"] = note
    return entry


# Older privileged revisions (the sweep's `--scope active`). A copy of an older revision becomes the family's
# latest, which would roll back anyone who deploys by family name; so right after registering it, the
# family's previous latest is registered again (a copy of it), and "latest" means what it meant before.


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
    restored_arn: str | None = None  # the copy of the previous latest registered after it
    restored_from: str | None = None
    skipped: str = ""  # why no copy was made although services use it
    followup: Followup | None = None
    retired: bool = False


def marker_value(family: str, revision: int) -> str:
    """The marker tag value naming the source revision: `family:revision` (just the number if too long)."""
    text = f"{family}:{revision}"
    return text if len(text) <= 256 else str(revision)


def marker_revision(value: str | None) -> int | None:
    """The revision a marker value names (see `marker_value`)."""
    if not value:
        return None
    tail = value.rsplit(":", 1)[-1]
    return int(tail) if tail.isascii() and tail.isdigit() else None


def finish_superseded(
    ecs: Ecs,
    config: Config,
    source: Described,
    copy_arn: str | None = None,
    latest: Described | None = None,
    *,
    ledger: Ledger,
    references: ReferenceFinder | None = None,
) -> Superseded:
    """An ACTIVE privileged revision that is not its family's latest.

    - No service uses it: deregistered with `retire` (unless a rule target or schedule names it); otherwise left.
    - Services use it and `rollout` is on: a fixed copy of it is registered (marker tag naming it, recorded in the
      ledger) unless `copy_arn` names one already (a copy the caller verified: provenance.verify_copy), the
      family's previous latest is registered again right after so that the family's latest content does not
      change, then ECS-controlled services move onto the copy (the others are listed with the manual step) and,
      with `retire`, it is deregistered once nothing uses it.
    - The previous latest must be free of privileged containers (the copy of it is registered unchanged), and some
      service must be movable (not all CloudFormation-managed, unless rollout_managed: managed.py); otherwise
      nothing is copied and `skipped` says why.

    Safe to repeat: a rerun finds the copy (pass it as `copy_arn`), moved services and INACTIVE revisions.
    ClientError/BotoCoreError from the service lookup propagate (the caller keeps the revision ERROR)."""
    try:
        outcome = Superseded(services=ecs.services_using(source.arn))
    except (ClientError, BotoCoreError) as error:
        raise ServiceLookupFailed(f"service lookup failed: {error_code(error)}: {error}") from error
    if not outcome.services:
        if config.retire:
            followup = Followup(services_checked=True)
            _retire_if_unreferenced(ecs, source.arn, references, followup)
            outcome.retired, outcome.followup = followup.retired, followup
        return outcome
    if not config.rollout:
        return outcome
    if not any(managed.moves(s, config.rollout_managed) for s in outcome.services):
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
        copied, restored = _register_copy_and_restore(ecs, config, source, latest, ledger)
        outcome.copy_arn, outcome.copy_registered = copied.arn, True
        outcome.restored_arn, outcome.restored_from = restored.arn, latest.arn
    else:
        outcome.copy_arn = copy_arn
    outcome.followup = finish(
        ecs, config, source.arn, outcome.copy_arn, services=outcome.services, count=False, references=references
    )
    outcome.retired = outcome.followup.retired
    return outcome


def restore_if_rolled_back(
    ecs: Ecs, config: Config, family: str, *, ledger: Ledger, is_our_copy: Callable[[Described], bool]
) -> tuple[str, str] | None:
    """Repairs an interrupted `finish_superseded`: when the family's latest is our verified copy of an older
    revision (`is_our_copy`; its marker names revision k) and a revision between k and it, not itself such a copy,
    is ACTIVE, the newest such revision is registered again. Returns (restored ARN, its source ARN), or None."""
    latest = ecs.describe(family)
    named = marker_revision(tag_value(latest.tags, config.marker_tag_key))
    if named is None or named >= latest.revision - 1 or not is_our_copy(latest):
        return None
    between = sorted((r for r in ecs.family_revisions(family) if named < r < latest.revision), reverse=True)
    for revision in between:
        try:
            candidate = ecs.describe(f"{latest.arn.rsplit(':', 1)[0]}:{revision}")
        except RevisionNotFound:
            continue
        own = marker_revision(tag_value(candidate.tags, config.marker_tag_key))
        if candidate.status != "ACTIVE" or (own is not None and own < named):
            continue  # itself a copy of an older revision: not what was latest
        if privileged_containers(candidate.task_definition):
            return None
        restored = _register_fixed(ecs, config, candidate, ledger)
        return restored.arn, candidate.arn
    return None


def _register_copy_and_restore(
    ecs: Ecs, config: Config, source: Described, latest: Described, ledger: Ledger
) -> tuple[Described, Described]:
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
    try:
        restored = _register_fixed(ecs, config, latest, ledger)
    except ClientError as error:
        if is_transient(error):
            raise  # a rerun finds the copy as the latest and restores it (restore_if_rolled_back)
        try:
            ecs.deregister(copied.arn)  # undo: the previous latest is the latest again
        except ClientError as undo_error:
            raise SupersededError(
                f"registering the copy of {short_ref(latest.arn)} failed ({error_code(error)}) and deregistering "
                f"{short_ref(copied.arn)} failed too ({error_code(undo_error)}): the family's latest is a copy of "
                f"{short_ref(source.arn)}; deregister it or rerun"
            ) from error
        raise SupersededError(
            f"registering the copy of {short_ref(latest.arn)} failed ({error_code(error)}: {error}); "
            f"{short_ref(copied.arn)} was deregistered again, nothing changed"
        ) from error
    return copied, restored


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
