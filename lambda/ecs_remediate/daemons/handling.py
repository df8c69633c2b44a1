"""The function's daemon path, for the events the router (core/routing.py) gives a daemon kind: RegisterDaemon-
TaskDefinition, CreateDaemon and UpdateDaemon calls, and ECS Daemon Deployment State Change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from ..adapters import aws
from ..adapters.exemption_registry import ExemptionRegistry
from ..core.config import ENV_IDEMPOTENCY_TABLE, Config, ConfigError
from ..core.events import Skip, Unidentified
from ..core.outcomes import SKIPPED, Result
from ..core.routing import DAEMON_DEPLOYMENT, DAEMON_TASK_DEFINITION, Route
from ..remediation.remediator import RemediationFailed
from .events import parse_daemon_call, parse_deployment_event
from .remediator import DaemonRemediator, daemon_remediator
from .result import RESOURCE_TYPE

logger = Logger()
metrics = Metrics()

_SUMMARY = ("outcome", "task_definition_arn", "new_task_definition_arn", "privileged", "reason")
_built: dict[str, Any] = {}


def remediator(config: Config) -> DaemonRemediator:
    """One per process and configuration, on the process's ECS client (rebuilt when either changes: tests)."""
    client = aws.client("ecs")
    if _built.get("client") is client and _built.get("config") is config:
        built: DaemonRemediator = _built["remediator"]
        return built
    if config.idempotency_table is None:
        raise ConfigError(f"{ENV_IDEMPOTENCY_TABLE}: required by the function (the idempotency table name)")
    persistence = DynamoDBPersistenceLayer(table_name=config.idempotency_table, boto3_client=aws.client("dynamodb"))
    topic = aws.Topic(aws.client("sns"), config.topic_arn) if config.topic_arn else None
    registry = ExemptionRegistry(aws.client("dynamodb"), config.exemptions_table) if config.exemptions_table else None
    built = daemon_remediator(config, client, topic, persistence, registry=registry)
    _built.update(client=client, config=config, remediator=built)
    return built


def handle_daemon_event(routed: Route, event: dict[str, Any], context: Any, config: Config) -> dict[str, Any]:
    """Describe, judge, copy once, read back, notify (daemons/remediator.py); or report a deployment the stack
    started."""
    return run_daemon_event(routed, event, context, lambda: remediator(config))


def run_daemon_event(
    routed: Route, event: dict[str, Any], context: Any, daemons_for: Callable[[], DaemonRemediator]
) -> dict[str, Any]:
    """One daemon event (routed: its kind, and the account and Region it is handled in), through the
    DaemonRemediator `daemons_for` gives (built only when the event is one to act on): this function's own, or the
    organization hub's for a member (organization/hub_daemons.py)."""
    if routed.kind == DAEMON_DEPLOYMENT:
        deployment = parse_deployment_event(routed, event)
        if isinstance(deployment, Skip):
            return _skip(deployment.reason)
        daemons = daemons_for()
        daemons.register_lambda_context(context)
        reported = daemons.report_deployment(deployment)
        if reported is None:
            return _skip(f"{deployment.deployment_arn}: not a deployment this stack started, or not finished")
        record_daemon_result(reported)
        return {
            "resource_type": RESOURCE_TYPE,
            **{k: reported.to_dict()[k] for k in _SUMMARY},
            "deployment": reported.deployment,
        }
    parsed = parse_daemon_call(routed, event)
    if isinstance(parsed, Skip):
        return _skip(parsed.reason)
    daemons = daemons_for()
    daemons.register_lambda_context(context)
    try:
        if isinstance(parsed, Unidentified):
            results: list[Result] = [daemons.identify(parsed)]
        elif routed.kind == DAEMON_TASK_DEFINITION:
            results = [daemons.process(parsed)]
        else:
            results = daemons.process_call(parsed)
    except RemediationFailed as failure:
        record_daemon_result(failure.result)
        raise
    for result in results:
        record_daemon_result(result)
    summaries = [{k: r.to_dict()[k] for k in _SUMMARY} for r in results]
    if len(summaries) == 1:
        return {"resource_type": RESOURCE_TYPE, **summaries[0]}
    outcome = "checked" if summaries else SKIPPED
    return {"resource_type": RESOURCE_TYPE, "outcome": outcome, "results": summaries}


def _skip(reason: str) -> dict[str, Any]:
    logger.info("skipped daemon event", extra={"outcome": SKIPPED, "reason": reason})
    metrics.add_metric(name="Skipped", unit=MetricUnit.Count, value=1)
    if reason.startswith("foreign account"):
        metrics.add_metric(name="ForeignAccount", unit=MetricUnit.Count, value=1)
    return {"resource_type": RESOURCE_TYPE, "outcome": SKIPPED, "reason": reason}


def record_daemon_result(result: Result) -> None:
    """One log line and one metric per outcome; names and ARNs only, never the definition's body."""
    data = result.to_dict()
    fields = ("outcome", "task_definition_arn", "new_task_definition_arn", "privileged", "reason", "error_code")
    extra: dict[str, Any] = {k: data.get(k) for k in fields}
    extra["resource_type"] = RESOURCE_TYPE
    extra["forged_copies"] = [f.get("arn") for f in data.get("forged_copies") or []]
    extra["daemons_updated"] = [d.get("daemonArn") for d in data.get("daemons_updated") or []]
    logger.info("daemon task definition processed", extra=extra)
    outcome = str(data["outcome"]).removeprefix("daemon-")  # daemon-deployment: DaemonDeployment
    metrics.add_metric(name=f"Daemon{outcome.title()}", unit=MetricUnit.Count, value=1)
