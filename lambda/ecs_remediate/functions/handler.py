"""Lambda entry point: thin glue between EventBridge, the remediation path and Powertools."""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..adapters import aws
from ..adapters.aws_errors import withhold_aws_text
from ..adapters.exemption_registry import ExemptionRegistry
from ..core.config import ENV_IDEMPOTENCY_TABLE, ENV_MEMBER_ROLE_NAME, ENV_QUEUE_URL, Config, ConfigError
from ..core.events import Registration, Skip, Unidentified, parse_registration_event
from ..core.outcomes import FAILED, SKIPPED, Result
from ..core.routing import DAEMON_KINDS, EXEMPTION_TAGS, UNROUTABLE, Route, route
from ..remediation.remediator import RemediationFailed, Remediator
from ..remediation.rollout import ReferenceFinder
from .delivery import Delivery

if TYPE_CHECKING:
    from ..organization.hub import HubRuntime

# Whatever the function's log level, the SDK's own loggers stay at WARNING: at DEBUG botocore logs request and
# response bodies (environment values, command lines, docker labels) into CloudWatch Logs.
QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "aws_xray_sdk")
for _name in QUIET_LOGGERS:
    logging.getLogger(_name).setLevel(logging.WARNING)

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=["botocore"])  # only what the function uses: patching all imports more

# Parsed once per cold start: a bad value stops the function here, with the variable's name.
CONFIG = Config.from_env(os.environ)
# The organization hub (hub_stack.py sets MEMBER_ROLE_NAME): each event is handled in its member account (hub.py).
HUB_MODE = bool(os.environ.get(ENV_MEMBER_ROLE_NAME, "").strip())


@lru_cache(maxsize=1)
def remediator() -> Remediator:
    if CONFIG.idempotency_table is None:
        raise ConfigError(f"{ENV_IDEMPOTENCY_TABLE}: required by the function (the idempotency table name)")
    persistence = DynamoDBPersistenceLayer(table_name=CONFIG.idempotency_table, boto3_client=aws.client("dynamodb"))
    topic = aws.Topic(aws.client("sns"), CONFIG.topic_arn) if CONFIG.topic_arn else None
    return Remediator(
        CONFIG,
        aws.Ecs(aws.client("ecs")),
        topic,
        persistence,
        registry=exemption_registry(CONFIG),
        references=reference_finder(CONFIG),
        fix_latest_on_sight=True,
    )


@lru_cache(maxsize=1)
def hub_runtime() -> HubRuntime:
    from ..organization.hub import HubRuntime  # noqa: PLC0415 - the single-account function never loads it

    return HubRuntime.from_env(CONFIG)


def exemption_registry(config: Config) -> ExemptionRegistry | None:
    return ExemptionRegistry(aws.client("dynamodb"), config.exemptions_table) if config.exemptions_table else None


def reference_finder(config: Config) -> ReferenceFinder | None:
    """What retire checks besides services (rule targets and schedules), built only when retire is on."""
    if not (config.retire and config.mode == "remediate"):
        return None
    from ..remediation.references import References  # noqa: PLC0415 - only retiring functions pay for it

    return References(aws.client("events"), aws.client("scheduler"))


def own_account(context: LambdaContext) -> str | None:
    """The function's account, from its ARN (arn:aws:lambda:region:account:function:name)."""
    parts = str(getattr(context, "invoked_function_arn", "")).split(":")
    return parts[4] if len(parts) > 5 and parts[4].isdigit() else None


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
@withhold_aws_text  # what Lambda logs of a raised error, and the trace's record of it, say no AWS message text
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One EventBridge event, invoked directly (the CLI's tests, a person's test invocation)."""
    return handle_event(event, context)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
@withhold_aws_text
def queue_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The stack's entry point: a batch of EventBridge events from the queue (functions/delivery.py). Returns the
    batch's partial response: each record is handled as `lambda_handler` handles one event, throttled ones are
    deferred, and the rest of what failed is delivered again, then goes to the dead-letter queue with a notice."""
    return delivery().handle_batch(
        event, context, lambda one: handle_event(one, context), lambda one, why: _undeliverable(one, why, context)
    )


@lru_cache(maxsize=1)
def delivery() -> Delivery:
    queue_url = os.environ.get(ENV_QUEUE_URL, "").strip() or None
    # In the hub, a deferred event carries its member account as the message group: the queue's fair-queue ordering
    # then keeps one member's backlog from delaying the others' events.
    group_of = envelope_account if HUB_MODE else None
    return Delivery(aws.client("sqs") if queue_url else None, queue_url, CONFIG.max_receives, group_of=group_of)


