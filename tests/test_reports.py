"""`scan --output ocsf|asff|html` against a moto server: OCSF read back by Prowler's own OCSF models
(py-ocsf-models, from the Prowler virtualenv `make test-all` builds), ASFF validated against botocore's
BatchImportFindings input shape, HTML escaped and self-contained; rows' accounts, statuses and fix commands."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from bench.sweep import PROWLER
from demo.sandbox import Sandbox
from ecs_remediate.cli.main import main
from ecs_remediate.reports import asff, html, ocsf
from ecs_remediate.reports.rows import Row, rows_from_report
from ecs_remediate.sweep import run as sweep

ROOT = Path(__file__).resolve().parent.parent
PROWLER_PYTHON = PROWLER.parent / "python"
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]
SECRET = "s3cr3t-env-value-7f3a"
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/"
NOW = datetime(2026, 11, 2, 10, 0, 0, tzinfo=UTC)

OCSF_CONSUMER = """
import json, sys
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
events = json.load(sys.stdin)
for event in events:
    model = DetectionFinding.model_validate(event)
    back = json.loads(model.model_dump_json(exclude_none=True))
    if back != event:  # a field the model does not know would be dropped here
        missing = sorted(set(event) - set(back)) or [k for k in event if event[k] != back.get(k)]
        sys.exit(f"not read back as written: {missing}")
print(json.dumps([[e.class_uid, e.type_uid, e.status_code, e.status_id, e.severity_id, e.finding_info.uid,
                   e.cloud.account.uid, e.cloud.region, [r.uid for r in e.resources]] for e in
                  (DetectionFinding.model_validate(x) for x in events)]))
