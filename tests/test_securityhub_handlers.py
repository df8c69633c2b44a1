"""Issue 14's Security Hub through the real handlers (SECURITY_HUB=true) and `ecs-remediate scan --security-hub`,
against moto's Security Hub in-process (completed where moto departs from AWS: emulators/securityhub.py): a
scheduled sweep imports one finding per verdict and a second sweep updates them, a remediation resolves its finding,
an exemption from the registry suppresses it, every request validates against botocore's BatchImportFindings shape;
an import that fails never hides the verdict (the notice is sent, the failure counted and raised for the retry)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date, timedelta
from types import ModuleType
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator
from moto import mock_aws

from conftest import load_handler
from demo.sandbox import ACCOUNT, REGION, LambdaContext, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.cli.main import main
from emulators.securityhub import documented_security_hub

BATCH_IMPORT = (
    botocore.session.get_session().get_service_model("securityhub").operation_model("BatchImportFindings").input_shape
)
SECRET = "hunter2-env-value-5d1e"
FAST = "describe=1000/1000,list=1000/1000,register=1000/1000"


def taskdef(family: str, privileged: bool = True) -> dict[str, Any]:
    container = {"name": "app", "image": "nginx", "memory": 64, "privileged": privileged}
    container["environment"] = [{"name": "TOKEN", "value": SECRET}]
    return {"family": family, "containerDefinitions": [container]}


class Hub:
    """The sandbox in moto's in-process emulator, with its Security Hub enabled and every import recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.box = Sandbox().create()
        self.box.client("securityhub").enable_security_hub()
        self.requests: list[dict[str, Any]] = []

    def handler(self, **env: str) -> ModuleType:
        module = load_handler(self.box, self.monkeypatch, SECURITY_HUB="true", SWEEP_RATES=FAST, **env)
        client = aws.client("securityhub", REGION)  # the one the handler imports through
        client.meta.events.register("provide-client-params.securityhub.BatchImportFindings", self._record)
        return module

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(json.loads(json.dumps(params)))

    def register(self, family: str, privileged: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
        params = taskdef(family, privileged)
        return params, self.box.register(params)

    def stored(self) -> dict[str, dict[str, Any]]:
        """Every finding the emulator holds, by `family:revision`."""
        found: dict[str, dict[str, Any]] = {}
        for page in self.box.client("securityhub").get_paginator("get_findings").paginate():
            for finding in page["Findings"]:
                assert finding["Id"] not in {f["Id"] for f in found.values()}
                found[finding["Id"].rsplit("/", 1)[-1]] = finding
        return found

    def assert_requests_valid(self) -> None:
        assert self.requests
        for request in self.requests:
            validation = ParamValidator().validate(request, BATCH_IMPORT)
            assert not validation.has_errors(), validation.generate_report()
        assert SECRET not in json.dumps(self.requests)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    for name in ("AWS_ENDPOINT_URL", "EXEMPT_FAMILIES", "ROLLOUT", "RETIRE", "SECURITY_HUB"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(), documented_security_hub(monkeypatch):
        aws.reset_clients()
        yield Hub(monkeypatch)
    aws.reset_clients()


def state(finding: dict[str, Any]) -> tuple[str, str, str]:
    return finding["Compliance"]["Status"], finding["Workflow"]["Status"], finding["RecordState"]


def test_a_scheduled_sweep_imports_one_finding_per_verdict_and_a_second_updates_them(hub: Hub) -> None:
    hub.register("web")
    hub.register("api", privileged=False)
    _, csi = hub.register("csi")
    until = (date.today() + timedelta(days=60)).isoformat()
    hub.box.exempt(csi["taskDefinition"]["taskDefinitionArn"], "CSI node plugin mounts block devices", until)
    handler = hub.handler(MODE="report")

    first = handler.sweep_handler({"scope": "active"}, LambdaContext())
    stored = hub.stored()
    assert sorted(stored) == ["api:1", "csi:1", "web:1"]
    assert first["securityHub"] == {"imported": 3, "archived": 0}
    assert state(stored["web:1"]) == ("FAILED", "NEW", "ACTIVE")
    assert state(stored["api:1"]) == ("PASSED", "RESOLVED", "ACTIVE")
    assert state(stored["csi:1"]) == ("FAILED", "SUPPRESSED", "ACTIVE")
    assert stored["csi:1"]["Note"]["Text"] == f"exempt until {until}: CSI node plugin mounts block devices"
    assert {f["AwsAccountId"] for f in stored.values()} == {ACCOUNT}
    assert [n.attributes["outcome"] for n in hub.box.inbox()] == ["sweep"]  # the summary notice as before

    second = handler.sweep_handler({"scope": "active"}, LambdaContext())
    again = hub.stored()
    assert sorted(again) == sorted(stored) and second["securityHub"]["imported"] == 3  # updated, not added
    assert {k: f["CreatedAt"] for k, f in again.items()} == {k: f["CreatedAt"] for k, f in stored.items()}
    assert [state(again[k]) for k in sorted(again)] == [state(stored[k]) for k in sorted(stored)]
    hub.assert_requests_valid()


def test_a_remediation_resolves_its_finding(hub: Hub) -> None:
    params, response = hub.register("web")
    hub.handler(MODE="report").sweep_handler({"scope": "active"}, LambdaContext())
    assert state(hub.stored()["web:1"]) == ("FAILED", "NEW", "ACTIVE")
    hub.box.inbox()

    handler = hub.handler()  # remediate mode
    result = handler.lambda_handler(hub.box.event_for(params, response), LambdaContext())
    assert result["outcome"] == "remediated"
    stored = hub.stored()
    assert state(stored["web:1"]) == ("PASSED", "RESOLVED", "ACTIVE")
    assert stored["web:1"]["Severity"]["Label"] == "INFORMATIONAL"
    assert stored["web:1"]["ProductFields"]["ecs-remediate/Action"] == "remediated"
    assert sorted(stored) == ["web:1"]  # the copy is judged by the next sweep
    [note] = hub.box.inbox()
    assert note.payload["outcome"] == "remediated"
    hub.assert_requests_valid()


def test_an_exemption_from_the_registry_suppresses_its_finding(hub: Hub) -> None:
    params, response = hub.register("csi")
    until = (date.today() + timedelta(days=30)).isoformat()
    hub.box.exempt(response["taskDefinition"]["taskDefinitionArn"], "kernel module loader", until)
    handler = hub.handler()
    assert handler.lambda_handler(hub.box.event_for(params, response), LambdaContext())["outcome"] == "exempt"
    [finding] = hub.stored().values()
    assert state(finding) == ("FAILED", "SUPPRESSED", "ACTIVE")
    approver = f"arn:aws:iam::{ACCOUNT}:role/SecurityApprover"
    assert finding["Note"]["Text"] == f"exempt until {until}: kernel module loader (approved by {approver})"
    assert finding["Severity"]["Label"] == "LOW"
    assert len(hub.box.active_revisions("csi")) == 1  # nothing copied
    hub.assert_requests_valid()


DENIED = {
    "Error": {"Code": "AccessDeniedException", "Message": "not authorized"},
    "ResponseMetadata": {"HTTPStatusCode": 403},
}


def denied(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
    """A 403 AccessDeniedException answer, before the request reaches the emulator (`before-call`: moto's
    in-process stub would store the findings even when a `before-send` handler answers)."""
    return AWSResponse("https://securityhub.us-east-1.amazonaws.com/findings/import", 403, {}, None), DENIED


def refuse_imports(times: int, client: Any = None) -> list[int]:
    """Security Hub refuses BatchImportFindings `times` times (a policy that does not grant it, say)."""
    calls: list[int] = []

    def respond(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        calls.append(1)
        return denied(**kwargs) if len(calls) <= times else None

    (client or aws.client("securityhub", REGION)).meta.events.register_first(
        "before-call.securityhub.BatchImportFindings", respond
    )
    return calls


def test_a_failed_import_never_hides_the_verdict_and_the_retry_imports_it(
    hub: Hub, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    params, response = hub.register("web")
    handler = hub.handler()
    refused = refuse_imports(1)
    event = hub.box.event_for(params, response)

    with pytest.raises(ClientError, match="AccessDeniedException"):
        handler.lambda_handler(event, LambdaContext())  # raised: Lambda retries the event
    assert len(refused) == 1 and hub.stored() == {}
    [note] = hub.box.inbox()  # the notice went out before the import
    assert note.payload["outcome"] == "remediated"
    assert '"SecurityHubImportFailed":[1.0]' in capsys.readouterr().out  # the metric (EMF on stdout)
    [logged] = [r for r in caplog.records if r.getMessage() == "Security Hub import failed"]
    assert logged.levelname == "ERROR" and "AccessDeniedException" in str(getattr(logged, "error", ""))

    assert handler.lambda_handler(event, LambdaContext())["outcome"] == "remediated"  # Lambda's retry
    assert state(hub.stored()["web:1"]) == ("PASSED", "RESOLVED", "ACTIVE")
    assert hub.box.inbox() == []  # no second notice
    assert len(hub.box.active_revisions("web")) == 2  # and no second copy


def test_a_failed_sweep_import_still_sends_the_summary_then_raises(
    hub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.register("web")
    handler = hub.handler(MODE="report")
    refuse_imports(1)
    with pytest.raises(ClientError, match="AccessDeniedException"):
        handler.sweep_handler({"scope": "active"}, LambdaContext())
    [note] = hub.box.inbox()
    assert note.attributes["outcome"] == "sweep" and note.payload["open"] == 1
    captured = capsys.readouterr()
    assert '"SecurityHubImportFailed":[1.0]' in captured.out + captured.err


def test_security_hub_off_imports_nothing(hub: Hub) -> None:
    params, response = hub.register("web")
    handler = load_handler(hub.box, hub.monkeypatch, SECURITY_HUB="false", SWEEP_RATES=FAST)
    handler.lambda_handler(hub.box.event_for(params, response), LambdaContext())
    assert "securityHub" not in handler.sweep_handler({"scope": "active"}, LambdaContext())
    assert hub.stored() == {}


def scan(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", "-q", "--rate", FAST, "--max-attempts", "2", "--output", "json", *args], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_scan_security_hub_imports_for_operators(hub: Hub) -> None:
    hub.register("web")
    hub.register("api", privileged=False)
    code, out, err = scan("--security-hub")
    assert code == 1, err  # the scan's own exit code: a finding remains
    assert len(json.loads(out)) == 2
    assert "Security Hub: 2 finding(s) imported, 0 archived" in err
    assert [state(f) for _, f in sorted(hub.stored().items())] == [
        ("PASSED", "RESOLVED", "ACTIVE"),
        ("FAILED", "NEW", "ACTIVE"),
    ]
    code, _, err = scan("--security-hub")
    assert code == 1 and len(hub.stored()) == 2


def test_scan_security_hub_exits_2_when_the_import_fails(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.register("api", privileged=False)

    real_session = aws.boto3.session.Session

    def session(*args: Any, **kwargs: Any) -> Any:
        made = real_session(*args, **kwargs)
        made.events.register_first("before-call.securityhub.BatchImportFindings", denied)
        return made

    monkeypatch.setattr(aws.boto3.session, "Session", session)
    code, out, err = scan("--security-hub")
    assert code == 2  # compliant, but the import failed: never 0
    assert "error: Security Hub import failed: AccessDeniedException" in err and json.loads(out)


# --- issue 19, class 1: host access the verdict names reaches Security Hub too ------------------------------------

HOST_ROOT = {"capabilities": {"add": ["SYS_ADMIN"]}}


def host_root_revision(family: str, privileged: bool) -> dict[str, Any]:
    """SYS_ADMIN, the host's / (read-only) and pidMode host: root on the host with or without privileged."""
    container = {
        "name": "app",
        "image": "nginx",
        "memory": 64,
        "privileged": privileged,
        "linuxParameters": HOST_ROOT,
        "mountPoints": [{"sourceVolume": "root", "containerPath": "/host", "readOnly": True}],
        "environment": [{"name": "TOKEN", "value": SECRET}],
    }
    volumes = [{"name": "root", "host": {"sourcePath": "/"}}]
    return {"family": family, "pidMode": "host", "volumes": volumes, "containerDefinitions": [container]}


def test_a_compliant_revision_that_keeps_host_root_is_named_in_its_finding_and_the_summary(hub: Hub) -> None:
    hub.box.register(host_root_revision("agent", privileged=False))
    hub.handler(MODE="report").sweep_handler({"scope": "active"}, LambdaContext())
    finding = hub.stored()["agent:1"]
    assert state(finding) == ("PASSED", "RESOLVED", "ACTIVE")  # ECS.4 passes: no privileged container
    assert finding["Severity"]["Label"] == "MEDIUM"  # but not informational: root on the host all the same
    fields = finding["ProductFields"]
    assert fields["ecs-remediate/HostEquivalents"] == "app: capability SYS_ADMIN\napp: host path / (read-only)"
    assert fields["ecs-remediate/HostAccess"] == "task: pidMode host"
    assert "still host-equivalent: app: capability SYS_ADMIN, app: host path / (read-only)" in finding["Description"]
    assert finding["Remediation"]["Recommendation"]["Text"].startswith("Review the host access it keeps")
    [note] = hub.box.inbox()  # the scheduled sweep's summary names it, never "nothing to fix" alone
    assert "1 without privileged still host-equivalent" in note.subject
    [row] = note.payload["hostEquivalentFindings"]
    assert row["hostEquivalents"] == ["app: capability SYS_ADMIN", "app: host path / (read-only)"]
    hub.assert_requests_valid()


def test_a_remediated_revision_s_finding_names_the_host_access_its_copy_keeps(hub: Hub) -> None:
    params = host_root_revision("agent", privileged=True)
    params["volumes"].append(
        {
            "name": "disk",
            "dockerVolumeConfiguration": {"driver": "local", "driverOpts": {"type": "ext4", "device": "/dev/xvda1"}},
        }
    )
    params["containerDefinitions"][0]["mountPoints"].append({"sourceVolume": "disk", "containerPath": "/disk"})
    response = hub.box.register(params)
    result = hub.handler().lambda_handler(hub.box.event_for(params, response), LambdaContext())
    assert result["outcome"] == "remediated"
    finding = hub.stored()["agent:1"]
    assert state(finding) == ("PASSED", "RESOLVED", "ACTIVE") and finding["Severity"]["Label"] == "MEDIUM"
    assert finding["ProductFields"]["ecs-remediate/HostEquivalents"].splitlines() == [
        "app: capability SYS_ADMIN",
        "app: host path / (read-only)",
        "app: docker volume disk: ext4 /dev/xvda1",
    ]
    assert "a non-privileged copy is registered" in finding["Description"]
    assert "It keeps host access: still host-equivalent:" in finding["Description"]
    hub.assert_requests_valid()
