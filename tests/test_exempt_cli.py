"""`ecs-remediate exempt`: an approver writes the registry; bad requests are refused before anything is written.
Every check reads the table back from the emulator."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from demo.sandbox import ACCOUNT, Sandbox
from ecs_remediate.cli.main import main
from ecs_remediate.core.exemptions.records import from_dynamodb

DIGEST = "sha256:" + "c" * 64
IMAGE = f"registry.example.com/csi@{DIGEST}"
UNTIL = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()


def run(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    return main(["exempt", *args], stdout, stderr), stdout.getvalue(), stderr.getvalue()


def items(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    found = sandbox.client("dynamodb").scan(TableName=sandbox.exemptions_table)["Items"]
    return {item["target"]["S"]: from_dynamodb(item) for item in found}


def csi(sandbox: Sandbox, image: str = IMAGE, family: str = "csi", **extra: Any) -> str:
    container = {"name": "node", "image": image, "memory": 64, "privileged": True, "command": ["--token=s3cr3t"]}
    params = {
        "family": family,
        "containerDefinitions": [{**container, **extra}, {"name": "b", "image": "x", "memory": 4}],
    }
    return str(sandbox.register(params)["taskDefinition"]["taskDefinitionArn"])


@pytest.fixture
def registry(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.setenv("EXEMPTIONS_TABLE", sandbox.exemptions_table)
    return sandbox


def test_add_records_account_families_and_the_fingerprint(registry: Sandbox) -> None:
    arn = csi(registry)
    code, _, err = run("add", arn, "--reason", "CSI node plugin", "--until", UNTIL, "--family", "csi-canary")
    assert code == 0, err
    table = items(registry)
    scope, canary = table[f"scope:{ACCOUNT}:task-definition/csi"], table[f"scope:{ACCOUNT}:task-definition/csi-canary"]
    [(approval_id, approval)] = scope["approvals"].items()
    assert canary["approvals"] == {approval_id: approval}  # the same approval, in each family's item
    assert (scope["account"], scope["kind"], scope["family"]) == (ACCOUNT, "task-definition", "csi")
    assert approval["source"] == arn and approval["families"] == ["csi", "csi-canary"]
    assert (approval["reason"], approval["until"]) == ("CSI node plugin", UNTIL)
    assert approval["approver"].startswith("arn:aws:")  # the caller, as STS names it
    [node] = approval["fingerprint"]["containers"]
    assert (node["name"], node["image"], node["user"], node["workingDir"]) == ("node", DIGEST, "", "")
    assert node["command"].startswith("sha256:") and "s3cr3t" not in json.dumps(
        table, default=str
    )  # no command text is kept
    assert table[f"image:{DIGEST}"]["scopes"] == {
        f"{ACCOUNT}:task-definition/csi",
        f"{ACCOUNT}:task-definition/csi-canary",
    }
    assert f"family csi, family csi-canary in account {ACCOUNT}" in err and approval_id in err


def test_adding_the_same_content_again_renews_it_and_other_content_is_another_approval(registry: Sandbox) -> None:
    first = csi(registry)
    assert run("add", first, "--reason", "v1", "--until", UNTIL)[0] == 0
    again = csi(registry)  # csi:2, the same content
    later = (datetime.now(UTC).date() + timedelta(days=60)).isoformat()
    assert run("add", again, "--reason", "v1 renewed", "--until", later)[0] == 0
    [approval] = items(registry)[f"scope:{ACCOUNT}:task-definition/csi"]["approvals"].values()
    assert (approval["reason"], approval["until"], approval["source"]) == ("v1 renewed", later, again)
    other = csi(registry, command=["--token=other"])
    assert run("add", other, "--reason", "v2", "--until", UNTIL)[0] == 0
    assert len(items(registry)[f"scope:{ACCOUNT}:task-definition/csi"]["approvals"]) == 2


def test_revision_only_list_and_remove(registry: Sandbox) -> None:
    by_tag = csi(registry, image="registry.example.com/csi:1")
    code, _, err = run("add", by_tag, "--reason", "one revision", "--until", UNTIL, "--revision-only")
    assert code == 0, err
    pinned = csi(registry, family="agent")
    assert run("add", pinned, "--reason", "agent", "--until", UNTIL)[0] == 0
    registry.exempt(DIGEST, "an item of earlier versions", UNTIL)
    code, out, _ = run("list")
    listed = {row["target"]: row for row in json.loads(out)}
    assert listed[by_tag]["item"] == "revision" and listed[by_tag]["fingerprint"]["containers"][0]["image"] == ""
    assert listed[f"scope:{ACCOUNT}:task-definition/agent"]["approvals"][0]["source"] == pinned
    assert listed[DIGEST]["item"].startswith("too broad")
    assert listed[f"image:{DIGEST}"]["scopes"] == [f"{ACCOUNT}:task-definition/agent"]
    # removing a revision ARN removes its revision item, or the approvals made from it (and their index entries)
    assert run("remove", by_tag)[0] == 0
    code, _, err = run("remove", pinned)
    assert code == 0 and "removed approval" in err
    assert set(items(registry)) == {DIGEST, f"image:{DIGEST}"}
    assert "scopes" not in items(registry)[f"image:{DIGEST}"]  # the index names no scope any more
    assert run("remove", DIGEST)[0] == 0 and set(items(registry)) == {f"image:{DIGEST}"}


def test_remove_a_whole_scope(registry: Sandbox) -> None:
    arn = csi(registry)
    assert run("add", arn, "--reason", "r", "--until", UNTIL, "--family", "csi-b")[0] == 0
    code, _, err = run("remove", f"scope:{ACCOUNT}:task-definition/csi")
    assert code == 0 and "removed approval" in err
    assert f"scope:{ACCOUNT}:task-definition/csi" not in items(registry)
    assert f"scope:{ACCOUNT}:task-definition/csi-b" not in items(registry)  # the approval covered both


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["web:1", "--reason", "r", "--until", "2099-01-01"], "expected a revision ARN"),
        ([DIGEST, "--reason", "r", "--until", UNTIL], "an image digest alone exempts that image in every family"),
        (["{arn}", "--reason", "  ", "--until", UNTIL], "needs a reason"),
        (["{arn}", "--reason", "r", "--until", "2020-01-01"], "is in the past"),
        (["{arn}", "--reason", "r", "--until", "2099-01-01"], "at most 90 days"),
        (["{arn}", "--reason", "r", "--until", "soon"], "not a YYYY-MM-DD date"),
        (["{arn}", "--reason", "r", "--until", UNTIL, "--family", "bad family"], "is not a family name"),
        (
            ["{arn}", "--reason", "r", "--until", UNTIL, "--family", "b", "--revision-only"],
            "covers that revision alone",
        ),
        (["{tagged}", "--reason", "r", "--until", UNTIL], "runs an image by tag"),
        (["{compliant}", "--reason", "r", "--until", UNTIL], "no container is privileged"),
        (["{missing}", "--reason", "r", "--until", UNTIL], "cannot describe"),
    ],
)
def test_bad_requests_write_nothing(registry: Sandbox, args: list[str], message: str) -> None:
    arn = csi(registry)
    names = {
        "arn": arn,
        "tagged": csi(registry, image="registry.example.com/csi:1", family="tagged"),
        "compliant": csi(registry, family="plain", privileged=False),
        "missing": arn.replace("csi:1", "csi:99"),
    }
    code, out, err = run("add", *(a.format(**names) for a in args))
    assert code == 2 and out == "" and message in err, err
    assert items(registry) == {}


def test_no_table_is_a_clear_error(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXEMPTIONS_TABLE", raising=False)
    code, _, err = run("list")
    assert code == 2 and "EXEMPTIONS_TABLE" in err
