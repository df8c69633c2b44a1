"""Pure: the one classification of an event, made once at the function's entry (functions/handler.py), for the
single-account function and the organization hub alike. Every path below takes the `Route` instead of asking the
event again what it is.

- Kind, from what AWS writes in the envelope (`source`, `detail-type`) and CloudTrail's `eventName`:
  RegisterTaskDefinition -> TASK_DEFINITION; RegisterDaemonTaskDefinition -> DAEMON_TASK_DEFINITION; CreateDaemon
  and UpdateDaemon -> DAEMON (the revision a daemon is given); ECS Daemon Deployment State Change ->
  DAEMON_DEPLOYMENT; TagResource -> EXEMPTION_TAGS (the single-account function's approvals; the hub records none).
  Anything else is UNROUTABLE with one reason (the one the task-definition parser gives, as before), never silent.
  The rest of the event (eventSource, errorCode, the ARNs' shapes, who called) is its kind's parser's to check.
- Account context: OWN (the single-account function acts in its own account and Region) or MEMBER (the hub acts in
  the account and Region of the envelope, which EventBridge sets to the account that put the event on the bus: a
  member cannot speak for another). Nothing in `detail` (recipientAccountId, userIdentity, an ARN) names the
  context.
- The ARNs the event points at, the first the one it is about (the revision, or the deployment), and for the hub
  the first of them outside the sending account or Region (`foreign`): the hub acts on none of them.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from .events import (
    CREATE_DAEMON,
    DEPLOYMENT_DETAIL_TYPE,
    DETAIL_TYPE,
    EVENT_NAME,
    REGISTER_DAEMON_TASK_DEFINITION,
    SOURCE,
    TAG_EVENT_NAME,
    UPDATE_DAEMON,
    not_a_registration,
)

TASK_DEFINITION = "task-definition"
DAEMON_TASK_DEFINITION = "daemon-task-definition"
DAEMON = "daemon"
DAEMON_DEPLOYMENT = "daemon-deployment"
EXEMPTION_TAGS = "exemption-tags"
UNROUTABLE = "unroutable"
DAEMON_CALL_KINDS = frozenset({DAEMON_TASK_DEFINITION, DAEMON})
DAEMON_KINDS = DAEMON_CALL_KINDS | {DAEMON_DEPLOYMENT}  # the daemon path (daemons/handling.py)
OWN, MEMBER = "own", "member"

_CALL_KINDS = {
    EVENT_NAME: TASK_DEFINITION,
    REGISTER_DAEMON_TASK_DEFINITION: DAEMON_TASK_DEFINITION,
    CREATE_DAEMON: DAEMON,
    UPDATE_DAEMON: DAEMON,
    TAG_EVENT_NAME: EXEMPTION_TAGS,
}
# Patterns of the MEMBER context only, compiled on first use (re's cache): the single-account function's start and
# its events pay for none of them.
_ACCOUNT_PATTERN = r"^\d{12}\Z"
_REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d{1,2}\Z"
# The account and Region of any ECS ARN (its own shape is the kind's parser's to check).
_ECS_ARN_PATTERN = r"^arn:[^:]*:ecs:(?P<region>[^:]*):(?P<account>[^:]*):(?P<type>[a-z-]+)/"
_WHAT = {
    "task-definition": "revision",
    "daemon-task-definition": "daemon task definition",
    "daemon": "daemon",
    "daemon-deployment": "deployment",
}


class Route(NamedTuple):
    """What an event is and where it is handled: one of the kinds above, in OWN or MEMBER context. Immutable (a
    named tuple: a third of a frozen dataclass's cost at the function's start, which builds this class)."""

    kind: str
    context: str  # OWN | MEMBER
    account: str  # where it is handled: the function's own account, or the envelope's (cut to 12); "" unknown
    region: str  # likewise the function's Region, or the envelope's (cut to 32)
    event_name: str = ""  # CloudTrail's eventName (or the deployment event's), cut to 64
    # What the event is about as it names it: the revision (for a daemon call, the one the request gives the
    # daemon), the deployment, the tagged resource; "" when it names none (its parser then says what follows).
    arn: str = ""
    pointers: tuple[str, ...] = ()  # every ARN the kind's path follows (the hub's boundary covers them all)
    # MEMBER context: the envelope names a 12-digit account and a Region, as EventBridge writes them (OWN: False,
    # unused: the function acts in its own account, and each kind's parser refuses another sender).
    envelope_valid: bool = False
    reason: str = ""  # UNROUTABLE: why, in one line

    @property
    def foreign(self) -> str:
        """MEMBER context: why the event is refused, an ARN it points at being of another account or Region than
        the sending one ("" when none is; always "" in OWN context, where each kind's parser checks the function's
        own account and Region). Malformed ARNs are left to the kind's parser, which skips them."""
        if self.context != MEMBER:
            return ""
        for arn in self.pointers:
            match = re.match(_ECS_ARN_PATTERN, arn, re.ASCII)
            if match is None:
                continue
            what = _WHAT.get(match["type"], match["type"])
            if match["account"] != self.account:
                return (
                    f"foreign account: the {what} is in {match['account'][:12]}, not the sending account {self.account}"
                )
            if match["region"] != self.region:
                return f"foreign Region: the {what} is in {match['region'][:32]}, not the sending Region {self.region}"
        return ""


