"""`ecs-remediate`: the same logic as the function, from a terminal.

ecs-remediate fix [--check] [--write] FILE|DIR|-
                                      offline: write a non-privileged copy of a (daemon) task definition, fix
                                      a CloudFormation template or Terraform files in place, check a plan
ecs-remediate exempt add|list|remove  approvers: the exemption registry (a revision ARN or an image digest)
ecs-remediate scan [--profile NAME] [--region R ...] [--scope latest|active] [--kinds KIND[,KIND]]
                   [--remediate [--rollout [--rollout-managed]] [--retire] [--daemon-rollout]]
                   [-o table|json|csv|ocsf|asff|html] [--security-hub] [--accounts ID[,ID...]|org [--role-name NAME]]
                                      sweep the (daemon) task definitions that exist; exit 1 while findings remain
ecs-remediate verify [--profile NAME] [--region R ...] [--stack-name NAME] [--timeout SECONDS] [-o table|json]
                     [--accounts ID[,ID...]|org [--role-name NAME]]
                                      prove a deployed stack works: a privileged canary, the stack's copy and notice
ecs-remediate guardrail [--tag-prefix P] [--break-glass ARN ...] [--approver ARN ...] [--member-role NAME]
                                      print the guardrail SCP (the hub stack's guardrail=print|attach)
ecs-remediate --version

Exit codes (cli_common, docs/cli.md#exit-codes): 0 nothing left, 1 findings, 2 usage, 3 nothing could be judged,
130 Ctrl-C; every error is one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from .. import __version__
from ..adapters.aws import BotoCoreError, ClientError, safe_error
from ..core.config import DEFAULT_TAG_PREFIX
from ..organization import guardrail
from ..organization.member_accounts import DEFAULT_MEMBER_ROLE_NAME
from . import aws_session as cli_aws
from . import exempt as cli_exempt
from . import scan as cli_scan
from . import verify as cli_verify
from .common import EXIT_INTERRUPTED, EXIT_OK, EXIT_UNJUDGED, EXIT_USAGE, Unjudged, UsageError
from .fix import run_fix
from .output import ProgressBar


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 on usage errors too; keep its message short
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ecs-remediate", description="Find and fix privileged containers in ECS task definitions.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    cli_scan.add_parser(commands)
    cli_verify.add_parser(commands)
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


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        code: int = args.run(args, stdout, stderr)
    except UsageError as error:
        print(f"error: {error}", file=stderr)
        return EXIT_USAGE
    except Unjudged as error:
        print(f"error: {error}", file=stderr)
        return EXIT_UNJUDGED
    except BotoCoreError as error:  # AWS could not be asked (a profile, credentials or endpoint), wherever it showed
        print(f"error: {cli_aws.unjudged(error)}", file=stderr)
        return EXIT_UNJUDGED
    except ClientError as error:  # an answer of AWS's no command handled: its code, never its text
        print(f"error: {safe_error(error)}", file=stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): stopped before it finished", file=stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. piped into `head`: the reader left, not an error of ours
        return EXIT_OK
    return code


__all__ = ["ProgressBar", "build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
