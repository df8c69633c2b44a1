"""`ecs-remediate fix [--check] FILE|-`: offline, a non-privileged copy of a (daemon) task definition; CloudFormation
templates and Terraform plans go to iac_cli."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from ..core.hostroot import host_lines
from ..core.taskdef import TaskDefinitionError, build_fixed_copy, model_for, parse_document
from .common import EXIT_FINDINGS, EXIT_OK, UsageError, one_line


def run_fix(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if _is_terraform(args.file):
        return _run_terraform(args, stdout, stderr)
    if getattr(args, "write", False):
        raise UsageError("--write is for Terraform files and directories; other fixes are written to stdout")
    text = _read_text(args.file)
    try:
        raw = _parse_json(args.file, text)
    except UsageError:
        # Not JSON: maybe a CloudFormation template in YAML; otherwise the JSON error stands.
        if (code := _run_iac(args, text, None, stdout, stderr)) is not None:
            return code
        raise
    if (code := _run_iac(args, text, raw, stdout, stderr)) is not None:
        return code
    try:
        document = parse_document(raw)
        fix = build_fixed_copy(document, model_for(document))
    except TaskDefinitionError as error:
        where = f" (field: {error.field})" if error.field else ""
        raise UsageError(f"{args.file}: {one_line(str(error))}{where}") from None
    except RecursionError:  # hostile input: JSON nested hundreds of levels deep
        raise UsageError(f"{args.file}: nested too deeply to be a task definition") from None
    for name in fix.privileged:
        print(f"container {name!r}: privileged true -> false", file=stderr)
    for line in host_lines(fix.register_input, bare_containers=document.kind == "container-definitions"):
        print(line, file=stderr)
    if args.check:
        return EXIT_FINDINGS if fix.privileged else EXIT_OK
    if not fix.privileged:
        print("no privileged container: the copy is unchanged", file=stderr)
    if document.is_daemon:
        print("daemon task definition: register the copy with aws ecs register-daemon-task-definition", file=stderr)
        if document.kind == "daemon-describe-response" and document.tags is None:
            print(
                "note: DescribeDaemonTaskDefinition returns no tags; add them from list-tags-for-resource", file=stderr
            )
    output: Any = fix.register_input
    if document.kind == "container-definitions":
        output = fix.register_input["containerDefinitions"]
    json.dump(output, stdout, indent=2, ensure_ascii=False)
    stdout.write("\n")
    return EXIT_OK


def _run_iac(args: argparse.Namespace, text: str, raw: Any, stdout: TextIO, stderr: TextIO) -> int | None:
    """CloudFormation templates and Terraform plans (iac_cli); None for anything else."""
    from ..iac import cli as iac_cli  # noqa: PLC0415 - only `fix` needs it

    try:
        return iac_cli.run(args.file, text, raw, check=args.check, stdout=stdout, stderr=stderr)
    except iac_cli.IacUsageError as error:
        raise UsageError(one_line(str(error))) from None


def _is_terraform(path: str) -> bool:
    return path.endswith((".tf", ".tf.json")) or (path != "-" and os.path.isdir(path))


def _run_terraform(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    try:
        from ..iac import terraform_cli  # noqa: PLC0415 - tree-sitter: a CLI dependency, loaded when needed
    except ImportError:
        raise UsageError(
            f"{args.file}: reading Terraform needs tree-sitter, tree-sitter-hcl and python-hcl2 (pip install them)"
        ) from None
    try:
        return terraform_cli.run(
            args.file, check=args.check, write=getattr(args, "write", False), stdout=stdout, stderr=stderr
        )
    except terraform_cli.TerraformUsageError as error:
        raise UsageError(one_line(str(error))) from None


def _read_text(path: str) -> str:
    """The input as written (line endings kept: a template is changed byte for byte)."""
    try:
        if path == "-":
            buffer = getattr(sys.stdin, "buffer", None)
            return buffer.read().decode("utf-8") if buffer is not None else sys.stdin.read()
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None


def _parse_json(path: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    except RecursionError:
        raise UsageError(f"{path}: JSON nested too deeply") from None
