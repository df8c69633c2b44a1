"""Exemptions the registrant cannot grant.

A workload that truly needs privileged mode (a CSI driver, a node agent) can be exempted, but only from places
the policed cannot write:

- the exemption registry: a DynamoDB table the stack owns, writable only by the configured approver principals
  (its resource policy denies everyone else), read-only for the stack's functions. An item exempts one revision
  ARN, or what an approver saw of one revision (its account, its family or a list of families, and its
  fingerprint: each privileged container's image digest and what it runs, and the revision's host access;
  core/exemptions/records.py, core/exemptions/scope.py); it carries a reason, the approver and an expiry no later than
  the configured maximum (default 90 days from today). Image-digest items of earlier versions exempt nothing;
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
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from ..taskdef import tag_value
from .judgement import Exemption, ExemptionRules, judge_record

if TYPE_CHECKING:  # loaded when the registry is read (a compliant revision, the usual case, never is)
    from .records import ExemptionRecord, RegistryItem


class ExemptionSource(Protocol):
    """Where the Remediator and the sweep look up registry items for a revision."""

    def lookup(self, targets: Sequence[str]) -> list[RegistryItem]: ...


class RegistryUnavailable(Exception):
    """The exemption registry could not be read: nobody knows whether the revision is exempt."""


def registry_targets(arn: str, task_definition: Mapping[str, Any]) -> list[str]:
    """The registry keys that bear on this revision: its ARN, its scope (account and family), and for each privileged
    container's digest the index of where it is approved and the legacy digest item (reported, never exempting)."""
    from .records import Scope, image_digest, image_key  # noqa: PLC0415

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
        from .scope import judge_registry  # noqa: PLC0415

        claims += judge_registry(arn, task_definition, records, rules, today)
    tag_claim = _judge_tags(tags, tag_approval, rules, today)
    claims += [tag_claim] if tag_claim is not None else []
    return next((claim for claim in claims if claim.valid), claims[0] if claims else None)


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


class StaticRegistry:
    """Registry items read once (a sweep's snapshot), or given directly."""

    def __init__(self, records: Iterable[RegistryItem] = ()) -> None:
        from .records import key_of  # noqa: PLC0415

        self.records = list(records)
        self._by_target = {key_of(r): r for r in self.records}

    def lookup(self, targets: Sequence[str]) -> list[RegistryItem]:
        return [self._by_target[t] for t in targets if t in self._by_target]

    @property
    def too_broad(self) -> list[str]:
        """Image-digest items of earlier versions: they exempt nothing, and every sweep names them."""
        from .records import ExemptionRecord  # noqa: PLC0415 - a sweep's snapshot has read the registry already

        return sorted(r.target for r in self.records if isinstance(r, ExemptionRecord) and r.legacy_digest)


class UnreadableRegistry:
    """A registry that could not be read: every lookup fails, so privileged revisions are ERROR (fail-closed)."""

    def __init__(self, why: str) -> None:
        self.why = why

    def lookup(self, targets: Sequence[str]) -> list[RegistryItem]:
        raise RegistryUnavailable(self.why)


__all__ = [
    "ExemptionSource",
    "RegistryUnavailable",
    "StaticRegistry",
    "UnreadableRegistry",
    "evaluate_exemption",
    "registry_targets",
]
