"""ruamel.yaml (the CLI's template reader), tree-sitter with its HCL grammar and python-hcl2 (its Terraform reader
and the second parser that checks a fix) must stay out of the function: not in requirements.txt (what the asset
ships), and not imported by any module the function loads (found by reading every import statement of the package,
the ones inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

from infra.bundling import LAMBDA_SOURCE, PACKAGE, REQUIREMENTS

PACKAGE_DIR = LAMBDA_SOURCE / PACKAGE
CLI_ONLY = {
    "cli",
    "cli_aws",
    "cli_entry",
    "cli_interrupt",
    "cli_scan",
    "cli_table",
    "cli_fix",
    "cli_exempt",
    "cli_exempt_migrate",
    "cli_exempt_registry",
    "cli_inventory",
    "cli_verify",
    "verify_canary",
    "verify_rows",
    "verify_stack",
    "__main__",
    "iac_cli",
    "templates",
    "template_report",
    "template_sources",
    "template_values",
    "templates_host",
    "yaml_tree",
    "terraform",
    "terraform_cli",
    "terraform_eval",
    "terraform_json",
    "terraform_source",
    "terraform_tfjson",
    "terraform_verify",
    "hcl_tree",
}
CLI_PACKAGES = {"ruamel", "tree_sitter", "tree_sitter_hcl", "hcl2"}
TEMPLATE_READERS = {"iac_cli", "templates", "template_report", "template_sources", "template_values", "yaml_tree"}
TEMPLATE_READERS |= {"terraform_cli", "terraform_source", "terraform_tfjson", "terraform_verify", "hcl_tree"}
ENTRY_POINTS = {"handler"}  # what the Lambda function imports (ecs_remediate.handler.lambda_handler, .sweep_handler)


def imports_of(module: str) -> set[str]:
    """Names imported by a module of the package: sibling modules as bare names, others as top-level packages."""
    tree = ast.parse((PACKAGE_DIR / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from .x import y
                found |= {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
            elif node.module:
                found.add(
                    node.module.split(".")[0] if not node.module.startswith(PACKAGE) else node.module.split(".")[1]
                )
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
    return found


def reachable(start: set[str]) -> set[str]:
    modules = {path.stem for path in PACKAGE_DIR.glob("*.py")}
    seen: set[str] = set()
    pending = list(start)
    while pending:
        module = pending.pop()
        if module in seen or module not in modules:
            continue
        seen.add(module)
        pending.extend(imports_of(module))
    return seen


def test_the_function_never_loads_a_cli_only_module_or_ruamel() -> None:
    loaded = reachable(ENTRY_POINTS)
    assert "remediate" in loaded and "sweep" in loaded  # the walk does follow the package's imports
    assert loaded.isdisjoint(CLI_ONLY), loaded & CLI_ONLY
    for module in loaded:
        assert imports_of(module).isdisjoint(CLI_PACKAGES), module


def test_only_the_yaml_tree_imports_ruamel_and_the_cli_loads_it_lazily() -> None:
    users = {path.stem for path in PACKAGE_DIR.glob("*.py") if "ruamel" in imports_of(path.stem)}
    assert users == {"yaml_tree"}
    hcl_users = {path.stem for path in PACKAGE_DIR.glob("*.py") if imports_of(path.stem) & {"tree_sitter", "hcl2"}}
    assert hcl_users == {"hcl_tree", "terraform_verify"}
    for module, known in (("cli", "cli_scan"), ("cli_scan", "sweep"), ("cli_fix", "taskdef")):
        top_level = ast.parse((PACKAGE_DIR / f"{module}.py").read_text()).body
        imported_at_start = {
            alias.name for node in top_level if isinstance(node, ast.ImportFrom) for alias in node.names
        } | {node.module for node in top_level if isinstance(node, ast.ImportFrom) and node.module}
        assert known in imported_at_start  # the check reads the right statements
        assert imported_at_start.isdisjoint(TEMPLATE_READERS), module
    assert {"iac_cli", "terraform_cli"} <= imports_of("cli_fix")  # imported, but inside functions (`fix` only)


def test_ruamel_is_a_cli_dependency_not_a_function_dependency() -> None:
    runtime = REQUIREMENTS.read_text().lower()
    pins = ["ruamel.yaml==0.19.1", "tree-sitter==0.26.1", "tree-sitter-hcl==1.2.0", "python-hcl2==8.1.4"]
    for pin in pins:
        assert pin.split("==")[0] not in runtime
    dev = (Path(REQUIREMENTS).parent / "requirements-dev.txt").read_text().lower().splitlines()
    assert set(pins) <= set(dev)
    project = (Path(REQUIREMENTS).parent / "pyproject.toml").read_text()
    assert all(f'"{pin}"' in project for pin in pins)
