"""Pure: the notice for a daemon task definition result, as email text and JSON, in the words of daemons.

The same rules as core/notice.py: names and ARNs only (container names, images, daemon and cluster names), never a value
from the definition's body; it states only what was checked (the copy read back, the tags that could be read, the
daemons looked up). Built on core/notice.py's parts for who registered it and what the copy holds.
"""

from __future__ import annotations

import shlex
from typing import Any

from ..core.events import REGISTER_DAEMON_TASK_DEFINITION
from ..core.message import Message, fit_subject
from ..core.notice import CONTROL, STALE_LATEST, _changes, _who, compose, where, with_host_subject
from ..core.outcomes import EXEMPT, FAILED, REMEDIATED, REPORTED, SUPERSEDED, UNRESOLVED, Result
from .result import DEPLOYMENT, RESOURCE_TYPE, ROLLED_BACK, DaemonCall
from .rollout import ROLLOUT_CAVEAT

_TITLE = {
    REMEDIATED: "privileged removed",
    REPORTED: "privileged container found (report only)",
    FAILED: "remediation FAILED",
    EXEMPT: "privileged container exempt",
    SUPERSEDED: "privileged, superseded, still ACTIVE",
    UNRESOLVED: "registration whose revision could not be found",
}
ALTERNATIVE = (
    "Many security and observability agents ask for privileged mode; most need only a few Linux capabilities. Ask "
    "the agent's vendor which, and add just those in linuxParameters.capabilities.add of the daemon task definition "
    "instead of privileged: true (the capabilities are host-root equivalents too: reviewed, and reported, as such)."
)


def daemon_subject(result: Result) -> str:
    """e.g. `[ECS.4] daemon task definition sensor:3 -> :4 privileged removed (agent)`, ASCII, < 100 chars."""
    ref = f"{result.family}:{result.revision}" if result.revision else result.family
    head = f"[{CONTROL}] {RESOURCE_TYPE} {ref}"
    if result.outcome == DEPLOYMENT:
        deployment = getattr(result, "deployment", {}) or {}
        status = str(deployment.get("status", "UNKNOWN"))
        daemon = "/".join(str(deployment.get("daemonArn", "")).rsplit("/", 2)[-2:])
        copy = (result.new_task_definition_arn or "").rsplit("/", 1)[-1]
        if status in ROLLED_BACK:
            text = f"[{CONTROL}] daemon {daemon}: {status}, privileged again ({ref})"
        else:
            text = f"[{CONTROL}] daemon {daemon}: deployment {status} ({copy})"
    else:
        if result.new_task_definition_arn:
            head += f" -> :{result.new_task_definition_arn.rsplit(':', 1)[-1]}"
        title = _TITLE.get(result.outcome, result.outcome)
        if result.outcome == SUPERSEDED and result.retired:
            title = "superseded privileged revision deleted"
        text = f"{head} {title}"
        if result.forged_copies:  # first: the subject is cut at 99 characters
            text += "; FORGED copy marker"
        if result.race_lost:
            text += STALE_LATEST
        if result.privileged:
            text += f" ({', '.join(result.privileged)})"
        return with_host_subject(text, result)
    return fit_subject(text)


def daemon_next_commands(result: Result, region: str) -> list[str]:
    """The exact commands a person runs next (a fixed revision named only when read back and verified)."""
    source = f"{result.family}:{result.revision}"
    flag = f" --region {shlex.quote(region)}" if region else ""
    delete = f"aws ecs delete-daemon-task-definition --daemon-task-definition {source}{flag}"
    manual = [m["step"] for m in getattr(result, "daemons_manual", []) if str(m.get("step", "")).startswith("aws ")]
    if result.outcome == DEPLOYMENT:
        deployment = getattr(result, "deployment", {}) or {}
        if str(deployment.get("status")) in ROLLED_BACK | {"STOPPED"}:
            return [
                f"aws ecs describe-daemon-deployments --daemon-deployment-arns {deployment.get('deploymentArn')}{flag}",
                "# give the agent the capabilities it needs (linuxParameters.capabilities.add), register that, then:",
                f"aws ecs update-daemon --daemon-arn {deployment.get('daemonArn')} --daemon-task-definition-arn ARN "
                f"--capacity-provider-arns ...{flag}",
            ]
        return ["# once no daemon runs it, delete the privileged revision:", delete]
    verified = result.outcome == REMEDIATED and result.new_task_definition_arn and result.copy_verified
    if verified:
        commands = list(manual)
        if not getattr(result, "daemons_checked", False) or str(getattr(result, "daemons_error", "")):
            commands += [
                "# daemons still running the privileged revision:",
                f"aws ecs list-clusters{flag}",
                f"aws ecs list-daemons --cluster-arn CLUSTER{flag}",
                "aws ecs update-daemon --daemon-arn DAEMON --daemon-task-definition-arn "
                f"{result.new_task_definition_arn} --capacity-provider-arns ...{flag}",
            ]
        if not result.retired:
            commands += ["# once no daemon runs it, delete the privileged revision:", delete]
        return commands
    if result.outcome == SUPERSEDED:
        return [] if result.retired else [*manual, "# once no daemon runs it, delete it:", delete]
    if result.outcome == UNRESOLVED:
        family = shlex.quote(result.family) if result.family else "FAMILY"
        return [
            f"aws ecs list-daemon-task-definitions --family {family} --sort DESC{flag}",
            f"ecs-remediate scan{flag} --scope active",
        ]
    if result.outcome in (REPORTED, FAILED, REMEDIATED):
        arn = shlex.quote(result.task_definition_arn) if result.task_definition_arn else "ARN"
        return [
            "# write a non-privileged copy and register it (Describe returns no tags: add them to fixed.json):",
            f"aws ecs describe-daemon-task-definition --daemon-task-definition {source}{flag} > dtd.json",
            f"aws ecs list-tags-for-resource --resource-arn {arn}{flag}",
            "ecs-remediate fix dtd.json > fixed.json",
            f"aws ecs register-daemon-task-definition --cli-input-json file://fixed.json{flag}",
        ]
    return []


