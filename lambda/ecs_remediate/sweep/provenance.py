"""Which sweep rows that carry the marker tag are the stack's verified copies, and which claim it falsely.

Rollout and retire act on verified copies only (remediation/provenance.py); a compliant revision whose marker names a
source it is not the fixed copy of is marked forged: an open finding that names who registered it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..adapters.aws import BotoCoreError, ClientError, Ecs, RevisionNotFound
from ..adapters.ledger import Ledger
from ..core.config import Config
from ..core.policy import PASS
from ..remediation.provenance import Verification, proven_without_source, verify_copy
from ..remediation.rollout import marker_revision, short_ref
from .report import ACTION_FORGED, Finding


def verify_marked_rows(
    findings: Sequence[Finding], ecs: Ecs, config: Config, ledger: Ledger
) -> dict[tuple[str, str], str]:
    """(family, marker value) -> the newest verified copy carrying it. A compliant revision whose marker claims a
    source it is not the fixed copy of is marked forged (an open finding naming who registered it)."""
    by_revision = {(f.family, f.revision): f for f in findings}
    copies: dict[tuple[str, str], str] = {}
    for finding in sorted(findings, key=lambda f: f.revision):
        if finding.marker is None or finding.status != PASS or finding.described is None:
            continue
        source_row = by_revision.get((finding.family, marker_revision(finding.marker) or 0))
        verification = _verify(finding, source_row, ecs, config, ledger)
        if verification.verified:
            copies[(finding.family, finding.marker)] = finding.task_definition_arn
        elif verification.forged:
            who = finding.registered_by or "a principal ECS does not name"
            finding.forged = f"{verification.why}; registered by {who}"[:1000]
            finding.action = (
                f"{ACTION_FORGED}: claims to be the fixed copy of {finding.marker}; nothing is moved onto it"
            )
    return copies


def _verify(finding: Finding, source_row: Finding | None, ecs: Ecs, config: Config, ledger: Ledger) -> Verification:
    assert finding.described is not None and finding.marker is not None
    candidate, named = finding.described, marker_revision(finding.marker)
    if named is None or named >= candidate.revision:
        return Verification(False, f"its marker {finding.marker!r} names no earlier revision", forged=True)
    source_arn = f"{candidate.arn.rsplit(':', 1)[0]}:{named}"
    trusted = config.trusted_principals
    if source_row is not None and source_row.described is not None:
        marker = (config.marker_tag_key, finding.marker)
        return verify_copy(
            candidate,
            source_row.described,
            model=ecs.model,
            marker=marker,
            ledger=ledger,
            trusted_principals=trusted,
        )
    proven = proven_without_source(candidate, source_arn, ledger=ledger, trusted_principals=trusted)
    if proven is not None:
        return proven
    try:  # the source is not in this sweep (INACTIVE, or latest scope): read it to tell forged from unproven
        source = ecs.describe(source_arn)
    except (RevisionNotFound, ClientError, BotoCoreError) as error:
        return Verification(False, f"its source {short_ref(source_arn)} cannot be read ({type(error).__name__})")
    marker = (config.marker_tag_key, finding.marker)
    return verify_copy(candidate, source, model=ecs.model, marker=marker, ledger=ledger, trusted_principals=trusted)
