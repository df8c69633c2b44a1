"""Exemptions the registrant cannot grant.

A workload that truly needs privileged mode (a CSI driver, a node agent) can be exempted, but only from places
the policed cannot write:

- the exemption registry: a DynamoDB table the stack owns, writable only by the configured approver principals
  (its resource policy denies everyone else), read-only for the stack's functions. An item exempts one revision
  ARN, or what an approver saw of one revision (its account, its family or a list of families, and its
  fingerprint: each privileged container's image digest and what it runs, and the revision's host access;
  exemption_items.py, exemption_scope.py); it carries a reason, the approver and an expiry no later than the
  configured maximum (default 90 days from today). Image-digest items of earlier versions exempt nothing;
- family globs in the stack's configuration, which also exempt families created later: honoured only with an
  explicit acknowledgement, and listed in every sweep summary;
- `<prefix>:exempt-reason` / `<prefix>:exempt-until` tags only when tag exemptions are turned on, and then only
  when an approver principal applied them (the function records approvals from the TagResource events of
  approvers); tags set by the registrant, at registration or after, never exempt.

The pure part decides from what it is given; `ExemptionRegistry` reads the table.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from .aws import ClientError, error_code, is_transient
from .taskdef import tag_value

if TYPE_CHECKING:  # loaded when the registry is read (a compliant revision, the usual case, never is)
    from .exemption_items import Fingerprint, RegistryItem

EXPIRY_WARNING_DAYS = 7
REGISTRY_KEY = "target"  # the registry table's partition key


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
    mismatch: str = ""  # a claim that does not cover the revision: what differs ("other family, more host access")

    def expires_within(self, today: date, days: int = EXPIRY_WARNING_DAYS) -> bool:
        return self.valid and self.until is not None and self.until <= today + timedelta(days=days)


@dataclass(frozen=True)
class ExemptionRecord:
    """One revision item or legacy digest item (or one recorded tag approval), as an approver wrote it."""

    target: str  # revision ARN, or a legacy image digest
    reason: str
    approver: str
    until: str  # YYYY-MM-DD, as stored (checked when judged)
    created: str = ""
    fingerprint: Fingerprint | None = None  # what the approver saw (the revision items `exempt add` writes)
    malformed: bool = False  # it records a fingerprint that cannot be read: it never holds

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ExemptionRecord:
        """From a DynamoDB item as the API returns it (typed values)."""
        if "fingerprint" in item:
            from .exemption_items import from_dynamodb  # noqa: PLC0415 - only revision items `exempt add` wrote

            return cls.from_plain(from_dynamodb(item))

        def text(name: str) -> str:
            value = item.get(name, {})
            return str(value.get("S", "")) if isinstance(value, Mapping) else ""

        return cls(text(REGISTRY_KEY), text("reason"), text("approver"), text("until"), text("created"))

    @classmethod
    def from_plain(cls, item: Mapping[str, Any]) -> ExemptionRecord:
        def text(name: str) -> str:
            value = item.get(name)
            return value if isinstance(value, str) else ""

        recorded = item.get("fingerprint")
        if recorded is None:
            return cls(text(REGISTRY_KEY), text("reason"), text("approver"), text("until"), text("created"))
        from .exemption_items import Fingerprint  # noqa: PLC0415

        fingerprint = Fingerprint.from_plain(recorded)
        texts = (text(REGISTRY_KEY), text("reason"), text("approver"), text("until"), text("created"))
        return cls(*texts, fingerprint=fingerprint, malformed=fingerprint is None)

    def to_plain(self) -> dict[str, Any]:
        plain: dict[str, Any] = {
            REGISTRY_KEY: self.target,
            "reason": self.reason,
            "approver": self.approver,
            "until": self.until,
        }
        if self.created:
            plain["created"] = self.created
        if self.fingerprint is not None:
            plain["fingerprint"] = self.fingerprint.to_plain()
        return plain

    def to_item(self) -> dict[str, Any]:
        if self.fingerprint is None:
            return {name: {"S": value} for name, value in self.to_plain().items()}
        from .exemption_items import to_dynamodb  # noqa: PLC0415

        return to_dynamodb(self.to_plain())

    @property
    def legacy_digest(self) -> bool:
        """An image-digest item of earlier versions (`sha256:<hex>`): too broad, it exempts nothing."""
        from .exemption_items import DIGEST_RE  # noqa: PLC0415

        return DIGEST_RE.match(self.target) is not None


class ExemptionSource(Protocol):
    """Where the Remediator and the sweep look up registry items for a revision."""

    def lookup(self, targets: Sequence[str]) -> list[RegistryItem]: ...


class RegistryUnavailable(Exception):
    """The exemption registry could not be read: nobody knows whether the revision is exempt."""


def registry_targets(arn: str, task_definition: Mapping[str, Any]) -> list[str]:
    """The registry keys that bear on this revision: its ARN, its scope (account and family), and for each privileged
    container's digest the index of where it is approved and the legacy digest item (reported, never exempting)."""
    from .exemption_items import Scope, image_digest, image_key  # noqa: PLC0415

    targets = [arn]
    scope = Scope.of_revision(arn)
    if scope is not None:
        targets.append(scope.key)
    for container in task_definition.get("containerDefinitions") or []:
        if isinstance(container, Mapping) and container.get("privileged") is True:
            digest = image_digest(container.get("image"))
            if digest:
                targets += [image_key(digest), digest]
    return list(dict.fromkeys(targets))


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
    records: Sequence[RegistryItem],
    tag_approval: ExemptionRecord | None,
    rules: ExemptionRules,
    today: date,
) -> Exemption | None:
    """None when nothing claims an exemption; otherwise whether the claim holds (the first that holds wins;
    if none holds, the revision item's reason, then the scoped approvals', then the tags')."""
    for glob in rules.family_globs:
        if fnmatch.fnmatchcase(family, glob):
            return Exemption(
                True, f"family matches the configured exemption {glob!r}", by_family_glob=glob, source="configuration"
            )
    claims: list[Exemption] = []
    if records:  # something in the registry bears on it
        from .exemption_scope import judge_registry  # noqa: PLC0415

        claims += judge_registry(arn, task_definition, records, rules, today)
    tag_claim = _judge_tags(tags, tag_approval, rules, today)
    claims += [tag_claim] if tag_claim is not None else []
    return next((claim for claim in claims if claim.valid), claims[0] if claims else None)


