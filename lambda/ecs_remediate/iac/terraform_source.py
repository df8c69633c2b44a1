"""Terraform configuration (a module's `.tf` files): privileged containers of `aws_ecs_task_definition` and
`aws_ecs_daemon_task_definition`, where they are, and the byte edits that fix them. CLI only.

`container_definitions` is read when it is `jsonencode([...])` of HCL objects, a JSON string (quoted or heredoc) or
`file(...)` of a JSON file in the module; a daemon's `container_definition` blocks are read as written. Anything
else is unresolved (terraform_eval says what it depends on). Keys are matched without regard to case, as the
provider's JSON decoding does (`Privileged` sets privileged too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import hcl_tree as ht
from . import terraform_eval as te
from . import terraform_json as tj

TASK_DEFINITION = "aws_ecs_task_definition"
DAEMON_TASK_DEFINITION = "aws_ecs_daemon_task_definition"
PRIVILEGED, UNRESOLVED = "privileged", "unresolved"
MAX_JSON_BYTES = ht.MAX_BYTES


class TerraformError(ValueError):
    """A file this tool cannot read; one line naming the file."""


@dataclass(frozen=True)
class Finding:
    path: str  # the file the line is in: a .tf file, or the JSON file read with file()
    line: int
    address: str  # aws_ecs_task_definition.this
    container: str  # its name, "#<index>", or "" for the whole resource
    status: str  # PRIVILEGED | UNRESOLVED
    value: str  # as written, shortened
    detail: str = ""
    key: str = "privileged"
    fixed_to: str = "false"  # what `fix` writes in place of `value` (PRIVILEGED)


@dataclass(frozen=True)
class Edit:
    path: str
    start: int  # byte offsets
    end: int
    text: str


@dataclass
class Definition:
    """A task definition as it will be once fixed, as far as it can be evaluated (for the host-access report)."""

    address: str
    path: str
    line: int
    value: dict[str, Any]


@dataclass
class Module:
    files: dict[str, bytes] = field(default_factory=dict)  # every file read, JSON files included, as read
    findings: list[Finding] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    definitions: list[Definition] = field(default_factory=list)

    @property
    def privileged(self) -> list[Finding]:
        return [f for f in self.findings if f.status == PRIVILEGED]

    @property
    def unresolved(self) -> list[Finding]:
        return [f for f in self.findings if f.status == UNRESOLVED]


def read_module(paths: list[Path], texts: dict[str, bytes]) -> tuple[Module, dict[str, ht.Source]]:
    """Parse every `.tf` file of `paths` (their bytes in `texts`) and collect the module's scope."""
    sources: dict[str, ht.Source] = {}
    for path in paths:
        try:
            sources[str(path)] = ht.parse(texts[str(path)])
        except ht.HclError as error:
            raise TerraformError(f"{path}: {error}") from None
    return Module(files=dict(texts)), sources  # JSON files given in `texts` are read from there by file()


def scope_of(sources: dict[str, ht.Source]) -> te.Scope:
    variables: dict[str, tuple[ht.Node | None, ht.Source]] = {}
    local_values: dict[str, tuple[ht.Node, ht.Source, str]] = {}
    for path, source in sources.items():
        for block in ht.blocks(ht.body_of(source.root)):
            kind = ht.block_type(block, source)
            labels = ht.block_labels(block, source)
            if kind == "variable" and labels and labels[0]:
                default = next((e for n, _, e in ht.attributes(ht.body_of(block), source) if n == "default"), None)
                variables[labels[0]] = (default, source)
            elif kind == "locals":
                for name, _, expression in ht.attributes(ht.body_of(block), source):
                    local_values[name] = (expression, source, Path(path).name)
    return te.Scope(variables, local_values)


def check_file(module: Module, path: str, source: ht.Source, scope: te.Scope) -> None:
    for block in ht.blocks(ht.body_of(source.root)):
        labels = ht.block_labels(block, source)
        if (
            ht.block_type(block, source) != "resource"
            or len(labels) != 2
            or labels[0]
            not in (
                TASK_DEFINITION,
                DAEMON_TASK_DEFINITION,
            )
        ):
            continue
        reader = _Resource(module, path, source, scope, f"{labels[0]}.{te.short(labels[1] or '?', 120)}", block)
        if labels[0] == TASK_DEFINITION:
            reader.task_definition()
        else:
            reader.daemon_task_definition()


