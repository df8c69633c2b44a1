"""Don't fight the pipeline: a family remediated again and again within a window is a source (a template, a
pipeline) that still registers privileged: true. Each remediation is recorded in the stack's ledger (adapters/ledger.py,
in the idempotency table: the policed cannot write it), and from the configured count on (default the 3rd in
24 hours) the notice escalates instead of repeating itself: severity HIGH, the history of revisions and who
registered them, and what to change at the source.

Escalation changes the notice only: every revision is still copied and notified (a registrant who repeats a
registration gains nothing but a louder notice).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ..adapters.aws import BotoCoreError, ClientError, safe_error
from ..adapters.ledger import Ledger
from ..core.config import Config
from ..core.history import Remediation
from ..core.outcomes import REMEDIATED, Result

logger = logging.getLogger(__name__)


def note_remediation(
    ledger: Ledger, config: Config, result: Result, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> None:
    """Record a REMEDIATED result in its family's history and set `result.repeats` and `result.escalation`.

    The history only decides how loud the notice is, so it never stands in the notice's way: when it cannot be
    written (after botocore's own retries of a throttled or failing call, or AccessDenied) the notice goes out
    unescalated and the failure is logged. An entry is per revision, so a retried event is not counted twice."""
    if result.outcome != REMEDIATED or not result.task_definition_arn or not result.new_task_definition_arn:
        return
    registration = result.registration
    entry = Remediation(
        source_arn=result.task_definition_arn,
        copy_arn=result.new_task_definition_arn,
        registered_by=(registration.user_arn if registration else "") or result.registered_by,
        source=result.attribution.summary() if result.attribution else "",
        at=now(),
    )
    try:
        history = ledger.record_remediation(entry, timedelta(hours=config.escalate_window_hours))
    except (ClientError, BotoCoreError) as error:
        logger.warning(
            "the remediation history of %s could not be written (not escalated): %s", result.family, safe_error(error)
        )
        return
    result.repeats = [item.to_json() for item in history]
    result.escalation = escalation_text(len(history), config, result.family)


def escalation_text(count: int, config: Config, family: str) -> str:
    """Why the notice escalates, or "" below the threshold."""
    if count < config.escalate_after:
        return ""
    return (
        f"family {family} was remediated {count} times within {config.escalate_window_hours} hours "
        f"(escalation from {config.escalate_after}): the source still sets privileged: true"
    )
