"""Issue 6 through the sweep (`ecs-remediate scan` and the scheduled function) against a moto server behind the
paging proxy: --rollout and --retire, older privileged revisions in --scope active (a fixed copy only where a
service uses one, the family's latest kept), and exemptions (valid, no reason, expired, expiring, family glob)."""

from __future__ import annotations

import importlib
import io
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.adapters.aws import ClientError
from ecs_remediate.cli.main import main
from ecs_remediate.sweep import run as sweep
from emulators.throttle_proxy import BucketRate, ThrottleProxy

FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]
OUTPUT_ONLY = {
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
}


def container(version: str, privileged: bool = True) -> dict[str, Any]:
    return {"name": "app", "image": f"nginx:{version}", "memory": 64, "privileged": privileged}


@pytest.fixture
def box(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    sandbox = Sandbox(endpoint_url=moto_server).create()
    for name in (
        "MODE",
        "TOPIC_ARN",
        "IDEMPOTENCY_TABLE",
        "EXEMPTIONS_TABLE",
        "EXEMPT_FAMILIES",
        "EXEMPT_FAMILIES_ACKNOWLEDGED",
        "SWEEP_RATES",
        "ROLLOUT",
        "RETIRE",
    ):
        monkeypatch.delenv(name, raising=False)
    limits = {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
    with ThrottleProxy(moto_server, limits, page_size=2) as proxy:  # every list is paged
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        aws.reset_clients()
        yield sandbox
    aws.reset_clients()


@pytest.fixture
def function_env(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for name, value in box.env().items():
        monkeypatch.setenv(name, value)
    return box


def scan(*args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", *FAST, *args], stdout, stderr)
    rows = {row["taskDefinitionArn"]: row for row in json.loads(stdout.getvalue() or "[]")}
    return code, rows, stderr.getvalue()


def register(box: Sandbox, family: str, *containers: dict[str, Any], tags: list[dict[str, str]] | None = None) -> str:
    params: dict[str, Any] = {"family": family, "containerDefinitions": list(containers)}
    if tags:
        params["tags"] = tags
    return str(box.register(params)["taskDefinition"]["taskDefinitionArn"])


def service(box: Sandbox, cluster: str, name: str, arn: str, controller: str = "ECS") -> None:
    box.client("ecs").create_service(
        cluster=cluster,
        serviceName=name,
        taskDefinition=arn,
        desiredCount=1,
        deploymentController={"type": controller},
    )


def services(box: Sandbox) -> dict[str, str]:
    ecs, found = box.client("ecs"), {}
    for cluster in ecs.list_clusters()["clusterArns"]:
        arns = ecs.list_services(cluster=cluster)["serviceArns"]
        for svc in ecs.describe_services(cluster=cluster, services=arns)["services"] if arns else []:
            found[f"{cluster.rsplit('/', 1)[1]}/{svc['serviceName']}"] = svc["taskDefinition"].rsplit("/", 1)[1]
    return found


def active_privileged(box: Sandbox) -> list[str]:
    arns = []
    for page in box.client("ecs").get_paginator("list_task_definitions").paginate(status="ACTIVE"):
        for arn in page["taskDefinitionArns"]:
            task_definition = box.describe(arn)["taskDefinition"]
            if any(c.get("privileged") for c in task_definition["containerDefinitions"]):
                arns.append(arn.rsplit("/", 1)[1])
    return sorted(arns)


def content(box: Sandbox, ref: str) -> dict[str, Any]:
    """What a revision runs: its input members, privileged flags set false."""
    task_definition = {k: v for k, v in box.describe(ref)["taskDefinition"].items() if k not in OUTPUT_ONLY}
    for each in task_definition["containerDefinitions"]:
        each["privileged"] = False
    return task_definition


def latest(box: Sandbox, family: str) -> str:
    return max(box.active_revisions(family), key=lambda arn: int(arn.rsplit(":", 1)[1])).rsplit("/", 1)[1]


# --- flags ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [["--rollout"], ["--retire"], ["--rollout", "--retire"]])
def test_rollout_and_retire_need_remediate(box: Sandbox, flags: list[str]) -> None:
    register(box, "web", container("v1"))
    code, rows, err = scan(*flags)
    assert code == 2 and rows == {}
    assert "need --remediate" in err
    assert len(box.active_revisions("web")) == 1


# --- latest scope: rollout after remediation ----------------------------------------------------------------


def test_latest_scope_rollout_moves_only_ecs_services_on_the_privileged_revision(function_env: Sandbox) -> None:
    box = function_env
    ecs = box.client("ecs")
    for cluster in ("blue", "green"):
        ecs.create_cluster(clusterName=cluster)
    web = register(box, "web", container("v1"))
    other = register(box, "other", container("v1", privileged=False))
    service(box, "blue", "web-ecs", web)
    service(box, "green", "web-ecs-2", web)
    service(box, "green", "web-bluegreen", web, "CODE_DEPLOY")
    service(box, "blue", "other", other)

    code, rows, err = scan("--remediate", "--rollout")

    assert code == 0, err
    assert services(box) == {
        "blue/web-ecs": "web:2",
        "green/web-ecs-2": "web:2",
        "green/web-bluegreen": "web:1",  # CODE_DEPLOY: listed, not touched
        "blue/other": "other:1",
    }
    action = rows[web]["action"]
    assert action.startswith("remediated: moved ")
    assert "blue/web-ecs (deployment " in action and "green/web-ecs-2 (deployment " in action
    assert "still used by green/web-bluegreen (CODE_DEPLOY): blue/green (CodeDeploy)" in action
    assert "1 ACTIVE privileged revision(s) left in the family" in action  # no --retire: it stays
    assert box.describe(web)["taskDefinition"]["status"] == "ACTIVE"
    [note] = box.inbox()  # the function's notice, from the same code path
    assert sorted(s["service"] for s in note.payload["servicesUpdated"]) == ["web-ecs", "web-ecs-2"]
    assert [s["service"] for s in note.payload["servicesManual"]] == ["web-bluegreen"]
    assert note.payload["remainingPrivileged"] == 1


def test_latest_scope_retire_deregisters_the_replaced_revision_when_unused(function_env: Sandbox) -> None:
    box = function_env
    box.client("ecs").create_cluster(clusterName="blue")
    web = register(box, "web", container("v1"))
    service(box, "blue", "web", web)
    code, rows, err = scan("--remediate", "--rollout", "--retire")
    assert code == 0, err
    assert services(box) == {"blue/web": "web:2"}
    assert box.describe(web)["taskDefinition"]["status"] == "INACTIVE"
    assert "deregistered (INACTIVE)" in rows[web]["action"]
    assert active_privileged(box) == []


# --- active scope: older privileged revisions ---------------------------------------------------------------


def estate(box: Sandbox) -> dict[str, str]:
    """web:1 (used by an ECS and a CODE_DEPLOY service), web:2 (unused), web:3 latest (used);
    solo:1 (used by an ECS service), solo:2 latest (unused); ok:1 compliant, used. Two clusters."""
    ecs = box.client("ecs")
    for cluster in ("blue", "green"):
        ecs.create_cluster(clusterName=cluster)
    arns = {
        "web:1": register(box, "web", container("v1")),
        "web:2": register(box, "web", container("v2")),
        "web:3": register(
            box,
            "web",
            container("v3"),
            {"name": "log", "image": "fluent-bit", "memory": 32},
            tags=[{"key": "team", "value": "payments"}],
        ),
        "solo:1": register(box, "solo", container("v1")),
        "solo:2": register(box, "solo", container("v2")),
        "ok:1": register(box, "ok", container("v1", privileged=False)),
    }
    service(box, "blue", "web-old", arns["web:1"])
    service(box, "green", "web-old-bg", arns["web:1"], "CODE_DEPLOY")
    service(box, "green", "web-current", arns["web:3"])
    service(box, "blue", "solo-old", arns["solo:1"])
    service(box, "blue", "ok", arns["ok:1"])
    return arns


def test_active_scope_rollout_and_retire_leave_only_what_a_codedeploy_service_holds(function_env: Sandbox) -> None:
    box = function_env
    arns = estate(box)
    web_latest_before = content(box, arns["web:3"])
    solo_latest_before = content(box, arns["solo:2"])

    code, rows, err = scan("--scope", "active", "--remediate", "--rollout", "--retire")

    assert code == 1, err  # web:1 is still used by the CODE_DEPLOY service
    assert services(box) == {
        "blue/web-old": "web:5",  # the fixed copy of web:1 (same image), not the latest
        "green/web-old-bg": "web:1",  # CODE_DEPLOY: the manual step
        "green/web-current": "web:4",  # the fixed copy of web:3
        "blue/solo-old": "solo:4",
        "blue/ok": "ok:1",
    }
    assert active_privileged(box) == ["web:1"]
    # the copies of older revisions keep their own content; the family's latest is the previous latest's content
    assert box.describe("web:5")["taskDefinition"]["containerDefinitions"][0]["image"] == "nginx:v1"
    assert box.describe("solo:4")["taskDefinition"]["containerDefinitions"][0]["image"] == "nginx:v1"
    assert latest(box, "web") == "web:6" and content(box, "web:6") == web_latest_before
    assert latest(box, "solo") == "solo:5" and content(box, "solo:5") == solo_latest_before
    assert {"key": "team", "value": "payments"} in box.describe("web:6")["tags"]
    marker = {t["key"]: t["value"] for t in box.describe("web:5")["tags"]}["ecs-remediate:source-revision"]
    assert marker == "web:1"

    web1, web2, web3 = rows[arns["web:1"]], rows[arns["web:2"]], rows[arns["web:3"]]
    assert web3["action"].startswith("remediated: moved green/web-current") and "deregistered" in web3["action"]
    assert web2["action"] == "retired: no service uses it; deregistered (INACTIVE)"
    assert web1["status"] == "FAIL" and web1["action"].startswith("superseded: fixed copy :5 registered")
    assert "family latest restored as :6 (copy of web:4)" in web1["action"]
    assert "moved blue/web-old (deployment " in web1["action"]
    assert "still used by green/web-old-bg (CODE_DEPLOY): blue/green (CodeDeploy): deploy an AppSpec" in web1["action"]
    assert "web:5" in web1["action"] and "not deregistered: 1 service(s) still use it" in web1["action"]
    assert web1["newTaskDefinitionArn"].endswith("web:5")
    solo1 = rows[arns["solo:1"]]
    assert (
        solo1["action"].startswith("retired: fixed copy :4 registered") and "deregistered (INACTIVE)" in solo1["action"]
    )
    assert "2 remediated; 2 retired; 1 left to fix" in err

    # A rerun finds the copies, the moved services and the INACTIVE revisions: it registers nothing.
    revisions_before = {family: box.active_revisions(family) for family in ("web", "solo", "ok")}
    code, rows, err = scan("--scope", "active", "--remediate", "--rollout", "--retire")
    assert code == 1, err
    assert {family: box.active_revisions(family) for family in ("web", "solo", "ok")} == revisions_before
    web1 = rows[arns["web:1"]]
    assert (
        web1["action"].startswith("superseded: fixed copy :5 found")
        and "green/web-old-bg (CODE_DEPLOY)" in web1["action"]
    )
    assert [row["status"] for row in rows.values()].count("FAIL") == 1
    # once the CodeDeploy service is moved by hand, the next sweep retires web:1
    box.client("ecs").update_service(cluster="green", service="web-old-bg", taskDefinition=web1["newTaskDefinitionArn"])
    code, rows, err = scan("--scope", "active", "--remediate", "--rollout", "--retire")
    assert code == 0, err
    assert rows[arns["web:1"]]["action"] == "retired: no service uses it; deregistered (INACTIVE)"
    assert active_privileged(box) == []
    assert latest(box, "web") == "web:6"


def test_active_scope_without_rollout_or_retire_says_what_each_would_do(function_env: Sandbox) -> None:
    box = function_env
    arns = estate(box)
    code, rows, err = scan("--scope", "active", "--remediate", "--retire")
    assert code == 1, err
    web1 = rows[arns["web:1"]]
    assert web1["status"] == "FAIL"
    assert web1["action"].startswith(
        "superseded: used by 2 service(s): blue/web-old (ECS), green/web-old-bg (CODE_DEPLOY)"
    )
    assert "--rollout moves them" in web1["action"]
    assert rows[arns["web:2"]]["action"].startswith("retired: ")
    assert box.describe(arns["web:1"])["taskDefinition"]["status"] == "ACTIVE"
    assert services(box)["blue/web-old"] == "web:1"  # nothing moved
    assert latest(box, "web") == "web:4"  # no copy of an older revision

    code, rows, err = scan("--scope", "active", "--remediate", "--rollout")  # rollout, no retire
    unused = [row for row in rows.values() if row["action"].startswith("superseded: no service uses it")]
    assert unused == [] or all("--retire would deregister it" in row["action"] for row in unused)
    web1 = rows[arns["web:1"]]
    assert "--retire would deregister it once no service uses it" in web1["action"]
    assert box.describe(arns["web:1"])["taskDefinition"]["status"] == "ACTIVE"


def test_active_scope_rollout_without_retire_keeps_unused_older_revisions(function_env: Sandbox) -> None:
    box = function_env
    older = register(box, "web", container("v1"))
    register(box, "web", container("v2"))
    code, rows, err = scan("--scope", "active", "--remediate", "--rollout")
    assert code == 1, err
    assert rows[older]["action"] == "superseded: no service uses it; --retire would deregister it"
    assert box.describe(older)["taskDefinition"]["status"] == "ACTIVE"


def test_an_interrupted_run_is_repaired_the_family_latest_restored(function_env: Sandbox) -> None:
    """A copy of an older revision registered, then the sweep stopped: the latest is a roll-back. The next
    sweep registers the previous latest again before anything else."""
    box = function_env
    box.client("ecs").create_cluster(clusterName="blue")
    old = register(box, "web", container("v1"))
    register(box, "web", container("v2", privileged=False))  # web:2, the latest
    service(box, "blue", "web-old", old)
    marker = [{"key": "ecs-remediate:source-revision", "value": "web:1"}]
    register(box, "web", container("v1", privileged=False), tags=marker)  # web:3: the copy, left as latest
    code, rows, err = scan("--scope", "active", "--remediate", "--rollout", "--retire")
    assert code == 0, err
    assert latest(box, "web") == "web:4" and content(box, "web:4") == content(box, "web:2")
    assert services(box) == {"blue/web-old": "web:3"}  # the copy found by its marker, not registered again
    assert "family latest restored as :4 (copy of web:2)" in rows[old]["action"]
    assert box.describe(old)["taskDefinition"]["status"] == "INACTIVE"


def test_older_revision_whose_service_lookup_fails_is_error(
    function_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = function_env
    older = register(box, "web", container("v1"))
    register(box, "web", container("v2"))

    def denied(self: Any, arn: str) -> list[Any]:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListClusters")

    monkeypatch.setattr(aws.Ecs, "services_using", denied)
    code, rows, err = scan("--scope", "active", "--remediate", "--retire")
    assert code == 1, err
    assert rows[older]["status"] == "ERROR" and "service lookup failed: AccessDeniedException" in rows[older]["error"]
    assert box.describe(older)["taskDefinition"]["status"] == "ACTIVE"  # nothing retired blindly


def test_latest_exempt_and_privileged_means_no_copy_of_older_revisions(function_env: Sandbox) -> None:
    box = function_env
    box.client("ecs").create_cluster(clusterName="blue")
    older = register(box, "web", container("v1"))
    until = (datetime.now(UTC).date() + timedelta(days=90)).isoformat()
    box.exempt(register(box, "web", container("v2")), "CSI", until)
    service(box, "blue", "web-old", older)
    code, rows, err = scan("--scope", "active", "--remediate", "--rollout", "--retire")
    assert code == 1, err
    assert "not copied: the latest revision :2 is itself privileged" in rows[older]["action"]
    assert len(box.active_revisions("web")) == 2


# --- exemptions through the sweep ---------------------------------------------------------------------------


def exemption_tags(reason: str | None, until: str | None) -> list[dict[str, str]]:
    tags = []
    if reason is not None:
        tags.append({"key": "ecs-remediate:exempt-reason", "value": reason})
    if until is not None:
        tags.append({"key": "ecs-remediate:exempt-until", "value": until})
    return tags


def exemption_estate(box: Sandbox) -> dict[str, str]:
    """Registry items an approver wrote (valid, no reason, expired, expiring soon, beyond the maximum), a revision
    whose own tags claim an exemption, and one exempt by the configured glob."""
    today = datetime.now(UTC).date()
    cases = {
        "valid": ("CSI node plugin", today + timedelta(days=60)),
        "no-reason": ("", today + timedelta(days=60)),
        "expired": ("was needed", today - timedelta(days=1)),
        "soon": ("migrating off", today + timedelta(days=4)),
        "too-long": ("forever", today + timedelta(days=400)),
    }
    arns = {}
    for name, (reason, until) in cases.items():
        arns[name] = register(box, name, container("v1"))
        box.exempt(arns[name], reason, until.isoformat())
    arns["self-tagged"] = register(
        box, "self-tagged", container("v1"), tags=exemption_tags("trust me", (today + timedelta(days=9)).isoformat())
    )
    arns["agent-node"] = register(box, "agent-node", container("v1"))  # exempt by the configured glob
    return arns


def test_exemptions_valid_no_reason_expired_expiring_and_glob(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    arns = exemption_estate(box)
    monkeypatch.setenv("EXEMPTIONS_TABLE", box.exemptions_table)
    monkeypatch.setenv("EXEMPT_FAMILIES", "agent-*")
    monkeypatch.setenv("EXEMPT_FAMILIES_ACKNOWLEDGED", "true")
    code, rows, err = scan()
    assert code == 1
    status = {name: rows[arn]["status"] for name, arn in arns.items()}
    assert status == {
        "valid": "EXEMPT",
        "no-reason": "FAIL",
        "expired": "FAIL",
        "soon": "EXEMPT",
        "too-long": "FAIL",
        "self-tagged": "FAIL",
        "agent-node": "EXEMPT",
    }
    until = (datetime.now(UTC).date() + timedelta(days=4)).isoformat()
    assert rows[arns["soon"]]["action"] == f"none: exempt until {until} (expires in 4 days): migrating off"
    assert rows[arns["valid"]]["action"].startswith("none: exempt until ")
    assert "expires" not in rows[arns["valid"]]["action"]
    assert "agent-*" in rows[arns["agent-node"]]["action"]
    assert rows[arns["no-reason"]]["error"] == "not exempt: the exemption of this revision has no reason"
    assert rows[arns["expired"]]["error"].startswith("not exempt: exemption expired on ")
    assert "beyond the 90-day maximum" in rows[arns["too-long"]]["error"]
    assert "not honoured" in rows[arns["self-tagged"]]["error"]
    assert "1 exemption(s) expire within 7 days:" in err and arns["soon"] in err
    assert "family globs exempt every matching family, later ones included: agent-*" in err


def test_scheduled_sweep_notifies_an_expiring_exemption_even_when_nothing_else_is_found(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    until = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    arn = register(box, "soon", container("v1"))
    box.exempt(arn, "migrating off", until)
    register(box, "plain", container("v1", privileged=False))
    for name, value in box.env(MODE="report").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SWEEP_RATES", "describe=1000/1000,list=1000/1000,register=1000/1000")
    aws.reset_clients()
    import ecs_remediate.functions.handler as module

    handler = importlib.reload(module)
    result = handler.sweep_handler({"scope": "latest"}, LambdaContext())
    assert result["open"] == 0 and result["notified"] is True
    [summary] = [note for note in box.inbox() if note.attributes.get("outcome") == "sweep"]
    assert summary.subject == "[ECS.4] sweep us-east-1: nothing left to fix, 1 exempt, 1 exemption(s) expiring"
    [row] = summary.payload["expiringExemptions"]
    assert row["taskDefinitionArn"] == arn and "(expires in 2 days)" in row["action"]
    [exempt] = summary.payload["exemptFindings"]  # every exempt revision is listed, not only the expiring
    assert exempt["taskDefinitionArn"] == arn
