"""Pure: what `hostroot.host_equivalents` returns (one `HostEquivalent` per thing that reaches the host), its two
levels and kinds, the one-line wording every output uses, and the helpers that keep that text safe."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Levels, most serious first. Every output says which of the two an item is.
HOST_EQUIVALENT = "host-equivalent"  # root on the host (or the host's secrets) without `privileged`
HOST_ACCESS = "host-access"  # reaches the host beyond the task's own sandbox; not root by itself: review it
LEVELS = (HOST_EQUIVALENT, HOST_ACCESS)
LEVEL_WORDS = {HOST_EQUIVALENT: "still host-equivalent", HOST_ACCESS: "host access"}

CAPABILITY, HOST_PATH, DEVICE = "capability", "host-path", "device"
DOCKER_VOLUME, LOG_VOLUME = "docker-volume", "log-volume"
SYSTEM_CONTROL, SECURITY_OPTION = "system-control", "security-option"
PID_MODE, IPC_MODE, NETWORK_MODE = "pid-mode", "ipc-mode", "network-mode"
TRUNCATED = "truncated"  # the last item when more were found than are returned

MAX_NAME = 100
MAX_PATH = 200

_LABELS = {
    CAPABILITY: "capability",
    HOST_PATH: "host path",
    DEVICE: "device",
    DOCKER_VOLUME: "docker volume",
    LOG_VOLUME: "log driver volume",
    SYSTEM_CONTROL: "systemControls",
    SECURITY_OPTION: "dockerSecurityOptions",
    PID_MODE: "pidMode",
    IPC_MODE: "ipcMode",
    NETWORK_MODE: "networkMode",
    TRUNCATED: "not listed:",
}


@dataclass(frozen=True)
class HostEquivalent:
    """One thing that reaches the host. `text` is safe for a notice (names, capabilities, paths, option names)."""

    container: str | None  # None: the whole task (a namespace mode)
    kind: str  # capability | host-path | device | docker-volume | log-volume | system-control | security-option | ...
    detail: str  # SYS_ADMIN, /var/run/docker.sock, /dev/xvda, "v: ext4 /dev/xvda1", seccomp=unconfined, host
    reason: str
    read_only: bool = False  # a host path mounted read-only
    level: str = HOST_EQUIVALENT  # HOST_EQUIVALENT | HOST_ACCESS
    text: str = field(init=False)

    def __post_init__(self) -> None:
        who = "task" if self.container is None else self.container
        suffix = " (read-only)" if self.read_only else ""
        object.__setattr__(self, "text", f"{who}: {_LABELS.get(self.kind, self.kind)} {self.detail}{suffix}")


def texts_by_level(found: Sequence[HostEquivalent]) -> tuple[list[str], list[str]]:
    """(host-equivalent texts, host-access texts): the two lists every result, row and notice carries."""
    return (
        [item.text for item in found if item.level == HOST_EQUIVALENT],
        [item.text for item in found if item.level != HOST_EQUIVALENT],
    )


def describe(equivalents: Sequence[str], access: Sequence[str], *, max_items: int = 6, max_chars: int = 300) -> str:
    """One line for a table cell, a report or a finding: `still host-equivalent: app: capability SYS_ADMIN;
    host access: task: pidMode host`; "" when both are empty. Never says the revision is safe."""
    parts = []
    for word, texts in ((LEVEL_WORDS[HOST_EQUIVALENT], equivalents), (LEVEL_WORDS[HOST_ACCESS], access)):
        unique = list(dict.fromkeys(texts))
        if not unique:
            continue
        part = f"{word}: {', '.join(unique[:max_items])}"
        if len(unique) > max_items:
            part += f" and {len(unique) - max_items} more"
        parts.append(part)
    return safe("; ".join(parts), max_chars)


def explained(found: Sequence[HostEquivalent]) -> list[str]:
    """One line per item with its level and why, as `fix` prints them:
    `still host-equivalent: app: capability SYS_ADMIN; why: mount and cgroup release_agent: ...`."""
    return [f"{LEVEL_WORDS[item.level]}: {item.text}; why: {item.reason}" for item in found]


UNCHANGED = "removing privileged changes none of the above; why each counts: docs/host-equivalents.md"


def normalise_path(raw: str) -> str:
    """An absolute path without trailing slashes, `//`, `.` or `..` (above / stays at /). A relative path is
    taken from / (conservative: Docker would refuse it or make a named volume)."""
    path = posixpath.normpath("/" + raw.lstrip("/"))
    return "/" + path.lstrip("/")  # normpath keeps a leading "//"


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []  # every item: nothing hides past a cap


def dicts(value: Any) -> Iterator[Mapping[str, Any]]:
    return (item for item in items(value) if isinstance(item, Mapping))


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


def safe(text: str, limit: int) -> str:
    """Printable characters only (no line breaks to forge a notice line with), at most `limit` of them."""
    if len(text) <= limit and text.isprintable():
        return text  # the common case, without a character loop
    clean = "".join(ch if ch.isprintable() else "?" for ch in text[: limit + 1])
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"
