"""What names a revision besides services (issue 10, finding 7): EventBridge rule targets and Scheduler schedules.

Against moto (rules on the default and a custom bus, schedules in the default and a named group, paging past
moto's 50-item pages), with faults injected in front of moto (before-send handlers), and botocore's Stubber
where moto cannot show a behaviour (a NextToken that comes back, many pages of targets).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from moto import mock_aws
from strategies import RawBody

from conftest import ACCOUNT, REGION
from ecs_remediate.adapters.aws import BOTO_CONFIG
from ecs_remediate.core.taskdef import TaskDefinitionError
from ecs_remediate.remediation.references import (
    IAM_ACTIONS,
    LATEST,
    REVISION,
    Reference,
    ReferenceLookupFailed,
    References,
    blocking,
    iam_statements,
    names,
)

PREFIX = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
WEB3 = f"{PREFIX}:task-definition/web:3"
CLUSTER = f"{PREFIX}:cluster/prod"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/events-run-task"


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda _seconds: None)  # retries without the backoff
    with mock_aws():
        yield (
            boto3.client("events", region_name=REGION, config=BOTO_CONFIG),
            boto3.client("scheduler", region_name=REGION, config=BOTO_CONFIG),
        )


def ecs_target(target_id: str, task_definition: str, arn: str = CLUSTER) -> dict[str, Any]:
    return {"Id": target_id, "Arn": arn, "RoleArn": ROLE, "EcsParameters": {"TaskDefinitionArn": task_definition}}


def put_rule(events: Any, name: str, *targets: dict[str, Any], bus: str = "default", state: str = "ENABLED") -> None:
    # a schedule expression only on the default bus (as in AWS); an event pattern elsewhere
    when = {"ScheduleExpression": "rate(1 day)"} if bus == "default" else {"EventPattern": '{"source": ["orders"]}'}
    events.put_rule(Name=name, EventBusName=bus, State=state, **when)
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=list(targets))


def create_schedule(scheduler: Any, name: str, target: dict[str, Any], group: str = "default", **extra: Any) -> None:
    scheduler.create_schedule(
        Name=name,
        GroupName=group,
        ScheduleExpression="rate(1 hour)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"RoleArn": ROLE, **target},
        **extra,
    )


def calls(client: Any, operation: str) -> list[dict[str, Any]]:
    """Records the parameters of every `operation` call the client makes."""
    seen: list[dict[str, Any]] = []
    client.meta.events.register(f"provide-client-params.*.{operation}", lambda params, **_: seen.append(dict(params)))
    return seen


# --- what is found --------------------------------------------------------------------------------------------


def test_rule_targets_on_the_default_and_a_custom_bus(clients: tuple[Any, Any]) -> None:
    events, scheduler = clients
    put_rule(events, "nightly", ecs_target("report", WEB3), ecs_target("other", f"{PREFIX}:task-definition/web:2"))
    events.create_event_bus(Name="orders")
    put_rule(events, "on-order", ecs_target("t1", "web:3"), bus="orders", state="DISABLED")
    put_rule(events, "to-lambda", {"Id": "l", "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"}, bus="orders")

    found = References(events, scheduler).find(WEB3)

    assert found == [
        Reference("eventbridge-rule", "default", "nightly", "report", WEB3, False, "ENABLED"),
        Reference("eventbridge-rule", "orders", "on-order", "t1", "web:3", False, "DISABLED"),
    ]
    assert found[0].text == f"EventBridge rule nightly on bus default target report runs {WEB3}"
    assert all(r.blocks_retire(revision_is_latest_active=False) for r in found)  # a disabled rule counts too


def test_schedules_in_the_default_and_a_named_group(clients: tuple[Any, Any]) -> None:
    events, scheduler = clients
    create_schedule(scheduler, "hourly", {"Arn": CLUSTER, "EcsParameters": {"TaskDefinitionArn": WEB3}})
    scheduler.create_schedule_group(Name="batch")
    universal = {
        "Arn": "arn:aws:scheduler:::aws-sdk:ecs:runTask",
        "Input": json.dumps({"Cluster": "prod", "TaskDefinition": "web:3"}),
    }
    create_schedule(scheduler, "via-sdk", universal, group="batch", State="DISABLED")
    create_schedule(
        scheduler,
        "latest",
        {"Arn": CLUSTER, "EcsParameters": {"TaskDefinitionArn": f"{PREFIX}:task-definition/web"}},
        group="batch",
    )
    create_schedule(scheduler, "to-sqs", {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"}, group="batch")
    fetched = calls(scheduler, "GetSchedule")

    found = References(events, scheduler).find(WEB3)

    assert sorted(found, key=lambda r: r.name) == [
        Reference("scheduler-schedule", "default", "hourly", None, WEB3, False, "ENABLED"),
        Reference("scheduler-schedule", "batch", "latest", None, f"{PREFIX}:task-definition/web", True, "ENABLED"),
        Reference("scheduler-schedule", "batch", "via-sdk", None, "web:3", False, "DISABLED"),
    ]
    # only the schedules whose target can run a task are fetched (the SQS one is not)
    assert sorted(c["Name"] for c in fetched) == ["hourly", "latest", "via-sdk"]
    assert found[1].text == (
        f"EventBridge Scheduler schedule latest in group batch runs {PREFIX}:task-definition/web"
        " (the family's latest ACTIVE revision)"
    )


def test_a_family_reference_blocks_retiring_only_the_latest_revision(clients: tuple[Any, Any]) -> None:
    events, scheduler = clients
    put_rule(events, "latest", ecs_target("a", f"{PREFIX}:task-definition/web"), ecs_target("b", "web"))
    put_rule(events, "pinned", ecs_target("c", WEB3))
    found = References(events, scheduler).find(WEB3)
    assert [(r.name, r.target_id, r.latest) for r in found] == [
        ("latest", "a", True),
        ("latest", "b", True),
        ("pinned", "c", False),
    ]
    # web:3 superseded by a newer ACTIVE revision (the fixed copy): the family references run that one
    assert [r.target_id for r in blocking(found, revision_is_latest_active=False)] == ["c"]
    # web:3 is the family's latest ACTIVE: deregistering it would move them to an older revision, or break them
    assert [r.target_id for r in blocking(found, revision_is_latest_active=True)] == ["a", "b", "c"]


def test_what_does_not_name_the_revision(clients: tuple[Any, Any]) -> None:
    events, scheduler = clients
    put_rule(
        events,
        "others",
        ecs_target("rev2", f"{PREFIX}:task-definition/web:2"),
        ecs_target("rev30", f"{PREFIX}:task-definition/web:30"),
        ecs_target("family", f"{PREFIX}:task-definition/webapp:3"),
        ecs_target("account", f"arn:aws:ecs:{REGION}:210987654321:task-definition/web:3"),
        ecs_target("region", f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task-definition/web:3"),
    )
    put_rule(events, "daemon", ecs_target("d", f"{PREFIX}:daemon-task-definition/web:3"))
    assert References(events, scheduler).find(WEB3) == []


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (WEB3, REVISION),
        ("web:3", REVISION),
        ("web:03", REVISION),  # fail closed: ECS may read it as web:3
        (f"{PREFIX}:task-definition/web", LATEST),
        ("web", LATEST),
        ("web:2", None),
        ("web:33", None),
        ("Web:3", None),  # families are case-sensitive
        ("webapp", None),
        (f"arn:aws-cn:ecs:{REGION}:{ACCOUNT}:task-definition/web:3", None),
        (f"{PREFIX}:task-definition/web:3 ", None),
        ("", None),
        (None, None),
        (3, None),
    ],
)
def test_names(reference: Any, expected: str | None) -> None:
    assert names(reference, WEB3) == expected


def test_a_revision_that_is_not_an_arn_is_refused_before_any_call(clients: tuple[Any, Any]) -> None:
    events, scheduler = clients
    listed = calls(events, "ListEventBuses")
    with pytest.raises(TaskDefinitionError):
        References(events, scheduler).find("web:3")
    assert listed == []


# --- every page -----------------------------------------------------------------------------------------------


def test_every_page_of_buses_rules_groups_and_schedules(clients: tuple[Any, Any]) -> None:
    events, scheduler = clients  # moto pages each of these at 50
    for i in range(55):
        events.create_event_bus(Name=f"bus-{i:02d}")
    for i in range(60):
        put_rule(events, f"rule-{i:02d}", bus="bus-54")
    put_rule(events, "zz-last", ecs_target("t", WEB3), bus="bus-54")
    for i in range(55):
        scheduler.create_schedule_group(Name=f"group-{i:02d}")
    for i in range(60):
        create_schedule(scheduler, f"s-{i:02d}", {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"}, group="group-54")
    create_schedule(
        scheduler, "runs-web", {"Arn": CLUSTER, "EcsParameters": {"TaskDefinitionArn": WEB3}}, group="group-54"
    )
    pages = {
        op: calls(c, op)
        for c, op in [
            (events, "ListEventBuses"),
            (events, "ListRules"),
            (scheduler, "ListScheduleGroups"),
            (scheduler, "ListSchedules"),
        ]
    }

    found = References(events, scheduler).find(WEB3)

    assert [(r.bus_or_group, r.name) for r in found] == [("bus-54", "zz-last"), ("group-54", "runs-web")]
    assert sum("NextToken" in p for p in pages["ListEventBuses"]) >= 1
    assert sum("NextToken" in p for p in pages["ListScheduleGroups"]) >= 1
    assert any("NextToken" in p and p["EventBusName"] == "bus-54" for p in pages["ListRules"])
    assert any("NextToken" in p and p["GroupName"] == "group-54" for p in pages["ListSchedules"])


def test_every_page_of_a_rules_targets(clients: tuple[Any, Any]) -> None:
    events, scheduler = clients  # moto pages targets at 50 when their ARNs differ (AWS allows 5 per rule)
    put_rule(events, "many")
    for i in range(59):
        events.put_targets(Rule="many", Targets=[ecs_target(f"t{i:02d}", "web:2", arn=f"{CLUSTER}-{i}")])
    events.put_targets(Rule="many", Targets=[ecs_target("t59", WEB3, arn=f"{CLUSTER}-59")])
    assert [r.target_id for r in References(events, scheduler).find(WEB3)] == ["t59"]


def test_moto_looping_on_targets_that_share_an_arn_fails_closed(clients: tuple[Any, Any]) -> None:
    # moto 5.2.5 builds ListTargetsByRule's NextToken from the target ARN: with 60 targets on one cluster it
    # hands back the same token forever. A repeated token is a failure here, not a hang and not "nothing found".
    events, scheduler = clients
    put_rule(events, "same-cluster")
    for i in range(60):
        events.put_targets(Rule="same-cluster", Targets=[ecs_target(f"t{i:02d}", "web:2")])
    with pytest.raises(ReferenceLookupFailed) as caught:
        References(events, scheduler).find(WEB3)
    assert caught.value.operation == "ListTargetsByRule"


def stubbed(service: str) -> tuple[Any, Stubber]:
    client = boto3.client(service, region_name=REGION)
    return client, Stubber(client)


def test_targets_over_several_pages_with_a_stubber() -> None:
    events, stub = stubbed("events")
    scheduler, scheduler_stub = stubbed("scheduler")
    stub.add_response("list_event_buses", {"EventBuses": [{"Name": "default"}]})
    stub.add_response("list_rules", {"Rules": [{"Name": "r", "State": "ENABLED"}]}, {"EventBusName": "default"})
    for page, token in enumerate(["p2", "p3", None]):
        response: dict[str, Any] = {
            "Targets": [
                {
                    "Id": f"t{page}",
                    "Arn": CLUSTER,
                    "EcsParameters": {"TaskDefinitionArn": WEB3 if page == 2 else "web:2"},
                }
            ]
        }
        if token:
            response["NextToken"] = token
        expected = {"Rule": "r", "EventBusName": "default", **({"NextToken": ["p2", "p3"][page - 1]} if page else {})}
        stub.add_response("list_targets_by_rule", response, expected)
    scheduler_stub.add_response("list_schedule_groups", {"ScheduleGroups": []})
    with stub, scheduler_stub:
        found = References(events, scheduler).find(WEB3)
        stub.assert_no_pending_responses()
    assert [r.target_id for r in found] == ["t2"]


def test_a_next_token_that_comes_back_is_a_failure() -> None:
    events, stub = stubbed("events")
    scheduler, _ = stubbed("scheduler")
    stub.add_response("list_event_buses", {"EventBuses": [{"Name": "default"}], "NextToken": "again"})
    stub.add_response("list_rules", {"Rules": []}, {"EventBusName": "default"})
    stub.add_response(
        "list_event_buses", {"EventBuses": [{"Name": "orders"}], "NextToken": "again"}, {"NextToken": "again"}
    )
    stub.add_response("list_rules", {"Rules": []}, {"EventBusName": "orders"})
    with stub, pytest.raises(ReferenceLookupFailed) as caught:
        References(events, scheduler).find(WEB3)
    assert caught.value.operation == "ListEventBuses"


# --- failures: fail closed ------------------------------------------------------------------------------------


def respond(client: Any, operation: str, status: int, code: str, times: int | None = None) -> list[int]:
    """Answers `operation` with an error before it reaches moto (`times` times, or always)."""
    seen: list[int] = []
    service = client.meta.service_model.service_id.hyphenize()

    def handler(request: Any, **_: Any) -> Any:
        seen.append(1)
        if times is not None and len(seen) > times:
            return None
        body = json.dumps({"__type": code, "message": "injected"}).encode()
        headers = {"x-amzn-errortype": code, "content-type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, status, headers, RawBody(body))

    client.meta.events.register_first(f"before-send.{service}.{operation}", handler)
    return seen


def populated(clients: tuple[Any, Any]) -> None:
    events, scheduler = clients
    put_rule(events, "nightly", ecs_target("t", WEB3))
    create_schedule(scheduler, "hourly", {"Arn": CLUSTER, "EcsParameters": {"TaskDefinitionArn": WEB3}})


@pytest.mark.parametrize(
    ("which", "operation"),
    [
        (0, "ListEventBuses"),
        (0, "ListRules"),
        (0, "ListTargetsByRule"),
        (1, "ListScheduleGroups"),
        (1, "ListSchedules"),
        (1, "GetSchedule"),
    ],
)
@pytest.mark.parametrize(("status", "code"), [(400, "AccessDeniedException"), (500, "InternalException")])
def test_any_listing_error_raises_one_exception(
    clients: tuple[Any, Any], which: int, operation: str, status: int, code: str
) -> None:
    populated(clients)
    attempts = respond(clients[which], operation, status, code)
    with pytest.raises(ReferenceLookupFailed) as caught:
        References(*clients).find(WEB3)
    assert caught.value.operation == operation
    assert code in str(caught.value)
    if status >= 500:
        assert len(attempts) > 2  # botocore retried it first (BOTO_CONFIG)
    else:
        assert len(attempts) == 1  # not worth repeating


def test_throttling_is_retried_by_botocore_before_anything_fails(clients: tuple[Any, Any]) -> None:
    populated(clients)
    attempts = respond(clients[0], "ListRules", 400, "ThrottlingException", times=2)
    found = References(*clients).find(WEB3)
    assert len(attempts) == 3 and [r.name for r in found] == ["nightly", "hourly"]


def test_a_resource_deleted_while_listing(clients: tuple[Any, Any]) -> None:
    populated(clients)
    # a rule or schedule deleted between the listing and the read runs nothing: skipped, not a failure
    respond(clients[0], "ListTargetsByRule", 400, "ResourceNotFoundException")
    respond(clients[1], "GetSchedule", 404, "ResourceNotFoundException")
    assert References(*clients).find(WEB3) == []


def test_a_bus_that_cannot_be_listed_is_a_failure(clients: tuple[Any, Any]) -> None:
    populated(clients)
    respond(clients[0], "ListRules", 400, "ResourceNotFoundException")
    with pytest.raises(ReferenceLookupFailed):
        References(*clients).find(WEB3)


# --- IAM ------------------------------------------------------------------------------------------------------


def test_iam_actions_exist_and_resources_cover_what_moto_names(clients: tuple[Any, Any]) -> None:
    events, scheduler = clients
    models = {"events": events.meta.service_model, "scheduler": scheduler.meta.service_model}
    for action, resource, why in IAM_ACTIONS:
        service, operation = action.split(":")
        assert operation in models[service].operation_names and why
        assert resource == "*" or operation.startswith(("Get", "ListTargets"))
    statements = iam_statements("aws", REGION, ACCOUNT)
    assert sorted(a for s in statements for a in s["Action"]) == sorted(a for a, _, _ in IAM_ACTIONS)

    def allowed(action: str) -> list[str]:
        return [s["Resource"] for s in statements if action in s["Action"]]

    events.create_event_bus(Name="orders")
    default_rule = events.put_rule(Name="r", ScheduleExpression="rate(1 day)")["RuleArn"]
    custom_rule = events.put_rule(Name="r", EventBusName="orders", EventPattern='{"source": ["x"]}')["RuleArn"]
    scheduler.create_schedule_group(Name="batch")
    create_schedule(scheduler, "s", {"Arn": CLUSTER}, group="batch")
    schedule = scheduler.get_schedule(Name="s", GroupName="batch")["Arn"]
    assert all(fnmatch.fnmatchcase(arn, allowed("events:ListTargetsByRule")[0]) for arn in (default_rule, custom_rule))
    assert fnmatch.fnmatchcase(schedule, allowed("scheduler:GetSchedule")[0])
    assert not fnmatch.fnmatchcase(schedule.replace(ACCOUNT, "210987654321"), allowed("scheduler:GetSchedule")[0])