@dataclass
class _Resource:
    module: Module
    path: str
    source: ht.Source
    scope: te.Scope
    address: str
    block: ht.Node

    def finding(self, node: ht.Node, container: str, value: str, detail: str, key: str = "privileged") -> None:
        """An unresolved value at `node`."""
        found = Finding(self.path, ht.line(node), self.address, container, UNRESOLVED, value, detail, key)
        self.module.findings.append(found)

    def edit(self, node: ht.Node, container: str, written: str) -> None:
        """`privileged = true` (or "true") becomes false, in the bytes of that token only."""
        self.module.edits.append(Edit(self.path, node.start_byte, node.end_byte, "false"))
        fixed = written.replace("true", "false")
        found = Finding(self.path, ht.line(node), self.address, container, PRIVILEGED, written, fixed_to=fixed)
        self.module.findings.append(found)

    def task_definition(self) -> None:
        body = ht.body_of(self.block)
        containers: list[Any] = []
        for name, _, expression in ht.attributes(body, self.source):
            if name != "container_definitions":
                continue
            node = ht.inner(expression)
            function = self.source.text(node.children[0]) if node.type == "function_call" and node.children else ""
            arguments = _arguments(node)
            if function == "jsonencode" and len(arguments) == 1:
                containers += self.encoded(arguments[0])
            elif function == "file" and len(arguments) == 1:
                containers += self.json_file(expression, arguments[0])
            elif (chars := ht.string_chars(node, self.source)) is not None:
                containers += self.json_text(expression, chars, self.path, self.source.data)
            else:
                value = te.evaluate(expression, self.source, self.scope)
                shown, detail = (value.shown, value.detail) if isinstance(value, te.Unknown) else ("?", "not a list")
                self.finding(expression, "", shown, detail, "container_definitions")
        self.define({"containerDefinitions": containers, **self.task_level(body)})

    def encoded(self, argument: ht.Node) -> list[Any]:
        value = te.evaluate(argument, self.source, self.scope)
        if not isinstance(value, list):
            shown, detail = (value.shown, value.detail) if isinstance(value, te.Unknown) else ("?", "not a list")
            self.finding(argument, "", shown, detail, "container_definitions")
            return []
        out = []
        for index, item in enumerate(value):
            if not isinstance(item, te.HclObject):
                shown, detail = (item.shown, item.detail) if isinstance(item, te.Unknown) else ("?", "not an object")
                self.finding(_element(argument, index), f"#{index}", shown, detail, "container")
                continue
            name = item.values.get("name")
            label = te.short(name, 120) if isinstance(name, str) else f"#{index}"
            for unknown in item.unknown_keys:
                self.finding(unknown.node, label, unknown.shown, unknown.detail, "key")
            for key, flag in item.values.items():
                if key.lower() == "privileged":
                    self.judge(item.nodes[key], flag, label)
            out.append(te.plain(item) | _not_privileged(item.values))
        return out

    def judge(self, expression: ht.Node, value: Any, container: str) -> None:
        node = ht.inner(expression)
        if value is True and node.type == "bool_lit":
            self.edit(node, container, "true")
        elif isinstance(value, te.Unknown):
            self.finding(expression, container, value.shown, value.detail)
        elif value is not False and value is not None:
            self.finding(expression, container, te.short(self.source.text(node)), "not a Boolean")

    def json_file(self, expression: ht.Node, argument: ht.Node) -> list[Any]:
        relative = _module_path(argument, self.source)
        if relative is None:
            value = te.short(self.source.text(expression))
            detail = "file() of a path this tool cannot evaluate (only literal paths and path.module)"
            self.finding(expression, "", value, detail, "container_definitions")
            return []
        target = Path(self.path).parent / relative
        try:
            data = self.module.files.get(str(target)) or target.read_bytes()[: MAX_JSON_BYTES + 1]
            if len(data) > MAX_JSON_BYTES:
                raise OSError("too large")
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            detail = f"{target} cannot be read ({getattr(error, 'strerror', None) or error})"
            self.finding(expression, "", te.short(self.source.text(expression)), detail, "file")
            return []
        self.module.files[str(target)] = data
        return self.json_text(expression, tj.chars_of_text(text), str(target), data)

    def json_text(self, expression: ht.Node, chars: tj.Chars, path: str, data: bytes) -> list[Any]:
        found = tj.containers(chars, data)
        if found.problem:
            line = data[: found.problem_at].count(b"\n") + 1 if found.problem_at >= 0 else ht.line(expression)
            where = path if found.problem_at >= 0 else self.path
            shown = te.short(self.source.text(expression), 40)
            self.module.findings.append(
                Finding(where, line, self.address, "", UNRESOLVED, shown, found.problem, "container_definitions")
            )
            return []
        record_json(self.module, path, data, self.address, found)
        return [c.value | _not_privileged(c.value) if isinstance(c.value, dict) else c.value for c in found.containers]

    def daemon_task_definition(self) -> None:
        body = ht.body_of(self.block)
        containers = []
        for index, block in enumerate(ht.blocks(body)):
            kind = ht.block_type(block, self.source)
            labels = ht.block_labels(block, self.source)
            if kind == "dynamic" and labels and labels[0] == "container_definition":
                detail = "a dynamic block: its containers come from for_each at plan time"
                self.finding(block, "", 'dynamic "container_definition"', detail, "container_definition")
            elif kind == "container_definition":
                containers.append(self.daemon_container(block, index))
        self.define({"containerDefinitions": containers, **self.task_level(body)})

    def daemon_container(self, block: ht.Node, index: int) -> dict[str, Any]:
        values = _block_values(block, self.source, self.scope)
        name = values.get("name")
        label = te.short(name, 120) if isinstance(name, str) else f"#{index}"
        for key, _, expression in ht.attributes(ht.body_of(block), self.source):
            if key.lower() != "privileged":
                continue
            node = ht.inner(expression)
            value = te.evaluate(expression, self.source, self.scope)
            literal = node.children[1] if node.type == "string_lit" and len(node.children) == 3 else None
            if value == "true" and literal is not None and self.source.text(literal) == "true":
                self.edit(literal, label, '"true"')  # Terraform converts the string "true" to the Boolean
            elif value != "false":
                self.judge(expression, value, label)
        return values | {"privileged": False}

    def task_level(self, body: ht.Node | None) -> dict[str, Any]:
        values = _block_values(self.block, self.source, self.scope) if body is not None else {}
        volumes = [
            {"name": v.get("name"), "host": {"sourcePath": v.get("hostPath")}} for v in values.get("volumes", [])
        ]
        return {key: values.get(key) for key in ("pidMode", "ipcMode", "networkMode")} | {"volumes": volumes}

    def define(self, value: dict[str, Any]) -> None:
        self.module.definitions.append(Definition(self.address, self.path, ht.line(self.block), value))


