"""Runtime configuration: read from environment variables once, into a typed, validated object.

The CDK stack sets these on the function; the CLI reads the same names, so both paths behave alike.
A bad value raises ConfigError naming the variable, which stops the function at cold start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .exemptions.judgement import ExemptionRules

MODES = ("remediate", "report")
NOTIFIABLE_OUTCOMES = ("remediated", "reported", "failed", "exempt", "superseded", "unresolved")
# Every exemption is notified by default, and so is every privileged revision left as it is.
DEFAULT_NOTIFY_ON = NOTIFIABLE_OUTCOMES
DEFAULT_EXEMPTION_MAX_DAYS = 90
DEFAULT_TAG_PREFIX = "ecs-remediate"
# ECS tag keys: 1-128 characters of letters, digits, spaces and _ . : / = + - @ ; "aws:" is reserved.
_TAG_KEY_PREFIX_RE = re.compile(r"^[\w .:/=+\-@]{1,100}$")

# Environment variable names: the contract between the stack, the function and the CLI.
ENV_MODE = "MODE"
ENV_TOPIC_ARN = "TOPIC_ARN"
ENV_IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"
ENV_IDEMPOTENCY_TTL = "IDEMPOTENCY_TTL_SECONDS"
ENV_TAG_PREFIX = "TAG_PREFIX"
ENV_EXEMPT_FAMILIES = "EXEMPT_FAMILIES"
ENV_NOTIFY_ON = "NOTIFY_ON"
ENV_ROLLOUT = "ROLLOUT"
ENV_RETIRE = "RETIRE"
ENV_TRUSTED_PRINCIPALS = "TRUSTED_PRINCIPALS"
ENV_EXEMPTIONS_TABLE = "EXEMPTIONS_TABLE"
ENV_EXEMPTION_MAX_DAYS = "EXEMPTION_MAX_DAYS"
ENV_EXEMPT_FAMILIES_ACKNOWLEDGED = "EXEMPT_FAMILIES_ACKNOWLEDGED"
ENV_TAG_EXEMPTIONS = "TAG_EXEMPTIONS"
ENV_EXEMPTION_APPROVERS = "EXEMPTION_APPROVERS"
# Issue 15 (IaC sources) and issue 14 (Security Hub): parsed in `_source_and_findings`.
ENV_ESCALATE_AFTER = "ESCALATE_AFTER"
ENV_ESCALATE_WINDOW_HOURS = "ESCALATE_WINDOW_HOURS"
ENV_ROLLOUT_MANAGED = "ROLLOUT_MANAGED"
ENV_SECURITY_HUB = "SECURITY_HUB"
DEFAULT_ESCALATE_AFTER, ESCALATE_AFTER_RANGE = 3, (2, 100)
DEFAULT_ESCALATE_WINDOW_HOURS, ESCALATE_WINDOW_RANGE = 24, (1, 720)
# the organization hub's member role (organization/member_accounts.py); set: hub mode
ENV_MEMBER_ROLE_NAME = "MEMBER_ROLE_NAME"
ENV_DAEMON_ROLLOUT = "DAEMON_ROLLOUT"  # move daemons onto fixed daemon task definitions (its own opt-in)
# The queue the stack delivers events through (functions/delivery.py): deferrals are sent back to it; a record still
# failing on its MAX_RECEIVES-th delivery is notified before SQS moves it to the dead-letter queue (the queue's
# maxReceiveCount).
ENV_QUEUE_URL = "QUEUE_URL"
ENV_MAX_RECEIVES = "MAX_RECEIVES"
DEFAULT_MAX_RECEIVES, MAX_RECEIVES_RANGE = 5, (1, 1000)


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class Config:
    mode: str = "remediate"
    topic_arn: str | None = None
    idempotency_table: str | None = None
    idempotency_ttl_seconds: int = 86400
    tag_prefix: str = DEFAULT_TAG_PREFIX
    exempt_families: tuple[str, ...] = ()
    notify_on: frozenset[str] = field(default_factory=lambda: frozenset(DEFAULT_NOTIFY_ON))
    rollout: bool = False
    retire: bool = False
    # The stack's own principals (its function and sweep roles): a revision they registered can be the stack's copy.
    trusted_principals: tuple[str, ...] = ()
    exemptions_table: str | None = None
    exemption_max_days: int = DEFAULT_EXEMPTION_MAX_DAYS
    tag_exemptions: bool = False  # honour exemption tags, and then only those an approver applied
    exemption_approvers: tuple[str, ...] = ()  # principal ARN patterns (`*` wildcards)
    # A family remediated this many times within the window: the notice escalates (remediation/repeats.py).
    escalate_after: int = DEFAULT_ESCALATE_AFTER
    escalate_window_hours: int = DEFAULT_ESCALATE_WINDOW_HOURS
    rollout_managed: bool = False  # rollout moves services that belong to a CloudFormation stack too (drift)
    security_hub: bool = False  # import each verdict into Security Hub (reports/securityhub.py)
    daemon_rollout: bool = False  # UpdateDaemon onto the verified fixed copy (daemons/rollout.py); never services
    max_receives: int = DEFAULT_MAX_RECEIVES  # the queue's maxReceiveCount (functions/delivery.py)

    @property
    def marker_tag_key(self) -> str:
        """Tag the copy carries, naming the revision it replaces."""
        return f"{self.tag_prefix}:source-revision"

    @property
    def exemption_rules(self) -> ExemptionRules:
        return ExemptionRules(self.tag_prefix, self.exempt_families, self.exemption_max_days, self.tag_exemptions)

    @property
    def exempt_reason_tag_key(self) -> str:
        return f"{self.tag_prefix}:exempt-reason"

    @property
    def exempt_until_tag_key(self) -> str:
        return f"{self.tag_prefix}:exempt-until"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Parse the environment; every error names the variable and the accepted values."""
        mode = _choice(env, ENV_MODE, MODES, "remediate")
        topic_arn = _optional(env, ENV_TOPIC_ARN)
        if topic_arn is not None and not topic_arn.startswith("arn:"):
            raise ConfigError(f"{ENV_TOPIC_ARN}: expected an SNS topic ARN (arn:...:sns:...), got {topic_arn!r}")
        ttl_text = _optional(env, ENV_IDEMPOTENCY_TTL) or "86400"
        try:
            ttl = int(ttl_text)
        except ValueError:
            raise ConfigError(f"{ENV_IDEMPOTENCY_TTL}: expected whole seconds, got {ttl_text!r}") from None
        if ttl < 60:
            raise ConfigError(f"{ENV_IDEMPOTENCY_TTL}: must be at least 60 seconds, got {ttl}")
        prefix = _optional(env, ENV_TAG_PREFIX) or DEFAULT_TAG_PREFIX
        if not _TAG_KEY_PREFIX_RE.match(prefix) or prefix.lower().startswith("aws:"):
            raise ConfigError(
                f"{ENV_TAG_PREFIX}: 1-100 characters of letters, digits, spaces and _ . : / = + - @, "
                f"not starting with 'aws:'; got {prefix!r}"
            )
        notify_on = _list(env, ENV_NOTIFY_ON)
        unknown = [o for o in notify_on if o not in NOTIFIABLE_OUTCOMES]
        if unknown:
            raise ConfigError(
                f"{ENV_NOTIFY_ON}: unknown outcome(s) {', '.join(unknown)}; allowed: {', '.join(NOTIFIABLE_OUTCOMES)}"
            )
        families = tuple(_list(env, ENV_EXEMPT_FAMILIES))
        if families and not _flag(env, ENV_EXEMPT_FAMILIES_ACKNOWLEDGED):
            raise ConfigError(
                f"{ENV_EXEMPT_FAMILIES}: a family glob also exempts families created later, by anyone who can "
                f"register one; set {ENV_EXEMPT_FAMILIES_ACKNOWLEDGED}=true to accept that (or exempt revisions "
                "or image digests in the exemption registry instead)"
            )
        max_days_text = _optional(env, ENV_EXEMPTION_MAX_DAYS) or str(DEFAULT_EXEMPTION_MAX_DAYS)
        if not max_days_text.isdigit() or not 1 <= int(max_days_text) <= 3650:
            raise ConfigError(f"{ENV_EXEMPTION_MAX_DAYS}: expected whole days from 1 to 3650, got {max_days_text!r}")
        if _flag(env, ENV_TAG_EXEMPTIONS) and not _list(env, ENV_EXEMPTION_APPROVERS):
            raise ConfigError(
                f"{ENV_TAG_EXEMPTIONS}: tag exemptions count only when an approver applied them; "
                f"set {ENV_EXEMPTION_APPROVERS} (approver role ARN patterns)"
            )
        trusted = tuple(_list(env, ENV_TRUSTED_PRINCIPALS))
        for principal in trusted:
            if not principal.startswith("arn:"):
                raise ConfigError(f"{ENV_TRUSTED_PRINCIPALS}: expected principal ARNs, got {principal!r}")
        return cls(
            mode=mode,
            topic_arn=topic_arn,
            idempotency_table=_optional(env, ENV_IDEMPOTENCY_TABLE),
            idempotency_ttl_seconds=ttl,
            tag_prefix=prefix,
            exempt_families=families,
            notify_on=frozenset(notify_on) if ENV_NOTIFY_ON in env else frozenset(DEFAULT_NOTIFY_ON),
            rollout=_flag(env, ENV_ROLLOUT),
            retire=_flag(env, ENV_RETIRE),
            trusted_principals=trusted,
            exemptions_table=_optional(env, ENV_EXEMPTIONS_TABLE),
            exemption_max_days=int(max_days_text),
            tag_exemptions=_flag(env, ENV_TAG_EXEMPTIONS),
            exemption_approvers=tuple(_list(env, ENV_EXEMPTION_APPROVERS)),
            **_source_and_findings(env),
            daemon_rollout=_flag(env, ENV_DAEMON_ROLLOUT),
        )


