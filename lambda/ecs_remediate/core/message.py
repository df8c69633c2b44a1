"""One notice as SNS takes it: subject, email text, JSON payload and message attributes. Pure: `Topic.publish`
(adapters/aws.py) sends it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# SNS: a subject is "ASCII text that begins with a letter, number, or punctuation mark; must not include line
# breaks or control characters; and must be less than 100 characters long".
SUBJECT_LIMIT = 99
_FALLBACK_SUBJECT = "[ECS.4] ecs-remediate notice"


def fit_subject(text: str) -> str:
    """`text` as SNS accepts a subject: printable ASCII (anything else becomes "?": a name cannot forge a line or a
    header), no leading space, not empty, at most SUBJECT_LIMIT characters ("..." where it was cut)."""
    text = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text).lstrip() or _FALLBACK_SUBJECT
    return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 3] + "..."


@dataclass(frozen=True)
class Message:
    """One notice. Its subject is fitted to SNS's rules when the message is made (`fit_subject`), so that no
    builder, and no path to `Topic.publish`, can send a subject SNS would refuse."""

    subject: str
    text: str
    payload: dict[str, Any]
    attributes: dict[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", fit_subject(self.subject))