"""


@pytest.fixture
def box(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for name in ("MODE", "TOPIC_ARN", "IDEMPOTENCY_TABLE", "EXEMPT_FAMILIES", "SWEEP_RATES", "ROLLOUT", "RETIRE"):
        monkeypatch.delenv(name, raising=False)
    box = Sandbox(endpoint_url=moto_endpoint).create()
    monkeypatch.setenv("EXEMPTIONS_TABLE", box.exemptions_table)
    return box


def seed(box: Sandbox) -> None:
    """web:1 and web:2 privileged (web:2 latest), api:1 compliant, csi:1 privileged and exempt; every container
    carries an environment value that must never reach a report."""
    env = [{"name": "TOKEN", "value": SECRET}]

    def register(family: str, privileged: bool, tags: list[dict[str, str]] | None = None) -> None:
        container = {"name": "app", "image": "nginx", "memory": 64, "privileged": privileged, "environment": env}
        box.register({"family": family, "containerDefinitions": [container], **({"tags": tags} if tags else {})})

    register("web", True)
    register("web", True)
    register("api", False)
    register("csi", True)
    until = (date.today() + timedelta(days=60)).isoformat()  # an approver exempts csi:1 in the registry
    box.exempt(box.describe("csi:1")["taskDefinition"]["taskDefinitionArn"], "CSI node plugin", until)


def scan(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", *args], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.mark.external  # py-ocsf-models, in .venv-prowler
def test_ocsf_is_read_back_by_prowlers_ocsf_models(box: Sandbox) -> None:
    if not PROWLER_PYTHON.exists():
        pytest.fail(f"py-ocsf-models is not at {PROWLER_PYTHON}: run `make prowler-venv` (make test-all does)")
    seed(box)
    code, out, err = scan("--scope", "active", "--output", "ocsf", *FAST)
    assert code == 1, err
    events = json.loads(out)
    assert SECRET not in out
    consumer = subprocess.run(
        [str(PROWLER_PYTHON), "-c", OCSF_CONSUMER], input=out, capture_output=True, text=True, timeout=120, check=False
    )
    assert consumer.returncode == 0, consumer.stderr
    read = {row[5].rsplit("/", 1)[-1]: row for row in json.loads(consumer.stdout)}
    assert sorted(read) == ["api:1", "csi:1", "web:1", "web:2"]
    # class 2004 Detection Finding, activity Create; the verdicts and workflow states as the consumer sees them
    assert {(r[0], r[1]) for r in read.values()} == {(2004, 200401)}
    assert [read[k][2:5] for k in ("api:1", "csi:1", "web:1", "web:2")] == [
        ["PASS", 4, 1],  # compliant: Resolved, Informational
        ["EXEMPT", 3, 2],  # exempt: Suppressed, Low
        ["FAIL", 1, 4],  # older privileged revision: New, High
        ["FAIL", 1, 4],
    ]
    assert {r[6] for r in read.values()} == {"123456789012"} and {r[7] for r in read.values()} == {"us-east-1"}
    assert read["web:2"][8] == [f"{ARN}web:2"]
    by_name = {e["finding_info"]["uid"].rsplit("/", 1)[-1]: e for e in events}
    assert by_name["web:2"]["remediation"]["desc"].startswith(
        "Run: aws ecs describe-task-definition --task-definition web:2 --include TAGS --region us-east-1 > td.json"
    )
    assert by_name["csi:1"]["unmapped"]["ecs_remediate"]["exemption_reason"] == "CSI node plugin"


def test_asff_validates_against_botocores_batch_import_findings_shape(box: Sandbox) -> None:
    seed(box)
    code, out, err = scan("--scope", "active", "--output", "asff", *FAST)
    assert code == 1, err
    findings = json.loads(out)
    assert SECRET not in out
    model = botocore.session.get_session().get_service_model("securityhub")
    shape = model.operation_model("BatchImportFindings").input_shape
    report = ParamValidator().validate({"Findings": findings}, shape)
    assert not report.has_errors(), report.generate_report()
    by_name = {f["Resources"][0]["Id"].rsplit("/", 1)[-1]: f for f in findings}
    assert sorted(by_name) == ["api:1", "csi:1", "web:1", "web:2"]
    assert {f["ProductArn"] for f in findings} == {
        "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"
    }
    assert [(by_name[k]["Compliance"]["Status"], by_name[k]["Workflow"]["Status"]) for k in sorted(by_name)] == [
        ("PASSED", "RESOLVED"),
        ("FAILED", "SUPPRESSED"),
        ("FAILED", "NEW"),
        ("FAILED", "NEW"),
    ]
    assert by_name["csi:1"]["Note"]["Text"].startswith("exempt until ")
    assert by_name["csi:1"]["Note"]["Text"].endswith(": CSI node plugin")
    assert by_name["web:2"]["Resources"][0]["Details"]["AwsEcsTaskDefinition"]["ContainerDefinitions"] == [
        {"Name": "app", "Privileged": True}
    ]
    assert (
        "ecs-remediate scan --region us-east-1 --scope active --remediate --rollout --retire"
        in (by_name["web:1"]["Remediation"]["Recommendation"]["Text"])
    )


def test_html_has_counts_rows_and_nothing_external(box: Sandbox) -> None:
    seed(box)
    code, out, err = scan("--scope", "active", "--output", "html", *FAST)
    assert code == 1, err
    assert SECRET not in out
    assert out.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in out
    for external in ("http://", "https://", "src=", "<link", "@import", "url("):
        assert external not in out.replace(asff.REFERENCE_URL, ""), external
    assert out.count("<tr class=") == 4  # one per revision
    assert "4 revision(s), active scope, us-east-1: 1 PASS, 2 FAIL, 1 EXEMPT, 0 ERROR" in out


def test_hostile_text_is_escaped_in_html() -> None:
    hostile = '<script>alert(1)</script><img src=x onerror=alert(2)>"'
    finding = sweep.Finding(f"{ARN}web:3", "ERROR", error=hostile, region="us-east-1", family="web", revision=3)
    report = sweep.SweepReport("latest", ["us-east-1"], [finding], sweep.CallStats(), 0.1)
    page = html.render(report, now=NOW)
    assert hostile not in page and "<script>alert" not in page and "<img" not in page
    assert html.html.escape(hostile, quote=True) in page
    assert page.count("<script>") == 1  # the sorting script only


def test_row_account_region_and_statuses() -> None:
    exemption = SimpleNamespace(valid=True, reason="CSI node plugin", why="x", until=date(2027, 3, 31))
    findings: list[Any] = [
        sweep.Finding(f"{ARN}web:7", "FAIL", ["app"], "remediated", f"{ARN}web:8", None, "us-east-1", "web", 7),
        sweep.Finding(f"{ARN}web:8", "PASS", [], "none", None, None, "us-east-1", "web", 8),
        sweep.Finding(
            f"{ARN}csi:4", "EXEMPT", ["node"], "none: exempt until 2027-03-31: CSI", None, None, "us-east-1", "csi", 4
        ),
        sweep.Finding(
            f"{ARN}old:1",
            "FAIL",
            ["x"],
            "retired: no service uses it; deregistered (INACTIVE)",
            region="us-east-1",
            family="old",
            revision=1,
        ),
        sweep.Finding(f"{ARN}api:3", "FAIL", ["app"], "reported", region="us-east-1", family="api", revision=3),
        sweep.Finding(
            "arn:aws:ecs:eu-west-1:*:task-definition/*",
            "ERROR",
            error="ListTaskDefinitionFamilies failed",
            region="eu-west-1",
            family="~",
        ),
    ]
    findings[2].exemption = exemption
    member = SimpleNamespace(**{**vars(findings[4]), "account": "210987654321"})
    report = sweep.SweepReport("latest", ["us-east-1", "eu-west-1"], findings, sweep.CallStats(), 1.0)
    rows = rows_from_report(report)
    assert [r.account for r in rows] == ["123456789012"] * 6  # the listing error takes the one account shown
    assert Row.from_finding(member).account == "210987654321"  # an explicit account wins over the ARN's
    assert [(r.status, r.compliance, r.workflow, r.severity, r.open) for r in rows] == [
        ("FAIL", "PASSED", "RESOLVED", "INFORMATIONAL", False),
        ("PASS", "PASSED", "RESOLVED", "INFORMATIONAL", False),
        ("EXEMPT", "FAILED", "SUPPRESSED", "LOW", False),
        ("FAIL", "PASSED", "RESOLVED", "INFORMATIONAL", False),
        ("FAIL", "FAILED", "NEW", "HIGH", True),
        ("ERROR", "NOT_AVAILABLE", "NEW", "HIGH", True),
    ]
    assert rows[2].exemption_text == "exempt until 2027-03-31: CSI node plugin"
    assert rows[4].fix_commands() == [
        "# write a non-privileged copy and register it:",
        "aws ecs describe-task-definition --task-definition api:3 --include TAGS --region us-east-1 > td.json",
        "ecs-remediate fix td.json > fixed.json",
        "aws ecs register-task-definition --cli-input-json file://fixed.json --region us-east-1",
    ]
    assert rows[5].fix_commands() == ["ecs-remediate scan --region eu-west-1 --scope latest"]
    assert rows[3].fix_commands() == [] and rows[1].fix_commands() == []
    assert rows[5].uid == "ecs-remediate/privileged-containers/123456789012/eu-west-1/*"
    listing = asff.finding(rows[5], now=NOW)
    assert listing["Resources"][0] == {
        "Type": "AwsAccount",
        "Id": "AWS::::Account:123456789012",
        "Partition": "aws",
        "Region": "eu-west-1",
    }
    assert asff.finding(rows[3], now=NOW)["RecordState"] == "ARCHIVED"  # retired: the revision is INACTIVE


def test_ids_are_stable_and_lengths_within_asff_limits() -> None:
    family = "f" * 255
    finding = sweep.Finding(
        f"{ARN}{family}:9",
        "FAIL",
        ["c" * 255] * 10,
        "reported",
        error="e" * 5000,
        region="us-east-1",
        family=family,
        revision=9,
    )
    report = sweep.SweepReport("latest", ["us-east-1"], [finding], sweep.CallStats(), 1.0)
    first = asff.findings(rows_from_report(report), now=NOW)[0]
    again = asff.findings(rows_from_report(report), now=NOW + timedelta(days=1))[0]
    assert first["Id"] == again["Id"] and len(first["Id"]) <= 512
    assert len(first["Title"]) <= 256 and len(first["Description"]) <= 1024
    assert len(first["Remediation"]["Recommendation"]["Text"]) <= 512
    assert all(len(v) <= 2048 for v in first["ProductFields"].values())
    assert (
        ocsf.detection_finding(rows_from_report(report)[0], now=NOW, scan_id="s")["finding_info"]["uid"] == first["Id"]
    )