def envelope_account(event: dict[str, Any]) -> str | None:
    account = event.get("account")
    return account if isinstance(account, str) and account.isascii() and account.isdigit() else None


@withhold_aws_text  # an event's error, raised to Lambda or kept by the batch processor, says no AWS message text
def handle_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One EventBridge event, whichever way it came: route it (once: core/routing.py), handle it on its kind's path,
    log and count the outcome. The hub takes the same route in the sending member's account (organization/hub.py)."""
    routed = route(event, member=HUB_MODE, account=own_account(context), region=os.environ.get("AWS_REGION"))
    if HUB_MODE:  # the same kinds in the sending member's account: the hub adds the member's session
        if routed.kind in DAEMON_KINDS:
            from ..organization.hub_daemons import handle_daemon_event as handle_member_daemon_event  # noqa: PLC0415

            return handle_member_daemon_event(hub_runtime(), routed, event, context)
        return hub_runtime().handle(routed, event, context, _record)
    if routed.kind == UNROUTABLE:
        return _skipped(routed.reason)
    if routed.kind == EXEMPTION_TAGS:
        return _exemption_tags(event, context)
    if routed.kind in DAEMON_KINDS:  # ECS Managed Daemons: daemon task definitions, daemons, daemon deployments
        from ..daemons.handling import handle_daemon_event  # noqa: PLC0415 - only daemon events pay for it

        return handle_daemon_event(routed, event, context, CONFIG)
    return _task_definition(routed, event, context)


