"""Lambda entry points of the organization sweep's state machine (infra/org_sweep.py): thin glue.

  item_handler      one (account, Region) swept through its member role (organization.sweep_item.sweep_item), or, with
                    {"action": "error"} from the map's Catch, that item's ERROR row
                    (organization.sweep_item.record_error)
  control_handler   {"action": "list"}: the items file from Organizations (org_sweep_items); {"action": "summary"}:
                    the report and the run's one notice (org_sweep_summary)

Configuration from the environment the hub stack sets: the function's own (MODE, TOPIC_ARN, IDEMPOTENCY_TABLE,
EXEMPTIONS_TABLE, MEMBER_ROLE_NAME, ...), plus REPORT_BUCKET, SWEEP_SCOPE, SWEEP_RATES, FORWARDING_QUEUE_NAME (the
members' forwarding dead-letter queue, read and drained by each item) and, for the listing, ORG_SWEEP_OUS,
ORG_SWEEP_REGIONS, ORG_SWEEP_EXCLUDED (comma-separated).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from ..adapters import aws
from ..adapters.aws_errors import withhold_aws_text
from ..adapters.ledger import DynamoLedger
from ..core.config import Config, ConfigError
from ..organization.member_accounts import MemberAccounts
from ..organization.sweep_item import record_error, sweep_item
from ..organization.sweep_items import check_regions, check_run, items, items_key, ou_accounts
from ..organization.sweep_summary import summarize
from ..sweep.rates import SweepError, parse_rates
from ..sweep.run import exemption_snapshot, too_broad
from ..sweep.sweeper import SCOPES

for _name in ("botocore", "boto3", "urllib3"):  # never request bodies in the logs (see handler.QUIET_LOGGERS)
    logging.getLogger(_name).setLevel(logging.WARNING)

logger = Logger()

ENV_REPORT_BUCKET = "REPORT_BUCKET"
ENV_SWEEP_SCOPE = "SWEEP_SCOPE"
ENV_SWEEP_RATES = "SWEEP_RATES"
ENV_OUS = "ORG_SWEEP_OUS"
ENV_REGIONS = "ORG_SWEEP_REGIONS"
ENV_EXCLUDED = "ORG_SWEEP_EXCLUDED"
ENV_FORWARDING_QUEUE = "FORWARDING_QUEUE_NAME"
ACTION_LIST, ACTION_SUMMARY, ACTION_ERROR = "list", "summary", "error"


def _env(name: str, environ: Mapping[str, str] | None = None) -> str:
    value = (os.environ if environ is None else environ).get(name, "").strip()
    if not value:
        raise ConfigError(f"{name}: required by the organization sweep")
    return value


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@lru_cache(maxsize=1)
def config() -> Config:
    return Config.from_env(os.environ)


@lru_cache(maxsize=1)
def members() -> MemberAccounts:
    return MemberAccounts.from_env()


def scope() -> str:
    value = os.environ.get(ENV_SWEEP_SCOPE, "").strip() or "active"
    if value not in SCOPES:
        raise ConfigError(f"{ENV_SWEEP_SCOPE}: expected one of {', '.join(SCOPES)}, got {value!r}")
    return value


@logger.inject_lambda_context(log_event=False)
@withhold_aws_text  # Lambda's log and the Catch's Cause (copied into the report's ERROR row) say no AWS text
def item_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket = _env(ENV_REPORT_BUCKET)
    s3 = aws.client("s3")
    if isinstance(event, dict) and event.get("action") == ACTION_ERROR:
        result = record_error(event, s3, bucket, s3.meta.partition)
        logger.warning("item not swept", extra={k: result[k] for k in ("account", "region", "counts")})
        return result
    cfg = config()
    try:
        rates = parse_rates([os.environ.get(ENV_SWEEP_RATES, "")])
    except SweepError as error:
        raise ConfigError(f"{ENV_SWEEP_RATES}: {error}") from None
    dynamodb = aws.client("dynamodb") if cfg.idempotency_table else None
    persistence = (
        DynamoDBPersistenceLayer(table_name=cfg.idempotency_table, boto3_client=dynamodb)
        if cfg.idempotency_table and cfg.mode == "remediate"
        else None
    )
    ledger = DynamoLedger(dynamodb, cfg.idempotency_table) if cfg.idempotency_table else None
    result = sweep_item(
        event,
        cfg,
        members(),
        s3,
        bucket,
        scope=scope(),
        rates=rates,
        persistence=persistence,
        registry=exemption_snapshot(cfg),
        ledger=ledger,
        lambda_context=context,
        forwarding_queue=os.environ.get(ENV_FORWARDING_QUEUE, "").strip() or None,
    )
    logger.info("item swept", extra={k: result[k] for k in ("account", "region", "counts", "calls", "seconds")})
    return result


@logger.inject_lambda_context(log_event=False)
@withhold_aws_text
def control_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    action = event.get("action")
    bucket = _env(ENV_REPORT_BUCKET)
    s3 = aws.client("s3")
    run = check_run(event.get("run"))
    if action == ACTION_LIST:
        accounts = ou_accounts(
            aws.client("organizations"), _split(_env(ENV_OUS)), excluded=_split(os.environ.get(ENV_EXCLUDED, ""))
        )
        listed = items(accounts, check_regions(_split(_env(ENV_REGIONS))))
        key = items_key(run)
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(listed).encode(), ContentType="application/json")
        logger.info("items listed", extra={"accounts": len(accounts), "items": len(listed)})
        return {"bucket": bucket, "key": key, "count": len(listed), "accounts": len(accounts)}
    if action == ACTION_SUMMARY:
        cfg = config()
        topic = aws.Topic(aws.client("sns"), cfg.topic_arn) if cfg.topic_arn else None
        region = os.environ.get("AWS_REGION") or aws.client("s3").meta.region_name
        summary = summarize(
            s3,
            bucket,
            run,
            publish=topic.publish if topic is not None else None,
            region=region,
            mode=cfg.mode,
            scope=scope(),
            partition=s3.meta.partition,
            too_broad=too_broad(exemption_snapshot(cfg)),
        )
        logger.info("organization sweep summarized", extra={k: summary[k] for k in ("items", "counts", "notified")})
        return summary
    raise ConfigError(f"organization sweep: unknown action {str(action)[:40]!r} (expected list or summary)")


__all__ = ["control_handler", "item_handler"]
