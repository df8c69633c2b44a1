"""Finishing the job after a fixed copy exists (opt-in): move services onto it, retire the privileged
revision, or count what remains. Every step is safe to repeat: a retry finds the services already moved
and the revision already INACTIVE."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..adapters.aws import ClientError, Ecs, RevisionNotFound, error_code, is_transient
from ..core import managed
from ..core.config import Config
from ..core.described import Described
from ..core.services import Service
from ..core.taskdef import TASK_DEFINITION_ARN_RE, privileged_containers
from .references import Reference, ReferenceLookupFailed, blocking

# Describing every revision of a family to count the privileged ones has a cost; past this many we
# say "at least".
MAX_REVISIONS_COUNTED = 25


class ReferenceFinder(Protocol):
    """What names a revision besides services (EventBridge rule targets, Scheduler schedules:
    remediation/references.py).
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
    known: Sequence[Described] = (),
) -> Followup:
    """Roll services from `source_arn` onto `new_arn` and retire `source_arn`, as configured. `services`: the
    services using `source_arn` when the caller has just looked them up; `count`: count the privileged
    revisions left in the family when it is not retired; `known`: revisions the caller described already (not
    described again)."""
    followup = Followup()
    new_ref = short_ref(new_arn)
    followup.services_checked = config.rollout or config.retire
    if services is None:
        services = ecs.services_using(source_arn) if followup.services_checked else []
    still_using: list[Service] = []
    for service in services:
        if service.held_by:  # a deployment or task set still runs it: nothing to move, and it must not be retired
            still_using.append(service)
            followup.services_manual.append(_held(service, ecs.region))
            continue
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
                deployment, still_running = ecs.update_service(service, new_arn, source_arn)
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
            if still_running:  # ECS keeps the replaced deployment ACTIVE until its tasks are replaced (or rolled back)
                still_using.append(replace(service, held_by=still_running))
            followup.services_updated.append(moved)
        else:
            still_using.append(service)
            note = managed.not_moved_note(service.stack, config.rollout) if service.stack is not None else ""
            followup.services_manual.append(_manual(service, new_ref, ecs.region, note))

    if config.retire:
        if still_using:
            followup.retire_note = (
                f"not deregistered: {_in_use(still_using)}; move them (or let their deployments finish), then run "
                f"aws ecs deregister-task-definition --task-definition {short_ref(source_arn)}"
            )
        else:
            retire_if_unreferenced(ecs, source_arn, references, followup)
    if not followup.retired and count:
        followup.remaining_privileged, followup.remaining_is_lower_bound = count_privileged_active(
            ecs, new_arn, exclude={new_arn}, known=known
        )
    return followup


def retire_unused(ecs: Ecs, config: Config, source_arn: str, references: ReferenceFinder | None) -> Followup:
    """A superseded privileged revision (no fixed copy of it): with retire, deregistered when no service and nothing
    else names it; otherwise the services that use it are listed for the notice."""
    followup = Followup(services_checked=True)
    services = ecs.services_using(source_arn)
    followup.services_manual = [
        _held(s, ecs.region)
        if s.held_by
        else _manual(s, "a fixed copy (ecs-remediate scan --scope active --remediate --rollout)", ecs.region)
        for s in services
    ]
    if config.retire and not services:
        retire_if_unreferenced(ecs, source_arn, references, followup)
    elif config.retire:
        followup.retire_note = f"not deregistered: {_in_use(services)}"
    return followup


def _in_use(services: list[Service]) -> str:
    """`N service(s) still use it (cluster/service[: deployment ...], ...)`: a retire note's reason."""
    names = ", ".join(f"{s.cluster_name}/{s.name}" + (f": {s.held_by}" if s.held_by else "") for s in services[:5])
    return f"{len(services)} service(s) still use it ({names})"


def _held(service: Service, region: str) -> dict[str, Any]:
    """A service that runs the revision only in a deployment or a task set: what runs it, and how that ends."""
    where = f"--cluster {shlex.quote(service.cluster_name)}"
    region_flag = f" --region {region}" if region else ""
    if service.controller == "ECS":  # a rolling deployment under way: it ends, or rolls back onto the revision
        step = f"aws ecs wait services-stable {where} --services {shlex.quote(service.name)}{region_flag}"
    elif service.controller == "EXTERNAL":
        step = f"aws ecs delete-task-set {where} --service {shlex.quote(service.name)} --task-set ID{region_flag}"
    else:  # CODE_DEPLOY: the deployment removes the original task set after its termination wait, or rolls back
        step = f"aws ecs describe-services {where} --services {shlex.quote(service.name)}{region_flag}"
    return {
        "cluster": service.cluster_name,
        "service": service.name,
        "controller": service.controller,
        "step": step,
        "note": f"not moved: {service.held_by} still runs it; it is not retired while one does",
    }


def retire_if_unreferenced(ecs: Ecs, source_arn: str, references: ReferenceFinder | None, followup: Followup) -> None:
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


def count_privileged_active(
    ecs: Ecs, any_arn: str, exclude: set[str], known: Sequence[Described] = ()
) -> tuple[int, bool]:
    """ACTIVE revisions of the family of `any_arn` that still have a privileged container (`known`: described by the
    caller already, not described again). Not listed when `known` holds every revision below `any_arn` (the family's
    first revision and its copy right above it): revision numbers are never reused, so there is nothing else up to
    `any_arn`; what is registered later gets an event of its own. A listed revision whose content the adapter has
    seen is not described again (`Ecs.known_privileged`: content never changes; one deregistered between the listing
    and the count may be counted)."""
    match = TASK_DEFINITION_ARN_RE.match(any_arn)
    family = match["family"] if match else ""
    top = int(match["revision"]) if match else 0
    below = {d.revision: d.arn for d in known if d.family == family and d.revision < top}
    listed = [below[n] for n in sorted(below)] if top and len(below) == top - 1 else ecs.revision_arns(family)
    arns = [a for a in listed if _family_of(a) == family and a not in exclude]
    already = {d.arn: d for d in known}
    count = 0
    for arn in arns[-MAX_REVISIONS_COUNTED:]:
        if arn not in already and (seen := ecs.known_privileged(arn)) is not None:
            count += seen  # content never changes; listed ACTIVE just now
            continue
        try:
            described = already.get(arn) or ecs.describe(arn)
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
