"""Finishing the job after a fixed copy exists (opt-in): move services onto it, retire the privileged
revision, or count what remains. Every step is safe to repeat: a retry finds the services already moved
and the revision already INACTIVE."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from .aws import ClientError, Ecs, RevisionNotFound, Service, error_code, is_transient
from .config import Config
from .taskdef import TASK_DEFINITION_ARN_RE, privileged_containers

# Describing every revision of a family to count the privileged ones has a cost; past this many we
# say "at least".
MAX_REVISIONS_COUNTED = 25


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


def finish(ecs: Ecs, config: Config, source_arn: str, new_arn: str) -> Followup:
    """Roll services from `source_arn` onto `new_arn` and retire `source_arn`, as configured."""
    followup = Followup()
    new_ref = short_ref(new_arn)
    followup.services_checked = config.rollout or config.retire
    services = ecs.services_using(source_arn) if followup.services_checked else []
    still_using: list[Service] = []
    for service in services:
        if config.rollout and service.controller == "ECS":
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
            followup.services_updated.append(
                {"cluster": service.cluster_name, "service": service.name, "deploymentId": deployment}
            )
        else:
            still_using.append(service)
            followup.services_manual.append(_manual(service, new_ref, ecs.region))

    if config.retire:
        if still_using:
            followup.retire_note = (
                f"not deregistered: {len(still_using)} service(s) still use it; move them, then run "
                f"aws ecs deregister-task-definition --task-definition {short_ref(source_arn)}"
            )
        else:
            ecs.deregister(source_arn)
            followup.retired = True
            followup.retire_note = "deregistered (INACTIVE): no service uses it; running tasks are not affected"
    if not followup.retired:
        followup.remaining_privileged, followup.remaining_is_lower_bound = count_privileged_active(
            ecs, new_arn, exclude={new_arn}
        )
    return followup


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
    entry = {
        "cluster": service.cluster_name,
        "service": service.name,
        "controller": service.controller,
        "step": manual_step(service, new_ref, region),
    }
    if note:
        entry["note"] = note
    return entry
