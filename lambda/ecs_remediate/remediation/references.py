"""What names a task definition revision besides services: EventBridge rule targets and EventBridge Scheduler
schedules. Retire must not deregister a revision that one of them runs (issue 10, finding 7).

Fail-closed: any listing error raises `ReferenceLookupFailed` (after botocore's own retries of transient errors,
so build the clients with `aws.BOTO_CONFIG`, as `References.for_region` does), and the caller refuses to retire.
What this does not check (RunTask from scripts or CI, Step Functions, Batch, Pipes, ...) is in
docs/retire-references.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..adapters import aws
from ..adapters.aws import BotoCoreError, ClientError, error_code
from ..core.taskdef import TASK_DEFINITION_ARN_RE, TaskDefinitionError

EVENTBRIDGE_RULE, SCHEDULER_SCHEDULE = "eventbridge-rule", "scheduler-schedule"
REVISION, LATEST = "revision", "latest"  # how a reference names a revision (see `names`)
MAX_PAGES = 10_000  # per listing; a service that never stops paging is an error, not a hang

# (action, resource, why). `{partition}`, `{region}`, `{account}` are the function's own.
IAM_ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("events:ListEventBuses", "*", "a List action without a resource type: it takes only *"),
    ("events:ListRules", "*", "a List action without a resource type: it takes only *"),
    (
        "events:ListTargetsByRule",
        "arn:{partition}:events:{region}:{account}:rule/*",
        "rules on the default bus (rule/NAME) and on custom buses (rule/BUS/NAME), this account and Region",
    ),
    ("scheduler:ListScheduleGroups", "*", "a List action without a resource type: it takes only *"),
    ("scheduler:ListSchedules", "*", "a List action without a resource type: it takes only *"),
    (
        "scheduler:GetSchedule",
        "arn:{partition}:scheduler:{region}:{account}:schedule/*/*",
        "schedules of every group (schedule/GROUP/NAME), this account and Region",
    ),
)


def iam_statements(partition: str, region: str, account: str) -> list[dict[str, Any]]:
    """IAM policy statements granting `IAM_ACTIONS`, one per resource."""
    by_resource: dict[str, list[str]] = {}
    for action, resource, _ in IAM_ACTIONS:
        arn = resource.format(partition=partition, region=region, account=account)
        by_resource.setdefault(arn, []).append(action)
    return [{"Effect": "Allow", "Action": actions, "Resource": arn} for arn, actions in by_resource.items()]


class ReferenceLookupFailed(Exception):
    """A listing failed: whether anything names the revision is unknown, so it must not be retired."""

    def __init__(self, operation: str, error: BaseException | str) -> None:
        detail = error_code(error) if isinstance(error, BaseException) else error
        super().__init__(f"{operation} failed ({detail}): cannot tell what runs the revision")
        self.operation = operation
        self.error = error


@dataclass(frozen=True)
class Reference:
    """A rule target or a schedule that runs a task definition."""

    kind: str  # eventbridge-rule | scheduler-schedule
    bus_or_group: str  # the rule's event bus, or the schedule's group
    name: str  # the rule or schedule name
    target_id: str | None  # the rule target's Id; None for a schedule (one target each)
    task_definition: str  # what it names, as written (ARN, family:revision, family ARN, family)
    latest: bool  # True: a family without a revision, which ECS resolves to the latest ACTIVE revision at run time
    state: str  # ENABLED | DISABLED (a disabled one still counts: enabling it again would break it)

    def blocks_retire(self, revision_is_latest_active: bool) -> bool:
        """Whether deregistering the revision changes what this runs. A revision reference always; a family
        reference only while the revision is the family's latest ACTIVE one (deregistering it would silently
        move the rule or schedule to the previous ACTIVE revision, or break it when none is left). A revision
        that a newer one superseded (the usual case: the fixed copy follows its source) is not what a family
        reference runs, so retiring it changes nothing there."""
        return not self.latest or revision_is_latest_active

    @property
    def text(self) -> str:
        what = "EventBridge rule" if self.kind == EVENTBRIDGE_RULE else "EventBridge Scheduler schedule"
        where = "on bus" if self.kind == EVENTBRIDGE_RULE else "in group"
        target = f" target {self.target_id}" if self.target_id is not None else ""
        latest = " (the family's latest ACTIVE revision)" if self.latest else ""
        return f"{what} {self.name} {where} {self.bus_or_group}{target} runs {self.task_definition}{latest}"


def blocking(references: list[Reference], revision_is_latest_active: bool) -> list[Reference]:
    return [r for r in references if r.blocks_retire(revision_is_latest_active)]


@dataclass(frozen=True)
class _Revision:
    partition: str
    region: str
    account: str
    family: str
    revision: int


# What a reference may be: a task definition ARN with or without a revision, family:revision, or a family.
# Leading zeros are accepted on purpose (fail closed: "web:03" may well be read as web:3).
_REFERENCE_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):ecs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"task-definition/(?P<family>[A-Za-z0-9_-]{1,255})(?::(?P<revision>\d+))?\Z",
    re.ASCII,
)
_FAMILY_RE = re.compile(r"^(?P<family>[A-Za-z0-9_-]{1,255})(?::(?P<revision>\d+))?\Z", re.ASCII)
# A schedule's target that can run or use a task definition: an ECS cluster (EcsParameters), or a universal
# target calling the ECS API (aws-sdk:ecs:runTask and the like, with the request in Input).
_ECS_CLUSTER_RE = re.compile(r"^arn:aws[a-z-]*:ecs:[^:]*:\d{12}:cluster/", re.ASCII)
_ECS_UNIVERSAL_RE = re.compile(r"^arn:aws[a-z-]*:scheduler:::aws-sdk:ecs:", re.ASCII)


def names(reference: Any, revision: str) -> str | None:
    """How `reference` (what a rule or schedule names: RunTask takes an ARN, family:revision or family) relates
    to the revision ARN `revision`: REVISION when it names that revision (its ARN, or family:revision), LATEST
    when it names the family without a revision (ECS runs the latest ACTIVE one), None when it names anything
    else (another revision, family, account, Region or partition). Raises TaskDefinitionError if `revision` is
    not a revision ARN."""
    target = _revision(revision)
    if not isinstance(reference, str):
        return None
    if match := _REFERENCE_ARN_RE.match(reference):
        if not _same_place(match, target):
            return None
    elif not (match := _FAMILY_RE.match(reference)):
        return None
    if match["family"] != target.family:
        return None
    if match["revision"] is None:
        return LATEST
    return REVISION if int(match["revision"]) == target.revision else None


class References:
    """events:List* and scheduler:List*/GetSchedule over this account and Region (see IAM_ACTIONS)."""

    def __init__(self, events_client: Any, scheduler_client: Any) -> None:
        self._events = events_client
        self._scheduler = scheduler_client

    @classmethod
    def for_region(cls, region: str | None = None) -> References:
        """With the adapters' shared clients (BOTO_CONFIG: standard retries of throttling and 5xx)."""
        return cls(aws.client("events", region), aws.client("scheduler", region))

    def find(self, task_definition_arn: str) -> list[Reference]:
        """Every EventBridge rule target and Scheduler schedule that names the revision or its family (see
        `names`), over every bus, rule, group and schedule, every page. Raises ReferenceLookupFailed."""
        _revision(task_definition_arn)  # a clear error before any call
        return [*self._rule_targets(task_definition_arn), *self._schedules(task_definition_arn)]

    def _rule_targets(self, arn: str) -> Iterator[Reference]:
        for bus in self._pages(self._events.list_event_buses, "ListEventBuses", "EventBuses"):
            bus_name = str(bus.get("Name", ""))
            for rule in self._pages(self._events.list_rules, "ListRules", "Rules", EventBusName=bus_name):
                rule_name = str(rule.get("Name", ""))
                targets = self._pages(
                    self._events.list_targets_by_rule,
                    "ListTargetsByRule",
                    "Targets",
                    gone_ok=True,  # the rule was deleted since ListRules: it runs nothing
                    Rule=rule_name,
                    EventBusName=bus_name,
                )
                for target in targets:
                    named = str((target.get("EcsParameters") or {}).get("TaskDefinitionArn", ""))
                    relation = names(named, arn) if named else None
                    if relation is not None:
                        state = str(rule.get("State", ""))
                        target_id = str(target.get("Id", ""))
                        latest = relation == LATEST
                        yield Reference(EVENTBRIDGE_RULE, bus_name, rule_name, target_id, named, latest, state)

    def _schedules(self, arn: str) -> Iterator[Reference]:
        for group in self._pages(self._scheduler.list_schedule_groups, "ListScheduleGroups", "ScheduleGroups"):
            group_name = str(group.get("Name", ""))
            for summary in self._pages(
                self._scheduler.list_schedules, "ListSchedules", "Schedules", GroupName=group_name
            ):
                target_arn = (summary.get("Target") or {}).get("Arn")
                if isinstance(target_arn, str) and not (
                    _ECS_CLUSTER_RE.match(target_arn) or _ECS_UNIVERSAL_RE.match(target_arn)
                ):
                    continue  # a target that cannot run a task definition (no Target in the summary: look)
                schedule = self._get_schedule(group_name, str(summary.get("Name", "")))
                if schedule is None:
                    continue
                for named in _schedule_task_definitions(schedule.get("Target") or {}):
                    relation = names(named, arn)
                    if relation is not None:
                        state = str(schedule.get("State", ""))
                        name = str(schedule.get("Name", ""))
                        latest = relation == LATEST
                        yield Reference(SCHEDULER_SCHEDULE, group_name, name, None, named, latest, state)

    def _get_schedule(self, group: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(self._scheduler.get_schedule(GroupName=group, Name=name))
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return None  # deleted since ListSchedules: it runs nothing
            raise ReferenceLookupFailed("GetSchedule", error) from error
        except BotoCoreError as error:
            raise ReferenceLookupFailed("GetSchedule", error) from error

    @staticmethod
    def _pages(
        call: Callable[..., Any], operation: str, key: str, *, gone_ok: bool = False, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """Every item of every page, following NextToken; a repeated token or MAX_PAGES pages is a failure."""
        seen: set[str] = set()
        token: str | None = None
        for _ in range(MAX_PAGES):
            try:
                page = call(**kwargs, **({"NextToken": token} if token else {}))
            except ClientError as error:
                if gone_ok and error_code(error) == "ResourceNotFoundException":
                    return
                raise ReferenceLookupFailed(operation, error) from error
            except BotoCoreError as error:
                raise ReferenceLookupFailed(operation, error) from error
            yield from (item for item in page.get(key) or [] if isinstance(item, dict))
            token = page.get("NextToken") or None
            if token is None:
                return
            if token in seen:
                raise ReferenceLookupFailed(operation, "the same NextToken came back")
            seen.add(token)
        raise ReferenceLookupFailed(operation, f"more than {MAX_PAGES} pages")


def _schedule_task_definitions(target: dict[str, Any]) -> list[str]:
    """What a schedule's target names: EcsParameters.TaskDefinitionArn, and for a universal target calling the
    ECS API, the request's taskDefinition (any case) in Input."""
    found = []
    named = (target.get("EcsParameters") or {}).get("TaskDefinitionArn")
    if isinstance(named, str) and named:
        found.append(named)
    if _ECS_UNIVERSAL_RE.match(str(target.get("Arn", ""))):
        try:
            request = json.loads(str(target.get("Input") or "{}"))
        except ValueError:
            request = None  # not JSON: the call it makes fails anyway
        if isinstance(request, dict):
            found += [v for k, v in request.items() if k.lower() == "taskdefinition" and isinstance(v, str)]
    return found


def _revision(arn: str) -> _Revision:
    match = TASK_DEFINITION_ARN_RE.match(arn) if isinstance(arn, str) else None
    if not match:
        raise TaskDefinitionError(f"not a task definition revision ARN: {str(arn)[:300]!r}", "taskDefinitionArn")
    return _Revision(match["partition"], match["region"], match["account"], match["family"], int(match["revision"]))


def _same_place(match: re.Match[str], target: _Revision) -> bool:
    return (match["partition"], match["region"], match["account"]) == (target.partition, target.region, target.account)
