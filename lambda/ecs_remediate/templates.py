"""CloudFormation templates (JSON or YAML, cdk.out included): find privileged containers, fix them in place.

CLI only. Every container of every AWS::ECS::TaskDefinition and AWS::ECS::DaemonTaskDefinition is checked;
`Privileged: true` (any spelling CloudFormation reads as true) becomes `false` by changing exactly the bytes
of that value in the original text, so comments, key order, quoting, anchors and short-form intrinsics are
left as they were. A value given by an intrinsic function or a parameter is reported, never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

from . import yaml_tree as yt

TASK_DEFINITION_TYPES = ("AWS::ECS::TaskDefinition", "AWS::ECS::DaemonTaskDefinition")
PRIVILEGED = "privileged"
UNRESOLVED = "unresolved"
COMPLIANT = "compliant"

# CloudFormation reads YAML 1.1 and turns a "true"/"false" string into a Boolean property.
_TRUE = frozenset({"true", "yes", "on"})
_FALSE = frozenset({"false", "no", "off"})
_AMBIGUOUS = frozenset({"y", "n"})  # YAML 1.1 booleans that most parsers (and maybe CloudFormation) read as text
_NULL = frozenset({"", "~", "null"})
_REPLACEMENT = {"true": "false", "True": "False", "TRUE": "FALSE"}
_STR_TAG = "tag:yaml.org,2002:str"
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:bool", _STR_TAG})
_DISPLAY_LIMIT = 80


class TemplateError(ValueError):
    """Not a template this tool can read; one line, no template content beyond names."""


@dataclass(frozen=True)
class Finding:
    resource: str  # logical id
    resource_type: str
    container: str  # its Name, or "#<index>" without one
    line: int  # 1-based line of the Privileged key (of the container list when that is what is unresolved)
    status: str  # PRIVILEGED (changed by `fix`) | UNRESOLVED (reported, left alone)
    value: str  # the value as written, shortened: "true", "!Ref EnablePrivileged", "Fn::If"
    detail: str = ""  # why it is unresolved, e.g. "parameter EnablePrivileged defaults to 'true'"
    fixed_to: str = ""  # what `fix` writes instead of `value` (same quoting and case), for PRIVILEGED


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]
    edits: tuple[Edit, ...]
    task_definitions: int

    @property
    def privileged(self) -> list[Finding]:
        return [f for f in self.findings if f.status == PRIVILEGED]

    @property
    def unresolved(self) -> list[Finding]:
        return [f for f in self.findings if f.status == UNRESOLVED]

    def apply(self, text: str) -> str:
        out, position = [], 0
        for edit in sorted(set(self.edits), key=lambda e: e.start):
            if edit.start < position:
                raise TemplateError("two changes overlap; nothing written")
            out.append(text[position : edit.start])
            out.append(edit.text)
            position = edit.end
        out.append(text[position:])
        return "".join(out)


def analyse(text: str) -> Report:
    """Every privileged and unresolved container of the template in `text`."""
    document = yt.parse(text)
    root = document.root
    if not _tree_is_template(root):
        raise TemplateError("not a CloudFormation template (no AWSTemplateFormatVersion, no typed Resources)")
    findings: list[Finding] = []
    sites: list[tuple[Finding, yt.Node]] = []
    count = 0
    for logical_id, resource_type, resource in _task_definitions(root):
        count += 1
        for finding, site in _containers(root, logical_id, resource_type, resource):
            findings.append(finding)
            if site is not None:
                sites.append((finding, site))
    edits, findings = _edits(text, document, sites, findings)
    return Report(tuple(findings), tuple(edits), count)


def fix(text: str) -> tuple[str, Report]:
    """The fixed text and what was found; checked by reading the result again (TemplateError if it fails)."""
    report = analyse(text)
    fixed = report.apply(text)
    if fixed != text:
        _verify(text, fixed, report)
    return fixed, report


def _tree_is_template(root: yt.Node) -> bool:
    if not isinstance(root, yt.Mapping):
        return False
    if yt.values(root, "AWSTemplateFormatVersion"):
        return True
    resources = yt.value(root, "Resources")
    return isinstance(resources, yt.Mapping) and any(
        yt.scalar_text(yt.value(r, "Type")) is not None for _, r in resources.pairs
    )


def _task_definitions(root: yt.Node) -> Iterator[tuple[str, str, yt.Node]]:
    for _, section in yt.values(root, "Resources"):  # duplicates included: CloudFormation's choice is undefined
        resources = yt.resolve(section)
        if not isinstance(resources, yt.Mapping):
            continue
        for key, resource in resources.pairs:
            resource_type = yt.scalar_text(yt.value(resource, "Type"))
            if resource_type in TASK_DEFINITION_TYPES:
                yield _display_name(key), resource_type, resource


@dataclass(frozen=True)
class _Container:
    resource: str
    resource_type: str
    name: str

    def finding(self, line: int, status: str, value: str, detail: str = "") -> Finding:
        return Finding(self.resource, self.resource_type, self.name, line, status, value, detail)


def _containers(
    root: yt.Node, logical_id: str, resource_type: str, resource: yt.Node
) -> Iterator[tuple[Finding, yt.Node | None]]:
    unreadable = _Container(logical_id, resource_type, "*")
    for _, given in yt.values(resource, "Properties"):
        properties = yt.resolve(given)
        if properties is None or _intrinsic(properties):
            if properties is not None:
                detail = "Properties is given by a function"
                yield unreadable.finding(yt.line_of(properties), UNRESOLVED, _display(properties), detail), None
            continue
        for _, definitions in yt.values(properties, "ContainerDefinitions"):
            index = 0
            for container in _branches(definitions):
                if container is None:
                    detail = "ContainerDefinitions is given by a function"
                    yield unreadable.finding(yt.line_of(definitions), UNRESOLVED, _display(definitions), detail), None
                    continue
                where = _Container(logical_id, resource_type, _container_name(container, index))
                index += 1
                for key, value in yt.values(container, "Privileged"):
                    yield _judge(root, where, key, value)


def _branches(given: yt.Node | None) -> Iterator[yt.Node | None]:
    """The container mappings of a ContainerDefinitions value, through `Fn::If` branches (a sidecar that a
    condition adds is still deployed privileged when the condition holds). None marks what cannot be read."""
    node = yt.resolve(given)
    if isinstance(node, yt.Sequence) and not _intrinsic(node):
        for entry in node.items:
            item = yt.resolve(entry)
            if isinstance(item, yt.Mapping) and not _intrinsic(item):
                yield item
            elif _function(item) == "Fn::If":
                yield from _if_branches(item, list_level=False)
            elif not _is_no_value(item):
                yield None
    elif _function(node) == "Fn::If":
        yield from _if_branches(node, list_level=True)
    elif not _is_no_value(node):
        yield None


def _if_branches(node: yt.Node | None, list_level: bool) -> Iterator[yt.Node | None]:
    arguments = yt.resolve(_arguments(node))
    if not isinstance(arguments, yt.Sequence) or len(arguments.items) != 3:
        yield None
        return
    for entry in arguments.items[1:]:
        branch = yt.resolve(entry)
        if list_level:
            yield from _branches(branch)
        elif isinstance(branch, yt.Mapping) and not _intrinsic(branch):
            yield branch
        elif _function(branch) == "Fn::If":
            yield from _if_branches(branch, list_level=False)
        elif not _is_no_value(branch):
            yield None


def _judge(root: yt.Node, where: _Container, key: yt.Node, raw: yt.Node) -> tuple[Finding, yt.Node | None]:
    """Is this Privileged value true (and where are its bytes), false, or something only a human can tell?"""
    line = yt.line_of(key)
    node = yt.resolve(raw)
    shown = _display(node)
    if node is None or _intrinsic(node):
        detail = _intrinsic_detail(root, node) if node is not None else "not a Boolean"
        return where.finding(line, UNRESOLVED, shown, detail), None
    if not isinstance(node, yt.Scalar) or (node.tag and node.tag not in _PLAIN_TAGS):
        return where.finding(line, UNRESOLVED, shown, "not a Boolean"), None
    word = node.value.strip().lower()
    text = node.style is not None or node.tag == _STR_TAG  # a string: only "true"/"false" convert
    if not text and not node.tag and word in _NULL:
        return where.finding(line, COMPLIANT, shown), None  # no value: the default, false
    if word == "false" or (not text and word in _FALSE):
        return where.finding(line, COMPLIANT, shown), None
    if word == "true" or (not text and word in _TRUE):
        return where.finding(line, PRIVILEGED, shown), raw
    if not text and word in _AMBIGUOUS:
        return where.finding(line, UNRESOLVED, shown, "YAML 1.1 may read it as a Boolean; write true or false"), None
    return where.finding(line, UNRESOLVED, shown, "not a Boolean"), None


def _edits(
    text: str, document: yt.Document, sites: list[tuple[Finding, yt.Node]], findings: list[Finding]
) -> tuple[list[Edit], list[Finding]]:
    """One edit per privileged value; a finding whose bytes cannot be changed alone becomes unresolved."""
    site_ids = {id(node) for _, node in sites}
    edits: list[Edit] = []
    updated: dict[int, Finding] = {}
    for finding, node in sites:
        if finding.status != PRIVILEGED:
            continue
        edit, problem = _edit_for(text, document, node, site_ids)
        if edit is None:
            updated[id(finding)] = replace(finding, status=UNRESOLVED, detail=problem)
        else:
            edits.append(edit)
            updated[id(finding)] = replace(finding, fixed_to=edit.text)
    return edits, [updated.get(id(f), f) for f in findings if f.status != COMPLIANT]


def _edit_for(text: str, document: yt.Document, node: yt.Node, site_ids: set[int]) -> tuple[Edit | None, str]:
    if isinstance(node, yt.Alias):
        return Edit(node.start, node.end, "false"), ""  # only this occurrence; the anchor stays as it was
    if not isinstance(node, yt.Scalar):
        return None, "not a scalar"
    for alias in document.aliases:
        if alias.target is node and id(alias) not in site_ids:
            return None, f"its anchor &{node.anchor} is also used at line {yt.line_of(alias)}; change it by hand"
    quote = node.style if node.style in ("'", '"') else ""
    written = f"{quote}{node.value}{quote}"
    if node.style not in (None, "'", '"') or "\n" in node.value or text[node.end - len(written) : node.end] != written:
        return None, "written in a form this tool does not rewrite; change it by hand"
    # Plain: the same spelling (YAML reads False and FALSE as Booleans too); quoted: the string "false".
    replacement = _REPLACEMENT.get(node.value, "false") if not quote else "false"
    return Edit(node.end - len(written), node.end, f"{quote}{replacement}{quote}"), ""


def _verify(original: str, fixed: str, report: Report) -> None:
    """The fixed text must read as the same template with no privileged container left."""
    try:
        again = analyse(fixed)
    except (TemplateError, yt.DocumentError) as error:
        raise TemplateError(f"the fixed template does not read back ({error}); nothing written") from None
    if again.privileged or len(again.unresolved) != len(report.unresolved):
        raise TemplateError("the fixed template still has privileged containers; nothing written")
    if original.lstrip("\ufeff \t\r\n").startswith("{"):
        try:
            json.loads(fixed)
        except (ValueError, RecursionError):
            raise TemplateError("the fixed JSON template is not JSON; nothing written") from None


def _function(node: yt.Node | None) -> str | None:
    """The intrinsic function a node is ("Ref", "Fn::If", ...), long or short form; None if it is none."""
    node = yt.resolve(node)
    if node is None:
        return None
    if node.tag and node.tag.startswith("!") and not node.tag.startswith("!!"):
        name = node.tag[1:]
        return name if name in ("Ref", "Condition") else f"Fn::{name}"
    if isinstance(node, yt.Mapping) and len(node.pairs) == 1:
        key = yt.scalar_text(node.pairs[0][0]) or ""
        if key == "Ref" or key.startswith("Fn::") or key == "Condition":
            return key
    return None


def _intrinsic(node: yt.Node | None) -> bool:
    return _function(node) is not None


def _arguments(node: yt.Node | None) -> yt.Node | None:
    node = yt.resolve(node)
    if node is not None and node.tag and node.tag.startswith("!") and not node.tag.startswith("!!"):
        return node
    return node.pairs[0][1] if isinstance(node, yt.Mapping) and node.pairs else None


def _is_no_value(node: yt.Node | None) -> bool:
    return _function(node) == "Ref" and yt.scalar_text(_arguments(node)) == "AWS::NoValue"


def _intrinsic_detail(root: yt.Node, node: yt.Node) -> str:
    function = _function(node)
    if function != "Ref":
        return f"given by {function}; check every case by hand"
    name = yt.scalar_text(_arguments(node)) or ""
    parameter = yt.value(yt.value(root, "Parameters"), name)
    if parameter is None:
        return f"Ref {_short(name)} is not a parameter of this template"
    default = yt.value(parameter, "Default")
    if default is None:
        return f"parameter {_short(name)} has no default; its value is given at deploy time"
    shown = yt.scalar_text(default)
    return f"parameter {_short(name)} defaults to {_short(shown if shown is not None else _display(default))!r}"


def _container_name(container: yt.Node, index: int) -> str:
    name = yt.value(container, "Name")
    if name is None:
        return f"#{index}"
    return _display_name(name)


def _display_name(node: yt.Node) -> str:
    text = yt.scalar_text(node)
    return _short(text) if text is not None else _display(node)


def _display(node: yt.Node | None) -> str:
    """A short, one-line rendering of a value for a report (names and Booleans, never whole structures)."""
    node = yt.resolve(node)
    function = _function(node)
    if function is not None:
        argument = yt.scalar_text(_arguments(node)) if not isinstance(node, yt.Scalar) else node.value
        shown = ("!" + function.removeprefix("Fn::")) if node is not None and node.tag else function
        return _short(f"{shown} {argument}" if argument else shown)
    if isinstance(node, yt.Scalar):
        quote = node.style if node.style in ("'", '"') else ""
        tag = "!!" + node.tag.rsplit(":", 1)[-1] + " " if node.tag and node.tag.startswith("tag:yaml.org") else ""
        return _short(f"{tag}{quote}{node.value}{quote}")
    return "(a list)" if isinstance(node, yt.Sequence) else "(a mapping)" if node is not None else "(nothing)"


def _short(text: str) -> str:
    text = "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))
    return text if len(text) <= _DISPLAY_LIMIT else text[: _DISPLAY_LIMIT - 1] + "…"
