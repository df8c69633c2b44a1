"""Organization settings: the context keys of the hub stack (`-c organization=true`), validated in one place.

Read once in app.py through `OrgSettings.from_context`; a bad or missing value raises ContextError naming the key,
which fails `cdk synth` before anything is built (as infra/settings.py does for the stack's other keys).

  organization          true selects the hub stack (absent or false: the single-account stack, unchanged)
  organizationId        o-xxxxxxxxxx: the bus policy admits this organization, the member role trusts it
  targetOus             OU ids (ou-xxxx-xxxxxxxx, or the root r-xxxx) the member StackSet deploys to
  regions               Region names of the member rules
  memberRoleRegion      the one Region whose stack instance creates the member role (IAM is global), one of regions;
                        default: the hub's Region when it is among regions (decided at deploy), else the first listed.
                        Pinned, so that changing or reordering regions never deletes the role under running stacks
  excludedAccounts      account ids in those OUs that get no member stack
  memberRoleName        the member role's name (default ecs-remediate-member)
  stackSetCallAs        SELF (hub in the management account, default) or DELEGATED_ADMIN
  guardrail             off (default), print (writes the SCP at synth), attach (creates it, attached to targetOus)
  organizationsDelegatedAdmin  true: the hub account is an AWS Organizations delegated administrator for policies;
                        guardrail=attach with stackSetCallAs=DELEGATED_ADMIN is refused without it
  breakGlassPrincipals  principal ARN patterns the guardrail lets register privileged task definitions
  exemptionApprovers    principal ARN patterns the guardrail lets set or remove exemption tags
  memberTemplate        true also synthesizes the member template as a plain stack (for the management account)
  sweepSchedule         with organization=true: the organization sweep on Step Functions (infra/org_sweep.py) on
                        this schedule, daily by default as the single-account stack's; off builds none and gives up
                        the backstop for events that never arrive (sweepScope as for the single-account sweep)
  orgSweepConcurrency   (account, Region) items swept at once by the sweep's Distributed Map (default 25)
  orgSweepReportDays    days the sweep's reports are kept in its bucket (default 90)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ecs_remediate.organization.guardrail import GuardrailError, build_guardrail, member_role_pattern
from ecs_remediate.organization.member_accounts import DEFAULT_MEMBER_ROLE_NAME, check_role_name

from .settings import (
    CTX_BREAK_GLASS,
    CTX_EXCLUDED_ACCOUNTS,
    CTX_EXEMPTION_APPROVERS,
    CTX_GUARDRAIL,
    CTX_MEMBER_ROLE_NAME,
    CTX_MEMBER_ROLE_REGION,
    CTX_MEMBER_TEMPLATE,
    CTX_ORG_SWEEP_CONCURRENCY,
    CTX_ORG_SWEEP_REPORT_DAYS,
    CTX_ORGANIZATION,
    CTX_ORGANIZATION_ID,
    CTX_ORGANIZATIONS_DELEGATED_ADMIN,
    CTX_REGIONS,
    CTX_STACK_SET_CALL_AS,
    CTX_SWEEP_INVENTORY,
    CTX_TARGET_OUS,
    ORG_CONTEXT_KEYS,
    ContextError,
    _boolean,
    _choice,
    _integer,
    _string_list,
)
from .sweep_schedule import SweepSettings

# Items in flight by default: the highest setting bench/org_sweep.py measured within 1.2x of the floor x waves (1.18x
# at 25; past 25 its one-process emulator is CPU-bound, docs/org-sweep.md#measured), and 2.5% of a Region's default
# Lambda concurrency (1,000), so a sweep never starves the remediation function. Large organizations raise it.
DEFAULT_ORG_SWEEP_CONCURRENCY = 25
MAX_ORG_SWEEP_CONCURRENCY = 10_000  # a Distributed Map's limit on parallel child executions
DEFAULT_ORG_SWEEP_REPORT_DAYS = 90
GUARDRAIL_MODES = ("off", "print", "attach")
CALL_AS = ("SELF", "DELEGATED_ADMIN")
FORWARDING_QUEUE_SUFFIX = "-forwarding-dlq"
# StackSets take at most 50 OUs in one CreateStackInstances call.
MAX_TARGET_OUS = 50

# The patterns of the Organizations and IAM APIs.
_ORGANIZATION_ID_RE = re.compile(r"^o-[a-z0-9]{10,32}$")
_OU_ID_RE = re.compile(r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")


def organization_selected(get: Callable[[str], Any]) -> bool:
    """True when the context asks for the hub stack (`organization=true`)."""
    value = get(CTX_ORGANIZATION)
    return value is not None and _boolean({CTX_ORGANIZATION: value}, CTX_ORGANIZATION)


@dataclass(frozen=True, kw_only=True)
class OrgSettings:
    organization_id: str
    target_ous: tuple[str, ...]
    regions: tuple[str, ...]
    excluded_accounts: tuple[str, ...] = ()
    member_role_name: str = DEFAULT_MEMBER_ROLE_NAME
    member_role_region: str | None = None  # memberRoleRegion; None: the hub's Region when targeted, else regions[0]
    stack_set_call_as: str = "SELF"
    guardrail: str = "off"
    organizations_delegated_admin: bool = False
    break_glass_principals: tuple[str, ...] = ()
    exemption_approvers: tuple[str, ...] = ()
    member_template: bool = False
    sweep: SweepSettings = field(default_factory=lambda: SweepSettings(schedule=None))  # None schedule: no sweep
    sweep_concurrency: int = DEFAULT_ORG_SWEEP_CONCURRENCY
    report_days: int = DEFAULT_ORG_SWEEP_REPORT_DAYS

    @property
    def fallback_role_region(self) -> str:
        """IAM is global: the member role is created once per account, by the stack instance of one Region. This one
        when memberRoleRegion is set, or when the hub's Region (known only at deploy) is not among `regions`."""
        return self.member_role_region or self.regions[0]

    @property
    def forwarding_queue_name(self) -> str:
        """The members' forwarding dead-letter queue, one per account and Region under this name (infra/
        member_forwarding.py): the member role's name in SQS's characters (letters, digits, - and _; 80 at most)."""
        stem = re.sub(r"[^A-Za-z0-9_-]", "-", self.member_role_name)
        return stem[: 80 - len(FORWARDING_QUEUE_SUFFIX)] + FORWARDING_QUEUE_SUFFIX

    def guardrail_policy(self, tag_prefix: str) -> dict[str, Any]:
        """The guardrail SCP for these settings (the same document `ecs-remediate guardrail` prints)."""
        return build_guardrail(
            tag_prefix=tag_prefix,
            break_glass=self.break_glass_principals,
            approvers=self.exemption_approvers,
            remediation_roles=[member_role_pattern(self.member_role_name)],
        )

    @classmethod
    def from_context(cls, get: Callable[[str], Any], *, tag_prefix: str) -> OrgSettings:
        raw = {key: get(key) for key in ORG_CONTEXT_KEYS}
        return cls.from_mapping({k: v for k, v in raw.items() if v is not None}, tag_prefix=tag_prefix)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, tag_prefix: str) -> OrgSettings:
        organization_id = values.get(CTX_ORGANIZATION_ID)
        if not isinstance(organization_id, str) or not _ORGANIZATION_ID_RE.match(organization_id.strip()):
            raise ContextError(
                f"{CTX_ORGANIZATION_ID}: expected an organization id (o- and 10-32 lowercase letters or digits), "
                f"got {organization_id!r}"
            )
        ous = _required_list(values, CTX_TARGET_OUS, _OU_ID_RE, "an OU id (ou-xxxx-xxxxxxxx) or the root id (r-xxxx)")
        if len(ous) > MAX_TARGET_OUS:
            raise ContextError(f"{CTX_TARGET_OUS}: at most {MAX_TARGET_OUS} OUs (a StackSets limit), got {len(ous)}")
        regions = _required_list(values, CTX_REGIONS, _REGION_RE, "a Region name such as us-east-1")
        excluded = _list(values, CTX_EXCLUDED_ACCOUNTS, _ACCOUNT_RE, "a 12-digit account id")
        role_region = _role_region(values, regions)
        role_name = values.get(CTX_MEMBER_ROLE_NAME, DEFAULT_MEMBER_ROLE_NAME)
        try:
            role_name = check_role_name(str(role_name).strip())
        except ValueError as error:
            raise ContextError(f"{CTX_MEMBER_ROLE_NAME}: {error}") from None
        settings = cls(
            organization_id=organization_id.strip(),
            target_ous=ous,
            regions=regions,
            excluded_accounts=excluded,
            member_role_name=role_name,
            member_role_region=role_region,
            stack_set_call_as=_choice(values, CTX_STACK_SET_CALL_AS, CALL_AS, "SELF", upper=True),
            guardrail=_choice(values, CTX_GUARDRAIL, GUARDRAIL_MODES, "off"),
            organizations_delegated_admin=_boolean(values, CTX_ORGANIZATIONS_DELEGATED_ADMIN),
            break_glass_principals=tuple(_string_list(values, CTX_BREAK_GLASS)),
            exemption_approvers=tuple(_string_list(values, CTX_EXEMPTION_APPROVERS)),
            member_template=_boolean(values, CTX_MEMBER_TEMPLATE),
            sweep=_org_sweep(values),
            sweep_concurrency=_bounded(
                values, CTX_ORG_SWEEP_CONCURRENCY, DEFAULT_ORG_SWEEP_CONCURRENCY, 1, MAX_ORG_SWEEP_CONCURRENCY
            ),
            report_days=_bounded(values, CTX_ORG_SWEEP_REPORT_DAYS, DEFAULT_ORG_SWEEP_REPORT_DAYS, 1, 3650),
        )
        _check_guardrail_delegation(settings)
        try:  # the guardrail's inputs are checked whatever the mode, so that print and attach never fail later
            settings.guardrail_policy(tag_prefix)
        except GuardrailError as error:
            message = str(error)
            key = CTX_BREAK_GLASS if message.startswith("break-glass") else CTX_EXEMPTION_APPROVERS
            if message.startswith("the guardrail SCP would be"):
                key = f"{CTX_BREAK_GLASS}/{CTX_EXEMPTION_APPROVERS}"
            raise ContextError(f"{key}: {message}") from None
        return settings


