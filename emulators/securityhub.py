"""moto 5.2.5's Security Hub, completed where it departs from AWS's documented behaviour, for the in-process
`mock_aws` (the botocore stubber reads moto's URL table on every request, so added routes take effect).

moto implements BatchImportFindings (update by Id, a plain dict update) and GetFindings (no filters). AWS
documents three more things the adapter relies on, added here:
- BatchUpdateFindings (missing in moto): sets `Workflow.Status` and `Note` on findings named by Id and
  ProductArn; unknown ones come back in `UnprocessedFindings`.
- After a finding is created, BatchImportFindings does not change `Note`, `UserDefinedFields`,
  `VerificationState` or `Workflow` (moto overwrites them); a new finding without `Workflow` starts NEW.
- GetFindings applies `EQUALS` string filters (the ones the adapter sends).

Everything else is moto's own: the stored findings the tests read back are moto's state. Used by the tests through
`documented_security_hub(monkeypatch)`, in process only (the emulator's server does not route Security Hub here).

Where it may differ from AWS:
- BatchUpdateFindings sets only `Workflow.Status` and `Note` (its `UpdatedAt` now); Severity, Confidence,
  Criticality, Types, UserDefinedFields, VerificationState and RelatedFindings are accepted and ignored, and an
  unknown finding is ErrorCode FindingNotFound with this emulator's message; the finding's own `UpdatedAt` is not
  touched and no history is kept;
- GetFindings filters on 8 fields (Id, ProductArn, GeneratorId, AwsAccountId, Region, RecordState, WorkflowStatus,
  ComplianceStatus) with EQUALS only: another filter name raises NotImplementedError, another comparison matches
  nothing; the order is moto's storage order (no SortCriteria), 100 a page by default and NextToken an offset;
- a re-import keeps the four customer fields and replaces everything else (FindingProviderFields and the rules
  that tie it to Severity, Confidence, Criticality, Types and RelatedFindings are not modelled);
- requests are not checked against botocore's model beyond what moto does (no 100-finding limit per call, no ASFF
  validation); IAM, the product subscription and Security Hub's eventual consistency are not modelled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from moto.securityhub import urls
from moto.securityhub.models import SecurityHubBackend
from moto.securityhub.responses import SecurityHubResponse

if TYPE_CHECKING:
    import pytest

CUSTOMER_FIELDS = ("Note", "UserDefinedFields", "VerificationState", "Workflow")
FILTER_FIELDS = {
    "Id": ("Id",),
    "ProductArn": ("ProductArn",),
    "GeneratorId": ("GeneratorId",),
    "AwsAccountId": ("AwsAccountId",),
    "Region": ("Region",),
    "RecordState": ("RecordState",),
    "WorkflowStatus": ("Workflow", "Status"),
    "ComplianceStatus": ("Compliance", "Status"),
}


def _value(finding: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = finding
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _import(self: SecurityHubBackend, findings: list[dict[str, Any]]) -> tuple[int, int, list[dict[str, Any]]]:
    kept: dict[str, dict[str, Any]] = {}
    for finding in findings:
        existing = next((f for f in self.findings if f.id == finding.get("Id")), None)
        if existing is not None:
            kept[finding["Id"]] = {k: existing.data[k] for k in CUSTOMER_FIELDS if k in existing.data}
        else:
            finding.setdefault("Workflow", {"Status": "NEW"})
            finding.setdefault("RecordState", "ACTIVE")
    result = _ORIGINAL_IMPORT(self, findings)
    for finding_id, fields in kept.items():
        stored = next(f for f in self.findings if f.id == finding_id)
        for key in CUSTOMER_FIELDS:
            stored.data.pop(key, None)
        stored.data.update(fields)
    return result


def _get_findings(self: SecurityHubResponse) -> str:
    filters = self._get_param("Filters") or {}
    findings = [f.as_dict() for f in self.securityhub_backend.findings]
    for name, conditions in filters.items():
        path = FILTER_FIELDS.get(name)
        if path is None:
            raise NotImplementedError(f"emulator: filter {name} not implemented")
        wanted = {c["Value"] for c in conditions if c.get("Comparison") == "EQUALS"}
        findings = [f for f in findings if _value(f, path) in wanted]
    size = int(self._get_param("MaxResults") or 100)
    start = int(self._get_param("NextToken") or 0)
    page = findings[start : start + size]
    token = str(start + size) if start + size < len(findings) else None
    return json.dumps({"Findings": page, **({"NextToken": token} if token else {})})


def _batch_update_findings(self: SecurityHubResponse) -> str:
    body = json.loads(self.body)
    processed, unprocessed = [], []
    for identifier in body["FindingIdentifiers"]:
        stored = next(
            (
                f
                for f in self.securityhub_backend.findings
                if f.id == identifier["Id"] and f.data.get("ProductArn") == identifier["ProductArn"]
            ),
            None,
        )
        if stored is None:
            unprocessed.append({"FindingIdentifier": identifier, "ErrorCode": "FindingNotFound", "ErrorMessage": "no"})
            continue
        if "Workflow" in body:
            stored.data["Workflow"] = {"Status": body["Workflow"]["Status"]}
        if "Note" in body:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            stored.data["Note"] = {**body["Note"], "UpdatedAt": now}
        processed.append(identifier)
    return json.dumps({"ProcessedFindings": processed, "UnprocessedFindings": unprocessed})


_ORIGINAL_IMPORT = SecurityHubBackend.batch_import_findings


@contextmanager
def documented_security_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(urls.url_paths, "{0}/findings/batchupdate$", SecurityHubResponse.dispatch)
    monkeypatch.setattr(SecurityHubResponse, "batch_update_findings", _batch_update_findings, raising=False)
    monkeypatch.setattr(SecurityHubResponse, "get_findings", _get_findings)
    monkeypatch.setattr(SecurityHubBackend, "batch_import_findings", _import)
    yield
