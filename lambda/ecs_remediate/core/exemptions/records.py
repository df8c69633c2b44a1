"""Pure: the exemption registry's items, as approvers write them and the function reads them (loaded only when the
registry is read: a compliant revision never pays for it).

Every item is keyed by `target` (the table's partition key). Four kinds, told apart by the key:

- `arn:...:task-definition/FAMILY:REV` (or `daemon-task-definition/...`): one revision. It may record the
  revision's fingerprint (what the approver saw); then that is checked too.
- `scope:ACCOUNT:KIND/FAMILY` (KIND `task-definition` or `daemon-task-definition`): the approvals for one family
  of one account. Each approval names the revision it was made from, the families it covers (the same approval is
  written into the scope item of each) and that revision's fingerprint.
- `image:sha256:<hex>`: an index, never an exemption: the scopes (`ACCOUNT:KIND/FAMILY`) that approve an image
  digest, so that a revision running it elsewhere is told where it is exempt (other family, other account).
- `sha256:<hex>`: an image-digest item of earlier versions. It covered every family of every account whose
  privileged containers ran the digest; it exempts nothing any more and is reported as too broad.

A fingerprint holds what decides what a privileged revision can do: for each privileged container its image
digest, a SHA-256 of its entryPoint and of its command (a command can carry a secret: the registry keeps no text
of either), its user and working directory; and the revision's host access as `hostroot.host_equivalents` names
it (task-level and every container's).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REGISTRY_KEY = "target"  # the registry table's partition key
SCOPE_PREFIX = "scope:"
IMAGE_PREFIX = "image:"
TASK_KIND, DAEMON_KIND = "task-definition", "daemon-task-definition"
_REVISION_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:(?P<account>\d{12}):(?P<kind>task-definition|daemon-task-definition)/"
    r"(?P<family>[A-Za-z0-9_-]{1,255}):[1-9]\d*\Z",
    re.ASCII,
)
_SCOPE_RE = re.compile(
    r"^scope:(?P<account>\d{12}):(?P<kind>task-definition|daemon-task-definition)/(?P<family>[A-Za-z0-9_-]{1,255})\Z",
    re.ASCII,
)
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z", re.ASCII)
_PINNED_RE = re.compile(r"@(sha256:[0-9a-f]{64})\Z")


def image_digest(image: Any) -> str | None:
    """`sha256:<hex>` of an image pinned by digest (`repo@sha256:...`); None for a tag (`repo:latest`)."""
    match = _PINNED_RE.search(image) if isinstance(image, str) else None
    return match[1] if match else None


def short_digest(digest: str) -> str:
    return f"{digest[:19]}..." if digest else "an image not pinned by digest"


@dataclass(frozen=True, order=True)
class Scope:
    """An account's family of one kind: what a scoped exemption covers."""

    account: str
    kind: str  # task-definition | daemon-task-definition
    family: str

    @classmethod
    def of_revision(cls, arn: str) -> Scope | None:
        """From a revision ARN (AWS-reported: the account and family are the revision's own); None otherwise."""
        match = _REVISION_ARN_RE.match(arn)
        return cls(match["account"], match["kind"], match["family"]) if match else None

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        """From `ACCOUNT:KIND/FAMILY` (an index entry) or a `scope:` key."""
        match = _SCOPE_RE.match(text if text.startswith(SCOPE_PREFIX) else SCOPE_PREFIX + text)
        return cls(match["account"], match["kind"], match["family"]) if match else None

    @property
    def name(self) -> str:
        return f"{self.account}:{self.kind}/{self.family}"

    @property
    def key(self) -> str:
        return SCOPE_PREFIX + self.name

    @property
    def family_text(self) -> str:
        return f"daemon task definition family {self.family}" if self.kind == DAEMON_KIND else f"family {self.family}"


def image_key(digest: str) -> str:
    return IMAGE_PREFIX + digest


