"""Every emulator says where it may differ from AWS: its module docstring ends with a paragraph that begins
"Where it may differ from AWS:" and lists at least one difference (emulators/__init__.py, the package's map, names
every module)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

EMULATORS = ROOT / "emulators"
MODULES = sorted(p for p in EMULATORS.glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_the_docstring_ends_with_where_it_may_differ_from_aws(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    last = docstring.strip().split("\n\n")[-1]
    assert last.startswith("Where it may differ from AWS:"), f"{path.name}: the last paragraph is {last[:80]!r}"
    assert "\n- " in last, f"{path.name}: no difference listed"


def test_the_package_map_names_every_module() -> None:
    docstring = ast.get_docstring(ast.parse((EMULATORS / "__init__.py").read_text(encoding="utf-8"))) or ""
    listed = {line.split()[0] for line in docstring.splitlines() if line.split() and line.split()[0].endswith(".py")}
    assert listed == {p.name for p in MODULES}
