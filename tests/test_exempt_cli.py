"""`ecs-remediate exempt`: an approver writes the registry; bad requests are refused before anything is written."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from demo.sandbox import Sandbox
from ecs_remediate.cli import main

DIGEST = "sha256:" + "c" * 64


def run(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    return main(["exempt", *args], stdout, stderr), stdout.getvalue(), stderr.getvalue()


def items(sandbox: Sandbox) -> list[dict[str, str]]:
    found = sandbox.client("dynamodb").scan(TableName=sandbox.exemptions_table)["Items"]
    return [{k: v["S"] for k, v in item.items()} for item in found]


@pytest.fixture
def registry(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.setenv("EXEMPTIONS_TABLE", sandbox.exemptions_table)
    return sandbox


def test_add_list_remove(registry: Sandbox) -> None:
    arn = registry.register({"family": "csi", "containerDefinitions": [{"name": "a", "image": "x", "memory": 4}]})[
        "taskDefinition"
    ]["taskDefinitionArn"]
    until = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    code, _, err = run("add", arn, "--reason", "CSI node plugin", "--until", until)
    assert code == 0, err
    [item] = items(registry)
    assert (item["target"], item["reason"], item["until"]) == (arn, "CSI node plugin", until)
    assert item["approver"].startswith("arn:aws:")  # the caller, as STS names it
    assert run("add", DIGEST, "--reason", "agent image", "--until", until)[0] == 0
    code, out, _ = run("list")
    assert code == 0 and sorted(r["target"] for r in json.loads(out)) == sorted([arn, DIGEST])
    assert run("remove", arn)[0] == 0
    assert [i["target"] for i in items(registry)] == [DIGEST]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["web:1", "--reason", "r", "--until", "2099-01-01"], "expected a task definition revision ARN"),
        ([DIGEST, "--reason", "  ", "--until", "2099-01-01"], "needs a reason"),
        ([DIGEST, "--reason", "r", "--until", "2020-01-01"], "is in the past"),
        ([DIGEST, "--reason", "r", "--until", "2099-01-01"], "at most 90 days"),
        ([DIGEST, "--reason", "r", "--until", "soon"], "not a YYYY-MM-DD date"),
    ],
)
def test_bad_requests_write_nothing(registry: Sandbox, args: list[str], message: str) -> None:
    code, out, err = run("add", *args)
    assert code == 2 and out == "" and message in err
    assert items(registry) == []


def test_no_table_is_a_clear_error(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXEMPTIONS_TABLE", raising=False)
    code, _, err = run("list")
    assert code == 2 and "EXEMPTIONS_TABLE" in err
