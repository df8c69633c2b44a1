"""`ecs-remediate scan`: sweep the (daemon) task definitions that exist, and fix them with --remediate (sweep.py).

Exit codes (cli_common): 0 nothing left FAIL or ERROR, 1 findings remain, 2 usage, 3 nothing could be judged (AWS
could not be asked, or no listing completed anywhere), 128 + N when stopped by signal N (what was done is written).
"""

from __future__ import annotations

import argparse
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TextIO

from ..adapters.aws import BotoCoreError, ClientError, safe_error
from ..core.config import Config, ConfigError
from ..sweep import run as sweep
from . import accounts as cli_accounts
from . import aws_session as cli_aws
from . import inventory as cli_inventory
from . import securityhub as cli_securityhub
from .common import EXIT_FINDINGS, EXIT_OK, EXIT_UNJUDGED, UsageError, one_line
from .interrupt import Stopping
from .output import OUTPUTS, ProgressBar, isatty, write_findings

ENV_SWEEP_RATES = "SWEEP_RATES"
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def add_parser(commands: Any) -> None:
    scan = commands.add_parser(
        "scan",
        help="sweep existing task definitions for privileged containers (and fix them with --remediate)",
        description="Lists and judges the ACTIVE task definitions and daemon task definitions of each Region, at the "
        "API's rate limit. Fail-closed: a revision that could not be described is ERROR, never PASS. Uses the "
        "standard AWS credential chain and endpoint settings (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL) and the "
        "function's variables (EXEMPT_FAMILIES, TAG_PREFIX; with --remediate also IDEMPOTENCY_TABLE, TOPIC_ARN, "
        "NOTIFY_ON). Exit 0 when nothing is left FAIL or ERROR, 1 when findings remain, 2 on usage errors, 3 when "
        "nothing could be judged (credentials, profile, endpoint, every Region failed), 130 on Ctrl-C.",
    )
    cli_aws.add_profile_argument(scan)
    scan.add_argument(
        "--region",
        action="append",
        metavar="R",
        help="Region to sweep (repeatable); 'all' for every enabled Region; default: the configured Region",
    )
    scan.add_argument(
        "--scope",
        choices=sweep.SCOPES,
        default=sweep.ACTIVE,
        help="active: every ACTIVE revision (Prowler; default: no privileged revision is left unseen); "
        "latest: the newest ACTIVE revision of each family (AWS Config, Security Hub ECS.4)",
    )
    scan.add_argument(
        "--kinds",
        type=_kinds,
        default=sweep.KINDS,
        metavar="KIND[,KIND]",
        help=f"what to sweep: {' and/or '.join(sweep.KINDS)} (default: both)",
    )
    scan.add_argument(
        "--remediate",
        action="store_true",
        help="register a non-privileged copy of the newest privileged revision of each family, through the "
        "function's path (exemptions, idempotency, marker tag, notices)",
    )
    scan.add_argument(
        "--rollout",
        action="store_true",
        help="with --remediate: move ECS-controlled services onto the fixed copy (UpdateService, a rolling "
        "deployment); CODE_DEPLOY and EXTERNAL services are listed with the manual step. In --scope active an "
        "older privileged revision that a service uses gets a fixed copy of its own (the family's latest, or a "
        "deploy newer still, is registered again right after, re-checked, so it keeps its content)",
    )
    scan.add_argument(
        "--rollout-managed",
        action="store_true",
        help="with --rollout: move services that belong to a CloudFormation stack too (left alone by default: the "
        "stack then has drift, and its next update moves them back until its template is fixed)",
    )
    scan.add_argument(
        "--retire",
        action="store_true",
        help="with --remediate: deregister a privileged revision once its fixed copy exists and no service uses "
        "it; in --scope active also an older privileged revision that no service uses",
    )
    scan.add_argument(
        "--daemon-rollout",
        action="store_true",
        help="with --remediate: move the daemons (ECS Managed Daemons) that run a privileged daemon task definition "
        "onto its fixed copy (UpdateDaemon, their capacity providers and settings kept; every update replaces the "
        "daemon's tasks, and ECS rolls back to the privileged revision if the agent fails to start). docs/daemons.md",
    )
    scan.add_argument(
        "--output",
        "-o",
        choices=OUTPUTS,
        default="table",
        help="stdout format: table, json, csv, ocsf (OCSF Detection Findings, as Prowler writes), asff (AWS Security "
        "Finding Format) or html (one self-contained page)",
    )
    cli_securityhub.add_argument(scan)
    scan.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    scan.add_argument(
        "--rate",
        action="append",
        default=[],
        metavar="OP=PER_SECOND[/BURST]",
        help="client-side rate per operation (describe, list, register); default "
        + ", ".join(f"{op}={_rate_text(ops[0])}" for op, ops in sweep.RATE_ALIASES.items())
        + f"; also from ${ENV_SWEEP_RATES}",
    )
    scan.add_argument(
        "--concurrency",
        type=int,
        default=sweep.DEFAULT_CONCURRENCY,
        help=f"calls in flight per Region (default {sweep.DEFAULT_CONCURRENCY})",
    )
    scan.add_argument(
        "--max-attempts",
        type=int,
        default=sweep.DEFAULT_MAX_ATTEMPTS,
        help=f"attempts per call before a revision is ERROR (default {sweep.DEFAULT_MAX_ATTEMPTS})",
    )
    cli_inventory.add_arguments(scan)
    cli_accounts.add_arguments(scan)
    scan.set_defaults(run=run_scan)


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(kind.strip() for kind in text.split(",") if kind.strip()))
    try:
        sweep.check_kinds(kinds)
    except sweep.SweepError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("kinds: ")) from None
    return kinds


