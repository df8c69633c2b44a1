"""After a verified fixed copy of a daemon task definition exists: which daemons run the privileged revision, moving
them onto the copy (opt-in `daemonRollout`), and deleting the privileged revision (`retire`).

- Daemons only: UpdateDaemon with the daemon's own capacity providers, revision settings and deployment
  configuration carried over (DaemonEcs.update_daemon). Application services are never looked at or touched.
- Every daemon update drains and replaces the daemon's tasks on every instance of its capacity providers. When the
  de-privileged agent fails to start, ECS's circuit breaker (or an alarm) rolls the daemon back to the privileged
  revision; the deployment's outcome comes as `ECS Daemon Deployment State Change` and is reported in a follow-up
  notice (daemons.remediator.DaemonRemediator.report_deployment), for the deployments recorded in the ledger here.
- Fail-closed: when it cannot be established which daemons run a revision, nothing is moved and nothing deleted.
- Retire deletes a daemon task definition only when no daemon's current revision uses it (looked up afresh right
  before DeleteDaemonTaskDefinition); daemons already running a deleted revision keep running it.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..adapters.aws import BotoCoreError, ClientError, error_code, is_transient
from ..adapters.daemon_api import Daemon, DaemonBusy, DaemonEcs, DaemonLookupError
from ..core.config import Config
from ..remediation.rollout import short_ref
from .ledger import DeploymentLedger, StartedDeployment

DaemonLookup = Callable[[], list[Daemon]]  # every daemon of the Region (DaemonEcs.daemons, or a sweep's cached one)

ROLLOUT_CAVEAT = (
    "Moving a daemon (UpdateDaemon) drains and replaces its tasks on every instance of its capacity providers; if the "
    "de-privileged agent fails to start, ECS rolls the daemon back to the privileged revision (circuit breaker or "
    "alarms). The deployment's outcome, rollbacks included, is reported in a follow-up notice."
)


@dataclass
class DaemonFollowup:
    checked: bool = False  # the daemons were looked up
    error: str = ""  # the lookup failed: nobody knows which daemons run the revision
    using: list[dict[str, Any]] = field(default_factory=list)  # the daemons that ran it when looked up
    updated: list[dict[str, str]] = field(default_factory=list)  # cluster, daemon, daemonArn, deploymentArn
    manual: list[dict[str, str]] = field(default_factory=list)  # cluster, daemon, step[, note]
    retired: bool = False
    retire_note: str = ""

    def apply(self, result: Any) -> None:
        """Onto a DaemonResult."""
        result.daemons_checked, result.daemons_error, result.daemons = self.checked, self.error, self.using
        result.daemons_updated, result.daemons_manual = self.updated, self.manual
        result.retired, result.retire_note = self.retired, self.retire_note


def daemon_rows(daemons: list[Daemon]) -> list[dict[str, Any]]:
    """What a notice or a sweep row says of each daemon: where it runs and what its current revisions run."""
    return [
        {
            "cluster": d.cluster_name,
            "daemon": d.name,
            "daemonArn": d.arn,
            "status": d.status,
            "revisions": [short_ref(arn) for arn in d.task_definition_arns],
        }
        for d in daemons
    ]


def look_up(lookup: DaemonLookup, arn: str) -> tuple[list[Daemon] | None, str]:
    """The daemons whose current revisions run `arn`, or (None, why) when that cannot be established. Transient
    errors are raised (the caller's retry)."""
    try:
        daemons = lookup()
    except DaemonLookupError as error:
        return None, f"which daemons run it could not be established: {error}"[:500]
    except (ClientError, BotoCoreError) as error:
        if is_transient(error):
            raise
        return None, f"which daemons run it could not be established: {error_code(error)}"
    return [d for d in daemons if arn in d.task_definition_arns], ""


def used_by(lookup: DaemonLookup, arn: str) -> DaemonFollowup:
    """For a notice that moves nothing (reported, exempt, failed, superseded): the daemons that run `arn`."""
    followup = DaemonFollowup(checked=True)
    using, followup.error = look_up(lookup, arn)
    followup.using = daemon_rows(using or [])
    return followup


def finish(
    api: DaemonEcs,
    config: Config,
    source_arn: str,
    new_arn: str,
    *,
    lookup: DaemonLookup,
    deployments: DeploymentLedger,
    recorded_by: str,
) -> DaemonFollowup:
    """Daemons from `source_arn` onto the verified copy `new_arn` (with `daemon_rollout`), then retire `source_arn`
    (with `retire`). Safe to repeat: a retry finds the moved daemons running the copy."""
    followup = DaemonFollowup(checked=True)
    using, followup.error = look_up(lookup, source_arn)
    if using is None:
        if config.retire:
            followup.retire_note = f"not deleted: {followup.error}"
        return followup
    followup.using = daemon_rows(using)
    for daemon in using:
        if not config.daemon_rollout:
            followup.manual.append(_manual(daemon, new_arn, api.region))
            continue
        try:
            # Described again just before the update: a deploy made since the lookup is never overwritten.
            fresh = api.daemon(daemon.arn)
        except DaemonLookupError as error:
            followup.manual.append(_manual(daemon, new_arn, api.region, f"not moved: {error}"[:300]))
            continue
        if fresh is None or source_arn not in fresh.task_definition_arns:
            now = ", ".join(short_ref(a) for a in fresh.task_definition_arns) if fresh else "nothing (it is gone)"
            followup.manual.append(_manual(daemon, new_arn, api.region, f"not moved: it now runs {now}"))
            continue
        try:
            deployment = api.update_daemon(fresh, new_arn)
        except DaemonBusy as error:
            followup.manual.append(_manual(fresh, new_arn, api.region, f"not moved now: {error}"[:300]))
            continue
        except ClientError as error:
            if is_transient(error):
                raise  # the whole event is retried; daemons already moved no longer run the source
            followup.manual.append(_manual(fresh, new_arn, api.region, f"UpdateDaemon failed: {error_code(error)}"))
            continue
        deployments.record(StartedDeployment(deployment, fresh.arn, source_arn, new_arn), recorded_by)
        followup.updated.append(
            {"cluster": fresh.cluster_name, "daemon": fresh.name, "daemonArn": fresh.arn, "deploymentArn": deployment}
        )
    if config.retire:
        retire(api, source_arn, followup)
    return followup


def retire(api: DaemonEcs, arn: str, followup: DaemonFollowup) -> None:
    """DeleteDaemonTaskDefinition, only when no daemon's current revision uses `arn` (looked up afresh: every daemon
    of the Region); a failed lookup deletes nothing."""
    command = f"aws ecs delete-daemon-task-definition --daemon-task-definition {short_ref(arn)}"
    try:
        using = api.daemons_using(arn)
    except DaemonLookupError as error:
        followup.retire_note = (
            f"not deleted: which daemons run it could not be established ({error}); check, then run {command}"[:1000]
        )
        return
    except (ClientError, BotoCoreError) as error:
        if is_transient(error):
            raise
        followup.retire_note = f"not deleted: the daemon lookup failed ({error_code(error)}); check, then run {command}"
        return
    if using:
        names = ", ".join(f"{d.cluster_name}/{d.name}" for d in using[:5])
        followup.retire_note = (
            f"not deleted: {len(using)} daemon(s) still run it ({names}); once they run a non-privileged revision: "
            f"{command}"
        )
        return
    api.delete(arn)
    followup.retired = True
    followup.retire_note = (
        "deleted (DeleteDaemonTaskDefinition: DELETE_IN_PROGRESS, then DELETED): no daemon's current revision uses it; "
        "no new daemon or update can use it, and daemons already running it keep running it"
    )


def superseded(api: DaemonEcs, config: Config, arn: str, lookup: DaemonLookup) -> DaemonFollowup:
    """A privileged revision that is not its family's latest (not copied: a copy would become the family's latest):
    the daemons that run it, each with the step that moves it; with `retire`, deleted when no daemon runs it."""
    followup = used_by(lookup, arn)
    if followup.error:
        if config.retire:
            followup.retire_note = f"not deleted: {followup.error}"
        return followup
    followup.manual = [
        {
            "cluster": row["cluster"],
            "daemon": row["daemon"],
            "step": "point it at a non-privileged daemon task definition: aws ecs update-daemon --daemon-arn "
            f"{shlex.quote(row['daemonArn'])} --daemon-task-definition-arn ARN --capacity-provider-arns ...",
        }
        for row in followup.using
    ]
    if config.retire:
        retire(api, arn, followup)
    return followup


def manual_step(daemon: Daemon, new_arn: str, region: str) -> str:
    """The exact UpdateDaemon a person runs: the daemon's own capacity providers (required by the API)."""
    providers = [p for r in daemon.revisions[:1] for p in r.capacity_provider_arns]
    region_flag = f" --region {shlex.quote(region)}" if region else ""
    return (
        f"aws ecs update-daemon --daemon-arn {shlex.quote(daemon.arn)} --daemon-task-definition-arn "
        f"{shlex.quote(new_arn)} --capacity-provider-arns {' '.join(shlex.quote(p) for p in providers) or 'ARN ...'}"
        f"{region_flag}"
    )


def _manual(daemon: Daemon, new_arn: str, region: str, note: str = "") -> dict[str, str]:
    entry = {"cluster": daemon.cluster_name, "daemon": daemon.name, "step": manual_step(daemon, new_arn, region)}
    if note:
        entry["note"] = note
    return entry
