"""`ecs-remediate scan --security-hub`: import the scan's verdicts into Security Hub (reports/securityhub.py), with the
caller's credentials, under the caller account's default product (the only product a custom integration imports
under without a subscription; it takes findings of its own account only)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from ..adapters.aws import BOTO_CONFIG, BotoCoreError, ClientError, new_session, safe_error
from ..reports import securityhub
from .common import EXIT_USAGE, UsageError


def add_argument(scan: argparse.ArgumentParser) -> None:
    scan.add_argument(
        "--security-hub",
        action="store_true",
        help="also import one finding per verdict into Security Hub (this account's default product, each swept "
        "Region; Security Hub must be enabled there); an import that fails exits 2 after the report",
    )


def account_of(caller_arn: str) -> str:
    parts = caller_arn.split(":")
    if len(parts) < 5 or not parts[4].isdigit():
        raise UsageError("--security-hub: the caller's account is unknown (sts:GetCallerIdentity failed)")
    return parts[4]


def publish(report: Any, caller_arn: str, stderr: TextIO) -> int | None:
    """Import the report; None when it went through (a summary line on stderr), EXIT_USAGE when it did not."""
    account = account_of(caller_arn)
    session = new_session()
    clients: dict[str, Any] = {}

    def client_for(_account: str, region: str) -> Any:
        if region not in clients:
            clients[region] = session.client("securityhub", region_name=region, config=BOTO_CONFIG)
        return clients[region]

    try:
        summary = securityhub.import_sweep(report, client_for=client_for, account=account)
    except (securityhub.SecurityHubImportFailed, ClientError, BotoCoreError) as error:
        print(f"error: Security Hub import failed: {safe_error(error)}", file=stderr)
        return EXIT_USAGE
    moved = ", ".join(f"{count} {status}" for status, count in sorted(summary.workflow_updates.items()))
    print(
        f"Security Hub: {summary.imported} finding(s) imported, {summary.archived} archived"
        + (f", workflow set: {moved}" if moved else ""),
        file=stderr,
    )
    return None
