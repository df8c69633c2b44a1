"""Pure: the notification for a result, as email text and as JSON for machines.

Only names and ARNs go in: never an environment variable value, a secret or a registry credential
(the task definition body is not copied into the notice at all).
"""

from __future__ import annotations

import shlex
from typing import Any

from .message import SUBJECT_LIMIT, Message, fit_subject
from .notice_source import escalated_title, escalation_lines, source_lines
from .outcomes import EXEMPT, FAILED, REMEDIATED, REPORTED, SUPERSEDED, UNRESOLVED, Result

CONTROL = "ECS.4"
# a newer deploy lies below the stack's registration (remediation/restore.py)
STALE_LATEST = "; family latest not restored"
MAX_HOST_LINES = 20  # per level, in the email text (the JSON payload has every one)
_TITLE = {
    REMEDIATED: "privileged removed",
    REPORTED: "privileged container found (report only)",
    FAILED: "remediation FAILED",
    EXEMPT: "privileged container exempt",
    SUPERSEDED: "privileged revision superseded, still ACTIVE",
    UNRESOLVED: "registration whose revision could not be found",
}


def subject(result: Result) -> str:
    """e.g. `[ECS.4] payments-api:12 -> :13 privileged removed (app, log-router)`, ASCII, < 100 chars."""
    head = f"[{CONTROL}] {result.family}:{result.revision}" if result.revision else f"[{CONTROL}] {result.family}"
    if result.new_task_definition_arn:
        head += f" -> :{result.new_task_definition_arn.rsplit(':', 1)[-1]}"
    title = _TITLE.get(result.outcome, result.outcome)
    if result.outcome == SUPERSEDED and result.retired:
        title = "superseded privileged revision retired"
    if result.escalation:
        title = escalated_title(result)
    text = f"{head} {title}"
    names = ", ".join(result.privileged)
    if names:
        text += f" ({names})"
    if result.forged_copies:
        text += "; FORGED copy marker"
    if result.race_lost:
        text += STALE_LATEST
    return with_host_subject(text, result)


def with_host_subject(text: str, result: Result) -> str:
    """`text` as a subject that ends with what the revision keeps on the host (core/hostroot.py), if anything: the rest
    is cut to make room, so a long family or container list never cuts the host access off."""
    suffix = ""
    if result.host_equivalents or result.host_access:
        suffix = "; still host-equivalent" if result.host_equivalents else "; keeps host access"
    room = SUBJECT_LIMIT - len(suffix)
    if len(text) > room:
        text = text[: room - 3] + "..."
    return fit_subject(text + suffix)


def next_commands(result: Result, region: str) -> list[str]:
    """The exact commands a person runs next; a fixed revision is named only when it was read back and verified."""
    source = f"{result.family}:{result.revision}"
    region_flag = f" --region {shlex.quote(region)}" if region else ""
    deregister = f"aws ecs deregister-task-definition --task-definition {source}{region_flag}"
    verified_copy = result.outcome == REMEDIATED and result.new_task_definition_arn and result.copy_verified
    if verified_copy and result.services_checked:
        commands = [step["step"] for step in result.services_manual if step["step"].startswith("aws ")]
        if result.services_manual:
            commands.append("# once no service uses it, retire the privileged revision:")
        if not result.retired:
            commands.append(deregister)
        return commands
    if verified_copy and result.new_task_definition_arn:
        fixed = f"{result.family}:{result.new_task_definition_arn.rsplit(':', 1)[-1]}"
        return [
            "# services still running the privileged revision:",
            f"aws ecs list-clusters{region_flag}",
            f"aws ecs list-services --cluster CLUSTER{region_flag}",
            "# move each one onto the fixed revision:",
            f"aws ecs update-service --cluster CLUSTER --service SERVICE --task-definition {fixed}{region_flag}",
            "# then retire the privileged revision:",
            deregister,
        ]
    if result.outcome == SUPERSEDED:
        if result.retired:
            return []
        commands = []
        if result.services_manual:
            commands += [
                "# services use it: give them a fixed copy of it (the family's latest is kept):",
                f"ecs-remediate scan{region_flag} --scope active --remediate --rollout",
            ]
        return [*commands, "# once nothing uses it, retire it:", deregister]
    if result.outcome == UNRESOLVED:
        family = shlex.quote(result.family) if result.family else "FAMILY"
        return [
            f"aws ecs list-task-definitions --family-prefix {family} --sort DESC{region_flag}",
            f"ecs-remediate scan{region_flag} --scope active",
        ]
    if result.outcome in (REPORTED, FAILED, REMEDIATED):
        return [
            "# write a non-privileged copy and register it:",
            f"aws ecs describe-task-definition --task-definition {source} --include TAGS{region_flag} > td.json",
            "ecs-remediate fix td.json > fixed.json",
            f"aws ecs register-task-definition --cli-input-json file://fixed.json{region_flag}",
        ]
    return []


