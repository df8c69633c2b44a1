"""The revision a registration event without `responseElements` registered: matched on family, time, registrant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..adapters.aws import Ecs, RevisionNotFound
from ..core.described import Described
from ..core.events import Registration
from .provenance import principal_identity

# The family's newest revisions compared, and how far from the event's time their registration may be (both are
# AWS's own clocks; CloudTrail records within seconds).
IDENTIFY_CANDIDATES = 10
IDENTIFY_WINDOW = timedelta(minutes=5)


def registered_revision(ecs: Ecs, registration: Registration) -> Described | None:
    """Of the family's newest ACTIVE revisions, the one registered closest to the event's time (within
    IDENTIFY_WINDOW) by its registrant, where ECS names one; None when none matches."""
    when = parse_time(registration.event_time)
    if not registration.family or when is None:
        return None
    matches: list[tuple[float, Described]] = []
    for revision in reversed(ecs.family_revisions(registration.family)[-IDENTIFY_CANDIDATES:]):
        try:
            candidate = ecs.describe(f"{registration.family}:{revision}")
        except RevisionNotFound:
            continue
        registered_at = candidate.task_definition.get("registeredAt")
        if not isinstance(registered_at, datetime):
            continue
        distance = abs((registered_at - when).total_seconds())
        registrant = principal_identity(candidate.registered_by)
        if distance <= IDENTIFY_WINDOW.total_seconds() and (
            registrant is None or registrant == principal_identity(registration.user_arn)
        ):
            matches.append((distance, candidate))
    return min(matches, key=lambda m: m[0])[1] if matches else None


def parse_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
