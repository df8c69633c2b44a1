"""`ecs-remediate fix` on daemon task definitions: the console script as a user runs it (exit codes 0/1/2 as for
task definitions), writing a RegisterDaemonTaskDefinition input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.validate import ParamValidator
from daemon_strategies import DAEMON_MODEL, daemon_documents
from hypothesis import given, settings
from strategies import FUZZ, collect_secrets, leaked_secrets, mutated, scaled

from conftest import ROOT, SHARED_FIXTURES, load_json
from ecs_remediate.cli import main as cli
from ecs_remediate.core.taskdef import model_for, parse_document, privileged_containers

SCRIPT = Path(sys.executable).parent / "ecs-remediate"
SENSOR = SHARED_FIXTURES / "daemons" / "crafted__security-sensor_privileged_register-input.json"
LOG_ROUTER = SHARED_FIXTURES / "daemons" / "crafted__log-router_compliant_describe-response.json"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_fix_writes_a_register_daemon_task_definition_input() -> None:
    done = run("fix", str(SENSOR))
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    DAEMON_MODEL.validate(output)
    source = load_json(SENSOR)
    for container in source["containerDefinitions"]:
        container["privileged"] = False
    assert output == source  # every member and tag kept; privileged false
    lines = done.stderr.splitlines()
    assert lines[:2] == [
        "container 'init-container': privileged true -> false",
        "container 'sensor': privileged true -> false",
    ]
    # what the fixed copy still reaches on the host, with its level and why (core/hostroot.py)
    assert [line.split("; why: ", 1)[0] for line in lines[2:7]] == [
        "still host-equivalent: init-container: host path /opt",
        "still host-equivalent: sensor: capability SYS_PTRACE",
        "host access: task: pidMode shared",
        "host access: task: ipcMode shared",
        "host access: sensor: host path /opt (read-only)",
    ]
    assert lines[7:] == [
        "removing privileged changes none of the above; why each counts: docs/host-equivalents.md",
        "daemon task definition: register the copy with aws ecs register-daemon-task-definition",
    ]


def test_a_describe_response_gives_the_input_and_says_tags_are_not_in_it() -> None:
    done = run("fix", str(LOG_ROUTER))
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    DAEMON_MODEL.validate(output)
    assert not set(output) & DAEMON_MODEL.output_only_members
    assert "returns no tags" in done.stderr


@pytest.mark.parametrize(("path", "expected"), [(SENSOR, 1), (LOG_ROUTER, 0)], ids=["privileged", "compliant"])
def test_check_exit_codes(path: Path, expected: int) -> None:
    done = run("fix", "--check", str(path))
    assert (done.returncode, done.stdout) == (expected, "")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"family": "f", "pidMode": "shared", "containerDefinitions": [{"name": "a", "image": "x", "links": []}]},
            "(field: containerDefinitions[0].links)",
        ),
        (
            {"family": "f", "pidMode": "shared", "networkMode": "host", "containerDefinitions": []},
            "unknown daemon task definition field 'networkMode'",
        ),
        ({"daemonTaskDefinition": {"containerDefinitions": [{"image": "x"}]}}, "(field: family)"),
    ],
)
def test_bad_daemon_documents_exit_2_with_one_line_naming_the_field(document: Any, message: str) -> None:
    done = run("fix", "-", stdin=json.dumps(document))
    assert (done.returncode, done.stdout) == (2, "")
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr


def fix_in_process(document: Any) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(json.dumps(document, ensure_ascii=False))
    try:
        code = cli.main(["fix", "-"], stdout=stdout, stderr=stderr)
    finally:
        sys.stdin = old
    return code, stdout.getvalue(), stderr.getvalue()


@settings(FUZZ, max_examples=scaled(400))
@given(case=daemon_documents().flatmap(lambda case: mutated(case[1])))
def test_fix_never_raises_on_hostile_daemon_documents(case: Any) -> None:
    document, _ = case
    code, out, err = fix_in_process(document)
    assert leaked_secrets([err], collect_secrets(document)) == []
    if code == cli.EXIT_USAGE:
        assert out == "" and err.startswith("error: ") and err.count("\n") == 1
        return
    assert code == cli.EXIT_OK
    fixed = json.loads(out)
    containers = fixed if isinstance(fixed, list) else fixed["containerDefinitions"]
    assert privileged_containers({"containerDefinitions": containers}) == []
    if isinstance(fixed, dict) and "family" in fixed:
        model = model_for(parse_document(document))
        assert not ParamValidator().validate(fixed, model.input_shape).has_errors()
