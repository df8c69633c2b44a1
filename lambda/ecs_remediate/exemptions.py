"""Exemptions the registrant cannot grant.

A workload that truly needs privileged mode (a CSI driver, a node agent) can be exempted, but only from places
the policed cannot write:

- the exemption registry: a DynamoDB table the stack owns, writable only by the configured approver principals
  (its resource policy denies everyone else), read-only for the stack's functions. An item is bound to one
  revision ARN or to one image digest (`sha256:<hex>`: every privileged container of the revision must run an
  image pinned to an exempt digest), and carries a reason, the approver and an expiry no later than the
  configured maximum (default 90 days from today);
- family globs in the stack's configuration, which also exempt families created later: honoured only with an
  explicit acknowledgement, and listed in every sweep summary;
- `<prefix>:exempt-reason` / `<prefix>:exempt-until` tags only when tag exemptions are turned on, and then only
  when an approver principal applied them (the function records approvals from the TagResource events of
  approvers); tags set by the registrant, at registration or after, never exempt.

The pure part decides from what it is given; `ExemptionRegistry` reads the table.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from .aws import ClientError, error_code, is_transient
from .taskdef import tag_value

EXPIRY_WARNING_DAYS = 7
REGISTRY_KEY = "target"  # the registry table's partition key: a revision ARN or an image digest
_DIGEST_RE = re.compile(r"@(sha256:[0-9a-f]{64})\Z")


@dataclass(frozen=True)
class Exemption:
    """An exemption claim and whether it holds; `why` explains either way."""

    valid: bool
    why: str
    reason: str = ""
    until: date | None = None
    by_family_glob: str | None = None
    approver: str = ""
    source: str = ""  # registry | configuration | tags

    def expires_within(self, today: date, days: int = EXPIRY_WARNING_DAYS) -> bool:
        return self.valid and self.until is not None and self.until <= today + timedelta(days=days)


@dataclass(frozen=True)
class ExemptionRecord:
    """One registry item (or one recorded tag approval), as an approver wrote it."""

    target: str  # revision ARN or image digest
    reason: str
    approver: str
    until: str  # YYYY-MM-DD, as stored (checked when judged)
    created: str = ""

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ExemptionRecord:
        def text(name: str) -> str:
            value = item.get(name, {})
            return str(value.get("S", "")) if isinstance(value, Mapping) else ""

        return cls(text(REGISTRY_KEY), text("reason"), text("approver"), text("until"), text("created"))

    def to_item(self) -> dict[str, dict[str, str]]:
        item = {REGISTRY_KEY: self.target, "reason": self.reason, "approver": self.approver, "until": self.until}
        if self.created:
            item["created"] = self.created
        return {k: {"S": v} for k, v in item.items()}


class ExemptionSource(Protocol):
    """Where the Remediator and the sweep look up registry items for a revision."""

    def lookup(self, targets: Sequence[str]) -> list[ExemptionRecord]: ...


class RegistryUnavailable(Exception):
    """The exemption registry could not be read: nobody knows whether the revision is exempt."""


def image_digest(image: Any) -> str | None:
    """`sha256:<hex>` of an image pinned by digest (`repo@sha256:...`); None for a tag (`repo:latest`)."""
    match = _DIGEST_RE.search(image) if isinstance(image, str) else None
    return match[1] if match else None


def registry_targets(arn: str, task_definition: Mapping[str, Any]) -> list[str]:
    """The registry keys that could exempt this revision: its ARN and its privileged containers' digests."""
    targets = [arn]
    for container in task_definition.get("containerDefinitions") or []:
        if isinstance(container, Mapping) and container.get("privileged") is True:
            digest = image_digest(container.get("image"))
            if digest and digest not in targets:
                targets.append(digest)
    return targets


@dataclass(frozen=True)
class ExemptionRules:
    """The configuration's part: family globs (with their acknowledgement), tag mode, the maximum expiry."""

    tag_prefix: str
    family_globs: tuple[str, ...] = ()
    max_days: int = 90
    tag_exemptions: bool = False

    @property
    def reason_tag(self) -> str:
        return f"{self.tag_prefix}:exempt-reason"

    @property
    def until_tag(self) -> str:
        return f"{self.tag_prefix}:exempt-until"


def evaluate_exemption(
    *,
    family: str,
    arn: str,
    task_definition: Mapping[str, Any],
    tags: Iterable[Mapping[str, str]] | None,
    records: Sequence[ExemptionRecord],
    tag_approval: ExemptionRecord | None,
    rules: ExemptionRules,
    today: date,
) -> Exemption | None:
    """None when nothing claims an exemption; otherwise whether the claim holds (the first that holds wins;
    if none holds, the registry's reason, then the tags')."""
    for glob in rules.family_globs:
        if fnmatch.fnmatchcase(family, glob):
            return Exemption(
                True, f"family matches the configured exemption {glob!r}", by_family_glob=glob, source="configuration"
            )
    by_target = {record.target: record for record in records}
    invalid: list[Exemption] = []
    if arn in by_target:
        judged = _judge_record(by_target[arn], rules, today, what="this revision")
        if judged.valid:
            return judged
        invalid.append(judged)
    digest_claim = _judge_digests(task_definition, by_target, rules, today)
    if digest_claim is not None:
        if digest_claim.valid:
            return digest_claim
        invalid.append(digest_claim)
    tag_claim = _judge_tags(tags, tag_approval, rules, today)
    if tag_claim is not None:
        if tag_claim.valid:
            return tag_claim
        invalid.append(tag_claim)
    return invalid[0] if invalid else None


