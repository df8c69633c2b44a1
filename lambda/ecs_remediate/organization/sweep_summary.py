"""The organization sweep's last step: every item's rows into one report (JSON and CSV), and one notice per run.

The items file is the authority on what the run had to sweep: each of its items is read back from its own key
(`runs/<run>/items/<account>-<region>.json`, checked to name that account and Region). An item with no result (its
task and its Catch both failed, or the object is unreadable or names another place) is an ERROR row: the report
never has fewer places than the run swept, and a failure is never a PASS.

The notice counts PASS / FAIL / EXEMPT / ERROR per account and links the report (its s3:// URI and the S3 console);
it carries account ids, counts and the run's name only: no task definition content, no environment value. It also
says what the members' forwarding dead-letter queues held (events a member could not deliver to the hub's bus), how
many of them this sweep re-judged and removed, and where a queue is missing or unreadable
(organization/forwarding_queue.py).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..adapters.aws import BotoCoreError, ClientError, error_code, safe_error
from ..core.message import Message
from ..core.policy import ERROR, EXEMPT, FAIL, PASS
from ..reports.csv_rows import write_rows
from ..sweep.report import STATUSES, VERDICT_COLUMNS, too_broad_text
from .forwarding_queue import MISSING, OK, UNREADABLE
from .sweep_item import counts_of
from .sweep_items import BadItem, Item, check_run, items_key, notice_key, parse_item, report_keys

CSV_COLUMNS = ("account", "region", *VERDICT_COLUMNS)
READERS = 16  # GetObject calls in flight: 17,000 items read in about a minute
NOTICE_ACCOUNT_LINES = 200  # the e-mail lists this many accounts (those with FAIL or ERROR first); the report has all
NOTICE_QUEUE_LINES = 50  # the e-mail lists this many account-Regions whose forwarding queue needs a look


def read_items(s3: Any, bucket: str, run: str) -> list[Item]:
    body = s3.get_object(Bucket=bucket, Key=items_key(run))["Body"].read()
    listed = json.loads(body)
    if not isinstance(listed, list) or not listed:
        raise BadItem(f"{items_key(run)} lists no item")
    return [parse_item({**entry, "run": run}) for entry in listed]


def read_rows(s3: Any, bucket: str, item: Item) -> list[dict[str, Any]]:
    """The item's rows, or its ERROR row when there is no usable result."""
    return read_result(s3, bucket, item)[0]


def read_result(s3: Any, bucket: str, item: Item) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(the item's rows or its ERROR row, the state of the member's forwarding queue there or None)."""
    try:
        body = json.loads(s3.get_object(Bucket=bucket, Key=item.key)["Body"].read())
        if not isinstance(body, dict) or (body.get("account"), body.get("region")) != (item.account, item.region):
            raise BadItem("the result names another account or Region")
        rows = body.get("rows")
        if not isinstance(rows, list) or not all(
            isinstance(r, dict)
            and (r.get("account"), r.get("region")) == (item.account, item.region)
            and r.get("status") in STATUSES
            for r in rows
        ):
            raise BadItem("the result's rows are not this item's")
        return rows, _forwarding(body.get("forwarding"))
    except (ClientError, BotoCoreError, ValueError) as error:
        reason = safe_error(error)
        text = (
            f"not swept: no result was recorded for this account and Region ({reason}); the item's task failed "
            "and so did its error path: see the execution's map run, then sweep again"
        )
        return [
            {
                "account": item.account,
                "region": item.region,
                "taskDefinitionArn": f"arn:aws:ecs:{item.region}:{item.account}:task-definition/*",
                "status": ERROR,
                "privilegedContainers": [],
                "action": "none",
                "newTaskDefinitionArn": None,
                "error": text[:1000],
            }
        ], None


def _forwarding(value: Any) -> dict[str, Any] | None:
    """The item's forwarding-queue state as the item function wrote it, counts and known words only."""
    if not isinstance(value, dict) or value.get("status") not in (OK, MISSING, UNREADABLE):
        return None
    state: dict[str, Any] = {"status": value["status"]}
    for key in ("queued", "drained", "kept"):
        count = value.get(key)
        state[key] = count if isinstance(count, int) and count >= 0 else 0
    reasons = value.get("reasons")
    if isinstance(reasons, dict):
        state["reasons"] = {str(k)[:40]: v for k, v in list(reasons.items())[:10] if isinstance(v, int)}
    return state