def _source_and_findings(env: Mapping[str, str]) -> dict[str, Any]:
    """Escalation of repeated remediations, rollout of stack-managed services, Security Hub."""
    return {
        "escalate_after": _whole(env, ENV_ESCALATE_AFTER, DEFAULT_ESCALATE_AFTER, ESCALATE_AFTER_RANGE, "remediations"),
        "escalate_window_hours": _whole(
            env, ENV_ESCALATE_WINDOW_HOURS, DEFAULT_ESCALATE_WINDOW_HOURS, ESCALATE_WINDOW_RANGE, "hours"
        ),
        "rollout_managed": _flag(env, ENV_ROLLOUT_MANAGED),
        "security_hub": _flag(env, ENV_SECURITY_HUB),
        "max_receives": _whole(env, ENV_MAX_RECEIVES, DEFAULT_MAX_RECEIVES, MAX_RECEIVES_RANGE, "deliveries"),
    }


def _whole(env: Mapping[str, str], name: str, default: int, bounds: tuple[int, int], unit: str) -> int:
    text = _optional(env, name) or str(default)
    low, high = bounds
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise ConfigError(f"{name}: expected whole {unit} from {low} to {high}, got {text!r}")
    return int(text)


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = (_optional(env, name) or default).lower()
    if value not in allowed:
        raise ConfigError(f"{name}: expected one of {', '.join(allowed)}, got {env.get(name)!r}")
    return value


def _list(env: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in env.get(name, "").split(",") if item.strip()]


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = (_optional(env, name) or "false").lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name}: expected true or false, got {env.get(name)!r}")
