"""The daemon adapter (ecs_remediate.adapters.daemon_api) against the daemon emulator behind the session's moto
server. Every check reads the emulator's state back through the API; faults are injected on our own client
(tests/strategies)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError
from daemon_strategies import daemon_register_inputs
from daemon_support import cluster_with_provider, daemon_task_definition, ecs_client, managed_instances_provider
from hypothesis import given, settings
from strategies import FUZZ, Calls, Fault, scaled

from conftest import SHARED_FIXTURES, load_json
from ecs_remediate.adapters.aws import RevisionNotFound
from ecs_remediate.adapters.daemon_api import DaemonBusy, DaemonEcs, DaemonLookupError, DaemonRevisionNotFound

SENSOR = SHARED_FIXTURES / "daemons" / "crafted__security-sensor_privileged_register-input.json"


@pytest.fixture
def ecs(moto_endpoint: str) -> Any:
    return ecs_client(moto_endpoint)


def edit_body(client: Any, operation: str, change: Any) -> None:
    """Rewrite the raw body of `operation`'s answers before anything else parses it (a newer API, a lost item)."""

    def handler(response_dict: dict[str, Any], **_: Any) -> None:
        body = json.loads(response_dict["body"])
        change(body)
        response_dict["body"] = json.dumps(body).encode()

    client.meta.events.register_first(f"before-parse.ecs.{operation}", handler)


def create_daemon(ecs: Any, cluster: str, providers: list[str], arn: str, name: str, **extra: Any) -> str:
    return str(
        ecs.create_daemon(
            daemonName=name, clusterArn=cluster, daemonTaskDefinitionArn=arn, capacityProviderArns=providers, **extra
        )["daemonArn"]
    )


def test_describe_reads_the_definition_and_its_tags(ecs: Any) -> None:
    params = load_json(SENSOR)
    arn = ecs.register_daemon_task_definition(**params)["daemonTaskDefinitionArn"]
    described = DaemonEcs(ecs).describe("security-sensor:1")
    assert (described.arn, described.family, described.revision, described.status) == (
        arn,
        "security-sensor",
        1,
        "ACTIVE",
    )
    assert described.tags == params["tags"] and described.tags_read and described.unknown_members == []
    assert described.task_definition["containerDefinitions"] == params["containerDefinitions"]


def test_a_missing_revision_is_revision_not_found(ecs: Any) -> None:
    with pytest.raises(DaemonRevisionNotFound) as error:
        DaemonEcs(ecs).describe("arn:aws:ecs:us-east-1:123456789012:daemon-task-definition/nothing:1")
    assert isinstance(error.value, RevisionNotFound)  # the remediation path's "gone" handling applies


def test_a_member_the_sdk_does_not_know_is_noticed_in_the_raw_body(ecs: Any) -> None:
    ecs.register_daemon_task_definition(**daemon_task_definition())
    adapter = DaemonEcs(ecs)
    edit_body(ecs, "DescribeDaemonTaskDefinition", lambda b: b["daemonTaskDefinition"].update(futureField=1))
    described = adapter.describe("agent")
    assert described.unknown_members == ["futureField"] and "futureField" not in described.task_definition


def test_tags_that_cannot_be_read_are_flagged_not_lost_silently(moto_endpoint: str) -> None:
    client = ecs_client(moto_endpoint, config=Config(retries={"mode": "standard", "max_attempts": 1}))
    client.register_daemon_task_definition(**daemon_task_definition(tags=[{"key": "team", "value": "a"}]))
    adapter = DaemonEcs(client)
    denied = Fault(client, "ListTagsForResource", "access-denied", times=None)
    described = adapter.describe("agent")
    assert (described.tags, described.tags_error, described.tags_read) == ([], "AccessDeniedException", False)
    denied.remove()
    Fault(client, "ListTagsForResource", "throttle", times=None)
    with pytest.raises(ClientError, match="Rate exceeded"):  # transient: raised for the caller's retry
        adapter.describe("agent")


