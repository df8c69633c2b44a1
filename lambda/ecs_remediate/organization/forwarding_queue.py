"""A member's forwarding dead-letter queue, read by the organization sweep through that account's member role.

The member's forwarding rules put there what EventBridge could not deliver to the hub's bus (a bus policy that
refuses the account, a missing bus, a day of failed retries; infra/member_forwarding.py). Each message's body is the
event; EventBridge adds the attributes RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION
and RETRY_ATTEMPTS.

After an item's sweep, `inspect` reads the queue's depth (what the report and the notice show), and when the sweep
judged every ACTIVE revision of that account and Region (`judged_before`: active scope, no ERROR row) it deletes the
messages that sweep covered: CloudTrail calls on task definitions, daemon task definitions and daemons (whose
revisions the sweep lists and judges) recorded before the sweep began, less a margin. Everything else stays for the
operators and the next sweep: daemon deployment outcomes (no sweep can replay them), events recorded after the
sweep began, bodies that are not such an event. "Re-judged" thus means: the sweep of that account and Region judged
the revision the lost event was about, and reported it like any other.

The queue is the member's: its administrator can read, add or delete messages. So nothing here is trusted beyond
counting: a body is only classified (never followed), an error code is reported only when it looks like one, a
forged message can only get itself deleted, and the sweep's verdicts never depend on the queue.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..adapters.aws import BotoCoreError, ClientError, error_code
from ..core.routing import DAEMON, DAEMON_TASK_DEFINITION, TASK_DEFINITION, route
from ..remediation.identify import parse_time

# The calls whose revisions the sweep judges (RegisterTaskDefinition, RegisterDaemonTaskDefinition, and CreateDaemon
# and UpdateDaemon for what daemons run), as the router (core/routing.py) classifies them for the function.
COVERED_KINDS = frozenset({TASK_DEFINITION, DAEMON_TASK_DEFINITION, DAEMON})
# CloudTrail's time is when the call completed; the sweep lists a moment after it starts: events of the last
# minutes before it began stay for the next sweep rather than be deleted on a listing that may have missed them.
DRAIN_MARGIN = timedelta(minutes=5)
MAX_BATCHES = 100  # 1,000 messages received per item and run at most: a flooded queue does not hold the sweep
VISIBILITY_SECONDS = 120  # a kept message is hidden this long, so one run receives it once
OK, MISSING, UNREADABLE = "ok", "missing", "unreadable"
_ERROR_CODE = re.compile(r"^[A-Z][A-Z_]{0,39}\Z")
MAX_REASONS = 10


@dataclass
class QueueState:
    status: str  # ok | missing (no such queue: a member stack older than the hub) | unreadable (denied, failed)
    queued: int = 0  # messages in the queue when read (visible and in flight)
    drained: int = 0  # deleted: the sweep had judged what they were about
    kept: int = 0  # received and left: not covered by the sweep, or not an event
    reasons: dict[str, int] = field(default_factory=dict)  # EventBridge's ERROR_CODE of the received messages
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "queued": self.queued, "drained": self.drained, "kept": self.kept}
        if self.reasons:
            out["reasons"] = dict(self.reasons)
        if self.error:
            out["error"] = self.error
        return out


def covered(body: str, judged_before: datetime) -> bool:
    """True for an ECS CloudTrail event of a call the sweep covers, recorded before `judged_before`."""
    try:
        event = json.loads(body)
    except ValueError:
        return False
    if route(event, member=True).kind not in COVERED_KINDS:
        return False
    detail = event["detail"]
    times = [parse_time(value) for value in (event.get("time"), detail.get("eventTime")) if isinstance(value, str)]
    known = [t for t in times if t is not None]
    return bool(known) and max(known) < judged_before  # the later of the two: never before it happened


def reason_of(message: dict[str, Any]) -> str:
    value = message.get("MessageAttributes", {}).get("ERROR_CODE", {}).get("StringValue")
    return value if isinstance(value, str) and _ERROR_CODE.match(value) else "OTHER"


def inspect(sqs: Any, account: str, queue_name: str, *, judged_before: datetime | None) -> QueueState:
    """The queue's state; with `judged_before`, the messages the sweep covered are deleted (see the module)."""
    try:
        url = sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        state = QueueState(OK, queued=sum(int(attributes.get(name, 0)) for name in attributes))
        if judged_before is not None and state.queued:
            _drain(sqs, url, judged_before, state)
    except ClientError as error:
        code = error_code(error)
        missing = code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
        return QueueState(MISSING if missing else UNREADABLE, error=code[:80])
    except (BotoCoreError, ValueError) as error:
        return QueueState(UNREADABLE, error=type(error).__name__)
    return state


def _drain(sqs: Any, url: str, judged_before: datetime, state: QueueState) -> None:
    reasons: Counter[str] = Counter()
    for _ in range(MAX_BATCHES):
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=VISIBILITY_SECONDS,
            WaitTimeSeconds=0,
            MessageAttributeNames=["ERROR_CODE"],
        ).get("Messages", [])
        if not messages:
            break
        done = [m for m in messages if covered(str(m.get("Body", "")), judged_before)]
        reasons.update(reason_of(m) for m in messages)
        state.kept += len(messages) - len(done)
        if done:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
            answer = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
            failed = len(answer.get("Failed", []))
            state.drained += len(done) - failed
            state.kept += failed
    state.reasons = dict(reasons.most_common(MAX_REASONS))


__all__ = ["COVERED_KINDS", "DRAIN_MARGIN", "MISSING", "OK", "UNREADABLE", "QueueState", "covered", "inspect"]
