"""The organization hub's function: a member account's event handled in that account, through its member role.

On when MEMBER_ROLE_NAME is set (the hub stack sets it); `handler.handle_event` hands every event here then, routed
(core/routing.py: its kind, in the MEMBER context of the envelope's account and Region). The hub adds the member
account's session to the paths the single-account function takes; it classifies nothing itself.

- Where: the account is the envelope's `account`, which EventBridge sets to the account that put the event on the
  bus (a member cannot speak for another), and the Region is the envelope's `region`. A revision ARN naming another
  account or Region than the sending one is refused: nothing is read or written in any account, and the refusal is
  logged, counted and notified.
- How: the same Remediator as the single-account function (decide, copy once, read back, notify, rollout, retire),
  built per (account, Region) from that account's member-role clients (accounts.MemberAccounts: one AssumeRole per
  account per credential lifetime, the credentials' account checked) and cached for the process. The idempotency
  table (and its ledger of copies), the exemption registry and the topic stay the hub's own. The copies the member
  role registers are the stack's own there: that account's Remediator trusts `role/<member role>` of that account.
- When the member role cannot be used: permanently (missing, AccessDenied, credentials of another account) a
  failure notice naming the account and Region, nothing written, and the event is not retried (the answer would
  be the same until someone deploys the role); transiently (throttled, 5xx, network) the error is raised, so
  Lambda retries the event and then sends it to the dead-letter queue.
- Notices name the account, its name from Organizations when the hub can read it, and the Region
  (organization/notice.py).
- Daemon events (the router's daemon kinds) take the same boundaries and the same per-(account, Region) machinery
  into the daemon path: functions/handler.py hands them to organization/hub_daemons.py, which builds on this runtime
  (so this module never imports it: no cycle).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from botocore.config import Config as BotoConfig

from ..adapters import aws
from ..adapters.exemption_registry import ExemptionRegistry
from ..core.config import ENV_IDEMPOTENCY_TABLE, ENV_MEMBER_ROLE_NAME, Config, ConfigError
from ..core.events import Registration, Skip, Unidentified, parse_registration_event
from ..core.exemptions.evaluate import ExemptionSource
from ..core.message import Message
from ..core.notice import build_message
from ..core.outcomes import FAILED, SKIPPED, Result
from ..core.routing import UNROUTABLE, Route, valid_account
from ..core.taskdef import TASK_DEFINITION_ARN_RE
from ..remediation.remediator import Remediator
from ..remediation.rollout import ReferenceFinder
from .account_names import AccountNames
from .member_accounts import MemberAccessTransient, MemberAccounts, MemberRoleUnavailable
from .notice import AccountTopic

logger = Logger(child=True)
metrics = Metrics()

# A member's ECS calls from the hub's event path: one retry, then the record is deferred (functions/delivery.py) instead
# of waiting out that member's throttling inside an invocation that other members' events share.
MEMBER_ECS_CONFIG = aws.BOTO_CONFIG.merge(BotoConfig(retries={"mode": "standard", "max_attempts": 2}))
NOTICE_KEY_PREFIX = "ecs-remediate-hub-notice"  # a refusal or an unusable role is notified once per event
# parse_registration_event's reason for a revision outside the sending account (core/events.py).
_FOREIGN_ACCOUNT = "foreign account"

Record = Callable[[dict[str, Any]], None]
# notice.build_message, or daemons.notice.build_daemon_message: (result, region=..., account=...) -> Message
BuildMessage = Callable[..., Message]


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Hub mode: MEMBER_ROLE_NAME is set (the hub stack sets it; the single-account stack does not)."""
    return bool((os.environ if environ is None else environ).get(ENV_MEMBER_ROLE_NAME, "").strip())


