"""`ecs-remediate`: the same logic as the function, from a terminal.

ecs-remediate fix [--check] FILE|-    offline: write a non-privileged copy of a task definition
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from .taskdef import TaskDefinitionError, build_fixed_copy, default_register_model, parse_document

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input or arguments: one line on stderr, exit 2, nothing on stdout."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 on usage errors too; keep its message short
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ecs-remediate", description="Find and fix privileged containers in ECS task definitions.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    fix = commands.add_parser(
        "fix",
        help="write a non-privileged copy of a task definition (offline)",
        description="Reads a DescribeTaskDefinition response, a task definition (console export, "
        "--cli-input-json) or a containerDefinitions array; writes the fixed document to stdout and one "
        "line per changed container to stderr.",
    )
    fix.add_argument("file", metavar="FILE", help="JSON file, or - for standard input")
    fix.add_argument("--check", action="store_true", help="write nothing; exit 1 if a container is privileged")
    fix.set_defaults(run=run_fix)
    return parser


def run_fix(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    raw = _read_json(args.file)
    try:
        document = parse_document(raw)
        fix = build_fixed_copy(document, default_register_model())
    except TaskDefinitionError as error:
        where = f" (field: {error.field})" if error.field else ""
        raise UsageError(f"{args.file}: {_one_line(str(error))}{where}") from None
    for name in fix.privileged:
        print(f"container {name!r}: privileged true -> false", file=stderr)
    if args.check:
        return EXIT_FINDINGS if fix.privileged else EXIT_OK
    if not fix.privileged:
        print("no privileged container: the copy is unchanged", file=stderr)
    output: Any = fix.register_input
    if document.kind == "container-definitions":
        output = fix.register_input["containerDefinitions"]
    json.dump(output, stdout, indent=2, ensure_ascii=False)
    stdout.write("\n")
    return EXIT_OK


def _read_json(path: str) -> Any:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not JSON ({error.msg} at line {error.lineno} column {error.colno})") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        code: int = args.run(args, stdout, stderr)
    except UsageError as error:
        print(f"error: {error}", file=stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. piped into `head`: the reader left, not an error of ours
        return EXIT_OK
    return code


if __name__ == "__main__":
    sys.exit(main())