def forwarding_summary(places: list[Item], states: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The run's forwarding queues: totals, and the account-Regions with queued events or a queue not read."""
    noted = [
        {"account": item.account, "region": item.region, **state}
        for item, state in zip(places, states, strict=True)
        if state is not None and (state["status"] != OK or state["queued"])
    ]
    read = [state for state in states if state is not None]
    return {
        "queued": sum(state["queued"] for state in read),
        "drained": sum(state["drained"] for state in read),
        "unread": sum(1 for state in read if state["status"] != OK),
        "places": sorted(noted, key=lambda p: (-p["queued"], p["account"], p["region"])),
    }


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    write_rows(out, CSV_COLUMNS, rows)  # lists joined by ";", every cell safe from spreadsheet formulas
    return out.getvalue()


def summarize(
    s3: Any,
    bucket: str,
    run: str,
    *,
    publish: Callable[[Message], Any] | None,
    region: str,
    mode: str,
    scope: str,
    partition: str = "aws",
    too_broad: Sequence[str] = (),
) -> dict[str, Any]:
    """Read every item's rows, write runs/<run>/report.json and report.csv, and publish one notice (unless this
    run's notice was sent already: a retried summary does not send a second). Returns the totals and the keys."""
    check_run(run)
    places = read_items(s3, bucket, run)
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        results = list(pool.map(lambda item: read_result(s3, bucket, item), places))
    per_item = [item_rows for item_rows, _ in results]
    forwarding = forwarding_summary(places, [state for _, state in results])
    rows = [entry for item_rows in per_item for entry in item_rows]
    totals = counts_of(rows)
    by_account: dict[str, dict[str, int]] = {}
    for entry in rows:
        counts = by_account.setdefault(entry["account"], dict.fromkeys(STATUSES, 0))
        counts[entry["status"]] += 1
    remediated = sum(1 for entry in rows if entry["status"] == FAIL and str(entry["action"]).startswith("remediated"))
    json_key, csv_key = report_keys(run)
    accounts = sorted({item.account for item in places})
    regions = list(dict.fromkeys(item.region for item in places))
    report = {
        "run": run,
        "mode": mode,
        "scope": scope,
        "accounts": accounts,
        "regions": regions,
        "items": len(places),
        "counts": totals,
        "remediated": remediated,
        "byAccount": by_account,
        # Every item of the run, swept or not, with its counts: an account-Region with no revision is here too.
        "places": [
            {
                "account": item.account,
                "region": item.region,
                "rows": len(item_rows),
                "counts": counts_of(item_rows),
                **({"forwarding": state} if state is not None else {}),
            }
            for item, (item_rows, state) in zip(places, results, strict=True)
        ],
        # What the members' forwarding rules could not deliver to the hub: queued, re-judged and removed.
        "forwarding": forwarding,
        "rows": rows,
    }
    s3.put_object(Bucket=bucket, Key=json_key, Body=json.dumps(report).encode(), ContentType="application/json")
    s3.put_object(Bucket=bucket, Key=csv_key, Body=to_csv(rows).encode(), ContentType="text/csv")
    links = report_links(bucket, json_key, csv_key, region, partition)
    notified = False
    if publish is not None and not _notice_sent(s3, bucket, run):
        message = build_summary(
            run,
            totals,
            by_account,
            remediated,
            len(places),
            links,
            mode=mode,
            scope=scope,
            too_broad=too_broad,
            forwarding=forwarding,
        )
        publish(message)
        s3.put_object(Bucket=bucket, Key=notice_key(run), Body=json.dumps({"run": run}).encode())
        notified = True
    return {
        "run": run,
        "items": len(places),
        "accounts": len(accounts),
        "counts": totals,
        "remediated": remediated,
        "forwarding": {k: forwarding[k] for k in ("queued", "drained", "unread")},
        "report": links,
        "notified": notified,
    }


def report_links(bucket: str, json_key: str, csv_key: str, region: str, partition: str = "aws") -> dict[str, str]:
    console = "console.amazonaws.cn" if partition == "aws-cn" else "console.aws.amazon.com"
    prefix = json_key.rsplit("/", 1)[0] + "/"
    return {
        "json": f"s3://{bucket}/{json_key}",
        "csv": f"s3://{bucket}/{csv_key}",
        "console": f"https://{region}.{console}/s3/buckets/{bucket}?region={region}&prefix={prefix}",
    }


def build_summary(  # noqa: PLR0917 - the report's parts, each said once
    run: str,
    totals: dict[str, int],
    by_account: dict[str, dict[str, int]],
    remediated: int,
    items: int,
    links: dict[str, str],
    *,
    mode: str,
    scope: str,
    too_broad: Sequence[str] = (),
    forwarding: dict[str, Any] | None = None,
) -> Message:
    """One notice for the run: totals, per-account counts (those with FAIL or ERROR first), the members' forwarding
    queues, the report's links."""
    headline = ", ".join(f"{totals.get(status, 0)} {status}" for status in (FAIL, ERROR, EXEMPT, PASS))
    subject = f"[ECS.4] organization sweep: {headline} in {len(by_account)} accounts"  # Message fits it to SNS
    ordered = sorted(by_account.items(), key=lambda kv: (-(kv[1][FAIL] + kv[1][ERROR]), kv[0]))
    lines = [
        f"  {account}  " + "  ".join(f"{status} {counts[status]}" for status in STATUSES)
        for account, counts in ordered[:NOTICE_ACCOUNT_LINES]
    ]
    if len(ordered) > NOTICE_ACCOUNT_LINES:
        lines.append(f"  ... {len(ordered) - NOTICE_ACCOUNT_LINES} more accounts: see the report")
    text = "\n".join(
        [
            f"ecs-remediate organization sweep {run} ({scope} scope, {mode} mode): {items} account-Regions swept.",
            f"Totals: {headline}; {remediated} privileged revisions remediated.",
            "ERROR means not judged (a member role missing, a listing or describe that failed): never compliant.",
            "",
            "Per account:",
            *lines,
            *(["", too_broad_text(too_broad)] if too_broad else []),
            "",
            *forwarding_lines(forwarding),
            f"Report (JSON): {links['json']}",
            f"Report (CSV): {links['csv']}",
            f"In the S3 console: {links['console']}",
        ]
    )
    payload = {
        "kind": "org-sweep-summary",
        "run": run,
        "mode": mode,
        "scope": scope,
        "items": items,
        "counts": totals,
        "remediated": remediated,
        "accounts": len(by_account),
        # The accounts the e-mail lists, not all of them: the topic's message (every protocol's copy) stays far
        # below SNS's 256 KiB for 1,000 accounts and more; the report has every account.
        "byAccount": dict(ordered[:NOTICE_ACCOUNT_LINES]),
        "report": links,
        "tooBroadExemptions": list(too_broad),
    }
    if forwarding is not None:
        payload["forwarding"] = {**forwarding, "places": forwarding["places"][:NOTICE_QUEUE_LINES]}
    needs_a_look = forwarding is not None and (forwarding["queued"] > forwarding["drained"] or forwarding["unread"])
    outcome = "open" if totals[FAIL] or totals[ERROR] or needs_a_look else "clean"
    attributes = {"kind": "org-sweep-summary", "outcome": outcome}
    return Message(subject=subject, text=text, payload=payload, attributes=attributes)


def forwarding_lines(forwarding: dict[str, Any] | None) -> list[str]:
    """The notice's lines on the members' forwarding dead-letter queues (none when every queue was read and empty)."""
    if forwarding is None or not forwarding["places"]:
        return []
    lines = [
        f"Forwarding dead-letter queues (events a member could not deliver to the hub): {forwarding['queued']} "
        f"queued; {forwarding['drained']} re-judged by this sweep and removed; {forwarding['unread']} queues "
        "missing or unreadable (a member stack older than the hub, or a queue changed by the member).",
    ]
    for place in forwarding["places"][:NOTICE_QUEUE_LINES]:
        where = f"  {place['account']}  {place['region']}  "
        if place["status"] != OK:
            lines.append(where + f"queue {place['status']}")
            continue
        reasons = ", ".join(f"{code} {count}" for code, count in place.get("reasons", {}).items())
        left = place["queued"] - place["drained"]
        lines.append(
            where
            + f"{place['queued']} queued, {place['drained']} removed, {left} left"
            + (f" ({reasons})" if reasons else "")
        )
    if len(forwarding["places"]) > NOTICE_QUEUE_LINES:
        lines.append(f"  ... {len(forwarding['places']) - NOTICE_QUEUE_LINES} more: see the report")
    return [*lines, ""]


def _notice_sent(s3: Any, bucket: str, run: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=notice_key(run))
    except ClientError as error:
        if error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


__all__ = [
    "CSV_COLUMNS",
    "build_summary",
    "forwarding_lines",
    "forwarding_summary",
    "read_items",
    "read_result",
    "read_rows",
    "report_links",
    "summarize",
    "to_csv",
]