def _rate_text(operation: str) -> str:
    rate = sweep.DEFAULT_RATES[operation]
    return f"{rate.per_second:g}/{rate.burst}"


def run_scan(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    try:
        config = Config.from_env(os.environ)
        rates = sweep.parse_rates([os.environ.get(ENV_SWEEP_RATES, ""), *args.rate])
    except (ConfigError, sweep.SweepError) as error:
        raise UsageError(str(error)) from None
    _check_flags(args)
    cli_aws.use_profile(args.profile)
    # AWS_REGION first, as the AWS CLI v2 and the Lambda runtime do (botocore itself reads AWS_DEFAULT_REGION and the
    # profile's region).
    configured = os.environ.get("AWS_REGION", "").strip() or cli_aws.session().region_name
    names = region_names(args.region or [])
    home = configured or next((name for name in names if name != "all"), None)
    if not home:
        raise UsageError("no Region: set AWS_REGION (or a profile's region), or pass --region or --profile")
    # The first call: credentials, profile and endpoint are settled here (Unjudged, exit 3) before any sweep starts.
    arn = cli_aws.caller_arn(home)
    caller: tuple[str, ...] = (arn,) if arn else ()
    regions = _regions(names, configured)
    # The flags decide for the scan (ROLLOUT/RETIRE in the environment are the function's settings). The caller's own
    # principal is trusted as a registrant of copies: what it registers with --remediate is its own.
    config = replace(
        config,
        rollout=args.rollout,
        retire=args.retire,
        rollout_managed=args.rollout_managed,
        daemon_rollout=args.daemon_rollout,
        trusted_principals=(*config.trusted_principals, *caller),
    )
    if args.security_hub:
        cli_securityhub.account_of(caller[0] if caller else "")  # before the scan: an unknown account stops here
    try:
        inventory = cli_inventory.options(args, caller)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.remediate and not config.idempotency_table and not args.quiet:
        print(
            "note: no IDEMPOTENCY_TABLE: revisions registered in the last 30 minutes are left to the function; "
            "set it to the stack's table to share idempotency with it",
            file=stderr,
        )
    # Idempotency warns that it has no Lambda context to take a timeout from; a terminal has none.
    warnings.filterwarnings("ignore", message="Couldn't determine the remaining time left")
    bar = ProgressBar(stderr) if not args.quiet and isatty(stderr) else None
    with Stopping() as stopping:
        try:
            if args.accounts:  # member accounts, through their member role (cli/accounts.py)
                report = cli_accounts.sweep_members(args, config, rates, regions, bar, stop=stopping.event)
            else:
                report = sweep.sweep(
                    regions,
                    config,
                    scope=args.scope,
                    remediate=args.remediate,
                    rates=rates,
                    concurrency=args.concurrency,
                    max_attempts=args.max_attempts,
                    progress=bar,
                    kinds=args.kinds,
                    stop=stopping.event,
                    **inventory,
                )
        except sweep.SweepError as error:
            raise UsageError(str(error)) from None
        except KeyboardInterrupt:  # a second signal: out at once, after the calls in flight
            print(
                f"interrupted again ({stopping.name}): stopped without writing the report; copies registered before "
                "the stop are in ECS (a scan shows them)",
                file=stderr,
            )
            return stopping.exit_code
        finally:
            if bar is not None:
                bar.close()
    write_findings(report, args.output, stdout)
    if report.interrupted:
        print(_interrupted(report, stopping.name), file=stderr)
        return stopping.exit_code
    if report.nothing_judged:
        print(f"error: nothing could be judged: {_why_unswept(report)}", file=stderr)
        return EXIT_UNJUDGED
    print(report.summary(), file=stderr)
    if args.security_hub and (failed := cli_securityhub.publish(report, caller[0], stderr)) is not None:
        return failed
    return EXIT_FINDINGS if report.open else EXIT_OK


def _check_flags(args: argparse.Namespace) -> None:
    """Settings and combinations refused before anything is asked of AWS."""
    try:
        sweep.check_settings(
            scope=args.scope,
            concurrency=args.concurrency,
            max_attempts=args.max_attempts,
            inventory=args.inventory,
            kinds=args.kinds,
        )
    except sweep.SweepError as error:
        raise UsageError(str(error)) from None
    if args.rollout_managed and not args.rollout:
        raise UsageError("--rollout-managed needs --rollout")
    flags = (("--rollout", args.rollout), ("--retire", args.retire), ("--daemon-rollout", args.daemon_rollout))
    changes = [flag for flag, on in flags if on]
    if changes and not args.remediate:
        # They change services and revisions: never implied by a read-only scan.
        raise UsageError(f"{' and '.join(changes)} need --remediate (without it the scan changes nothing)")
    if args.daemon_rollout and sweep.DAEMON_TASK_DEFINITIONS not in args.kinds:
        raise UsageError(f"--daemon-rollout needs --kinds {sweep.DAEMON_TASK_DEFINITIONS}")
    if args.role_name and not args.accounts:
        raise UsageError("--role-name needs --accounts")
    if args.accounts and (args.inventory != sweep.DESCRIBE or args.config_aggregator):
        raise UsageError("--inventory and --config-aggregator judge the caller's own account: not with --accounts")


def _interrupted(report: sweep.SweepReport, signal_name: str) -> str:
    judged = sum(1 for finding in report.findings if not finding.task_definition_arn.endswith("/*"))
    done = f"{report.remediated} copy(ies) registered, {report.retired} retired" if report.remediate else "read only"
    return (
        f"interrupted ({signal_name}): the sweep stopped early; {judged} revision(s) judged ({done}), as written "
        "above; the rest was not swept"
    )


def _why_unswept(report: sweep.SweepReport) -> str:
    places = "every Region" if not report.accounts else "every account and Region"
    first = next((f.error for f in report.findings if f.error and f.task_definition_arn.endswith("/*")), None)
    return f"{places} failed ({', '.join(report.unswept)})" + (f"; e.g. {one_line(first)[:300]}" if first else "")


def region_names(requested: Sequence[str]) -> list[str]:
    names = [name.strip() for item in requested for name in item.split(",") if name.strip()]
    bad = [name for name in names if name != "all" and not _REGION_RE.match(name)]
    if bad:
        raise UsageError(f"--region: not a Region name: {', '.join(bad)}")
    return list(dict.fromkeys(names))


def _regions(names: Sequence[str], configured: str | None) -> list[str | None]:
    if not names:
        return [configured]
    if "all" in names:
        try:
            return list(sweep.enabled_regions(configured))
        except (ClientError, BotoCoreError) as error:
            if (reason := cli_aws.unjudged(error)) is not None:
                raise reason from None
            raise UsageError(f"--region all: cannot list the enabled Regions ({safe_error(error)})") from None
    return list(names)


__all__ = ["ENV_SWEEP_RATES", "add_parser", "region_names", "run_scan"]