def build_daemon_message(result: Result, region: str = "", account: str = "") -> Message:
    region, account = where(result, region, account)
    source = result.task_definition_arn or f"family {result.family} (revision unknown)"
    body = _caller(result) if result.outcome != DEPLOYMENT else []
    body += _deployment(result) + _changes(result) + _tags(result) + _images(result) + _daemons(result)
    return compose(
        result,
        daemon_subject(result),
        f"Daemon task definition: {source}",
        body,
        commands=daemon_next_commands(result, region),
        region=region,
        account=account,
        extra={"resourceType": RESOURCE_TYPE},
    )


def _caller(result: Result) -> list[str]:
    """Who registered it (core/notice.py's lines); for CreateDaemon/UpdateDaemon, who made that call, and ECS's record
    of who registered the revision."""
    call = result.registration
    if not isinstance(call, DaemonCall) or call.event_name == REGISTER_DAEMON_TASK_DEFINITION:
        return _who(result)
    lines = [
        f"Call:            {call.event_name} {call.daemon_arn or '(daemon unknown)'}",
        f"Called by:       {call.user_arn or 'unknown'} (CloudTrail)",
        f"Registered by:   {result.registered_by or 'unknown'} (ECS registeredBy)",
        f"When:            {call.event_time or '-'}",
    ]
    if result.latest_arn:
        lines.append(f"Latest revision: {result.latest_arn}")
    return lines


def _tags(result: Result) -> list[str]:
    error = getattr(result, "tags_error", None)
    if not error:
        return []
    return [
        f"Tags:            ListTagsForResource could not read the source's tags ({error}); the copy has only the "
        "marker tag (add the others by hand)"
    ]


def _images(result: Result) -> list[str]:
    images = getattr(result, "images", [])
    if not images or result.outcome not in (REMEDIATED, REPORTED, FAILED, EXEMPT, SUPERSEDED):
        return []
    lines = ["", "Images of the privileged containers:"]
    lines += [f"  - {i['container']}: {i['image']}" for i in images[:20]]
    return [*lines, ALTERNATIVE]


def _daemons(result: Result) -> list[str]:
    """Which daemons run it, which were moved (with the caveat), which are left, and the revision's fate."""
    lines: list[str] = []
    if getattr(result, "daemons_error", ""):
        lines += ["", f"Daemons:         {result.daemons_error}; nothing was moved or deleted"]  # type: ignore[attr-defined]
    elif getattr(result, "daemons_checked", False):
        daemons = getattr(result, "daemons", [])
        what = "Daemons now:" if result.outcome == DEPLOYMENT else "Daemons running it (when looked up):"
        if daemons:
            lines += ["", what] + [
                f"  - {d['cluster']}/{d['daemon']}: runs {', '.join(d['revisions']) or 'nothing'}" for d in daemons[:20]
            ]
        elif result.outcome != DEPLOYMENT:
            lines += ["", "No daemon runs it."]
    updated = getattr(result, "daemons_updated", [])
    if updated:
        lines += [
            "",
            "Daemons moved onto the fixed revision (UpdateDaemon; their capacity providers and settings kept):",
        ]
        lines += [f"  - {d['cluster']}/{d['daemon']}: deployment {d['deploymentArn']}" for d in updated]
    manual = getattr(result, "daemons_manual", [])
    if manual:
        lines += ["", "Daemons still on the privileged revision (not moved automatically):"]
        lines += [
            f"  - {m['cluster']}/{m['daemon']}: {m['step']}" + (f" [{m['note']}]" if m.get("note") else "")
            for m in manual
        ]
    if updated or (manual and result.outcome == REMEDIATED):
        lines.append(ROLLOUT_CAVEAT)
    if result.retire_note:
        lines.append(f"Privileged revision: {result.retire_note}")
    return lines


def _deployment(result: Result) -> list[str]:
    if result.outcome != DEPLOYMENT:
        return []
    deployment: dict[str, Any] = getattr(result, "deployment", {}) or {}
    status = str(deployment.get("status", "UNKNOWN"))
    lines = [
        f"Daemon:          {deployment.get('daemonArn', '')}",
        f"Deployment:      {deployment.get('deploymentArn', '')} (started by this stack onto the fixed revision "
        f"{result.new_task_definition_arn})",
        f"Status:          {status} (DescribeDaemonDeployments)"
        + (f": {deployment['statusReason']}" if deployment.get("statusReason") else ""),
    ]
    if status in ROLLED_BACK:
        lines += [
            "",
            "ECS rolled the daemon back to the privileged revision: the de-privileged agent did not start or stay "
            "healthy" + (f" ({deployment['rollbackReason']})" if deployment.get("rollbackReason") else "") + ".",
            "The daemon runs privileged again. " + ALTERNATIVE,
        ]
    elif status == "SUCCESSFUL" and result.new_task_definition_arn:
        copy = result.new_task_definition_arn.rsplit("/", 1)[-1]
        if [d.get("revisions") for d in getattr(result, "daemons", [])] == [[copy]]:
            lines += ["", f"The daemon runs only {copy} now (DescribeDaemon), the fixed revision."]
    return lines
