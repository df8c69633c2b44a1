"""Security Hub import against moto's Security Hub (in-process), completed where moto departs from AWS's
documented behaviour (emulators/securityhub.py): one finding per verdict, reruns update instead of
adding, remediated / retired / compliant revisions RESOLVED, exemptions SUPPRESSED with reason and expiry
and reopened when they run out, findings a complete sweep no longer sees archived, refused findings and
throttling retried, every request valid against botocore's model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.validate import ParamValidator
from moto import mock_aws

from demo.sandbox import Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.adapters.exemption_registry import ExemptionRegistry
from ecs_remediate.core.config import Config
from ecs_remediate.core.outcomes import SKIPPED, Result
from ecs_remediate.remediation.remediator import Remediator
from ecs_remediate.reports import securityhub
from ecs_remediate.reports.rows import Row
from ecs_remediate.reports.securityhub import SecurityHubExporter, SecurityHubImportFailed, import_result, import_sweep
from ecs_remediate.sweep import run as sweep
from emulators.securityhub import documented_security_hub

REGION, ACCOUNT = "us-east-1", "123456789012"
PRODUCT = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
SECRET = "s3cr3t-env-value-91c2"
NO_WAIT: dict[str, Any] = {"sleep": lambda _seconds: None}
BATCH_IMPORT_SHAPE = (
    botocore.session.get_session().get_service_model("securityhub").operation_model("BatchImportFindings").input_shape
)


class Hub:
    """The emulator's Security Hub, a recorder of every BatchImportFindings request, and an ECS sandbox."""

    def __init__(self) -> None:
        self.box = Sandbox().create()
        self.client = boto3.client("securityhub", region_name=REGION, config=aws.BOTO_CONFIG)
        self.client.enable_security_hub()
        self.requests: list[dict[str, Any]] = []
        self.client.meta.events.register("provide-client-params.securityhub.BatchImportFindings", self._record)
        self.config = Config(idempotency_table=self.box.table_name, exemptions_table=self.box.exemptions_table)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(json.loads(json.dumps(params)))

    def register(self, family: str, privileged: bool = True, exempt_until: date | None = None) -> str:
        """Register a revision; `exempt_until`: an approver exempts it in the registry."""
        container = {"name": "app", "image": "nginx", "memory": 64, "privileged": privileged}
        container["environment"] = [{"name": "TOKEN", "value": SECRET}]
        params: dict[str, Any] = {"family": family, "containerDefinitions": [container]}
        arn = str(self.box.register(params)["taskDefinition"]["taskDefinitionArn"])
        if exempt_until is not None:
            self.exempt(arn, exempt_until)
        return arn

    def exempt(self, arn: str, until: date, reason: str = "CSI node plugin mounts block devices") -> None:
        self.box.exempt(arn, reason, until.isoformat())

    def sweep(self, scope: str = sweep.ACTIVE, **kwargs: Any) -> sweep.SweepReport:
        return sweep.sweep([REGION], self.config, scope=scope, max_attempts=2, **kwargs)

    def publish(self, report: sweep.SweepReport) -> securityhub.ImportSummary:
        return import_sweep(report, client_for=lambda account, region: self.client, **NO_WAIT)

    def stored(self) -> dict[str, dict[str, Any]]:
        """Every stored finding, by revision (`family:revision`), read back from the emulator."""
        found: dict[str, dict[str, Any]] = {}
        for page in self.client.get_paginator("get_findings").paginate():
            for finding in page["Findings"]:
                found[finding["Id"].rsplit("/", 1)[-1]] = finding
        return found


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    for name in ("AWS_ENDPOINT_URL", "MODE", "TOPIC_ARN", "IDEMPOTENCY_TABLE", "EXEMPT_FAMILIES", "ROLLOUT", "RETIRE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(), documented_security_hub(monkeypatch):
        aws.reset_clients()
        yield Hub()
    aws.reset_clients()


def state(finding: dict[str, Any]) -> tuple[str, str, str]:
    return finding["Compliance"]["Status"], finding["Workflow"]["Status"], finding["RecordState"]


def test_a_sweep_imports_one_valid_finding_per_verdict(hub: Hub) -> None:
    hub.register("web")
    hub.register("web")
    hub.register("api", privileged=False)
    hub.register("csi", exempt_until=date.today() + timedelta(days=90))
    report = hub.sweep()
    summary = hub.publish(report)
    stored = hub.stored()
    assert sorted(stored) == ["api:1", "csi:1", "web:1", "web:2"]
    assert len(report.findings) == len(stored) == summary.imported == 4
    assert summary.calls == {"GetFindings": 1, "BatchImportFindings": 1}
    for request in hub.requests:  # what was sent, checked against the SDK's model
        validation = ParamValidator().validate(request, BATCH_IMPORT_SHAPE)
        assert not validation.has_errors(), validation.generate_report()
    assert {f["ProductArn"] for f in stored.values()} == {PRODUCT}
    assert {f["AwsAccountId"] for f in stored.values()} == {ACCOUNT}
    assert state(stored["web:2"]) == ("FAILED", "NEW", "ACTIVE")
    assert state(stored["web:1"]) == ("FAILED", "NEW", "ACTIVE")
    assert state(stored["api:1"]) == ("PASSED", "RESOLVED", "ACTIVE")
    assert state(stored["csi:1"]) == ("FAILED", "SUPPRESSED", "ACTIVE")
    web = stored["web:2"]
    assert web["Severity"]["Label"] == "HIGH"
    assert web["Resources"] == [
        {
            "Type": "AwsEcsTaskDefinition",
            "Id": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:2",
            "Partition": "aws",
            "Region": REGION,
            "Details": {
                "AwsEcsTaskDefinition": {"Family": "web", "ContainerDefinitions": [{"Name": "app", "Privileged": True}]}
            },
        }
    ]
    assert web["Remediation"]["Recommendation"]["Text"] == (
        "Run: aws ecs describe-task-definition --task-definition web:2 --include TAGS --region us-east-1 > td.json"
        " && ecs-remediate fix td.json > fixed.json"
        " && aws ecs register-task-definition --cli-input-json file://fixed.json --region us-east-1"
    )
    until = (date.today() + timedelta(days=90)).isoformat()
    csi = stored["csi:1"]
    assert csi["Note"]["Text"].startswith(f"exempt until {until}: CSI node plugin mounts block devices")
    assert csi["ProductFields"]["ecs-remediate/ExemptUntil"] == until
    assert csi["ProductFields"]["ecs-remediate/ExemptionReason"] == "CSI node plugin mounts block devices"
    assert SECRET not in json.dumps(stored) and SECRET not in json.dumps(hub.requests)


def test_a_second_import_updates_the_findings_instead_of_adding(hub: Hub) -> None:
    hub.register("web")
    hub.register("api", privileged=False)
    hub.publish(hub.sweep())
    first = hub.stored()
    summary = hub.publish(hub.sweep())
    again = hub.stored()
    assert sorted(again) == sorted(first) == ["api:1", "web:1"]
    assert summary.imported == 2 and summary.archived == 0 and summary.workflow_updates == {}
    for name in again:
        assert again[name]["Id"] == first[name]["Id"]
        assert again[name]["CreatedAt"] == first[name]["CreatedAt"]  # the finding's own, kept
        assert again[name]["UpdatedAt"] >= first[name]["UpdatedAt"]
    assert len(hub.client.get_findings()["Findings"]) == 2


def test_a_remediated_revision_resolves_its_finding(hub: Hub) -> None:
    hub.register("web")
    hub.publish(hub.sweep())
    assert state(hub.stored()["web:1"]) == ("FAILED", "NEW", "ACTIVE")
    summary = hub.publish(hub.sweep(remediate=True))
    stored = hub.stored()
    assert state(stored["web:1"]) == ("PASSED", "RESOLVED", "ACTIVE")  # the copy web:2 replaces it
    assert stored["web:1"]["ProductFields"]["ecs-remediate/NewTaskDefinitionArn"].endswith("task-definition/web:2")
    assert summary.workflow_updates == {"RESOLVED": 1}  # moved by BatchUpdateFindings: an import cannot
    assert stored["web:1"]["Severity"]["Label"] == "INFORMATIONAL"
    assert "web:2" not in stored  # registered after this sweep listed the family: the next sweep judges it
    summary = hub.publish(hub.sweep())
    stored = hub.stored()
    assert state(stored["web:2"]) == ("PASSED", "RESOLVED", "ACTIVE")  # a new, compliant finding
    assert state(stored["web:1"]) == ("FAILED", "NEW", "ACTIVE")  # still ACTIVE and privileged, not the latest


def test_a_retired_revision_is_resolved_and_archived(hub: Hub) -> None:
    hub.config = Config(idempotency_table=hub.box.table_name, retire=True)
    hub.register("web")
    hub.register("web")
    hub.publish(hub.sweep())
    hub.publish(hub.sweep(remediate=True))
    stored = hub.stored()
    assert stored["web:1"]["ProductFields"]["ecs-remediate/Action"].startswith("retired")
    assert state(stored["web:1"]) == ("PASSED", "RESOLVED", "ARCHIVED")


def test_an_exemption_suppresses_its_finding_and_its_expiry_reopens_it(hub: Hub) -> None:
    arn = hub.register("csi")
    hub.publish(hub.sweep())
    assert state(hub.stored()["csi:1"]) == ("FAILED", "NEW", "ACTIVE")
    until = date.today() + timedelta(days=30)
    hub.exempt(arn, until)  # an approver exempts it
    summary = hub.publish(hub.sweep())
    csi = hub.stored()["csi:1"]
    assert state(csi) == ("FAILED", "SUPPRESSED", "ACTIVE")
    assert csi["Note"]["Text"].startswith(f"exempt until {until.isoformat()}: CSI node plugin mounts block devices")
    assert csi["Severity"]["Label"] == "LOW" and summary.workflow_updates == {"SUPPRESSED": 1}
    # the exemption runs out (the approver's item says yesterday): it no longer holds, the finding reopens
    hub.exempt(arn, date.today() - timedelta(days=1))
    summary = hub.publish(hub.sweep())
    csi = hub.stored()["csi:1"]
    assert state(csi) == ("FAILED", "NEW", "ACTIVE") and summary.workflow_updates == {"NEW": 1}
    assert csi["Severity"]["Label"] == "HIGH"
    assert "exemption expired" in csi["ProductFields"]["ecs-remediate/Error"]


def test_a_person_s_notified_status_stays_while_the_finding_is_open(hub: Hub) -> None:
    hub.register("web")
    hub.publish(hub.sweep())
    finding = hub.stored()["web:1"]
    hub.client.batch_update_findings(
        FindingIdentifiers=[{"Id": finding["Id"], "ProductArn": PRODUCT}], Workflow={"Status": "NOTIFIED"}
    )
    summary = hub.publish(hub.sweep())
    assert hub.stored()["web:1"]["Workflow"]["Status"] == "NOTIFIED" and summary.workflow_updates == {}


def test_findings_a_complete_sweep_no_longer_sees_are_archived(hub: Hub) -> None:
    hub.register("web")
    hub.register("web")
    hub.publish(hub.sweep(scope=sweep.ACTIVE))
    # latest scope judges web:2 only (as ECS.4): web:1's finding is no longer produced, so it is archived
    summary = hub.publish(hub.sweep(scope=sweep.LATEST))
    stored = hub.stored()
    assert summary.archived == 1
    assert stored["web:1"]["RecordState"] == "ARCHIVED" and stored["web:2"]["RecordState"] == "ACTIVE"


def test_an_incomplete_sweep_archives_nothing(hub: Hub) -> None:
    hub.register("web")
    hub.publish(hub.sweep())
    listing_error = sweep.Finding(
        f"arn:aws:ecs:{REGION}:*:task-definition/*",
        "ERROR",
        error="ListTaskDefinitions failed",
        region=REGION,
        family="~",
    )
    report = sweep.SweepReport(sweep.ACTIVE, [REGION], [listing_error], sweep.CallStats(), 0.1)
    # no row shows the account: the caller names it (the function knows its own)
    summary = import_sweep(report, client_for=lambda a, r: hub.client, account=ACCOUNT, **NO_WAIT)
    stored = hub.stored()
    assert summary.archived == 0 and stored["web:1"]["RecordState"] == "ACTIVE"
    assert state(stored["*"]) == ("NOT_AVAILABLE", "NEW", "ACTIVE")  # the failed listing is a finding itself
    assert stored["*"]["Resources"][0]["Id"] == f"AWS::::Account:{ACCOUNT}"


def test_refused_findings_are_sent_again_and_a_persistent_refusal_raises(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.securityhub.models import SecurityHubBackend

    hub.register("web")
    hub.register("api", privileged=False)
    report = hub.sweep()
    refusals = {"web:1": 2, "api:1": 99}  # web:1 refused twice then accepted; api:1 always refused
    original = SecurityHubBackend.batch_import_findings

    def flaky(self: Any, findings: list[dict[str, Any]]) -> tuple[int, int, list[dict[str, Any]]]:
        refused = []
        for finding in list(findings):
            name = finding["Id"].rsplit("/", 1)[-1]
            if refusals.get(name, 0) > 0:
                refusals[name] -= 1
                findings.remove(finding)
                refused.append({"Id": finding["Id"], "ErrorCode": "InternalException", "ErrorMessage": "try later"})
        failed, success, errors = original(self, findings)
        return failed + len(refused), success, errors + refused

    monkeypatch.setattr(SecurityHubBackend, "batch_import_findings", flaky)
    with pytest.raises(SecurityHubImportFailed) as raised:
        import_sweep(report, client_for=lambda a, r: hub.client, max_attempts=4, **NO_WAIT)
    summary = raised.value.summary
    assert [f["Id"].rsplit("/", 1)[-1] for f in summary.failed] == ["api:1"]
    assert summary.calls["BatchImportFindings"] == 4
    assert sorted(hub.stored()) == ["web:1"]  # accepted on its third attempt; api:1 never


def test_throttling_is_retried_by_the_client(hub: Hub) -> None:
    hub.register("web")
    throttled = {"left": 2}

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        if throttled["left"] and request.url.endswith("/findings/import"):
            throttled["left"] -= 1
            body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
            headers = {"x-amzn-ErrorType": "ThrottlingException", "Content-Type": "application/json"}
            return AWSResponse(request.url, 429, headers, _Raw(body))
        return None

    hub.client.meta.events.register_first("before-send.securityhub.BatchImportFindings", throttle)
    summary = hub.publish(hub.sweep())
    assert throttled["left"] == 0 and summary.imported == 1 and sorted(hub.stored()) == ["web:1"]


def test_batches_of_at_most_100_at_the_documented_rate(hub: Hub) -> None:
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/"
    rows = [Row(f"{arn}f{i}:1", "PASS", ACCOUNT, REGION, family=f"f{i}", revision=1) for i in range(250)]
    slept: list[float] = []
    clock = {"now": 0.0}

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock["now"] += seconds

    exporter = SecurityHubExporter(hub.client, account=ACCOUNT, region=REGION, clock=lambda: clock["now"], sleep=sleep)
    summary = exporter.export(rows)
    assert summary.imported == 250 and len(hub.stored()) == 250
    assert [len(r["Findings"]) for r in hub.requests] == [100, 100, 50]
    assert not slept  # 3 import calls and 1 read are within the bursts
    for _ in range(40):
        exporter._pacer.wait("BatchImportFindings")
    assert sum(slept) == pytest.approx((40 - 30 + 3) / 10, abs=0.01)  # past the burst of 30: 10 a second


def test_a_single_remediator_result(hub: Hub) -> None:
    arn = hub.register("web")
    ecs = aws.Ecs(hub.box.client("ecs"))
    result = Remediator(Config(), ecs).process(_registration(arn))
    assert result.outcome == "remediated"
    import_result(result, client=hub.client, **NO_WAIT)
    assert state(hub.stored()["web:1"]) == ("PASSED", "RESOLVED", "ACTIVE")
    exempt_arn = hub.register("csi", exempt_until=date.today() + timedelta(days=10))
    registry = ExemptionRegistry(hub.box.client("dynamodb"), hub.box.exemptions_table)
    exempt = Remediator(Config(), ecs, registry=registry).process(_registration(exempt_arn))
    import_result(exempt, client=hub.client, **NO_WAIT)
    assert state(hub.stored()["csi:1"]) == ("FAILED", "SUPPRESSED", "ACTIVE")
    assert hub.stored()["csi:1"]["Note"]["Text"].startswith("exempt until")
    assert import_result(Result(SKIPPED, arn), client=hub.client).imported == 0


def _registration(arn: str) -> Any:
    from ecs_remediate.core.events import Registration

    return Registration(task_definition_arn=arn, account=ACCOUNT, region=REGION)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


def test_timestamps_are_asff_iso8601() -> None:
    from ecs_remediate.reports.asff import timestamp

    assert timestamp(datetime(2026, 11, 2, 10, 0, 0, 123456, tzinfo=UTC)) == "2026-11-02T10:00:00.123Z"
