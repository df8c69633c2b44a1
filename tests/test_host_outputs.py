"""Issue 21 (host-root equivalents wherever a verdict is shown) and issue 19's one verdict model: a compliant revision
that keeps SYS_ADMIN, the host's / and pidMode host is never a bare PASS. Through the real CLI on a moto server:
`scan` as a table, CSV, JSON, OCSF and ASFF; `fix` on a task definition and on a CloudFormation template, whose
stderr names what the fixed definition still has. (The HTML report in headless Chromium: test_report_browser.py;
Security Hub through the handlers: test_securityhub_handlers.py.)"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT
from demo.sandbox import Sandbox
from ecs_remediate.cli.main import main

SCRIPT = Path(sys.executable).parent / "ecs-remediate"
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]
EQUIVALENTS = ["app: capability SYS_ADMIN", "app: host path / (read-only)"]
ACCESS = ["task: pidMode host"]
SECRET = "SECRET-0badc0ffee0ddf00"


def host_root(family: str = "agent", privileged: bool = False) -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "vendor/agent:1",
        "memory": 64,
        "privileged": privileged,
        "linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}},
        "mountPoints": [{"sourceVolume": "root", "containerPath": "/host", "readOnly": True}],
        "environment": [{"name": "TOKEN", "value": SECRET}],
    }
    volumes = [{"name": "root", "host": {"sourcePath": "/"}}]
    return {"family": family, "pidMode": "host", "volumes": volumes, "containerDefinitions": [container]}


@pytest.fixture
def box(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for name, value in sandbox.env(MODE="report").items():
        monkeypatch.setenv(name, value)
    sandbox.register(host_root())  # agent:1, compliant
    sandbox.register({"family": "plain", "containerDefinitions": [{"name": "a", "image": "x", "memory": 8}]})
    return sandbox


def scan(output: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", "--scope", "active", "--output", output, *FAST], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_the_table_shows_the_host_access_of_a_compliant_revision(box: Sandbox) -> None:
    code, out, err = scan("table")
    assert code == 0, err  # nothing privileged: ECS.4 has nothing left
    header, *lines = out.splitlines()
    assert "HOST ACCESS" in header
    [agent] = [line for line in lines if "agent:1" in line]
    assert agent.startswith("PASS")
    assert "still host-equivalent: app: capability SYS_ADMIN, app: host path / (read-only); host access: " in agent
    assert "task: pidMode host" in agent
    [plain] = [line for line in lines if "plain:1" in line]
    assert "host-equivalent" not in plain and "host access" not in plain  # nothing to name: "-"
    assert "1 revision(s) still host-equivalent without privileged" in err  # the summary line on stderr
    assert SECRET not in out + err


def test_json_and_csv_carry_both_levels(box: Sandbox) -> None:
    _, out, _ = scan("json")
    [agent] = [row for row in json.loads(out) if row["taskDefinitionArn"].endswith("agent:1")]
    assert (agent["status"], agent["hostEquivalents"], agent["hostAccess"]) == ("PASS", EQUIVALENTS, ACCESS)
    _, out, _ = scan("csv")
    [row] = [r for r in csv.DictReader(io.StringIO(out)) if r["taskDefinitionArn"].endswith("agent:1")]
    assert row["hostEquivalents"].split(";") == EQUIVALENTS and row["hostAccess"] == ACCESS[0]
    assert SECRET not in out


def test_ocsf_and_asff_carry_both_levels_and_never_say_nothing_is_left(box: Sandbox) -> None:
    _, out, _ = scan("ocsf")
    [event] = [e for e in json.loads(out) if e["resources"][0]["name"] == "agent:1"]
    mine = event["unmapped"]["ecs_remediate"]
    assert (mine["host_equivalents"], mine["host_access"]) == (EQUIVALENTS, ACCESS)
    assert event["severity"] == "Medium" and event["status_code"] == "PASS"
    assert "still host-equivalent" in event["message"] and "Nothing left to do" not in event["remediation"]["desc"]
    _, out, _ = scan("asff")
    [finding] = [f for f in json.loads(out) if f["Id"].endswith("/agent:1")]
    assert finding["ProductFields"]["ecs-remediate/HostEquivalents"].splitlines() == EQUIVALENTS
    assert finding["ProductFields"]["ecs-remediate/HostAccess"] == ACCESS[0]
    assert finding["Severity"]["Label"] == "MEDIUM"
    assert finding["Remediation"]["Recommendation"]["Text"].startswith("Review the host access it keeps")
    assert SECRET not in out


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60)


def host_lines(stderr: str) -> list[str]:
    return [line.split("; why: ", 1)[0] for line in stderr.splitlines() if "; why: " in line]


@pytest.mark.parametrize("check", [False, True], ids=["fix", "check"])
def test_fix_names_what_the_fixed_definition_still_has(tmp_path: Path, check: bool) -> None:
    path = tmp_path / "td.json"
    path.write_text(json.dumps(host_root(privileged=True)))
    done = run("fix", *(["--check"] if check else []), str(path))
    assert done.returncode == (1 if check else 0), done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "container 'app': privileged true -> false"
    assert host_lines(done.stderr) == [
        "still host-equivalent: app: capability SYS_ADMIN",
        "still host-equivalent: app: host path / (read-only)",
        "host access: task: pidMode host",
    ]
    assert "removing privileged changes none of the above" in done.stderr
    assert SECRET not in done.stderr


def test_fix_of_a_compliant_definition_names_it_too(tmp_path: Path) -> None:
    path = tmp_path / "td.json"
    path.write_text(json.dumps(host_root(privileged=False)))
    done = run("fix", str(path))
    assert done.returncode == 0
    assert "no privileged container: the copy is unchanged" in done.stderr
    assert host_lines(done.stderr)[0] == "still host-equivalent: app: capability SYS_ADMIN"


def test_fix_of_a_container_list_says_its_volumes_are_not_known(tmp_path: Path) -> None:
    path = tmp_path / "containers.json"
    path.write_text(json.dumps(host_root(privileged=True)["containerDefinitions"]))
    done = run("fix", str(path))
    assert done.returncode == 0
    assert host_lines(done.stderr) == ["still host-equivalent: app: capability SYS_ADMIN"]
    assert "names no volumes" in done.stderr


TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  HostPath: {Type: String, Default: /}
Resources:
  Agent:
    Type: AWS::ECS::TaskDefinition
    Properties:
      PidMode: host
      Volumes:
        - Name: root
          Host: {SourcePath: /}
        - Name: disk
          DockerVolumeConfiguration:
            Driver: local
            DriverOpts: {type: ext4, device: /dev/xvda1}
      ContainerDefinitions:
        - Name: app
          Image: vendor/agent:1
          Privileged: true
          LinuxParameters:
            Capabilities: {Add: [SYS_ADMIN]}
          MountPoints:
            - {SourceVolume: root, ContainerPath: /host, ReadOnly: 'true'}
            - {SourceVolume: disk, ContainerPath: /disk}
  Hidden:
    Type: AWS::ECS::TaskDefinition
    Properties:
      Volumes:
        - Name: v
          Host: {SourcePath: !Ref HostPath}
      ContainerDefinitions:
        - Name: web
          Image: nginx
          MountPoints: [{SourceVolume: v, ContainerPath: /v}]
"""


