"""Pure: report rows as AWS Security Finding Format (ASFF) findings, the shape BatchImportFindings takes.

One finding per verdict, under the importing account's default product
(`arn:<partition>:securityhub:<region>:<account>:product/<account>/default`), with a stable `Id` so a rerun
updates the finding instead of adding one. Lengths are cut to ASFF's limits (Title 256, Description 1,024,
Remediation text 512, ProductFields values 2,048 characters). `Workflow` and `Note` are part of a new
finding only: Security Hub ignores them on an update from BatchImportFindings (the adapter in
reports/securityhub.py moves an existing finding's workflow with BatchUpdateFindings).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from .rows import CHECK_ID, DESCRIPTION, GENERATOR, REFERENCE_URL, SUPPRESSED, TITLE, Row, review_text, rows_from_report

SCHEMA_VERSION = "2018-10-08"
PRODUCT_NAME = COMPANY_NAME = "ecs-remediate"
FINDING_TYPE = "Software and Configuration Checks/AWS Security Best Practices"
RESOURCE_TYPE = "AwsEcsTaskDefinition"
TITLE_MAX, DESCRIPTION_MAX, RECOMMENDATION_MAX, NOTE_MAX, FIELD_MAX = 256, 1024, 512, 512, 2048
FIELD_PREFIX = "ecs-remediate/"
UPDATED_BY = "ecs-remediate"


def product_arn(region: str, account: str, partition: str = "aws") -> str:
    """The account's default product: what a custom integration imports under."""
    return f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"


def timestamp(moment: datetime) -> str:
    """ASFF's ISO 8601 form in UTC, milliseconds: 2026-11-02T10:00:00.000Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def finding(
    row: Row,
    *,
    now: datetime,
    account: str = "",
    created_at: str | None = None,
    first_observed_at: str | None = None,
) -> dict[str, Any]:
    """The ASFF finding for one row. `account` stands in when the row's is unknown (a listing that failed);
    `created_at`/`first_observed_at` keep an existing finding's own (an update, not a new finding)."""
    account = row.account or account
    if not account:
        raise ValueError(f"{row.task_definition_arn}: no account for the finding (AwsAccountId is required)")
    stamp = timestamp(now)
    commands = row.fix_commands()
    result: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": row.uid if row.account else row.uid.replace("unknown-account", account, 1),
        "ProductArn": product_arn(row.region, account, row.partition),
        "ProductName": PRODUCT_NAME,
        "CompanyName": COMPANY_NAME,
        "GeneratorId": GENERATOR,
        "AwsAccountId": account,
        "Region": row.region,
        "Types": [FINDING_TYPE],
        "CreatedAt": created_at or stamp,
        "UpdatedAt": stamp,
        "FirstObservedAt": first_observed_at or stamp,
        "LastObservedAt": stamp,
        "Severity": {"Label": row.severity, "Original": row.status},
        "FindingProviderFields": {"Severity": {"Label": row.severity, "Original": row.status}, "Types": [FINDING_TYPE]},
        "Title": _cut(TITLE, TITLE_MAX),
        "Description": _cut(f"{row.statement} {DESCRIPTION}", DESCRIPTION_MAX),
        "Remediation": {"Recommendation": {"Text": _recommendation(row, commands), "Url": REFERENCE_URL}},
        "ProductFields": _product_fields(row, commands),
        "Resources": [_resource(row, account)],
        "Compliance": {"Status": row.compliance, "RelatedRequirements": [f"Prowler {CHECK_ID}", "ECS.4"]},
        "RecordState": "ARCHIVED" if row.retired else "ACTIVE",
        "Workflow": {"Status": row.workflow},
    }
    note = workflow_note(row)
    if note:
        result["Note"] = {"Text": note, "UpdatedBy": UPDATED_BY, "UpdatedAt": stamp}
    return result


def workflow_note(row: Row) -> str:
    """What a person reads beside a suppressed finding: the exemption's reason and expiry."""
    return _cut(row.exemption_text, NOTE_MAX) if row.workflow == SUPPRESSED else ""


def findings(rows: Iterable[Row], *, now: datetime, account: str = "") -> list[dict[str, Any]]:
    """ASFF for rows; a row whose account is unknown takes `account`; a row with no account at all is left out
    (AwsAccountId is required; the scan's summary and exit code still count it)."""
    return [finding(row, now=now, account=account) for row in rows if row.account or account]


def render(report: Any, *, now: datetime) -> str:
    """`scan --output asff`: a JSON list of ASFF findings, the `Findings` of a BatchImportFindings request."""
    return json.dumps(findings(rows_from_report(report), now=now), indent=2) + "\n"


def _recommendation(row: Row, commands: list[str]) -> str:
    steps = [c for c in commands if not c.startswith("#")]
    if not steps:
        passed = review_text(row) or "Nothing left to do."
        text = passed if row.compliance == "PASSED" else row.exemption_text or row.statement
        return _cut(text, RECOMMENDATION_MAX)
    text = "Run: " + " && ".join(steps)
    if len(text) > RECOMMENDATION_MAX:  # a long family name: the sweep's command does the same, shorter
        region = f" --region {row.region}" if row.region else ""
        text = f"Run: ecs-remediate scan{region} --remediate (commands: ProductFields {FIELD_PREFIX}FixCommands)"
    return _cut(text, RECOMMENDATION_MAX)


def _product_fields(row: Row, commands: list[str]) -> dict[str, str]:
    fields = {
        "Status": row.status,
        "Action": row.action,
        "Scope": row.scope,
        "PrivilegedContainers": ",".join(row.privileged_containers),
        "NewTaskDefinitionArn": row.new_task_definition_arn or "",
        "Error": row.error or "",
        "ExemptionReason": row.exemption_reason or "",
        "ExemptUntil": row.exemption_until or "",
        "FixCommands": "\n".join(commands),
        "HostEquivalents": "\n".join(row.host_equivalents),
        "HostAccess": "\n".join(row.host_access),
        **_source_fields(row),
    }
    return {FIELD_PREFIX + key: _cut(value, FIELD_MAX) for key, value in fields.items() if value.strip()}


def _source_fields(row: Row) -> dict[str, str]:
    """Where the revision came from (core/attribution.py: names and ARNs only)."""
    found = row.attribution
    if found is None:
        return {}
    return {
        "Source": row.source,
        "SourceTool": found.tool.value,
        "SourceStack": found.stack_name,
        "SourceLogicalId": found.logical_id,
        "SourceStackArn": found.stack_arn,
    }


def _resource(row: Row, account: str) -> dict[str, Any]:
    if not row.family:  # a listing that failed: the finding is about the account's Region, not a revision
        account_id = f"AWS::::Account:{account}"
        return {"Type": "AwsAccount", "Id": account_id, "Partition": row.partition, "Region": row.region}
    details: dict[str, Any] = {"Family": row.family}
    if row.privileged_containers:
        details["ContainerDefinitions"] = [{"Name": name, "Privileged": True} for name in row.privileged_containers]
    return {
        "Type": RESOURCE_TYPE,
        "Id": row.task_definition_arn,
        "Partition": row.partition,
        "Region": row.region,
        "Details": {"AwsEcsTaskDefinition": details},
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