def run_hash(value: Any) -> str:
    """SHA-256 of an entryPoint or command (a list of strings; missing and empty are the same: the image's own)."""
    items = [str(item) for item in value] if isinstance(value, list) else []
    text = json.dumps(items, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


_PRINT_KEYS = ("name", "image", "entryPoint", "command", "user", "workingDir")


@dataclass(frozen=True)
class ContainerPrint:
    """What one privileged container runs, as approved or as registered."""

    name: str  # shown, not compared: a renamed container runs the same thing
    digest: str  # "" when the image is not pinned by digest
    entry_point: str  # run_hash of entryPoint
    command: str  # run_hash of command
    user: str
    working_dir: str

    def run_differences(self, approved: ContainerPrint) -> list[str]:
        """The members of what it runs that differ from `approved` (names only: never their values)."""
        pairs = zip(self.to_plain().items(), approved.to_plain().items(), strict=True)
        return [name for (name, mine), (_, theirs) in pairs if name not in ("name", "image") and mine != theirs]

    def to_plain(self) -> dict[str, str]:
        values = (self.name, self.digest, self.entry_point, self.command, self.user, self.working_dir)
        return dict(zip(_PRINT_KEYS, values, strict=True))

    @classmethod
    def from_plain(cls, value: Any) -> ContainerPrint | None:
        texts = [value.get(k) for k in _PRINT_KEYS] if isinstance(value, Mapping) else [None]
        if not all(isinstance(t, str) for t in texts):
            return None  # malformed: whatever holds it never matches a revision
        return cls(*(str(t) for t in texts))


@dataclass(frozen=True)
class Fingerprint:
    """A revision's security-relevant content: what each privileged container runs, and every host access of the
    revision (task-level and each container's, as `hostroot.host_equivalents` names it)."""

    containers: tuple[ContainerPrint, ...]
    host_access: tuple[str, ...]  # sorted, unique

    def more_access_than(self, approved: Fingerprint) -> list[str]:
        """Host access this revision has and `approved` did not (less is fine: the approver saw more)."""
        granted = set(approved.host_access)
        return [term for term in self.host_access if term not in granted]

    @property
    def id(self) -> str:
        """From the content only (names aside): approving the same content again renews its approval."""
        plain = [json.dumps({**p.to_plain(), "name": ""}, sort_keys=True) for p in self.containers]
        text = "\n".join(sorted(plain) + list(self.host_access))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_plain(self) -> dict[str, Any]:
        return {"containers": [p.to_plain() for p in self.containers], "hostAccess": list(self.host_access)}

    @classmethod
    def from_plain(cls, value: Any) -> Fingerprint | None:
        """None when anything is malformed or no container is named."""
        if not isinstance(value, Mapping):
            return None
        containers, access = value.get("containers"), value.get("hostAccess")
        if not isinstance(containers, list) or not containers or not isinstance(access, list):
            return None
        prints = [ContainerPrint.from_plain(item) for item in containers]
        if any(p is None for p in prints) or not all(isinstance(term, str) for term in access):
            return None
        return cls(tuple(p for p in prints if p is not None), tuple(sorted(set(access))))


_APPROVAL_KEYS = ("reason", "approver", "until", "created", "source")


def _text(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Approval:
    """One approver's decision: the content of `source`, for `families` of the source's account."""

    reason: str
    approver: str
    until: str
    created: str
    source: str  # the revision ARN the approver described
    families: tuple[str, ...]
    fingerprint: Fingerprint

    @property
    def id(self) -> str:
        return self.fingerprint.id

    def to_plain(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "approver": self.approver,
            "until": self.until,
            "created": self.created,
            "source": self.source,
            "families": list(self.families),
            "fingerprint": self.fingerprint.to_plain(),
        }

    @classmethod
    def from_plain(cls, value: Any) -> Approval | None:
        if not isinstance(value, Mapping) or not isinstance(value.get("families"), list):
            return None
        fingerprint = Fingerprint.from_plain(value.get("fingerprint"))
        if fingerprint is None:
            return None
        reason, approver, until, created, source = (_text(value, n) for n in _APPROVAL_KEYS)
        return cls(reason, approver, until, created, source, tuple(str(f) for f in value["families"]), fingerprint)


@dataclass(frozen=True)
class ScopeItem:
    """The approvals of one scope (account, kind, family)."""

    scope: Scope
    approvals: tuple[Approval, ...] = ()
    malformed: int = 0  # approvals that could not be read (they never match)
    version: int = 0  # bumped by every write: approvers' concurrent writes do not lose each other's

    def to_plain(self) -> dict[str, Any]:
        return {
            REGISTRY_KEY: self.scope.key,
            "account": self.scope.account,
            "kind": self.scope.kind,
            "family": self.scope.family,
            "version": self.version,
            "approvals": {a.id: a.to_plain() for a in self.approvals},
        }

    def to_item(self) -> dict[str, Any]:
        return to_dynamodb(self.to_plain())

    @classmethod
    def from_plain(cls, scope: Scope, item: Mapping[str, Any]) -> ScopeItem:
        raw = item.get("approvals")
        approvals = [Approval.from_plain(v) for v in raw.values()] if isinstance(raw, Mapping) else []
        version = str(item.get("version", "0"))  # a Decimal from the API
        return cls(
            scope,
            tuple(sorted((a for a in approvals if a is not None), key=lambda a: a.id)),
            sum(1 for a in approvals if a is None),
            int(version) if version.isdigit() else 0,
        )


@dataclass(frozen=True)
class ImageIndex:
    """Where an image digest is approved: scope names (`ACCOUNT:KIND/FAMILY`). It exempts nothing."""

    digest: str
    scopes: frozenset[str] = field(default_factory=frozenset)


def parse_item(item: Mapping[str, Any]) -> RegistryItem:
    """A registry item from its plain form (after `from_dynamodb`)."""
    target = _text(item, REGISTRY_KEY)
    scope = Scope.parse(target) if target.startswith(SCOPE_PREFIX) else None
    if scope is not None:
        return ScopeItem.from_plain(scope, item)
    if target.startswith(IMAGE_PREFIX):
        scopes = item.get("scopes")
        names = frozenset(str(s) for s in scopes) if isinstance(scopes, (set, frozenset, list)) else frozenset()
        return ImageIndex(target.removeprefix(IMAGE_PREFIX), names)
    return ExemptionRecord.from_plain(item)


def key_of(item: RegistryItem) -> str:
    if isinstance(item, ScopeItem):
        return item.scope.key
    if isinstance(item, ImageIndex):
        return image_key(item.digest)
    return item.target


def from_dynamodb(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (typed, as the API returns it) in plain Python values."""
    from boto3.dynamodb.types import TypeDeserializer  # noqa: PLC0415 - only privileged revisions read the registry

    deserializer = TypeDeserializer()
    plain: dict[str, Any] = {}
    for name, value in item.items():
        try:
            plain[name] = deserializer.deserialize(value)
        except (TypeError, ValueError, AttributeError, KeyError):
            plain[name] = None  # unreadable: as if absent (whatever needs it then holds nothing)
    return plain


def to_dynamodb(plain: Mapping[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer  # noqa: PLC0415

    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in plain.items()}


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
        return to_dynamodb(self.to_plain())

    @property
    def legacy_digest(self) -> bool:
        """An image-digest item of earlier versions (`sha256:<hex>`): too broad, it exempts nothing."""
        return DIGEST_RE.match(self.target) is not None


RegistryItem = ExemptionRecord | ScopeItem | ImageIndex