def build_message(result: Result, region: str = "", account: str = "") -> Message:
    region, account = where(result, region, account)
    source = result.task_definition_arn or f"family {result.family} (revision unknown)"
    body = [
        *escalation_lines(result),
        *_who(result),
        *_changes(result),
        *_services(result),
        *source_lines(result),
    ]
    commands = next_commands(result, region)
    return compose(
        result, subject(result), f"Source revision: {source}", body, commands=commands, region=region, account=account
    )


def where(result: Result, region: str, account: str) -> tuple[str, str]:
    """The Region and account a notice names: the caller's, else the registration's."""
    registration = result.registration
    return (
        region or (registration.region if registration else ""),
        account or (registration.account if registration else ""),
    )


def compose(
    result: Result,
    subject_text: str,
    source_line: str,
    body: list[str],
    *,
    commands: list[str],
    region: str,
    account: str,
    extra: dict[str, Any] | None = None,
) -> Message:
    """Every notice's frame (task definitions and daemon task definitions alike): subject, outcome, account, Region,
    the source line, `body`, the closing lines; the JSON payload (`extra` added) and the SNS attributes."""
    if result.race_lost:  # first: the family's latest may hold older content than a deploy (remediation/restore.py)
        buried = (result.buried_arn or "").rsplit("/", 1)[-1]
        if not buried:
            head = "# the family's latest may hold older content than a deploy below it: check it"
        elif result.race_step:
            head = f"# the family's latest holds older content than {buried}: register it again"
        else:
            head = f"# the family's latest holds older content than {buried}: register it again (re-run its deploy)"
        commands = [head, *([result.race_step] if result.race_step else []), *commands]
    lines = [
        subject_text,
        "",
        f"Outcome:         {result.outcome.upper()} ({result.severity})",
        f"Account:         {account or 'unknown'}",
        f"Region:          {region or 'unknown'}",
        source_line,
        *body,
        *closing_lines(result, commands),
    ]
    payload: dict[str, Any] = {
        "control": CONTROL,
        "account": account,
        "region": region,
        "severity": result.severity,
        "nextCommands": [c for c in commands if not c.startswith("#")],
        **_camel(result.to_dict()),
        **(extra or {}),
    }
    # SNS refuses an empty attribute value: a registration whose family is unknown is "-"
    attributes = {"outcome": result.outcome, "severity": result.severity, "family": result.family[:256] or "-"}
    return Message(subject_text, "\n".join(lines) + "\n", payload, attributes)


def closing_lines(result: Result, commands: list[str]) -> list[str]:
    """Every notice's end (task definitions and daemon task definitions alike): the exemption, why, the error and the
    next commands, each only when there is one."""
    lines: list[str] = []
    if result.exemption:
        source = f" [{result.exemption_source}]" if result.exemption_source else ""
        lines += ["", f"Exemption:       {result.exemption}{source}"]
    if result.reason:
        lines += ["", f"Why:             {result.reason}"]
    if result.error_code:
        lines += ["", f"Error:           {result.error_code}: {result.error_message or ''}"]
    if commands:
        lines += ["", "Next:"] + [f"  {c}" for c in commands]
    return lines


def _who(result: Result) -> list[str]:
    """Who registered the source, as CloudTrail recorded it (or ECS's registeredBy without an event)."""
    registration = result.registration
    lines = []
    if registration is not None and registration.user_arn:
        lines.append(f"Registered by:   {registration.user_arn} (CloudTrail)")
    elif result.registered_by:
        lines.append(f"Registered by:   {result.registered_by} (ECS registeredBy)")
    elif registration is not None:
        lines.append("Registered by:   unknown")
    if registration is not None:
        lines += [
            f"Invoked by:      {registration.invoked_by or '-'}",
            f"Source IP:       {registration.source_ip or '-'}",
            f"When:            {registration.event_time or '-'}",
        ]
    if result.latest_arn:
        lines.append(f"Latest revision: {result.latest_arn}")
    return lines


