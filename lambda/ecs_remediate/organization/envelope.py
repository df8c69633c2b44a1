"""Pure: the EventBridge envelope of a member's event, the one part a member cannot forge: `account` is the account
that put the event on the hub's bus (EventBridge sets it), `region` its Region."""

from __future__ import annotations

import re
from typing import Any

ACCOUNT_RE = re.compile(r"^\d{12}\Z", re.ASCII)
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}\Z", re.ASCII)


def envelope_of(event: Any) -> tuple[str, str]:
    """The envelope's account and Region as text (cut to their longest lengths; "" when absent or not text)."""
    envelope = event if isinstance(event, dict) else {}
    sender = str(envelope.get("account") or "")[:12] if isinstance(envelope.get("account"), str) else ""
    region = str(envelope.get("region") or "")[:32] if isinstance(envelope.get("region"), str) else ""
    return sender, region


def valid_envelope(event: Any) -> bool:
    """The envelope names a sending account (12 digits) and a Region, as EventBridge writes them."""
    envelope = event if isinstance(event, dict) else {}
    sender, region = envelope.get("account"), envelope.get("region")
    return (
        isinstance(sender, str)
        and bool(ACCOUNT_RE.match(sender))
        and isinstance(region, str)
        and bool(_REGION_RE.match(region))
    )