def _check_guardrail_delegation(settings: OrgSettings) -> None:
    """An SCP is created and attached only by the management account or an AWS Organizations delegated administrator
    for policies (and only once the SCP policy type is enabled in the root). A StackSets delegated administrator is a
    different delegation: without the account saying it holds both, the hub deploy would fail on the policy and roll
    back as a whole."""
    delegated = settings.stack_set_call_as == "DELEGATED_ADMIN"
    if settings.guardrail == "attach" and delegated and not settings.organizations_delegated_admin:
        raise ContextError(
            f"{CTX_GUARDRAIL}: attach creates the SCP, which only the management account or an AWS Organizations "
            f"delegated administrator for policies may do, and {CTX_STACK_SET_CALL_AS}=DELEGATED_ADMIN makes this "
            "a StackSets delegated administrator (another delegation); add "
            f"-c {CTX_ORGANIZATIONS_DELEGATED_ADMIN}=true once the management account has delegated policy management "
            "to this account, or use guardrail=print and attach the SCP from the management account"
        )


def _role_region(values: Mapping[str, Any], regions: tuple[str, ...]) -> str | None:
    """memberRoleRegion: one of `regions` (elsewhere no stack instance would create the role), or None."""
    value = values.get(CTX_MEMBER_ROLE_REGION)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    region = value.strip() if isinstance(value, str) else value
    if not isinstance(region, str) or region not in regions:
        raise ContextError(
            f"{CTX_MEMBER_ROLE_REGION}: expected one of the {CTX_REGIONS} ({', '.join(regions)}), the Region whose "
            f"stack instance creates the member role; got {region!r}"
        )
    return region


def _org_sweep(values: Mapping[str, Any]) -> SweepSettings:
    """The hub's sweep: daily unless sweepSchedule says otherwise, as the single-account stack's (events are best
    effort: the sweep is what finds a revision whose event was lost, dropped or never delivered)."""
    sweep = SweepSettings.from_context(values.get)
    if sweep.schedule is not None and sweep.inventory != "describe":
        raise ContextError(
            f"{CTX_SWEEP_INVENTORY}: the organization sweep describes every revision (describe); the Config path "
            "is for the single-account sweep and `ecs-remediate scan`"
        )
    return sweep


def _bounded(values: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = _integer(values, key, default)
    if not low <= value <= high:
        raise ContextError(f"{key}: expected {low}-{high}, got {value}")
    return value


def _list(values: Mapping[str, Any], key: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    items = _string_list(values, key)
    bad = [item for item in items if not pattern.match(item)]
    if bad:
        raise ContextError(f"{key}: {bad[0]!r} is not {what}")
    return tuple(dict.fromkeys(items))


def _required_list(values: Mapping[str, Any], key: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    items = _list(values, key, pattern, what)
    if not items:
        raise ContextError(f"{key}: required with organization=true: one or more of {what}, comma-separated")
    return items