def _judge_record(
    record: ExemptionRecord, rules: ExemptionRules, today: date, *, what: str, source: str = "registry"
) -> Exemption:
    if not record.reason.strip():
        return Exemption(False, f"the exemption of {what} has no reason", source=source)
    if not record.approver.strip():
        return Exemption(False, f"the exemption of {what} names no approver", reason=record.reason, source=source)
    try:
        until = date.fromisoformat(record.until.strip())
    except ValueError:
        return Exemption(
            False, f"the exemption of {what} has no valid expiry date", reason=record.reason, source=source
        )
    if until < today:
        return Exemption(
            False, f"exemption expired on {until.isoformat()}", reason=record.reason, until=until, source=source
        )
    if until > today + timedelta(days=rules.max_days):
        return Exemption(
            False,
            f"the exemption's expiry {until.isoformat()} is beyond the {rules.max_days}-day maximum",
            reason=record.reason,
            until=until,
            source=source,
        )
    return Exemption(
        True,
        f"exempt until {until.isoformat()}: {record.reason} (approved by {record.approver})",
        reason=record.reason,
        until=until,
        approver=record.approver,
        source=source,
    )


def _judge_digests(
    task_definition: Mapping[str, Any], by_target: Mapping[str, ExemptionRecord], rules: ExemptionRules, today: date
) -> Exemption | None:
    """Digest exemptions hold only when every privileged container runs an exempt digest."""
    containers = [
        c for c in task_definition.get("containerDefinitions") or [] if isinstance(c, Mapping) and c.get("privileged")
    ]
    digests = [image_digest(c.get("image")) for c in containers]
    if not any(d in by_target for d in digests if d):
        return None
    judged: list[Exemption] = []
    for container, digest in zip(containers, digests, strict=True):
        name = str(container.get("name", "?"))[:255]
        if digest is None or digest not in by_target:
            return Exemption(False, f"container {name!r} does not run an exempt image digest", source="registry")
        judged.append(_judge_record(by_target[digest], rules, today, what=f"image {digest[:19]}..."))
    failing = [j for j in judged if not j.valid]
    if failing:
        return failing[0]
    soonest = min(judged, key=lambda j: j.until or date.max)
    return Exemption(
        True,
        f"exempt until {soonest.until.isoformat() if soonest.until else '?'}: {soonest.reason} "
        f"(image digest, approved by {soonest.approver})",
        reason=soonest.reason,
        until=soonest.until,
        approver=soonest.approver,
        source="registry",
    )


def _judge_tags(
    tags: Iterable[Mapping[str, str]] | None, approval: ExemptionRecord | None, rules: ExemptionRules, today: date
) -> Exemption | None:
    tag_list = list(tags or [])
    reason, until = tag_value(tag_list, rules.reason_tag), tag_value(tag_list, rules.until_tag)
    if reason is None and until is None:
        return None
    if not rules.tag_exemptions:
        return Exemption(
            False,
            f"exemption tags ({rules.reason_tag}, {rules.until_tag}) are not honoured: whoever can register or tag "
            "the revision can set them; an approver adds the exemption to the registry",
            reason=reason or "",
            source="tags",
        )
    if approval is None or (approval.reason, approval.until) != (reason or "", until or ""):
        return Exemption(
            False,
            "the exemption tags were not applied by an approver principal (no matching approval was recorded)",
            reason=reason or "",
            source="tags",
        )
    return _judge_record(approval, rules, today, what="the tags", source="tags")


class ExemptionRegistry:
    """The registry table: dynamodb:BatchGetItem (the function, per privileged revision) or dynamodb:Scan (the
    sweep, once per run: `snapshot`). Read-only; approvers write it (`put`, `delete`: the CLI's `exempt`)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._client = dynamodb_client
        self.table_name = table_name

    def lookup(self, targets: Sequence[str]) -> list[ExemptionRecord]:
        keys = [{REGISTRY_KEY: {"S": t}} for t in dict.fromkeys(targets)][:100]
        if not keys:
            return []
        found: list[ExemptionRecord] = []
        request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
        for _ in range(8):  # unprocessed keys come back under load; botocore already retried throttling
            response = self._call("batch_get_item", RequestItems=request)
            found += [ExemptionRecord.from_item(i) for i in response.get("Responses", {}).get(self.table_name, [])]
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
        raise RegistryUnavailable(f"{self.table_name}: keys left unprocessed after 8 attempts")

    def snapshot(self) -> StaticRegistry:
        records: list[ExemptionRecord] = []
        kwargs: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        while True:
            response = self._call("scan", **kwargs)
            records += [ExemptionRecord.from_item(item) for item in response.get("Items", [])]
            if not response.get("LastEvaluatedKey"):
                return StaticRegistry(records)
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def put(self, record: ExemptionRecord) -> None:
        self._call("put_item", TableName=self.table_name, Item=record.to_item())

    def delete(self, target: str) -> None:
        self._call("delete_item", TableName=self.table_name, Key={REGISTRY_KEY: {"S": target}})

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, operation)(**kwargs)
        except ClientError as error:
            if is_transient(error):
                raise
            raise RegistryUnavailable(f"{self.table_name}: {operation} failed: {error_code(error)}") from error


class StaticRegistry:
    """Registry items read once (a sweep's snapshot), or given directly."""

    def __init__(self, records: Iterable[ExemptionRecord] = ()) -> None:
        self.records = list(records)
        self._by_target = {r.target: r for r in self.records}

    def lookup(self, targets: Sequence[str]) -> list[ExemptionRecord]:
        return [self._by_target[t] for t in targets if t in self._by_target]


class UnreadableRegistry:
    """A registry that could not be read: every lookup fails, so privileged revisions are ERROR (fail-closed)."""

    def __init__(self, why: str) -> None:
        self.why = why

    def lookup(self, targets: Sequence[str]) -> list[ExemptionRecord]:
        raise RegistryUnavailable(self.why)
