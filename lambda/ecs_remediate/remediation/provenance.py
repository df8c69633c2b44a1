"""Is a revision the stack's own fixed copy of another? Proof, not tags.

Anyone who may register a task definition may also tag it with `<prefix>:source-revision=family:1`. Rollout,
retire, "registered by an earlier attempt" and the next commands in a notice act only on a *verified* copy:

  1. its content is exactly the fixed copy of the revision its marker names (every RegisterTaskDefinition member
     and every tag equal to what `build_fixed_copy` makes of that source), so acting on it can never swap an
     image, a role or a command; and
  2. the stack can prove it registered it: the stack's ledger records it as the copy of that source, or ECS's
     own `registeredBy` is one of the stack's principals.

A revision that claims to be a copy and fails either test is a forged copy: a finding of its own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..adapters.ledger import Ledger
from ..core.described import Described
from ..core.taskdef import Document, RegisterModel, TaskDefinitionError, build_fixed_copy, tag_value

_PRINCIPAL_RE = re.compile(r"^arn:aws[a-z-]*:(?P<service>iam|sts)::(?P<account>\d{12}):(?P<resource>\S+)$")


def principal_identity(arn: str | None) -> tuple[str, str] | None:
    """(account, "role/Name" | "user/Name" | "root") of a principal ARN: `arn:aws:iam::1...:role/path/Name`,
    `arn:aws:sts::1...:assumed-role/Name/session` (its role), `...:user/path/Name`, `...:root`. IAM paths are
    dropped (an assumed-role ARN does not carry them). None for anything else."""
    match = _PRINCIPAL_RE.match(arn or "")
    if not match:
        return None
    account, resource = match["account"], match["resource"]
    if match["service"] == "sts":
        parts = resource.split("/")
        return (account, f"role/{parts[1]}") if len(parts) == 3 and parts[0] == "assumed-role" else None
    if resource == "root":
        return account, "root"
    kind, _, rest = resource.partition("/")
    return (account, f"{kind}/{rest.rsplit('/', 1)[-1]}") if kind in ("role", "user") and rest else None


def is_trusted_principal(arn: str | None, trusted: Iterable[str]) -> bool:
    """`arn` is one of `trusted`, the same ARN or the same role/user (an assumed-role session of a trusted role)."""
    trusted = list(trusted)
    if not arn:
        return False
    if arn in trusted:
        return True
    identity = principal_identity(arn)
    return identity is not None and identity in {principal_identity(t) for t in trusted}


@dataclass(frozen=True)
class Verification:
    verified: bool
    why: str  # how it was proven, or why it is not (known to be) a copy
    forged: bool = False  # the claim is false: not the fixed copy of what its marker names (a finding)


def claimed_source(described: Described, marker_key: str) -> str | None:
    """The marker's claim: the `family:revision` it names, if any (a claim, nothing more)."""
    return tag_value(described.tags, marker_key)


def register_projection(
    task_definition: Mapping[str, Any], tags: Iterable[Mapping[str, str]], model: RegisterModel
) -> dict[str, Any]:
    """What RegisterTaskDefinition would be given to make this revision: its input members and its tags."""
    projection = {k: v for k, v in task_definition.items() if k in model.input_members and k != "tags"}
    projection["tags"] = Counter((str(t.get("key")), str(t.get("value", ""))) for t in tags)
    return projection


def described_document(described: Described, model: RegisterModel) -> Document:
    """A described revision as a document of `model`'s kind (a task definition, or a daemon task definition)."""
    kind = "daemon-describe-response" if model.is_daemon else "describe-response"
    return Document(kind, described.task_definition, described.tags)


def content_matches(candidate: Described, source: Described, model: RegisterModel, marker: tuple[str, str]) -> bool:
    """True when `candidate` holds exactly the fixed copy of `source` (with `marker`), member for member."""
    try:
        # Compared, not sent: ECS accepted the candidate already, so the model check would only cost time.
        fix = build_fixed_copy(described_document(source, model), model, marker, validate=False)
    except TaskDefinitionError:
        return False
    expected = dict(fix.register_input)
    expected_tags = expected.pop("tags", [])
    return register_projection(candidate.task_definition, candidate.tags, model) == register_projection(
        expected, expected_tags, model
    )


def verify_copy(
    candidate: Described,
    source: Described,
    *,
    model: RegisterModel,
    marker: tuple[str, str],
    ledger: Ledger | None,
    trusted_principals: Iterable[str],
) -> Verification:
    """Is `candidate` the stack's fixed copy of `source`? (see the module docstring for the two tests)"""
    if candidate.family != source.family or candidate.revision <= source.revision:
        return Verification(False, "it is not a later revision of the same family", forged=True)
    if tag_value(candidate.tags, marker[0]) != marker[1]:
        return Verification(False, f"its {marker[0]} tag does not name {marker[1]}", forged=True)
    if not content_matches(candidate, source, model, marker):
        return Verification(False, f"its content differs from the fixed copy of {marker[1]}", forged=True)
    if ledger is not None and ledger.copy_of(source.arn) == candidate.arn:
        return Verification(True, "recorded in the stack's ledger when it was registered")
    registered_by = str(candidate.task_definition.get("registeredBy") or "")
    if is_trusted_principal(registered_by, trusted_principals):
        return Verification(True, f"registered by the stack's principal {registered_by}")
    return Verification(
        False,
        f"an exact fixed copy of {marker[1]}, but the stack has no record of registering it"
        + (f" (registered by {registered_by})" if registered_by else " and ECS names no registering principal"),
    )


def proven_without_source(
    candidate: Described, source_arn: str, *, ledger: Ledger | None, trusted_principals: Iterable[str]
) -> Verification | None:
    """The proofs that need no look at the source (it may be INACTIVE, or not described in this sweep): the ledger's
    record of this very ARN (which the stack registered as the fixed copy, so its content is by construction), or
    `registeredBy` one of the stack's principals. None when neither holds."""
    if ledger is not None and ledger.copy_of(source_arn) == candidate.arn:
        return Verification(True, "recorded in the stack's ledger when it was registered")
    if is_trusted_principal(candidate.registered_by, trusted_principals):
        return Verification(True, f"registered by the stack's principal {candidate.registered_by}")
    return None
