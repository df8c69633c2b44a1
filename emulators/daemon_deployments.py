"""Daemons, their revisions and deployments, for the daemon emulator.

Clusters and capacity providers are read from moto's ECS state (the same server holds both), so a daemon can only
be created in a cluster moto knows, on Managed Instances capacity providers of that cluster. A deployment completes
at once (SUCCESSFUL) unless a test asked otherwise (`DaemonEmulator.set_next_deployment_outcome`).

Where it may differ from AWS:
- a deployment finishes within the request that starts it, SUCCESSFUL unless a hook says ROLLBACK_SUCCESSFUL or
  IN_PROGRESS; nothing drains, bake time and alarms are not evaluated, a newer deployment stops one under way, and
  no `ECS Daemon Deployment State Change` event or CloudTrail record is made;
- a deleted daemon stays DELETE_IN_PROGRESS, listed and running its revisions, until the `finish-delete` hook;
- image digests are the SHA-256 of the image name, not of a pulled image;
- `UpdateDaemon` members left out keep their previous values (AWS does not say whether it keeps or resets them);
- a capacity provider that is not a Managed Instances one of the daemon's cluster is InvalidParameterException,
  a missing cluster ClusterNotFoundException, an inactive daemon DaemonNotActiveException: the cases are the API
  reference's, the codes for the first are this emulator's choice;
- daemons are listed oldest first and deployments newest first (the API reference gives no order);
- the full list, with the reasons: docs/daemons-emulator.md, items 5 and 7-10.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from typing import Any

from emulators.daemon_api import (
    DAEMON_ARN_RE,
    FAMILY_RE,
    JSON,
    ApiError,
    Caller,
    batch_limit,
    check_tags,
    client_error,
    invalid,
    paginate,
)
from emulators.daemon_state import (
    ACTIVE,
    DELETE_IN_PROGRESS,
    DaemonRecord,
    DeploymentRecord,
    RegionState,
    RevisionRecord,
    TaskDefinitionRecord,
)

SETTINGS_DEFAULTS: JSON = {
    "propagateTags": "NONE",
    "enableECSManagedTags": False,
    "enableExecuteCommand": False,
    "critical": True,
}


def moto_ecs(caller: Caller) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[caller.account][caller.region]


class DaemonOperations:
    """The daemon half of `DaemonEmulator` (a mixin: it uses the emulator's clock and task definition lookup, declared
    here and given by the emulator, so that this module does not import it)."""

    def now(self) -> float:
        raise NotImplementedError  # DaemonEmulator.now

    def find_task_definition(
        self, state: RegionState, caller: Caller, identifier: str, *, family_alone: bool
    ) -> TaskDefinitionRecord:
        raise NotImplementedError  # DaemonEmulator.find_task_definition

    # --- daemons ------------------------------------------------------------------------------------------------

    def _create_daemon(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        token = params.pop("clientToken", None)
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
        if token is not None and token in state.client_tokens:
            seen, arn = state.client_tokens[token]
            if seen != digest:
                raise invalid("clientToken was used before with other parameters")
            return self._daemon_response(state.daemons[arn], with_updated=False)
        name = params["daemonName"]
        if not FAMILY_RE.match(name):
            raise invalid("daemonName: up to 255 letters (uppercase and lowercase), numbers, underscores and hyphens")
        cluster = self.cluster(caller, params.get("clusterArn"))
        arn = f"{caller.arn_prefix()}:daemon/{cluster.name}/{name}"
        if arn in state.daemons:
            raise invalid(f"A daemon named {name} already exists in cluster {cluster.name}.")
        task_definition = self.active_task_definition(state, caller, params["daemonTaskDefinitionArn"])
        providers = self.providers(state, caller, params["capacityProviderArns"], cluster.arn)
        now = self.now()
        settings = {key: params.get(key, default) for key, default in SETTINGS_DEFAULTS.items()}
        daemon = DaemonRecord(
            arn=arn,
            name=name,
            cluster_arn=cluster.arn,
            created_at=now,
            updated_at=now,
            tags=check_tags(params.get("tags", [])),
            configuration=params.get("deploymentConfiguration", {}),
            settings=settings,
        )
        state.daemons[arn] = daemon
        self.deploy(state, caller, daemon, task_definition, providers)
        if token is not None:
            state.client_tokens[token] = (digest, arn)
        return self._daemon_response(daemon, with_updated=False)

    def _update_daemon(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        daemon = self.daemon(state, caller, params["daemonArn"])
        if daemon.status != ACTIVE:
            raise ApiError("DaemonNotActiveException", "The daemon is not ACTIVE.")
        self.cluster(caller, daemon.cluster_arn)
        task_definition = self.active_task_definition(state, caller, params["daemonTaskDefinitionArn"])
        providers = self.providers(state, caller, params["capacityProviderArns"], daemon.cluster_arn)
        # Settings left out keep their values (the API reference does not say; see docs/daemons-emulator.md).
        daemon.settings = {**daemon.settings, **{k: params[k] for k in SETTINGS_DEFAULTS if k in params}}
        daemon.configuration = params.get("deploymentConfiguration", daemon.configuration)
        daemon.updated_at = self.now()
        self.deploy(state, caller, daemon, task_definition, providers)
        return self._daemon_response(daemon, with_updated=True)

    def _delete_daemon(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        """DELETE_IN_PROGRESS, still listed and still running its revisions, until `finish_delete` (a test hook)
        stands for the instances being drained."""
        daemon = self.daemon(state, caller, params["daemonArn"])
        if daemon.status != ACTIVE:
            raise ApiError("DaemonNotActiveException", "The daemon is not ACTIVE.")
        daemon.status, daemon.updated_at = DELETE_IN_PROGRESS, self.now()
        for deployment in state.deployments.values():
            if deployment.daemon_arn == daemon.arn and deployment.status in ("PENDING", "IN_PROGRESS"):
                deployment.status, deployment.stopped_at = "STOPPED", daemon.updated_at
                deployment.status_reason = "the daemon is being deleted"
        return self._daemon_response(daemon, with_updated=True)

    def _describe_daemon(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        daemon = self.daemon(state, caller, params["daemonArn"])
        return {
            "daemon": {
                "daemonArn": daemon.arn,
                "clusterArn": daemon.cluster_arn,
                "status": daemon.status,
                "currentRevisions": [state.revisions[arn].detail() for arn in daemon.current_revision_arns],
                "deploymentArn": daemon.deployment_arn,
                "createdAt": daemon.created_at,
                "updatedAt": daemon.updated_at,
            }
        }

    def _list_daemons(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        cluster = self.cluster(caller, params.get("clusterArn"))
        wanted = set(params.get("capacityProviderArns", []))
        daemons = sorted(
            (
                d
                for d in state.daemons.values()
                if d.cluster_arn == cluster.arn
                and (
                    not wanted
                    or wanted & {p for r in d.current_revision_arns for p in state.revisions[r].capacity_provider_arns}
                )
            ),
            key=lambda d: (d.created_at, d.arn),
        )
        filters = {"cluster": cluster.arn, "capacityProviderArns": sorted(wanted)}
        page, token = paginate(daemons, lambda d: (d.created_at, d.arn), params, "ListDaemons", filters)
        body: JSON = {
            "daemonSummariesList": [
                {"daemonArn": d.arn, "status": d.status, "createdAt": d.created_at, "updatedAt": d.updated_at}
                for d in page
            ]
        }
        if token:
            body["nextToken"] = token
        return body

    def _describe_daemon_revisions(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        arns = _batch(params["daemonRevisionArns"], "DescribeDaemonRevisions", "daemonRevisionArns")
        return {
            "daemonRevisions": [state.revisions[arn].describe() for arn in arns if arn in state.revisions],
            "failures": [{"arn": arn, "reason": "MISSING"} for arn in arns if arn not in state.revisions],
        }

    def _describe_daemon_deployments(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        arns = _batch(params["daemonDeploymentArns"], "DescribeDaemonDeployments", "daemonDeploymentArns")
        return {
            "daemonDeployments": [_deployment(state, state.deployments[a]) for a in arns if a in state.deployments],
            "failures": [{"arn": arn, "reason": "MISSING"} for arn in arns if arn not in state.deployments],
        }

    def _list_daemon_deployments(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        if params["daemonArn"] not in state.daemons:
            raise client_error("The specified daemon wasn't found.")
        statuses = set(params.get("status", []))
        window = params.get("createdAt", {})
        deployments = sorted(
            (
                d
                for d in state.deployments.values()
                if d.daemon_arn == params["daemonArn"]
                and (not statuses or d.status in statuses)
                and d.created_at >= float(window.get("after", 0))
                and d.created_at <= float(window.get("before", float("inf")))
            ),
            key=lambda d: (d.created_at, d.arn),
            reverse=True,  # newest first
        )
        filters = {"daemon": params["daemonArn"], "status": sorted(statuses), "createdAt": window}
        page, token = paginate(
            deployments, lambda d: (d.created_at, d.arn), params, "ListDaemonDeployments", filters, descending=True
        )
        body: JSON = {"daemonDeployments": [_deployment_summary(d) for d in page]}
        if token:
            body["nextToken"] = token
        return body

    # --- shared by the operations and the test hooks ------------------------------------------------------------

    def deploy(
        self,
        state: RegionState,
        caller: Caller,
        daemon: DaemonRecord,
        task_definition: TaskDefinitionRecord,
        providers: list[str],
    ) -> None:
        """A new revision and a deployment onto it, ending as the test hook says (SUCCESSFUL by default)."""
        now = self.now()
        suffix = f"{daemon.cluster_arn.rsplit('/', 1)[-1]}/{daemon.name}/{uuid.uuid4().hex[:20]}"
        images = [
            {
                "containerName": c["name"],
                "image": c["image"],
                "imageDigest": "sha256:" + hashlib.sha256(c["image"].encode()).hexdigest(),
            }
            for c in task_definition.params["containerDefinitions"]
        ]
        revision = RevisionRecord(
            f"{caller.arn_prefix()}:daemon-revision/{suffix}",
            daemon.arn,
            daemon.cluster_arn,
            task_definition.arn,
            providers,
            images,
            copy.deepcopy(daemon.settings),
            now,
        )
        state.revisions[revision.arn] = revision
        for previous in state.deployments.values():
            if previous.daemon_arn == daemon.arn and previous.status in ("PENDING", "IN_PROGRESS"):
                previous.status, previous.stopped_at = "STOPPED", now
                previous.status_reason = "superseded by a newer deployment"
        sources = [arn for arn in daemon.current_revision_arns if arn != revision.arn]
        deployment = DeploymentRecord(
            f"{caller.arn_prefix()}:daemon-deployment/{suffix}",
            daemon.arn,
            daemon.cluster_arn,
            revision.arn,
            sources,
            copy.deepcopy(daemon.configuration),
            now,
        )
        state.deployments[deployment.arn] = deployment
        daemon.deployment_arn = deployment.arn
        daemon.current_revision_arns = [revision.arn, *sources]
        deployment.status = "IN_PROGRESS"
        outcome = state.next_outcome.pop(daemon.arn, "SUCCESSFUL") if sources else "SUCCESSFUL"
        if outcome != "IN_PROGRESS":
            self.finish(state, daemon, outcome)

    def finish(self, state: RegionState, daemon: DaemonRecord, outcome: str) -> None:
        deployment = state.deployments[daemon.deployment_arn]
        if deployment.status != "IN_PROGRESS":
            raise ValueError(f"deployment {deployment.arn} is {deployment.status}, not IN_PROGRESS")
        now = self.now()
        if outcome == "ROLLBACK_SUCCESSFUL" and deployment.source_revision_arns:
            target = deployment.source_revision_arns[0]
            deployment.rollback = {
                "reason": "The circuit breaker tripped: daemon tasks failed to start.",
                "startedAt": now,
                "rollbackTargetDaemonRevisionArn": target,
                "rollbackCapacityProviders": list(state.revisions[target].capacity_provider_arns),
            }
            deployment.circuit_breaker = {"status": "TRIGGERED", "failureCount": 3, "threshold": 3}
            deployment.status_reason = "rolled back: the circuit breaker tripped"
            daemon.current_revision_arns = [target]
        else:
            deployment.circuit_breaker = {"status": "MONITORING_COMPLETE", "failureCount": 0, "threshold": 3}
            daemon.current_revision_arns = [deployment.target_revision_arn]
            outcome = "SUCCESSFUL"
        deployment.status, deployment.finished_at = outcome, now

    def cluster(self, caller: Caller, identifier: str | None) -> Any:
        """The moto cluster named (name or ARN; `default` when none is given), or ClusterNotFoundException."""
        identifier = identifier or "default"
        if identifier.startswith("arn:") and not identifier.startswith(f"{caller.arn_prefix()}:cluster/"):
            raise ApiError("ClusterNotFoundException", "Cluster not found.")
        found = moto_ecs(caller).clusters.get(identifier.rsplit("/", 1)[-1])
        if found is None or getattr(found, "status", "ACTIVE") != "ACTIVE":
            raise ApiError("ClusterNotFoundException", "Cluster not found.")
        return found

    def providers(self, state: RegionState, caller: Caller, arns: list[str], cluster: str) -> list[str]:
        """Capacity provider ARNs that exist in moto, are Managed Instances ones and belong to the cluster."""
        if not arns or len(set(arns)) != len(arns):
            raise invalid("capacityProviderArns: one or more distinct capacity provider ARNs are required")
        prefix = f"{caller.arn_prefix()}:capacity-provider/"
        for arn in arns:
            name = arn[len(prefix) :] if arn.startswith(prefix) else None
            if name is None or name not in moto_ecs(caller).capacity_providers:
                raise invalid(f"The capacity provider {arn[:300]} was not found.")
            provider = state.capacity_providers.get(name)
            if provider is None:
                raise invalid(f"{name}: ECS Managed Daemons run only on Managed Instances capacity providers.")
            if provider.cluster_arn != cluster:
                raise invalid(f"{name}: the capacity provider does not belong to the daemon's cluster.")
        return list(arns)

    def active_task_definition(self, state: RegionState, caller: Caller, arn: str) -> Any:
        record = self.find_task_definition(state, caller, arn, family_alone=False)
        if record.status != ACTIVE:
            raise client_error(f"The daemon task definition {record.arn} is not ACTIVE.")
        return record

    def daemon(self, state: RegionState, caller: Caller, arn: str) -> DaemonRecord:
        if not DAEMON_ARN_RE.match(arn):
            raise invalid("daemonArn is not a daemon ARN")
        if arn not in state.daemons:
            raise ApiError("DaemonNotFoundException", "The specified daemon wasn't found.")
        return state.daemons[arn]

    def _daemon_response(self, daemon: DaemonRecord, *, with_updated: bool) -> JSON:
        body: JSON = {
            "daemonArn": daemon.arn,
            "status": daemon.status,
            "createdAt": daemon.created_at,
            "deploymentArn": daemon.deployment_arn,
        }
        if with_updated:
            body["updatedAt"] = daemon.updated_at
        return body


def _batch(arns: list[str], operation: str, member: str) -> list[str]:
    limit = batch_limit(operation, member)
    if not 1 <= len(arns) <= limit:
        raise invalid(f"{member}: between 1 and {limit} ARNs")
    return arns


def _deployment(state: RegionState, deployment: DeploymentRecord) -> JSON:
    alarms = deployment.configuration.get("alarms", {})
    body: JSON = {
        "daemonDeploymentArn": deployment.arn,
        "clusterArn": deployment.cluster_arn,
        "status": deployment.status,
        "targetDaemonRevision": state.revisions[deployment.target_revision_arn].deployment_detail(),
        "sourceDaemonRevisions": [state.revisions[a].deployment_detail() for a in deployment.source_revision_arns],
        "circuitBreaker": copy.deepcopy(deployment.circuit_breaker),
        "alarms": {
            "status": "MONITORING_COMPLETE" if alarms.get("enable") else "DISABLED",
            "alarmNames": list(alarms.get("alarmNames", [])),
            "triggeredAlarmNames": [],
        },
        "deploymentConfiguration": copy.deepcopy(deployment.configuration),
        "createdAt": deployment.created_at,
        "startedAt": deployment.created_at,
    }
    if deployment.rollback is not None:
        body["rollback"] = copy.deepcopy(deployment.rollback)
    return {**body, **_times(deployment)}


def _deployment_summary(deployment: DeploymentRecord) -> JSON:
    body: JSON = {
        "daemonDeploymentArn": deployment.arn,
        "daemonArn": deployment.daemon_arn,
        "clusterArn": deployment.cluster_arn,
        "status": deployment.status,
        "targetDaemonRevisionArn": deployment.target_revision_arn,
        "createdAt": deployment.created_at,
        "startedAt": deployment.created_at,
    }
    return {**body, **_times(deployment)}


def _times(deployment: DeploymentRecord) -> JSON:
    extra: JSON = {}
    if deployment.status_reason:
        extra["statusReason"] = deployment.status_reason
    if deployment.finished_at is not None:
        extra["finishedAt"] = deployment.finished_at
    if deployment.stopped_at is not None:
        extra["stoppedAt"] = deployment.stopped_at
    return extra
