"""`ecs-remediate verify` in one account and Region: a privileged canary revision, from registration to clean-up.

The canary is a task definition in a family of its own (CANARY_FAMILY): one busybox container that would only run
`true`, `privileged: true`, EC2 only, no role, no tag, so registering it passes no role and starts nothing. The stack,
if it works, sees the registration through CloudTrail and its rule, and (remediate mode) registers the fixed copy,
records it in its ledger and records its notice in the idempotency table; in report mode it records the notice only.
What is checked, all read back from AWS, none of it taken from the stack's word alone:

  * the copy the ledger names: not privileged, the exact fixed copy of the canary (every member and tag, the marker
    naming the canary) and proven the stack's, through `provenance.verify_copy`, as the stack itself proves a copy;
  * the notice: the stack's record of it (`remediator.notice_key`, remediation/once.py: the copy's record naming it,
    or the notice's own), COMPLETED once SNS took it;
  * the latency: ECS's `registeredAt` of the copy minus the canary's (CloudTrail, EventBridge and the function).

Clean-up always runs (a `finally`): the canary is deregistered first (so that a late event finds it INACTIVE and the
stack copies nothing), then the stack's copy of it, if the ledger names one by then, and both are deleted and read
back; whatever could not be removed is returned by ARN and status, never dropped.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..adapters.aws import BotoCoreError, ClientError, Ecs, RevisionNotFound, error_code, is_transient, safe_error
from ..adapters.ledger import Ledger
from ..core.described import Described
from ..core.outcomes import FAILED, REMEDIATED, REPORTED, SUPERSEDED
from ..core.taskdef import privileged_containers
from ..remediation.provenance import verify_copy
from ..remediation.remediator import notice_key
from ..remediation.rollout import marker_value
from .common import one_line
from .verify_rows import COMPLETED, ERROR, FAIL, INTERRUPTED, PASS, NoticeRecords, Row
from .verify_stack import CANARY_FAMILY, DeployedStack

CANARY_IMAGE = "public.ecr.aws/docker/library/busybox:stable"
RUN_LABEL = "ecs-remediate.verify-run"  # a docker label naming the run: finds the canary if its answer was lost
FIRST_POLL, LAST_POLL = 0.25, 5.0  # seconds between reads of the ledger and the notice record, doubling


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def canary_input(run_id: str, family: str = CANARY_FAMILY) -> dict[str, Any]:
    """The canary's RegisterTaskDefinition input: privileged, harmless, nothing to pass or tag."""
    return {
        "family": family,
        "requiresCompatibilities": ["EC2"],  # Fargate refuses privileged containers
        "containerDefinitions": [
            {
                "name": "canary",
                "image": CANARY_IMAGE,
                "memory": 16,
                "essential": True,
                "privileged": True,
                "command": ["true"],
                "dockerLabels": {RUN_LABEL: run_id},
            }
        ],
    }


