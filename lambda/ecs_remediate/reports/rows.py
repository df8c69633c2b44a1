"""Pure: one report row per verdict, from a sweep `Finding` or a `Remediator` `Result`, with what every
finding format (OCSF, ASFF, HTML, Security Hub) derives from it: account, compliance, workflow, severity,
a one-line statement and the exact commands that fix it.

Only names and ARNs come in: container names, the revision ARN, the sweep's action and error text, an
exemption's reason and expiry (tag values) and the host access the revision keeps (core/hostroot.py's texts: names,
capabilities, paths, option names, capped and printable). Nothing else from a task definition's body reaches a report.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..core.attribution import Attribution
from ..core.hostroot_model import describe
from ..core.notice import CONTROL, next_commands
from ..core.outcomes import COMPLIANT, EXEMPT, FAILED, REMEDIATED, REPORTED, SUPERSEDED, Result
from ..core.policy import ERROR, FAIL, PASS
from ..core.policy import EXEMPT as EXEMPT_STATUS

CHECK_ID = "ecs_task_definitions_no_privileged_containers"  # Prowler's check for the same rule
GENERATOR = "ecs-remediate/privileged-containers"
TITLE = f"ECS containers should run as non-privileged ({CONTROL})"
DESCRIPTION = (
    "A container with privileged: true gets root on its host: whoever breaks into it owns the instance and "
    "every task on it. ecs-remediate judges each task definition revision and registers a non-privileged copy."
)
REFERENCE_URL = "https://docs.aws.amazon.com/securityhub/latest/userguide/ecs-controls.html#ecs-4"

# ASFF Compliance.Status / Workflow.Status / Severity.Label values, used by every format.
PASSED, FAILED_COMPLIANCE, NOT_AVAILABLE = "PASSED", "FAILED", "NOT_AVAILABLE"
NEW, RESOLVED, SUPPRESSED = "NEW", "RESOLVED", "SUPPRESSED"
INFORMATIONAL, LOW, MEDIUM, HIGH = "INFORMATIONAL", "LOW", "MEDIUM", "HIGH"

_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):ecs:(?P<region>[a-z0-9-]*):(?P<account>[^:]*):task-definition/")
_ACCOUNT = re.compile(r"^\d{12}\Z", re.ASCII)
_REVISION = re.compile(r":([1-9]\d*)\Z", re.ASCII)


@dataclass(frozen=True)
class Row:
    """The verdict on one revision (or, for a listing that failed, on a Region) and what was done."""

    task_definition_arn: str
    status: str  # PASS | FAIL | EXEMPT | ERROR
    account: str = ""  # 12 digits, or "" when nothing tells
    region: str = ""
    partition: str = "aws"
    family: str = ""
    revision: int = 0  # 0: unknown (a family whose describe failed, a listing that failed)
    privileged_containers: tuple[str, ...] = ()
    action: str = "none"
    new_task_definition_arn: str | None = None
    error: str | None = None
    exemption_reason: str | None = None
    exemption_until: str | None = None  # YYYY-MM-DD
    scope: str = "latest"
    attribution: Attribution | None = None  # where a privileged revision came from (a hint)
    host_equivalents: tuple[str, ...] = ()  # still root on the host without privileged (core/hostroot.py)
    host_access: tuple[str, ...] = ()  # reaches the host, not root by itself (core/hostroot.py)

    @property
    def source(self) -> str:
        """One line naming the revision's source (tool, stack, logical id), or "" when not recognised."""
        return self.attribution.summary() if self.attribution is not None else ""

    @classmethod
    def from_finding(cls, finding: Any, *, scope: str = "latest", default_account: str = "") -> Row:
        """A sweep row. Its account is the row's own `account` when it has one (the organization sweep's rows),
        else the revision ARN's, else `default_account`."""
        arn = str(finding.task_definition_arn)
        parsed = _ARN.match(arn)
        account = str(getattr(finding, "account", "") or (parsed["account"] if parsed else "") or "")
        if not _ACCOUNT.match(account):
            account = default_account if _ACCOUNT.match(default_account) else ""
        reason, until = _exemption(finding)
        return cls(
            task_definition_arn=arn,
            status=str(finding.status),
            account=account,
            region=str(finding.region or (parsed["region"] if parsed else "")),
            partition=parsed["partition"] if parsed else "aws",
            family="" if finding.family == "~" else str(finding.family),  # "~" sorts a listing error last
            revision=int(finding.revision or _revision(arn)),
            privileged_containers=tuple(finding.privileged_containers),
            action=str(finding.action),
            new_task_definition_arn=finding.new_task_definition_arn,
            error=finding.error,
            exemption_reason=reason,
            exemption_until=until,
            scope=scope,
            attribution=getattr(finding, "attribution", None),
            host_equivalents=tuple(getattr(finding, "host_equivalents", ())),
            host_access=tuple(getattr(finding, "host_access", ())),
        )

    @classmethod
    def from_result(cls, result: Result, *, region: str = "", account: str = "") -> Row | None:
        """The function's verdict on one revision; None for a skip (nothing was judged)."""
        registration = result.registration
        parsed = _ARN.match(result.task_definition_arn)
        region = region or (registration.region if registration else "") or (parsed["region"] if parsed else "")
        account = account or (registration.account if registration else "") or (parsed["account"] if parsed else "")
        common: dict[str, Any] = {
            "task_definition_arn": result.task_definition_arn,
            "account": account if _ACCOUNT.match(account) else "",
            "region": region,
            "partition": parsed["partition"] if parsed else "aws",
            "family": result.family,
            "revision": result.revision,
            "privileged_containers": tuple(result.privileged),
            "new_task_definition_arn": result.new_task_definition_arn,
            "attribution": result.attribution,
            "host_equivalents": tuple(result.host_equivalents),
            "host_access": tuple(getattr(result, "host_access", ())),
        }
        if result.outcome == COMPLIANT:
            return cls(status=PASS, **{**common, "privileged_containers": (), "attribution": None})
        if result.outcome == EXEMPT:
            why = result.exemption or "exempt"
            # `why` reads "exempt until <date>: <reason> (approved by ...)"; the row keeps the reason part
            reason = why.removeprefix(f"exempt until {result.exemption_until}: ") if result.exemption_until else why
            return cls(
                status=EXEMPT_STATUS,
                action=f"none: {why}" if why.startswith("exempt") else f"none: exempt: {why}",
                exemption_reason=reason,
                exemption_until=result.exemption_until,
                **common,
            )
        if result.outcome == REPORTED:
            return cls(status=FAIL, action="reported", **common)
        if result.outcome == REMEDIATED:
            action = f"retired: {result.retire_note}" if result.retired else "remediated"
            return cls(status=FAIL, action=action, **common)
        if result.outcome == SUPERSEDED:  # privileged, ACTIVE, no longer the family's latest
            action = f"retired: {result.retire_note}" if result.retired else f"superseded: {result.reason}"
            return cls(status=FAIL, action=action, **common)
        if result.outcome == FAILED:
            error = f"{result.error_code}: {result.error_message}" if result.error_code else result.error_message
            return cls(status=FAIL, action="failed", error=error or result.reason or "failed", **common)
        return None

    @property
    def action_code(self) -> str:
        return self.action.split(":", 1)[0].strip()

    @property
    def fixed(self) -> bool:
        """FAIL, but a fixed copy now replaces it (remediated) or it is deregistered (retired)."""
        return self.status == FAIL and self.action_code in ("remediated", "retired")

    @property
    def retired(self) -> bool:
        return self.status == FAIL and self.action_code == "retired"

    @property
    def open(self) -> bool:
        """Left to deal with: as the sweep's exit code counts (ERROR, or FAIL neither remediated nor retired)."""
        return self.status == ERROR or (self.status == FAIL and not self.fixed)

    @property
    def is_revision(self) -> bool:
        return self.revision > 0

    @property
    def name(self) -> str:
        """`family:revision`, or the family alone when the revision is unknown, or `*` for a Region."""
        if self.is_revision:
            return f"{self.family}:{self.revision}"
        return self.family or "*"

    @property
    def uid(self) -> str:
        """Stable across runs (so a rerun updates the finding instead of adding one): the rule, the account,
        the Region and `family:revision` (or `family`, or `*` for a listing that failed)."""
        return f"{GENERATOR}/{self.account or 'unknown-account'}/{self.region or 'unknown-region'}/{self.name}"

    @property
    def compliance(self) -> str:
        if self.status == ERROR:
            return NOT_AVAILABLE  # it could not be judged: never PASSED
        if self.status == PASS or self.fixed:
            return PASSED
        return FAILED_COMPLIANCE  # FAIL, and EXEMPT (privileged; suppressed, not compliant)

    @property
    def workflow(self) -> str:
        if self.compliance == PASSED:
            return RESOLVED
        return SUPPRESSED if self.status == EXEMPT_STATUS else NEW

    @property
    def severity(self) -> str:
        """HIGH for a privileged container left as it is (Prowler's and ECS.4's severity) and for a revision
        that could not be judged (fail-closed: it may be one); LOW when exempt; when compliant (or fixed),
        MEDIUM if it is still host-equivalent without privileged, else INFORMATIONAL."""
        if self.compliance == PASSED:
            return MEDIUM if self.host_equivalents else INFORMATIONAL
        return LOW if self.status == EXEMPT_STATUS else HIGH

    @property
    def host_text(self) -> str:
        """One line naming the host access the revision keeps, by level; "" when it keeps none."""
        return describe(self.host_equivalents, self.host_access, max_items=6, max_chars=600)

    @property
    def exemption_text(self) -> str:
        if self.status != EXEMPT_STATUS:
            return ""
        until = f"until {self.exemption_until}" if self.exemption_until else "without an expiry date (family glob)"
        return f"exempt {until}: {self.exemption_reason or 'no reason recorded'}"

    @property
    def statement(self) -> str:
        """One line: what was found about this revision and what was done."""
        subject = f"ECS task definition {self.name}"
        containers = ", ".join(self.privileged_containers)
        if self.status == ERROR:
            return f"{subject} could not be judged: {self.error or 'unknown error'}"
        host = f" It keeps host access: {self.host_text}." if self.host_text else ""
        if self.status == PASS:
            return f"{subject} does not have privileged containers.{host}"
        if self.status == EXEMPT_STATUS:
            return f"{subject} has privileged containers ({containers}); {self.exemption_text}.{host}"
        done = {
            "remediated": f"a non-privileged copy is registered ({_short(self.new_task_definition_arn)})",
            "retired": "the revision is deregistered",
            "reported": "not fixed (found without --remediate)",
            "failed": f"the copy could not be registered ({self.error or 'unknown error'})",
        }.get(self.action_code, self.action)
        return f"{subject} has privileged containers ({containers}); {done}.{host}"

    def fix_commands(self) -> list[str]:
        """The exact commands that finish the job for this row; [] when nothing is left to do."""
        region = f" --region {shlex.quote(self.region)}" if self.region else ""
        sweep_everything = f"ecs-remediate scan{region} --scope active --remediate --rollout --retire"
        if self.status == ERROR:
            return [f"ecs-remediate scan{region} --scope {self.scope}"]
        if self.status != FAIL or self.retired:
            return []
        if self.action_code in ("reported", "failed") and self.is_revision:
            result = Result(REPORTED, self.task_definition_arn, family=self.family, revision=self.revision)
            return next_commands(result, self.region)
        if self.action_code == "skipped":
            return [f"ecs-remediate scan{region} --remediate"]
        # remediated (the privileged revision is still ACTIVE) or superseded (an older revision): move the
        # services that use it onto a fixed copy and deregister it once none does.
        return [sweep_everything]


