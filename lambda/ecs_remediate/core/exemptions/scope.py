"""Pure: does a scoped exemption cover a privileged revision, and if not, which part differs.

An approval covers a revision when the revision is in its scope (the account of the revision's ARN, one of the
approved families, the same kind: task definition or daemon task definition), each privileged container runs an
image digest the approval names with the same entryPoint, command, user and working directory, and the revision
has no host access the approved one did not have. Anything else is not exempt, and the answer names what differs:
other account, other family, other digest, other command (or user, working directory), more host access, or an
image-digest item of earlier versions (too broad).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from ..hostroot import HostEquivalent, host_equivalents
from .judgement import Exemption, ExemptionRules, judge_record
from .records import (
    Approval,
    ContainerPrint,
    ExemptionRecord,
    Fingerprint,
    ImageIndex,
    RegistryItem,
    Scope,
    ScopeItem,
    image_digest,
    image_key,
    key_of,
    run_hash,
    short_digest,
)

OTHER_ACCOUNT, OTHER_FAMILY, OTHER_DIGEST = "other account", "other family", "other digest"
OTHER_COMMAND, MORE_HOST_ACCESS, TOO_BROAD = "other command", "more host access", "too broad"
# Not compared: the wording, and judgements derived from the rest (a level follows from kind, path and read-only).
_NOT_ACCESS = frozenset({"container", "kind", "detail", "reason", "text", "level"})
_SHOWN = 6  # host access terms named in one message


def judge_registry(
    arn: str, task_definition: Mapping[str, Any], records: Sequence[RegistryItem], rules: ExemptionRules, today: date
) -> list[Exemption]:
    """The registry's claims on the revision, in order (its revision item, then its scope's approvals): each one
    that bears on it, judged; the first valid one ends the list."""
    items = {key_of(item): item for item in records}
    revision = _judge_revision_item(arn, task_definition, items, rules, today)
    if revision is not None and revision.valid:
        return [revision]
    scoped = _judge_scope(arn, task_definition, items, rules, today)
    return [claim for claim in (revision, scoped) if claim is not None]


def _judge_revision_item(
    arn: str, task_definition: Mapping[str, Any], items: Mapping[str, RegistryItem], rules: ExemptionRules, today: date
) -> Exemption | None:
    """An item for this revision ARN. The ARN pins account, family and content (ECS never reuses a revision
    number); when the item records what the approver saw, that is checked as well."""
    record = items.get(arn)
    if not isinstance(record, ExemptionRecord):
        return None
    if record.malformed:
        return Exemption(False, "the exemption of this revision records a fingerprint that cannot be read")
    if record.fingerprint is not None:
        found = differences(fingerprint(task_definition), record.fingerprint)
        if found:
            parts = ", ".join(dict.fromkeys(part for part, _ in found))
            why = "; ".join(text for _, text in found) + " (the exemption of this revision)"
            return Exemption(False, why, reason=record.reason, source="registry", mismatch=parts)
    return judge_record(record, rules, today, what="this revision")


def _judge_scope(
    arn: str, task_definition: Mapping[str, Any], items: Mapping[str, RegistryItem], rules: ExemptionRules, today: date
) -> Exemption | None:
    """Scoped approvals of the revision's account and family (or where its images are approved instead)."""
    if not any(key != arn for key in items):
        return None  # only its revision item: no fingerprint to compute
    matched = match_scope(arn, fingerprint(task_definition), items, approve_command=f"ecs-remediate exempt add {arn}")
    if matched is None:
        return None
    if not matched.covering:
        return Exemption(False, matched.why, source="registry", mismatch=", ".join(matched.parts))
    scope = Scope.of_revision(arn)
    where = f"; {scope.family_text} in account {scope.account}, as approved" if scope is not None else ""
    judged = [judge_record(a, rules, today, what="this content", scope=where) for a in matched.covering]
    valid = [j for j in judged if j.valid]
    return max(valid, key=lambda j: j.until or date.min) if valid else judged[0]


def fingerprint(task_definition: Mapping[str, Any]) -> Fingerprint:
    """The revision's privileged containers (what each runs) and every host access it has."""
    prints = []
    for index, container in enumerate(task_definition.get("containerDefinitions") or []):
        if not isinstance(container, Mapping) or container.get("privileged") is not True:
            continue
        working_dir = container.get("workingDir", container.get("workingDirectory"))  # daemons: workingDirectory
        prints.append(
            ContainerPrint(
                name=_text(container.get("name")) or f"#{index}",
                digest=image_digest(container.get("image")) or "",
                entry_point=run_hash(container.get("entryPoint")),
                command=run_hash(container.get("command")),
                user=_text(container.get("user")),
                working_dir=_text(working_dir),
            )
        )
    access = sorted({access_term(item) for item in host_equivalents(task_definition)})
    return Fingerprint(tuple(prints), tuple(access))


def access_term(item: HostEquivalent) -> str:
    """One host access, from every member hostroot gives it but its wording and derived judgements (which may change
    without the access changing): `app: host-path /var/lib/kubelet read-only`, `(task): pid-mode host`."""
    who = "(task)" if item.container is None else item.container  # container names have no parentheses
    parts = [f"{who}:", item.kind, item.detail]
    for member in fields(item):
        if member.name in _NOT_ACCESS:
            continue
        value = getattr(item, member.name)
        if value is True:
            parts.append(member.name.replace("_", "-"))
        elif value not in (None, False, "", (), [], {}):
            parts.append(f"{member.name}={value}")
    return " ".join(str(part) for part in parts)


