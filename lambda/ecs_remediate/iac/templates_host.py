"""CloudFormation templates: the host access each task definition keeps (core/hostroot.py), for `fix`'s stderr.

CLI only. Each AWS::ECS::TaskDefinition and AWS::ECS::DaemonTaskDefinition is read as the API shape hostroot
judges (CloudFormation's PascalCase keys with the first letter lowered: `LinuxParameters` is `linuxParameters`).
A value given by an intrinsic function or a parameter is not resolved: where one stands in a member that can
reach the host, a line says so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..core.hostroot import host_lines
from . import yaml_tree as yt
from .templates import TASK_DEFINITION_TYPES

# Members (at any depth of Properties) through which a task definition reaches the host.
HOST_MEMBERS = frozenset(
    {
        "Volumes",
        "PidMode",
        "IpcMode",
        "NetworkMode",
        "MountPoints",
        "VolumesFrom",
        "LinuxParameters",
        "DockerSecurityOptions",
        "SystemControls",
    }
)
# Members whose own value (or list item) given by a function hides containers, but whose other members do not count.
SHALLOW_MEMBERS = frozenset({"ContainerDefinitions"})
NONE, SHALLOW, DEEP = 0, 1, 2  # how much an intrinsic under a member hides
MAX_DEPTH = 60
_BOOLEANS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


class _Unresolved:
    """An intrinsic function or a parameter: a value this reader does not compute (hostroot ignores it)."""


def lines(path: str, text: str) -> list[str]:
    """`FILE:LINE: LogicalId: <hostroot line>` for every task definition that reaches the host."""
    root = yt.parse(text).root
    out: list[str] = []
    for logical_id, resource in _task_definitions(root):
        for _, given in yt.values(resource, "Properties"):
            unresolved: list[bool] = []
            properties = _plain(given, SHALLOW, unresolved, 0)
            where = f"{path}:{yt.line_of(given)}: {logical_id}"
            out += [f"{where}: {line}" for line in host_lines(properties)]
            if unresolved:
                out.append(
                    f"{where}: a member that can reach the host is given by a function or a parameter: "
                    "not resolved here, so what it reaches is not named"
                )
    return out


def _task_definitions(root: yt.Node) -> Iterator[tuple[str, yt.Node]]:
    for _, section in yt.values(root, "Resources"):
        resources = yt.resolve(section)
        if not isinstance(resources, yt.Mapping):
            continue
        for key, resource in resources.pairs:
            if yt.scalar_text(yt.value(resource, "Type")) in TASK_DEFINITION_TYPES:
                yield " ".join((yt.scalar_text(key) or "?").split())[:100], resource


def _plain(node: yt.Node | None, relevant: int, unresolved: list[bool], depth: int) -> Any:
    """The node as JSON-like data, keys camelCased; intrinsics become _Unresolved, noted in `unresolved` when
    `relevant` (DEEP: anywhere below a HOST_MEMBERS member; SHALLOW: the node itself or a list item of it)."""
    node = yt.resolve(node)
    if node is None or depth > MAX_DEPTH:
        return None
    if node.tag and node.tag.startswith("!"):  # short-form intrinsic: !Ref, !If, !Sub, ...
        if relevant:
            unresolved.append(True)
        return _Unresolved()
    if isinstance(node, yt.Mapping):
        keys = [yt.scalar_text(k) for k, _ in node.pairs]
        if len(keys) == 1 and keys[0] is not None and (keys[0] == "Ref" or keys[0].startswith("Fn::")):
            if relevant:
                unresolved.append(True)
            return _Unresolved()
        plain: dict[str, Any] = {}
        for key, (_, value) in zip(keys, node.pairs, strict=True):
            if key is None or key == yt.MERGE_KEY:
                continue
            inner = _plain(value, _relevance(relevant, key), unresolved, depth + 1)
            if key == "ReadOnly" and isinstance(inner, str):
                inner = _BOOLEANS.get(inner.strip().lower(), inner)
            plain[key[:1].lower() + key[1:]] = inner
        return plain
    if isinstance(node, yt.Sequence):
        return [_plain(item, relevant, unresolved, depth + 1) for item in node.items]
    return yt.scalar_text(node)


def _relevance(parent: int, key: str) -> int:
    if parent == DEEP or key in HOST_MEMBERS:
        return DEEP
    return SHALLOW if key in SHALLOW_MEMBERS else NONE
