"""Issue 15 in the sweep (`ecs-remediate scan` against a moto server): the row names a privileged revision's source
in every output format, and the sweep's rollout leaves CloudFormation-managed services alone unless
--rollout-managed, for the family's latest revision and for older ones (--scope active)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator
from test_iac_sources import STACK_ARN, cfn_tags

from demo.sandbox import Sandbox
from ecs_remediate.cli.main import main

FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]
BATCH_IMPORT = (
    botocore.session.get_session().get_service_model("securityhub").operation_model("BatchImportFindings").input_shape
)


def container(version: str, privileged: bool = True) -> dict[str, Any]:
    return {"name": "agent", "image": f"agent:{version}", "memory": 64, "privileged": privileged}


def scan(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", *FAST, *args], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def estate(sandbox: Sandbox) -> dict[str, str]:
    """monitoring:1 from a CloudFormation stack (tags), web:1 by hand (no tags), api:1 compliant."""
    arns = {}
    for family, tags, privileged in (
        ("monitoring", cfn_tags("AgentTaskDefinition"), True),
        ("web", [], True),
        ("api", [], False),
    ):
        params: dict[str, Any] = {"family": family, "containerDefinitions": [container("1", privileged)]}
        if tags:
            params["tags"] = tags
        arns[family] = sandbox.register(params)["taskDefinition"]["taskDefinitionArn"]
    return arns


STACK_SOURCE = "CloudFormation stack app-stack, resource AgentTaskDefinition"


def test_the_sweep_row_names_the_source_in_every_format(sandbox: Sandbox, estate: dict[str, str]) -> None:
    code, out, _ = scan("--output", "json")
    assert code == 1
    rows = {row["taskDefinitionArn"]: row for row in json.loads(out)}
    stack_row, hand_row, compliant = rows[estate["monitoring"]], rows[estate["web"]], rows[estate["api"]]
    assert stack_row["source"] == STACK_SOURCE
    assert stack_row["attribution"]["stackArn"] == STACK_ARN and stack_row["attribution"]["tool"] == "CloudFormation"
    assert hand_row["source"] == "source not recognised"  # the sweep has tags and registeredBy, no user agent
    assert compliant["source"] is None and compliant["attribution"] is None

    _, out, _ = scan("--output", "csv")
    by_arn = {row["taskDefinitionArn"]: row for row in csv.DictReader(io.StringIO(out))}
    assert by_arn[estate["monitoring"]]["source"] == STACK_SOURCE

    _, out, _ = scan("--output", "table")
    [line] = [line for line in out.splitlines() if "monitoring:1" in line]
    assert "CloudFormation stack app-stack, resource AgentTaskDefinition" in line

    _, out, _ = scan("--output", "asff")
    findings = {f["Resources"][0]["Id"]: f for f in json.loads(out)}
    fields = findings[estate["monitoring"]]["ProductFields"]
    assert fields["ecs-remediate/Source"] == STACK_SOURCE
    assert (fields["ecs-remediate/SourceTool"], fields["ecs-remediate/SourceStack"]) == ("CloudFormation", "app-stack")
    assert fields["ecs-remediate/SourceLogicalId"] == "AgentTaskDefinition"
    assert "ecs-remediate/Source" not in findings[estate["api"]]["ProductFields"]
    validation = ParamValidator().validate({"Findings": list(findings.values())}, BATCH_IMPORT)
    assert not validation.has_errors(), validation.generate_report()

    _, out, _ = scan("--output", "ocsf")
    events = {e["resources"][0]["uid"]: e for e in json.loads(out)}
    source = events[estate["monitoring"]]["unmapped"]["ecs_remediate"]["source"]
    assert (source["stackName"], source["logicalId"]) == ("app-stack", "AgentTaskDefinition")

    _, out, _ = scan("--output", "html")
    assert '<th data-type="text" scope="col">Source</th>' in out
    assert f'<td data-sort="{STACK_SOURCE}">{STACK_SOURCE}</td>' in out


def test_the_summary_notice_names_the_source(sandbox: Sandbox, estate: dict[str, str], monkeypatch: Any) -> None:
    from ecs_remediate.core.config import Config
    from ecs_remediate.sweep import run as sweep
    from ecs_remediate.sweep.notice import build_sweep_summary

    report = sweep.sweep(["us-east-1"], Config(), scope=sweep.ACTIVE, max_attempts=2)
    rows = [f.to_json() for f in report.findings if f.open]
    message = build_sweep_summary(
        region="us-east-1", scope="active", mode="report", counts=report.counts(), open_rows=rows,
        remediated_rows=[], seconds=1.0,
    )  # fmt: skip
    assert f"monitoring:1 (agent): reported [source: {STACK_SOURCE}]" in message.text


def services(sandbox: Sandbox, arn: str) -> None:
    ecs = sandbox.client("ecs")
    ecs.create_cluster(clusterName="blue")
    ecs.create_service(
        cluster="blue", serviceName="agent-stack", taskDefinition=arn, desiredCount=1, tags=cfn_tags("AgentService")
    )


def on(sandbox: Sandbox, service: str) -> str:
    [svc] = sandbox.client("ecs").describe_services(cluster="blue", services=[service])["services"]
    return str(svc["taskDefinition"]).rsplit("/", 1)[1]


def remediate_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)


def test_latest_scope_rollout_leaves_a_stack_service_and_says_why(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = sandbox.register({"family": "monitoring", "containerDefinitions": [container("1")]})["taskDefinition"][
        "taskDefinitionArn"
    ]
    services(sandbox, arn)
    remediate_env(sandbox, monkeypatch)
    code, out, err = scan("--scope", "latest", "--remediate", "--rollout", "--output", "json")
    assert code == 0, err
    [row] = json.loads(out)
    assert row["action"].startswith("remediated: still used by blue/agent-stack")
    assert "not moved: it belongs to CloudFormation stack app-stack, resource AgentService" in row["action"]
    assert on(sandbox, "agent-stack") == "monitoring:1"

    # monitoring:1 is now an older revision, its fixed copy the latest: the active sweep finishes the job.
    code, out, err = scan(
        "--scope", "active", "--remediate", "--rollout", "--rollout-managed", "--retire", "--output", "json"
    )  # fmt: skip
    assert code == 0, err  # moved, then deregistered: nothing left
    assert on(sandbox, "agent-stack") == "monitoring:2"  # the copy registered by the first run
    rows = {row["taskDefinitionArn"]: row for row in json.loads(out)}
    assert "fixed copy :2 found" in rows[arn]["action"] and "the stack now has drift" in rows[arn]["action"]
    assert sandbox.describe(arn)["taskDefinition"]["status"] == "INACTIVE"


def test_active_scope_does_not_copy_an_older_revision_only_stack_services_use(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = sandbox.register({"family": "monitoring", "containerDefinitions": [container("1")]})["taskDefinition"][
        "taskDefinitionArn"
    ]
    sandbox.register({"family": "monitoring", "containerDefinitions": [container("2", privileged=False)]})
    services(sandbox, old)
    remediate_env(sandbox, monkeypatch)
    code, out, err = scan("--scope", "active", "--remediate", "--rollout", "--output", "json")
    rows = {row["taskDefinitionArn"]: row for row in json.loads(out)}
    assert code == 1, err  # the older privileged revision is left, and says why
    assert "not copied: every service that uses it belongs to a CloudFormation stack (app-stack)" in rows[old]["action"]
    assert len(sandbox.active_revisions("monitoring")) == 2 and on(sandbox, "agent-stack") == "monitoring:1"

    code, out, err = scan(
        "--scope", "active", "--remediate", "--rollout", "--rollout-managed", "--retire", "--output", "json"
    )  # fmt: skip
    assert code == 0, err
    rows = {row["taskDefinitionArn"]: row for row in json.loads(out)}
    assert "the stack now has drift" in rows[old]["action"] and rows[old]["action"].startswith("retired:")
    moved = sandbox.describe(on(sandbox, "agent-stack"))["taskDefinition"]
    assert (
        moved["containerDefinitions"][0]["image"] == "agent:1"
        and moved["containerDefinitions"][0]["privileged"] is False
    )


def test_rollout_managed_needs_rollout(sandbox: Sandbox) -> None:
    code, _, err = scan("--remediate", "--rollout-managed")
    assert code == 2 and "--rollout-managed needs --rollout" in err
