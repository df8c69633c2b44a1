"""The check before a fixed Terraform file is written: read it again, with tree-sitter and with a second parser.

CLI only. tree-sitter (through terraform_source) must find nothing privileged left and the same unresolved
findings; python-hcl2, an independent HCL parser (lark), must read the original and the fixed file, and the two
readings may differ only where a `privileged` value went from true to false, once per change made. JSON files
(read with file(), and `.tf.json`) are compared the same way with the json module.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import terraform_source as ts

_BOOLEAN = re.compile(r"\b(true|false)\b")
_PRIVILEGED_BEFORE = re.compile(r"privileged[\\\"'\s]*[=:][\\\"'\s]*$", re.IGNORECASE)


class VerifyError(ValueError):
    """The fixed files do not read back as intended; nothing is written."""


def fixed_module(module: ts.Module, changed: dict[str, bytes], again: ts.Module) -> None:
    """`again` is the module read anew with the fixed bytes."""
    for path, data in changed.items():
        expected = sum(1 for edit in set(module.edits) if edit.path == path)
        flips = _flips_hcl(module.files[path], data, path) if _is_hcl(path) else _flips_json(module.files[path], data)
        if flips != expected:
            raise VerifyError(f"{path}: the fixed file differs from the original in more than its privileged values")
    if again.privileged or len(again.unresolved) != len(module.unresolved):
        raise VerifyError("the fixed files still have privileged containers; nothing written")


def _is_hcl(path: str) -> bool:
    return path.endswith(".tf") and not path.endswith(".tf.json")


def _flips_hcl(original: bytes, fixed: bytes, path: str) -> int:
    import hcl2  # noqa: PLC0415 - python-hcl2, a CLI dependency loaded only to check a fix

    try:
        before = hcl2.loads(original.decode("utf-8"))
        after = hcl2.loads(fixed.decode("utf-8"))
    except Exception as error:  # noqa: BLE001 - python-hcl2 raises lark's errors and others; any is a refusal
        raise VerifyError(f"{path}: python-hcl2 cannot read it ({type(error).__name__}); nothing written") from None
    return _flips(before, after)


def _flips_json(original: bytes, fixed: bytes) -> int:
    try:
        return _flips(json.loads(original), json.loads(fixed))
    except (ValueError, RecursionError):
        raise VerifyError("a fixed JSON file is not JSON; nothing written") from None


def _flips(before: Any, after: Any) -> int:
    """How many privileged true -> false changes turn `before` into `after`; VerifyError for any other change."""
    if isinstance(before, dict) and isinstance(after, dict) and list(before) == list(after):
        return sum(_flips(before[key], after[key]) for key in before)
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return sum(_flips(a, b) for a, b in zip(before, after, strict=True))
    if before is True and after is False:
        return 1
    if isinstance(before, str) and isinstance(after, str):
        return _string_flips(before, after)
    if type(before) is type(after) and before == after:
        return 0
    raise VerifyError("the fixed file differs from the original in more than its privileged values")


def _string_flips(before: str, after: str) -> int:
    """Strings (hcl2 gives expressions as text, `.tf.json` holds JSON in strings) may differ only in Booleans
    that follow a `privileged` key, each true -> false."""
    if before == after:
        return 0
    if before.strip('"') == "true" and after.strip('"') == "false":
        return 1  # the string "true", which Terraform converts to the Boolean
    parts_before, parts_after = _BOOLEAN.split(before), _BOOLEAN.split(after)
    if len(parts_before) != len(parts_after):
        raise VerifyError("the fixed file differs from the original in more than its privileged values")
    flips = 0
    for index, (a, b) in enumerate(zip(parts_before, parts_after, strict=True)):
        if a == b:
            continue
        prefix = "".join(parts_before[:index])
        if index % 2 == 1 and (a, b) == ("true", "false") and _PRIVILEGED_BEFORE.search(prefix[-40:]):
            flips += 1
            continue
        raise VerifyError("the fixed file differs from the original in more than its privileged values")
    return flips