def record_json(module: Module, path: str, data: bytes, address: str, found: tj.JsonList) -> None:
    """The findings and edits of the containers of a JSON text (in `path`, whose bytes are `data`)."""
    for container in found.containers:
        for status, shown, at, start, end in container.privileged:
            line = data[:at].count(b"\n") + 1
            if status == PRIVILEGED:
                module.edits.append(Edit(path, start, end, "false"))
                module.findings.append(Finding(path, line, address, container.name, PRIVILEGED, shown))
            else:
                module.findings.append(Finding(path, line, address, container.name, UNRESOLVED, "(JSON)", shown))


def _arguments(call: ht.Node) -> list[ht.Node]:
    for child in call.children:
        if child.type == "function_arguments":
            return [c for c in child.children if c.type == "expression"]
    return []


def _element(argument: ht.Node, index: int) -> ht.Node:
    node = ht.inner(argument)
    items = [c for c in node.children if c.type == "expression"] if node.type == "tuple" else []
    return items[index] if index < len(items) else argument


def _not_privileged(values: Any) -> dict[str, Any]:
    """The fixed copy's view: every spelling of privileged false (the others are reported, not changed)."""
    keys = values.keys() if isinstance(values, dict) else ()
    return {key: False for key in keys if isinstance(key, str) and key.lower() == "privileged"}


def _module_path(argument: ht.Node, source: ht.Source) -> str | None:
    """`"x.json"`, `"${path.module}/x.json"`: the path relative to the module; None for anything else."""
    node = ht.inner(argument)
    if node.type not in ("string_lit", "quoted_template"):
        return None
    parts = []
    for child in node.children:
        if child.type == "template_literal":
            parts.append(source.text(child))
        elif child.type == "template_interpolation":
            inner = [c for c in child.children if c.type == "expression"]
            if len(inner) != 1 or " ".join(source.text(inner[0]).split()) != "path.module":
                return None
            parts.append(".")
        elif child.type not in ("quoted_template_start", "quoted_template_end"):
            return None
    return "".join(parts) or None


_PLURAL = {"mount_point", "system_control", "ulimit", "secret", "environment_file", "depends_on", "devices", "volume"}


def _block_values(block: ht.Node, source: ht.Source, scope: te.Scope) -> dict[str, Any]:
    """A block's attributes and nested blocks as ECS JSON (snake_case to camelCase, repeated blocks as lists)."""
    values: dict[str, Any] = {}
    body = ht.body_of(block)
    for name, _, expression in ht.attributes(body, source):
        values[_camel(name)] = te.plain(te.evaluate(expression, source, scope))
    for nested in ht.blocks(body):
        kind = ht.block_type(nested, source)
        if kind == "dynamic":
            continue
        key = _camel(kind) + ("s" if kind in _PLURAL and not kind.endswith("s") else "")
        value = _block_values(nested, source, scope)
        if kind in _PLURAL:
            values.setdefault(key, []).append(value)
        else:
            values[key] = value
    return values


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
