"""`ecs-remediate exempt add|list|remove|migrate`: what an approver runs to manage the exemption registry.

The registry's resource policy lets only approver roles write it; this command writes as the caller (its ARN, from
sts:GetCallerIdentity, is the recorded approver). `add` takes a revision ARN, describes the revision (through the
caller's credentials, or `--describe-profile` where the revision lives in another account) and records what the
approver saw: the account, the family (or the `--family` list) and the revision's fingerprint; `--revision-only`
exempts that one revision. Before writing anything it refuses a target that is not a revision ARN (image digests
alone are too broad), a revision with no privileged container, a scoped exemption of an image not pinned by
digest, an expiry in the past or beyond the configured maximum, or an empty reason.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from ..adapters.aws import BOTO_CONFIG, BotoCoreError, ClientError, error_code, safe_error
from ..adapters.exemption_registry import ExemptionRegistry
from ..core.config import ENV_EXEMPTIONS_TABLE, Config, ConfigError
from ..core.exemptions.evaluate import RegistryUnavailable
from ..core.exemptions.records import (
    DAEMON_KIND,
    DIGEST_RE,
    IMAGE_PREFIX,
    Approval,
    ExemptionRecord,
    Fingerprint,
    ImageIndex,
    RegistryItem,
    Scope,
    ScopeItem,
    short_digest,
)
from ..core.exemptions.scope import fingerprint
from . import aws_session as cli_aws
from .common import UsageError
from .exempt_registry import RegistryWriter

_FAMILY_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}\Z", re.ASCII)
_ARN_SHAPE = "arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION (or daemon-task-definition/...)"


def add_parser(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    exempt = commands.add_parser(
        "exempt",
        help="manage the exemption registry (approvers only: its resource policy refuses anyone else)",
        description="An exemption covers what the approver saw of a revision: its account, its family (or a list), "
        "each privileged container's image digest, entryPoint, command, user and working directory, and the "
        "revision's host access. The table is "
        f"${ENV_EXEMPTIONS_TABLE} or --table; the stack's ExemptionsTableName output names it.",
    )
    actions = exempt.add_subparsers(dest="action", required=True, parser_class=parser_class)
    add = actions.add_parser("add", help="exempt what a revision holds, in its family (or --family ...)")
    add.add_argument("target", help=f"a revision ARN: {_ARN_SHAPE}")
    add.add_argument("--reason", required=True, help="why the workload needs privileged mode")
    add.add_argument("--until", required=True, metavar="YYYY-MM-DD", help="last day the exemption holds (UTC)")
    add.add_argument(
        "--family",
        action="append",
        default=[],
        metavar="FAMILY",
        help="also cover this family of the same account (repeat for several); same content only",
    )
    add.add_argument(
        "--revision-only",
        action="store_true",
        help="exempt this one revision (no later revision of the family; images by tag allowed)",
    )
    remove = actions.add_parser("remove", help="revoke an exemption (the next delivery or sweep judges it FAIL)")
    remove.add_argument(
        "target",
        help="a revision ARN (its revision item and the approvals made from it), a scope:ACCOUNT:KIND/FAMILY key "
        "(every approval of that family) or a sha256:<64 hex> item of earlier versions",
    )
    listing = actions.add_parser("list", help="every exemption, as JSON")
    migrate = actions.add_parser(
        "migrate",
        help="replace image-digest items of earlier versions: approve what the revisions running them hold",
    )
    migrate.add_argument("--region", action="append", default=[], help="Region to look in (repeatable)")
    migrate.add_argument("--dry-run", action="store_true", help="print what would be approved; write nothing")
    for parser in (add, migrate):
        parser.add_argument(
            "--describe-profile",
            metavar="PROFILE",
            help="AWS profile that reads the revision (its account's credentials); default: the caller's",
        )
    for parser in (add, remove, listing, migrate):
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
    registry = ExemptionRegistry(cli_aws.session().client("dynamodb", config=BOTO_CONFIG), table)
    today = datetime.now(UTC).date()
    try:
        if args.action == "list":
            records = registry.snapshot().records
            json.dump([listed(r) for r in sorted(records, key=_key)], stdout, indent=2, default=str)
            stdout.write("\n")
        elif args.action == "remove":
            for line in _remove(RegistryWriter(registry, today), args.target.strip()):
                print(line, file=stderr)
        elif args.action == "migrate":
            from .exempt_migrate import migrate  # noqa: PLC0415 - it runs a sweep

            return migrate(args, config, RegistryWriter(registry, today), stdout, stderr)
        else:
            for line in add(args, config, RegistryWriter(registry, today)):
                print(line, file=stderr)
    except (RegistryUnavailable, ClientError, BotoCoreError) as error:
        cause = error.__cause__ if isinstance(error, RegistryUnavailable) else error
        if cause is not None and (reason := cli_aws.unjudged(cause)) is not None:
            raise reason from None
        raise UsageError(f"{table}: {safe_error(error)}") from None
    return 0


def add(args: argparse.Namespace, config: Config, writer: RegistryWriter) -> list[str]:
    """Checks everything, describes the revision, then writes (nothing is written when anything is refused)."""
    arn = args.target.strip()
    scope = Scope.of_revision(arn)
    if scope is None:
        if DIGEST_RE.match(arn):
            raise UsageError(
                f"{arn[:80]}: an image digest alone exempts that image in every family of every account, whatever it "
                f"runs; exempt a revision ARN instead ({_ARN_SHAPE})"
            )
        raise UsageError(f"{arn[:200]!r}: expected a revision ARN, {_ARN_SHAPE}")
    reason, until = checked_reason(args.reason), checked_until(args.until, config.exemption_max_days, writer.today)
    families = list(dict.fromkeys([scope.family, *(f.strip() for f in args.family)]))
    bad = [f for f in families if not _FAMILY_RE.match(f)]
    if bad:
        raise UsageError(f"--family: {bad[0][:200]!r} is not a family name (letters, digits, '-', '_'; up to 255)")
    if args.revision_only and len(families) > 1:
        raise UsageError("--family and --revision-only: a revision-only exemption covers that revision alone")
    seen = fingerprint(describe(arn, scope, args.describe_profile))
    if not seen.containers:
        raise UsageError(f"{arn}: no container is privileged; there is nothing to exempt")
    approver, created = cli_aws.approver_arn(), datetime.now(UTC).isoformat(timespec="seconds")
    if args.revision_only:
        writer.put_revision(ExemptionRecord(arn, reason, approver, until, created, seen))
        return [f"exempt until {until}: {arn} alone, as described ({_content(seen)}; approver {approver})"]
    unpinned = [p.name for p in seen.containers if not p.digest]
    if unpinned:
        raise UsageError(
            f"container {unpinned[0][:100]!r} of {arn} runs an image by tag, which can change after approval: pin it "
            "by digest (repo@sha256:...), or exempt this revision alone with --revision-only"
        )
    approval = Approval(reason, approver, until, created, arn, tuple(families), seen)
    written = writer.add_approval(scope, approval)
    where = ", ".join(s.family_text for s in written)
    return [
        f"exempt until {until}: {where} in account {scope.account}, while they hold what {arn.rsplit('/', 1)[-1]} "
        f"holds ({_content(seen)}; approval {approval.id}, approver {approver})"
    ]


def describe(arn: str, scope: Scope, profile: str | None) -> dict[str, Any]:
    """The revision as AWS reports it, through the caller's credentials (or `profile`), in the ARN's Region."""
    region = arn.split(":")[3]
    try:
        ecs = cli_aws.describe_session(profile).client("ecs", region_name=region, config=BOTO_CONFIG)
        if scope.kind == DAEMON_KIND:
            found = ecs.describe_daemon_task_definition(daemonTaskDefinition=arn)["daemonTaskDefinition"]
            described_arn = found.get("daemonTaskDefinitionArn")
        else:
            found = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            described_arn = found.get("taskDefinitionArn")
    except (ClientError, BotoCoreError) as error:
        if (unreachable := cli_aws.unjudged(error)) is not None:
            raise unreachable from None
        code = error_code(error) if isinstance(error, ClientError) else type(error).__name__
        raise UsageError(f"cannot describe {arn}: {code} (pass --describe-profile for another account)") from None
    if described_arn != arn:  # credentials of another account find a revision of the same name there
        raise UsageError(
            f"{arn}: the credentials used read {str(described_arn)[:200]} instead; pass --describe-profile with "
            f"credentials of account {scope.account}"
        )
    return dict(found)


def checked_reason(text: str) -> str:
    reason = " ".join(str(text).split())
    if not reason:
        raise UsageError("--reason: an exemption needs a reason")
    return reason[:1000]


def checked_until(text: str, max_days: int, today: date) -> str:
    try:
        until = date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--until: {text!r} is not a YYYY-MM-DD date") from None
    if until < today:
        raise UsageError(f"--until: {until.isoformat()} is in the past")
    if until > today + timedelta(days=max_days):
        raise UsageError(f"--until: at most {max_days} days from today ({today + timedelta(days=max_days)})")
    return until.isoformat()


def _remove(writer: RegistryWriter, target: str) -> list[str]:
    lines: list[str] = []
    scope = Scope.of_revision(target)
    if scope is not None:
        existing = writer.registry.get(target)
        if existing is not None:
            writer.registry.delete(target)
            lines.append(f"removed the exemption of {target} alone")
        for approval in writer.remove_approvals(scope, lambda a: a.source == target):
            families = ", ".join(approval.families)
            lines.append(f"removed approval {approval.id} (made from {target}) from families {families}")
    elif target.startswith("scope:") and Scope.parse(target) is not None:
        scope = Scope.parse(target)
        assert scope is not None
        removed = writer.remove_scope(scope)
        lines += [f"removed approval {a.id} (made from {a.source}) from {scope.family_text}" for a in removed]
    elif DIGEST_RE.match(target) or target.startswith(IMAGE_PREFIX):
        if writer.registry.get(target) is not None:
            writer.registry.delete(target)
            lines.append(f"removed {target}")
    else:
        raise UsageError(f"{target[:200]!r}: expected a revision ARN, a scope:ACCOUNT:KIND/FAMILY key or sha256:<hex>")
    return lines or [f"no exemption of {target} was found: nothing removed"]


def listed(item: RegistryItem) -> dict[str, Any]:
    """One registry item as `exempt list` shows it."""
    if isinstance(item, ScopeItem):
        return {
            "target": item.scope.key,
            "item": "scope",
            "account": item.scope.account,
            "resource": item.scope.kind,
            "family": item.scope.family,
            "approvals": [{"id": a.id, **a.to_plain()} for a in item.approvals],
            **({"unreadableApprovals": item.malformed} if item.malformed else {}),
        }
    if isinstance(item, ImageIndex):
        return {"target": IMAGE_PREFIX + item.digest, "item": "image-index", "scopes": sorted(item.scopes)}
    kind = "too broad: exempts nothing (exempt migrate)" if item.legacy_digest else "revision"
    return {**item.to_plain(), "item": kind}


def _content(seen: Fingerprint) -> str:
    images = ", ".join(f"{p.name}: {short_digest(p.digest)}" for p in seen.containers)
    access = f"{len(seen.host_access)} host access item(s)" if seen.host_access else "no host access"
    return f"privileged {images}; {access}"


def _key(item: RegistryItem) -> str:
    return str(listed(item)["target"])