def _task_definition(routed: Route, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A RegisterTaskDefinition call: of the routed account and Region only."""
    parsed = parse_registration_event(
        event, expected_region=routed.region or None, expected_account=routed.account or None
    )
    if isinstance(parsed, Skip):
        return _skipped(parsed.reason)
    remediator().register_lambda_context(context)
    try:
        if isinstance(parsed, Unidentified):
            result = remediator().identify(parsed)
        else:
            tracer.put_annotation("taskDefinitionArn", parsed.task_definition_arn)
            result = remediator().process(parsed)
    except RemediationFailed as failure:
        _record(failure.result.to_dict())
        security_hub_verdict(failure.result, context, raise_on_failure=False)  # the failure itself is raised
        raise
    summary = result.to_dict()
    _record(summary)
    security_hub_verdict(result, context)  # after the notice: a failed import never hides the verdict
    return {
        k: summary[k] for k in ("outcome", "task_definition_arn", "new_task_definition_arn", "privileged", "reason")
    }


def _skipped(reason: str) -> dict[str, Any]:
    logger.info("skipped event", extra={"outcome": SKIPPED, "reason": reason})
    metrics.add_metric(name="Skipped", unit=MetricUnit.Count, value=1)
    if reason.startswith("foreign account"):
        metrics.add_metric(name="ForeignAccount", unit=MetricUnit.Count, value=1)
    return {"outcome": SKIPPED, "reason": reason}


def _undeliverable(event: dict[str, Any] | None, why: str, context: LambdaContext) -> None:
    """An event on its last delivery that still fails (functions/delivery.py): logged, counted, and a FAILED notice
    naming the revision (or the family and event), before SQS moves it to the dead-letter queue."""
    logger.error("event not processed: it goes to the dead-letter queue", extra={"outcome": FAILED, "reason": why})
    metrics.add_metric(name="Undeliverable", unit=MetricUnit.Count, value=1)
    if not CONFIG.topic_arn or FAILED not in CONFIG.notify_on:
        return
    from ..core.notice import build_message  # noqa: PLC0415 - only a failing event pays for it
    from ..core.taskdef import TASK_DEFINITION_ARN_RE  # noqa: PLC0415

    parsed = parse_registration_event(event) if event is not None else Skip("unreadable")
    registration = parsed.registration if isinstance(parsed, Unidentified) else parsed
    if not isinstance(registration, Registration):
        registration = Registration(task_definition_arn="", event_id=str((event or {}).get("id") or "")[:64])
    match = TASK_DEFINITION_ARN_RE.match(registration.task_definition_arn)
    family, revision = (match["family"], int(match["revision"])) if match else (registration.family, 0)
    result = Result(FAILED, registration.task_definition_arn, family, revision, registration=registration)
    result.error_code, result.error_message = "Undeliverable", why
    result.reason = f"{why}. The scheduled sweep judges the revision again; or run ecs-remediate scan"
    account = envelope_account(event or {}) or own_account(context) or ""
    region = str((event or {}).get("region") or os.environ.get("AWS_REGION") or "")[:32]
    aws.Topic(aws.client("sns"), CONFIG.topic_arn).publish(build_message(result, region=region, account=account))


def _exemption_tags(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """TagResource calls that set exemption tags (their own rule, only with TAG_EXEMPTIONS): an approver's are
    recorded in the ledger (remediation/tag_approvals.py); anyone else's count for nothing, and are counted."""
    if not CONFIG.tag_exemptions:
        return {"outcome": SKIPPED, "reason": "tag exemptions are off"}
    from ..remediation.tag_approvals import approval, parse_tag_event  # noqa: PLC0415 - only tag events pay for it

    applied = parse_tag_event(
        event,
        tag_prefix=CONFIG.tag_prefix,
        expected_account=own_account(context),
        expected_region=os.environ.get("AWS_REGION"),
    )
    record = applied if isinstance(applied, Skip) else approval(applied, CONFIG.exemption_approvers)
    if isinstance(record, Skip):
        logger.info("exemption tags not recorded", extra={"outcome": SKIPPED, "reason": record.reason})
        metrics.add_metric(name="ExemptionTagsNotApproved", unit=MetricUnit.Count, value=1)
        return {"outcome": SKIPPED, "reason": record.reason}
    remediator().ledger.record_tag_approval(record)
    logger.info(
        "exemption tags approved",
        extra={"task_definition_arn": record.target, "approver": record.approver, "until": record.until},
    )
    metrics.add_metric(name="ExemptionTagsApproved", unit=MetricUnit.Count, value=1)
    return {"outcome": "approval-recorded", "task_definition_arn": record.target, "approver": record.approver}


def _record(result: dict[str, Any]) -> None:
    """One log line and one metric per outcome; names and ARNs only, never the task definition body."""
    fields = (
        "outcome",
        "task_definition_arn",
        "new_task_definition_arn",
        "privileged",
        "reason",
        "error_code",
        "exemption",
        "copy_proof",
        "latest_arn",
        "restored_arn",
        "buried_arn",
    )
    extra = {k: result.get(k) for k in fields}
    extra["forged_copies"] = [f.get("arn") for f in result.get("forged_copies") or []]
    logger.info("revision processed", extra=extra)
    metrics.add_metric(name=str(result["outcome"]).capitalize(), unit=MetricUnit.Count, value=1)


# Security Hub (SECURITY_HUB=true): each verdict becomes a finding, after its notice was sent. A failed import is
# logged, counted (SecurityHubImportFailed) and raised, so that Lambda retries the event (the copy and the notice
# are idempotent, so a retry repeats only the import) and, once the retries are spent, the event goes to the
# dead-letter queue and the errors alarm fires: a verdict missing from Security Hub is never silent.


def security_hub_verdict(result: Result, context: LambdaContext, *, raise_on_failure: bool = True) -> None:
    if not CONFIG.security_hub:
        return
    from ..reports import securityhub  # noqa: PLC0415 - only functions with Security Hub on load it

    region = os.environ.get("AWS_REGION") or aws.client("ecs").meta.region_name
    client = aws.client("securityhub", region)
    _import_findings(
        lambda: securityhub.import_result(result, client=client, region=region, account=own_account(context) or ""),
        raise_on_failure,
    )


def _import_findings(importing: Any, raise_on_failure: bool = True) -> Any:
    from ..reports.securityhub import SecurityHubImportFailed  # noqa: PLC0415

    try:
        return importing()
    except (SecurityHubImportFailed, aws.ClientError, aws.BotoCoreError, ValueError) as error:
        logger.error("Security Hub import failed", extra={"error": aws.safe_error(error)})
        metrics.add_metric(name="SecurityHubImportFailed", unit=MetricUnit.Count, value=1)
        if raise_on_failure:
            raise
        return None


ENV_SWEEP_RATES = "SWEEP_RATES"


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@withhold_aws_text
def sweep_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The scheduled sweep of this function's Region: judge the existing task definitions and, in remediate
    mode, fix them through the same Remediator (idempotency shared with the real-time function). One summary
    notice, only when something was found (FAIL, ERROR, an exemption expiring within 7 days) or fixed (remediated,
    retired; ROLLOUT/RETIRE apply as in the function). The schedule's input may set
    {"scope": "latest" | "active"} (default latest)."""
    # Imported here, not at module level: the real-time function's cold start does not pay for the sweep.
    from ..core.policy import PASS  # noqa: PLC0415
    from ..sweep import run as sweep  # noqa: PLC0415
    from ..sweep.notice import build_sweep_summary  # noqa: PLC0415

    scope = event.get("scope", sweep.ACTIVE) if isinstance(event, dict) else sweep.ACTIVE
    if scope not in sweep.SCOPES:
        raise ConfigError(f"sweep input 'scope': expected one of {', '.join(sweep.SCOPES)}, got {scope!r}")
    # {"inventory": "describe" | "config" | "auto"} (default describe): judge from Config's records (sweep_inventory).
    inventory = event.get("inventory", sweep.DESCRIBE) if isinstance(event, dict) else sweep.DESCRIBE
    try:
        sweep.check_inventory(inventory, scope)
    except sweep.SweepError as error:
        raise ConfigError(f"sweep input 'inventory': {error}") from None
    if CONFIG.idempotency_table is None:
        raise ConfigError(f"{ENV_IDEMPOTENCY_TABLE}: required by the function (the idempotency table name)")
    try:
        rates = sweep.parse_rates([os.environ.get(ENV_SWEEP_RATES, "")])
    except sweep.SweepError as error:
        raise ConfigError(f"{ENV_SWEEP_RATES}: {error}") from None
    persistence = DynamoDBPersistenceLayer(table_name=CONFIG.idempotency_table, boto3_client=aws.client("dynamodb"))
    region = os.environ.get("AWS_REGION") or aws.client("ecs").meta.region_name
    report = sweep.sweep(
        [region],
        CONFIG,
        scope=scope,
        remediate=CONFIG.mode == "remediate",
        rates=rates,
        persistence=persistence,
        lambda_context=context,
        inventory=inventory,
    )
    counts = report.counts()
    # A Config plan that fell back to describes is said in every notice; with "config" it is a notice of its own.
    inventory_lines = [outcome.text() for outcome in report.inventory]
    config_fell_back = inventory == sweep.CONFIG and any(outcome.fallback for outcome in report.inventory)
    open_rows = [f.to_json() for f in report.findings if f.open]
    remediated_rows = [f.to_json() for f in report.findings if f.remediated]
    retired_rows = [f.to_json() for f in report.findings if f.retired]
    expiring_rows = [f.to_json() for f in report.expiring]
    exempt_rows = [f.to_json() for f in report.exempt]
    host_rows = [f.to_json() for f in report.findings if f.status == PASS and f.host_equivalents]
    for status, count in counts.items():
        metrics.add_metric(name=f"Sweep{status.capitalize()}", unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="SweepRemediated", unit=MetricUnit.Count, value=len(remediated_rows))
    metrics.add_metric(name="SweepRetired", unit=MetricUnit.Count, value=len(retired_rows))
    metrics.add_metric(name="SweepExemptionsExpiring", unit=MetricUnit.Count, value=len(expiring_rows))
    metrics.add_metric(name="SweepConfigFallback", unit=MetricUnit.Count, value=int(config_fell_back))
    logger.info(
        "sweep finished",
        extra={
            "scope": scope,
            "counts": counts,
            "remediated": len(remediated_rows),
            "retired": len(retired_rows),
            "expiring": [row["taskDefinitionArn"] for row in expiring_rows[:100]],
            "open": [(row["status"], row["taskDefinitionArn"], row["error"]) for row in open_rows[:100]],
            "calls": report.stats.calls,
            "throttles": report.stats.throttles,
            "seconds": round(report.seconds, 1),
            "inventory": inventory_lines,
        },
    )
    notified = False
    # Every exemption is something found (listed in every summary), and so is one about to run out.
    found = (
        open_rows
        or remediated_rows
        or retired_rows
        or exempt_rows
        or report.family_globs
        or host_rows
        or report.too_broad
    )
    if CONFIG.topic_arn and (found or config_fell_back):
        account = context.invoked_function_arn.split(":")[4] if context.invoked_function_arn.count(":") >= 5 else ""
        message = build_sweep_summary(
            region=region,
            scope=scope,
            mode=CONFIG.mode,
            counts=counts,
            open_rows=open_rows,
            remediated_rows=remediated_rows,
            seconds=report.seconds,
            account=account,
            retired_rows=retired_rows,
            expiring_rows=expiring_rows,
            exempt_rows=exempt_rows,
            family_globs=report.family_globs,
            too_broad=report.too_broad,
            inventory=inventory_lines,
            inventory_fallback=config_fell_back,
            host_rows=host_rows,
        )
        aws.Topic(aws.client("sns"), CONFIG.topic_arn).publish(message)
        notified = True
    response: dict[str, Any] = {
        "scope": scope,
        "counts": counts,
        "remediated": len(remediated_rows),
        "open": len(open_rows),
        "notified": notified,
    }
    if CONFIG.security_hub:  # after the summary notice, as in lambda_handler; a failure raises (the errors alarm)
        from ..reports import securityhub  # noqa: PLC0415

        imported = _import_findings(
            lambda: securityhub.import_sweep(
                report, client_for=lambda _account, r: aws.client("securityhub", r), account=own_account(context) or ""
            )
        )
        response["securityHub"] = {"imported": imported.imported, "archived": imported.archived}
    return response
