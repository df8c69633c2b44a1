"""Issue 21, the CLI's conventions: `--version`, `--profile` (as the AWS CLI's), `-o`, `--kinds`, and an endpoint
without the daemon API (one line, no ERROR row, no retries) while access denied and throttling of the daemon listing
stay ERROR rows (fail-closed)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from conftest import free_port
from demo.sandbox import Sandbox
from ecs_remediate import __version__
from ecs_remediate.adapters import aws
from ecs_remediate.cli.main import main
from ecs_remediate.sweep import run as sweep
from emulators.throttle_proxy import BucketRate, ThrottleProxy

SCRIPT = Path(sys.executable).parent / "ecs-remediate"
PRIVILEGED = {"name": "app", "image": "nginx", "memory": 64, "privileged": True}
AGENT = {"name": "agent", "image": "public.ecr.aws/x/agent:1", "privileged": True}
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "3", "-q"]
DAEMON_LIST = "ListDaemonTaskDefinitions"


def unlimited() -> dict[str, BucketRate]:
    return {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}


def scan(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", *args, *FAST], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def box(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    for name in ("MODE", "TOPIC_ARN", "IDEMPOTENCY_TABLE", "EXEMPTIONS_TABLE", "EXEMPT_FAMILIES", "SWEEP_RATES"):
        monkeypatch.delenv(name, raising=False)
    sandbox = Sandbox(endpoint_url=moto_server).create()
    sandbox.register({"family": "web", "containerDefinitions": [PRIVILEGED]})
    sandbox.client("ecs").register_daemon_task_definition(family="sensor", containerDefinitions=[AGENT])
    yield sandbox


def proxied(box: Sandbox, monkeypatch: pytest.MonkeyPatch, inject: Any = None) -> ThrottleProxy:
    proxy = ThrottleProxy(str(box.endpoint_url), unlimited(), inject=inject).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    aws.reset_clients()
    return proxy


def names(out: str) -> list[str]:
    return sorted(row["taskDefinitionArn"].split(":", 5)[-1] for row in json.loads(out))


def test_version() -> None:
    done = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"ecs-remediate {__version__}\n", "")


def test_o_is_output(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    with proxied(box, monkeypatch):
        short = scan("-o", "json")
        long = scan("--output", "json")
    assert short[0] == long[0] == 1
    assert names(short[1]) == names(long[1]) == ["daemon-task-definition/sensor:1", "task-definition/web:1"]


@pytest.mark.parametrize(
    ("kinds", "expected", "daemon_lists"),
    [
        ("task-definitions", ["task-definition/web:1"], 0),
        ("daemon-task-definitions", ["daemon-task-definition/sensor:1"], 1),
        ("task-definitions,daemon-task-definitions", ["daemon-task-definition/sensor:1", "task-definition/web:1"], 1),
    ],
)
def test_kinds(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch, kinds: str, expected: list[str], daemon_lists: int
) -> None:
    with proxied(box, monkeypatch) as proxy:
        code, out, _ = scan("--kinds", kinds, "-o", "json")
    assert code == 1 and names(out) == expected
    assert proxy.calls.get(DAEMON_LIST, 0) == daemon_lists
    assert proxy.calls.get("ListTaskDefinitions", 0) == (1 if "task-definitions" in kinds.split(",") else 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kinds", "services"], "expected one or more of task-definitions, daemon-task-definitions, got services"),
        (["--kinds", ","], "got none"),
        (
            ["--kinds", "task-definitions", "--remediate", "--daemon-rollout"],
            "--daemon-rollout needs --kinds daemon-task-definitions",
        ),
    ],
)
def test_bad_kinds_exit_2(args: list[str], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # never reached
    code, out, err = scan(*args)
    assert (code, out) == (2, "") and message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "UnknownOperationException"), (400, "InvalidAction"), (404, "NotFound"), (501, "NotImplemented")],
)
def test_an_endpoint_without_the_daemon_api_is_one_line_not_an_error_row(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch, status: int, kind: str
) -> None:
    def absent(operation: str, _request: dict[str, Any]) -> tuple[int, str, str] | None:
        return (status, kind, "no such operation") if operation == DAEMON_LIST else None

    with proxied(box, monkeypatch, absent) as proxy:
        code, out, err = scan("-o", "json")
    assert code == 1 and names(out) == ["task-definition/web:1"]  # the privileged task definition; no ERROR row
    assert proxy.calls[DAEMON_LIST] == 1  # detected on the first answer, never retried
    (line,) = [line for line in err.splitlines() if "daemon API" in line]
    assert line.startswith("no daemon API at the ECS endpoint of us-east-1 (ListDaemonTaskDefinitions: ")
    assert line.endswith("daemon task definitions not swept there")


def test_plain_moto_without_the_daemon_emulator_exits_0_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """What anyone running moto's own server sees: moto answers the daemon operations with an HTML 500."""
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)  # moto's server logs the NotImplementedError
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        # One moto state per process: the session's emulator shares it, so start from an empty one.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).read()
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        aws.reset_clients()
        code, out, err = scan("--region", "us-east-1,eu-west-1", "-o", "json")
    finally:
        server.stop()
        if server._server is not None:  # stop() leaves the listening socket open
            server._server.server_close()
        aws.reset_clients()
    assert (code, json.loads(out)) == (0, []), err
    assert [line for line in err.splitlines() if "daemon API" in line] == [
        "no daemon API at the ECS endpoint of us-east-1, eu-west-1 (ListDaemonTaskDefinitions: HTTP 500 with an "
        "HTML page, not an AWS error): daemon task definitions not swept there"
    ]


