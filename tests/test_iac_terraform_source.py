"""`ecs-remediate fix [--check] [--write]` on Terraform files and modules (issue 22): byte for byte, only the
privileged tokens change; every fixed `.tf` file is read again by python-hcl2, a second HCL parser; what cannot be
evaluated is unresolved (exit 1) and left alone; hostile files get one line and exit 2."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import hcl2
import pytest

from conftest import ROOT, SHARED_FIXTURES
from ecs_remediate.cli import main as cli

SCRIPT = Path(sys.executable).parent / "ecs-remediate"
CHECK_PAGE = SHARED_FIXTURES / "terraform" / "check-page-example-privileged.tf"
COMPLIANT = SHARED_FIXTURES / "terraform" / "check-page-example.tf"
BOOLEAN = re.compile(rb"\b(true|false)\b")


def fix(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = cli.main(["fix", *args], stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def only_privileged_changed(before: bytes, after: bytes) -> int:
    """How many `privileged` values went true -> false; fails on any other difference (an independent check of
    the rewrite: the files split at every Boolean token must match everywhere else)."""
    old, new = BOOLEAN.split(before), BOOLEAN.split(after)
    assert len(old) == len(new)
    changed = 0
    for index, (a, b) in enumerate(zip(old, new, strict=True)):
        if a == b:
            continue
        assert index % 2 == 1 and (a, b) == (b"true", b"false"), (a, b)
        assert re.search(rb"privileged[\\\"'\s]*[=:][\\\"'\s]*$", b"".join(old[:index])[-40:], re.IGNORECASE)
        changed += 1
    return changed


def write(directory: Path, name: str, text: str, newline: str = "\n") -> Path:
    path = directory / name
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def test_the_check_page_example_is_fixed_to_its_compliant_form(tmp_path: Path) -> None:
    code, fixed, report = fix(str(CHECK_PAGE))
    assert code == 0, report
    original = CHECK_PAGE.read_bytes()
    assert only_privileged_changed(original, fixed.encode()) == 1
    # The compliant form on the check page differs only in its header comment and that token.
    compliant = COMPLIANT.read_text().splitlines()
    assert fixed.splitlines()[2:] == compliant[2:]
    assert fixed.splitlines()[32].strip() == "privileged             = false"
    assert f"{CHECK_PAGE}:33: aws_ecs_task_definition.this container 'app': privileged: true -> false" in report
    hcl2.loads(fixed)
    code, listed, _ = fix("--check", str(CHECK_PAGE))
    assert code == 1
    assert listed == f"{CHECK_PAGE}:33: aws_ecs_task_definition.this container 'app': privileged: true\n"
    assert fix("--check", str(COMPLIANT))[:2] == (0, "")


FORMS = """variable "image" { default = "nginx" }

resource "aws_ecs_task_definition" "encoded" {
  family = "encoded"
  container_definitions = jsonencode([
    {
      name       = "app"
      image      = var.image
      privileged = true # the ticket says so
      essential  = true
    },
    { name = "quiet", image = "x", privileged = false },
    { name = "capital", "Privileged" = true },
  ])
}

resource "aws_ecs_task_definition" "quoted" {
  family                = "quoted"
  container_definitions = "[{\\"name\\": \\"q\\", \\"image\\": \\"${var.image}\\", \\"privileged\\": true}]"
}

resource "aws_ecs_task_definition" "heredoc" {
  family                = "heredoc"
  container_definitions = <<-EOT
    [
      {"name": "h", "image": "x", "privileged":    true, "essential": true}
    ]
  EOT
}