class HubRuntime:
    """What the hub function keeps across invocations: member credentials, one Remediator per (account, Region),
    account names, and its own table, registry and topic."""

    def __init__(
        self,
        config: Config,
        members: MemberAccounts,
        *,
        dynamodb: Any,
        sns: Any | None,
        names: AccountNames,
        registry: ExemptionSource | None = None,
    ) -> None:
        if config.idempotency_table is None:
            raise ConfigError(f"{ENV_IDEMPOTENCY_TABLE}: required by the function (the idempotency table name)")
        self.config, self.members, self.names, self.registry = config, members, names, registry
        self.table: str = config.idempotency_table
        self._dynamodb, self._sns = dynamodb, sns if config.topic_arn else None
        self._remediators: dict[tuple[str, ...], Remediator] = {}
        self._lock = threading.Lock()
        self._notice_idempotency = IdempotencyConfig(
            event_key_jmespath="key",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=config.idempotency_ttl_seconds,
        )
        self._publish_once: Callable[..., dict[str, Any]] = idempotent_function(
            data_keyword_argument="request",
            persistence_store=DynamoDBPersistenceLayer(table_name=self.table, boto3_client=dynamodb),
            config=self._notice_idempotency,
            key_prefix=NOTICE_KEY_PREFIX,
        )(self._publish)

    @classmethod
    def from_env(cls, config: Config, environ: Mapping[str, str] | None = None) -> HubRuntime:
        """The function's own clients (its Region, its role) for the table, registry, topic and Organizations."""
        dynamodb = aws.client("dynamodb")
        registry = ExemptionRegistry(dynamodb, config.exemptions_table) if config.exemptions_table else None
        return cls(
            config,
            MemberAccounts.from_env(environ),
            dynamodb=dynamodb,
            sns=aws.client("sns") if config.topic_arn else None,
            names=AccountNames(lambda: aws.client("organizations"), dynamodb=dynamodb, table=config.idempotency_table),
            registry=registry,
        )

    # ---------------------------------------------------------------------------------------------------------

    def handle(self, routed: Route, event: Any, context: Any, record: Record) -> dict[str, Any]:
        """One routed event (MEMBER context), as `handler.handle_event` for the single account: `record` logs the
        outcome and counts it. Raises RemediationFailed (after its notice, as the single-account path) and
        MemberAccessTransient."""
        # A registration, or what the router could not route (skipped with its reason): the sending account is
        # checked against the revision's by the parser, the Region by the router's boundary (Route.foreign).
        parsed = Skip(routed.reason) if routed.kind == UNROUTABLE else parse_registration_event(event)
        if isinstance(parsed, Skip):
            if parsed.reason.startswith(_FOREIGN_ACCOUNT):
                return self._refuse(routed, event, parsed.reason, context)
            logger.info("skipped event", extra={"outcome": SKIPPED, "reason": parsed.reason})
            metrics.add_metric(name="Skipped", unit=MetricUnit.Count, value=1)
            return {"outcome": SKIPPED, "reason": parsed.reason}
        if not routed.envelope_valid:
            return self._refuse(routed, event, "the envelope names no valid sending account and Region", context)
        if routed.foreign:
            return self._refuse(routed, event, routed.foreign, context)
        sender, region = routed.account, routed.region
        logger.append_keys(account=sender, region=region)
        try:
            return self._act(parsed, sender, region, context, record)
        finally:
            logger.remove_keys(["account", "region"])

    def remediator(self, account: str, region: str) -> Remediator:
        """The Remediator acting in `account` and `region` through its member role (built once per process).
        Raises MemberRoleUnavailable or MemberAccessTransient when the role cannot be assumed."""
        return self.once(
            (account, region),
            lambda: Remediator(
                self.config_for(account),
                aws.Ecs(self.members.new_client("ecs", account, region, MEMBER_ECS_CONFIG)),
                self.member_topic(account, region),
                self.persistence(),
                registry=self.registry,
                references=self._references(account, region),
                fix_latest_on_sight=True,
            ),
        )

    def once(self, key: tuple[str, ...], build: Callable[[], Remediator]) -> Remediator:
        """The Remediator cached under `key` (an account and Region, with a kind for the daemon path), built once."""
        with self._lock:
            if key in self._remediators:
                return self._remediators[key]
        built = build()
        with self._lock:
            return self._remediators.setdefault(key, built)

    def member_topic(self, account: str, region: str) -> AccountTopic | None:
        """The hub's topic, naming `account` (and its name) and `region` in every notice."""
        if self._sns is None or not self.config.topic_arn:
            return None
        return AccountTopic(self._sns, self.config.topic_arn, account=account, region=region, name_of=self.names.name)

    def persistence(self) -> DynamoDBPersistenceLayer:
        """The hub's idempotency table (copies, ledger, notices), whichever account the Remediator acts in."""
        return DynamoDBPersistenceLayer(table_name=self.table, boto3_client=self._dynamodb)

    def config_for(self, account: str) -> Config:
        """The hub's configuration, trusting that account's member role as the registrant of the stack's copies."""
        return replace(self.config, trusted_principals=(self.members.role_arn(account),))

    # ---------------------------------------------------------------------------------------------------------

    def _act(
        self, parsed: Registration | Unidentified, account: str, region: str, context: Any, record: Record
    ) -> dict[str, Any]:
        registration = parsed.registration if isinstance(parsed, Unidentified) else parsed
        try:
            remediator = self.remediator(account, region)
            remediator.register_lambda_context(context)
            result = remediator.identify(parsed) if isinstance(parsed, Unidentified) else remediator.process(parsed)
        except MemberRoleUnavailable as error:
            failure, key = self._failure(registration, account, region), _event_key(registration)
            where = {"account": account, "region": region, "context": context, "key": key}
            return self.role_unavailable(error, failure, build_message, **where, record=lambda r: record(r.to_dict()))
        except MemberAccessTransient as error:
            self.transient(error)
            raise
        summary = result.to_dict()
        record(summary)
        keys = ("outcome", "task_definition_arn", "new_task_definition_arn", "privileged", "reason")
        return {**{k: summary[k] for k in keys}, "account": account, "region": region}

    def role_unavailable(
        self,
        error: MemberRoleUnavailable,
        result: Result,
        build: BuildMessage,
        *,
        account: str,
        region: str,
        context: Any,
        key: str,
        record: Callable[[Result], None],
    ) -> dict[str, Any]:
        """The member role cannot be used for good: `result` (FAILED) says so in a notice, nothing is retried."""
        result.error_code, result.error_message = "MemberRoleUnavailable", str(error)[:1000]
        result.reason = (
            f"the hub cannot act in account {account}: its member role {error.role_arn} cannot be assumed "
            f"({error.code}); nothing was read or changed in {account} {region}. Deploy the member stack there "
            "(the StackSet covers the target OUs; the management account needs it as a plain stack) or fix the "
            "role's trust policy, then sweep the account: ecs-remediate scan --accounts " + account
        )
        metrics.add_metric(name="MemberRoleUnavailable", unit=MetricUnit.Count, value=1)
        self._notify(result, build, account, region, context, key=f"role|{account}|{region}|{key}")
        record(result)
        return {
            "outcome": FAILED,
            "task_definition_arn": result.task_definition_arn,
            "new_task_definition_arn": None,
            "privileged": [],
            "reason": result.reason,
            "account": account,
            "region": region,
        }

    @staticmethod
    def transient(error: MemberAccessTransient) -> None:
        """Logged and counted; the caller raises, so that Lambda retries the event (then the dead-letter queue)."""
        logger.warning("member role not reachable now; the event is retried", extra={"error_code": error.code})
        metrics.add_metric(name="MemberAccessTransient", unit=MetricUnit.Count, value=1)

    def _refuse(self, routed: Route, event: Any, reason: str, context: Any) -> dict[str, Any]:
        """A revision outside the sending account or Region, or an envelope without them: nothing is done anywhere."""
        envelope = event if isinstance(event, dict) else {}
        sender, region = routed.account, routed.region
        # Described as if nobody had sent it (no account or Region to match): only to say what it claimed.
        described = parse_registration_event({**envelope, "account": "", "region": ""}) if envelope else None
        registration = described.registration if isinstance(described, Unidentified) else described
        if not isinstance(registration, Registration):
            registration = Registration(task_definition_arn="")
        result = self._failure(registration, sender, region)
        where = {"sender": sender, "region": region, "context": context, "key": _event_key(registration)}
        return self.refuse(result, build_message, reason, **where)

    def refuse(
        self, result: Result, build: BuildMessage, reason: str, *, sender: str, region: str, context: Any, key: str
    ) -> dict[str, Any]:
        """Logged, counted and notified once (`result`, FAILED, without next commands); nothing done anywhere."""
        logger.warning("refused event", extra={"outcome": SKIPPED, "reason": reason, "account": sender})
        metrics.add_metric(name="Skipped", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="Refused", unit=MetricUnit.Count, value=1)
        if reason.startswith(_FOREIGN_ACCOUNT):
            metrics.add_metric(name="ForeignAccount", unit=MetricUnit.Count, value=1)
        result.error_code, result.error_message = "Refused", reason[:1000]
        result.reason = (
            f"refused: {reason}. The hub acts only in the account and Region that sent the event; nothing was "
            "read or changed in any account. A CloudTrail event cannot name another account's revision: look "
            "at who put this event on the hub's bus"
        )
        self._notify(result, build, sender, region, context, key=f"refused|{sender}|{region}|{key}", commands=False)
        return {"outcome": SKIPPED, "reason": reason, "refused": True, "account": sender, "region": region}

    def _failure(self, registration: Registration, account: str, region: str) -> Result:
        arn = registration.task_definition_arn
        match = TASK_DEFINITION_ARN_RE.match(arn)
        family, revision = (match["family"], int(match["revision"])) if match else (registration.family, 0)
        return Result(FAILED, arn, family, revision, registration=replace(registration, account=account, region=region))

    def _notify(
        self,
        result: Result,
        build: BuildMessage,
        account: str,
        region: str,
        context: Any,
        *,
        key: str,
        commands: bool = True,
    ) -> None:
        if self._sns is None or not self.config.topic_arn or FAILED not in self.config.notify_on:
            return
        message = build(result, region=region, account=account)
        if not commands:  # the usual next steps (copy the revision) would act on what was refused
            message = _without_next_commands(message)
        self._notice_idempotency.register_lambda_context(context)
        self._publish_once(request={"key": key}, message=message, account=account, region=region)

    def _publish(self, request: dict[str, Any], message: Message, account: str, region: str) -> dict[str, Any]:
        assert self._sns is not None and self.config.topic_arn
        names = self.names.name if valid_account(account) else (lambda _: "")
        topic = AccountTopic(
            self._sns, self.config.topic_arn, account=account or "unknown", region=region, name_of=names
        )
        return {"messageId": topic.publish(message)}

    def _references(self, account: str, region: str) -> ReferenceFinder | None:
        """Retire's lookup of rule targets and schedules, in the member account (only when retire is on)."""
        if not (self.config.retire and self.config.mode == "remediate"):
            return None
        from ..remediation.references import References  # noqa: PLC0415 - only retiring functions pay for it

        return References(
            self.members.client("events", account, region), self.members.client("scheduler", account, region)
        )


def _event_key(registration: Registration) -> str:
    return registration.task_definition_arn or registration.event_id or registration.family


def _without_next_commands(message: Message) -> Message:
    text = message.text.split("\nNext:\n", 1)[0].rstrip("\n") + "\n"
    return Message(message.subject, text, {**message.payload, "nextCommands": []}, message.attributes)


__all__ = ["NOTICE_KEY_PREFIX", "HubRuntime", "enabled"]
