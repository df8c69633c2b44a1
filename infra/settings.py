"""Stack settings: the CDK context keys, their defaults, and their validation, in one place.

`app.py` reads the context once through `StackSettings.from_context`; constructs receive the typed,
frozen result and never read context themselves. A bad value raises `ContextError`, whose message names
the context key and the allowed values, and which fails `cdk synth` before anything is built.

Rules shared with the function (modes, outcomes, tag-prefix syntax) come from `ecs_remediate.core.config`, so
the stack cannot accept a value the function would refuse at cold start.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_logs as logs

from ecs_remediate.core.config import (
    DEFAULT_ESCALATE_AFTER,
    DEFAULT_ESCALATE_WINDOW_HOURS,
    DEFAULT_NOTIFY_ON,
    DEFAULT_TAG_PREFIX,
    ENV_TAG_PREFIX,
    ESCALATE_AFTER_RANGE,
    ESCALATE_WINDOW_RANGE,
    MODES,
    NOTIFIABLE_OUTCOMES,
    Config,
    ConfigError,
)

# Function sizing, from `python -m bench.handler`: peak RSS 67 MB after 1,000 events (fits 128 MB), about
# 8 ms of CPU per remediated event and 0.4 s of CPU to cold-start at full speed. Lambda's CPU share grows
# with memory, so 256 MB halves both against 128 MB for little cost; 60 s leaves room for botocore's
# retries of a throttled call before the invocation fails and is retried as a whole.
FUNCTION_MEMORY_MB = 256
FUNCTION_TIMEOUT_SECONDS = 60
# Asynchronous invocation: retries after a failed attempt, and the age after which an unprocessed event
# goes to the dead-letter queue instead (the sweep then catches the revision).
ASYNC_RETRY_ATTEMPTS = 2
ASYNC_MAX_EVENT_AGE_SECONDS = 3600

# The delivery queue (infra/remediator.py, docs/performance.md#burst): SQS's visibility timeout at six times the
# function's timeout (AWS's advice for an event source mapping), five deliveries before the dead-letter queue (AWS's
# advice for a redrive policy), batches of 10. How many batches run at once (MaximumConcurrency, Lambda's minimum is 2)
# bounds the function's share of the account's ECS rates: RegisterTaskDefinition refills one token a second per
# account and Region, shared with every pipeline.
QUEUE_VISIBILITY_TIMEOUT_SECONDS = 6 * 60
QUEUE_MAX_RECEIVES = 5
QUEUE_BATCH_SIZE = 10
DEFAULT_QUEUE_CONCURRENCY, QUEUE_CONCURRENCY_RANGE = 2, (2, 1000)
# The organization hub's mapping: up to 1,000 records gathered for a second, so that one member's burst and another
# member's registration arrive in one batch, which the function handles in round-robin order of the accounts
# (ecs_remediate/delivery.py). About 3 MB of typical events, within Lambda's 6 MB batch payload.
HUB_QUEUE_BATCH_SIZE = 1000
HUB_QUEUE_BATCHING_WINDOW_SECONDS = 1
# The hub's MaximumConcurrency unless `queueConcurrency` is set: each member has its own ECS rates, and the function
# paces each member's records (delivery.ACCOUNT_RATE, a quarter a second per execution environment: the register
# bucket's refill across 4), so a member's burst leaves batches free for the others' registrations.
HUB_DEFAULT_QUEUE_CONCURRENCY = 4
# The backlog alarm: the oldest event waiting longer than this (the burst is not draining).
QUEUE_AGE_ALARM_SECONDS = 3600

# Context keys (documented in docs/configuration.md).
CTX_NOTIFICATION_EMAILS = "notificationEmails"
CTX_MODE = "mode"
CTX_TAG_PREFIX = "tagPrefix"
CTX_EXEMPT_FAMILIES = "exemptFamilies"
CTX_NOTIFY_ON = "notifyOn"
CTX_LOG_RETENTION_DAYS = "logRetentionDays"
CTX_LOG_LEVEL = "logLevel"
CTX_IDEMPOTENCY_TTL_SECONDS = "idempotencyTtlSeconds"
CTX_ROLLOUT = "rollout"
CTX_RETIRE = "retire"
CTX_EXEMPT_FAMILIES_ACKNOWLEDGED = "exemptFamiliesAcknowledged"
CTX_EXEMPTION_APPROVERS = "exemptionApprovers"
CTX_EXEMPTION_MAX_DAYS = "exemptionMaxDays"
CTX_SECURITY_HUB = "securityHub"
CTX_TAG_EXEMPTIONS = "tagExemptions"
CTX_ESCALATE_AFTER = "escalateAfter"
CTX_ESCALATE_WINDOW_HOURS = "escalateWindowHours"
CTX_ROLLOUT_MANAGED = "rolloutManaged"
CTX_DAEMON_ROLLOUT = "daemonRollout"  # ECS Managed Daemons: UpdateDaemon onto the fixed copy (docs/daemons.md)
CTX_QUEUE_CONCURRENCY = "queueConcurrency"  # the event source mapping's MaximumConcurrency
CONTEXT_KEYS = (
    CTX_NOTIFICATION_EMAILS,
    CTX_MODE,
    CTX_TAG_PREFIX,
    CTX_EXEMPT_FAMILIES,
    CTX_NOTIFY_ON,
    CTX_LOG_RETENTION_DAYS,
    CTX_LOG_LEVEL,
    CTX_IDEMPOTENCY_TTL_SECONDS,
    CTX_ROLLOUT,
    CTX_RETIRE,
    CTX_EXEMPT_FAMILIES_ACKNOWLEDGED,
    CTX_EXEMPTION_APPROVERS,
    CTX_EXEMPTION_MAX_DAYS,
    CTX_SECURITY_HUB,
    CTX_TAG_EXEMPTIONS,
    CTX_ESCALATE_AFTER,
    CTX_ESCALATE_WINDOW_HOURS,
    CTX_ROLLOUT_MANAGED,
    CTX_DAEMON_ROLLOUT,
    CTX_QUEUE_CONCURRENCY,
)
# The scheduled sweep's keys (read in infra/sweep_schedule.py) and the organization hub's (infra/org_settings.py), named
# here so that KNOWN_KEYS below is complete without importing those modules (they import this one).
CTX_SWEEP_SCHEDULE = "sweepSchedule"
CTX_SWEEP_SCOPE = "sweepScope"
CTX_SWEEP_INVENTORY = "sweepInventory"
SWEEP_CONTEXT_KEYS = (CTX_SWEEP_SCHEDULE, CTX_SWEEP_SCOPE, CTX_SWEEP_INVENTORY)
CTX_ORGANIZATION = "organization"
CTX_ORGANIZATION_ID = "organizationId"
CTX_TARGET_OUS = "targetOus"
CTX_REGIONS = "regions"
CTX_EXCLUDED_ACCOUNTS = "excludedAccounts"
CTX_MEMBER_ROLE_NAME = "memberRoleName"
CTX_MEMBER_ROLE_REGION = "memberRoleRegion"
CTX_STACK_SET_CALL_AS = "stackSetCallAs"
CTX_GUARDRAIL = "guardrail"
# true: the hub account is an AWS Organizations delegated administrator for policies (SCPs), which guardrail=attach
# with stackSetCallAs=DELEGATED_ADMIN needs (a StackSets delegated administrator is a different delegation).
CTX_ORGANIZATIONS_DELEGATED_ADMIN = "organizationsDelegatedAdmin"
CTX_BREAK_GLASS = "breakGlassPrincipals"
CTX_MEMBER_TEMPLATE = "memberTemplate"
CTX_ORG_SWEEP_CONCURRENCY = "orgSweepConcurrency"
CTX_ORG_SWEEP_REPORT_DAYS = "orgSweepReportDays"
ORG_CONTEXT_KEYS = (
    CTX_ORGANIZATION_ID,
    CTX_TARGET_OUS,
    CTX_REGIONS,
    CTX_EXCLUDED_ACCOUNTS,
    CTX_MEMBER_ROLE_NAME,
    CTX_MEMBER_ROLE_REGION,
    CTX_STACK_SET_CALL_AS,
    CTX_GUARDRAIL,
    CTX_ORGANIZATIONS_DELEGATED_ADMIN,
    CTX_BREAK_GLASS,
    CTX_EXEMPTION_APPROVERS,
    CTX_MEMBER_TEMPLATE,
    *SWEEP_CONTEXT_KEYS,
    CTX_ORG_SWEEP_CONCURRENCY,
    CTX_ORG_SWEEP_REPORT_DAYS,
)
# Every context key of ecs-remediate, single-account and organization (docs/configuration.md, docs/organization.md).
# Any other key fails synth (check_context_keys), except the CDK's own: the keys cdk.json sets and the CDK passes are
# namespaced with a colon (feature flags "@aws-cdk/...:flag", "aws:cdk:...", cached lookups "ssm:account=...") or are
# in CDK_CONTEXT_KEYS.
KNOWN_KEYS: tuple[str, ...] = tuple(
    dict.fromkeys((*CONTEXT_KEYS, *SWEEP_CONTEXT_KEYS, CTX_ORGANIZATION, *ORG_CONTEXT_KEYS))
)
# The CDK CLI's own plain keys (it writes them to cdk.context.json: `cdk acknowledge`, `cdk cli-telemetry`).
CDK_CONTEXT_KEYS = ("acknowledged-issue-numbers", "cli-telemetry")

# Said at synth (a warning on the stack, and a line from `cdk synth`) when the topic would have no subscriber.
NO_RECIPIENTS_WARNING_ID = "ecs-remediate:noNotificationEmails"
NO_RECIPIENTS_WARNING = (
    f"{CTX_NOTIFICATION_EMAILS} is empty: nobody will be notified of remediations, failures or alarms (the SNS topic "
    f"gets no subscriber); add -c {CTX_NOTIFICATION_EMAILS}=secops@example.com, or subscribe to the TopicArn output"
)

# CloudWatch Logs retention periods CDK knows (aws_logs.RetentionDays), by number of days.
RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
DEFAULT_LOG_RETENTION_DAYS = 365
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 86400

# A family glob: what ECS allows in a family name, plus the fnmatch characters; no commas (the
# EXEMPT_FAMILIES variable is comma-separated).
_FAMILY_GLOB_RE = re.compile(r"^[A-Za-z0-9_\-*?\[\]!]{1,255}$")
# Deliberately simple: SNS itself validates the address and mails a confirmation link.
_EMAIL_RE = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
# An IAM role ARN pattern for aws:PrincipalArn (ArnLike): `*` and `?` allowed in the path and name.
_ROLE_ARN_PATTERN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}|\*):role/[\w+=,.@*?/-]{1,512}$")


class ContextError(ValueError):
    """A CDK context value is invalid; the message names the key and what is allowed."""


def check_context_keys(keys: Iterable[str]) -> None:
    """Refuse a key that is neither ecs-remediate's nor the CDK's, naming it and the nearest known key: a typo such as
    `mdoe=report` would otherwise synthesize the default (remediate) in silence."""
    unknown = sorted(key for key in set(keys) if not (key in KNOWN_KEYS or key in CDK_CONTEXT_KEYS or ":" in key))
    if unknown:
        raise ContextError("; ".join(_unknown_key(key) for key in unknown))


def _unknown_key(key: str) -> str:
    by_lower = {known.lower(): known for known in KNOWN_KEYS}
    nearest = difflib.get_close_matches(key.lower(), by_lower, n=1, cutoff=0.7)
    hint = f"did you mean {by_lower[nearest[0]]}?" if nearest else "the keys are in docs/configuration.md"
    return f"{key}: not a context key of ecs-remediate ({hint})"


@dataclass(frozen=True, kw_only=True)
class StackSettings:
    """Typed, validated stack settings (one field per context key)."""

    notification_emails: tuple[str, ...] = ()
    mode: str = "remediate"
    tag_prefix: str = DEFAULT_TAG_PREFIX
    exempt_families: tuple[str, ...] = ()
    notify_on: tuple[str, ...] = DEFAULT_NOTIFY_ON
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    log_level: str = DEFAULT_LOG_LEVEL
    idempotency_ttl_seconds: int = DEFAULT_IDEMPOTENCY_TTL_SECONDS
    rollout: bool = False  # move services onto the fixed revision
    retire: bool = False  # deregister the privileged revision once replaced and unused
    exemption_approvers: tuple[str, ...] = ()  # role ARN patterns that may write the exemption registry
    exemption_max_days: int = 90
    tag_exemptions: bool = False  # exemption tags count when an approver applied them (TagResource events)
    security_hub: bool = False  # import a finding per verdict into Security Hub (infra/security_hub.py)
    escalate_after: int = DEFAULT_ESCALATE_AFTER  # remediations of a family within the window that escalate
    escalate_window_hours: int = DEFAULT_ESCALATE_WINDOW_HOURS
    rollout_managed: bool = False  # rollout moves CloudFormation-managed services too (the stack then has drift)
    daemon_rollout: bool = False  # move daemons onto fixed daemon task definitions (infra/daemons.py)
    # batches handled at once (the mapping's MaximumConcurrency); None: the stack's default (2, the hub's 4)
    queue_concurrency: int | None = None

    @property
    def log_retention(self) -> logs.RetentionDays:
        return RETENTION_DAYS[self.log_retention_days]

    @property
    def remediates(self) -> bool:
        """True when the function may register copies (and so needs the write permissions)."""
        return self.mode == "remediate"

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> StackSettings:
        """Read every key through `get` (e.g. `app.node.try_get_context`); missing keys take defaults."""
        raw = {key: get(key) for key in CONTEXT_KEYS}
        return cls.from_mapping({k: v for k, v in raw.items() if v is not None})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> StackSettings:
        emails = _string_list(values, CTX_NOTIFICATION_EMAILS)
        for email in emails:
            if not _EMAIL_RE.match(email):
                raise ContextError(f"{CTX_NOTIFICATION_EMAILS}: {email!r} is not an email address")
        mode = _choice(values, CTX_MODE, MODES, "remediate")
        tag_prefix = _tag_prefix(values)
        families = _string_list(values, CTX_EXEMPT_FAMILIES)
        for glob in families:
            if not _FAMILY_GLOB_RE.match(glob):
                raise ContextError(
                    f"{CTX_EXEMPT_FAMILIES}: {glob!r} is not a family glob "
                    "(1-255 of letters, digits, - and _, plus the glob characters * ? [ ] !)"
                )
        if families and not _boolean(values, CTX_EXEMPT_FAMILIES_ACKNOWLEDGED):
            raise ContextError(
                f"{CTX_EXEMPT_FAMILIES}: a family glob also exempts families created later, by anyone who can "
                f"register one; add -c {CTX_EXEMPT_FAMILIES_ACKNOWLEDGED}=true to accept that, or exempt revisions "
                "in the exemption registry instead (ecs-remediate exempt add)"
            )
        approvers = _string_list(values, CTX_EXEMPTION_APPROVERS)
        for approver in approvers:
            if not _ROLE_ARN_PATTERN_RE.match(approver):
                raise ContextError(
                    f"{CTX_EXEMPTION_APPROVERS}: {approver!r} is not an IAM role ARN pattern "
                    "(arn:aws:iam::<account>:role/<name>, * and ? allowed)"
                )
        tag_exemptions = _boolean(values, CTX_TAG_EXEMPTIONS)
        if tag_exemptions and not approvers:
            raise ContextError(
                f"{CTX_TAG_EXEMPTIONS}: tag exemptions count only when an approver applied them; "
                f"set {CTX_EXEMPTION_APPROVERS}"
            )
        max_days = _integer(values, CTX_EXEMPTION_MAX_DAYS, 90)
        if not 1 <= max_days <= 3650:
            raise ContextError(f"{CTX_EXEMPTION_MAX_DAYS}: expected 1 to 3650 days, got {max_days}")
        notify_on = tuple(
            _choice({CTX_NOTIFY_ON: item}, CTX_NOTIFY_ON, NOTIFIABLE_OUTCOMES, "")
            for item in _string_list(values, CTX_NOTIFY_ON, default=DEFAULT_NOTIFY_ON)
        )
        retention = _integer(values, CTX_LOG_RETENTION_DAYS, DEFAULT_LOG_RETENTION_DAYS)
        if retention not in RETENTION_DAYS:
            raise ContextError(
                f"{CTX_LOG_RETENTION_DAYS}: expected one of {', '.join(map(str, RETENTION_DAYS))} "
                f"(CloudWatch Logs retention periods), got {retention}"
            )
        log_level = _choice(values, CTX_LOG_LEVEL, LOG_LEVELS, DEFAULT_LOG_LEVEL, upper=True)
        ttl = _integer(values, CTX_IDEMPOTENCY_TTL_SECONDS, DEFAULT_IDEMPOTENCY_TTL_SECONDS)
        if ttl < 60:
            raise ContextError(f"{CTX_IDEMPOTENCY_TTL_SECONDS}: must be at least 60 seconds, got {ttl}")
        escalate_after = _integer(values, CTX_ESCALATE_AFTER, DEFAULT_ESCALATE_AFTER)
        window = _integer(values, CTX_ESCALATE_WINDOW_HOURS, DEFAULT_ESCALATE_WINDOW_HOURS)
        for key, value, (low, high), unit in (
            (CTX_ESCALATE_AFTER, escalate_after, ESCALATE_AFTER_RANGE, "remediations"),
            (CTX_ESCALATE_WINDOW_HOURS, window, ESCALATE_WINDOW_RANGE, "hours"),
        ):
            if not low <= value <= high:
                raise ContextError(f"{key}: expected {low} to {high} {unit}, got {value}")
        if _boolean(values, CTX_ROLLOUT_MANAGED) and not _boolean(values, CTX_ROLLOUT):
            raise ContextError(
                f"{CTX_ROLLOUT_MANAGED}: moves stack-managed services during rollout; needs -c rollout=true"
            )
        concurrency = _integer(values, CTX_QUEUE_CONCURRENCY, 0) if CTX_QUEUE_CONCURRENCY in values else None
        if concurrency is not None and not QUEUE_CONCURRENCY_RANGE[0] <= concurrency <= QUEUE_CONCURRENCY_RANGE[1]:
            low, high = QUEUE_CONCURRENCY_RANGE
            raise ContextError(
                f"{CTX_QUEUE_CONCURRENCY}: expected {low} to {high} batches at once (Lambda's MaximumConcurrency), "
                f"got {concurrency}"
            )
        return cls(
            queue_concurrency=concurrency,
            escalate_after=escalate_after,
            escalate_window_hours=window,
            rollout_managed=_boolean(values, CTX_ROLLOUT_MANAGED),
            rollout=_boolean(values, CTX_ROLLOUT),
            retire=_boolean(values, CTX_RETIRE),
            security_hub=_boolean(values, CTX_SECURITY_HUB),
            daemon_rollout=_boolean(values, CTX_DAEMON_ROLLOUT),
            notification_emails=tuple(dict.fromkeys(emails)),
            mode=mode,
            tag_prefix=tag_prefix,
            exempt_families=tuple(dict.fromkeys(families)),
            notify_on=tuple(dict.fromkeys(notify_on)),
            log_retention_days=retention,
            log_level=log_level,
            idempotency_ttl_seconds=ttl,
            exemption_approvers=tuple(dict.fromkeys(approvers)),
            exemption_max_days=max_days,
            tag_exemptions=tag_exemptions,
        )


def _string_list(values: Mapping[str, Any], key: str, default: tuple[str, ...] = ()) -> list[str]:
    """A list of strings, given as a list, a JSON list in a string, or a comma-separated string.

    `cdk -c key=value` always passes a string, so all three spellings are accepted.
    """
    if key not in values:
        return list(default)
    value = values[key]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ContextError(f"{key}: not a valid JSON list: {text!r}") from None
        else:
            return [item.strip() for item in text.split(",") if item.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ContextError(f"{key}: expected a list of strings (or a comma-separated string), got {value!r}")
    return [item.strip() for item in value if item.strip()]


def _choice(values: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str, *, upper: bool = False) -> str:
    value = values.get(key, default)
    normalized: Any = value
    if isinstance(value, str):
        normalized = value.strip().upper() if upper else value.strip().lower()
    if normalized not in allowed:
        raise ContextError(f"{key}: expected one of {', '.join(allowed)}, got {value!r}")
    return str(normalized)


def _integer(values: Mapping[str, Any], key: str, default: int) -> int:
    value = values.get(key, default)
    if isinstance(value, bool):
        raise ContextError(f"{key}: expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ContextError(f"{key}: expected a whole number, got {value!r}")


def _boolean(values: Mapping[str, Any], key: str) -> bool:
    value = values.get(key, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ContextError(f"{key}: expected one of true, false, got {value!r}")


def _tag_prefix(values: Mapping[str, Any]) -> str:
    value = values.get(CTX_TAG_PREFIX, DEFAULT_TAG_PREFIX)
    if not isinstance(value, str) or not value.strip():
        raise ContextError(f"{CTX_TAG_PREFIX}: expected a non-empty string, got {value!r}")
    try:  # the function's own rule, so both sides agree
        Config.from_env({ENV_TAG_PREFIX: value})
    except ConfigError as error:
        detail = str(error).removeprefix(f"{ENV_TAG_PREFIX}: ")
        raise ContextError(f"{CTX_TAG_PREFIX}: {detail}") from None
    return value.strip()
