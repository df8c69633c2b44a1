"""`ecs-remediate exempt add|list|remove`: what an approver runs to manage the exemption registry.

The registry's resource policy lets only approver roles write it; this command writes as the caller (its ARN, from
sts:GetCallerIdentity, is the recorded approver) and refuses, before writing anything, a target that is neither a
revision ARN nor an image digest, an expiry in the past or beyond the configured maximum, or an empty reason.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from . import cli_aws
from .aws import BotoCoreError, ClientError
from .cli_common import UsageError
from .config import ENV_EXEMPTIONS_TABLE, Config, ConfigError
from .exemptions import ExemptionRecord, ExemptionRegistry, RegistryUnavailable
from .taskdef import TASK_DEFINITION_ARN_RE

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")


def add_parser(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    exempt = commands.add_parser(
        "exempt",
        help="manage the exemption registry (approvers only: its resource policy refuses anyone else)",
        description="Exemptions bound to a revision ARN or an image digest (sha256:...), with a reason and an "
        f"expiry. The table is ${ENV_EXEMPTIONS_TABLE} or --table; the stack's ExemptionsTableName output names it.",
    )
    actions = exempt.add_subparsers(dest="action", required=True, parser_class=parser_class)
    add = actions.add_parser("add", help="exempt a revision or an image digest")
    add.add_argument("target", help="a task definition revision ARN, or an image digest sha256:<64 hex>")
    add.add_argument("--reason", required=True, help="why the workload needs privileged mode")
    add.add_argument("--until", required=True, metavar="YYYY-MM-DD", help="last day the exemption holds (UTC)")
    remove = actions.add_parser("remove", help="revoke an exemption (the next delivery or sweep judges it FAIL)")
    remove.add_argument("target")
    listing = actions.add_parser("list", help="every exemption, as JSON")
    for parser in (add, remove, listing):
        parser.add_argument("--table", help=f"the registry table (default ${ENV_EXEMPTIONS_TABLE})")
        cli_aws.add_profile_argument(parser)
    exempt.set_defaults(run=run_exempt)


def run_exempt(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    try:
        config = Config.from_env(os.environ)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    table = args.table or config.exemptions_table
    if not table:
        raise UsageError(f"no registry table: set {ENV_EXEMPTIONS_TABLE} or pass --table")
    cli_aws.use_profile(args.profile)
    registry = ExemptionRegistry(cli_aws.session().client("dynamodb"), table)
    try:
        if args.action == "list":
            records = registry.snapshot().records
            json.dump([vars(r) for r in sorted(records, key=lambda r: r.target)], stdout, indent=2)
            stdout.write("\n")
        elif args.action == "remove":
            registry.delete(_target(args.target))
            print(f"removed the exemption of {args.target}", file=stderr)
        else:
            record = _record(args, config.exemption_max_days)
            registry.put(record)
            print(f"exempt until {record.until}: {record.target} (approver {record.approver})", file=stderr)
    except (RegistryUnavailable, ClientError, BotoCoreError) as error:
        cause = error.__cause__ if isinstance(error, RegistryUnavailable) else error
        if cause is not None and (reason := cli_aws.unjudged(cause)) is not None:
            raise reason from None
        raise UsageError(f"{table}: {error}") from None
    return 0


def _target(text: str) -> str:
    target = text.strip()
    if not (TASK_DEFINITION_ARN_RE.match(target) or _DIGEST_RE.match(target)):
        raise UsageError(
            f"{target[:200]!r}: expected a task definition revision ARN "
            "(arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION) or an image digest sha256:<64 hex>"
        )
    return target


def _record(args: argparse.Namespace, max_days: int) -> ExemptionRecord:
    target = _target(args.target)
    reason = " ".join(str(args.reason).split())
    if not reason:
        raise UsageError("--reason: an exemption needs a reason")
    try:
        until = date.fromisoformat(args.until)
    except ValueError:
        raise UsageError(f"--until: {args.until!r} is not a YYYY-MM-DD date") from None
    today = datetime.now(UTC).date()
    if until < today:
        raise UsageError(f"--until: {until.isoformat()} is in the past")
    if until > today + timedelta(days=max_days):
        raise UsageError(f"--until: at most {max_days} days from today ({(today + timedelta(days=max_days))})")
    try:
        approver = str(cli_aws.session().client("sts").get_caller_identity()["Arn"])
    except (ClientError, BotoCoreError) as error:
        if (unreachable := cli_aws.unjudged(error)) is not None:
            raise unreachable from None
        raise UsageError(f"cannot tell who you are (sts:GetCallerIdentity): {error}") from None
    except KeyError as error:
        raise UsageError(f"cannot tell who you are (sts:GetCallerIdentity): {error}") from None
    return ExemptionRecord(target, reason[:1000], approver, until.isoformat(), datetime.now(UTC).isoformat())