def route(event: Any, *, member: bool, account: str | None = None, region: str | None = None) -> Route:
    """The event's Route. `member`: the hub (the envelope's account and Region are the context); otherwise the
    function's own `account` and `region` are."""
    where = (MEMBER, *envelope_of(event)) if member else (OWN, account or "", region or "")
    valid = member and valid_envelope(event)
    if not isinstance(event, dict) or event.get("source") != SOURCE:
        return Route(UNROUTABLE, *where, envelope_valid=valid, reason=_unroutable(event))
    detail = _object(event.get("detail"))
    name = _text(detail.get("eventName"), 64)
    if event.get("detail-type") == DEPLOYMENT_DETAIL_TYPE:
        deployment = _arns(detail.get("daemonDeploymentArn"))
        pointers = deployment + _arns(detail.get("daemonArn"))
        return Route(DAEMON_DEPLOYMENT, *where, name, _first(deployment), pointers, envelope_valid=valid)
    kind = (
        _CALL_KINDS.get(name)
        if event.get("detail-type") == DETAIL_TYPE and isinstance(event.get("detail"), dict)
        else None
    )
    if kind is None or (kind == EXEMPTION_TAGS and member):  # the hub records no exemption tags
        return Route(UNROUTABLE, *where, name, envelope_valid=valid, reason=_unroutable(event))
    request, response = _object(detail.get("requestParameters")), _object(detail.get("responseElements"))
    if kind == TASK_DEFINITION:
        about = pointers = _arns(_object(response.get("taskDefinition")).get("taskDefinitionArn"))
    elif kind == EXEMPTION_TAGS:
        about = pointers = _arns(request.get("resourceArn"))
    else:  # the daemon calls: every ARN the daemon path reads (daemons/events.py reads no others)
        given = _arns(request.get("daemonTaskDefinitionArn"))
        about = _arns(response.get("daemonTaskDefinitionArn")) if kind == DAEMON_TASK_DEFINITION else given
        pointers = (
            _arns(response.get("daemonTaskDefinitionArn"))
            + _arns(response.get("daemonArn"))
            + _arns(request.get("daemonArn"))
            + given
        )
    return Route(kind, *where, name, _first(about), pointers, envelope_valid=valid)


def envelope_of(event: Any) -> tuple[str, str]:
    """The envelope's account and Region as text (cut to their longest lengths; "" when absent or not text)."""
    envelope = event if isinstance(event, dict) else {}
    sender = str(envelope.get("account") or "")[:12] if isinstance(envelope.get("account"), str) else ""
    region = str(envelope.get("region") or "")[:32] if isinstance(envelope.get("region"), str) else ""
    return sender, region


def valid_account(account: str) -> bool:
    """An account id as AWS writes it: 12 ASCII digits."""
    return bool(re.match(_ACCOUNT_PATTERN, account, re.ASCII))


def valid_envelope(event: Any) -> bool:
    """The envelope names a sending account (12 digits) and a Region, as EventBridge writes them."""
    envelope = event if isinstance(event, dict) else {}
    sender, region = envelope.get("account"), envelope.get("region")
    return (
        isinstance(sender, str)
        and valid_account(sender)
        and isinstance(region, str)
        and len(region) <= 32  # as envelope_of cuts it: a valid envelope's Region is never cut
        and bool(re.match(_REGION_PATTERN, region, re.ASCII))
    )


def _unroutable(event: Any) -> str:
    # The reason the task-definition parser gives (what the function said of such an event before it was routed).
    return not_a_registration(event) or "not an event this function handles"


def _arns(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else ()


def _first(arns: tuple[str, ...]) -> str:
    return arns[0] if arns else ""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""