resource "aws_ecs_daemon_task_definition" "daemon" {
  family = "daemon"
  container_definition {
    name       = "agent"
    image      = "x"
    privileged = true
  }
  container_definition {
    name       = "converted"
    image      = "x"
    privileged = "true"
  }
}
"""
QUOTED_TRUE = '"true"'
FORM_LINES = {
    ("encoded", "app"): 9,
    ("encoded", "capital"): 13,
    ("quoted", "q"): 19,
    ("heredoc", "h"): 26,
    ("daemon", "agent"): 36,
    ("daemon", "converted"): 41,
}


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_every_form_in_one_file_changes_only_its_privileged_tokens(newline: str, tmp_path: Path) -> None:
    path = write(tmp_path, "main.tf", FORMS, newline)
    code, listed, _ = fix("--check", str(path))
    assert code == 1
    assert sorted(listed.splitlines()) == sorted(
        f"{path}:{line}: aws_ecs_{'daemon_' if resource == 'daemon' else ''}task_definition.{resource} "
        f"container {container!r}: privileged: {QUOTED_TRUE if container == 'converted' else 'true'}"
        for (resource, container), line in FORM_LINES.items()
    )
    code, fixed, report = fix(str(path))
    assert code == 0, report
    after = fixed.encode()
    assert only_privileged_changed(path.read_bytes(), after) == len(FORM_LINES)
    assert b'privileged = "false"' in after
    assert after.count(b"\r\n") == path.read_bytes().count(b"\r\n")  # CRLF kept
    assert b"privileged = false # the ticket says so" in after  # the comment on the changed line kept
    parsed = hcl2.loads(fixed)  # the second parser reads the result
    daemon = parsed["resource"][3]['"aws_ecs_daemon_task_definition"']['"daemon"']
    assert [block["privileged"] for block in daemon["container_definition"]] == [False, '"false"']
    assert fix("--check", str(write(tmp_path, "again.tf", fixed)))[0] == 0


def test_a_json_file_read_with_file_is_fixed_and_named(tmp_path: Path) -> None:
    module = tmp_path / "module"
    module.mkdir()
    write(
        module,
        "main.tf",
        'resource "aws_ecs_task_definition" "t" {\n'
        '  family                = "t"\n'
        '  container_definitions = file("${path.module}/containers/app.json")\n}\n',
    )
    (module / "containers").mkdir()
    original = '[\n\t{"name": "app", "image": "x",\n\t "privileged" : true}\n]'
    json_path = write(module / "containers", "app.json", original, "\r\n")
    code, listed, _ = fix("--check", str(module))
    assert (code, listed) == (1, f"{json_path}:3: aws_ecs_task_definition.t container 'app': privileged: true\n")

    code, diff, report = fix(str(module))
    assert code == 0, report
    assert (
        f"--- {json_path}" in diff
        and '-\t "privileged" : true}\r\n' in diff
        and '+\t "privileged" : false}\r\n' in diff
    )
    assert json_path.read_bytes() == original.replace("\n", "\r\n").encode()  # nothing written without --write

    # The .tf file alone: its text is unchanged, the JSON file's change is named, and not made: exit 1.
    code, text, report = fix(str(module / "main.tf"))
    assert code == 1 and text == (module / "main.tf").read_text()
    assert f"{json_path}: changed by this fix but not written" in report

    code, out, report = fix("--write", str(module))
    assert (code, out) == (0, "")
    assert only_privileged_changed(original.replace("\n", "\r\n").encode(), json_path.read_bytes()) == 1
    assert json.loads(json_path.read_text())[0]["privileged"] is False


def test_several_resources_a_module_directory_and_write(tmp_path: Path) -> None:
    module = tmp_path / "module"
    module.mkdir()
    first = write(module, "a.tf", FORMS)
    second = write(module, "b.tf", CHECK_PAGE.read_text().replace('"this"', '"second"'))
    tf_json = write(
        module,
        "c.tf.json",
        json.dumps(
            {
                "resource": {
                    "aws_ecs_daemon_task_definition": {
                        "j": {"family": "j", "container_definition": [{"name": "j", "image": "x", "privileged": True}]}
                    }
                }
            },
            indent=2,
        ),
    )
    (module / ".terraform").mkdir()
    ignored = write(module / ".terraform", "x.tf", CHECK_PAGE.read_text())
    write(module, "notes.txt", "privileged = true\n")
    before = {path: path.read_bytes() for path in (first, second, tf_json, ignored)}

    code, listed, _ = fix("--check", str(module))
    assert code == 1
    assert {line.split(":")[0] for line in listed.splitlines()} == {str(first), str(second), str(tf_json)}
    assert len(listed.splitlines()) == len(FORM_LINES) + 2

    done = subprocess.run([str(SCRIPT), "fix", str(module)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if line.startswith("--- ")] == [
        f"--- {first}",
        f"--- {second}",
        f"--- {tf_json}",
    ]
    assert {path: path.read_bytes() for path in before} == before  # a diff, nothing written

    code, out, report = fix("--write", str(module))
    assert (code, out) == (0, ""), report
    assert only_privileged_changed(before[first], first.read_bytes()) == len(FORM_LINES)
    assert only_privileged_changed(before[second], second.read_bytes()) == 1
    assert only_privileged_changed(before[tf_json], tf_json.read_bytes()) == 1
    assert ignored.read_bytes() == before[ignored]  # .terraform/ is not the module
    for path in (first, second):
        hcl2.loads(path.read_text())
    assert fix("--check", str(module))[:2] == (0, "")


def test_a_tf_json_file_with_json_in_a_string(tmp_path: Path) -> None:
    encoded = json.dumps([{"name": "web", "image": "x", "privileged": True}])
    document = {"resource": {"aws_ecs_task_definition": {"web": {"family": "web", "container_definitions": encoded}}}}
    path = write(tmp_path, "main.tf.json", json.dumps(document, indent=2))
    code, fixed, report = fix(str(path))
    assert code == 0, report
    assert only_privileged_changed(path.read_bytes(), fixed.encode()) == 1
    after = json.loads(json.loads(fixed)["resource"]["aws_ecs_task_definition"]["web"]["container_definitions"])
    assert after == [{"name": "web", "image": "x", "privileged": False}]
    assert f"{path}:6: aws_ecs_task_definition.web container 'web': privileged: true -> false" in report


UNRESOLVED = {
    "templatefile": ('templatefile("${path.module}/c.tpl", { privileged = true })', "templatefile(): a function"),
    "variable-with-default": ("jsonencode(var.containers)", "variable containers defaults to [{ privileged = true }]"),
    "variable-at-plan-time": ('jsonencode([{ name = "a", privileged = var.late }])', "variable late has no default"),
    "local": ("jsonencode(local.containers)", 'local containers = [{ name = "l", privileged = true }] (main.tf:'),
    "for-expression": ("jsonencode([for n in var.names : { name = n, privileged = true }])", "a for expression"),
    "module-output": ("module.shared.container_definitions", "an output of module shared"),
    "condition": ('jsonencode([{ name = "c", privileged = var.on ? true : false }])', "a condition"),
    "key-by-expression": ('jsonencode([{ name = "k", (var.key) = true }])', "a key given by an expression"),
    "json-interpolated-key": ('"[{\\"${var.key}\\": true}]"', "a key given by an interpolation"),
    "json-structure-by-interpolation": ('"[${var.containers}]"', "an interpolation decides the JSON's structure"),
    "file-of-a-variable": ("file(var.path)", "file() of a path this tool cannot evaluate"),
}
SCOPE = """variable "containers" {
  default = [{ privileged = true }]
}
variable "late" { type = bool }
locals {
  containers = [{ name = "l", privileged = true }]
}
"""


@pytest.mark.parametrize("case", list(UNRESOLVED))
def test_what_cannot_be_evaluated_is_unresolved_and_left_alone(case: str, tmp_path: Path) -> None:
    expression, detail = UNRESOLVED[case]
    text = (
        SCOPE
        + f'resource "aws_ecs_task_definition" "t" {{\n  family = "t"\n  container_definitions = {expression}\n}}\n'
    )
    path = write(tmp_path, "main.tf", text)
    for args in (["--check"], []):
        code, out, err = fix(*args, str(path))
        assert code == 1, err
        report = out if args else err
        [line] = [line for line in report.splitlines() if "unresolved (" in line]
        assert line.startswith(f"{path}:10: aws_ecs_task_definition.t") and detail in line, line
    assert out == text  # fix leaves it as it was


def test_a_dynamic_daemon_container_block_is_unresolved(tmp_path: Path) -> None:
    text = (
        'resource "aws_ecs_daemon_task_definition" "d" {\n  family = "d"\n'
        '  dynamic "container_definition" {\n    for_each = var.agents\n'
        "    content {\n      name       = container_definition.value\n      privileged = true\n    }\n  }\n}\n"
    )
    path = write(tmp_path, "main.tf", text)
    code, out, err = fix(str(path))
    assert (code, out) == (1, text)
    assert f'{path}:3: aws_ecs_daemon_task_definition.d: container_definition: dynamic "container_definition": ' in err


def test_host_access_the_fixed_definition_keeps_is_reported(tmp_path: Path) -> None:
    text = """resource "aws_ecs_task_definition" "t" {
  family       = "t"
  pid_mode     = "host"
  container_definitions = jsonencode([{
    name = "agent", privileged = true,
    linuxParameters = { capabilities = { add = ["SYS_ADMIN"] } },
    mountPoints = [{ sourceVolume = "root", containerPath = "/host" }]
  }])
  volume {
    name      = "root"
    host_path = "/"
  }
}
"""
    path = write(tmp_path, "main.tf", text)
    code, _, err = fix(str(path))
    assert code == 0
    lines = [line.split("; why: ")[0] for line in err.splitlines() if "; why: " in line]  # hostroot's levels
    assert f"{path}:1: aws_ecs_task_definition.t: host access: task: pidMode host" in lines
    assert f"{path}:1: aws_ecs_task_definition.t: still host-equivalent: agent: capability SYS_ADMIN" in lines
    assert f"{path}:1: aws_ecs_task_definition.t: still host-equivalent: agent: host path /" in lines


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'locals { a = "' + b"x" * 10_000_000 + b'" }\n', "larger than 2 MiB; not read"),
        (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested more than 100 levels deep"),
        (b'resource "aws_ecs_task_definition" "t" {\n  container_definitions = jsonencode([\n', "not valid HCL (line"),
        (b"\xff\xfe privileged = true", "not UTF-8"),
    ],
    ids=["10MB", "deep", "invalid", "not-utf8"],
)
def test_hostile_files_exit_2_with_one_line(content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "main.tf"
    path.write_bytes(content)
    for args in (["fix", str(path)], ["fix", "--check", str(path)], ["fix", "--write", str(tmp_path)]):
        done = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
        assert message in done.stderr
    assert path.read_bytes() == content


def test_write_is_refused_for_what_is_not_terraform(tmp_path: Path) -> None:
    path = tmp_path / "td.json"
    shutil.copy(SHARED_FIXTURES / "taskdefs" / "aws-amazon-ecs-agent__privileged.json", path)
    code, out, err = fix("--write", str(path))
    assert (code, out) == (2, "") and "--write is for Terraform files and directories" in err


EVERY_FORM = ROOT / "tests" / "fixtures" / "terraform" / "module-every-form"


def test_the_documented_module_lists_each_form(tmp_path: Path) -> None:
    """docs/iac.md quotes these lines; the module holds one of each form, fixed and unresolved."""
    module = tmp_path / "module"
    shutil.copytree(EVERY_FORM, module)
    code, listed, summary = fix("--check", str(module))
    assert code == 1
    lines = [line.removeprefix(f"{module}/") for line in listed.splitlines()]
    for quoted in (
        "main.tf:23: aws_ecs_task_definition.encoded container 'v': privileged: var.privileged: unresolved "
        "(variable privileged defaults to true; the caller may set another value)",
        'main.tf:55: aws_ecs_task_definition.unreadable: container_definitions: templatefile("${path.module}/c.tpl", '
        "{ p = true }): unresolved (templatefile(): a function Terraform evaluates at plan time)",
        "main.tf:60: aws_ecs_task_definition.local: container_definitions: local.containers: unresolved (local "
        'containers = [{ name = "l", privileged = true }] (main.tf:7): not evaluated)',
        'main.tf:80: aws_ecs_daemon_task_definition.d: container_definition: dynamic "container_definition": '
        "unresolved (a dynamic block: its containers come from for_each at plan time)",
    ):
        assert quoted in lines
    assert f"{module}: 9 privileged, 8 unresolved, in 10 task definition(s)" in summary
    main = module / "main.tf"
    main.chmod(0o640)
    code, out, _ = fix("--write", str(module))
    assert (code, out) == (1, "")  # the unresolved ones are left
    assert main.stat().st_mode & 0o777 == 0o640
    for name in ("main.tf", "other.tf.json", "containers.json"):
        changed = only_privileged_changed((EVERY_FORM / name).read_bytes(), (module / name).read_bytes())
        assert changed == {"main.tf": 6, "other.tf.json": 2, "containers.json": 1}[name]
    hcl2.loads(main.read_text())
    code, listed, _ = fix("--check", str(module))
    assert code == 1 and all("unresolved (" in line for line in listed.splitlines())
