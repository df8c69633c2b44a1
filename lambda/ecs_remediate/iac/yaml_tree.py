"""A YAML (or JSON) document as a tree whose nodes keep their exact place in the source text.

CLI only (ruamel.yaml is not in the function's asset). Built from ruamel.yaml's parse events rather than its
composed tree: an alias keeps its own position (a composed tree shares the anchored node), so a fixer can
change exactly the bytes it means to and nothing else. Nothing here re-serialises a document.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

MERGE_KEY = "<<"
# Deeper nesting is refused: no template needs it, and ruamel.yaml's scanner slows down quadratically with
# the depth of flow collections (its list of possible simple keys is walked for every token).
MAX_DEPTH = 100


class DocumentError(ValueError):
    """Not one well-formed YAML document; the message is one line, without the document's content."""


@dataclass(eq=False)
class Node:
    start: int  # character offsets into the source text: text[start:end] is the node, properties included
    end: int
    line: int  # 0-based line of `start`
    anchor: str | None
    tag: str | None


@dataclass(eq=False)
class Scalar(Node):
    value: str
    style: str | None  # None: plain; "'" or '"': quoted; "|" or ">": block


@dataclass(eq=False)
class Mapping(Node):
    pairs: list[tuple[Node, Node]] = field(default_factory=list)


@dataclass(eq=False)
class Sequence(Node):
    items: list[Node] = field(default_factory=list)


@dataclass(eq=False)
class Alias(Node):
    target: Node | None = None


@dataclass(frozen=True)
class Document:
    root: Node
    aliases: tuple[Alias, ...]  # every alias occurrence, in document order


def parse(text: str) -> Document:
    """The single document in `text`; DocumentError for anything else (no document, several, bad YAML)."""
    try:
        return _build(_events(text))
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise DocumentError(f"not valid YAML ({_one_line(error.problem or error.context or 'error')}{where})") from None
    except (YAMLError, ValueError, TypeError, RecursionError, IndexError) as error:
        if isinstance(error, DocumentError):
            raise
        raise DocumentError(f"not valid YAML ({_one_line(str(error))[:200]})") from None


def _events(text: str) -> Iterator[Event]:
    yield from YAML(typ="rt").parse(io.StringIO(text))


def _build(events: Iterator[Event]) -> Document:
    anchors: dict[str, Node] = {}
    open_anchors: set[str] = set()
    aliases: list[Alias] = []
    stack: list[tuple[Mapping | Sequence, list[Node]]] = []
    root: Node | None = None
    documents = 0

    def attach(node: Node) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        container, pending = stack[-1]
        if isinstance(container, Sequence):
            container.items.append(node)
        elif pending:
            container.pairs.append((pending.pop(), node))
        else:
            pending.append(node)

    for event in events:
        if isinstance(event, DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise DocumentError("more than one YAML document (a template is a single document)")
        elif isinstance(event, ScalarEvent):
            scalar = Scalar(*_place(event), value=str(event.value), style=event.style)
            _remember(scalar, anchors)
            attach(scalar)
        elif isinstance(event, AliasEvent):
            name = str(event.anchor)
            if name not in anchors:
                raise DocumentError(f"alias *{_one_line(name)[:64]} has no anchor before it")
            if name in open_anchors:
                raise DocumentError(f"alias *{_one_line(name)[:64]} refers to a node that contains it")
            alias = Alias(*_place(event), target=anchors[name])
            aliases.append(alias)
            attach(alias)
        elif isinstance(event, MappingStartEvent | SequenceStartEvent):
            opened: Mapping | Sequence = (Mapping if isinstance(event, MappingStartEvent) else Sequence)(*_place(event))
            _remember(opened, anchors)
            if opened.anchor:
                open_anchors.add(opened.anchor)
            attach(opened)
            stack.append((opened, []))
            if len(stack) > MAX_DEPTH:
                raise DocumentError(f"nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, MappingEndEvent | SequenceEndEvent):
            closed, _ = stack.pop()
            closed.end = event.end_mark.index
            if closed.anchor:
                open_anchors.discard(closed.anchor)
    if root is None:
        raise DocumentError("no YAML document in the input")
    return Document(root, tuple(aliases))


def _place(event: Event) -> tuple[int, int, int, str | None, str | None]:
    tag = getattr(event, "tag", None)
    anchor = getattr(event, "anchor", None)
    return (
        event.start_mark.index,
        event.end_mark.index,
        event.start_mark.line,
        None if anchor is None or isinstance(event, AliasEvent) else str(anchor),
        None if tag is None else str(tag),
    )


def _remember(node: Node, anchors: dict[str, Node]) -> None:
    if node.anchor:
        anchors[node.anchor] = node  # YAML lets a later anchor of the same name replace an earlier one


def resolve(node: Node | None) -> Node | None:
    """The node an alias stands for (a node that is not an alias stands for itself)."""
    return node.target if isinstance(node, Alias) else node


def scalar_text(node: Node | None) -> str | None:
    """The scalar's string value, through an alias; None for anything else."""
    node = resolve(node)
    return node.value if isinstance(node, Scalar) else None


def values(mapping: Node | None, key: str) -> list[tuple[Node, Node]]:
    """Every (key node, value node) for `key`: each duplicate, explicit pairs first, then YAML merge keys
    (`<<: *base`, merged bases searched in order, recursively), which only count where no explicit pair
    exists (the YAML merge rule)."""
    mapping = resolve(mapping)
    if not isinstance(mapping, Mapping):
        return []
    explicit = [(k, v) for k, v in mapping.pairs if scalar_text(k) == key]
    if explicit:
        return explicit
    for base in _bases(mapping, set()):
        found = [(k, v) for k, v in base.pairs if scalar_text(k) == key]
        if found:
            return found
    return []


def items(mapping: Node | None) -> list[tuple[Node, Node]]:
    """Every (key node, value node) YAML gives the mapping: its own pairs (duplicates included, merge keys left
    out), then the pairs of merged bases whose key none before them has (the YAML merge rule), recursively."""
    mapping = resolve(mapping)
    if not isinstance(mapping, Mapping):
        return []
    found = [(k, v) for k, v in mapping.pairs if scalar_text(k) != MERGE_KEY]
    seen = {scalar_text(k) for k, _ in found}
    for base in _bases(mapping, set()):
        for k, v in base.pairs:
            name = scalar_text(k)
            if name != MERGE_KEY and (name is None or name not in seen):
                seen.add(name)
                found.append((k, v))
    return found


def _bases(mapping: Mapping, visited: set[int], depth: int = 0) -> Iterator[Mapping]:
    """The mappings merged into `mapping` (`<<`), depth first in YAML's order of precedence; each once, so that
    a document merging the same anchor again and again costs no more than merging it once."""
    if depth > MAX_DEPTH:
        raise DocumentError(f"merge keys nested more than {MAX_DEPTH} levels deep")
    for k, v in mapping.pairs:
        if scalar_text(k) != MERGE_KEY:
            continue
        source = resolve(v)
        for base in [resolve(item) for item in source.items] if isinstance(source, Sequence) else [source]:
            if isinstance(base, Mapping) and id(base) not in visited and base is not mapping:
                visited.add(id(base))
                yield base
                yield from _bases(base, visited, depth + 1)


def value(mapping: Node | None, key: str) -> Node | None:
    """The value YAML gives `key` (the last duplicate wins, as in most parsers), through an alias."""
    found = values(mapping, key)
    return resolve(found[-1][1]) if found else None


def line_of(node: Node) -> int:
    return node.line + 1


def _one_line(text: str) -> str:
    return " ".join(text.split())
