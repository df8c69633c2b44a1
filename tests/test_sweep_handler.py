"""The scheduled sweep function against moto (through the paging proxy): one summary notice, only when
something was found or fixed; remediate mode fixes through the shared idempotency table."""

from __future__ import annotations

import importlib
import json
import urllib.request
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.core.config import ConfigError
from ecs_remediate.sweep import run as sweep
from ecs_remediate.sweep.notice import SUMMARY_ROWS, build_sweep_summary
from emulators.throttle_proxy import BucketRate, ThrottleProxy

PRIVILEGED = {
    "name": "app",
    "image": "nginx",
    "memory": 64,
    "privileged": True,
    "environment": [{"name": "DB_PASSWORD", "value": "hunter2-very-secret"}],
}
PLAIN = {"name": "app", "image": "nginx", "memory": 64}
FAST = "describe=1000/1000,list=1000/1000,register=1000/1000"


@pytest.fixture
def box(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    sandbox = Sandbox(endpoint_url=moto_server).create()
    limits = {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
    with ThrottleProxy(moto_server, limits, page_size=2) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("SWEEP_RATES", FAST)
        aws.reset_clients()
        yield sandbox
    aws.reset_clients()


def load(box: Sandbox, monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    for name, value in box.env(**env).items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    import ecs_remediate.functions.handler as module

    return importlib.reload(module)


def seed(box: Sandbox) -> dict[str, str]:
    arns = {}
    for family, containers in (("web", [PRIVILEGED]), ("api", [PLAIN]), ("batch", [PRIVILEGED]), ("batch", [PLAIN])):
        arns[family] = box.register({"family": family, "containerDefinitions": containers})["taskDefinition"][
            "taskDefinitionArn"
        ]
    return arns


def summaries(box: Sandbox) -> list[Any]:
    return [note for note in box.inbox() if note.attributes.get("outcome") == "sweep"]


def test_remediate_mode_fixes_and_sends_one_summary_then_stays_quiet(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    arns = seed(box)
    handler = load(box, monkeypatch)
    result = handler.sweep_handler({"scope": "latest"}, LambdaContext())
    assert result == {
        "scope": "latest",
        "counts": {"PASS": 2, "FAIL": 1, "EXEMPT": 0, "ERROR": 0},
        "remediated": 1,
        "open": 0,
        "notified": True,
    }
    assert len(box.active_revisions("web")) == 2
    notes = box.inbox()
    [summary] = [n for n in notes if n.attributes["outcome"] == "sweep"]
    assert [n.attributes["outcome"] for n in notes if n is not summary] == ["remediated"]  # the function's notice
    assert summary.subject == "[ECS.4] sweep us-east-1: nothing left to fix, 1 remediated"
    assert summary.attributes == {"outcome": "sweep", "severity": "MEDIUM", "family": "*"}
    assert summary.payload["remediatedFindings"][0]["taskDefinitionArn"] == arns["web"]
    assert summary.payload["account"] == "123456789012"
    assert "hunter2" not in json.dumps(summary.payload) + summary.subject

    # nothing found, nothing fixed: no notice at all
    again = handler.sweep_handler({"scope": "latest"}, LambdaContext())
    assert again["remediated"] == 0 and again["notified"] is False
    assert box.inbox() == []
    assert len(box.active_revisions("web")) == 2
    # the default scope sees every ACTIVE revision: the privileged source and the older privileged batch:1 are
    # still there, and the summary says so
    default = handler.sweep_handler({}, LambdaContext())
    assert (default["scope"], default["open"], default["notified"]) == ("active", 2, True)
    [summary] = summaries(box)
    rows = {row["taskDefinitionArn"]: row["action"] for row in summary.payload["openFindings"]}
    assert set(rows) == {arns["web"], arns["batch"].replace(":2", ":1")}
    assert all(action.startswith("superseded") for action in rows.values())


def test_report_mode_writes_nothing_and_summarises_the_findings(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    arns = seed(box)
    handler = load(box, monkeypatch, MODE="report")
    result = handler.sweep_handler({"scope": "active"}, LambdaContext())
    assert result["counts"] == {"PASS": 2, "FAIL": 2, "EXEMPT": 0, "ERROR": 0}
    assert (result["remediated"], result["open"], result["notified"]) == (0, 2, True)
    assert len(box.active_revisions("web")) == 1
    [summary] = box.inbox()  # one notice, not one per revision
    assert summary.attributes["outcome"] == "sweep" and summary.attributes["severity"] == "HIGH"
    assert summary.subject == "[ECS.4] sweep us-east-1: 2 left to fix"
    rows = {row["taskDefinitionArn"]: row for row in summary.payload["openFindings"]}
    assert set(rows) == {arns["web"], arns["batch"].replace(":2", ":1")}
    assert rows[arns["web"]]["action"] == "reported"
    assert "ecs-remediate scan --region us-east-1 --scope active --remediate" in summary.payload["nextCommands"]


def test_bad_scope_or_rates_fail_loudly(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = load(box, monkeypatch)
    with pytest.raises(ConfigError, match="scope"):
        handler.sweep_handler({"scope": "everything"}, LambdaContext())
    monkeypatch.setenv("SWEEP_RATES", "describe=lots")
    with pytest.raises(ConfigError, match="SWEEP_RATES"):
        handler.sweep_handler({}, LambdaContext())


def test_summary_text_names_errors_and_caps_rows() -> None:
    rows = [
        {
            "taskDefinitionArn": f"arn:aws:ecs:us-east-1:123456789012:task-definition/f{i}:1",
            "status": "ERROR",
            "privilegedContainers": [],
            "action": "none",
            "newTaskDefinitionArn": None,
            "error": "describe failed after retries: ThrottlingException: Rate exceeded",
        }
        for i in range(SUMMARY_ROWS + 5)
    ]
    message = build_sweep_summary(
        region="eu-west-1",
        scope="latest",
        mode="report",
        counts={"PASS": 3, "FAIL": 0, "EXEMPT": 0, "ERROR": len(rows)},
        open_rows=rows,
        remediated_rows=[],
        seconds=12.0,
    )
    assert message.subject == f"[ECS.4] sweep eu-west-1: {len(rows)} left to fix, {len(rows)} ERROR"
    assert "never counted as PASS" in message.text
    assert "... and 5 more" in message.text
    assert len(message.payload["openFindings"]) == SUMMARY_ROWS and message.payload["truncated"] == 5
    assert len(json.dumps(message.payload)) * 8 < 256 * 1024
