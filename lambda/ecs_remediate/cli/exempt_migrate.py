"""`ecs-remediate exempt migrate`: replace the image-digest items of earlier versions (CLI only).

A digest item exempted every privileged revision whose privileged containers all ran its digests, in any family
of any account, whatever they ran. It exempts nothing now. `migrate` reads the caller's account (or the
`--describe-profile` account) in the given Regions with a read-only sweep, and for each ACTIVE privileged revision
(task definition or daemon task definition) that the digest items covered, approves exactly what it holds for its
own family, with the digest item's reason and expiry and the caller as approver (one approval per distinct
content). The digest items stay until an approver removes them, because in an organization other accounts may
still need migrating; every sweep reports them until then.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TextIO

from ..core.config import Config
from ..core.exemptions.records import Approval, ExemptionRecord, Fingerprint, Scope, short_digest
from ..core.exemptions.scope import fingerprint
from ..sweep.rates import ecs_client_config
from ..sweep.run import ACTIVE, sweep
from . import aws_session as cli_aws
from .common import EXIT_OK, UsageError
from .exempt_registry import RegistryWriter


@dataclass(frozen=True)
class Planned:
    scope: Scope
    source: str  # the newest revision holding this content
    seen: Fingerprint
    legacy: tuple[ExemptionRecord, ...]  # the digest items that covered it


def migrate(args: argparse.Namespace, config: Config, writer: RegistryWriter, stdout: TextIO, stderr: TextIO) -> int:
    legacy = {
        r.target: r for r in writer.registry.snapshot().records if isinstance(r, ExemptionRecord) and r.legacy_digest
    }
    if not legacy:
        print("no image-digest item in the registry: nothing to migrate", file=stderr)
        return EXIT_OK
    planned, skipped = plan(args, config, legacy, writer.today)
    approver = "" if args.dry_run else cli_aws.approver_arn()
    for item in planned:
        until = min(r.until for r in item.legacy)
        digests = ", ".join(short_digest(r.target) for r in item.legacy)
        reason = f"{item.legacy[0].reason} (migrated from {digests}, approved by {item.legacy[0].approver})"[:1000]
        verb = "would approve" if args.dry_run else "approved"
        if not args.dry_run:
            created = datetime.now(UTC).isoformat(timespec="seconds")
            approval = Approval(reason, approver, until, created, item.source, (item.scope.family,), item.seen)
            writer.add_approval(item.scope, approval)
        print(f"{verb} {item.source} for {item.scope.family_text} until {until} (from {digests})", file=stdout)
    for line in skipped:
        print(line, file=stderr)
    removes = [f"  ecs-remediate exempt remove {digest}" for digest in sorted(legacy)]
    print(
        "image-digest items left in the registry (they exempt nothing; remove each once every account that relied "
        "on it is migrated):\n" + "\n".join(removes),
        file=stderr,
    )
    return EXIT_OK


def plan(
    args: argparse.Namespace, config: Config, legacy: dict[str, ExemptionRecord], today: date
) -> tuple[list[Planned], list[str]]:
    """What the digest items covered among the ACTIVE privileged revisions of the account, newest first per
    content; and the revisions left out, with why."""
    session = cli_aws.describe_session(args.describe_profile)
    regions = list(dict.fromkeys(args.region)) or [session.region_name]
    if not all(regions):
        raise UsageError("no Region: pass --region (or set AWS_REGION)")

    def client(region: str | None) -> object:
        return session.client("ecs", region_name=region, config=ecs_client_config())

    report = sweep(regions, replace(config, exemptions_table=None), scope=ACTIVE, make_client=client)
    errors = [f for f in report.findings if f.status == "ERROR"]
    if errors:
        raise UsageError(f"{len(errors)} revision(s) could not be read (first: {errors[0].error}); nothing was written")
    planned: dict[tuple[Scope, str], Planned] = {}
    skipped: list[str] = []
    for finding in report.findings:
        scope = Scope.of_revision(finding.task_definition_arn)
        if finding.described is None or scope is None or not finding.privileged_containers:
            continue
        seen = fingerprint(finding.described.task_definition)
        covering = [legacy.get(p.digest) for p in seen.containers]
        if not seen.containers or any(r is None for r in covering):
            continue  # the digest items did not cover it
        records = tuple(dict.fromkeys(r for r in covering if r is not None))
        why = _unusable(records, config.exemption_max_days, today)
        if why:
            skipped.append(f"not migrated: {finding.task_definition_arn}: {why}")
            continue
        key = (scope, seen.id)
        known = planned.get(key)
        if known is None or finding.revision > int(known.source.rsplit(":", 1)[1]):
            planned[key] = Planned(scope, finding.task_definition_arn, seen, records)
    return sorted(planned.values(), key=lambda p: (p.scope, p.source)), skipped


def _unusable(records: tuple[ExemptionRecord, ...], max_days: int, today: date) -> str:
    """Why the digest items cannot be carried over ("" when they can): they would not have held either."""
    for record in records:
        if not record.reason.strip() or not record.approver.strip():
            return f"{short_digest(record.target)} has no reason or no approver"
        try:
            until = date.fromisoformat(record.until)
        except ValueError:
            return f"{short_digest(record.target)} has no valid expiry date"
        if until < today or until > today + timedelta(days=max_days):
            return f"{short_digest(record.target)} expires {record.until}, outside today to {max_days} days ahead"
    return ""
