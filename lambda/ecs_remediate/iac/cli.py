"""`ecs-remediate fix [--check]` on infrastructure code: CloudFormation templates and Terraform plans.

Called by cli.run_fix before it reads the input as ECS JSON; says None when the input is neither, so the
ECS JSON path keeps its behaviour. Reports go to stdout with --check (one line per container, `FILE:LINE:`
first for templates), the fixed template to stdout without it; notes, the host access each task definition
keeps (iac/templates_host.py) and the summary go to stderr.
Exit: 0 nothing left to fix; 1 privileged or unresolved containers remain (--check), or unresolved ones
that `fix` left alone; 2 (a UsageError raised to the caller) for input this cannot read.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, TextIO

from . import terraform_plan as terraform

EXIT_OK, EXIT_FINDINGS = 0, 1
YAML_SUFFIXES = frozenset({".yaml", ".yml", ".template"})


class IacUsageError(ValueError):
    """One line for stderr; the caller exits 2."""


def run(path: str, text: str, data: Any, *, check: bool, stdout: TextIO, stderr: TextIO) -> int | None:
    """Handle `text` if it is a template or a plan; `data` is its JSON value, or None when it is not JSON."""
    if data is not None:
        if terraform.is_plan(data):
            return _plan(path, data, check, stdout, stderr)
        if not _is_template(data):
            return None
    elif not (_might_be_template(text) or PurePath(path).suffix.lower() in YAML_SUFFIXES):
        return None
    return _template(path, text, data, check=check, stdout=stdout, stderr=stderr)


def _is_template(data: Any) -> bool:
    # Mirrors templates._tree_is_template without importing ruamel.yaml for ECS JSON.
    if not isinstance(data, dict):
        return False
    resources = data.get("Resources")
    return (
        "AWSTemplateFormatVersion" in data
        or "Transform" in data
        or (
            isinstance(resources, dict)
            and any(
                (isinstance(r, dict) and isinstance(r.get("Type"), str))
                or key.startswith("Fn::ForEach::")
                or key == "Fn::Transform"
                for key, r in resources.items()
            )
        )
    )


def _might_be_template(text: str) -> bool:
    return "Resources" in text or "AWSTemplateFormatVersion" in text


def _template(path: str, text: str, data: Any, *, check: bool, stdout: TextIO, stderr: TextIO) -> int | None:
    try:
        from . import templates, templates_host, yaml_tree  # noqa: PLC0415 - ruamel.yaml: a CLI dependency
    except ImportError:
        raise IacUsageError(
            f"{path}: reading CloudFormation templates needs ruamel.yaml (pip install ruamel.yaml)"
        ) from None
    try:
        fixed, report = (text, templates.analyse(text)) if check else templates.fix(text)
    except (yaml_tree.DocumentError, templates.TemplateError) as error:
        if data is None and text.lstrip("\ufeff \t\r\n").startswith(("{", "[")):
            return None  # broken JSON: the JSON parser's message (with its line and column) says more
        raise IacUsageError(f"{path}: {error}") from None
    except RecursionError:
        raise IacUsageError(f"{path}: nested too deeply to be a template") from None
    changed = {id(f) for f in report.privileged}
    for finding in report.findings:
        subject = finding.where()
        where = f"{path}:{finding.line}: {subject + ': ' if subject else ''}{finding.key}: {finding.value}"
        if finding.status == templates.UNRESOLVED:
            line = f"{where}: unresolved ({finding.detail})" + ("" if check else ", not changed")
        elif check:
            line = where
        else:
            line = f"{where} -> {finding.fixed_to}"
        print(line, file=stdout if check else stderr)
    for line in templates_host.lines(path, text):  # what each task definition still reaches on the host
        print(line, file=stderr)
    if not check:
        if not changed:
            print(f"{path}: no privileged container to change: the template is unchanged", file=stderr)
        stdout.write(fixed)
    print(
        f"{path}: {len(report.privileged)} privileged, {len(report.unresolved)} unresolved, "
        f"in {report.task_definitions} task definition(s)",
        file=stderr,
    )
    left = report.unresolved if not check else report.findings
    return EXIT_FINDINGS if left else EXIT_OK


def _plan(path: str, data: Any, check: bool, stdout: TextIO, stderr: TextIO) -> int:
    if not check:
        raise IacUsageError(
            f"{path}: a Terraform plan is not a source to fix: run `ecs-remediate fix --check {path}` "
            "and set privileged = false in the configuration where it says"
        )
    report = terraform.check_plan(data)
    for finding in report.findings:
        if finding.status == terraform.PRIVILEGED:
            line = f"{path}: {finding.address}: container {finding.container!r} is privileged; fix: {finding.fix}"
        else:
            line = f"{path}: {finding.address}: container {finding.container!r}: unresolved ({finding.detail})"
        print(line, file=stdout)
    print(
        f"{path}: {len(report.privileged)} privileged, {len(report.unresolved)} unresolved, "
        f"in {report.task_definitions} task definition(s) of the plan",
        file=stderr,
    )
    return EXIT_FINDINGS if report.findings else EXIT_OK
