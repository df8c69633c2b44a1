"""The sweep of one Region's daemon task definitions, beside its task definitions (sweep.sweep calls `sweep_region`).

The Sweeper's own phases on a daemon store (daemons.revisions.DaemonRevisions): every list read to its last page,
judged in parallel with the same Judge (fail-closed: a failed describe or listing is ERROR, never PASS), marker rows
verified (forged copies are open findings), and in remediate mode the newest privileged revision of each family
copied through the DaemonRemediator (daemon rollout and retire as configured). Then, once per Region, every daemon
with what its current revisions run: each privileged row names the daemons (cluster, daemon, revisions) that run it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from ..adapters import aws
from ..adapters.aws import BotoCoreError, ClientError, safe_error
from ..adapters.daemon_api import Daemon, DaemonApiAbsent, DaemonLookupError
from ..adapters.ledger import Ledger
from ..core.config import Config
from ..core.exemptions.evaluate import ExemptionSource
from ..core.outcomes import Result
from ..core.policy import ERROR, Judge
from ..daemons import rollout as daemon_rollout
from ..daemons.remediator import DaemonRemediator, daemon_remediator
from ..daemons.result import RESOURCE_TYPE, DaemonResult
from ..daemons.revisions import DaemonRevisions
from .rates import DAEMON_LIST
from .report import ACTION_RETIRED, Finding, Progress
from .sweeper import Sweeper

logger = logging.getLogger(__name__)


@dataclass
class DaemonFinding(Finding):
    """A sweep row for a daemon task definition: the Finding, plus the daemons that run it."""

    daemons: list[dict[str, Any]] = field(default_factory=list)
    daemons_error: str = ""

    def to_json(self) -> dict[str, Any]:
        row = super().to_json()
        row["resourceType"] = RESOURCE_TYPE
        row["daemons"] = [f"{d['cluster']}/{d['daemon']} ({', '.join(d['revisions'])})" for d in self.daemons]
        if self.daemons_error:
            row["daemons"].append(f"unknown: {self.daemons_error}")
        return row


def _as_daemon_row(finding: Finding) -> DaemonFinding:
    return DaemonFinding(**{f.name: getattr(finding, f.name) for f in fields(Finding)})


class DaemonSweeper(Sweeper):
    """The Sweeper on daemon task definitions; every daemon of the Region read once (`daemons`)."""

    def __init__(self, revisions: DaemonRevisions, config: Config, **kwargs: Any) -> None:
        super().__init__(revisions, config, **kwargs)
        self.revisions = revisions
        self._daemons: list[Daemon] | None = None
        self._daemons_error: BaseException | None = None
        self._lock = threading.Lock()
        if isinstance(self.remediator, DaemonRemediator):
            self.remediator.daemon_lookup = self.daemons  # once per Region, not once per revision

    def daemons(self) -> list[Daemon]:
        """Every daemon of the Region with what its current revisions run, read on first use (the failure, if any,
        is raised to every caller: nobody then knows which daemons run anything)."""
        with self._lock:
            if self._daemons is None and self._daemons_error is None:
                try:
                    self._daemons = self.revisions.api.daemons()
                except (DaemonLookupError, ClientError, BotoCoreError) as error:
                    self._daemons_error = error
            if self._daemons_error is not None:
                raise self._daemons_error
            assert self._daemons is not None
            return self._daemons

    def run(self) -> list[Finding]:
        findings = super().run()
        privileged = [f for f in findings if isinstance(f, DaemonFinding) and f.privileged_containers]
        if not privileged:
            return findings
        if self.stop.is_set():
            for finding in privileged:
                finding.daemons_error = "which daemons run it was not looked up: the sweep was interrupted"
            return findings
        try:
            daemons = self.daemons()
        except (DaemonLookupError, ClientError, BotoCoreError) as error:
            why = str(error) if isinstance(error, DaemonLookupError) else safe_error(error)
            for finding in privileged:
                finding.daemons_error = f"which daemons run it could not be established: {why}"[:500]
            return findings
        for finding in privileged:
            finding.daemons = daemon_rollout.daemon_rows(
                [d for d in daemons if finding.task_definition_arn in d.task_definition_arns]
            )
        return findings

    def _judge(self, ref: str) -> Finding | None:
        finding = super()._judge(ref)
        return _as_daemon_row(finding) if finding is not None else None

    def _followup_text(self, result: Result) -> str:
        if not isinstance(result, DaemonResult) or not result.daemons_checked:
            return ""
        parts = [f"{RESOURCE_TYPE} copy"]
        if result.daemons_error:
            parts.append(result.daemons_error)
        parts += [
            f"moved {d['cluster']}/{d['daemon']} (deployment {d['deploymentArn']})" for d in result.daemons_updated
        ]
        parts += [
            f"still run by {m['cluster']}/{m['daemon']}: {m['step']}" + (f" [{m['note']}]" if m.get("note") else "")
            for m in result.daemons_manual
        ]
        if not result.daemons and not result.daemons_error:
            parts.append("no daemon runs the privileged revision")
        if result.retire_note:
            parts.append(result.retire_note)
        return "; ".join(parts)

    def _finish_family(self, family: str, rows: list[Finding], copies: Mapping[tuple[str, str], str]) -> None:
        """Older privileged daemon task definitions (active scope, with retire or rollout): deleted with retire when
        no daemon runs them; never copied (a copy would become the family's latest)."""
        for row in sorted(rows, key=lambda f: f.revision):
            followup = daemon_rollout.DaemonFollowup(checked=True)
            if self.config.retire:
                try:
                    daemon_rollout.retire(self.revisions.api, row.task_definition_arn, followup)
                except (ClientError, BotoCoreError) as error:
                    row.status, row.error = ERROR, f"retire failed: {safe_error(error)}"
                    continue
            if followup.retired:
                row.action = f"{ACTION_RETIRED}: no daemon runs it; {followup.retire_note}"
            elif followup.retire_note:
                row.action += f"; {followup.retire_note}"

    def _listing_error(self, error: BaseException) -> Finding:
        return DaemonFinding(
            f"arn:aws:ecs:{self.ecs.region}:*:daemon-task-definition/*",
            ERROR,
            error=f"{DAEMON_LIST} failed, the sweep of daemon task definitions is incomplete: {safe_error(error)}",
            region=self.ecs.region,
            family="~",  # sorts last
        )


@dataclass
class DaemonSweep:
    """One Region's daemon rows; `absent` says why nothing was swept when the endpoint has no daemon API."""

    findings: list[Finding]
    absent: str | None = None
    listing_failed: bool = False


def sweep_region(
    client: Any,
    config: Config,
    *,
    scope: str,
    remediate: bool,
    judge: Judge,
    ledger: Ledger | None,
    concurrency: int,
    progress: Progress | None = None,
    persistence: BasePersistenceLayer | None = None,
    registry: ExemptionSource | None = None,
    lambda_context: Any = None,
    topic: aws.Topic | None = None,
    stop: threading.Event | None = None,
) -> DaemonSweep:
    """The daemon rows of one Region, on the sweep's (rate-limited) ECS client; `topic` replaces the configured one
    (the hub's topic for a member account). An endpoint without the daemon API gives no row and says so once."""
    revisions = DaemonRevisions(client)
    revisions.api.raise_when_absent()
    remediator = _remediator(config, client, persistence, registry, topic) if remediate else None
    if remediator is not None and lambda_context is not None:
        remediator.register_lambda_context(lambda_context)
    sweeper = DaemonSweeper(
        revisions,
        config,
        scope=scope,
        remediator=remediator,
        concurrency=concurrency,
        progress=progress,
        judge=remediator.judge if remediator is not None else judge,
        ledger=remediator.ledger if remediator is not None else ledger,
        stop=stop,
    )
    try:
        return DaemonSweep(sweeper.run(), listing_failed=sweeper.listing_failed)
    except (DaemonApiAbsent, NotImplementedError) as error:
        # NotImplementedError: moto in-process without the daemon emulator (no HTTP answer to classify).
        reason = str(error) if isinstance(error, DaemonApiAbsent) else "not implemented by the emulator"
        logger.info("the ECS endpoint has no daemon API (%s): daemon task definitions were not swept", reason)
        return DaemonSweep([], absent=reason)


def _remediator(
    config: Config,
    client: Any,
    persistence: BasePersistenceLayer | None,
    registry: ExemptionSource | None,
    topic: aws.Topic | None,
) -> DaemonRemediator:
    """As sweep.build_remediator: the shared idempotency table, the notice topic, the registry."""
    if persistence is None and config.idempotency_table:
        persistence = DynamoDBPersistenceLayer(table_name=config.idempotency_table, boto3_client=aws.client("dynamodb"))
    if topic is None and config.topic_arn:
        parts = config.topic_arn.split(":")
        topic = aws.Topic(aws.client("sns", parts[3] if len(parts) > 3 and parts[3] else None), config.topic_arn)
    return daemon_remediator(config, client, topic, persistence, registry=registry, recorded_by="sweep")


__all__ = ["DaemonFinding", "DaemonSweep", "DaemonSweeper", "sweep_region"]
