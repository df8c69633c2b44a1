"""`make demo` end to end: `python -m demo` in a clean environment (no AWS credentials, endpoint or function
configuration), its exit status, what it printed, and that nothing is left running or listening afterwards."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

TIMEOUT = 120  # the budget for `make demo` after install
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/"
FUNCTION_ENV = ("MODE", "TOPIC_ARN", "IDEMPOTENCY_TABLE", "EXEMPT_FAMILIES", "NOTIFY_ON", "ROLLOUT", "RETIRE")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def port(self) -> int:
        match = re.search(r"Started a moto server on http://127\.0\.0\.1:(\d+)", self.stdout)
        assert match, self.stdout
        return int(match[1])

    def section(self, family: str) -> str:
        """What the demo printed for one registration."""
        match = re.search(rf"^-- \d+\. {re.escape(family)}: .*?(?=^-- \d+\. |^\[5/5\])", self.stdout, re.M | re.S)
        assert match, self.stdout
        return match[0]


def clean_env() -> dict[str, str]:
    """The environment of someone who just cloned the repo: no AWS anything (conftest's fakes removed too)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "POWERTOOLS_")) and k not in FUNCTION_ENV and k != "NO_COLOR"
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_demo() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "demo"],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: lets the test see that nothing outlives it
    )


def assert_nothing_left(process: subprocess.Popen[str], port: int) -> None:
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.settimeout(2)
        sock.connect(("127.0.0.1", port))
    deadline = time.monotonic() + 10  # jsii's node process exits once its pipe closes
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("a process of the demo's group was still running after it exited")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def demo() -> Run:
    started = time.monotonic()
    process = start_demo()
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"the demo took more than {TIMEOUT} s:\n{stdout}\n{stderr}")
    run = Run(process.returncode, stdout, stderr, time.monotonic() - started)
    assert_nothing_left(process, run.port)
    return run


def test_demo_succeeds_quietly_and_in_time(demo: Run) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert demo.seconds < TIMEOUT
    assert "Traceback" not in demo.stderr, demo.stderr
    assert "\x1b[" not in demo.stdout  # no colour when stdout is not a terminal
    assert '"_aws"' not in demo.stdout  # no EMF metric records in the story
    assert "OK: 2 of 2 privileged registrations remediated (web-app, ingest-pipeline), " in demo.stdout
    assert "1 compliant left alone (billing-api)." in demo.stdout
    assert demo.stdout.rstrip().splitlines()[-1].startswith("moto server stopped")


def test_demo_uses_the_synthesized_rule(demo: Run) -> None:
    assert "Synthesizing the CDK app in-process" in demo.stdout
    assert '"privileged": [true]' in demo.stdout  # the pattern as read from the template


def test_privileged_web_app_is_remediated(demo: Run) -> None:
    section = demo.section("web-app")
    assert f"registered      {ARN}web-app:1" in section
    assert "EventBridge     MATCHED" in section
    assert "outcome         REMEDIATED" in section
    assert f"new revision    {ARN}web-app:2" in section
    assert "container app (nginx:latest): privileged: true -> false" in section
    assert "everything else identical" in section
    assert "marker tag ecs-remediate:source-revision=web-app:1" in section
    assert "own event       not matched" in section
    assert "Subject: [ECS.4] web-app:1 -> :2 privileged removed (app)" in section
    assert f"New revision:    {ARN}web-app:2" in section  # the email body, rendered from the inbox's JSON
    assert "update-service --cluster CLUSTER --service SERVICE --task-definition web-app:2" in section
    assert "PROBLEM" not in section


def test_compliant_registration_is_left_alone(demo: Run) -> None:
    section = demo.section("billing-api")
    assert f"registered      {ARN}billing-api:1" in section
    assert "EventBridge     not matched" in section
    assert "left alone" in section
    assert "lambda_handler" not in section and "new revision" not in section and "Subject:" not in section


def test_only_the_middle_container_changes(demo: Run) -> None:
    section = demo.section("ingest-pipeline")
    assert "containers: log-router, collector, worker; privileged: collector" in section
    assert "EventBridge     MATCHED" in section
    assert f"new revision    {ARN}ingest-pipeline:2" in section
    changed = re.findall(r"container (\S+) \(", section)
    assert changed == ["collector"]
    assert "privileged: true -> false" in section
    assert "own event       not matched" in section
    assert "Subject: [ECS.4] ingest-pipeline:1 -> :2 privileged removed (collector)" in section
    assert "PROBLEM" not in section


