"""`ecs-remediate`: the same logic as the function, from a terminal.

ecs-remediate fix [--check] [--write] FILE|DIR|-
                                      offline: write a non-privileged copy of a (daemon) task definition, fix
                                      a CloudFormation template or Terraform files in place, check a plan
ecs-remediate exempt add|list|remove  approvers: the exemption registry (a revision ARN or an image digest)
ecs-remediate scan [--region R ...] [--scope latest|active] [--remediate [--rollout [--rollout-managed]] [--retire]
                   [--daemon-rollout]] [--output table|json|csv|ocsf|asff|html] [--security-hub]
                   [--accounts ID[,ID...]|org [--role-name NAME]]
                                      sweep the (daemon) task definitions that exist; exit 1 while findings remain
ecs-remediate guardrail [--tag-prefix P] [--break-glass ARN ...] [--approver ARN ...] [--member-role NAME]
                                      print the guardrail SCP (the hub stack's guardrail=print|attach)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TextIO

import boto3

from . import cli_accounts, cli_exempt, cli_inventory, cli_securityhub, guardrail, reports, sweep
from .accounts import DEFAULT_MEMBER_ROLE_NAME
from .aws import BotoCoreError, ClientError
from .cli_common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, UsageError
from .cli_fix import run_fix
from .cli_output import ProgressBar, isatty, write_findings
from .config import DEFAULT_TAG_PREFIX, Config, ConfigError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 on usage errors too; keep its message short
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ecs-remediate", description="Find and fix privileged containers in ECS task definitions.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    fix = commands.add_parser(
        "fix",
        help="write a non-privileged copy of a task definition, or fix a CloudFormation template (offline)",
        description="Reads a DescribeTaskDefinition response, a task definition (console export, "
        "--cli-input-json) or a containerDefinitions array; writes the fixed document to stdout and one "
        "line per changed container to stderr. A DescribeDaemonTaskDefinition response or a daemon task definition "
        "(told apart by its shape) gives a RegisterDaemonTaskDefinition input. A CloudFormation template (JSON or "
        "YAML, cdk.out included) is written back with only its Privileged values changed; a Terraform plan "
        "(terraform show -json) is checked only (--check). Terraform files (FILE.tf, FILE.tf.json, or a module's "
        "directory, which gives a unified diff) get only their privileged values changed. See docs/iac.md.",
    )
    fix.add_argument(
        "file", metavar="FILE", help="JSON, YAML or Terraform file, a Terraform module's directory, or - for stdin"
    )
    fix.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 if a container is privileged (templates and plans: or unresolved), "
        "listing each on stdout for templates, plans and Terraform files",
    )
    fix.add_argument("--write", action="store_true", help="Terraform files: change them in place")
    fix.set_defaults(run=run_fix)
    scan = commands.add_parser(
        "scan",
        help="sweep existing task definitions for privileged containers (and fix them with --remediate)",
        description="Lists and judges the ACTIVE task definitions of each Region, at the API's rate limit. "
        "Fail-closed: a revision that could not be described is ERROR, never PASS. Uses the standard AWS "
        "credential chain and endpoint settings (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL) and the "
        "function's variables (EXEMPT_FAMILIES, TAG_PREFIX; with --remediate also IDEMPOTENCY_TABLE, "
        "TOPIC_ARN, NOTIFY_ON). Exit 0 when nothing is left FAIL or ERROR, 1 when findings remain, 2 on "
        "usage errors.",
    )
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
        choices=("table", "json", "csv", *reports.FORMATS),
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
    cli_exempt.add_parser(commands, _Parser)
    _add_guardrail_parser(commands)
    return parser


def _add_guardrail_parser(commands: Any) -> None:
    command = commands.add_parser(
        "guardrail",
        help="print the guardrail service control policy (for SCPs managed outside the hub stack)",
        description="Prints the SCP that denies registering a task definition with a privileged container "
        "(ecs:privileged) except for break-glass principals, and denies setting or removing the exemption tags "
        "except for approvers and the member role. The same document as the hub stack's guardrail=print|attach.",
    )
    command.add_argument("--tag-prefix", default=DEFAULT_TAG_PREFIX, help=f"default {DEFAULT_TAG_PREFIX}")
    command.add_argument(
        "--break-glass", action="append", default=[], metavar="ARN", help="principal ARN pattern (repeatable)"
    )
    command.add_argument(
        "--approver", action="append", default=[], metavar="ARN", help="principal ARN pattern (repeatable)"
    )
    command.add_argument(
        "--member-role",
        default=DEFAULT_MEMBER_ROLE_NAME,
        metavar="NAME",
        help="the hub's member role, whose copies keep the original's tags; '' for none "
        f"(default {DEFAULT_MEMBER_ROLE_NAME})",
    )
    command.set_defaults(run=run_guardrail)


def run_guardrail(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    try:
        policy = guardrail.build_guardrail(
            tag_prefix=args.tag_prefix,
            break_glass=args.break_glass,
            approvers=args.approver,
            remediation_roles=[guardrail.member_role_pattern(args.member_role)] if args.member_role else [],
        )
    except guardrail.GuardrailError as error:
        raise UsageError(str(error)) from None
    stdout.write(guardrail.render(policy) + "\n")
    return EXIT_OK


ENV_SWEEP_RATES = "SWEEP_RATES"
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def _rate_text(operation: str) -> str:
    rate = sweep.DEFAULT_RATES[operation]
    return f"{rate.per_second:g}/{rate.burst}"


def run_scan(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    try:
        config = Config.from_env(os.environ)
        rates = sweep.parse_rates([os.environ.get(ENV_SWEEP_RATES, ""), *args.rate])
    except (ConfigError, sweep.SweepError) as error:
        raise UsageError(str(error)) from None
    if args.rollout_managed and not args.rollout:
        raise UsageError("--rollout-managed needs --rollout")
    flags = (("--rollout", args.rollout), ("--retire", args.retire), ("--daemon-rollout", args.daemon_rollout))
    changes = [flag for flag, on in flags if on]
    if changes and not args.remediate:
        # They change services and revisions: never implied by a read-only scan.
        raise UsageError(f"{' and '.join(changes)} need --remediate (without it the scan changes nothing)")
    # The flags decide for the scan (ROLLOUT/RETIRE in the environment are the function's settings). The caller's own
    # principal is trusted as a registrant of copies: what it registers with --remediate is its own.
    caller = _caller()
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
    if args.role_name and not args.accounts:
        raise UsageError("--role-name needs --accounts")
    if args.accounts and (args.inventory != sweep.DESCRIBE or args.config_aggregator):
        raise UsageError("--inventory and --config-aggregator judge the caller's own account: not with --accounts")
    if args.remediate and not config.idempotency_table and not args.quiet:
        print(
            "note: no IDEMPOTENCY_TABLE: revisions registered in the last 30 minutes are left to the function; "
            "set it to the stack's table to share idempotency with it",
            file=stderr,
        )
    regions = _regions(args.region or [])
    # Idempotency warns that it has no Lambda context to take a timeout from; a terminal has none.
    warnings.filterwarnings("ignore", message="Couldn't determine the remaining time left")
    bar = ProgressBar(stderr) if not args.quiet and isatty(stderr) else None
    try:
        if args.accounts:  # member accounts, through their member role (cli_accounts.py)
            report = cli_accounts.sweep_members(args, config, rates, regions, bar)
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
                **inventory,
            )
    except sweep.SweepError as error:
        raise UsageError(str(error)) from None
    finally:
        if bar is not None:
            bar.close()
    write_findings(report, args.output, stdout)
    print(report.summary(), file=stderr)
    if args.security_hub and (failed := cli_securityhub.publish(report, caller[0], stderr)) is not None:
        return failed
    return EXIT_FINDINGS if report.open else EXIT_OK


def _caller() -> tuple[str, ...]:
    """sts:GetCallerIdentity: the principal this scan runs as (nothing when it cannot be read)."""
    try:
        return (str(boto3.session.Session().client("sts").get_caller_identity()["Arn"]),)
    except (ClientError, BotoCoreError, KeyError):
        return ()


def _regions(requested: Sequence[str]) -> list[str | None]:
    names = [name.strip() for item in requested for name in item.split(",") if name.strip()]
    # AWS_REGION first, as the AWS CLI v2 and the Lambda runtime do (botocore itself reads AWS_DEFAULT_REGION
    # and the profile's region).
    configured = os.environ.get("AWS_REGION", "").strip() or boto3.session.Session().region_name
    if not names:
        if not configured:
            raise UsageError("no Region: set AWS_REGION (or a profile's region) or pass --region")
        return [configured]
    if "all" in names:
        try:
            return list(sweep.enabled_regions(configured))
        except (ClientError, BotoCoreError) as error:
            raise UsageError(f"--region all: cannot list the enabled Regions ({error})") from None
    bad = [name for name in names if not _REGION_RE.match(name)]
    if bad:
        raise UsageError(f"--region: not a Region name: {', '.join(bad)}")
    return list(dict.fromkeys(names))


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        code: int = args.run(args, stdout, stderr)
    except UsageError as error:
        print(f"error: {error}", file=stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. piped into `head`: the reader left, not an error of ours
        return EXIT_OK
    return code


if __name__ == "__main__":
    sys.exit(main())
