"""Turn an EventBridge "AWS API Call via CloudTrail" event into a registration to check, or a reason to skip.

Only the envelope and who/when come from the event; the task definition itself is always described
afresh (the event body is never the authority).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.event_bridge_event import EventBridgeEvent

from .taskdef import TASK_DEFINITION_ARN_RE

FAMILY_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}\Z", re.ASCII)

DETAIL_TYPE = "AWS API Call via CloudTrail"
SOURCE = "aws.ecs"
EVENT_SOURCE = "ecs.amazonaws.com"
# What the router (core/routing.py) classifies on, here so that routing an event loads no module of the paths it
# does not take.
TAG_EVENT_NAME = "TagResource"  # an approver's exemption tags (remediation/tag_approvals.py)
REGISTER_DAEMON_TASK_DEFINITION = "RegisterDaemonTaskDefinition"  # the daemon calls (daemons/events.py)
CREATE_DAEMON = "CreateDaemon"
UPDATE_DAEMON = "UpdateDaemon"
DAEMON_CALLS = (REGISTER_DAEMON_TASK_DEFINITION, CREATE_DAEMON, UPDATE_DAEMON)
DEPLOYMENT_DETAIL_TYPE = "ECS Daemon Deployment State Change"
EVENT_NAME = "RegisterTaskDefinition"


@dataclass(frozen=True)
class Registration:
    """Who registered which revision, when and from where (as CloudTrail recorded it)."""

    task_definition_arn: str
    event_id: str = ""
    account: str = ""
    region: str = ""
    event_time: str = ""
    user_arn: str = ""
    invoked_by: str = ""
    source_ip: str = ""
    user_agent: str = ""
    family: str = ""  # from requestParameters, for an event that names no revision


@dataclass(frozen=True)
class Unidentified:
    """A successful registration whose event names no revision (`responseElements` null or missing): the revision
    has to be found from the family, the time and the registrant (Remediator.identify), or the miss notified."""

    registration: Registration


@dataclass(frozen=True)
class Skip:
    reason: str


def not_a_registration(event: Any) -> str:
    """Why `event` is no RegisterTaskDefinition call of ECS ("" when it is one): also the reason the router
    (core/routing.py) gives an event of no kind it knows."""
    if not isinstance(event, dict):
        return f"malformed event: expected a JSON object, got {type(event).__name__}"
    detail_type, source = event.get("detail-type"), event.get("source")
    if detail_type != DETAIL_TYPE or source != SOURCE:
        return f"not an ECS API call event (source={_short(source)}, detail-type={_short(detail_type)})"
    detail = event.get("detail")
    if not isinstance(detail, dict):
        return "malformed event: 'detail' is not an object"
    if detail.get("eventSource") != EVENT_SOURCE or detail.get("eventName") != EVENT_NAME:
        return (
            f"not a RegisterTaskDefinition call ({_short(detail.get('eventSource'))} {_short(detail.get('eventName'))})"
        )
    return ""


def parse_registration_event(
    event: Any, expected_region: str | None = None, expected_account: str | None = None
) -> Registration | Unidentified | Skip:
    """A Registration for a successful RegisterTaskDefinition call, Unidentified when the call succeeded but the
    event names no revision, otherwise a Skip with the reason. The revision must be in `expected_account` and
    `expected_region` (this function's), and in the account that sent the event: anything else is skipped."""
    refused = not_a_registration(event)
    if refused or not isinstance(event, dict):
        return Skip(refused)
    envelope = EventBridgeEvent(event)
    detail: dict[str, Any] = event["detail"]
    if detail.get("errorCode"):
        return Skip(f"the call failed ({_short(detail.get('errorCode'))}): nothing was registered")
    sender = _text(envelope.get("account"))
    if expected_account and sender and sender != expected_account:
        return Skip(f"foreign account: the event came from {_short(sender)}, this function acts in {expected_account}")
    identity = detail.get("userIdentity")
    if not isinstance(identity, dict):
        identity = {}
    who = {
        "event_id": _text(envelope.get("id")),
        "event_time": _text(detail.get("eventTime")) or _text(envelope.get("time")),
        "user_arn": _text(identity.get("arn")),
        "invoked_by": _text(identity.get("invokedBy")),
        "source_ip": _text(detail.get("sourceIPAddress")),
        "user_agent": _text(detail.get("userAgent")),
    }
    response = detail.get("responseElements")
    task_definition = response.get("taskDefinition") if isinstance(response, dict) else None
    arn = task_definition.get("taskDefinitionArn") if isinstance(task_definition, dict) else None
    if not isinstance(arn, str):  # a successful call whose event names no revision: found another way, or notified
        request = detail.get("requestParameters")
        family = request.get("family") if isinstance(request, dict) else None
        family_text = family if isinstance(family, str) and FAMILY_RE.match(family) else ""
        return Unidentified(
            Registration(
                task_definition_arn="",
                account=sender or expected_account or "",
                region=_text(envelope.get("region")) or expected_region or "",
                family=family_text,
                **who,
            )
        )
    match = TASK_DEFINITION_ARN_RE.match(arn)
    if not match:
        return Skip(f"malformed task definition ARN {_short(arn)}")
    if expected_region and match["region"] != expected_region:
        return Skip(f"revision is in {match['region']}, this function handles {expected_region}")
    for what, account in (("this function's", expected_account), ("the sending", sender)):
        if account and match["account"] != account:
            return Skip(f"foreign account: the revision is in {match['account']}, not {what} account {account}")
    return Registration(
        task_definition_arn=arn,
        account=sender or match["account"],
        region=_text(envelope.get("region")) or match["region"],
        **who,
    )


def _text(value: Any, limit: int = 512) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _short(value: Any) -> str:
    return repr(value)[:80]
