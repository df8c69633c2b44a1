"""The organization hub's daemon path: a member's daemon event (a daemon kind of core/routing.py: RegisterDaemon-
TaskDefinition, CreateDaemon and UpdateDaemon calls, ECS Daemon Deployment State Change) handled in the account and
Region that sent it, through that account's member role. `HubRuntime.handle` hands daemon events here.

The task-definition path's boundaries (hub.py), unchanged:
- Where: the envelope's `account` (EventBridge sets it to the account that put the event on the bus) and `region`.
  Every ARN the daemon path would follow (the registered revision, the daemon, the revision a CreateDaemon/
  UpdateDaemon names, the deployment) must be of that account and Region; one that is not refuses the whole event:
  nothing is read or written in any account, and the refusal is logged, counted and notified once.
- How: daemons/handling.py's own path (`run_daemon_event`: parse, describe, judge, copy once, read back, notify, daemon
  rollout, retire, deployment follow-ups) on a DaemonRemediator built per (account, Region) from that account's
  member-role ECS client, cached by the runtime beside its task-definition Remediators. It trusts `role/<member
  role>` of that account as the stack's registrant there (HubRuntime.config_for), and keeps the hub's table (copies,
  ledger of copies and of the daemon deployments it started), exemption registry and topic.
- When the member role cannot be used: for good, a failure notice and no retry; transiently, raised for Lambda's
  retry and then the dead-letter queue (HubRuntime.role_unavailable / transient).
- Notices name the account, its name and the Region (organization.notice.AccountTopic), in daemon
  words (daemons/notice.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger

from ..core.events import Unidentified
from ..core.outcomes import FAILED
from ..core.routing import Route
from ..core.taskdef import DAEMON_TASK_DEFINITION_ARN_RE
from ..daemons.events import parse_daemon_call
from ..daemons.handling import record_daemon_result, run_daemon_event
from ..daemons.notice import build_daemon_message
from ..daemons.remediator import DaemonRemediator, daemon_remediator
from ..daemons.result import RESOURCE_TYPE, DaemonCall, DaemonResult
from .hub import HubRuntime
from .member_accounts import MemberAccessTransient, MemberRoleUnavailable

logger = Logger(child=True)


def handle_daemon_event(hub: HubRuntime, routed: Route, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One member's daemon event, in the sending account and Region only (`routed`: the router's MEMBER context).
    Raises RemediationFailed (after its notice) and MemberAccessTransient, as HubRuntime.handle."""
    sender, region = routed.account, routed.region
    if not routed.envelope_valid:
        return _refuse(hub, routed, event, "the envelope names no valid sending account and Region", context)
    if routed.foreign:
        return _refuse(hub, routed, event, routed.foreign, context)
    logger.append_keys(account=sender, region=region)
    try:
        result = run_daemon_event(routed, event, context, lambda: remediator(hub, sender, region))
    except MemberRoleUnavailable as error:
        failure = _failure(routed, event)
        where = {"account": sender, "region": region, "context": context, "key": _event_key(event, failure)}
        answer = hub.role_unavailable(error, failure, build_daemon_message, **where, record=record_daemon_result)
        return {"resource_type": RESOURCE_TYPE, **answer}
    except MemberAccessTransient as error:
        hub.transient(error)
        raise
    finally:
        logger.remove_keys(["account", "region"])
    return {**result, "account": sender, "region": region}


def remediator(hub: HubRuntime, account: str, region: str) -> DaemonRemediator:
    """The DaemonRemediator acting in `account` and `region` through its member role (built once per process).
    Raises MemberRoleUnavailable or MemberAccessTransient when the role cannot be assumed."""
    built = hub.once(
        ("daemons", account, region),
        lambda: daemon_remediator(
            hub.config_for(account),
            hub.members.client("ecs", account, region),
            hub.member_topic(account, region),
            hub.persistence(),
            registry=hub.registry,
        ),
    )
    assert isinstance(built, DaemonRemediator)
    return built


def _refuse(hub: HubRuntime, routed: Route, event: dict[str, Any], reason: str, context: Any) -> dict[str, Any]:
    result = _failure(routed, event)
    where = {"sender": routed.account, "region": routed.region, "context": context, "key": _event_key(event, result)}
    answer = hub.refuse(result, build_daemon_message, reason, **where)
    return {"resource_type": RESOURCE_TYPE, **answer}


def _failure(routed: Route, event: dict[str, Any]) -> DaemonResult:
    """A FAILED result saying what the event claimed (described as if nobody had sent it: no account or Region to
    match), in the sending account and Region."""
    described = parse_daemon_call(routed._replace(account="", region=""), {**event, "account": "", "region": ""})
    call = described.registration if isinstance(described, Unidentified) else described
    if not isinstance(call, DaemonCall):
        detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
        assert isinstance(detail, dict)
        name, daemon = detail.get("eventName"), detail.get("daemonArn")
        call = DaemonCall(
            task_definition_arn="",
            event_id=str(event.get("id") or "")[:512],
            event_name=name[:64] if isinstance(name, str) else "",
            daemon_arn=daemon[:2048] if isinstance(daemon, str) else "",
        )
    call = replace(call, account=routed.account, region=routed.region)
    match = DAEMON_TASK_DEFINITION_ARN_RE.match(call.task_definition_arn)
    family, revision = (match["family"], int(match["revision"])) if match else (call.family, 0)
    return DaemonResult(FAILED, call.task_definition_arn, family, revision, registration=call)


def _event_key(event: dict[str, Any], result: DaemonResult) -> str:
    """What a failure notice is deduplicated on: the event (EventBridge delivers at least once), else what it names."""
    call = result.registration
    daemon = call.daemon_arn if isinstance(call, DaemonCall) else ""
    return str(event.get("id") or "")[:128] or result.task_definition_arn or daemon or result.family


__all__ = ["handle_daemon_event", "remediator"]
