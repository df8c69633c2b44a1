"""`ecs-remediate scan --inventory describe|config|auto [--config-aggregator NAME [--config-aggregator-region R]]`:
the scan's choice between describing every revision and judging from AWS Config's records (sweep/inventory.py)."""

from __future__ import annotations

import argparse
import re
from typing import Any

from ..sweep.config_queries import ConfigSource, InventoryError
from ..sweep.inventory import AUTO, CONFIG, DESCRIBE, INVENTORIES

_ACCOUNT_IN_ARN = re.compile(r"^arn:[^:]+:(?:sts|iam)::(\d{12}):")


def add_arguments(scan: argparse.ArgumentParser) -> None:
    scan.add_argument(
        "--inventory",
        choices=INVENTORIES,
        default=DESCRIBE,
        help=f"{DESCRIBE}: describe every revision (default); {CONFIG}: in --scope active, judge from AWS Config's "
        "records (config:SelectResourceConfig) and describe only the privileged revisions, those with the marker tag "
        f"and those Config does not know, same verdicts; {AUTO}: {CONFIG} in --scope active, {DESCRIBE} otherwise. "
        "A Config failure falls back to describes, with the reason in the summary",
    )
    scan.add_argument(
        "--config-aggregator",
        metavar="NAME",
        help="ask this organization aggregator (config:SelectAggregateResourceConfig, narrowed to the scanned account) "
        "instead of the account's recorder",
    )
    scan.add_argument(
        "--config-aggregator-region",
        metavar="R",
        help="the aggregator's Region (default: each scanned Region)",
    )


def options(args: argparse.Namespace, caller_arns: tuple[str, ...]) -> dict[str, Any]:
    """The sweep() keywords for these arguments; ValueError (InventoryError) for a bad combination."""
    source = None
    if args.config_aggregator is not None:
        match = next((m for m in map(_ACCOUNT_IN_ARN.match, caller_arns) if m), None)
        source = ConfigSource(
            args.config_aggregator,
            account=match.group(1) if match else None,
            aggregator_region=args.config_aggregator_region,
        )
    elif args.config_aggregator_region is not None:
        raise InventoryError("--config-aggregator-region needs --config-aggregator")
    return {"inventory": args.inventory, "config_source": source}
