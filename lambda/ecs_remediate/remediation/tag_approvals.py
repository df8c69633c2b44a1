"""Exemption tags, only when turned on (TAG_EXEMPTIONS), and then only those an approver applied.

A tag on a revision does not say who set it. CloudTrail does: the function receives the `TagResource` calls that set
`<prefix>:exempt-*` keys (a rule of their own), and when the caller is one of the approver roles
(EXEMPTION_APPROVERS) and sets both keys in that one call, it records the two values, for that revision, in the
stack's ledger. At judging time (exemptions._judge_tags) the revision's current exemption tags count only when they
equal the recorded approval: a registrant who sets the tags (at registration or after), or changes an approved
value, gains nothing. Tags given at registration never count, whoever registered: an approver tags afterwards.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..core.events import DETAIL_TYPE, EVENT_SOURCE, SOURCE, TAG_EVENT_NAME, Skip
from ..core.exemptions.records import ExemptionRecord
from ..core.taskdef import TASK_DEFINITION_ARN_RE, tag_value


@dataclass(frozen=True)
class TagsApplied:
    """Exemption tags a principal set on a revision, as CloudTrail recorded the TagResource call."""

    task_definition_arn: str
    reason: str | None
    until: str | None
    principal: str  # the calling role's ARN (the session's issuer), or the caller's ARN


def caller_role_arn(identity: Any) -> str:
    """The IAM ARN an approver pattern is matched against: the role behind an assumed-role session (its
    `sessionIssuer`, which keeps the role's path), else the caller's own ARN."""
    if not isinstance(identity, Mapping):
        return ""
    context = identity.get("sessionContext")
    issuer = context.get("sessionIssuer") if isinstance(context, Mapping) else None
    if isinstance(issuer, Mapping) and issuer.get("type") == "Role" and isinstance(issuer.get("arn"), str):
        return str(issuer["arn"])[:2048]
    arn = identity.get("arn")
    return arn[:2048] if isinstance(arn, str) else ""


def is_approver(principal: str, patterns: Iterable[str]) -> bool:
    """`principal` matches one of the approver role ARN patterns (`*` and `?`, as in the registry's ArnLike)."""
    return bool(principal) and any(fnmatch.fnmatchcase(principal, pattern) for pattern in patterns)


def parse_tag_event(
    event: Any, *, tag_prefix: str, expected_account: str | None, expected_region: str | None
) -> TagsApplied | Skip:
    """A successful ECS TagResource call that set exemption tags on a revision of this account and Region."""
    if not isinstance(event, Mapping) or event.get("detail-type") != DETAIL_TYPE or event.get("source") != SOURCE:
        return Skip("not an ECS API call event")
    detail = event.get("detail")
    if not isinstance(detail, Mapping) or detail.get("eventSource") != EVENT_SOURCE:
        return Skip("not an ECS API call event")
    if detail.get("eventName") != TAG_EVENT_NAME or detail.get("errorCode"):
        return Skip("not a successful TagResource call")
    request = detail.get("requestParameters")
    arn = request.get("resourceArn") if isinstance(request, Mapping) else None
    match = TASK_DEFINITION_ARN_RE.match(arn) if isinstance(arn, str) else None
    if match is None:
        return Skip("the tagged resource is not a task definition revision")
    sender = event.get("account")
    for account in (expected_account, sender if isinstance(sender, str) else None):
        if account and match["account"] != account:
            return Skip(f"foreign account: the revision is in {match['account']}, not {account}")
    if expected_region and match["region"] != expected_region:
        return Skip(f"revision is in {match['region']}, this function handles {expected_region}")
    tags = request.get("tags") if isinstance(request, Mapping) else None
    tag_list = [t for t in tags if isinstance(t, Mapping)] if isinstance(tags, list) else []
    reason = tag_value(tag_list, f"{tag_prefix}:exempt-reason")
    until = tag_value(tag_list, f"{tag_prefix}:exempt-until")
    if reason is None and until is None:
        return Skip("no exemption tag was set")
    return TagsApplied(str(arn), reason, until, caller_role_arn(detail.get("userIdentity")))


def approval(applied: TagsApplied, approvers: Iterable[str]) -> ExemptionRecord | Skip:
    """The record of an approver's exemption tags, or why there is none (not an approver; not both keys)."""
    if not is_approver(applied.principal, approvers):
        return Skip(
            f"exemption tags set by {applied.principal or 'an unknown principal'}, not an approver: not recorded"
        )
    if applied.reason is None or applied.until is None:
        return Skip("an approver sets both exemption tags in one call: not recorded")
    return ExemptionRecord(
        applied.task_definition_arn,
        applied.reason,
        applied.principal,
        applied.until,
        datetime.now(UTC).isoformat(timespec="seconds"),
    )