def _changes(result: Result) -> list[str]:
    """What is privileged, what else is host root, and what the new revision was read back to hold."""
    lines: list[str] = []
    if result.privileged:
        lines += ["", "Containers with privileged: true:"]
        if result.outcome == REMEDIATED and result.copy_verified:
            after = "false in the new revision (read back)"
        elif result.outcome == REMEDIATED:
            after = "not verified in the new revision (see below)"
        else:
            after = "unchanged"
        lines += [f"  - {name}: privileged true -> {after}" for name in result.privileged]
    lines += host_lines(result)
    if result.new_task_definition_arn:
        lines += ["", f"New revision:    {result.new_task_definition_arn}"]
        if result.copy_check:
            lines.append(f"Checked:         {result.copy_check}")
        if result.copy_proof:
            lines.append(f"Provenance:      {result.copy_proof}")
        if result.copy_check and not result.marker_added:
            lines.append("The new revision carries no marker tag (the source already has the maximum number of tags).")
    if result.dropped_tags:
        lines.append(f"Not copied (AWS-reserved tag keys): {', '.join(result.dropped_tags)}")
    if result.race_note:
        lines.append(f"Meanwhile:       {result.race_note}")
    if result.forged_copies:
        lines += [
            "",
            "Revisions that claim to be the fixed copy of this revision and are not (nothing was moved onto them):",
        ]
        lines += [
            f"  - {f['arn']}: {f['why']} (registered by {f.get('registeredBy') or 'unknown'})"
            for f in result.forged_copies[:10]
        ]
    return lines


def host_lines(result: Result) -> list[str]:
    """Host access the revision keeps besides privileged, by level (core/hostroot.py); the fixed copy keeps it too."""
    still = "still has" if result.outcome == REMEDIATED else "also has"
    sections = (
        (result.host_equivalents, f"Host-root equivalents the revision {still} (root on the host without privileged):"),
        (result.host_access, f"Host access the revision {still} (not root by itself; review it):"),
    )
    lines: list[str] = []
    for texts, heading in sections:
        if texts:
            lines += ["", heading] + [f"  - {text}" for text in texts[:MAX_HOST_LINES]]
            if len(texts) > MAX_HOST_LINES:
                lines.append(f"  ... and {len(texts) - MAX_HOST_LINES} more")
    if lines:
        lines.append("Removing privileged changes none of these. Why each counts: docs/host-equivalents.md.")
    return lines


def _services(result: Result) -> list[str]:
    """Rollout and retire: services moved or left for a person, the revision's fate, what remains."""
    lines: list[str] = []
    if result.services_updated:
        lines += ["", "Services moved onto the fixed revision (rolling deployment, their own settings kept):"]
        lines += [
            f"  - {s['cluster']}/{s['service']}: deployment {s['deploymentId']}"
            + (f" [{s['note']}]" if "note" in s else "")
            for s in result.services_updated
        ]
    if result.services_manual:
        lines += ["", "Services still on the privileged revision (not moved automatically):"]
        lines += [
            f"  - {s['cluster']}/{s['service']} ({s['controller']}): {s['step']}"
            + (f" [{s['note']}]" if "note" in s else "")
            for s in result.services_manual
        ]
    elif result.services_checked and not result.services_updated:
        lines += ["", "No service uses the privileged revision."]
    if result.retire_note:
        lines.append(f"Privileged revision: {result.retire_note}")
    if result.remaining_privileged is not None:
        count = f"{result.remaining_privileged}{'+' if result.remaining_is_lower_bound else ''}"
        lines.append(
            f"ACTIVE privileged revisions left in {result.family}: {count} (scanners that judge every ACTIVE "
            "revision, such as Prowler, still report them; RETIRE deregisters replaced revisions)"
        )
    return lines


def _camel(data: dict[str, Any]) -> dict[str, Any]:
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)

    return {camel(k): (_camel(v) if isinstance(v, dict) else v) for k, v in data.items()}