def review_text(row: Row) -> str:
    """What is left for a person on a compliant (or fixed) revision that keeps host access; "" when none."""
    if not row.host_text:
        return ""
    return f"Review the host access it keeps (removing privileged changes none of it): {row.host_text}"


def rows_from_report(report: Any, *, default_account: str = "") -> list[Row]:
    """Rows for a `SweepReport`. A row that shows no account (a Region whose listing failed) takes
    `default_account`, or else the account every other row shows, when they all show the same one."""
    rows = rows_from_findings(report.findings, scope=report.scope, default_account=default_account)
    accounts = {row.account for row in rows if row.account}
    if len(accounts) == 1 and any(not row.account for row in rows):
        (only,) = accounts
        rows = [row if row.account else replace(row, account=only) for row in rows]
    return rows


def rows_from_findings(findings: Iterable[Any], *, scope: str = "latest", default_account: str = "") -> list[Row]:
    return [Row.from_finding(f, scope=scope, default_account=default_account) for f in findings]


def _exemption(finding: Any) -> tuple[str | None, str | None]:
    """The exemption's reason and expiry for an EXEMPT row: from the claim the sweep judged, else from the
    action text the Remediator path wrote (`none: exempt: <why>`)."""
    if finding.status != EXEMPT_STATUS:
        return None, None
    exemption = getattr(finding, "exemption", None)
    if exemption is not None and exemption.valid:
        until = exemption.until.isoformat() if exemption.until is not None else None
        return (exemption.reason or exemption.why), until
    why = str(finding.action).split(":", 1)[-1].strip()
    return why.removeprefix("exempt:").strip() or None, None


def _revision(arn: str) -> int:
    match = _REVISION.search(arn)
    return int(match.group(1)) if match else 0


def _short(arn: str | None) -> str:
    return (arn or "").split("task-definition/", 1)[-1] or "-"