@dataclass
class Canary:
    """One account and Region. `ecs`: a client acting there (the caller's, or a member role's); `ledger` and
    `notices`: the stack's table, read with the caller's credentials; `trusted`: principals whose registrations the
    stack owns there (the member role in a member account)."""

    ecs_client: Any
    account: str
    region: str
    stack: DeployedStack
    ledger: Ledger
    notices: NoticeRecords
    stop: threading.Event
    timeout: float
    run_id: str
    trusted: Sequence[str] = ()
    hints: Callable[[], str] = lambda: ""
    family: str = CANARY_FAMILY
    clock: Callable[[], float] = time.monotonic
    registered: list[str] = field(default_factory=list)  # every ARN this run must remove
    unproven: list[str] = field(default_factory=list)  # named by the ledger, not proven the stack's copy: kept
    _canary: Described | None = field(init=False, default=None)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._started = self.clock()

    def run(self) -> Row:
        row = Row(self.account, self.region)
        try:
            self._run(row)
        except (ClientError, BotoCoreError) as error:
            row.outcome, row.reason = ERROR, safe_error(error)
        except Exception as error:  # noqa: BLE001 - fail-closed: an ERROR row, never a traceback or a silent pass
            row.outcome, row.reason = ERROR, safe_error(error)
        finally:
            row.left = self.clean_up(row)
            if row.left and row.outcome == PASS:
                row.outcome = FAIL
            if row.left:
                row.reason = _join(row.reason, f"clean-up left {', '.join(row.left)}")
        return row

    # --- the run --------------------------------------------------------------------------------------------------

    def _run(self, row: Row) -> None:
        ecs = Ecs(self.ecs_client)  # also stops the SDK from repeating an ambiguous RegisterTaskDefinition
        if self.stop.is_set():
            row.outcome, row.reason = INTERRUPTED, "interrupted before the canary was registered"
            return
        try:
            response = self.ecs_client.register_task_definition(**canary_input(self.run_id, self.family))
        except ClientError as error:
            if not is_transient(error):  # refused: nothing was registered
                row.outcome, row.reason = ERROR, _refused(error)
                return
            self._find_lost_canary(ecs)
            raise
        except BotoCoreError:
            self._find_lost_canary(ecs)
            raise
        self._remember(str(response["taskDefinition"]["taskDefinitionArn"]))
        canary = self._canary = ecs.describe(self.registered[0])
        row.canary = canary.arn
        if self.stack.mode == "report":
            self._report_mode(row, canary, ecs)
        else:
            self._remediate_mode(row, canary, ecs)

    def _remediate_mode(self, row: Row, canary: Described, ecs: Ecs) -> None:
        early = {FAILED: "the stack notified FAILED for the canary (its notice and the function's log say why)"}
        early[SUPERSEDED] = "another revision was registered in the canary family meanwhile (run verify again)"
        early[REPORTED] = "the stack reported the canary instead of fixing it: its function runs in report mode"
        copy_arn = self._wait(lambda: self.ledger.copy_of(canary.arn), canary, early)
        if copy_arn is None:
            row.outcome, row.reason = self._gave_up(canary, early, "no copy of the canary")
            row.notice = self._early_notice(canary, early)
            return
        row.copy = copy_arn
        try:
            copy = ecs.describe(copy_arn)
        except RevisionNotFound:
            row.outcome, row.reason = FAIL, f"the stack's ledger names {copy_arn} as the copy, which does not exist"
            return
        row.latency = _seconds_between(canary, copy)
        problem = self._check_copy(copy, canary, ecs)
        if problem:
            self.unproven.append(copy_arn)
            row.outcome, row.reason = FAIL, problem
            return
        self._remember(copy_arn)
        if REMEDIATED not in self.stack.notify_on:
            row.notice, row.outcome = "not configured (notifyOn)", PASS
            row.reason = "copy proven; notices of remediations are off (notifyOn)"
            return
        key = notice_key(REMEDIATED, canary.arn, copy.arn)
        status = self._wait(lambda: _completed(self.notices.status(key, copy_of=canary.arn)), canary, {})
        row.notice = "sent" if status else (self.notices.status(key, copy_of=canary.arn) or "none").lower()
        if status:
            row.outcome, row.reason = PASS, f"copy :{copy.revision} proven the stack's; notice recorded as sent"
        else:
            row.outcome, row.reason = self._gave_up(canary, {}, "the copy was made, but no notice was recorded")

    def _report_mode(self, row: Row, canary: Described, ecs: Ecs) -> None:
        if REPORTED not in self.stack.notify_on:
            row.outcome = ERROR
            row.reason = "report mode with notices of reported revisions off (notifyOn): nothing verify can read"
            return
        key = notice_key(REPORTED, canary.arn)
        early = {FAILED: "the stack notified FAILED for the canary (its notice and the function's log say why)"}
        status = self._wait(lambda: _completed(self.notices.status(key)), canary, early)
        if status is None:
            row.outcome, row.reason = self._gave_up(canary, early, "no notice of the canary was recorded")
            row.notice = (self.notices.status(key) or "").lower() or self._early_notice(canary, early)
            return
        row.notice = "sent"
        registered_at = canary.task_definition.get("registeredAt")
        if isinstance(registered_at, datetime):
            row.latency, row.latency_bound = (datetime.now(UTC) - registered_at).total_seconds(), True
        copy_arn = self.ledger.copy_of(canary.arn)
        if copy_arn is not None:  # report mode writes nothing
            self._remove_if_proven(copy_arn, ecs)
            row.outcome, row.reason = FAIL, f"report mode, yet the stack registered a copy: {copy_arn}"
            return
        row.outcome, row.reason = PASS, "report mode: notice recorded as sent, nothing registered"

    def _remove_if_proven(self, copy_arn: str, ecs: Ecs) -> None:
        """A copy of the canary found late (or in report mode): removed when it is the stack's, else named."""
        if self._canary is None or copy_arn in self.registered or copy_arn in self.unproven:
            return
        try:
            problem = self._check_copy(ecs.describe(copy_arn), self._canary, ecs)
        except (ClientError, BotoCoreError, RevisionNotFound) as error:
            problem = f"unreadable: {error_code(error) or type(error).__name__}"
        if problem:
            self.unproven.append(copy_arn)
        else:
            self._remember(copy_arn)

    def _check_copy(self, copy: Described, canary: Described, ecs: Ecs) -> str | None:
        if privileged_containers(copy.task_definition):
            return f"the stack's copy {copy.arn} is still privileged"
        verification = verify_copy(
            copy,
            canary,
            model=ecs.model,
            marker=(self.stack.marker_key, marker_value(canary.family, canary.revision)),
            ledger=self.ledger,
            trusted_principals=self.trusted,
        )
        if not verification.verified:
            return f"the copy {copy.arn} is not proven the stack's faithful copy: {verification.why}"
        return None

    def _wait(self, probe: Callable[[], str | None], canary: Described, early: dict[str, str]) -> str | None:
        """Poll `probe` until it answers, the canary's other outcomes are recorded, the time is up or a stop."""
        deadline = self._started + self.timeout
        interval = FIRST_POLL
        while True:
            try:
                answer = probe()
            except ClientError as error:  # a throttled or failing read: asked again at the next poll
                if not is_transient(error):
                    raise
                answer = None
            if answer is not None:
                return answer
            if any(self.notices.status(notice_key(outcome, canary.arn)) for outcome in early):
                return None
            remaining = deadline - self.clock()
            if self.stop.is_set() or remaining <= 0:
                return None
            self.stop.wait(min(interval, remaining))
            interval = min(interval * 2, LAST_POLL)

    def _early_notice(self, canary: Described, early: dict[str, str]) -> str:
        """'sent (failed)' when the stack notified another outcome of the canary, else 'none'."""
        for outcome in early:
            if self.notices.status(notice_key(outcome, canary.arn)) == COMPLETED:
                return f"sent ({outcome})"
        return "none"

    def _gave_up(self, canary: Described, early: dict[str, str], what: str) -> tuple[str, str]:
        for outcome, text in early.items():
            if self.notices.status(notice_key(outcome, canary.arn)):
                return FAIL, text
        if self.stop.is_set():
            return INTERRUPTED, f"interrupted while waiting: {what} yet"
        hints = self.hints()
        return FAIL, f"{what} within {self.timeout:g} s" + (f"; {hints}" if hints else "")

    # --- clean-up -------------------------------------------------------------------------------------------------

    def _remember(self, arn: str) -> None:
        with self._lock:
            if arn not in self.registered:
                self.registered.append(arn)

    def _find_lost_canary(self, ecs: Ecs) -> None:
        """The registration's answer was lost (it may have happened): the family's revisions carrying this run's
        label are this run's, to be removed."""
        try:
            for arn in ecs.revision_arns(self.family):
                described = ecs.describe(arn)
                labels = [
                    c.get("dockerLabels") or {} for c in described.task_definition.get("containerDefinitions", [])
                ]
                if any(label.get(RUN_LABEL) == self.run_id for label in labels):
                    self._remember(arn)
        except (ClientError, BotoCoreError, RevisionNotFound):
            return

    def clean_up(self, row: Row) -> list[str]:
        """Deregister the canary (then the stack copies nothing more), the stack's copy the ledger names by then, and
        delete them; returns "ARN (status)" of what is still there, read back."""
        if not self.registered:
            return []
        canary = self.registered[0]
        problems: dict[str, str] = {}
        self._deregister(canary, problems)
        if row.copy is None:
            try:
                late = self.ledger.copy_of(canary)
            except (ClientError, BotoCoreError):
                late = None
            if late:  # a copy made while verify was giving up: removed with the canary when it is the stack's
                self._remove_if_proven(late, Ecs(self.ecs_client))
                row.copy = late
        for arn in self.registered[1:]:
            self._deregister(arn, problems)
        self._delete(self.registered, problems)
        left = [f"{arn} ({status})" for arn, status in self._read_back(self.registered, problems).items()]
        kept = self._read_back(self.unproven, {})
        return left + [f"{arn} ({status}; not proven the stack's copy: not removed)" for arn, status in kept.items()]

    def _deregister(self, arn: str, problems: dict[str, str]) -> None:
        try:
            self.ecs_client.deregister_task_definition(taskDefinition=arn)
        except (ClientError, BotoCoreError) as error:
            problems[arn] = f"DeregisterTaskDefinition: {error_code(error) or type(error).__name__}"

    def _delete(self, arns: Iterable[str], problems: dict[str, str]) -> None:
        arns = list(arns)
        for start in range(0, len(arns), 10):  # DeleteTaskDefinitions takes at most 10
            chunk = arns[start : start + 10]
            try:
                failures = self.ecs_client.delete_task_definitions(taskDefinitions=chunk).get("failures") or []
            except (ClientError, BotoCoreError) as error:
                for arn in chunk:
                    problems.setdefault(arn, f"DeleteTaskDefinitions: {error_code(error) or type(error).__name__}")
                continue
            for failure in failures:
                arn = str(failure.get("arn", ""))
                problems.setdefault(arn, f"DeleteTaskDefinitions: {one_line(str(failure.get('reason', '')))[:120]}")

    def _read_back(self, arns: Iterable[str], problems: dict[str, str]) -> dict[str, str]:
        left: dict[str, str] = {}
        for arn in arns:
            try:
                status = str(
                    self.ecs_client.describe_task_definition(taskDefinition=arn)["taskDefinition"].get("status", "")
                )
            except ClientError as error:
                if "nable to describe" in str(error) or error_code(error) == "ClientException":
                    continue  # gone
                left[arn] = f"unknown: {error_code(error)}"
                continue
            except BotoCoreError as error:
                left[arn] = f"unknown: {type(error).__name__}"
                continue
            if status != "DELETE_IN_PROGRESS":
                left[arn] = _join(status, problems.get(arn, ""))
        return left


def _completed(status: str | None) -> str | None:
    return status if status == COMPLETED else None


def _seconds_between(first: Described, second: Described) -> float | None:
    a, b = first.task_definition.get("registeredAt"), second.task_definition.get("registeredAt")
    if isinstance(a, datetime) and isinstance(b, datetime):
        return max(0.0, (b - a).total_seconds())
    return None


def _refused(error: ClientError) -> str:
    code = error_code(error)
    text = f"cannot register the canary: {safe_error(error)}"
    if code in ("AccessDeniedException", "AccessDenied"):
        if "service control policy" in str(error).lower():
            text += " (a guardrail SCP that refuses privileged registrations refuses the canary too: run verify as a "
            text += "break-glass principal, docs/deploy.md#what-verify-needs-iam)"
        else:
            text += (
                " (verify needs ecs:RegisterTaskDefinition on the canary family: docs/deploy.md#what-verify-needs-iam)"
            )
    return text


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


__all__ = ["CANARY_FAMILY", "CANARY_IMAGE", "Canary", "canary_input", "new_run_id"]
