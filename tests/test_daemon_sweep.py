"""Issue 13 acceptance, the sweep: task definitions and daemon task definitions judged together, every daemon list read
to its last page, every verdict equal to the ground truth, ERROR never PASS, the daemons that run each privileged
revision named (every daemon read once per Region), and with --remediate --daemon-rollout the daemon moved onto the
copy with its capacity providers unchanged. Against the daemon emulator behind the session's moto server."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from strategies import Calls, Fault
from test_daemon_rollout import daemon_state

from demo.daemon_sandbox import cluster_with_provider
from demo.sandbox import Sandbox
from ecs_remediate.cli.main import main
from ecs_remediate.core.config import Config
from ecs_remediate.core.policy import ERROR, EXEMPT, FAIL, PASS
from ecs_remediate.sweep import run as sweep
from ecs_remediate.sweep.run import Rate

REGION = "us-east-1"
FAST = {op: Rate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
CLI_FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]


def agent(privileged: bool, image: str = "public.ecr.aws/x/agent:1") -> dict[str, Any]:
    return {"name": "agent", "image": image, "privileged": privileged, "linuxParameters": {"initProcessEnabled": True}}


@dataclass
class World:
    truth: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # arn -> (status, privileged containers)
    arns: dict[str, str] = field(default_factory=dict)  # name -> arn
    daemons: dict[str, str] = field(default_factory=dict)  # name -> daemon arn
    providers: dict[str, str] = field(default_factory=dict)


def seed(sandbox: Sandbox) -> World:
    """130 compliant daemon task definitions in 13 families (two pages), privileged ones (latest, superseded,
    exempt), two daemons on privileged revisions, and task definitions beside them."""
    ecs, world = sandbox.client("ecs"), World()

    def daemon_td(name: str, family: str, privileged: bool, status: str) -> str:
        arn = str(
            ecs.register_daemon_task_definition(family=family, containerDefinitions=[agent(privileged)])[
                "daemonTaskDefinitionArn"
            ]
        )
        world.arns[name], world.truth[arn] = arn, (status, ["agent"] if privileged else [])
        return arn

    for family in range(13):
        for revision in range(10):
            daemon_td(f"bulk-{family}-{revision}", f"bulk-{family:02d}", False, PASS)
    sensor = daemon_td("sensor:1", "sensor", True, FAIL)  # the family's latest: copied with --remediate
    old = daemon_td("old:1", "old", True, FAIL)  # superseded by a compliant :2
    daemon_td("old:2", "old", False, PASS)
    exempt = daemon_td("vendor:1", "vendor", True, EXEMPT)
    until = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    sandbox.exempt(exempt, "vendor sensor needs privileged (SEC-7)", until)
    cluster, provider = cluster_with_provider(sandbox)
    world.providers["agents"] = provider
    for name, arn in (("sensor", sensor), ("old-agent", old)):
        created = ecs.create_daemon(
            daemonName=name, clusterArn=cluster, daemonTaskDefinitionArn=arn, capacityProviderArns=[provider]
        )
        world.daemons[name] = str(created["daemonArn"])
    for family, privileged in (("web", True), ("api", False)):
        container = {"name": "app", "image": "nginx", "memory": 64, "privileged": privileged}
        arn = ecs.register_task_definition(family=family, containerDefinitions=[container])["taskDefinition"][
            "taskDefinitionArn"
        ]
        world.arns[family], world.truth[arn] = arn, (FAIL if privileged else PASS, ["app"] if privileged else [])
    return world


@pytest.fixture
def world(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> World:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    return seed(sandbox)


def config(sandbox: Sandbox, **changes: Any) -> Config:
    return Config(exemptions_table=sandbox.exemptions_table, **changes)


def verdicts(report: sweep.SweepReport) -> dict[str, tuple[str, list[str]]]:
    return {f.task_definition_arn: (f.status, f.privileged_containers) for f in report.findings}


def test_task_definitions_and_daemon_task_definitions_together_across_pages(sandbox: Sandbox, world: World) -> None:
    clients: list[Any] = []

    def make_client(region: str | None) -> Any:
        client = sweep.ecs_client(region, max_attempts=2)
        clients.append(Calls(client))
        return client

    report = sweep.sweep([REGION], config(sandbox), scope=sweep.ACTIVE, rates=FAST, make_client=make_client)
    assert verdicts(report) == world.truth
    [calls] = clients
    assert calls.count("ListDaemonTaskDefinitions") == 2  # 135 ACTIVE revisions: 100 + 35
    assert calls.count("ListClusters") == 1  # every daemon read once for the Region, not per revision
    rows = {f.task_definition_arn: f.to_json() for f in report.findings}
    sensor = rows[world.arns["sensor:1"]]
    assert sensor["resourceType"] == "daemon task definition" and sensor["daemons"] == ["agents/sensor (sensor:1)"]
    assert rows[world.arns["old:1"]]["daemons"] == ["agents/old-agent (old:1)"]
    assert rows[world.arns["old:1"]]["action"].startswith("superseded: ")
    assert rows[world.arns["vendor:1"]]["daemons"] == []
    assert "resourceType" not in rows[world.arns["web"]]  # task definition rows are as they were
    assert report.counts() == {
        PASS: 132,
        FAIL: 3,  # sensor:1, old:1, and the task definition web:1
        EXEMPT: 1,
        ERROR: 0,
    }


def test_latest_scope_judges_the_newest_of_each_daemon_family(sandbox: Sandbox, world: World) -> None:
    report = sweep.sweep([REGION], config(sandbox), scope=sweep.LATEST, rates=FAST)
    daemon_rows = {
        f.task_definition_arn: f.status for f in report.findings if "daemon-task-definition/" in f.task_definition_arn
    }
    assert len(daemon_rows) == 16  # 13 bulk families, sensor, old, vendor
    assert daemon_rows[world.arns["sensor:1"]] == FAIL and world.arns["old:1"] not in daemon_rows
    assert daemon_rows[world.arns["old:2"]] == PASS


def test_a_describe_that_keeps_failing_is_error_never_pass(sandbox: Sandbox, world: World) -> None:
    failing = [world.arns["bulk-3-4"], world.arns["sensor:1"]]

    def make_client(region: str | None) -> Any:
        client = sweep.ecs_client(region, max_attempts=2)
        for arn in failing:
            Fault(client, "DescribeDaemonTaskDefinition", "throttle", times=None, body=json.dumps(arn))
        return client

    report = sweep.sweep([REGION], config(sandbox), scope=sweep.ACTIVE, rates=FAST, make_client=make_client)
    rows = {f.task_definition_arn: f for f in report.findings}
    for arn in failing:
        assert rows[arn].status == ERROR and "ThrottlingException" in (rows[arn].error or "")
    assert {a: v for a, v in verdicts(report).items() if a not in failing} == {
        a: v for a, v in world.truth.items() if a not in failing
    }
    assert report.open >= 2 and "2 ERROR" in report.summary()


def test_a_listing_that_fails_part_way_is_an_error_row(sandbox: Sandbox, world: World) -> None:
    def make_client(region: str | None) -> Any:
        client = sweep.ecs_client(region, max_attempts=2)
        Fault(client, "ListDaemonTaskDefinitions", "access-denied", times=None, body='"nextToken"')
        return client

    report = sweep.sweep([REGION], config(sandbox), scope=sweep.ACTIVE, rates=FAST, make_client=make_client)
    [error] = [f for f in report.findings if f.status == ERROR]
    assert error.task_definition_arn.endswith(":daemon-task-definition/*")
    assert "ListDaemonTaskDefinitions failed, the sweep of daemon task definitions is incomplete" in (error.error or "")
    assert report.open >= 1


def test_unknown_daemons_are_said_so_never_taken_as_none(sandbox: Sandbox, world: World) -> None:
    def make_client(region: str | None) -> Any:
        client = sweep.ecs_client(region, max_attempts=2)
        Fault(client, "ListDaemons", "access-denied", times=None)
        return client

    report = sweep.sweep([REGION], config(sandbox), scope=sweep.ACTIVE, rates=FAST, make_client=make_client)
    row = next(f.to_json() for f in report.findings if f.task_definition_arn == world.arns["sensor:1"])
    assert row["status"] == FAIL and row["daemons"][0].startswith("unknown: which daemons run it could not be")


def scan(*args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", *CLI_FAST, *args], stdout, stderr)
    return code, {row["taskDefinitionArn"]: row for row in json.loads(stdout.getvalue() or "[]")}, stderr.getvalue()


def test_scan_remediate_with_daemon_rollout_moves_the_daemon_onto_the_copy(sandbox: Sandbox, world: World) -> None:
    code, rows, err = scan("--scope", "active", "--remediate", "--daemon-rollout")
    assert code == 1, err  # old:1 stays FAIL (superseded: never copied), as web's older revisions would
    sensor = rows[world.arns["sensor:1"]]
    assert sensor["action"].startswith("remediated: daemon task definition copy; moved agents/sensor (deployment ")
    copy = sensor["newTaskDefinitionArn"]
    running, providers, _ = daemon_state(sandbox, world.daemons["sensor"])
    assert running == [copy] and providers == [[world.providers["agents"]]]
    assert daemon_state(sandbox, world.daemons["old-agent"])[0] == [world.arns["old:1"]]  # superseded: not moved
    assert rows[world.arns["web"]]["action"].startswith("remediated")  # task definitions as before
    # the next sweep judges the copy PASS and the source superseded by it (as for task definitions); no second copy
    _, again, _ = scan("--scope", "active", "--remediate", "--daemon-rollout")
    assert again[copy]["status"] == PASS and again[world.arns["sensor:1"]]["action"].startswith("superseded: ")
    listed = sandbox.client("ecs").list_daemon_task_definitions(family="sensor")["daemonTaskDefinitions"]
    assert len(listed) == 2


def test_scan_retire_deletes_only_what_no_daemon_runs(sandbox: Sandbox, world: World) -> None:
    ecs = sandbox.client("ecs")
    unused = str(
        ecs.register_daemon_task_definition(family="old", containerDefinitions=[agent(True)])["daemonTaskDefinitionArn"]
    )  # old:3, privileged and latest: copied; its copy is old:4
    _, rows, _ = scan("--scope", "active", "--remediate", "--retire")
    assert rows[world.arns["old:1"]]["action"].startswith("superseded: ")  # the daemon old-agent runs it
    assert "not deleted: 1 daemon(s) still run it (agents/old-agent)" in rows[world.arns["old:1"]]["action"]
    status = ecs.describe_daemon_task_definition(daemonTaskDefinition=world.arns["old:1"])["daemonTaskDefinition"]
    assert status["status"] == "ACTIVE"
    assert "deleted (DeleteDaemonTaskDefinition" in rows[unused]["action"]
    assert ecs.describe_daemon_task_definition(daemonTaskDefinition=unused)["daemonTaskDefinition"]["status"] in (
        "DELETE_IN_PROGRESS",
        "DELETED",
    )


def test_daemon_rollout_needs_remediate(sandbox: Sandbox, world: World) -> None:
    code, _, err = scan("--daemon-rollout")
    assert code == 2 and "--daemon-rollout need --remediate" in err


@pytest.mark.parametrize("output", ["csv", "table", "ocsf", "asff", "html"])
def test_every_output_format_takes_daemon_rows(sandbox: Sandbox, world: World, output: str) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", output, *CLI_FAST], stdout, stderr)
    assert code == 1, stderr.getvalue()
    text = stdout.getvalue()
    assert "daemon-task-definition/sensor:1" in text or "daemon task definition sensor:1" in text
    if output == "csv":
        import csv

        rows = {r["taskDefinitionArn"]: r for r in csv.DictReader(io.StringIO(text))}
        sensor = rows[world.arns["sensor:1"]]
        assert (sensor["resourceType"], sensor["daemons"]) == ("daemon task definition", "agents/sensor (sensor:1)")
        assert rows[world.arns["web"]]["resourceType"] == ""
    if output == "table":
        assert any(line.startswith("FAIL") and "daemon task definition sensor:1" in line for line in text.splitlines())
