"""CloudFormation templates (JSON or YAML, cdk.out included): find privileged containers, fix them in place.

CLI only. Every container of every AWS::ECS::TaskDefinition and AWS::ECS::DaemonTaskDefinition is checked (those
in `Fn::ForEach` loops included; template_sources finds them, and reports what may make others that cannot be
read); `Privileged: true` (any spelling CloudFormation reads as true) becomes `false` by changing exactly the bytes
of that value in the original text, so comments, key order, quoting, anchors and short-form intrinsics are
left as they were. A value given by an intrinsic function, a parameter or a loop's identifier is reported,
never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

from . import template_values as tv
from . import yaml_tree as yt
from .template_report import (
    COMPLIANT,
    PRIVILEGED,
    TASK_DEFINITION_TYPES,
    UNRESOLVED,
    Edit,
    Finding,
    Report,
    TemplateError,
)
from .template_sources import Site, generated_keys, walk

__all__ = ["PRIVILEGED", "TASK_DEFINITION_TYPES", "UNRESOLVED", "Finding", "Report", "TemplateError", "analyse", "fix"]

# CloudFormation reads YAML 1.1 and turns a "true"/"false" string into a Boolean property.
_TRUE = frozenset({"true", "yes", "on"})
_FALSE = frozenset({"false", "no", "off"})
_AMBIGUOUS = frozenset({"y", "n"})  # YAML 1.1 booleans that most parsers (and maybe CloudFormation) read as text
_NULL = frozenset({"", "~", "null"})
_REPLACEMENT = {"true": "false", "True": "False", "TRUE": "FALSE"}
_STR_TAG = "tag:yaml.org,2002:str"
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:bool", _STR_TAG})


def analyse(text: str) -> Report:
    """Every privileged and unresolved container of the template in `text`, and what may make task definitions
    that cannot be read."""
    document = yt.parse(text)
    root = document.root
    if not _tree_is_template(root):
        raise TemplateError("not a CloudFormation template (no AWSTemplateFormatVersion, no typed Resources)")
    found, findings = walk(root)
    sites: list[tuple[Finding, yt.Node]] = []
    for site in found:
        for finding, node in _containers(root, site):
            findings.append(finding)
            if node is not None:
                sites.append((finding, node))
    edits, findings = _edits(text, document, sites, findings)
    findings.sort(key=lambda f: f.line)
    return Report(tuple(findings), tuple(edits), len(found))


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
    if yt.values(root, "AWSTemplateFormatVersion") or yt.values(root, "Transform"):
        return True
    resources = yt.value(root, "Resources")
    return isinstance(resources, yt.Mapping) and any(
        yt.scalar_text(yt.value(r, "Type")) is not None or tv.generated_key(yt.scalar_text(k) or "")
        for k, r in resources.pairs
    )


@dataclass(frozen=True)
class _Container:
    site: Site
    name: str

    def finding(self, at: yt.Node, status: str, value: str, detail: str = "", key: str = "Privileged") -> Finding:
        site = self.site
        line = tv.line_of(at)
        return Finding(
            site.logical_id, site.resource_type, self.name, line, status, value, detail, key=key, within=site.within
        )


def _containers(root: yt.Node, site: Site) -> Iterator[tuple[Finding, yt.Node | None]]:
    whole = _Container(site, "")
    for key, value in yt.values(site.resource, "Properties"):
        properties = yt.resolve(value)
        if properties is None or tv.intrinsic(properties) or not isinstance(properties, yt.Mapping):
            if properties is not None:
                intrinsic = tv.intrinsic(properties)
                detail = tv.intrinsic_detail(root, properties, site.loops) if intrinsic else "not a mapping"
                yield whole.finding(key, UNRESOLVED, tv.display(properties), detail, "Properties"), None
            continue
        for at, name, shown, why in generated_keys(properties, site.loops):
            yield whole.finding(at, UNRESOLVED, shown, f"{why}: it may set ContainerDefinitions", name), None
        for list_key, definitions in yt.values(properties, "ContainerDefinitions"):
            index = 0
            for container, given in _branches(definitions, list_key):
                if container is None:
                    detail = tv.intrinsic_detail(root, given, site.loops) if tv.intrinsic(given) else "not a container"
                    if given is definitions and not tv.intrinsic(given):
                        detail = "not a list of containers"
                    yield whole.finding(given, UNRESOLVED, tv.display(given), detail, "ContainerDefinitions"), None
                    continue
                where = _Container(site, _container_name(container, index))
                index += 1
                for at, name, shown, why in generated_keys(container, site.loops):
                    yield where.finding(at, UNRESOLVED, shown, f"{why}: it may set Privileged", name), None
                for privileged_key, flag in yt.values(container, "Privileged"):
                    yield _judge(root, where, privileged_key, flag)


Branch = tuple[yt.Node | None, yt.Node]  # (a container mapping, or None when it cannot be read; where it is)


def _branches(given: yt.Node, at: yt.Node) -> Iterator[Branch]:
    """The container mappings of a ContainerDefinitions value, through `Fn::If` branches (a sidecar that a
    condition adds is still deployed privileged when the condition holds), and what cannot be read."""
    node = yt.resolve(given)
    if isinstance(node, yt.Sequence) and not tv.intrinsic(node):
        for entry in node.items:
            item = yt.resolve(entry)
            if isinstance(item, yt.Mapping) and not tv.intrinsic(item):
                yield item, entry
            elif tv.function(item) == "Fn::If":
                yield from _if_branches(entry, list_level=False)
            elif not tv.is_no_value(item):
                yield None, entry
    elif tv.function(node) == "Fn::If":
        yield from _if_branches(given, list_level=True)
    elif not tv.is_no_value(node):
        yield None, given if node is not None else at


def _if_branches(given: yt.Node, list_level: bool) -> Iterator[Branch]:
    arguments = yt.resolve(tv.arguments(given))
    if not isinstance(arguments, yt.Sequence) or len(arguments.items) != 3:
        yield None, given
        return
    for entry in arguments.items[1:]:
        branch = yt.resolve(entry)
        if list_level:
            yield from _branches(entry, entry)
        elif isinstance(branch, yt.Mapping) and not tv.intrinsic(branch):
            yield branch, entry
        elif tv.function(branch) == "Fn::If":
            yield from _if_branches(entry, list_level=False)
        elif not tv.is_no_value(branch):
            yield None, entry


def _judge(root: yt.Node, where: _Container, key: yt.Node, raw: yt.Node) -> tuple[Finding, yt.Node | None]:
    """Is this Privileged value true (and where are its bytes), false, or something only a human can tell?"""
    node = yt.resolve(raw)
    shown = tv.display(node)
    loops = where.site.loops
    if node is None or tv.intrinsic(node):
        detail = tv.intrinsic_detail(root, node, loops) if node is not None else "not a Boolean"
        return where.finding(key, UNRESOLVED, shown, detail), None
    if not isinstance(node, yt.Scalar) or (node.tag and node.tag not in _PLAIN_TAGS):
        return where.finding(key, UNRESOLVED, shown, "not a Boolean"), None
    if (loop := tv.substituted(node.value, loops)) is not None:
        return where.finding(key, UNRESOLVED, shown, f"substituted from the collection of {tv.short(loop)}"), None
    word = node.value.strip().lower()
    text = node.style is not None or node.tag == _STR_TAG  # a string: only "true"/"false" convert
    if not text and not node.tag and word in _NULL:
        return where.finding(key, COMPLIANT, shown), None  # no value: the default, false
    if word == "false" or (not text and word in _FALSE):
        return where.finding(key, COMPLIANT, shown), None
    if word == "true" or (not text and word in _TRUE):
        return where.finding(key, PRIVILEGED, shown), raw
    if not text and word in _AMBIGUOUS:
        return where.finding(key, UNRESOLVED, shown, "YAML 1.1 may read it as a Boolean; write true or false"), None
    return where.finding(key, UNRESOLVED, shown, "not a Boolean"), None


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


def _container_name(container: yt.Node, index: int) -> str:
    name = yt.value(container, "Name")
    if name is None:
        return f"#{index}"
    return tv.display_name(name)