def test_prowler_verdicts_on_the_latest_revisions(demo: Run) -> None:
    verdicts = demo.stdout.split("[5/5]", 1)[1]
    assert re.findall(r"^  (PASS|FAIL)  (\S+)", verdicts, re.M) == [
        ("PASS", "billing-api:1"),
        ("PASS", "ingest-pipeline:2"),
        ("PASS", "web-app:2"),
    ]
    assert "Still ACTIVE and privileged: ingest-pipeline:1, web-app:1" in " ".join(verdicts.split())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_demo_stops_the_emulator(signum: int) -> None:
    process = start_demo()
    assert process.stdout is not None
    seen: list[str] = []
    try:
        for line in process.stdout:
            seen.append(line)
            if "Started a moto server" in line:
                break
        else:
            pytest.fail("".join(seen))
        port = int(re.findall(r":(\d+)", seen[-1])[-1])
        process.send_signal(signum)
        rest, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    # 130 from main(), or death by SIGINT (-2) when the interpreter re-raises an interrupt at exit: a shell
    # shows both as $? = 130. What matters is below: it said so, and nothing outlives it.
    assert process.returncode in (130, -signal.SIGINT), "".join(seen) + rest + stderr
    assert "interrupted" in rest
    assert "Traceback" not in stderr, stderr
    assert_nothing_left(process, port)


def test_organization_scene_fixes_the_member_only_and_refuses_the_forged_event(demo: Run) -> None:
    scene = demo.stdout.split("[org] An organization", 1)[1]
    members = dict(re.findall(r"(\d{12}) (payments-prod|analytics-dev)", scene.split("\n", 2)[1]))
    payments = next(account for account, name in members.items() if name == "payments-prod")
    analytics = next(account for account, name in members.items() if name == "analytics-dev")
    assert "outcome         REMEDIATED" in scene
    assert f"new revision    arn:aws:ecs:eu-west-1:{payments}:task-definition/checkout:2" in scene
    assert f"registered by arn:aws:sts::{payments}:assumed-role/ecs-remediate-member/ecs-remediate" in scene
    assert "EventBridge     not matched: the member's rule forwards nothing" in scene
    assert f"outcome         SKIPPED: foreign account: the revision is in {payments}" in scene
    assert f"AssumeRole      1 call(s): {payments}" in scene
    read_back = re.findall(r"^      (\S+)\s+(\S+)\s+(.+)$", scene, re.M)
    assert read_back == [
        ("hub", "us-east-1", "unchanged"),
        ("hub", "eu-west-1", "unchanged"),
        ("payments-prod", "us-east-1", "unchanged"),
        ("payments-prod", "eu-west-1", "+ checkout:1, checkout:2"),
        ("analytics-dev", "us-east-1", "+ reports:1"),
        ("analytics-dev", "eu-west-1", "unchanged"),
    ]
    # Subjects name members by id: the name is the member administrator's to write.
    assert f"notice          [ECS.4] {payments}/eu-west-1 checkout:1 -> :2 privileged removed (app)" in scene
    assert f"notice          [ECS.4] {analytics}/eu-west-1 checkout:1 remediation FAILED" in scene
    assert "  OK: fixed in payments-prod eu-west-1 only" in scene and "PROBLEM" not in scene


def test_a_privileged_daemon_is_fixed_and_its_daemon_moved(demo: Run) -> None:
    """The daemon scene (demo/daemon_scene.py): ECS Managed Daemons, after the task definitions."""
    scene = demo.stdout.split("-- daemons: a security agent asks for privileged mode", 1)[1]
    daemon_arn = "arn:aws:ecs:us-east-1:123456789012:daemon-task-definition/security-sensor:"
    assert f"registered      {daemon_arn}1" in scene
    assert "EventBridge     MATCHED: the daemon rule delivers the event" in scene
    assert f"new revision    {daemon_arn}2" in scene
    assert "container sensor: privileged: true -> false" in scene and "everything else identical" in scene
    assert "own event       not matched" in scene
    assert "Subject: [ECS.4] daemon task definition security-sensor:1 -> :2 privileged removed" in scene
    assert "linuxParameters.capabilities.add" in scene  # the documented alternative, with the images
    assert "daemon now      runs security-sensor:2 on its own capacity provider mi-agents" in scene
    assert "deployment SUCCESSFUL (security-sensor:2)" in scene
    assert "daemon scene OK" in scene and "PROBLEM" not in scene
