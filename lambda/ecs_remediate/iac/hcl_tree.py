"""HCL (Terraform's native syntax) read with tree-sitter's HCL grammar: nodes with exact byte positions.

CLI only (tree-sitter and tree-sitter-hcl are not in the function's asset). Nothing here evaluates or rewrites;
it parses, refuses what tree-sitter could not parse (with the line of the first error), and gives the small
vocabulary the Terraform reader needs: a body's blocks and attributes, a string literal's text with the byte each
character came from, an expression's own node.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import tree_sitter
import tree_sitter_hcl

MAX_BYTES = 2 * 1024 * 1024  # a module's file is a few kB; tree-sitter's HCL grammar parses about 1 MB/s
MAX_DEPTH = 100  # nesting of blocks, collections and calls
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}

Node = tree_sitter.Node
_WRAPPERS = frozenset({"expression", "literal_value", "collection_value", "template_expr"})
_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_hcl.language()))


class HclError(ValueError):
    """Not HCL this tool can read; one line, no file content."""


@dataclass(frozen=True)
class Source:
    data: bytes
    root: Node

    def text(self, node: Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")


def parse(data: bytes) -> Source:
    if len(data) > MAX_BYTES:
        raise HclError(f"larger than {MAX_BYTES // (1024 * 1024)} MiB; not read")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise HclError("not UTF-8") from None
    tree = _PARSER.parse(data)
    root = tree.root_node
    _check(root)
    return Source(data, root)


def _check(root: Node) -> None:
    """Errors and depth, with a cursor (no recursion: a hostile file may nest thousands of levels)."""
    cursor = root.walk()
    depth = 0
    while True:
        node = cursor.node
        if node is not None and (node.is_error or node.is_missing):
            where = f"line {node.start_point.row + 1} column {node.start_point.column + 1}"
            raise HclError(f"not valid HCL ({where})")
        if cursor.goto_first_child():
            depth += 1
            if depth > MAX_DEPTH * 4:  # each HCL level is a few grammar nodes (expression, collection, tuple)
                raise HclError(f"nested more than {MAX_DEPTH} levels deep")
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return
            depth -= 1


def line(node: Node) -> int:
    return node.start_point.row + 1


def body_of(node: Node) -> Node | None:
    """The body of a config file or a block."""
    for child in node.children:
        if child.type == "body":
            return child
    return None


def blocks(body: Node | None) -> Iterator[Node]:
    for child in body.children if body is not None else ():
        if child.type == "block":
            yield child


def block_type(block: Node, source: Source) -> str:
    first = block.children[0] if block.children else None
    return source.text(first) if first is not None and first.type == "identifier" else ""


def block_labels(block: Node, source: Source) -> list[str | None]:
    """The labels of a block (`resource "type" "name"`): their text, None where a label is not a plain string."""
    labels: list[str | None] = []
    for child in block.children[1:]:
        if child.type == "string_lit":
            labels.append(literal_text(child, source))
        elif child.type == "identifier":
            labels.append(source.text(child))
        elif child.type == "block_start":
            break
    return labels


def attributes(body: Node | None, source: Source) -> Iterator[tuple[str, Node, Node]]:
    """(name, attribute node, its expression) of each attribute of a body, duplicates included."""
    for child in body.children if body is not None else ():
        if child.type == "attribute" and len(child.children) >= 3:
            yield source.text(child.children[0]), child, child.children[-1]


def inner(expression: Node) -> Node:
    """The node an expression stands for: through `expression` and parentheses to a single meaningful child."""
    node = expression
    while True:
        named = [c for c in node.children if c.is_named and c.type != "comment"]
        if node.type in _WRAPPERS and len(named) == 1:
            node = named[0]
        else:
            return node


def literal_text(node: Node, source: Source) -> str | None:
    """A string literal's value when it has no interpolation, else None."""
    decoded = string_chars(node, source)
    if decoded is None or any(offset < 0 for _, offset in decoded):
        return None
    return "".join(char for char, _ in decoded)


def string_chars(node: Node, source: Source) -> list[tuple[str, int]] | None:
    """The characters of a quoted string or heredoc, each with the byte offset it came from (escapes decoded);
    an interpolation or directive stands as one character "\\0" with offset -1. None for anything else."""
    node = inner(node)
    if node.type not in ("string_lit", "quoted_template", "heredoc_template"):
        return None
    out: list[tuple[str, int]] = []
    for part in node.children:
        if part.type == "template_literal":
            out.extend(_decode(source.data, part.start_byte, part.end_byte, node.type != "heredoc_template"))
        elif part.type in ("template_interpolation", "template_directive"):
            out.append(("\0", -1))
    return out


def _decode(data: bytes, start: int, end: int, escapes: bool) -> Iterator[tuple[str, int]]:
    text = data[start:end].decode("utf-8", "replace")
    position = start
    index = 0
    while index < len(text):
        char = text[index]
        width = len(char.encode("utf-8"))
        if escapes and char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            if following in _ESCAPES:
                yield _ESCAPES[following], position
                index, position = index + 2, position + 2
                continue
            if following in "uU":
                digits = 4 if following == "u" else 8
                code = text[index + 2 : index + 2 + digits]
                if len(code) == digits and all(c in "0123456789abcdefABCDEF" for c in code):
                    yield chr(int(code, 16)) if int(code, 16) < 0x110000 else "\ufffd", position
                    index, position = index + 2 + digits, position + 2 + digits
                    continue
        yield char, position
        index, position = index + 1, position + width