@pytest.mark.parametrize("check", [False, True], ids=["fix", "check"])
def test_fix_of_a_template_names_what_each_task_definition_still_has(tmp_path: Path, check: bool) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(TEMPLATE)
    done = run("fix", *(["--check"] if check else []), str(path))
    assert done.returncode == (1 if check else 0), done.stderr
    assert host_lines(done.stderr) == [
        f"{path}:8: Agent: still host-equivalent: app: capability SYS_ADMIN",
        f"{path}:8: Agent: still host-equivalent: app: host path / (read-only)",
        f"{path}:8: Agent: still host-equivalent: app: docker volume disk: ext4 /dev/xvda1",
        f"{path}:8: Agent: host access: task: pidMode host",
    ]
    # a host path given by a parameter is not guessed: said, not named and not left out silently
    assert f"{path}:28: Hidden: a member that can reach the host is given by a function or a parameter" in done.stderr


def test_the_organization_report_rows_carry_both_levels() -> None:
    from ecs_remediate.organization.sweep_item import row
    from ecs_remediate.organization.sweep_items import parse_item
    from ecs_remediate.organization.sweep_summary import to_csv
    from ecs_remediate.sweep.report import Finding

    item = parse_item({"account": "111122223333", "region": "us-east-1", "run": "r1"})
    arn = "arn:aws:ecs:us-east-1:111122223333:task-definition/agent:1"
    finding = Finding(arn, "PASS", host_equivalents=list(EQUIVALENTS), host_access=list(ACCESS))
    compact = row(finding, item)
    assert (compact["hostEquivalents"], compact["hostAccess"]) == (EQUIVALENTS, ACCESS)
    [written] = csv.DictReader(io.StringIO(to_csv([compact])))
    assert written["hostEquivalents"] == ";".join(EQUIVALENTS) and written["hostAccess"] == ACCESS[0]


def test_a_long_subject_cuts_the_names_never_the_host_access() -> None:
    from ecs_remediate.core.notice import subject
    from ecs_remediate.core.outcomes import REMEDIATED, Result
    from ecs_remediate.daemons.notice import daemon_subject

    names = [f"container-with-a-long-name-{i}" for i in range(10)]
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/" + "f" * 200 + ":1"
    for equivalents, access, suffix in (
        (EQUIVALENTS, ACCESS, "; still host-equivalent"),
        ([], ACCESS, "; keeps host access"),
    ):
        result = Result(REMEDIATED, arn, "f" * 200, 1, names, arn[:-1] + "2")
        result.host_equivalents, result.host_access = list(equivalents), list(access)
        for text in (subject(result), daemon_subject(result)):
            assert len(text) <= 99 and text.endswith("..." + suffix), text
    plain = Result(REMEDIATED, arn, "web", 1, ["app"], arn[:-1] + "2")
    assert subject(plain) == "[ECS.4] web:1 -> :2 privileged removed (app)"  # nothing kept: nothing added