def covers(approved: Fingerprint, revision: Fingerprint) -> bool:
    if revision.more_access_than(approved) or not revision.containers:
        return False
    return all(
        any(p.digest and p.digest == c.digest and not p.run_differences(c) for c in approved.containers)
        for p in revision.containers
    )


@dataclass(frozen=True)
class ScopeMatch:
    """`covering`: the approvals whose content covers the revision (validity is judged by the caller); otherwise
    `parts` (what differs, e.g. ("other command", "more host access")) and `why`."""

    covering: tuple[Approval, ...] = ()
    parts: tuple[str, ...] = ()
    why: str = ""


def match_scope(
    arn: str, revision: Fingerprint, items: Mapping[str, RegistryItem], *, approve_command: str = ""
) -> ScopeMatch | None:
    """None when no scoped approval, index entry or legacy digest item relates to the revision."""
    scope = Scope.of_revision(arn)
    scope_item = items.get(scope.key) if scope is not None else None
    approvals = scope_item.approvals if isinstance(scope_item, ScopeItem) else ()
    if scope is not None and approvals:
        covering = tuple(a for a in approvals if covers(a.fingerprint, revision))
        return ScopeMatch(covering) if covering else closest_miss(revision, approvals, scope)
    found = _elsewhere(scope, revision, items) + _too_broad(revision, items, approve_command)
    if not found:
        return None
    return ScopeMatch(parts=tuple(dict.fromkeys(part for part, _ in found)), why="; ".join(text for _, text in found))


def closest_miss(revision: Fingerprint, approvals: Sequence[Approval], scope: Scope) -> ScopeMatch:
    """The approval that differs least (digests first, then how many parts), and what differs from it."""
    best = min(approvals, key=lambda a: _rank(differences(revision, a.fingerprint)))
    found = differences(revision, best.fingerprint)
    where = f"{scope.family_text} in account {scope.account}, approved from {_short_ref(best.source)}"
    why = "; ".join(text for _, text in found) + f" (the exemption of {where})"
    return ScopeMatch(parts=tuple(dict.fromkeys(part for part, _ in found)), why=why)


def differences(revision: Fingerprint, approved: Fingerprint) -> list[tuple[str, str]]:
    """(part, text) for each way `revision` is not what `approved` covers; texts name members, never values."""
    found: list[tuple[str, str]] = []
    for container in revision.containers:
        same_image = [c for c in approved.containers if container.digest and c.digest == container.digest]
        if not same_image:
            images = ", ".join(dict.fromkeys(short_digest(c.digest) for c in approved.containers))
            found.append(
                (
                    OTHER_DIGEST,
                    f"{OTHER_DIGEST}: container {container.name!r} runs {short_digest(container.digest)}, "
                    f"the exemption approved {images}",
                )
            )
            continue
        runs = min((container.run_differences(c) for c in same_image), key=len)
        if runs:
            what = "command" if runs == ["command"] else ", ".join(runs)
            found.append(
                (OTHER_COMMAND, f"{OTHER_COMMAND}: container {container.name!r} runs another {what} than approved")
            )
    extra = revision.more_access_than(approved)
    if extra:
        more = f" and {len(extra) - _SHOWN} more" if len(extra) > _SHOWN else ""
        found.append((MORE_HOST_ACCESS, f"{MORE_HOST_ACCESS}: {', '.join(extra[:_SHOWN])}{more} not approved"))
    return found


def _rank(found: list[tuple[str, str]]) -> tuple[int, int]:
    return sum(1 for part, _ in found if part == OTHER_DIGEST), len(found)


def _elsewhere(scope: Scope | None, revision: Fingerprint, items: Mapping[str, RegistryItem]) -> list[tuple[str, str]]:
    """Where the revision's images are approved instead (the index): other families, other accounts."""
    found: list[tuple[str, str]] = []
    for digest in dict.fromkeys(p.digest for p in revision.containers if p.digest):
        index = items.get(image_key(digest))
        if not isinstance(index, ImageIndex):
            continue
        scopes = sorted(s for s in (Scope.parse(name) for name in index.scopes) if s is not None and s != scope)
        own = [s for s in scopes if scope is not None and s.account == scope.account]
        here = scope.family_text if scope is not None else "this revision"
        if own:
            names = ", ".join(s.family_text for s in own[:3]) + (" and more" if len(own) > 3 else "")
            found.append(
                (
                    OTHER_FAMILY,
                    f"{OTHER_FAMILY}: image {short_digest(digest)} is exempt for {names} only, not for {here}",
                )
            )
        elif scopes:  # the other accounts are not named: a member's notice says nothing of another member
            account = f"account {scope.account}" if scope is not None else "this account"
            found.append(
                (
                    OTHER_ACCOUNT,
                    f"{OTHER_ACCOUNT}: image {short_digest(digest)} is exempt in another account only, "
                    f"not in {account}",
                )
            )
    return found


def _too_broad(revision: Fingerprint, items: Mapping[str, RegistryItem], command: str) -> list[tuple[str, str]]:
    found = []
    for digest in dict.fromkeys(p.digest for p in revision.containers if p.digest):
        if isinstance(items.get(digest), ExemptionRecord):
            then = f"; an approver exempts what they reviewed: {command}" if command else ""
            found.append(
                (
                    TOO_BROAD,
                    f"{TOO_BROAD}: the image-digest exemption {short_digest(digest)} (any family, any account, any "
                    f"command and host access) no longer exempts{then}",
                )
            )
    return found


def _short_ref(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn or "an unnamed revision"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
