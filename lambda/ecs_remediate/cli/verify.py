"""`ecs-remediate verify`: after `cdk deploy`, prove the deployment end to end with a privileged canary revision.

In each Region (`--region`, repeatable) the stack is read from its CloudFormation outputs and its rule from
EventBridge (cli/verify_stack.py); a disabled rule, or one without a target, fails there, naming it, with nothing
registered. Otherwise one canary per account and Region (cli/verify_canary.py), all at once, each waiting at most
`--timeout` seconds; with `--accounts` the stack is the organization hub and each member is reached through its member
role, as `scan --accounts` does. Exit codes (cli_common): 0 every target passed, 1 one did not (FAIL or ERROR), 2
usage, 3 nothing could be verified (credentials, or no usable stack anywhere), 130 on Ctrl-C (143 SIGTERM), after the
clean-up: a second Ctrl-C does not cut it short (it is bounded by the SDK's timeouts).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TextIO

from ..adapters import aws
from ..adapters.ledger import DynamoLedger
from ..core.config import ENV_MEMBER_ROLE_NAME
from ..organization.member_accounts import (
    DEFAULT_MEMBER_ROLE_NAME,
    MemberAccessError,
    MemberAccounts,
    regional_sts_client,
)
from . import aws_session as cli_aws
from . import scan as cli_scan
from .accounts import resolve_accounts
from .common import EXIT_FINDINGS, EXIT_OK, Unjudged, UsageError, printable
from .interrupt import Stopping
from .verify_canary import Canary, new_run_id
from .verify_rows import ERROR, FAIL, INTERRUPTED, NoticeRecords, Row
from .verify_stack import (
    DEFAULT_STACK_NAME,
    Delivery,
    DeployedStack,
    StackUnusable,
    queue_depth,
    read_delivery,
    read_stack,
)

DEFAULT_TIMEOUT = 900  # seconds: CloudTrail delivers to EventBridge "usually within minutes"; 15 covers its tail
MAX_TIMEOUT = 3600
MAX_PARALLEL = 16
OUTPUTS = ("table", "json")


def add_parser(commands: Any) -> None:
    verify = commands.add_parser(
        "verify",
        help="prove a deployed stack works: a privileged canary revision, the stack's copy and notice, cleaned up",
        description="Registers a privileged canary task definition (family ecs-remediate-verify-canary: busybox, "
        "EC2 only, no role) in each Region (with --accounts, in each member account and Region through its member "
        "role), waits for the stack's fixed copy and its notice, checks the copy (not privileged, the exact fixed "
        "copy, proven the stack's through its ledger), removes every revision it registered and the stack's copy of "
        "it, and prints one row per account and Region. In report mode it checks the notice only. Exit 0 when every "
        "target passed, 1 when one did not, 2 on usage errors, 3 when nothing could be verified, 130 on Ctrl-C "
        "(after the clean-up). docs/deploy.md#verify-the-deployment",
    )
    cli_aws.add_profile_argument(verify)
    verify.add_argument(
        "--region",
        action="append",
        metavar="R",
        help="Region to verify (repeatable, or comma-separated); default: the configured Region",
    )
    verify.add_argument(
        "--stack-name", default=DEFAULT_STACK_NAME, metavar="NAME", help=f"default {DEFAULT_STACK_NAME}"
    )
    verify.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the stack's copy and notice in each Region (default {DEFAULT_TIMEOUT}: CloudTrail "
        f"takes minutes), at most {MAX_TIMEOUT}",
    )
    verify.add_argument(
        "--accounts",
        action="append",
        metavar="ID[,ID...]|org",
        help="the stack is the organization hub: verify these member accounts (or 'org': every ACTIVE account the "
        "caller can list) through their member role",
    )
    verify.add_argument(
        "--role-name",
        metavar="NAME",
        help="with --accounts: the role to assume in each member account to register, deregister and delete the "
        "canary (default: the hub's VerifyRoleName output, the role its member StackSet creates for verify)",
    )
    verify.add_argument("--output", "-o", choices=OUTPUTS, default="table", help="stdout format: table or json")
    verify.set_defaults(run=run_verify)


@dataclass
class Plan:
    """What verify will do: the stack (one per Region, or the hub), its delivery, and a runner per target."""

    stacks: list[DeployedStack]
    deliveries: list[Delivery]
    rows: list[Row]  # targets settled before any canary (no stack, a disabled rule, an unreachable member)
    canaries: list[Callable[[], Row]]


def run_verify(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if not 1 <= args.timeout <= MAX_TIMEOUT:
        raise UsageError(f"--timeout: expected 1 to {MAX_TIMEOUT} seconds, got {args.timeout:g}")
    if args.role_name and not args.accounts:
        raise UsageError("--role-name needs --accounts")
    cli_aws.use_profile(args.profile)
    configured = os.environ.get("AWS_REGION", "").strip() or cli_aws.session().region_name
    names = cli_scan.region_names(args.region or [])
    if "all" in names:
        raise UsageError("--region all: name the Regions where the stack is deployed")
    regions = names or ([configured] if configured else [])
    home = configured or (regions[0] if regions else None)
    if not home:
        raise UsageError("no Region: set AWS_REGION (or a profile's region), or pass --region or --profile")
    arn = cli_aws.caller_arn(home)  # credentials, profile and endpoint settled here (exit 3)
    parts = (arn or "").split(":")
    caller_account = parts[4] if len(parts) > 5 and parts[4].isdigit() else ""

    def again(name: str) -> None:
        print(f"{name} again: removing the canaries first (bounded by the SDK's timeouts)", file=stderr, flush=True)

    with Stopping(on_again=again) as stopping:
        stop = stopping.event
        run_id = new_run_id()
        if args.accounts:
            plan = _organization_plan(
                args, home, regions=regions, caller_account=caller_account, stop=stop, run_id=run_id
            )
        else:
            plan = _account_plan(args, regions, caller_account, stop, run_id)
        if not plan.stacks:
            reasons = "; ".join(row.reason for row in plan.rows)
            raise Unjudged(f"nothing could be verified: {reasons}")
        for stack, delivery in zip(plan.stacks, plan.deliveries, strict=True):
            print(
                f"verify: stack {stack.name} in {stack.region} ({stack.mode} mode), {delivery.text()}; "
                f"{len(plan.canaries)} canary(ies), waiting up to {args.timeout:g} s",
                file=stderr,
                flush=True,
            )
        rows = plan.rows + _run_all(plan.canaries)
    _write(rows, args.output, stdout)
    for row in rows:
        for left in row.left:
            arn_left = left.split(" ", 1)[0]
            print(
                f"left behind in {row.account} {row.region}: {left}; remove it with: aws ecs "
                f"deregister-task-definition --task-definition {arn_left} && aws ecs delete-task-definitions "
                f"--task-definitions {arn_left}",
                file=stderr,
            )
    if stopping.event.is_set():
        removed = "nothing left registered" if not any(row.left for row in rows) else "see the lines above"
        print(f"interrupted ({stopping.name}): stopped waiting, the canaries were removed; {removed}", file=stderr)
        return stopping.exit_code
    passed = sum(1 for row in rows if row.passed)
    print(f"verify: {passed} of {len(rows)} account-Region(s) passed", file=stderr)
    return EXIT_OK if passed == len(rows) else EXIT_FINDINGS


def _account_plan(
    args: argparse.Namespace, regions: Sequence[str], account: str, stop: threading.Event, run_id: str
) -> Plan:
    plan = Plan([], [], [], [])
    session = cli_aws.session()
    for region in regions:
        try:
            stack = read_stack(_client(session, "cloudformation", region), args.stack_name, account)
            if stack.is_hub:
                raise UsageError(
                    f"the stack {stack.name} in {region} is the organization hub: pass --accounts ID,...|org"
                )
            delivery = read_delivery(_client(session, "events", region), stack)
        except StackUnusable as error:
            plan.rows.append(Row(account, region, ERROR, reason=str(error)))
            continue
        except aws.ClientError as error:
            plan.rows.append(Row(account, region, ERROR, reason=_unreadable(error)))
            continue
        plan.stacks.append(stack)
        plan.deliveries.append(delivery)
        if (problem := delivery.problem()) is not None:
            plan.rows.append(Row(account, region, FAIL, reason=problem))
            continue
        dynamodb = _client(session, "dynamodb", region)
        plan.canaries.append(
            Canary(
                _client(session, "ecs", region),
                account,
                region,
                stack,
                DynamoLedger(dynamodb, stack.idempotency_table),
                NoticeRecords(dynamodb, stack.idempotency_table),
                stop,
                args.timeout,
                run_id,
                hints=_hints(session, stack, delivery),
            ).run
        )
    return plan


def _organization_plan(
    args: argparse.Namespace,
    home: str,
    *,
    regions: Sequence[str],
    caller_account: str,
    stop: threading.Event,
    run_id: str,
) -> Plan:
    session = cli_aws.session()
    try:
        stack = read_stack(_client(session, "cloudformation", home), args.stack_name, caller_account)
        delivery = read_delivery(_client(session, "events", home), stack)
    except StackUnusable as error:
        return Plan([], [], [Row(caller_account, home, ERROR, reason=str(error))], [])
    except aws.ClientError as error:
        return Plan([], [], [Row(caller_account, home, ERROR, reason=_unreadable(error))], [])
    if not stack.is_hub:
        raise UsageError(f"--accounts: the stack {stack.name} in {home} is not the organization hub")
    role_name = args.role_name or stack.verify_role_name
    if not role_name:
        raise UsageError(
            f"--accounts: the hub {stack.name} has no VerifyRoleName output (deployed before verify existed): deploy "
            "it again, or pass --role-name with a role in each member that may register, deregister and delete the "
            "canary"
        )
    try:
        members = MemberAccounts(role_name, sts=regional_sts_client(home), session_name="ecs-remediate-verify")
    except ValueError as error:
        raise UsageError(f"--role-name: {error}") from None
    # The stack's own registrant in a member is its member role: a copy it registered there is the stack's.
    member_role = stack.member_role_name or os.environ.get(ENV_MEMBER_ROLE_NAME, "").strip() or DEFAULT_MEMBER_ROLE_NAME
    accounts = resolve_accounts(args.accounts, lambda: _client(session, "organizations", home))
    plan = Plan([stack], [delivery], [], [])
    problem = delivery.problem()
    dynamodb = _client(session, "dynamodb", home)
    ledger, notices = DynamoLedger(dynamodb, stack.idempotency_table), NoticeRecords(dynamodb, stack.idempotency_table)
    for account in accounts:
        for region in regions:
            if problem is not None:
                plan.rows.append(Row(account, region, FAIL, reason=problem))
                continue
            try:
                ecs = members.new_client("ecs", account, region)
            except MemberAccessError as error:
                plan.rows.append(
                    Row(
                        account,
                        region,
                        ERROR,
                        reason=f"{error} (the member stack creates the role: docs/organization.md)",
                    )
                )
                continue
            plan.canaries.append(
                Canary(
                    ecs,
                    account,
                    region,
                    stack,
                    ledger,
                    notices,
                    stop,
                    args.timeout,
                    run_id,
                    trusted=(f"arn:{members.partition}:iam::{account}:role/{member_role}",),
                    hints=_hints(session, stack, delivery),
                ).run
            )
    return plan


def _unreadable(error: aws.ClientError) -> str:
    """Why the stack or its rule could not be read (Unjudged, exit 3, when AWS could not be asked at all)."""
    if (reason := cli_aws.unjudged(error)) is not None:
        raise reason from None
    return f"reading the stack: {aws.safe_error(error)}"


def _run_all(canaries: Sequence[Callable[[], Row]]) -> list[Row]:
    if not canaries:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(canaries)), thread_name_prefix="canary") as pool:
        futures = [pool.submit(canary) for canary in canaries]
        return [future.result() for future in futures]


def _hints(session: Any, stack: DeployedStack, delivery: Delivery) -> Callable[[], str]:
    """What a failed wait says besides the time: the delivery, and what the dead-letter queue holds."""

    def hints() -> str:
        parts = [delivery.text()]
        if stack.dead_letter_queue_url:
            depth = queue_depth(_client(session, "sqs", stack.region), stack.dead_letter_queue_url)
            if depth:
                parts.append(f"the dead-letter queue holds {depth} event(s)")
        parts.append("is a trail logging management events in this account and Region? (docs/deploy.md)")
        return "; ".join(parts)

    return hints


_clients_lock = threading.Lock()


def _client(session: Any, service: str, region: str) -> Any:
    with _clients_lock:  # sessions are not thread-safe
        return session.client(service, region_name=region, config=aws.BOTO_CONFIG)


HEADERS = ("ACCOUNT", "REGION", "LATENCY", "NOTICE", "OUTCOME", "REASON")


def _write(rows: Sequence[Row], output: str, stdout: TextIO) -> None:
    if output == "json":
        json.dump([row.to_json() for row in rows], stdout, indent=2)
        stdout.write("\n")
        return
    cells = [HEADERS] + [
        (row.account, row.region, row.latency_text(), row.notice, row.outcome, printable(row.reason))
        for row in sorted(rows, key=lambda r: (r.account, r.region))
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS) - 1)]
    for line in cells:
        stdout.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[-1])
        stdout.write("\n")


__all__ = ["DEFAULT_TIMEOUT", "INTERRUPTED", "add_parser", "run_verify"]
