"""Container definitions written as JSON text in Terraform: a string or heredoc, a file read with `file()`, and
the strings of a `.tf.json` file. CLI only.

The JSON is read twice: by the json module (is it JSON, and its value) and by yaml_tree (ruamel.yaml, which
reads JSON as YAML and gives every value's exact place). Each character of the text carries the byte it came
from in its file, so a `true` is changed in the file itself, escapes and all around it left as they were. A
Terraform interpolation (`${...}`) stands as one private-use character: inside a JSON string it is text, anywhere
else the JSON cannot be read without evaluating it, and a key or `privileged` value that holds one is unresolved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import yaml_tree as yt

PLACEHOLDER = "\ue000"  # an interpolation, in the decoded text
Chars = list[tuple[str, int]]  # (character, byte offset in its file; -1 for an interpolation)
_JSON_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class JsonContainer:
    name: str  # its name, or "#<index>"
    value: Any  # the container as JSON (interpolations as PLACEHOLDER text)
    privileged: list[tuple[str, str, int, int, int]]  # (status, shown, line offset, start byte, end byte)


@dataclass(frozen=True)
class JsonList:
    containers: list[JsonContainer]
    problem: str  # why the list cannot be read ("" when it can)
    problem_at: int  # byte offset the problem is at (-1: the whole value)


def chars_of_text(text: str, start: int = 0) -> Chars:
    """The characters of a file's text with their byte offsets."""
    out: Chars = []
    position = start
    for char in text:
        out.append((char, position))
        position += len(char.encode("utf-8"))
    return out


def json_string_chars(data: bytes, start: int, end: int) -> Chars | None:
    """The characters of the JSON string literal at data[start:end] (its quotes included), escapes decoded, each
    with the byte it came from; None if it is not one."""
    raw = data[start:end].decode("utf-8", "replace")
    if len(raw) < 2 or raw[0] != '"' or raw[-1] != '"':
        return None
    out: Chars = []
    text = raw[1:-1]
    position, index = start + 1, 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            if following in _JSON_ESCAPES:
                out.append((_JSON_ESCAPES[following], position))
                index, position = index + 2, position + 2
                continue
            code = text[index + 2 : index + 6]
            if following == "u" and len(code) == 4:
                try:
                    out.append((chr(int(code, 16)), position))
                except ValueError:
                    return None
                index, position = index + 6, position + 6
                continue
            return None
        out.append((char, position))
        index, position = index + 1, position + len(char.encode("utf-8"))
    return out


def containers(chars: Chars, data: bytes) -> JsonList:
    """The containers of a JSON array of container definitions, and where each `privileged` value is."""
    text = "".join(PLACEHOLDER if offset < 0 else char for char, offset in chars)
    offsets = [offset for _, offset in chars]
    try:
        value = json.loads(text)
        document = yt.parse(text)
    except (ValueError, RecursionError, yt.DocumentError) as error:
        if PLACEHOLDER in text:
            return JsonList([], "an interpolation decides the JSON's structure", -1)
        message = error.msg if isinstance(error, json.JSONDecodeError) else "JSON nested too deeply"
        where = offsets[error.pos] if isinstance(error, json.JSONDecodeError) and error.pos < len(offsets) else -1
        return JsonList([], f"not JSON ({message})", where)
    root = document.root
    if not isinstance(value, list) or not isinstance(root, yt.Sequence):
        return JsonList([], "not a JSON array of container definitions", -1)
    found = []
    for index, (item, node) in enumerate(zip(value, root.items, strict=True)):
        name = item.get("name") if isinstance(item, dict) else None
        shown = name if isinstance(name, str) and name and PLACEHOLDER not in name else f"#{index}"
        found.append(JsonContainer(shown, item, list(_privileged(node, offsets, data))))
    return JsonList(found, "", -1)


def _privileged(node: yt.Node, offsets: list[int], data: bytes) -> Iterator[tuple[str, str, int, int, int]]:
    if not isinstance(node, yt.Mapping):
        yield "unresolved", "(not an object)", offsets[node.start], -1, -1
        return
    for key, value in node.pairs:
        name = yt.scalar_text(key) or ""
        if PLACEHOLDER in name:
            yield "unresolved", "a key given by an interpolation: it may be privileged", offsets[key.start], -1, -1
        elif name != "privileged":
            continue
        elif not isinstance(value, yt.Scalar):
            yield "unresolved", "not a Boolean", offsets[value.start], -1, -1
        elif value.style is None and value.value in ("false", "null"):
            continue
        elif value.style is None and value.value == "true":
            start, end = offsets[value.start], offsets[value.end - 1] + 1
            exact = all(offsets[i] == start + (i - value.start) for i in range(value.start, value.end))
            if exact and data[start:end] == b"true":
                yield "privileged", "true", start, start, end
            else:
                yield "unresolved", "written in a form this tool does not rewrite", start, -1, -1
        elif PLACEHOLDER in value.value:
            yield "unresolved", "given by an interpolation", offsets[value.start], -1, -1
        else:
            yield "unresolved", "not a Boolean", offsets[value.start], -1, -1
