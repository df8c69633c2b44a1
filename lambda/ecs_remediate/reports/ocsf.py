"""Pure: report rows as OCSF 1.5.0 Detection Findings (class 2004), laid out as Prowler 5.x writes its
`json-ocsf` output (prowler/lib/outputs/ocsf/ocsf.py, on py-ocsf-models 0.10.0), so a pipeline that ingests
Prowler's OCSF ingests this.

What differs from Prowler, on purpose: `status_code` is this tool's verdict (PASS, FAIL, EXEMPT, ERROR; Prowler
writes PASS, FAIL, MANUAL), `status_id` follows the finding's workflow (New, Suppressed for an exemption,
Resolved once fixed or compliant), `severity` is the row's (Informational when compliant), and resource
labels are left empty (no tag values in a report). This tool's own fields are under `unmapped.ecs_remediate`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from .. import __version__
from .rows import (
    CHECK_ID,
    DESCRIPTION,
    HIGH,
    INFORMATIONAL,
    LOW,
    MEDIUM,
    REFERENCE_URL,
    RESOLVED,
    SUPPRESSED,
    TITLE,
    Row,
    review_text,
    rows_from_report,
)

OCSF_VERSION = "1.5.0"
PRODUCT = "ecs-remediate"
CLASS_UID, CATEGORY_UID = 2004, 2
ACTIVITY_CREATE = 1
TYPE_UID = CLASS_UID * 100 + ACTIVITY_CREATE  # 200401: Detection Finding: Create
SEVERITY_IDS = {INFORMATIONAL: (1, "Informational"), LOW: (2, "Low"), MEDIUM: (3, "Medium"), HIGH: (4, "High")}
STATUS_IDS = {SUPPRESSED: (3, "Suppressed"), RESOLVED: (4, "Resolved")}
NEW_STATUS = (1, "New")
AWS_ACCOUNT_TYPE = (10, "AWS Account")
RISK = "Whoever breaks into a privileged container gets root on its host and every task on it."


def detection_finding(row: Row, *, now: datetime, scan_id: str) -> dict[str, Any]:
    moment = now.astimezone(UTC).replace(microsecond=0)
    epoch, stamp = int(moment.timestamp()), moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    severity_id, severity = SEVERITY_IDS[row.severity]
    status_id, status = STATUS_IDS.get(row.workflow, NEW_STATUS)
    commands = row.fix_commands()
    event: dict[str, Any] = {
        "message": row.statement,
        "metadata": {
            "event_code": CHECK_ID,
            "product": {"name": PRODUCT, "uid": PRODUCT, "vendor_name": PRODUCT, "version": __version__},
            "profiles": ["cloud", "datetime"],
            "tenant_uid": "",
            "version": OCSF_VERSION,
        },
        "severity_id": severity_id,
        "severity": severity,
        "status": status,
        "status_code": row.status,
        "status_detail": row.statement,
        "status_id": status_id,
        "unmapped": {
            "related_url": REFERENCE_URL,
            "categories": ["container-security"],
            "depends_on": [],
            "related_to": [],
            "additional_urls": [],
            "notes": "",
            "compliance": {"AWS-Foundational-Security-Best-Practices": ["ECS.4"]},
            "scan_id": scan_id,
            "provider_uid": row.account,
            "provider": "aws",
            "ecs_remediate": {
                "status": row.status,
                "action": row.action,
                "compliance": row.compliance,
                "scope": row.scope,
                "privileged_containers": list(row.privileged_containers),
                "new_task_definition_arn": row.new_task_definition_arn,
                "error": row.error,
                "exemption_reason": row.exemption_reason,
                "exemption_until": row.exemption_until,
                "fix_commands": commands,
                "source": row.attribution.to_json() if row.attribution is not None else None,
                "host_equivalents": list(row.host_equivalents),
                "host_access": list(row.host_access),
            },
        },
        "activity_name": "Create",
        "activity_id": ACTIVITY_CREATE,
        "finding_info": {
            "analytic": {"category": "ecs", "name": TITLE, "type": "Rule", "type_id": 1, "uid": CHECK_ID},
            "created_time": epoch,
            "created_time_dt": stamp,
            "desc": DESCRIPTION,
            "title": TITLE,
            "types": ["Software and Configuration Checks/AWS Security Best Practices"],
            "uid": row.uid,
        },
        "resources": [
            {
                "cloud_partition": row.partition,
                "region": row.region,
                "data": {
                    "details": row.host_text,
                    "metadata": {
                        "privileged_containers": list(row.privileged_containers),
                        "host_equivalents": list(row.host_equivalents),
                        "host_access": list(row.host_access),
                    },
                },
                "group": {"name": "ecs"},
                "labels": [],
                "name": row.name,
                "type": "AwsEcsTaskDefinition" if row.family else "AwsAccount",
                "uid": row.task_definition_arn,
            }
        ],
        "category_name": "Findings",
        "category_uid": CATEGORY_UID,
        "class_name": "Detection Finding",
        "class_uid": CLASS_UID,
        "cloud": {
            "account": {
                "name": row.account,
                "type": AWS_ACCOUNT_TYPE[1],
                "type_id": AWS_ACCOUNT_TYPE[0],
                "uid": row.account,
                "labels": [],
            },
            "org": {"name": "", "ou_uid": "", "ou_name": "", "uid": ""},
            "provider": "aws",
            "region": row.region,
        },
        "remediation": {"desc": _remediation(row, commands), "references": [REFERENCE_URL]},
        "risk_details": RISK,
        "time": epoch,
        "time_dt": stamp,
        "type_uid": TYPE_UID,
        "type_name": "Detection Finding: Create",
    }
    return event


def detection_findings(rows: Iterable[Row], *, now: datetime, scan_id: str | None = None) -> list[dict[str, Any]]:
    scan = scan_id or str(uuid.uuid4())
    return [detection_finding(row, now=now, scan_id=scan) for row in rows]


def render(report: Any, *, now: datetime) -> str:
    """`scan --output ocsf`: a JSON list of Detection Findings, as Prowler's `-M json-ocsf` file."""
    return json.dumps(detection_findings(rows_from_report(report), now=now), indent=2) + "\n"


def _remediation(row: Row, commands: list[str]) -> str:
    steps = [c for c in commands if not c.startswith("#")]
    if steps:
        return "Run: " + " && ".join(steps)
    if row.compliance == "PASSED":
        return review_text(row) or "Nothing left to do."
    return row.exemption_text or row.statement
