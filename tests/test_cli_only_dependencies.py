"""What only the CLI needs stays out of the function: its folders (`cli/`, `iac/`) are not in the asset, no function
entry point reaches them, and its libraries (ruamel.yaml, the CLI's template reader; tree-sitter with its HCL grammar
and python-hcl2, its Terraform reader and the second parser that checks a fix) are not in requirements.txt (what the
asset ships) nor imported by anything a function loads. The import graph is grimp's (import-linter's own), the
imports inside functions included; pyproject.toml's contracts state the same for `make lint`."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

from infra.bundling import CLI_ONLY, LAMBDA_SOURCE, PACKAGE, REQUIREMENTS, _source_files

PACKAGE_DIR = LAMBDA_SOURCE / PACKAGE
CLI_PACKAGES = {"ruamel", "tree_sitter", "tree_sitter_hcl", "hcl2"}
CLI_FOLDERS = (f"{PACKAGE}.cli", f"{PACKAGE}.iac", f"{PACKAGE}.__main__")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, include_external_packages=True)


def test_no_function_entry_point_reaches_a_cli_only_module_or_library(graph: grimp.ImportGraph) -> None:
    reached = graph.find_upstream_modules(f"{PACKAGE}.functions", as_package=True)
    assert f"{PACKAGE}.remediation.remediator" in reached and f"{PACKAGE}.sweep.run" in reached  # it follows imports
    assert not {module for module in reached if module.startswith(CLI_FOLDERS)}
    assert reached.isdisjoint(CLI_PACKAGES)


def test_the_asset_holds_no_cli_only_folder() -> None:
    shipped = {path.relative_to(PACKAGE_DIR).parts[0] for path in _source_files()}
    assert {"functions", "core", "remediation"} <= shipped
    assert shipped.isdisjoint(CLI_ONLY)
    assert {"cli", "iac"} <= {path.name for path in PACKAGE_DIR.iterdir()}  # they exist: the asset leaves them out


def test_only_the_readers_import_the_cli_libraries_and_the_cli_loads_them_lazily(graph: grimp.ImportGraph) -> None:
    def importers(library: str) -> set[str]:
        return {module for module in graph.find_modules_that_directly_import(library) if module.startswith(PACKAGE)}

    assert importers("ruamel") == {f"{PACKAGE}.iac.yaml_tree"}
    assert importers("tree_sitter") | importers("hcl2") == {
        f"{PACKAGE}.iac.hcl_tree",
        f"{PACKAGE}.iac.terraform_verify",
    }
    for module, known in (("cli/main.py", "scan"), ("cli/scan.py", "run"), ("cli/fix.py", "taskdef")):
        top_level = ast.parse((PACKAGE_DIR / module).read_text()).body
        imported_at_start = {
            part for node in top_level if isinstance(node, ast.ImportFrom) for part in (node.module or "").split(".")
        } | {alias.name for node in top_level if isinstance(node, ast.ImportFrom) for alias in node.names}
        assert known in imported_at_start  # the check reads the right statements
        assert "iac" not in imported_at_start, module
    fix_imports = graph.find_modules_directly_imported_by(f"{PACKAGE}.cli.fix")
    assert {f"{PACKAGE}.iac.cli", f"{PACKAGE}.iac.terraform_cli"} <= fix_imports  # inside functions (`fix` only)


def test_the_cli_libraries_are_cli_dependencies_not_function_dependencies() -> None:
    runtime = REQUIREMENTS.read_text().lower()
    pins = ["ruamel.yaml==0.19.1", "tree-sitter==0.26.1", "tree-sitter-hcl==1.2.0", "python-hcl2==8.1.4"]
    for pin in pins:
        assert pin.split("==")[0] not in runtime
    dev = (Path(REQUIREMENTS).parent / "requirements-dev.txt").read_text().lower().splitlines()
    assert set(pins) <= set(dev)
    project = (Path(REQUIREMENTS).parent / "pyproject.toml").read_text()
    assert all(f'"{pin}"' in project for pin in pins)