def test_register_returns_the_arn_and_never_registers_twice_after_a_lost_response(ecs: Any) -> None:
    adapter = DaemonEcs(ecs)
    params = load_json(SENSOR)
    first = adapter.register(params)
    assert first.endswith("security-sensor:1")
    assert (
        ecs.describe_daemon_task_definition(daemonTaskDefinition=first)["daemonTaskDefinition"]["pidMode"] == "shared"
    )

    def newer_than_first() -> str | None:  # what a caller checks: a revision registered by the lost attempt
        return next((arn for arn in adapter.revision_arns("security-sensor") if arn != first), None)

    lost = Fault(ecs, "RegisterDaemonTaskDefinition", "lost-response", times=1)
    found = adapter.register(params, already_registered=newer_than_first)
    assert lost.injected == 1 and lost.attempts == 1  # the check found the copy: no second attempt
    assert found == first[:-1] + "2"
    assert list(adapter.revision_arns("security-sensor")) == [first, found]  # the lost one, exactly once

    Fault(ecs, "RegisterDaemonTaskDefinition", "lost-response", times=1)
    with pytest.raises(ReadTimeoutError):
        adapter.register(params)  # no way to check: the ambiguous error is the caller's to handle
    assert len(list(adapter.revision_arns("security-sensor"))) == 3


def test_every_list_is_read_to_its_last_page(ecs: Any) -> None:
    adapter = DaemonEcs(ecs)
    calls = Calls(ecs)
    for family, count in (("agent", 120), ("agent-x", 31)):
        for _ in range(count):
            ecs.register_daemon_task_definition(**daemon_task_definition(family))
    ecs.delete_daemon_task_definition(daemonTaskDefinition="agent:120")
    assert len(list(adapter.revision_arns())) == 150
    assert calls.count("ListDaemonTaskDefinitions") == 2  # 100 + 50: botocore has no paginator for it
    assert len(list(adapter.revision_arns("agent"))) == 119  # the exact family, not a prefix
    assert len(list(adapter.revision_arns(status="ALL"))) == 151
    assert adapter.latest_active_arns() == [
        "arn:aws:ecs:us-east-1:123456789012:daemon-task-definition/agent:119",
        "arn:aws:ecs:us-east-1:123456789012:daemon-task-definition/agent-x:31",
    ]


def test_daemons_using_a_revision_across_clusters_and_pages(ecs: Any) -> None:
    adapter = DaemonEcs(ecs)
    big, big_provider = cluster_with_provider(ecs, "big", "mi-big")
    small, small_provider = cluster_with_provider(ecs, "small", "mi-small")
    privileged = ecs.register_daemon_task_definition(**daemon_task_definition("sensor"))["daemonTaskDefinitionArn"]
    other = ecs.register_daemon_task_definition(**daemon_task_definition("logs"))["daemonTaskDefinitionArn"]
    for index in range(101):  # more than one page of ListDaemons, more than 20 revisions to describe
        create_daemon(ecs, big, [big_provider], privileged if index % 2 else other, f"d{index}")
    on_small = create_daemon(ecs, small, [small_provider], privileged, "sensor")
    calls = Calls(ecs)
    using = adapter.daemons_using(privileged)
    assert len(using) == 51 and on_small in {d.arn for d in using}
    assert {d.cluster_name for d in using} == {"big", "small"}
    assert all(d.task_definition_arns == [privileged] for d in using)
    assert calls.count("ListDaemons") == 3  # big: 100 + 1, small: 1
    assert calls.count("DescribeDaemonRevisions") == 6  # 102 revisions, 20 a call
    assert [d.name for d in adapter.daemons_using(other)][:2] == ["d0", "d2"]


def test_a_revision_that_cannot_be_described_fails_closed(ecs: Any) -> None:
    cluster, provider = cluster_with_provider(ecs)
    arn = ecs.register_daemon_task_definition(**daemon_task_definition())["daemonTaskDefinitionArn"]
    create_daemon(ecs, cluster, [provider], arn, "agent")
    adapter = DaemonEcs(ecs)
    edit_body(ecs, "DescribeDaemonRevisions", lambda b: b.update(daemonRevisions=[]))
    with pytest.raises(DaemonLookupError):
        adapter.daemons_using(arn)  # never "no daemon uses it", which would let retire delete it


