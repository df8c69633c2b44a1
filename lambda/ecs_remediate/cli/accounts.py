"""`ecs-remediate scan --accounts ID[,ID...]|org [--role-name NAME]`: sweep member accounts from the hub.

Runs as the caller (an operator in the hub, or the management account): `org` lists the organization's ACTIVE
accounts (organizations:ListAccounts, every page), each account is reached through its member role (the hub
stack's, `ecs-remediate-member` unless MEMBER_ROLE_NAME or --role-name says otherwise) from the regional STS
endpoint of the configured Region, and `org_sweep.sweep_accounts` does the rest.
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import boto3

from ..adapters import aws
from ..core.config import ENV_MEMBER_ROLE_NAME, Config
from ..organization import scan as org_sweep
from ..organization.account_names import AccountListingFailed, AccountNames, active_accounts
from ..organization.member_accounts import DEFAULT_MEMBER_ROLE_NAME, MemberAccounts, check_account, regional_sts_client
from ..sweep.rates import Rate, SweepError
from ..sweep.report import Progress, SweepReport
from .common import UsageError

ORG = "org"


def add_arguments(scan: argparse.ArgumentParser) -> None:
    scan.add_argument(
        "--accounts",
        action="append",
        metavar="ID[,ID...]|org",
        help="sweep these member accounts (or 'org': every ACTIVE account the caller can list) through their "
        "member role, in parallel; one report with account and Region columns",
    )
    scan.add_argument(
        "--role-name",
        metavar="NAME",
        help=f"with --accounts: the member role to assume (default ${ENV_MEMBER_ROLE_NAME}, else "
        f"{DEFAULT_MEMBER_ROLE_NAME})",
    )


def sweep_members(
    args: argparse.Namespace,
    config: Config,
    rates: Mapping[str, Rate],
    regions: Sequence[str | None],
    progress: Progress | None,
    *,
    stop: threading.Event | None = None,
) -> SweepReport:
    """The organization sweep `args` asks for (UsageError for a bad account id, role name, or an `org` that cannot
    be listed); `stop`: as sweep.sweep."""
    home = os.environ.get("AWS_REGION", "").strip() or boto3.session.Session().region_name or regions[0]
    if not home:
        raise UsageError("no Region: set AWS_REGION (or a profile's region) or pass --region")
    role_name = args.role_name or os.environ.get(ENV_MEMBER_ROLE_NAME, "").strip() or DEFAULT_MEMBER_ROLE_NAME
    try:
        members = MemberAccounts(role_name, sts=regional_sts_client(home))
    except ValueError as error:
        raise UsageError(f"--role-name: {error}") from None

    def organizations() -> Any:
        return aws.new_session().client("organizations", region_name=home)

    accounts = resolve_accounts(args.accounts, organizations)
    try:
        return org_sweep.sweep_accounts(
            accounts,
            [region for region in regions if region],
            config,
            members,
            names=AccountNames(organizations),
            scope=args.scope,
            remediate=args.remediate,
            rates=rates,
            concurrency=args.concurrency,
            max_attempts=args.max_attempts,
            progress=progress,
            kinds=args.kinds,
            stop=stop,
        )
    except SweepError as error:
        raise UsageError(str(error)) from None


def resolve_accounts(specs: Sequence[str], organizations: Any) -> list[str]:
    """Account ids, in the order given, without repeats; `org` alone: every ACTIVE account of the organization."""
    items = [item.strip() for spec in specs for item in spec.split(",") if item.strip()]
    if not items:
        raise UsageError("--accounts: give account ids or 'org'")
    if ORG in items:
        if len(set(items)) > 1:
            raise UsageError("--accounts: 'org' means every account; give it alone")
        try:
            return active_accounts(organizations())
        except AccountListingFailed as error:
            raise UsageError(f"--accounts org: {error}") from None
    bad = []
    for item in items:
        try:
            check_account(item)
        except ValueError:
            bad.append(item)
    if bad:
        raise UsageError(f"--accounts: not an AWS account id (12 digits): {', '.join(bad)}")
    return list(dict.fromkeys(items))


__all__ = ["add_arguments", "resolve_accounts", "sweep_members"]