class _Claim(Protocol):
    @property
    def reason(self) -> str: ...
    @property
    def approver(self) -> str: ...
    @property
    def until(self) -> str: ...


def judge_record(
    record: _Claim, rules: ExemptionRules, today: date, *, what: str, source: str = "registry", scope: str = ""
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
        f"exempt until {until.isoformat()}: {record.reason} (approved by {record.approver}{scope})",
        reason=record.reason,
        until=until,
        approver=record.approver,
        source=source,
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
    return judge_record(approval, rules, today, what="the tags", source="tags")


class ExemptionRegistry:
    """The registry table: dynamodb:BatchGetItem (the function, per privileged revision) or dynamodb:Scan (the
    sweep, once per run: `snapshot`). The stack only reads it; approvers write it (`get`, `put`, `delete`,
    `update`: the CLI's `exempt`, cli_exempt_registry.py)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._client = dynamodb_client
        self.table_name = table_name

    def lookup(self, targets: Sequence[str]) -> list[RegistryItem]:
        from .exemption_items import from_dynamodb, parse_item  # noqa: PLC0415

        keys = [{REGISTRY_KEY: {"S": t}} for t in dict.fromkeys(targets)][:100]
        if not keys:
            return []
        found: list[RegistryItem] = []
        request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
        for _ in range(8):  # unprocessed keys come back under load; botocore already retried throttling
            response = self._call("batch_get_item", RequestItems=request)
            found += [parse_item(from_dynamodb(i)) for i in response.get("Responses", {}).get(self.table_name, [])]
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
        raise RegistryUnavailable(f"{self.table_name}: keys left unprocessed after 8 attempts")

    def snapshot(self) -> StaticRegistry:
        from .exemption_items import from_dynamodb, parse_item  # noqa: PLC0415

        records: list[RegistryItem] = []
        kwargs: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        while True:
            response = self._call("scan", **kwargs)
            records += [parse_item(from_dynamodb(item)) for item in response.get("Items", [])]
            if not response.get("LastEvaluatedKey"):
                return StaticRegistry(records)
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get(self, target: str) -> RegistryItem | None:
        from .exemption_items import from_dynamodb, parse_item  # noqa: PLC0415

        key = {REGISTRY_KEY: {"S": target}}
        item = self._call("get_item", TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        return parse_item(from_dynamodb(item)) if item else None

    def put(self, item: Mapping[str, Any], **condition: Any) -> None:
        """`item` typed; `condition`: ConditionExpression and its names and values (ConditionalCheckFailedException
        raises as the ClientError it is, for the caller to read again)."""
        self._call("put_item", TableName=self.table_name, Item=dict(item), **condition)

    def update(self, target: str, **expression: Any) -> None:
        self._call("update_item", TableName=self.table_name, Key={REGISTRY_KEY: {"S": target}}, **expression)

    def delete(self, target: str, **condition: Any) -> None:
        self._call("delete_item", TableName=self.table_name, Key={REGISTRY_KEY: {"S": target}}, **condition)

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, operation)(**kwargs)
        except ClientError as error:
            if is_transient(error) or error_code(error) == "ConditionalCheckFailedException":
                raise
            raise RegistryUnavailable(f"{self.table_name}: {operation} failed: {error_code(error)}") from error


class StaticRegistry:
    """Registry items read once (a sweep's snapshot), or given directly."""

    def __init__(self, records: Iterable[RegistryItem] = ()) -> None:
        from .exemption_items import key_of  # noqa: PLC0415

        self.records = list(records)
        self._by_target = {key_of(r): r for r in self.records}

    def lookup(self, targets: Sequence[str]) -> list[RegistryItem]:
        return [self._by_target[t] for t in targets if t in self._by_target]

    @property
    def too_broad(self) -> list[str]:
        """Image-digest items of earlier versions: they exempt nothing, and every sweep names them."""
        return sorted(r.target for r in self.records if isinstance(r, ExemptionRecord) and r.legacy_digest)


class UnreadableRegistry:
    """A registry that could not be read: every lookup fails, so privileged revisions are ERROR (fail-closed)."""

    def __init__(self, why: str) -> None:
        self.why = why

    def lookup(self, targets: Sequence[str]) -> list[RegistryItem]:
        raise RegistryUnavailable(self.why)


__all__ = [
    "EXPIRY_WARNING_DAYS",
    "REGISTRY_KEY",
    "Exemption",
    "ExemptionRecord",
    "ExemptionRegistry",
    "ExemptionRules",
    "ExemptionSource",
    "RegistryUnavailable",
    "StaticRegistry",
    "UnreadableRegistry",
    "evaluate_exemption",
    "judge_record",
    "registry_targets",
]
