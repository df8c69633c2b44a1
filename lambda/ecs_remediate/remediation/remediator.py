"""The remediation path shared by the Lambda and the sweep: describe, judge, copy once, read back, notify.

- Judged afresh every time: status and exemptions come from current state on each delivery and each sweep.
- One copy per source revision: guarded by Powertools Idempotency (DynamoDB, keyed on the source revision ARN, shared
  by the function and the sweep; remediation/once.py), and only a family's latest ACTIVE revision is ever copied
  (copying an older one would roll the family back).
- Proof, not tags: a copy found later counts only when verified (remediation/provenance.py); a revision that claims to
be a copy and is not is reported as forged.
- Never silent: a privileged revision that is superseded, or a registration that cannot be identified, is
  notified. Notices are deduplicated per (revision, outcome, copy, exemption) through the same table: the copy's
  own record for the notice of the invocation that made the copy, a notice record for every other.
- Races: a deploy registered between our check and our copy is made the family's latest again, re-checked after each
  registration (remediation/restore.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any, NoReturn

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from ..adapters.aws import ClientError, Ecs, RevisionNotFound, Topic, error_code, is_transient, safe_detail
from ..adapters.ledger import DynamoLedger, Ledger, MemoryLedger
from ..core.attribution import attribute
from ..core.config import Config
from ..core.described import Described
from ..core.events import Registration, Unidentified
from ..core.exemptions.evaluate import ExemptionSource, RegistryUnavailable
from ..core.outcomes import COMPLIANT, EXEMPT, FAILED, REMEDIATED, REPORTED, SKIPPED, SUPERSEDED, UNRESOLVED, Result
from ..core.policy import EXEMPT as VERDICT_EXEMPT
from ..core.policy import Judge, today_utc
from ..core.taskdef import TaskDefinitionError, build_fixed_copy, family_and_revision, privileged_containers
from . import once, repeats, rollout
from .copies import find_verified_copy, holds_exact_copy, read_back
from .identify import registered_revision
from .notices import Notices, notice_key
from .provenance import described_document
from .restore import RegisterFailed, Restorer
from .rollout import marker_value


class RemediationFailed(Exception):
    """A privileged revision could not be fixed for a permanent reason; the failure notice was sent."""

    def __init__(self, result: Result) -> None:
        super().__init__(f"{result.task_definition_arn}: {result.error_code}: {result.error_message}")
        self.result = result


class Remediator(Notices):
    # The adapter seam (daemons.remediator.DaemonRemediator overrides these, on a daemon `ecs`): the result type, the
    # Describe call named in failures, how an ARN names its family and revision, and the notice's text and key.
    result_type: type[Result] = Result
    describe_call = "DescribeTaskDefinition"

    def __init__(
        self,
        config: Config,
        ecs: Ecs,
        topic: Topic | None = None,
        persistence: BasePersistenceLayer | None = None,
        today: Callable[[], date] = today_utc,
        *,
        ledger: Ledger | None = None,
        registry: ExemptionSource | None = None,
        references: rollout.ReferenceFinder | None = None,
        recorded_by: str = "function",
        fix_latest_on_sight: bool = False,
    ) -> None:
        self.config = config
        self.ecs = ecs
        self.topic = topic
        self.ledger: Ledger = ledger or DynamoLedger.from_persistence(persistence) or MemoryLedger()
        self.judge = Judge(config, registry, tag_approvals=self.ledger.tag_approval, today=today)
        self.references = references
        self.recorded_by = recorded_by
        self._idempotency: list[IdempotencyConfig] = []
        self._register_once: Callable[..., dict[str, Any]] = self._register_copy
        self._publish_once: Callable[..., dict[str, Any]] = self._publish
        self._copy_records: once.Records | None = None
        if persistence is not None:
            self._register_once = self._guard(persistence, self._register_copy, once.COPY_KEY, once.COPY_KEY_PREFIX)
            self._publish_once = self._guard(
                once.sibling(persistence), self._publish, once.NOTICE_KEY, once.NOTICE_KEY_PREFIX
            )
            self._copy_records = once.Records.copies(persistence)
        self._lock = threading.Lock()
        # Revisions this invocation has in hand, by source ARN: the register response of a fresh copy (ECS's own account
        # of what it stored: the read-back needs no describe) and the described source (the count needs none).
        self._in_hand: dict[tuple[str, str], Described] = {}
        self.restorer = Restorer(ecs, config, self.judge, self.ledger, self.register_restore)
        # The function's path fixes a privileged latest seen from an older revision's event (`_fix_latest`); the
        # sweep goes over every revision anyway.
        self.fix_latest_on_sight = fix_latest_on_sight
        self._on_sight = threading.local()  # .active: this thread is inside `_fix_latest` (it goes one level deep)

    def _guard(
        self, persistence: BasePersistenceLayer, function: Callable[..., dict[str, Any]], key: str, prefix: str
    ) -> Callable[..., dict[str, Any]]:
        guarded, idempotency = once.guard(persistence, function, key, prefix, self.config.idempotency_ttl_seconds)
        self._idempotency.append(idempotency)
        return guarded

    @property
    def shares_idempotency(self) -> bool:
        """True when duplicates are stopped through the DynamoDB table (shared with other processes)."""
        return bool(self._idempotency)

    def register_lambda_context(self, context: Any) -> None:
        """Lets Idempotency expire an in-progress record when the invocation times out."""
        for idempotency in self._idempotency:
            idempotency.register_lambda_context(context)

    # ---------------------------------------------------------------------------------------------------------
    # Judge

    def process(self, registration: Registration, latest: Described | None = None) -> Result:
        """Check one revision and act on it (`latest`: the family's latest, described by the caller just now).
        Raises RemediationFailed (after notifying) on permanent failures and the AWS error itself on transient ones,
        so the caller retries."""
        arn = registration.task_definition_arn
        family, revision = self._family_and_revision(arn)
        result = self.result_type(SKIPPED, arn, family, revision, registration=registration)
        latest = latest if latest is not None else self._latest_first(result, family)
        try:
            source = latest if latest is not None and latest.arn == arn else self._describe(result, arn)
        except RevisionNotFound:
            result.reason = "the revision no longer exists"
            return result
        if source.status != "ACTIVE":
            result.reason = f"the revision is {source.status or 'not ACTIVE'}"
            return result
        result.registered_by = source.registered_by
        # Where it came from, for the notice (issue 15): a hint only, never a reason to skip or exempt.
        result.attribution = attribute(
            source.tags, registration if registration.event_id else None, source.registered_by
        )
        if source.unknown_members:
            fields = ", ".join(source.unknown_members[:10])
            self._fail(
                result,
                "UnknownField",
                f"the API returned field(s) this function's SDK model does not know ({fields}); a copy "
                "would lose them, so none was registered. Update the bundled boto3 and redeploy.",
            )
        try:
            assessment = self.judge.assess(arn, source.task_definition, source.tags)
        except RegistryUnavailable as error:
            self._fail(result, "ExemptionRegistryUnavailable", f"{error}; nothing was changed")
        result.privileged, result.host_equivalents = assessment.privileged, assessment.host_equivalents
        result.host_access = assessment.host_access
        if assessment.exemption is not None:
            result.exemption = assessment.exemption.why
            result.exemption_until = assessment.exemption.until.isoformat() if assessment.exemption.until else None
            result.exemption_source = assessment.exemption.source
            result.exemption_mismatch = assessment.exemption.mismatch
        if not assessment.privileged:
            result.outcome, result.reason = COMPLIANT, "no container is privileged"
            return result
        if assessment.verdict == VERDICT_EXEMPT:
            result.outcome = EXEMPT
            return self._notify(result)
        if self.config.mode == "report":
            result.outcome, result.reason = REPORTED, "report-only mode: nothing was changed"
            return self._notify(result)
        return self._remediate(result, source, latest)

    def _latest_first(self, result: Result, family: str) -> Described | None:
        """The family's newest ACTIVE revision, described first: for the usual event (the family's latest) it is the
        source too, so one DescribeTaskDefinition answers both questions. None when the family has no ACTIVE revision
        (the source's own describe then says why) and for daemons (their adapter describes by revision)."""
        if self.ecs.model.is_daemon or not family:
            return None
        try:
            return self._describe(result, family)
        except RevisionNotFound:
            return None

    def identify(self, unidentified: Unidentified) -> Result:
        """A successful registration whose event names no revision: found from the family, the time and the
        registrant (remediation/identify.py) and processed as usual; without a match nothing is written and the miss
        notified."""
        registration = unidentified.registration
        found = registered_revision(self.ecs, registration)
        if found is not None:
            return self.process(replace(registration, task_definition_arn=found.arn))
        family = registration.family
        result = self.result_type(UNRESOLVED, "", family, 0, registration=registration)
        result.reason = (
            "the CloudTrail event names no revision (responseElements empty or truncated) and none of "
            + (f"family {family}'s newest ACTIVE revisions" if family else "the account's revisions (no family given)")
            + f" matches its time ({registration.event_time or 'unknown'}) and registrant; nothing was changed"
        )
        return self._notify(result)

    # ---------------------------------------------------------------------------------------------------------
    # Copy

    def _remediate(self, result: Result, source: Described, latest: Described | None = None) -> Result:
        # Serialise within this process: two threads must not both find "no copy yet" and both register. With the
        # shared idempotency table the write itself is guarded, so the latest read before the lock stands; without
        # it (the CLI with no table) the latest is read again under the lock.
        with self._lock:
            try:
                if latest is None or not self.shares_idempotency:
                    latest = self._describe(result, result.family)
            except RevisionNotFound:  # deregistered since the first describe: nothing ACTIVE to copy
                result.reason = "the family has no ACTIVE revision any more"
                return result
            if latest.revision == source.revision:
                return self._make_copy(result, source)
            found = self._find_copy(result, source, latest)
        if found is None:  # outside the lock: fixing the latest on sight takes it again
            return self._superseded(result, source, latest)
        result.reason = "the fixed copy was registered by an earlier attempt"
        self._complete(result, source, found)
        return self._notify_found(result, source)

    def _make_copy(self, result: Result, source: Described) -> Result:
        """The copy, through its guard. The invocation that registers it completes the remediation and notifies inside
        the guard (`finish`), so the guard's record covers the notice too; another that gets the stored outcome
        completes it from there, and notifies only when the outcome names no notice sent."""
        made: list[Result] = []

        def finish(registered: dict[str, Any]) -> str:
            self._copied(result, source, registered)
            made.append(result)
            return self._notify_made(result)

        try:
            registered = self._register_once(request={"sourceArn": source.arn}, source=source, finish=finish)
        except _CopyFailed as failure:
            self._fail(result, failure.code, str(failure))
        if made:
            return result
        self._copied(result, source, registered)
        if registered.get(once.NOTIFIED) == self._notice_key(result):
            return result
        return self._notify(result)

    def _copied(self, result: Result, source: Described, registered: dict[str, Any]) -> None:
        """The result of a copy registered through the copy's guard (by this invocation or, stored, another)."""
        copy = self._describe_copy(result, registered["copyArn"], registered)
        result.reason = "registered a copy with privileged: false"
        if registered.get("restoredArn"):
            result.restored_arn, result.restored_from = registered["restoredArn"], registered["restoredFrom"]
        result.race_note = str(registered.get("raceNote", ""))
        result.race_lost, result.buried_arn = bool(registered.get("raceLost")), registered.get("buriedArn")
        result.race_step = str(registered.get("raceStep", ""))
        self._complete(result, source, copy)

    def _complete(self, result: Result, source: Described, copy: Described) -> None:
        """Remediated onto `copy`: read back, counted in the family's history, followed up (all but the notice)."""
        result.outcome, result.new_task_definition_arn = REMEDIATED, copy.arn
        self._in_hand[("source", source.arn)] = source
        self._read_back(result, copy, source)
        repeats.note_remediation(self.ledger, self.config, result)  # escalates a family fixed again and again
        self._follow_up(result)

    def _register_copy(
        self,
        request: dict[str, Any],
        source: Described,
        restore: bool = True,
        finish: Callable[[dict[str, Any]], str] | None = None,
    ) -> dict[str, Any]:
        """Register the fixed copy of `source` (once per source revision when idempotency is on), record it in the
        ledger, (`restore`) keep the family's latest the newest deploy's content (remediation/restore.py), and
        (`finish`) complete the remediation and notify: the stored outcome names the notice sent."""
        marker = self._marker(source)
        try:
            fix = build_fixed_copy(described_document(source, self.ecs.model), self.ecs.model, marker)
        except TaskDefinitionError as error:
            raise _CopyFailed("InvalidTaskDefinition", str(error)) from None
        try:
            registered = self.ecs.register(fix.register_input, lambda: holds_exact_copy(self.ecs, source, marker))
        except ClientError as error:
            if is_transient(error):
                raise
            raise _CopyFailed(error_code(error), safe_detail(error)) from None
        self.ledger.record_copy(source.arn, registered.arn, self.recorded_by)
        if restore and "containerDefinitions" in registered.task_definition:
            self._in_hand[("copy", source.arn)] = registered
        outcome: dict[str, Any] = {"copyArn": registered.arn, "droppedTags": fix.dropped_tags}
        if restore:  # the copy lands right above its source unless a deploy came in between
            outcome.update(self.restorer.keep_latest(registered.arn, source.revision + 1).to_outcome())
        if finish is not None:
            outcome[once.NOTIFIED] = finish(outcome)
        return outcome

    def register_restore(self, revision: Described, above: int) -> str:
        """restore.Register: the fixed copy of `revision`, landing above the stack's registration `above`. Through the
        idempotent write keyed on `revision` (its own event then finds this copy instead of making another); when
        that write's stored copy lies below `above`, or another invocation is making it right now (it may land
        below), it is registered again, unguarded: the content must be on top."""
        try:
            once = self._register_once(request={"sourceArn": revision.arn}, source=revision, restore=False)
            stored: str | None = str(once["copyArn"])
        except IdempotencyAlreadyInProgressError:
            stored = None
        if stored is not None and self._family_and_revision(stored)[1] > above:
            return stored
        return str(self._register_copy({"sourceArn": revision.arn}, revision, restore=False)["copyArn"])

    def _find_copy(self, result: Result, source: Described, latest: Described) -> Described | None:
        search = find_verified_copy(
            self.ecs,
            self.ledger,
            self.config.trusted_principals,
            source=source,
            latest=latest,
            marker=self._marker(source),
        )
        result.copy_proof, result.forged_copies = search.proof, search.forged
        result.race_note = search.note or result.race_note
        return search.copy

    def _describe_copy(self, result: Result, copy_arn: str, registered: dict[str, Any]) -> Described:
        result.dropped_tags = list(registered.get("droppedTags") or [])
        result.copy_proof = "registered by this invocation and recorded in the stack's ledger"
        fresh = self._in_hand.pop(("copy", result.task_definition_arn), None)
        if fresh is not None and fresh.arn == copy_arn:
            return fresh  # RegisterTaskDefinition's response: what ECS stored, members and tags
        return self.ecs.describe(copy_arn)

    def _read_back(self, result: Result, copy: Described, source: Described) -> None:
        checked = read_back(self.ecs, copy, source, self._marker(source))
        result.copy_verified, result.marker_added, result.copy_check = (
            checked.verified,
            checked.marker_added,
            checked.text,
        )

    def _superseded(self, result: Result, source: Described, latest: Described) -> Result:
        """A privileged revision that is no longer its family's latest: not copied (a roll-back), never silent."""
        result.outcome, result.latest_arn = SUPERSEDED, latest.arn
        result.reason = (
            f"superseded: the latest ACTIVE revision is :{latest.revision}; copying an older revision would roll the "
            "family back, so no copy was made"
        )
        if self.fix_latest_on_sight:
            result.reason += self._fix_latest(latest, result.registration)
        if self.config.retire or self.config.rollout:
            followup = rollout.retire_unused(self.ecs, self.config, source.arn, self.references)
            for name, value in vars(followup).items():
                setattr(result, name, value)
        return self._notify(result)

    def _fix_latest(self, latest: Described, seen: Registration | None) -> str:
        """Fixes a privileged latest on sight, from an older revision's event (the function's path): in a burst the
        family is fixed by the first of its events handled after its latest registration, not when the queue reaches
        the latest's own event (which then finds the copy and sends no second notice). The latest is judged and
        copied as its own event would have it (exemptions, its own notice, naming the registrant ECS records), one
        level deep; not for daemons (their path describes by revision). Returns what became of it, for this
        revision's reason ("" when nothing was tried). A refused or transient failure to fix it never fails this
        revision's event; an error nobody expected does (delivered again, then the dead-letter queue with a notice)."""
        if (
            getattr(self._on_sight, "active", False)
            or self.ecs.model.is_daemon
            or not privileged_containers(latest.task_definition)
        ):
            return ""
        where = " (left to its own event: {})"
        self._on_sight.active = True
        try:
            registration = Registration(latest.arn, account=seen.account if seen else "", region=self.ecs.region)
            fixed = self.process(registration, latest)
        except IdempotencyAlreadyInProgressError:
            return where.format("another invocation is fixing it")
        except IdempotencyPersistenceLayerError:
            return where.format("the idempotency table is unavailable")
        except RemediationFailed as failure:
            return where.format(f"it failed, {failure.result.error_code}, notified")
        except Exception as error:  # throttled or unavailable now: its own event is tried again and deferred
            if not is_transient(error):
                raise
            return where.format(error_code(error))
        finally:
            self._on_sight.active = False
        if fixed.outcome == REMEDIATED and fixed.new_task_definition_arn:
            copy_revision = self._family_and_revision(fixed.new_task_definition_arn)[1]
            return f"; the latest :{latest.revision} is privileged too: fixed now by its copy :{copy_revision}"
        return f"; the latest :{latest.revision} is privileged too: {fixed.outcome}"

    def _follow_up(self, result: Result) -> Result:
        """Rollout, retire, and the count of privileged revisions left (remediation/rollout.py); onto verified copies
        only."""
        assert result.new_task_definition_arn is not None
        source = self._in_hand.pop(("source", result.task_definition_arn), None)
        if not result.copy_verified:
            return result
        followup = rollout.finish(
            self.ecs,
            self.config,
            result.task_definition_arn,
            result.new_task_definition_arn,
            references=self.references,
            known=[source] if source is not None else [],
        )
        for name, value in vars(followup).items():
            setattr(result, name, value)
        return result

    # ---------------------------------------------------------------------------------------------------------
    # Plumbing

    def _marker(self, source: Described) -> tuple[str, str]:
        return self.config.marker_tag_key, marker_value(source.family, source.revision)

    def _describe(self, result: Result, ref: str) -> Described:
        """DescribeTaskDefinition; a permanent error (AccessDenied, say) is a failure with a notice, since nothing
        will change on a retry; transient errors and RevisionNotFound go to the caller."""
        try:
            return self.ecs.describe(ref)
        except ClientError as error:
            if is_transient(error):
                raise
            self._fail(result, error_code(error), safe_detail(error))

    def _fail(self, result: Result, code: str, message: str) -> NoReturn:
        result.outcome, result.error_code, result.error_message = FAILED, code, message[:1000]
        self._notify(result)
        raise RemediationFailed(result)

    @staticmethod
    def _family_and_revision(arn: str) -> tuple[str, int]:
        return family_and_revision(arn)


class _CopyFailed(RegisterFailed):
    """The copy could not be built or registered for a permanent reason (raised inside the idempotent write, so the
    write is not recorded as done; `Remediator._remediate` turns it into a failure notice)."""


__all__ = [
    "COMPLIANT",
    "EXEMPT",
    "FAILED",
    "REMEDIATED",
    "REPORTED",
    "SKIPPED",
    "SUPERSEDED",
    "RemediationFailed",
    "Remediator",
    "marker_value",
    "notice_key",
]