@pytest.mark.parametrize(
    ("kind", "attempts"),
    [("AccessDeniedException", 1), ("ThrottlingException", 3), ("ServerException", 3)],
)
def test_denied_or_throttled_daemon_listing_stays_an_error_row(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch, kind: str, attempts: int
) -> None:
    status = 500 if kind == "ServerException" else 400

    def failing(operation: str, _request: dict[str, Any]) -> tuple[int, str, str] | None:
        return (status, kind, "no") if operation == DAEMON_LIST else None

    with proxied(box, monkeypatch, failing) as proxy:
        code, out, err = scan("-o", "json")
    assert code == 1
    errors = [row for row in json.loads(out) if row["status"] == "ERROR"]
    assert [row["taskDefinitionArn"] for row in errors] == ["arn:aws:ecs:us-east-1:*:daemon-task-definition/*"]
    assert kind in errors[0]["error"] and "daemon API" not in err
    assert proxy.calls[DAEMON_LIST] == attempts  # retried as any call (--max-attempts 3) unless permanent


def test_an_unknown_operation_on_a_later_page_is_an_error_not_an_absent_api(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API answered the first page: a later page's failure is a listing that failed part-way (ERROR), never
    "no daemon API" (which would drop the first page's verdicts)."""
    ecs = box.client("ecs")
    for n in range(105):  # two pages of the daemon emulator (100 a page)
        ecs.register_daemon_task_definition(
            family=f"bulk-{n:03d}", containerDefinitions=[{**AGENT, "privileged": False}]
        )

    def later_page(operation: str, request: dict[str, Any]) -> tuple[int, str, str] | None:
        return (400, "UnknownOperationException", "x") if operation == DAEMON_LIST and "nextToken" in request else None

    with proxied(box, monkeypatch, later_page):
        code, out, err = scan("-o", "json")
    rows = json.loads(out)
    assert code == 1 and "daemon API" not in err
    assert [r["status"] for r in rows if r["taskDefinitionArn"].endswith("daemon-task-definition/*")] == ["ERROR"]
    assert sum(1 for r in rows if "daemon-task-definition/bulk-" in r["taskDefinitionArn"]) == 100


def write_profile(tmp_path: Path, region: str) -> dict[str, str]:
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text(f"[profile emu]\nregion = {region}\n")
    credentials.write_text("[emu]\naws_access_key_id = AKIAEMULATOR000001\naws_secret_access_key = emulator\n")
    return {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}


def test_profile_gives_credentials_and_region_over_the_environment(box: Sandbox, tmp_path: Path) -> None:
    """--profile emu: its Region (eu-west-2, where the only task definition is) and its keys, although the environment
    has other keys (dropped, as the AWS CLI's --profile does) and no Region."""
    ecs = boto_ecs(box, "eu-west-2")
    ecs.register_task_definition(family="eu-app", containerDefinitions=[PRIVILEGED])
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST") and k not in ("AWS_REGION", "AWS_DEFAULT_REGION")
    }
    env.update(write_profile(tmp_path, "eu-west-2"), AWS_ENDPOINT_URL=str(box.endpoint_url))
    env.update(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")  # keys the profile must win over (empty: unusable)
    done = subprocess.run(
        [str(SCRIPT), "scan", "--profile", "emu", "--kinds", "task-definitions", "-o", "json", *FAST],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["taskDefinitionArn"].startswith("arn:aws:ecs:eu-west-2:") and row["status"] == "FAIL"
    assert "eu-west-2" in done.stderr

    env.pop("AWS_SHARED_CREDENTIALS_FILE")  # without the profile's keys: nothing to sign with
    done = subprocess.run(
        [str(SCRIPT), "scan", "--profile", "emu"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 3 and done.stderr.startswith("error: no AWS credentials")


def boto_ecs(box: Sandbox, region: str) -> Any:
    import boto3

    return boto3.client("ecs", region_name=region, endpoint_url=box.endpoint_url)
