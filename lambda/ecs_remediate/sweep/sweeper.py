"""One account and Region swept: list, judge in parallel, then act on what failed (the unit of work shared by
`ecs-remediate scan`, the scheduled function and the organization sweep's item)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

from aws_lambda_powertools.utilities.idempotency.exceptions import BaseError as IdempotencyError
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from ..adapters.aws import BotoCoreError, ClientError, RevisionNotFound, safe_error
from ..adapters.aws_errors import scrub
from ..adapters.ledger import Ledger, MemoryLedger
from ..core.attribution import attribute
from ..core.config import Config
from ..core.events import Registration
from ..core.exemptions.evaluate import RegistryUnavailable
from ..core.outcomes import COMPLIANT, REMEDIATED, REPORTED, SUPERSEDED, Result
from ..core.outcomes import EXEMPT as OUTCOME_EXEMPT
from ..core.policy import ERROR, EXEMPT, FAIL, PASS, Exemption, Judge, today_utc
from ..core.taskdef import tag_value
from ..remediation.remediator import RemediationFailed, Remediator
from ..remediation.rollout import ReferenceFinder, marker_value
from ..remediation.superseded import ServiceLookupFailed, SupersededError, finish_superseded, restore_if_rolled_back
from .inventory import ConfigPlan, Decision
from .listing import SweepEcs, family_revision
from .provenance import verify_marked_rows
from .rates import DEFAULT_CONCURRENCY, LIST_FAMILIES, LIST_REVISIONS, SweepError
from .report import (
    ACTION_FAILED,
    ACTION_INTERRUPTED,
    ACTION_NONE,
    ACTION_REMEDIATED,
    ACTION_REPORTED,
    ACTION_RETIRED,
    ACTION_SKIPPED,
    ACTION_SUPERSEDED,
    Finding,
    NoProgress,
    Progress,
    followup_text,
    name_error_rows,
    restored_text,
    superseded_action,
)

logger = logging.getLogger(__name__)

LATEST, ACTIVE = "latest", "active"
SCOPES = (LATEST, ACTIVE)
MAX_CONCURRENCY = 256
# A sweep without the function's idempotency table leaves revisions younger than this to the function.
RECENT_REGISTRATION = timedelta(minutes=30)


class Sweeper:
    """The sweep of one Region: list, judge in parallel, then act on what failed."""

    def __init__(
        self,
        ecs: SweepEcs,
        config: Config,
        *,
        scope: str = ACTIVE,
        remediator: Remediator | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        today: Callable[[], date] = today_utc,
        progress: Progress | None = None,
        judge: Judge | None = None,
        ledger: Ledger | None = None,
        references: ReferenceFinder | None = None,
        plan: ConfigPlan | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        if scope not in SCOPES:
            raise SweepError(f"scope: expected one of {', '.join(SCOPES)}, got {scope!r}")
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise SweepError(f"concurrency: expected 1-{MAX_CONCURRENCY}, got {concurrency}")
        self.ecs, self.config, self.scope = ecs, config, scope
        self.remediator, self.concurrency = remediator, concurrency
        self._today = today
        self.progress: Progress = progress or NoProgress()
        # Judged as the function judges (its exemption sources), proofs from the same ledger as its copies.
        self.judge = judge or (remediator.judge if remediator is not None else Judge(config, today=today))
        self.ledger: Ledger = ledger or (remediator.ledger if remediator is not None else MemoryLedger())
        self._references = references or (remediator.references if remediator is not None else None)
        self.plan = plan  # active scope: judge from AWS Config's records where they vouch for a revision
        # Set (Ctrl-C in the CLI): nothing new starts; what is in flight finishes and is reported as it ended.
        self.stop = stop or threading.Event()
        self.listing_failed = False  # the listing failed part-way (an ERROR row stands for the rest)

    def run(self) -> list[Finding]:
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="sweep") as pool:
            # Phase 1: judge. Describes start while later pages are still being listed.
            findings, listing_error = self._judge_all(pool)
            name_error_rows(findings)
            # Which revisions that carry a marker are verified copies (rollout and retire act on those only), and
            # which claim it falsely (forged rows, open findings).
            copies = verify_marked_rows(findings, self.ecs, self.config, self.ledger)
            # Phase 2: act. Only the newest ACTIVE revision of a family may be copied.
            newest: dict[str, int] = {}
            for finding in findings:  # ERROR rows count too: never copy a revision older than one unjudged
                newest[finding.family] = max(newest.get(finding.family, 0), finding.revision)
            actions: list[tuple[Finding, Future[None]]] = []
            superseded: dict[str, list[Finding]] = {}
            for finding in findings:
                if finding.status != FAIL:
                    continue
                if finding.revision < newest.get(finding.family, 0):
                    self._superseded(finding, newest[finding.family])
                    superseded.setdefault(finding.family, []).append(finding)
                elif self.remediator is not None and self._left_to_the_function(finding):
                    continue
                elif self.remediator is not None and self.stop.is_set():
                    finding.action = ACTION_INTERRUPTED
                elif self.remediator is not None:
                    actions.append((finding, pool.submit(self._remediate, finding)))
                else:
                    finding.action = ACTION_REPORTED
            for finding, action in actions:
                try:
                    action.result()
                except Exception as error:  # fail-closed: a bug in one row must not lose the others
                    text = scrub(error)  # the traceback logged says our words, not the error's text
                    logger.exception("remediation of %s failed unexpectedly", finding.task_definition_arn)
                    finding.action, finding.error = ACTION_FAILED, text
            # Phase 3 (active scope, with rollout or retire): older privileged revisions, once the latest of each
            # family was dealt with. One task per family: its steps depend on the family's latest.
            finish = self.remediator is not None and (self.config.rollout or self.config.retire)
            if finish and superseded and not self.stop.is_set():
                families = [
                    (rows, pool.submit(self._finish_family, family, rows, copies))
                    for family, rows in superseded.items()
                ]
                for rows, done in families:
                    try:
                        done.result()
                    except Exception as error:  # fail-closed, as above
                        text = scrub(error)
                        logger.exception("finishing older revisions of %s failed unexpectedly", rows[0].family)
                        for row in rows:
                            if not (row.retired or row.status == ERROR):
                                row.action, row.error = ACTION_FAILED, text
        if listing_error is not None:
            findings.append(listing_error)
        return sorted(findings, key=lambda f: (f.family, f.revision, f.task_definition_arn))

    def _judge_all(self, pool: ThreadPoolExecutor) -> tuple[list[Finding], Finding | None]:
        """Every revision listed, judged on `pool`; the ERROR row of a listing that failed part-way, if one did."""
        futures: list[tuple[str, Future[Finding | None]]] = []
        listing_error: Finding | None = None
        try:
            for ref, ready in self._decisions():
                if self.stop.is_set():
                    break
                self.progress.add_total(1)
                future = pool.submit(self._judge, ref) if ready is None else _completed(ready)
                future.add_done_callback(self._advance)
                futures.append((ref, future))
        except (ClientError, BotoCoreError) as error:
            listing_error = self._listing_error(error)
            self.listing_failed = True
        findings = []
        for ref, future in futures:
            finding = _result_or_error(future, ref, self.ecs.region)
            if finding is not None:
                findings.append(finding)
        return findings, listing_error

    def _advance(self, _: Future[Finding | None]) -> None:
        self.progress.advance()

    def _decisions(self) -> Iterator[Decision]:
        """Each revision to judge: None to describe it, or its row already judged from AWS Config's record."""
        if self.plan is None or self.scope != ACTIVE:
            return ((ref, None) for ref in self._refs())
        return self.plan.decisions(self._refs())

    def _refs(self) -> Iterator[str]:
        """Families (latest scope) or revision ARNs (active scope), every page."""
        if self.scope == LATEST:
            return self.ecs.families()
        return self.ecs.revision_arns()

    def _judge(self, ref: str) -> Finding | None:
        """Describe and assess one family's newest ACTIVE revision (latest) or one revision (active).
        None when there is nothing ACTIVE to judge (deregistered meanwhile, or a family with none)."""
        if self.stop.is_set():
            return None  # not judged: the report says the sweep was interrupted
        family, revision = family_revision(ref) if ":" in ref else (ref, 0)
        try:
            described = self.ecs.latest_active(ref) if self.scope == LATEST else self.ecs.describe(ref)
        except RevisionNotFound:
            return None
        except (ClientError, BotoCoreError) as error:
            text = f"describe failed after retries: {safe_error(error)}"
            return Finding(ref, ERROR, error=text, region=self.ecs.region, family=family, revision=revision)
        if described is None or described.status != "ACTIVE":
            return None
        try:
            assessment = self.judge.assess(described.arn, described.task_definition, described.tags)
        except RegistryUnavailable as error:  # fail-closed: unknown exemptions are ERROR, never PASS or EXEMPT
            return Finding(
                described.arn,
                ERROR,
                error=str(error)[:1000],
                region=self.ecs.region,
                family=family,
                revision=described.revision,
            )
        marker = tag_value(described.tags, self.config.marker_tag_key)
        finding = Finding(
            described.arn,
            assessment.verdict,
            assessment.privileged,
            region=self.ecs.region,
            family=described.family,
            revision=described.revision,
            marker=marker,
            host_equivalents=assessment.host_equivalents,
            host_access=assessment.host_access,
            registered_by=described.registered_by,
            # Kept only where a provenance check may need it: sources (privileged) and claimed copies (marker).
            described=described if assessment.privileged or marker is not None else None,
        )
        registered_at = described.task_definition.get("registeredAt")
        if isinstance(registered_at, datetime):
            finding.registered_at = registered_at
        if assessment.exemption is not None:
            finding.exemption = assessment.exemption
            self._exemption_action(finding, assessment.exemption)
        if assessment.privileged:  # where it came from (tags and registeredBy: the sweep has no CloudTrail event)
            finding.attribution = attribute(described.tags, None, described.registered_by)
        return finding

    def _exemption_action(self, finding: Finding, exemption: Exemption) -> None:
        """EXEMPT rows say why (and when the exemption runs out soon); FAIL rows with an exemption that does
        not hold say why it does not."""
        if finding.status == EXEMPT:
            why = exemption.why
            today = self._today()
            if exemption.until is not None and exemption.expires_within(today):
                days = (exemption.until - today).days
                when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
                why = f"exempt until {exemption.until.isoformat()} (expires {when}): {exemption.reason}"
                finding.expiring = True
            finding.action = f"{ACTION_NONE}: {why}" if why.startswith("exempt") else f"{ACTION_NONE}: exempt: {why}"
        elif finding.status == FAIL:
            finding.error = f"not exempt: {exemption.why}"

    def _left_to_the_function(self, finding: Finding) -> bool:
        """Without an idempotency table shared with the function, the two could both copy a revision the
        function is handling right now (it sees a registration within seconds to minutes). A sweep without
        the table leaves such fresh registrations to it: the row stays FAIL, and the next sweep decides."""
        assert self.remediator is not None
        if self.remediator.shares_idempotency or finding.registered_at is None:
            return False
        age = datetime.now(UTC) - finding.registered_at.astimezone(UTC)
        if age >= RECENT_REGISTRATION:
            return False
        finding.action = (
            f"{ACTION_SKIPPED}: registered {max(int(age.total_seconds() // 60), 0)} min ago, left to the "
            "function (set IDEMPOTENCY_TABLE to the stack's table so the sweep and the function share idempotency)"
        )
        return True

    def _remediate(self, finding: Finding) -> None:
        """The function's path for one FAIL revision; outcomes map back onto the row, never to PASS."""
        assert self.remediator is not None
        if self.stop.is_set():  # queued behind remediations that were already under way
            finding.action = ACTION_INTERRUPTED
            return
        try:
            result = self.remediator.process(Registration(task_definition_arn=finding.task_definition_arn))
        except RemediationFailed as failure:
            finding.action = ACTION_FAILED
            finding.error = f"{failure.result.error_code}: {failure.result.error_message}"
            return
        except IdempotencyAlreadyInProgressError:
            finding.status, finding.action = ERROR, ACTION_NONE
            finding.error = "in progress elsewhere: the function is handling this revision now; sweep again later"
            return
        except (ClientError, BotoCoreError, IdempotencyError) as error:
            finding.action, finding.error = ACTION_FAILED, safe_error(error)
            return
        if result.outcome == REMEDIATED:
            finding.action, finding.new_task_definition_arn = ACTION_REMEDIATED, result.new_task_definition_arn
            if self._followup_text(result):
                finding.action += f": {self._followup_text(result)}"
            if result.escalation:
                finding.action += f"; ESCALATED: {result.escalation}"
        elif result.outcome == COMPLIANT:
            finding.status, finding.privileged_containers = PASS, []
        elif result.outcome == OUTCOME_EXEMPT:
            finding.status, finding.action = EXEMPT, f"{ACTION_NONE}: exempt: {result.exemption}"
        elif result.outcome == REPORTED:
            finding.action = ACTION_REPORTED
        elif result.outcome == SUPERSEDED:
            finding.action = f"{ACTION_SUPERSEDED}: {result.reason}"
            if self._followup_text(result):
                finding.action += f"; {self._followup_text(result)}"
        else:
            finding.action = f"{ACTION_SKIPPED}: {result.reason or result.outcome}"

    def _followup_text(self, result: Result) -> str:
        """What rollout/retire did after the Remediator's result ("" when they did not run); daemon_sweep overrides."""
        return followup_text(result) if result.services_checked else ""

    def _superseded(self, finding: Finding, newest: int) -> None:
        """An older privileged revision (active scope). Without rollout or retire it is only reported: a copy of
        it would become the family's latest (a roll-back). With them, `_finish_family` deals with it."""
        finding.action = (
            f"{ACTION_SUPERSEDED}: the latest ACTIVE revision is :{newest}; not copied (copying an older "
            "revision would roll the family back)"
        )

    def _finish_family(self, family: str, rows: list[Finding], copies: Mapping[tuple[str, str], str]) -> None:
        """Older privileged revisions of one family, oldest first (superseded.finish_superseded): retire the
        unused ones; with rollout, give the used ones a fixed copy, restore the family's latest, move services."""
        restored_note = ""
        if self.config.rollout:
            assert self.remediator is not None
            verified = set(copies.values())
            try:
                restored = restore_if_rolled_back(
                    self.ecs,
                    self.config,
                    family,
                    restorer=self.remediator.restorer,
                    is_our_copy=lambda d: d.arn in verified,
                )
            except (ClientError, BotoCoreError, SupersededError, RevisionNotFound) as error:
                text = f"the family's latest could not be checked for an interrupted earlier run: {safe_error(error)}"
                for row in rows:
                    row.action, row.error = ACTION_FAILED, text
                return
            if restored is not None:
                restored_note = restored_text(restored)
                logger.warning("%s: the latest was a copy of an older revision; %s", family, restored_note)
        for row in sorted(rows, key=lambda f: f.revision):
            self._finish_superseded(row, copies.get((family, marker_value(family, row.revision))))
            if restored_note:
                row.action += f"; {restored_note}"
                restored_note = ""

    def _finish_superseded(self, row: Finding, copy_arn: str | None) -> None:
        try:
            source = self.ecs.describe(row.task_definition_arn)
        except RevisionNotFound:
            row.action = f"{ACTION_SKIPPED}: the revision no longer exists"
            return
        except (ClientError, BotoCoreError) as error:
            row.status, row.error = ERROR, f"describe failed after retries: {safe_error(error)}"
            return
        if source.status != "ACTIVE":
            row.action = f"{ACTION_RETIRED}: already {source.status or 'not ACTIVE'}"
            return
        try:
            assert self.remediator is not None
            outcome = finish_superseded(
                self.ecs,
                self.config,
                source,
                copy_arn,
                ledger=self.ledger,
                restorer=self.remediator.restorer,
                references=self._references,
            )
        except ServiceLookupFailed as error:  # fail-closed: unknown users, so nothing is done and nothing PASSes
            row.status, row.error = ERROR, str(error)[:1000]
            return
        except SupersededError as error:
            row.action, row.error = ACTION_FAILED, str(error)[:1000]
            return
        except (ClientError, BotoCoreError) as error:
            row.action, row.error = ACTION_FAILED, safe_error(error)
            return
        row.action = superseded_action(outcome, self.config)
        row.new_task_definition_arn = outcome.copy_arn

    def _listing_error(self, error: BaseException) -> Finding:
        operation = LIST_FAMILIES if self.scope == LATEST else LIST_REVISIONS
        return Finding(
            f"arn:aws:ecs:{self.ecs.region}:*:task-definition/*",
            ERROR,
            error=f"{operation} failed, the sweep is incomplete: {safe_error(error)}",
            region=self.ecs.region,
            family="~",  # sorts last
        )


def _completed(finding: Finding) -> Future[Finding | None]:
    future: Future[Finding | None] = Future()
    future.set_result(finding)
    return future


def _result_or_error(future: Future[Finding | None], ref: str, region: str) -> Finding | None:
    try:
        return future.result()
    except Exception as error:  # fail-closed: an unexpected error is that revision's ERROR, never a PASS
        text = scrub(error)  # the traceback logged says our words, not the error's text
        logger.exception("judging %s failed unexpectedly", ref)
        family, revision = family_revision(ref) if ":" in ref else (ref, 0)
        return Finding(ref, ERROR, error=text, region=region, family=family, revision=revision)
