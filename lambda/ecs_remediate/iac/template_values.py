"""CloudFormation values in a template's YAML/JSON tree: intrinsic functions, `Fn::ForEach` loop identifiers, and
the short one-line renderings a report shows. CLI only (the tree comes from yaml_tree, i.e. ruamel.yaml)."""

from __future__ import annotations

from . import yaml_tree as yt

DISPLAY_LIMIT = 80
FOR_EACH = "Fn::ForEach::"
TRANSFORM = "Fn::Transform"


def function(node: yt.Node | None) -> str | None:
    """The intrinsic function a node is ("Ref", "Fn::If", ...), long or short form; None if it is none."""
    node = yt.resolve(node)
    if node is None:
        return None
    if node.tag and node.tag.startswith("!") and not node.tag.startswith("!!"):
        name = node.tag[1:]
        return name if name in ("Ref", "Condition") else f"Fn::{name}"
    if isinstance(node, yt.Mapping) and len(node.pairs) == 1:
        key = yt.scalar_text(node.pairs[0][0]) or ""
        if key == "Ref" or (key.startswith("Fn::") and not key.startswith(FOR_EACH)) or key == "Condition":
            return key  # a loop is not a value: its mapping has keys made at deploy time (generated_key)
    return None


def intrinsic(node: yt.Node | None) -> bool:
    return function(node) is not None


def arguments(node: yt.Node | None) -> yt.Node | None:
    node = yt.resolve(node)
    if node is not None and node.tag and node.tag.startswith("!") and not node.tag.startswith("!!"):
        return node
    return node.pairs[0][1] if isinstance(node, yt.Mapping) and node.pairs else None


def line_of(node: yt.Node) -> int:
    """The 1-based line to report for a node: a long-form function's own key (`{"Fn::If": ...}` in JSON starts a
    line before it), or where the node starts."""
    node = yt.resolve(node) or node
    if isinstance(node, yt.Mapping) and not node.tag and len(node.pairs) == 1 and intrinsic(node):
        return yt.line_of(node.pairs[0][0])
    return yt.line_of(node)


def is_no_value(node: yt.Node | None) -> bool:
    return function(node) == "Ref" and yt.scalar_text(arguments(node)) == "AWS::NoValue"


def generated_key(key: str) -> bool:
    """A mapping key that stands for keys made at deploy time: a loop (`Fn::ForEach::Name`), an inserted snippet
    (`Fn::Transform`, AWS::Include or a macro)."""
    return key.startswith(FOR_EACH) or key == TRANSFORM


def substituted(text: str, loops: tuple[tuple[str, str], ...]) -> str | None:
    """The loop whose identifier `text` uses as `${Id}` or `&{Id}` (Fn::ForEach replaces those in every key and
    string of its fragment), or None. `loops` holds (loop name, identifier) pairs, innermost last."""
    for loop, identifier in reversed(loops):
        if f"${{{identifier}}}" in text or f"&{{{identifier}}}" in text:
            return loop
    return None


def intrinsic_detail(root: yt.Node, node: yt.Node, loops: tuple[tuple[str, str], ...] = ()) -> str:
    """What a value given by a function depends on: a parameter's default, a loop's identifier, the function."""
    name_of = function(node)
    if name_of != "Ref":
        return f"given by {name_of}; check every case by hand"
    name = yt.scalar_text(arguments(node)) or ""
    for loop, identifier in reversed(loops):
        if name == identifier:
            return f"Ref {short(name)} is the identifier of {short(loop)}: one value per item of its collection"
    parameter = yt.value(yt.value(root, "Parameters"), name)
    if parameter is None:
        return f"Ref {short(name)} is not a parameter of this template"
    default = yt.value(parameter, "Default")
    if default is None:
        return f"parameter {short(name)} has no default; its value is given at deploy time"
    shown = yt.scalar_text(default)
    return f"parameter {short(name)} defaults to {short(shown if shown is not None else display(default))!r}"


def display_name(node: yt.Node) -> str:
    text = yt.scalar_text(node)
    return short(text) if text is not None else display(node)


def display(node: yt.Node | None) -> str:
    """A short, one-line rendering of a value for a report (names and Booleans, never whole structures)."""
    node = yt.resolve(node)
    name = function(node)
    if name is not None:
        argument = yt.scalar_text(arguments(node)) if not isinstance(node, yt.Scalar) else node.value
        shown = ("!" + name.removeprefix("Fn::")) if node is not None and node.tag else name
        return short(f"{shown} {argument}" if argument else shown)
    if isinstance(node, yt.Scalar):
        quote = node.style if node.style in ("'", '"') else ""
        tag = "!!" + node.tag.rsplit(":", 1)[-1] + " " if node.tag and node.tag.startswith("tag:yaml.org") else ""
        return short(f"{tag}{quote}{node.value}{quote}")
    return "(a list)" if isinstance(node, yt.Sequence) else "(a mapping)" if node is not None else "(nothing)"


def short(text: str) -> str:
    text = "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))
    return text if len(text) <= DISPLAY_LIMIT else text[: DISPLAY_LIMIT - 1] + "…"
