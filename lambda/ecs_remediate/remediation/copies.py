"""Finding and reading back the stack's fixed copy of a revision (the Remediator's helpers; no writes here)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..adapters.aws import Ecs, RevisionNotFound
from ..adapters.ledger import Ledger
from ..core.described import Described
from ..core.taskdef import privileged_containers, tag_value
from .provenance import content_matches, verify_copy
from .rollout import short_ref

# Newer revisions of a family described when looking for a copy that is not the latest (a pipeline registered
# more since): the newest this many.
MAX_NEWER_DESCRIBED = 25


@dataclass
class CopySearch:
    """The verified copy (or None), how it was proven, and what falsely or unprovably claimed to be it."""

    copy: Described | None = None
    proof: str = ""
    forged: list[dict[str, str]] = field(default_factory=list)  # arn, registeredBy, why
    note: str = ""


def find_verified_copy(
    ecs: Ecs,
    ledger: Ledger,
    trusted_principals: Iterable[str],
    *,
    source: Described,
    latest: Described,
    marker: tuple[str, str],
) -> CopySearch:
    """The verified copy of `source` anywhere in its family: the ledger's record first, then the latest, then the
    newest revisions in between that carry its marker (a pipeline may have registered more since)."""
    search = CopySearch()
    recorded = ledger.copy_of(source.arn)
    candidates: list[Described] = [latest]
    if recorded and recorded != latest.arn:
        with contextlib.suppress(RevisionNotFound):  # deleted since: the marker search below still runs
            candidates.insert(0, ecs.describe(recorded))
    prefix = source.arn.rsplit(":", 1)[0]
    # Nothing lies between a latest right above the source, and no revision seen privileged is anybody's copy: no
    # listing needed when every number in between (up to the newest MAX_NEWER_DESCRIBED) was seen privileged.
    window = range(max(source.revision + 1, latest.revision - MAX_NEWER_DESCRIBED), latest.revision)
    between = any(not ecs.known_privileged(f"{prefix}:{n}") for n in window)
    newer = [r for r in ecs.family_revisions(source.family) if source.revision < r < latest.revision] if between else []
    for revision in reversed(newer[-MAX_NEWER_DESCRIBED:]):
        # a revision seen privileged is nobody's fixed copy (content never changes): not described again
        if recorded != f"{prefix}:{revision}" and not ecs.known_privileged(f"{prefix}:{revision}"):
            with contextlib.suppress(RevisionNotFound):
                candidates.append(ecs.describe(f"{prefix}:{revision}"))
    trusted = list(trusted_principals)
    for candidate in candidates:
        if candidate.status != "ACTIVE" or tag_value(candidate.tags, marker[0]) != marker[1]:
            continue
        verification = verify_copy(
            candidate, source, model=ecs.model, marker=marker, ledger=ledger, trusted_principals=trusted
        )
        if verification.verified:
            search.copy, search.proof = candidate, verification.why
            return search
        if verification.forged:
            who = candidate.registered_by or "unknown"
            search.forged.append({"arn": candidate.arn, "registeredBy": who, "why": verification.why})
        else:  # the right content, but no proof the stack registered it: not acted on
            search.note = f"{short_ref(candidate.arn)}: {verification.why}; not acted on"
    return search


def holds_exact_copy(ecs: Ecs, source: Described, marker: tuple[str, str]) -> Described | None:
    """After an ambiguous RegisterTaskDefinition failure: the family's latest, if it holds exactly the copy."""
    latest = ecs.describe(source.family)
    if latest.revision > source.revision and content_matches(latest, source, ecs.model, marker):
        return latest
    return None


@dataclass(frozen=True)
class ReadBack:
    verified: bool  # no privileged container, every other member and tag as the source's
    marker_added: bool
    text: str


def read_back(ecs: Ecs, copy: Described, source: Described, marker: tuple[str, str]) -> ReadBack:
    """What the copy holds, as ECS describes it: a notice states only this."""
    left = privileged_containers(copy.task_definition)
    identical = content_matches(copy, source, ecs.model, marker)
    marker_added = tag_value(copy.tags, marker[0]) == marker[1]
    where = f"read back from {short_ref(copy.arn)}"
    if not left and identical:
        text = f"{where}: no container is privileged; every other member and tag is as in {short_ref(source.arn)}"
    elif left:
        text = f"{where}: still privileged: {', '.join(left)}"
    else:
        text = f"{where}: it differs from the fixed copy of the source"
    return ReadBack(not left and identical, marker_added, text)
