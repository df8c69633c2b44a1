"""`ecs-remediate fix` as a user runs it: the console script in a subprocess, exit codes and streams."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, load_json, local_taskdefs, shared_taskdefs
from ecs_remediate.core.taskdef import default_register_model, privileged_containers

SCRIPT = Path(sys.executable).parent / "ecs-remediate"
MODEL = default_register_model()


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize(
    "path", [p for p in shared_taskdefs() + local_taskdefs() if "INVALID" not in p.name], ids=lambda p: p.name
)
def test_fix_writes_a_registrable_copy(path: Path) -> None:
    source = load_json(path)
    done = run("fix", str(path))
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    if isinstance(source, list):
        assert isinstance(output, list) and len(output) == len(source)
        containers = output
    else:
        MODEL.validate(output)
        containers = output["containerDefinitions"]
    assert not any(c.get("privileged") for c in containers)
    changed = [line for line in done.stderr.splitlines() if "privileged true -> false" in line]
    document = source if isinstance(source, list) else source.get("taskDefinition", source)
    names = privileged_containers({"containerDefinitions": document} if isinstance(document, list) else document)
    assert changed == [f"container {name!r}: privileged true -> false" for name in names]


def test_check_exits_1_on_privileged_and_writes_nothing() -> None:
    done = run("fix", "--check", str(ROOT.parent / "shared/fixtures/taskdefs/aws-amazon-ecs-agent__privileged.json"))
    assert (done.returncode, done.stdout) == (1, "")
    assert "container 'exit': privileged true -> false" in done.stderr


def test_check_exits_0_when_compliant() -> None:
    done = run("fix", "--check", str(ROOT.parent / "shared/fixtures/taskdefs/aws-amazon-ecs-agent__devices.json"))
    assert (done.returncode, done.stdout) == (0, "")


def test_stdin_is_read_with_dash() -> None:
    done = run("fix", "-", stdin=json.dumps([{"name": "a", "image": "x", "privileged": True}]))
    assert done.returncode == 0
    assert json.loads(done.stdout) == [{"name": "a", "image": "x", "privileged": False}]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["fix", "/nonexistent/td.json"], None, "cannot read /nonexistent/td.json: No such file or directory"),
        (["fix", "-"], "{not json", "-: not JSON (Expecting property name enclosed in double quotes"),
        (["fix", "-"], '{"family": "x"}', "not a task definition"),
        (["fix", "-"], '"text"', "expected a JSON object"),
        (
            [
                "fix",
                str(
                    ROOT.parent
                    / "shared/fixtures/taskdefs/aws-amazon-ecs-agent__nginx-awsvpc_INVALID-portBindings.json"
                ),
            ],
            None,
            "(field: containerDefinitions[0].portBindings)",
        ),
        (["fix"], None, "the following arguments are required: FILE"),
        (["frobnicate"], None, "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_stdout(args: list[str], stdin: str | None, message: str) -> None:
    done = run(*args, stdin=stdin)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert message in done.stderr


def test_unreadable_bytes_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "td.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    done = run("fix", str(path))
    assert done.returncode == 2 and done.stdout == "" and "cannot read" in done.stderr
