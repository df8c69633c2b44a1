"""The remediation path for daemon task definitions (ECS Managed Daemons): the Remediator's own machinery on a daemon
store (daemons.revisions.DaemonRevisions).

Shared with task definitions, unchanged: described afresh and judged by the same Judge (registry exemptions, host-root
equivalents), one copy per source revision (the same idempotency table and key prefix, so the function and the sweep
never both copy), the ledger of copies, provenance (exact content plus ledger or registeredBy), read back before a
notice says anything, notices deduplicated through the same table, "only the family's latest is copied", the race
restore. Specific to daemons, here: the daemons that run a revision (named in every notice), rollout onto the copy and
retire (daemons/rollout.py), tags read with ListTagsForResource (a notice says when they could not be), the images of
the privileged containers, CreateDaemon/UpdateDaemon calls, and the follow-up on the deployments the stack started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from ..adapters.aws import Topic
from ..adapters.daemon_api import DaemonLookupError, DescribedDaemonTaskDefinition
from ..adapters.ledger import Ledger
from ..core.config import Config
from ..core.described import Described
from ..core.events import REGISTER_DAEMON_TASK_DEFINITION
from ..core.exemptions.evaluate import ExemptionSource
from ..core.message import Message
from ..core.outcomes import EXEMPT, FAILED, REPORTED, SUPERSEDED, Result
from ..core.policy import today_utc
from ..core.taskdef import (
    DAEMON_TASK_DEFINITION_ARN_RE,
    build_fixed_copy,
    daemon_family_and_revision,
    privileged_containers,
)
from ..remediation.provenance import described_document
from ..remediation.remediator import Remediator
from ..remediation.rollout import short_ref
from . import rollout as daemon_rollout
from .events import DeploymentEvent
from .ledger import DeploymentLedger, DynamoDeploymentLedger, MemoryDeploymentLedger
from .notice import build_daemon_message
from .result import DEPLOYMENT, DaemonCall, DaemonResult
from .revisions import DaemonRevisions

# A deployment still under way: its outcome event comes later.
UNFINISHED = frozenset({"PENDING", "IN_PROGRESS", "STOP_REQUESTED"})


class DaemonRemediator(Remediator):
    result_type = DaemonResult
    describe_call = "DescribeDaemonTaskDefinition"

    def __init__(
        self,
        config: Config,
        revisions: DaemonRevisions,
        topic: Topic | None = None,
        persistence: BasePersistenceLayer | None = None,
        today: Callable[[], date] = today_utc,
        *,
        ledger: Ledger | None = None,
        registry: ExemptionSource | None = None,
        recorded_by: str = "function",
        deployments: DeploymentLedger | None = None,
        daemon_lookup: daemon_rollout.DaemonLookup | None = None,
    ) -> None:
        super().__init__(
            config, revisions, topic, persistence, today, ledger=ledger, registry=registry, recorded_by=recorded_by
        )
        self.revisions = revisions
        self.api = revisions.api
        self.deployments: DeploymentLedger = (
            deployments or DynamoDeploymentLedger.from_persistence(persistence) or MemoryDeploymentLedger()
        )
        # Every daemon of the Region; a sweep passes one it reads once per Region.
        self.daemon_lookup: daemon_rollout.DaemonLookup = daemon_lookup or self.api.daemons

    # --- the seam -----------------------------------------------------------------------------------------------

    @staticmethod
    def _family_and_revision(arn: str) -> tuple[str, int]:
        return daemon_family_and_revision(arn)

    def _message(self, result: Result) -> Message:
        return build_daemon_message(result, region=self.ecs.region)

    def _notice_key(self, result: Result) -> str:
        if isinstance(result, DaemonResult) and result.outcome == DEPLOYMENT:
            return f"{DEPLOYMENT}|{result.deployment.get('deploymentArn')}|{result.deployment.get('status')}"
        key = super()._notice_key(result)
        call = result.registration
        if isinstance(call, DaemonCall) and call.event_name != REGISTER_DAEMON_TASK_DEFINITION:
            # A daemon pointed at the revision is news even when its registration was notified already.
            key += f"|{call.event_name}|{call.daemon_arn}|{call.event_id}"
        return key

    def _describe(self, result: Result, ref: str) -> Described:
        described = super()._describe(result, ref)
        if isinstance(result, DaemonResult) and described.arn == result.task_definition_arn:
            if isinstance(described, DescribedDaemonTaskDefinition):
                result.tags_error = described.tags_error
            containers = described.task_definition.get("containerDefinitions") or []
            names = set(privileged_containers(described.task_definition))
            result.images = [
                {"container": str(c.get("name", "")), "image": str(c.get("image", ""))[:512]}
                for c in containers
                if isinstance(c, dict) and c.get("name") in names
            ]
        return described

    def _read_back(self, result: Result, copy: Described, source: Described) -> None:
        """As for task definitions, but the tags come from ListTagsForResource, which may refuse: the notice then says
        which tags were not read (the source's: the copy carries only the marker; the copy's: taken as registered)."""
        unread = copy.tags_error if isinstance(copy, DescribedDaemonTaskDefinition) else None
        if unread:
            registered = build_fixed_copy(
                described_document(source, self.ecs.model), self.ecs.model, self._marker(source)
            )
            copy = replace(copy, tags=list(registered.register_input.get("tags", [])))
        super()._read_back(result, copy, source)
        notes = []
        if isinstance(result, DaemonResult) and result.tags_error:
            notes.append(
                f"the source's tags could not be read (ListTagsForResource: {result.tags_error}), so the copy carries "
                "only the marker tag"
            )
        if unread:
            notes.append(f"the copy's tags could not be read back ({unread}): taken as registered")
        if notes and result.copy_verified:
            result.copy_check = (
                f"read back from {short_ref(copy.arn)}: no container is privileged; every other member is as in "
                f"{short_ref(source.arn)}; " + "; ".join(notes)
            )

    # --- what follows a copy, or its absence --------------------------------------------------------------------

    def _follow_up(self, result: Result) -> Result:
        """Daemon rollout and retire onto a verified copy; otherwise only the daemons that run the revision."""
        assert isinstance(result, DaemonResult) and result.new_task_definition_arn is not None
        if not result.copy_verified:
            daemon_rollout.used_by(self.daemon_lookup, result.task_definition_arn).apply(result)
            return result
        followup = daemon_rollout.finish(
            self.api,
            self.config,
            result.task_definition_arn,
            result.new_task_definition_arn,
            lookup=self.daemon_lookup,
            deployments=self.deployments,
            recorded_by=self.recorded_by,
        )
        followup.apply(result)
        return result

    def _superseded(self, result: Result, source: Described, latest: Described) -> Result:
        result.outcome, result.latest_arn = SUPERSEDED, latest.arn
        result.reason = (
            f"superseded: the latest ACTIVE daemon task definition is :{latest.revision}; a copy of an older one would "
            "become the family's latest, so none was made"
        )
        daemon_rollout.superseded(self.api, self.config, source.arn, self.daemon_lookup).apply(result)
        return self._notify(result)

    def _notify(self, result: Result) -> Result:
        """Every daemon notice names the daemons that run the revision (looked up only when a notice goes out)."""
        notified = self.topic is not None and result.outcome in self.config.notify_on
        if (
            notified
            and isinstance(result, DaemonResult)
            and result.outcome in (REPORTED, EXEMPT, FAILED)
            and not result.daemons_checked
            and result.task_definition_arn
        ):
            daemon_rollout.used_by(self.daemon_lookup, result.task_definition_arn).apply(result)
        return super()._notify(result)

    # --- daemon calls and deployments ---------------------------------------------------------------------------

    def process_call(self, call: DaemonCall) -> list[Result]:
        """CreateDaemon / UpdateDaemon: every daemon task definition the daemon now runs (described: its current
        revisions) and the one the request names, each through `process` (a compliant one: no write, no notice)."""
        arns = [call.task_definition_arn] if call.task_definition_arn else []
        if call.daemon_arn:
            try:
                daemon = self.api.daemon(call.daemon_arn)
            except DaemonLookupError:
                daemon = None  # the request's revision is still checked; the sweep sees the rest
            arns += daemon.task_definition_arns if daemon is not None else []
        wanted = [arn for arn in dict.fromkeys(arns) if self._ours(arn, call)]
        return [self.process(replace(call, task_definition_arn=arn)) for arn in wanted]

    def _ours(self, arn: str, call: DaemonCall) -> bool:
        match = DAEMON_TASK_DEFINITION_ARN_RE.match(arn)
        if match is None:
            return False
        return match["region"] == self.ecs.region and (not call.account or match["account"] == call.account)

    def report_deployment(self, event: DeploymentEvent) -> DaemonResult | None:
        """The follow-up notice on a daemon deployment the stack started (its ledger says so), as
        DescribeDaemonDeployments reports it; None when it is not the stack's or not finished."""
        started = self.deployments.started(event.deployment_arn)
        if started is None:
            return None
        deployment = self.api.deployment(event.deployment_arn) or {}
        status = str(deployment.get("status") or "UNKNOWN")
        if status in UNFINISHED:
            return None
        family, revision = daemon_family_and_revision(started.source_arn)
        call = DaemonCall(
            task_definition_arn=started.source_arn,
            event_id=event.event_id,
            account=event.account,
            region=event.region or self.ecs.region,
            event_name=event.event_name,
            daemon_arn=started.daemon_arn,
        )
        result = DaemonResult(
            DEPLOYMENT,
            started.source_arn,
            family,
            revision,
            new_task_definition_arn=started.copy_arn,
            registration=call,
        )
        rollback = deployment.get("rollback") or {}
        result.deployment = {
            "deploymentArn": event.deployment_arn,
            "daemonArn": started.daemon_arn,
            "status": status,
            "statusReason": str(deployment.get("statusReason") or "")[:500],
            "rollbackReason": str(rollback.get("reason") or "")[:500],
            "rollbackTarget": str(rollback.get("rollbackTargetDaemonRevisionArn") or ""),
            "circuitBreaker": str((deployment.get("circuitBreaker") or {}).get("status") or ""),
        }
        try:
            daemon = self.api.daemon(started.daemon_arn)
        except DaemonLookupError as error:
            result.daemons_checked, result.daemons_error = True, f"what it runs now could not be read: {error}"[:500]
        else:
            result.daemons_checked = True
            result.daemons = daemon_rollout.daemon_rows([daemon] if daemon is not None else [])
        if self.topic is not None and "remediated" in self.config.notify_on:
            self._publish_once(request={"key": self._notice_key(result)}, result=result)
        return result


def daemon_remediator(
    config: Config,
    ecs_client: Any,
    topic: Topic | None = None,
    persistence: BasePersistenceLayer | None = None,
    *,
    registry: ExemptionSource | None = None,
    recorded_by: str = "function",
    daemon_lookup: daemon_rollout.DaemonLookup | None = None,
) -> DaemonRemediator:
    """A DaemonRemediator on `ecs_client` (the function's, or a sweep's rate-limited one)."""
    return DaemonRemediator(
        config,
        DaemonRevisions(ecs_client),
        topic,
        persistence,
        registry=registry,
        recorded_by=recorded_by,
        daemon_lookup=daemon_lookup,
    )
