"""`ecs-remediate scan` against a moto server behind the paging proxy: outputs, exit codes, remediation
twice, fail-closed ERROR rows, progress bar only on a terminal."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.sandbox import Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.cli.main import ProgressBar, main
from ecs_remediate.sweep import run as sweep
from emulators.throttle_proxy import BucketRate, ThrottleProxy, persistent_throttle

ROOT = Path(__file__).resolve().parent.parent
PRIVILEGED = {"name": "app", "image": "nginx", "memory": 64, "privileged": True}
PLAIN = {"name": "app", "image": "nginx", "memory": 64}
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2"]
KEYS = [
    "taskDefinitionArn",
    "status",
    "privilegedContainers",
    "action",
    "newTaskDefinitionArn",
    "error",
    "hostEquivalents",
    "hostAccess",
    "forged",
    "source",
    "attribution",
    "exemptionMismatch",
]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def box(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    sandbox = Sandbox(endpoint_url=moto_server).create()
    for name in ("MODE", "TOPIC_ARN", "IDEMPOTENCY_TABLE", "EXEMPTIONS_TABLE", "EXEMPT_FAMILIES", "SWEEP_RATES"):
        monkeypatch.delenv(name, raising=False)
    yield sandbox


@pytest.fixture
def proxy(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThrottleProxy]:
    limits = {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
    with ThrottleProxy(str(box.endpoint_url), limits, page_size=3) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.url)
        aws.reset_clients()
        yield running
    aws.reset_clients()


def seed(box: Sandbox) -> dict[str, str]:
    arns = {}
    for family, containers in (
        ("web", [PRIVILEGED]),
        ("api", [PLAIN]),
        ("worker", [PLAIN]),
        ("worker", [PRIVILEGED]),
        ("batch", [PRIVILEGED]),
        ("batch", [PLAIN]),
        ("monitoring-agent", [PRIVILEGED]),
    ):
        response = box.register({"family": family, "containerDefinitions": containers})
        arns[family] = response["taskDefinition"]["taskDefinitionArn"]
    return arns


def scan(*args: str, tty: bool = False) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), (Tty() if tty else io.StringIO())
    code = main(["scan", *args], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_json_rows_and_exit_1_while_findings_remain(box: Sandbox, proxy: ThrottleProxy) -> None:
    arns = seed(box)
    code, out, err = scan("--scope", "latest", "--output", "json", *FAST)
    rows = json.loads(out)
    assert code == 1
    assert all(list(row) == KEYS for row in rows)
    by_arn = {row["taskDefinitionArn"]: row for row in rows}
    assert set(by_arn) == set(arns.values())  # newest ACTIVE revision of each of 5 families, over 2 pages
    assert by_arn[arns["web"]] == {
        "taskDefinitionArn": arns["web"],
        "status": "FAIL",
        "privilegedContainers": ["app"],
        "action": "reported",
        "newTaskDefinitionArn": None,
        "error": None,
        "hostEquivalents": [],
        "hostAccess": [],
        "forged": None,
        # Registered with the emulator's default credentials and no tags: nothing to recognise (the sweep has no event).
        "source": "source not recognised",
        "attribution": {
            "tool": "unknown",
            "evidence": ["no CloudTrail registration event (sweep): tags and registeredBy only"],
            "stackName": "",
            "logicalId": "",
            "stackArn": "",
            "principal": "arn:aws:sts::123456789012:user/moto",  # moto STS: the caller of the fake credentials
            "product": "",
            "copilot": {"application": "", "environment": "", "service": ""},
        },
        "exemptionMismatch": "",
    }
    assert by_arn[arns["batch"]]["status"] == "PASS" and by_arn[arns["batch"]]["action"] == "none"
    assert by_arn[arns["batch"]]["source"] is None  # compliant: nothing to fix at any source
    assert err.strip().endswith("s") and "2 PASS, 3 FAIL, 0 EXEMPT, 0 ERROR" in err
    assert "\r" not in err  # no progress bar: stderr is not a terminal
    assert proxy.calls["ListTaskDefinitionFamilies"] == 2
    assert len(box.active_revisions("web")) == 1  # read-only without --remediate
    assert box.inbox() == []


def test_exemptions_from_the_environment(box: Sandbox, proxy: ThrottleProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    arns = seed(box)
    monkeypatch.setenv("EXEMPT_FAMILIES", "monitoring-*")
    monkeypatch.setenv("EXEMPT_FAMILIES_ACKNOWLEDGED", "true")
    _, out, _ = scan("--output", "json", *FAST)
    row = next(r for r in json.loads(out) if r["taskDefinitionArn"] == arns["monitoring-agent"])
    assert row["status"] == "EXEMPT" and "monitoring-*" in row["action"]


def test_remediate_twice_registers_one_copy_then_latest_scan_exits_0(
    box: Sandbox, proxy: ThrottleProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    arns = seed(box)
    for name, value in box.env().items():
        monkeypatch.setenv(name, value)
    code, out, err = scan("--scope", "latest", "--remediate", "--output", "json", *FAST)
    rows = {row["taskDefinitionArn"]: row for row in json.loads(out)}
    assert code == 0, err  # every FAIL was remediated: nothing left
    fixed = {arn: row["newTaskDefinitionArn"] for arn, row in rows.items() if row["action"] == "remediated"}
    assert set(fixed) == {arns["web"], arns["worker"], arns["monitoring-agent"]}
    assert "3 remediated; 0 left to fix" in err
    copy = box.describe(fixed[arns["worker"]])
    assert copy["taskDefinition"]["revision"] == 3
    assert copy["taskDefinition"]["containerDefinitions"][0]["privileged"] is False
    assert len(box.inbox()) == 3  # one notice per remediated revision, as the function sends

    registers_before = proxy.calls.get("RegisterTaskDefinition", 0)
    code, out, _ = scan("--scope", "latest", "--remediate", "--output", "json", *FAST)
    assert code == 0
    assert proxy.calls.get("RegisterTaskDefinition", 0) == registers_before  # no second copy
    assert {row["status"] for row in json.loads(out)} == {"PASS"}
    assert len(box.active_revisions("worker")) == 3 and len(box.active_revisions("web")) == 2
    assert box.inbox() == []

    code, _, err = scan("--scope", "latest", *FAST)
    assert code == 0 and "0 FAIL" in err
    # every ACTIVE revision: the privileged originals are still there (older than their copies)
    code, out, _ = scan("--scope", "active", "--output", "json", *FAST)
    assert code == 1
    superseded = [r for r in json.loads(out) if r["status"] == "FAIL"]
    older_batch = arns["batch"].rsplit(":", 1)[0] + ":1"  # privileged, and older than the plain batch:2
    assert {r["taskDefinitionArn"] for r in superseded} == {*fixed, older_batch}
    assert all(r["action"].startswith("superseded: ") for r in superseded)


def test_persistent_throttling_gives_error_rows_and_exit_1(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    arns = seed(box)
    limits = {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
    throttled = {arns["api"], arns["batch"]}  # both PASS when described
    with ThrottleProxy(str(box.endpoint_url), limits, inject=persistent_throttle(throttled)) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        code, out, err = scan("--scope", "active", "--output", "csv", *FAST)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 1
    # csv: the one-line source only; an exemption that does not hold is explained in `error`
    assert list(rows[0]) == [key for key in KEYS if key not in ("attribution", "exemptionMismatch")]
    errors = {row["taskDefinitionArn"]: row for row in rows if row["status"] == "ERROR"}
    assert set(errors) == throttled
    assert all("ThrottlingException" in row["error"] for row in errors.values())
    assert not any(row["status"] == "PASS" and row["taskDefinitionArn"] in throttled for row in rows)
    assert "2 ERROR" in err


def test_table_output_and_progress_bar_on_a_terminal(box: Sandbox, proxy: ThrottleProxy) -> None:
    seed(box)
    code, out, err = scan(*FAST, tty=True)
    assert code == 1
    lines = out.splitlines()
    header = ["STATUS", "TASK", "DEFINITION", "PRIVILEGED", "HOST", "ACCESS", "SOURCE", "ACTION", "NEW", "ERROR"]
    assert lines[0].split() == header
    assert any(line.startswith("FAIL") and "web:1" in line and "app" in line for line in lines)
    assert "\r[" in err and "revisions" in err
    _, out, err = scan(*FAST, "--quiet", tty=True)
    assert "\r" not in err and "FAIL" in err


def test_region_all_sweeps_every_enabled_region(box: Sandbox, proxy: ThrottleProxy, monkeypatch: Any) -> None:
    seed(box)
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # AWS_REGION alone names the Region to ask
    calls: list[str] = []
    monkeypatch.setattr(sweep, "enabled_regions", lambda region: calls.append(region) or ["eu-west-1", "us-east-1"])
    code, out, err = scan("--region", "all", "--output", "json", *FAST)
    assert calls == ["us-east-1"]
    assert code == 1 and "eu-west-1, us-east-1" in err
    regions = {row["taskDefinitionArn"].split(":")[3] for row in json.loads(out)}
    assert regions == {"us-east-1"}  # moto's eu-west-1 has none
    code, _, err = scan("--region", "us-east-1,eu-west-1", *FAST, "--output", "table")
    assert code == 1 and "us-east-1, eu-west-1" in err


def test_progress_bar_counts() -> None:
    stream = Tty()
    bar = ProgressBar(stream)
    bar.add_total(4)
    for _ in range(4):
        bar.advance()
    assert "[" + "#" * 30 + "] 4/4 revisions" in stream.getvalue()
    bar.close()
    assert stream.getvalue().endswith("\r")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--scope", "everything"], {}, "invalid choice"),
        (["--output", "yaml"], {}, "invalid choice"),
        (["--rate", "describe=fast"], {}, "rate 'describe=fast'"),
        (["--rate", "teleport=1"], {}, "rate 'teleport=1'"),
        (["--region", "mars-1"], {}, "not a Region name: mars-1"),
        (["--concurrency", "0"], {}, "concurrency"),
        (["--max-attempts", "x"], {}, "invalid int value"),
        ([], {"MODE": "delete"}, "MODE"),
        ([], {"SWEEP_RATES": "describe=-1"}, "rate 'describe=-1'"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # never reached
    code, out, err = scan(*args)
    assert code == 2 and out == ""
    assert message in err and err.startswith("error: ")


def test_console_script_on_the_standard_credential_chain(box: Sandbox, proxy: ThrottleProxy) -> None:
    seed(box)
    script = Path(sys.executable).parent / "ecs-remediate"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k != "AWS_DEFAULT_REGION"}
    env.update(
        {
            "AWS_ENDPOINT_URL": proxy.url,
            "AWS_REGION": "us-east-1",
            "EXEMPT_FAMILIES": "monitoring-*",
            "EXEMPT_FAMILIES_ACKNOWLEDGED": "true",
        }
    )
    done = subprocess.run(
        [str(script), "scan", "--output", "json", *FAST],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    statuses = sorted(row["status"] for row in json.loads(done.stdout))  # every ACTIVE revision (the default)
    assert statuses == ["EXEMPT", "FAIL", "FAIL", "FAIL", "PASS", "PASS", "PASS"]
    assert "1 EXEMPT" in done.stderr
