"""Issue 21: what a scan exits with and says when it cannot look, as a user or CI sees it (the console script in a
subprocess): 3 with one line for an unknown profile, no credentials, an endpoint that does not answer, or every Region
failing; 130 with one line on Ctrl-C (a real SIGINT), with every copy registered before the stop in the report.
Nothing here can reach AWS: every endpoint is a loopback port."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from demo.sandbox import Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.sweep import run as sweep
from emulators.throttle_proxy import BucketRate, ThrottleProxy

SCRIPT = Path(sys.executable).parent / "ecs-remediate"
PRIVILEGED = {"name": "app", "image": "nginx", "memory": 64, "privileged": True}
PLAIN = {"name": "app", "image": "nginx", "memory": 64}
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2"]
CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def environment(**extra: str) -> dict[str, str]:
    """The test process's environment (fake credentials) without pytest's variables, plus `extra`; an empty value
    removes a variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update({"AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"})
    for name, value in extra.items():
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    return env


def run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False)


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # bound and released: nothing listens there


@pytest.fixture
def box(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    for name in ("MODE", "TOPIC_ARN", "IDEMPOTENCY_TABLE", "EXEMPTIONS_TABLE", "EXEMPT_FAMILIES", "SWEEP_RATES"):
        monkeypatch.delenv(name, raising=False)
    aws.reset_clients()
    yield Sandbox(endpoint_url=moto_server).create()
    aws.reset_clients()


@pytest.mark.parametrize("how", ["--profile", "AWS_PROFILE"])
def test_an_unknown_profile_exits_3_with_one_line(tmp_path: Path, how: str) -> None:
    config = tmp_path / "config"
    config.write_text("[profile real]\nregion = us-east-1\n")
    env = environment(AWS_CONFIG_FILE=str(config), AWS_ENDPOINT_URL=closed_port_url())
    args = ["scan", "--profile", "nosuch"] if how == "--profile" else ["scan"]
    if how == "AWS_PROFILE":
        env["AWS_PROFILE"] = "nosuch"
    done = run(*args, env=env)
    assert done.returncode == 3 and done.stdout == ""
    assert "the AWS profile 'nosuch' is not in the AWS config files" in one_error_line(done)


def test_an_unknown_profile_of_exempt_exits_3(tmp_path: Path) -> None:
    env = environment(AWS_CONFIG_FILE=os.devnull, AWS_ENDPOINT_URL=closed_port_url())
    done = run("exempt", "list", "--table", "registry", "--profile", "nosuch", env=env)
    assert done.returncode == 3 and "'nosuch'" in one_error_line(done)


def test_no_credentials_exits_3_with_one_line() -> None:
    env = environment(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_ENDPOINT_URL=closed_port_url(),
        AWS_PROFILE="",
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="",
        AWS_CONTAINER_CREDENTIALS_FULL_URI="",
        AWS_WEB_IDENTITY_TOKEN_FILE="",
        **dict.fromkeys(CREDENTIALS, ""),
    )
    done = run("scan", env=env)
    assert done.returncode == 3 and done.stdout == ""
    assert one_error_line(done).startswith("error: no AWS credentials: pass --profile or set AWS_PROFILE")


def test_an_unreachable_endpoint_exits_3_within_seconds() -> None:
    url = closed_port_url()
    started = time.monotonic()
    done = run("scan", env=environment(AWS_ENDPOINT_URL=url))
    assert done.returncode == 3 and done.stdout == ""
    line = one_error_line(done)
    assert line.startswith("error: cannot reach AWS: ") and url in line
    assert time.monotonic() - started < 20  # not a minute of retries per Region


def test_every_region_failing_exits_3_with_the_rows_and_one_line(box: Sandbox) -> None:
    box.register({"family": "web", "containerDefinitions": [PRIVILEGED]})

    def denied(operation: str, _request: dict[str, Any]) -> tuple[int, str, str] | None:
        if operation.startswith("List"):
            return 400, "AccessDeniedException", "User is not authorized to perform: ecs:" + operation
        return None

    with ThrottleProxy(str(box.endpoint_url), _unlimited(), inject=denied) as proxy:
        env = environment(AWS_ENDPOINT_URL=proxy.url)
        done = run("scan", "--region", "us-east-1,eu-west-1", "-o", "json", *FAST, env=env)
    assert done.returncode == 3
    rows = json.loads(done.stdout)  # the ERROR rows stand for every listing, as with exit 1
    assert {row["status"] for row in rows} == {"ERROR"} and len(rows) == 4  # 2 kinds x 2 Regions
    line = one_error_line(done)
    assert "nothing could be judged: every Region failed (us-east-1, eu-west-1)" in line
    assert "AccessDeniedException" in line


def test_ecs_unreachable_behind_a_reachable_sts_is_every_region_failed(box: Sandbox) -> None:
    box.register({"family": "api", "containerDefinitions": [PLAIN]})
    env = environment(AWS_ENDPOINT_URL=str(box.endpoint_url), AWS_ENDPOINT_URL_ECS=closed_port_url())
    done = run("scan", "--max-attempts", "1", "-o", "json", env=env)
    assert done.returncode == 3 and "every Region failed (us-east-1)" in one_error_line(done)
    assert {row["status"] for row in json.loads(done.stdout)} == {"ERROR"}

    done = run("scan", "-o", "json", *FAST, env=environment(AWS_ENDPOINT_URL=str(box.endpoint_url)))
    assert done.returncode == 0 and [row["status"] for row in json.loads(done.stdout)] == ["PASS"]


def _unlimited() -> dict[str, BucketRate]:
    return {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}


def _copies(box: Sandbox) -> set[str]:
    """Every fixed copy the emulator holds (revision 2 of a family seeded with one revision)."""
    ecs = box.client("ecs")
    arns = [a for page in ecs.get_paginator("list_task_definitions").paginate() for a in page["taskDefinitionArns"]]
    return {arn for arn in arns if arn.endswith(":2")}


def _interrupt_when(process: subprocess.Popen[str], ready: Any, signum: int = signal.SIGINT) -> None:
    started = time.monotonic()
    while not ready():
        assert process.poll() is None, "the scan ended before it could be interrupted"
        assert time.monotonic() - started < 60
        time.sleep(0.05)
    process.send_signal(signum)


def _until_delivered(process: subprocess.Popen[str], signum: int, timeout: float = 10.0) -> None:
    """Until the process has taken `signum` (Linux: no longer pending in /proc/PID/status)."""
    bit = 1 << (signum - 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = dict(line.split(":\t", 1) for line in Path(f"/proc/{process.pid}/status").read_text().splitlines())
        if not (int(status["SigPnd"], 16) | int(status["ShdPnd"], 16)) & bit:
            return
        time.sleep(0.01)
    raise AssertionError(f"signal {signum} still pending after {timeout} s")


def test_ctrl_c_during_remediation_reports_every_copy_registered_and_exits_130(box: Sandbox) -> None:
    families = [f"svc-{n:02d}" for n in range(8)]
    for family in families:
        box.register({"family": family, "containerDefinitions": [PRIVILEGED]})
    with ThrottleProxy(str(box.endpoint_url), _unlimited()) as proxy:
        env = environment(AWS_ENDPOINT_URL=proxy.url, **box.env())
        # One registration a second: the SIGINT lands while most families are still to be copied.
        args = ["scan", "--remediate", "-o", "json", "--rate", "register=1/1", "--concurrency", "2"]
        process = subprocess.Popen(
            [str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        try:
            _interrupt_when(process, lambda: len(_copies(box)) >= 1)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("interrupted (Ctrl-C): the sweep stopped early;") and "Traceback" not in err
    assert len(lines) == 1, err
    rows = {row["taskDefinitionArn"].split("/")[-1]: row for row in json.loads(out)}
    reported = {row["newTaskDefinitionArn"] for row in rows.values() if row["action"] == "remediated"}
    registered = _copies(box)
    assert registered and reported == registered  # every copy ECS holds is in the report, and only those
    assert len(registered) < len(families)  # it did stop early
    left = [row for row in rows.values() if row["action"] != "remediated"]
    assert left and all(row["action"].startswith("skipped: interrupted") for row in left)
    assert f"{len(registered)} copy(ies) registered" in lines[-1]


def test_a_second_ctrl_c_stops_at_once_and_says_the_report_was_not_written(box: Sandbox) -> None:
    for family in ("a", "b", "c", "d"):
        box.register({"family": family, "containerDefinitions": [PRIVILEGED]})
    registering, release = threading.Event(), threading.Event()
    registrations = itertools.count(1)

    def hold_the_second_registration(operation: str, _request: dict[str, Any]) -> None:
        """The scan's second RegisterTaskDefinition stays under way until the test lets it go: both Ctrl-Cs land
        while it is in flight, however fast or slow the machine."""
        if operation == "RegisterTaskDefinition" and next(registrations) == 2:
            registering.set()
            release.wait(60)

    with ThrottleProxy(str(box.endpoint_url), _unlimited(), inject=hold_the_second_registration) as proxy:
        env = environment(AWS_ENDPOINT_URL=proxy.url, **box.env())
        process = start(["scan", "--remediate", "-o", "json", "--concurrency", "1"], env)
        try:
            _interrupt_when(process, registering.is_set)  # the first: the scan waits for the registration under way
            time.sleep(1.0)  # two pending SIGINTs would be one
            process.send_signal(signal.SIGINT)  # the second: it stops at once
            # Taken while the registration is still held; then the hold ends: the process exits once the call in flight
            # is done, which would otherwise take until the SDK's 30 s read timeout.
            _until_delivered(process, signal.SIGINT)
            time.sleep(1.0)
            assert not release.is_set() and process.poll() is None
            release.set()
            out, err = process.communicate(timeout=60)
        finally:
            release.set()
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130 and out == ""
    assert err.strip() == (
        "interrupted again (Ctrl-C): stopped without writing the report; copies registered before the stop are in ECS "
        "(a scan shows them)"
    )
    assert 1 <= len(_copies(box)) < 4


@pytest.mark.parametrize(("signum", "name", "code"), [(signal.SIGINT, "Ctrl-C", 130), (signal.SIGTERM, "SIGTERM", 143)])
def test_ctrl_c_during_a_read_only_scan_writes_what_was_judged_and_exits_130(
    box: Sandbox, signum: int, name: str, code: int
) -> None:
    for n in range(60):
        box.register({"family": f"app-{n:02d}", "containerDefinitions": [PLAIN]})
    with ThrottleProxy(str(box.endpoint_url), _unlimited()) as proxy:
        env = environment(AWS_ENDPOINT_URL=proxy.url)
        args = ["scan", "-o", "json", "--rate", "describe=10/1", "--concurrency", "2"]
        process = subprocess.Popen(
            [str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        try:
            _interrupt_when(process, lambda: proxy.calls.get("DescribeTaskDefinition", 0) >= 5, signum)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == code
    assert err.strip().splitlines() == [err.strip()] and "Traceback" not in err
    assert err.startswith(f"interrupted ({name}): the sweep stopped early;") and "(read only)" in err
    rows = json.loads(out)
    assert 0 < len(rows) < 60 and {row["status"] for row in rows} == {"PASS"}


def test_ctrl_c_before_the_sweep_starts_is_one_line_and_130(tmp_path: Path) -> None:
    # `fix -` waits on standard input: interrupted there, it says so in one line. It relies on Python's own SIGINT
    # handler, which a process only gets when it starts with SIGINT not ignored: a shell without job control starts
    # background jobs (a CI run started with `&`) with SIGINT ignored, and every process below inherits that. The
    # CLI under test starts as from a terminal: the handler here is Python's, so the CLI's disposition is the default.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [str(SCRIPT), "fix", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    _wait_until_reading_stdin(process)  # past the imports, into the read, however slow the machine
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (130, ""), err  # what it said, should a loaded machine ever make it differ
    assert err.strip() == "interrupted (Ctrl-C): stopped before it finished"


def _wait_until_reading_stdin(process: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """Until the process blocks in read(2) on its standard input (Linux: /proc/PID/syscall names the call, its
    first argument the descriptor), not a fixed sleep that a loaded machine outruns."""
    read = {"x86_64": "0", "aarch64": "63"}[os.uname().machine]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{process.pid}/syscall").read_text().split()
            if fields[:2] == [read, "0x0"]:
                return
        time.sleep(0.05)
    raise AssertionError("the CLI never waited on its standard input")
