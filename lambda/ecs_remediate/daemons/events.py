"""Pure: the daemon events the function receives, turned into a call to check, a deployment to report, or a skip.

- `AWS API Call via CloudTrail` for RegisterDaemonTaskDefinition, CreateDaemon and UpdateDaemon. No sample
  CloudTrail record of these calls is published, so nothing beyond an ARN is read from `responseElements`
  (RegisterDaemonTaskDefinition's response holds only the revision's ARN, CreateDaemon's the daemon's), and the
  request only points at things: the daemon task definition and the daemon are always described afresh.
- `ECS Daemon Deployment State Change` (ECS's own event; detail: eventName DAEMON_DEPLOYMENT_*, daemonArn,
  daemonDeploymentArn, targetDaemonRevisionArn, clusterArn, updatedAt, as the developer guide shows it). Only the
  deployment's ARN is taken; the stack reports on it only when its ledger recorded starting it, after describing it.

The router (core/routing.py) tells these events apart, once, at the function's entry; the parsers here take its
Route: the kind, and the account and Region the event is handled in. The account and Region checks are those of
events.parse_registration_event: only that account and Region, and only the account that sent the event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..core.events import (
    CREATE_DAEMON,
    DAEMON_CALLS,
    DEPLOYMENT_DETAIL_TYPE,
    EVENT_SOURCE,
    FAMILY_RE,
    REGISTER_DAEMON_TASK_DEFINITION,
    UPDATE_DAEMON,
    Skip,
    Unidentified,
)
from ..core.routing import DAEMON_CALL_KINDS, DAEMON_DEPLOYMENT, DAEMON_TASK_DEFINITION, Route
from ..core.taskdef import DAEMON_TASK_DEFINITION_ARN_RE
from .result import DaemonCall

__all__ = [
    "CREATE_DAEMON",
    "DAEMON_CALLS",
    "DEPLOYMENT_DETAIL_TYPE",
    "DEPLOYMENT_OUTCOME_EVENTS",
    "REGISTER_DAEMON_TASK_DEFINITION",
    "UPDATE_DAEMON",
    "DeploymentEvent",
    "parse_daemon_call",
    "parse_deployment_event",
]
# The deployment events the follow-up rule matches: finished, stopped, or rolling back (PENDING and IN_PROGRESS
# say nothing yet).
DEPLOYMENT_OUTCOME_EVENTS = (
    "DAEMON_DEPLOYMENT_SUCCESSFUL",
    "DAEMON_DEPLOYMENT_STOPPED",
    "DAEMON_DEPLOYMENT_ROLLBACK_IN_PROGRESS",
    "DAEMON_DEPLOYMENT_ROLLBACK_SUCCESSFUL",
    "DAEMON_DEPLOYMENT_ROLLBACK_FAILED",
)
_PREFIX = r"^arn:(?P<partition>aws[a-z-]*):ecs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
DAEMON_ARN_RE = re.compile(_PREFIX + r"daemon/(?P<cluster>[A-Za-z0-9_-]{1,255})/(?P<name>[A-Za-z0-9_-]{1,255})\Z")
DAEMON_DEPLOYMENT_ARN_RE = re.compile(
    _PREFIX
    + r"daemon-deployment/(?P<cluster>[A-Za-z0-9_-]{1,255})/(?P<name>[A-Za-z0-9_-]{1,255})/[A-Za-z0-9_-]{1,255}\Z"
)


@dataclass(frozen=True)
class DeploymentEvent:
    deployment_arn: str
    event_name: str
    event_id: str = ""
    account: str = ""
    region: str = ""


def parse_daemon_call(routed: Route, event: dict[str, Any]) -> DaemonCall | Unidentified | Skip:
    """A DaemonCall for a successful daemon call naming a daemon task definition or a daemon of the routed account
    and Region; Unidentified for a registration whose event names no revision; otherwise Skip with the reason."""
    if routed.kind not in DAEMON_CALL_KINDS:
        return Skip("not a daemon API call event")
    expected_region, expected_account = routed.region or None, routed.account or None
    detail: dict[str, Any] = event["detail"]
    name = routed.event_name
    if detail.get("eventSource") != EVENT_SOURCE:
        return Skip(f"not an ECS call ({_short(detail.get('eventSource'))} {name})")
    if detail.get("errorCode"):
        return Skip(f"the call failed ({_short(detail.get('errorCode'))}): nothing changed")
    sender = _text(event.get("account"))
    if expected_account and sender and sender != expected_account:
        return Skip(f"foreign account: the event came from {_short(sender)}, this function acts in {expected_account}")
    identity = detail.get("userIdentity") if isinstance(detail.get("userIdentity"), dict) else {}
    assert isinstance(identity, dict)
    region = _text(event.get("region")) or expected_region or ""
    who: dict[str, Any] = {
        "event_id": _text(event.get("id")),
        "event_time": _text(detail.get("eventTime")) or _text(event.get("time")),
        "user_arn": _text(identity.get("arn")),
        "invoked_by": _text(identity.get("invokedBy")),
        "source_ip": _text(detail.get("sourceIPAddress")),
        "user_agent": _text(detail.get("userAgent")),
        "account": sender or expected_account or "",
        "region": region,
        "event_name": name,
    }
    request = detail.get("requestParameters") if isinstance(detail.get("requestParameters"), dict) else {}
    response = detail.get("responseElements") if isinstance(detail.get("responseElements"), dict) else {}
    assert isinstance(request, dict) and isinstance(response, dict)
    checks = (expected_region, expected_account, sender)
    if routed.kind == DAEMON_TASK_DEFINITION:
        arn = response.get("daemonTaskDefinitionArn")
        if not isinstance(arn, str):  # found from the family, the time and the registrant, or notified
            family = request.get("family")
            family_text = family if isinstance(family, str) and FAMILY_RE.match(family) else ""
            return Unidentified(DaemonCall(task_definition_arn="", family=family_text, **who))
        refused = _foreign(DAEMON_TASK_DEFINITION_ARN_RE, arn, "daemon task definition", *checks)
        return Skip(refused) if refused else DaemonCall(task_definition_arn=arn, **who)
    # CreateDaemon / UpdateDaemon: the daemon (response ARN, or the request's for an update) and the revision the
    # request names; either is enough, both are described.
    daemon = response.get("daemonArn") or (request.get("daemonArn") if name == UPDATE_DAEMON else None)
    daemon_arn = daemon if isinstance(daemon, str) and not _foreign(DAEMON_ARN_RE, daemon, "daemon", *checks) else ""
    ref = request.get("daemonTaskDefinitionArn")
    valid_ref = isinstance(ref, str) and not _foreign(DAEMON_TASK_DEFINITION_ARN_RE, ref, "", *checks)
    ref_arn = ref if isinstance(ref, str) and valid_ref else ""
    if not daemon_arn and not ref_arn:
        return Skip(f"{name} names no daemon or daemon task definition of this account and Region")
    return DaemonCall(task_definition_arn=ref_arn, daemon_arn=daemon_arn, **who)


def parse_deployment_event(routed: Route, event: dict[str, Any]) -> DeploymentEvent | Skip:
    """The deployment outcome of the routed account and Region an event reports; otherwise Skip with the reason."""
    if routed.kind != DAEMON_DEPLOYMENT:
        return Skip("not an ECS Daemon Deployment State Change event")
    expected_region, expected_account = routed.region or None, routed.account or None
    detail = event.get("detail")
    if not isinstance(detail, dict):
        return Skip("malformed event: 'detail' is not an object")
    name = _text(detail.get("eventName"))
    if name not in DEPLOYMENT_OUTCOME_EVENTS:
        return Skip(f"deployment event {_short(name)}: not an outcome")
    sender = _text(event.get("account"))
    if expected_account and sender and sender != expected_account:
        return Skip(f"foreign account: the event came from {_short(sender)}, this function acts in {expected_account}")
    arn = detail.get("daemonDeploymentArn")
    refused = (
        _foreign(DAEMON_DEPLOYMENT_ARN_RE, arn, "daemon deployment", expected_region, expected_account, sender)
        if isinstance(arn, str)
        else "the event names no daemon deployment"
    )
    if refused or not isinstance(arn, str):
        return Skip(refused)
    return DeploymentEvent(
        arn, name, _text(event.get("id")), sender or expected_account or "", _text(event.get("region"))
    )


def _foreign(pattern: re.Pattern[str], arn: str, what: str, *checks: str | None) -> str:
    """Why `arn` is refused ("" when it is a well-formed ARN of this function's Region and account)."""
    region, account, sender = checks
    match = pattern.match(arn)
    if not match:
        return f"malformed {what} ARN {_short(arn)}"
    if region and match["region"] != region:
        return f"the {what} is in {match['region']}, this function handles {region}"
    for whose, expected in (("this function's", account), ("the sending", sender)):
        if expected and match["account"] != expected:
            return f"foreign account: the {what} is in {match['account']}, not {whose} account {expected}"
    return ""


def _text(value: Any, limit: int = 512) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _short(value: Any) -> str:
    return repr(value)[:80]
