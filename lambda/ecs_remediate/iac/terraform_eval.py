"""The part of HCL expressions that can be known without running Terraform: literals, tuples, objects, strings.

CLI only. Everything else (a variable, a local, a module's output, a data source, `each`/`count`, a function, a
`for` expression, a condition, an operation, an interpolation) is Unknown, with what it depends on: a variable's
default when it has one, where a local is defined. Nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import hcl_tree as ht

SHOWN = 80


@dataclass(frozen=True)
class Unknown:
    node: ht.Node
    shown: str  # the expression as written, shortened
    detail: str  # what it depends on


@dataclass
class HclObject:
    values: dict[str, Any] = field(default_factory=dict)  # evaluated: plain values, HclObject, list, Unknown
    nodes: dict[str, ht.Node] = field(default_factory=dict)  # each key's value expression
    key_nodes: dict[str, ht.Node] = field(default_factory=dict)
    unknown_keys: list[Unknown] = field(default_factory=list)  # keys given by an expression


@dataclass(frozen=True)
class Scope:
    """What the module declares: variables (their default expression, or None) and locals (their expression)."""

    variables: dict[str, tuple[ht.Node | None, ht.Source]]
    locals: dict[str, tuple[ht.Node, ht.Source, str]]  # name -> (expression, source, file name)


def short(text: str, limit: int = SHOWN) -> str:
    text = "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def evaluate(expression: ht.Node, source: ht.Source, scope: Scope, depth: int = 0) -> Any:
    node = ht.inner(expression)
    if depth > ht.MAX_DEPTH:
        return Unknown(node, "…", "nested too deeply")
    kind = node.type
    if kind == "bool_lit":
        return source.text(node).strip() == "true"
    if kind == "null_lit":
        return None
    if kind == "numeric_lit":
        return _number(source.text(node))
    if kind in ("string_lit", "quoted_template", "heredoc_template"):
        text = ht.literal_text(node, source)
        return text if text is not None else _unknown(node, source, "a string with an interpolation")
    if kind == "tuple":
        return [evaluate(child, source, scope, depth + 1) for child in node.children if child.type == "expression"]
    if kind == "object":
        return _object(node, source, scope, depth)
    if kind == "variable_expr":
        return _reference(node, source, scope)
    if kind == "expression" and node.children and node.children[0].type == "variable_expr":
        return _reference(node.children[0], source, scope)  # var.x, local.x[0], module.m.o: a traversal
    if kind == "function_call":
        name = source.text(node.children[0]) if node.children else "?"
        return _unknown(node, source, f"{name}(): a function Terraform evaluates at plan time")
    if kind == "for_expr" or kind.startswith("for_"):
        return _unknown(node, source, "a for expression")
    if kind == "conditional":
        return _unknown(node, source, "a condition: check every case by hand")
    return _unknown(node, source, "an expression Terraform evaluates at plan time")


def _object(node: ht.Node, source: ht.Source, scope: Scope, depth: int) -> HclObject:
    result = HclObject()
    for element in node.children:
        if element.type != "object_elem":
            continue
        parts = [child for child in element.children if child.type == "expression"]
        if len(parts) != 2:
            continue
        key_node, value_node = parts
        key = _key(key_node, source)
        if key is None:
            result.unknown_keys.append(_unknown(key_node, source, "a key given by an expression: it may be privileged"))
            continue
        result.values[key] = evaluate(value_node, source, scope, depth + 1)
        result.nodes[key] = value_node
        result.key_nodes[key] = key_node
    return result


def _key(node: ht.Node, source: ht.Source) -> str | None:
    """An object key as Terraform reads it: a bare identifier is its own name, a string literal its text."""
    inner = ht.inner(node)
    if inner.type == "variable_expr" and len(node.children) == 1:
        return source.text(inner)
    if inner.type in ("string_lit", "quoted_template"):
        return ht.literal_text(inner, source)
    return None


def _reference(node: ht.Node, source: ht.Source, scope: Scope) -> Unknown:
    """`var.x`, `local.x`, `module.m.o`, `data.t.n.a`, `each.value`...: never evaluated, always explained."""
    parent = node.parent
    whole = parent if parent is not None and parent.type == "expression" else node
    text = source.text(whole)
    root = source.text(node)
    attributes = [source.text(c.children[-1]) for c in whole.children if c.type == "get_attr" and c.children]
    name = attributes[0] if attributes else ""
    if root == "var" and name:
        return Unknown(whole, short(text), _variable(name, scope))
    if root == "local" and name and name in scope.locals:
        expression, where, file = scope.locals[name]
        shown = short(where.text(expression), 40)
        return Unknown(whole, short(text), f"local {name} = {shown} ({file}:{ht.line(expression)}): not evaluated")
    if root == "module" and name:
        return Unknown(whole, short(text), f"an output of module {name}")
    if root == "data":
        return Unknown(whole, short(text), "a data source, read at plan time")
    if root in ("each", "count"):
        return Unknown(whole, short(text), f"{root}: one value per instance of the resource")
    return Unknown(whole, short(text), f"{short(text, 40)}: not evaluated")


def _variable(name: str, scope: Scope) -> str:
    if name not in scope.variables:
        return f"variable {name} is not declared in this module"
    default, where = scope.variables[name]
    if default is None:
        return f"variable {name} has no default: its value comes from the caller (tfvars, -var, a module block)"
    return f"variable {name} defaults to {short(where.text(default), 40)}; the caller may set another value"


def _unknown(node: ht.Node, source: ht.Source, detail: str) -> Unknown:
    return Unknown(node, short(source.text(node)), detail)


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def plain(value: Any) -> Any:
    """The evaluated value as JSON-like data (Unknown as None), for the host-access report."""
    if isinstance(value, HclObject):
        return {key: plain(item) for key, item in value.values.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return None if isinstance(value, Unknown) else value