def test_update_daemon_carries_over_capacity_providers_settings_and_deployment_configuration(
    moto_endpoint: str, ecs: Any
) -> None:
    adapter = DaemonEcs(ecs)
    cluster, first_provider = cluster_with_provider(ecs)
    second_provider = managed_instances_provider(ecs, "agents", "mi-agents-2")
    old = ecs.register_daemon_task_definition(**daemon_task_definition("sensor"))["daemonTaskDefinitionArn"]
    new = ecs.register_daemon_task_definition(**daemon_task_definition("sensor", False))["daemonTaskDefinitionArn"]
    configuration = {"drainPercent": 20.0, "bakeTimeInMinutes": 10, "alarms": {"alarmNames": ["a"], "enable": True}}
    daemon_arn = create_daemon(
        ecs,
        cluster,
        [first_provider, second_provider],
        old,
        "sensor",
        critical=False,
        enableExecuteCommand=True,
        propagateTags="DAEMON",
        deploymentConfiguration=configuration,
    )
    service = ecs.create_service(
        cluster="agents",
        serviceName="web",
        taskDefinition=ecs.register_task_definition(
            family="web", containerDefinitions=[{"name": "a", "image": "x", "memory": 8}]
        )["taskDefinition"]["taskDefinitionArn"],
        desiredCount=1,
    )["service"]
    [daemon] = adapter.daemons_using(old)
    calls = Calls(ecs)
    deployment_arn = adapter.update_daemon(daemon, new)
    assert calls.writes == ["UpdateDaemon"]  # services are never touched

    [moved] = adapter.daemons_using(new)
    assert moved.arn == daemon_arn and adapter.daemons_using(old) == []
    [revision] = moved.revisions
    assert revision.capacity_provider_arns == (first_provider, second_provider)
    assert revision.settings == {
        "propagateTags": "DAEMON",
        "enableECSManagedTags": False,
        "enableExecuteCommand": True,
        "critical": False,
    }
    deployment = adapter.deployment(deployment_arn)
    assert deployment is not None and deployment["status"] == "SUCCESSFUL"
    assert deployment["deploymentConfiguration"] == configuration
    [after] = ecs.describe_services(cluster="agents", services=["web"])["services"]
    assert after["taskDefinition"] == service["taskDefinition"]


def test_a_rolled_back_update_leaves_the_daemon_on_its_revision(moto_endpoint: str, ecs: Any) -> None:
    import urllib.request

    adapter = DaemonEcs(ecs)
    cluster, provider = cluster_with_provider(ecs)
    old, new, newer = (
        ecs.register_daemon_task_definition(**daemon_task_definition("sensor"))["daemonTaskDefinitionArn"]
        for _ in range(3)
    )
    daemon_arn = create_daemon(ecs, cluster, [provider], old, "sensor")
    body = json.dumps({"daemonArn": daemon_arn, "outcome": "ROLLBACK_SUCCESSFUL"}).encode()
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/ecs-daemons/next-deployment", data=body)
    urllib.request.urlopen(request, timeout=30).read()
    deployment = adapter.deployment(adapter.update_daemon(adapter.daemons_using(old)[0], new))
    assert deployment is not None and deployment["status"] == "ROLLBACK_SUCCESSFUL"
    assert [d.arn for d in adapter.daemons_using(old)] == [daemon_arn] and adapter.daemons_using(new) == []

    body = json.dumps({"daemonArn": daemon_arn, "outcome": "IN_PROGRESS"}).encode()
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/ecs-daemons/next-deployment", data=body)
    urllib.request.urlopen(request, timeout=30).read()
    adapter.update_daemon(adapter.daemons_using(old)[0], new)
    [busy] = adapter.daemons_using(new)
    calls = Calls(ecs)
    with pytest.raises(DaemonBusy):
        adapter.update_daemon(busy, newer)  # two current revisions: a deployment is under way
    assert calls.writes == []


def test_delete(ecs: Any) -> None:
    adapter = DaemonEcs(ecs)
    arn = adapter.register(daemon_task_definition())
    adapter.delete(arn)
    assert adapter.describe(arn).status == "DELETED"
    assert list(adapter.revision_arns()) == []


@settings(FUZZ, max_examples=scaled(40))
@given(params=daemon_register_inputs())
def test_generated_daemon_task_definitions_round_trip_through_the_emulator(moto_endpoint: str, params: Any) -> None:
    adapter = DaemonEcs(ecs_client(moto_endpoint))
    described = adapter.describe(adapter.register(params))
    expected = {k: v for k, v in params.items() if k != "tags"}
    assert {k: v for k, v in described.task_definition.items() if k in expected} == expected
    assert described.tags == params.get("tags", [])


def test_a_daemon_being_deleted_still_counts_as_using_its_revision(moto_endpoint: str, ecs: Any) -> None:
    import urllib.request

    adapter = DaemonEcs(ecs)
    cluster, provider = cluster_with_provider(ecs)
    arn = adapter.register(daemon_task_definition())
    daemon_arn = create_daemon(ecs, cluster, [provider], arn, "agent")
    ecs.delete_daemon(daemonArn=daemon_arn)
    [deleting] = adapter.daemons_using(arn)  # its tasks run until the instances are drained: retire must wait
    assert deleting.status == "DELETE_IN_PROGRESS"
    with pytest.raises(DaemonBusy):
        adapter.update_daemon(deleting, arn)
    body = json.dumps({"daemonArn": daemon_arn}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/ecs-daemons/finish-delete", data=body))
    assert adapter.daemons_using(arn) == []
