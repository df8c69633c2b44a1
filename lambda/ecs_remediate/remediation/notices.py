"""The notices of the remediation path: what each is deduplicated on, and when one is sent.

One notice per (revision, outcome, copy, exemption, forged copies) (`notice_key`): the invocation that registers a copy
notifies inside the copy's own guard, whose record then names the notice sent (remediation/once.py); every other
notice goes through a notice record of its own. `Notices` is the base of `remediator.Remediator`: the notice side of
the path, apart from the copy side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from ..adapters.aws import Ecs, Topic
from ..core.config import Config
from ..core.described import Described
from ..core.message import Message
from ..core.notice import build_message
from ..core.outcomes import Result
from . import once
from .rollout import short_ref


def notice_key(
    outcome: str, arn: str, new_arn: str | None = None, exemption: str | None = None, forged: Sequence[str] = ()
) -> str:
    """What a notice is deduplicated on in the idempotency table (remediation/once.py): one notice per revision,
    outcome, copy, exemption and forged copies. `ecs-remediate verify` reads the stack's record of a notice by it."""
    return f"{outcome}|{arn}|{new_arn}|{exemption}|{','.join(forged)}"


class Notices:
    """Sending a result's notice once. Set by the subclass: `config`, `ecs`, `topic`, `_publish_once` (the notice's
    guard around `_publish`) and `_copy_records` (the copies' records, when idempotency is on)."""

    config: Config
    ecs: Ecs
    topic: Topic | None
    _publish_once: Callable[..., dict[str, Any]]
    _copy_records: once.Records | None

    def _notify(self, result: Result) -> Result:
        if self.topic is None or result.outcome not in self.config.notify_on:
            return result
        self._publish_once(request={"key": self._notice_key(result)}, result=result)
        return result

    def _notice_key(self, result: Result) -> str:
        event = result.registration.event_id if result.registration else ""
        return notice_key(
            result.outcome,
            result.task_definition_arn or f"{result.family}@{event}",
            result.new_task_definition_arn,
            result.exemption,
            [f["arn"] for f in result.forged_copies],
        )

    def _publish(self, request: dict[str, Any], result: Result) -> dict[str, Any]:
        assert self.topic is not None
        return {"messageId": self.topic.publish(self._message(result))}

    def _message(self, result: Result) -> Message:
        return build_message(result, region=self.ecs.region)

    def _notify_made(self, result: Result) -> str:
        """The notice of the invocation that registered the copy, sent inside the copy's guard (no notice record of
        its own: the copy's record stores its key once SNS took it). Returns that key ("" when none is sent)."""
        if self.topic is None or result.outcome not in self.config.notify_on:
            return ""
        self._publish(request={"key": self._notice_key(result)}, result=result)
        return self._notice_key(result)

    def _notify_found(self, result: Result, source: Described) -> Result:
        """The notice of a copy found made: not while the copy's guard is held (that invocation notifies; this event
        is tried again later), and not when the copy's record says its invocation sent this very notice."""
        if self.topic is None or result.outcome not in self.config.notify_on or self._copy_records is None:
            return self._notify(result)
        record = self._copy_records.get(source.arn)
        if once.in_progress(record):
            raise IdempotencyAlreadyInProgressError(f"{short_ref(source.arn)}: being remediated by another invocation")
        if once.notified(record, self._notice_key(result)):
            return result
        return self._notify(result)
