"""Terraform's JSON syntax (`*.tf.json`): the same resources as in `.tf` files, read from JSON. CLI only.

In this syntax every string is a template: `"${...}"` is an expression, never evaluated here (unresolved), and a
Boolean argument may be the string "true", which Terraform converts (a daemon's `"privileged": "true"` is
privileged). `container_definitions` is a JSON string holding JSON; its `true` is found through both levels of
escaping and changed in place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from . import terraform_json as tj
from . import terraform_source as ts
from . import yaml_tree as yt


def check(module: ts.Module, path: str, data: bytes) -> None:
    try:
        text = data.decode("utf-8")
        json.loads(text)
        document = yt.parse(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        message = (
            error.msg
            if isinstance(error, json.JSONDecodeError)
            else str(error)
            if isinstance(error, yt.DocumentError)
            else "not UTF-8 JSON"
        )
        raise ts.TerraformError(f"{path}: not JSON ({message})") from None
    offsets = [offset for _, offset in tj.chars_of_text(text)] + [len(data)]
    for resource_type, name, body in _resources(document.root):
        address = f"{resource_type}.{tj_short(name)}"
        reader = _Reader(module, path, data, offsets, address)
        for key, value in _pairs(body):
            if resource_type == ts.TASK_DEFINITION and key == "container_definitions":
                reader.container_definitions(value)
            elif resource_type == ts.DAEMON_TASK_DEFINITION and key == "container_definition":
                for index, block in enumerate(_objects(value)):
                    reader.daemon_container(block, index)
            elif resource_type == ts.DAEMON_TASK_DEFINITION and key == "dynamic":
                reader.finding(value, "", "dynamic", "a dynamic block: not evaluated", "dynamic")
        module.definitions.append(ts.Definition(address, path, reader.line(body), {}))


def tj_short(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)[:120]


def _resources(root: yt.Node) -> Iterator[tuple[str, str, yt.Node]]:
    for section in _objects_of(root, "resource"):
        for resource_type, by_name in _pairs(section):
            if resource_type not in (ts.TASK_DEFINITION, ts.DAEMON_TASK_DEFINITION):
                continue
            for named in _objects(by_name):
                for name, body in _pairs(named):
                    for item in _objects(body):
                        yield resource_type, name, item


def _objects_of(node: yt.Node, key: str) -> Iterator[yt.Node]:
    for k, value in _pairs(node):
        if k == key:
            yield from _objects(value)


def _objects(value: yt.Node | None) -> Iterator[yt.Node]:
    """An object, or each object of an array (Terraform's JSON syntax allows both for blocks)."""
    if isinstance(value, yt.Sequence):
        yield from (item for item in value.items if isinstance(item, yt.Mapping))
    elif isinstance(value, yt.Mapping):
        yield value


def _pairs(node: yt.Node | None) -> Iterator[tuple[str, yt.Node]]:
    if isinstance(node, yt.Mapping):
        for key, value in node.pairs:
            name = yt.scalar_text(key)
            if name is not None:
                yield name, value


class _Reader:
    def __init__(self, module: ts.Module, path: str, data: bytes, offsets: list[int], address: str) -> None:
        self.module, self.path, self.data, self.offsets, self.address = module, path, data, offsets, address

    def line(self, node: yt.Node) -> int:
        return yt.line_of(node)

    def finding(self, node: yt.Node, container: str, value: str, detail: str, key: str) -> None:
        """An unresolved value at `node`."""
        found = ts.Finding(self.path, yt.line_of(node), self.address, container, ts.UNRESOLVED, value, detail, key)
        self.module.findings.append(found)

    def container_definitions(self, value: yt.Node) -> None:
        if not isinstance(value, yt.Scalar) or value.style != '"':
            self.finding(value, "", "(not a string)", "not a JSON string", "container_definitions")
            return
        start, end = self.offsets[value.start], self.offsets[value.end]
        chars = tj.json_string_chars(self.data, start, end)
        if chars is None or "${" in value.value or "%{" in value.value:
            shown = tj_short(value.value[:60])
            detail = "a Terraform expression in JSON syntax: not evaluated"
            self.finding(value, "", shown, detail, "container_definitions")
            return
        found = tj.containers(chars, self.data)
        if found.problem:
            self.finding(value, "", "(JSON)", found.problem, "container_definitions")
            return
        ts.record_json(self.module, self.path, self.data, self.address, found)

    def daemon_container(self, block: yt.Node, index: int) -> None:
        name = yt.scalar_text(yt.value(block, "name"))
        label = tj_short(name) if name and "${" not in name else f"#{index}"
        for key, value in _pairs(block):
            if key.lower() != "privileged":
                continue
            start, end = self.offsets[value.start], self.offsets[value.end]
            written = self.data[start:end].decode("utf-8", "replace")
            if isinstance(value, yt.Scalar) and written in ("true", '"true"'):
                inner = 1 if written.startswith('"') else 0
                self.module.edits.append(ts.Edit(self.path, start + inner, end - inner, "false"))
                fixed = written.replace("true", "false")
                line = yt.line_of(value)
                finding = ts.Finding(self.path, line, self.address, label, ts.PRIVILEGED, written, fixed_to=fixed)
                self.module.findings.append(finding)
            elif not (isinstance(value, yt.Scalar) and written in ("false", '"false"', "null")):
                detail = "a Terraform expression: not evaluated" if "${" in written else "not a Boolean"
                self.finding(value, label, tj_short(written[:60]), detail, "privileged")
