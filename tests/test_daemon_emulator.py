"""The daemon emulator (emulators/daemon_emulator.py) behind the session's moto server: requests validated against
botocore's model, responses valid per the output model, paging, per-account state through moto's STS, delete
semantics, daemon deployments and the rollback hook. State is read back through the API, never from mocks."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from daemon_support import (
    OutputChecker,
    cluster_with_provider,
    daemon_task_definition,
    ecs_client,
    managed_instances_provider,
    raw_call,
)

from conftest import SHARED_FIXTURES, load_json
from emulators.daemon_api import page_size
from emulators.daemon_emulator import DaemonEmulator

SENSOR = SHARED_FIXTURES / "daemons" / "crafted__security-sensor_privileged_register-input.json"


def code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def daemon_arns(ecs: Any) -> list[str]:
    return [t["arn"] for t in ecs.list_daemon_task_definitions(status="ALL")["daemonTaskDefinitions"]]


@pytest.mark.parametrize(
    ("body", "expected", "says"),
    [
        ({"containerDefinitions": [{"name": "a", "image": "x"}]}, "InvalidParameterException", "family"),
        (
            {"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "portMappings": []}]},
            "InvalidParameterException",
            "portMappings",
        ),
        ({"family": "f", "containerDefinitions": {"name": "a"}}, "InvalidParameterException", "containerDefinitions"),
        ({"family": "f", "networkMode": "host", "containerDefinitions": []}, "InvalidParameterException", "network"),
        (
            {"family": "f", "pidMode": "host", "containerDefinitions": [{"name": "a", "image": "x"}]},
            "InvalidParameterException",
            "pidMode",
        ),
        (
            {"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "memory": "lots"}]},
            "InvalidParameterException",
            "memory",
        ),
        ({"family": "bad family!", "containerDefinitions": [{"name": "a", "image": "x"}]}, "Invalid", "family"),
        ({"family": "f", "containerDefinitions": []}, "InvalidParameterException", "at least one"),
        ({"family": "f", "containerDefinitions": [{"image": "x"}]}, "InvalidParameterException", "name"),
        (
            {"family": "f", "containerDefinitions": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]},
            "InvalidParameterException",
            "unique",
        ),
        (
            {
                "family": "f",
                "containerDefinitions": [
                    {"name": "a", "image": "x", "mountPoints": [{"sourceVolume": "nope", "containerPath": "/x"}]}
                ],
            },
            "InvalidParameterException",
            "volume",
        ),
        (
            {
                "family": "f",
                "containerDefinitions": [{"name": "a", "image": "x"}],
                "tags": [{"key": "aws:owner", "value": "x"}],
            },
            "InvalidParameterException",
            "reserved",
        ),
        (
            {
                "family": "f",
                "containerDefinitions": [{"name": "a", "image": "x"}],
                "tags": [{"key": f"k{i}", "value": "v"} for i in range(51)],
            },
            "InvalidParameterException",
            "50",
        ),
        ([1, 2], "SerializationException", "JSON object"),
    ],
)
def test_malformed_registrations_are_refused_and_change_nothing(
    moto_endpoint: str, body: Any, expected: str, says: str
) -> None:
    status, answer = raw_call(moto_endpoint, "RegisterDaemonTaskDefinition", body)
    assert status == 400
    assert answer["__type"].startswith(expected) and says in answer["message"], answer
    assert daemon_arns(ecs_client(moto_endpoint)) == []


def test_a_body_that_is_not_json_is_refused(moto_endpoint: str) -> None:
    status, answer = raw_call(moto_endpoint, "ListDaemons", None, text=b"{not json")
    assert (status, answer["__type"]) == (400, "SerializationException")


def test_every_response_is_valid_per_the_output_model(moto_endpoint: str) -> None:
    ecs = ecs_client(moto_endpoint)
    checker = OutputChecker(ecs)
    cluster, provider = cluster_with_provider(ecs)
    first = ecs.register_daemon_task_definition(**load_json(SENSOR))["daemonTaskDefinitionArn"]
    second = ecs.register_daemon_task_definition(**daemon_task_definition("security-sensor"))["daemonTaskDefinitionArn"]
    ecs.describe_daemon_task_definition(daemonTaskDefinition=first)
    ecs.list_daemon_task_definitions(status="ALL", sort="DESC")
    ecs.list_tags_for_resource(resourceArn=first)
    ecs.tag_resource(resourceArn=first, tags=[{"key": "owner", "value": "secops"}])
    ecs.untag_resource(resourceArn=first, tagKeys=["owner"])
    daemon = ecs.create_daemon(
        daemonName="sensor",
        clusterArn=cluster,
        daemonTaskDefinitionArn=first,
        capacityProviderArns=[provider],
        deploymentConfiguration={"drainPercent": 25.0, "bakeTimeInMinutes": 5},
        tags=[{"key": "team", "value": "secops"}],
    )["daemonArn"]
    ecs.update_daemon(daemonArn=daemon, daemonTaskDefinitionArn=second, capacityProviderArns=[provider])
    detail = ecs.describe_daemon(daemonArn=daemon)["daemon"]
    ecs.list_daemons(clusterArn=cluster)
    ecs.describe_daemon_revisions(daemonRevisionArns=[r["arn"] for r in detail["currentRevisions"]])
    deployments = ecs.list_daemon_deployments(daemonArn=daemon)["daemonDeployments"]
    ecs.describe_daemon_deployments(daemonDeploymentArns=[d["daemonDeploymentArn"] for d in deployments])
    ecs.list_tags_for_resource(resourceArn=daemon)
    ecs.delete_daemon(daemonArn=daemon)
    ecs.delete_daemon_task_definition(daemonTaskDefinition=first)
    assert checker.problems == []
    assert len(checker.checked) == 19
    assert set(checker.checked) >= DaemonEmulator.OPERATIONS  # every operation the emulator answers was checked


def test_daemon_task_definition_round_trip_keeps_every_member(moto_endpoint: str) -> None:
    ecs = ecs_client(moto_endpoint)
    params = load_json(SENSOR)
    arn = ecs.register_daemon_task_definition(**params)["daemonTaskDefinitionArn"]
    assert arn == "arn:aws:ecs:us-east-1:123456789012:daemon-task-definition/security-sensor:1"
    described = ecs.describe_daemon_task_definition(daemonTaskDefinition="security-sensor")["daemonTaskDefinition"]
    for member, value in params.items():
        if member != "tags":
            assert described[member] == value, member
    assert (described["revision"], described["status"]) == (1, "ACTIVE")
    assert "tags" not in described  # Describe returns none: ListTagsForResource does
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == params["tags"]


def test_list_daemon_task_definitions_pages_at_its_documented_size(moto_endpoint: str) -> None:
    ecs = ecs_client(moto_endpoint)
    assert page_size("ListDaemonTaskDefinitions") == 100 and page_size("ListDaemonDeployments") == 20
    expected = []
    for family in ("alpha", "beta", "gamma"):
        for revision in range(1, 78):
            ecs.register_daemon_task_definition(**daemon_task_definition(family))
            expected.append(f"arn:aws:ecs:us-east-1:123456789012:daemon-task-definition/{family}:{revision}")
    pages, token = [], None
    while True:
        answer = ecs.list_daemon_task_definitions(**({"nextToken": token} if token else {}))
        pages.append([t["arn"] for t in answer["daemonTaskDefinitions"]])
        token = answer.get("nextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [100, 100, 31]
    assert [arn for page in pages for arn in page] == expected  # by family, then revision; none twice, none lost

    descending = []
    token = None
    while True:
        answer = ecs.list_daemon_task_definitions(sort="DESC", maxResults=40, **({"nextToken": token} if token else {}))
        descending += [t["arn"] for t in answer["daemonTaskDefinitions"]]
        token = answer.get("nextToken")
        if not token:
            break
    assert descending == expected[::-1]

    latest = ecs.list_daemon_task_definitions(revision="LAST_REGISTERED")["daemonTaskDefinitions"]
    assert [t["arn"].rsplit("/", 1)[1] for t in latest] == ["alpha:77", "beta:77", "gamma:77"]
    assert len(ecs.list_daemon_task_definitions(family="beta")["daemonTaskDefinitions"]) == 77
    first = ecs.list_daemon_task_definitions(maxResults=5)
    with pytest.raises(ClientError, match="filters") as error:
        ecs.list_daemon_task_definitions(family="beta", nextToken=first["nextToken"])
    assert code(error) == "InvalidParameterException"
    for bad in ({"maxResults": 0}, {"maxResults": 101}, {"nextToken": "not-a-token"}):
        with pytest.raises(ClientError) as error:
            ecs.list_daemon_task_definitions(**bad)
        assert code(error) == "InvalidParameterException"


def test_state_is_kept_per_account_and_region_through_sts(moto_endpoint: str) -> None:
    home = ecs_client(moto_endpoint)
    sts = boto3.client("sts", endpoint_url=moto_endpoint)
    credentials = sts.assume_role(RoleArn="arn:aws:iam::210987654321:role/platform", RoleSessionName="pipeline")[
        "Credentials"
    ]
    member = ecs_client(
        moto_endpoint,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    arn = member.register_daemon_task_definition(**daemon_task_definition("agent"))["daemonTaskDefinitionArn"]
    assert arn == "arn:aws:ecs:us-east-1:210987654321:daemon-task-definition/agent:1"
    described = member.describe_daemon_task_definition(daemonTaskDefinition=arn)["daemonTaskDefinition"]
    assert described["registeredBy"] == "arn:aws:sts::210987654321:assumed-role/platform/pipeline"
    assert daemon_arns(home) == []
    with pytest.raises(ClientError, match="Unable to describe daemon task definition"):
        home.describe_daemon_task_definition(daemonTaskDefinition=arn)
    home_arn = home.register_daemon_task_definition(**daemon_task_definition("agent"))["daemonTaskDefinitionArn"]
    assert home_arn == "arn:aws:ecs:us-east-1:123456789012:daemon-task-definition/agent:1"
    west = ecs_client(moto_endpoint, region="us-west-2")
    assert daemon_arns(west) == []
    assert daemon_arns(member) == [arn]


def test_delete_semantics(moto_endpoint: str) -> None:
    ecs = ecs_client(moto_endpoint)
    cluster, provider = cluster_with_provider(ecs)
    unused, used, other = (
        ecs.register_daemon_task_definition(**daemon_task_definition("agent"))["daemonTaskDefinitionArn"]
        for _ in range(3)
    )
    with pytest.raises(ClientError) as error:
        ecs.delete_daemon_task_definition(daemonTaskDefinition="agent")  # family alone: which revision?
    assert code(error) == "InvalidParameterException"

    ecs.delete_daemon_task_definition(daemonTaskDefinition="agent:1")
    gone = ecs.describe_daemon_task_definition(daemonTaskDefinition=unused)["daemonTaskDefinition"]
    assert gone["status"] == "DELETED" and "deleteRequestedAt" in gone
    assert unused not in [t["arn"] for t in ecs.list_daemon_task_definitions()["daemonTaskDefinitions"]]
    assert unused in daemon_arns(ecs)
    with pytest.raises(ClientError, match="not ACTIVE") as error:
        ecs.delete_daemon_task_definition(daemonTaskDefinition=unused)
    assert code(error) == "ClientException"

    daemon = ecs.create_daemon(
        daemonName="agent", clusterArn=cluster, daemonTaskDefinitionArn=used, capacityProviderArns=[provider]
    )["daemonArn"]
    ecs.delete_daemon_task_definition(daemonTaskDefinition=used)
    in_use = ecs.describe_daemon_task_definition(daemonTaskDefinition=used)["daemonTaskDefinition"]
    assert in_use["status"] == "DELETE_IN_PROGRESS"  # the daemon keeps running it
    listed = ecs.list_daemon_task_definitions(status="DELETE_IN_PROGRESS")["daemonTaskDefinitions"]
    assert [t["arn"] for t in listed] == [used]
    with pytest.raises(ClientError, match="not ACTIVE"):
        ecs.update_daemon(daemonArn=daemon, daemonTaskDefinitionArn=used, capacityProviderArns=[provider])
    assert ecs.describe_daemon_task_definition(daemonTaskDefinition="agent")["daemonTaskDefinition"]["revision"] == 3

    ecs.update_daemon(daemonArn=daemon, daemonTaskDefinitionArn=other, capacityProviderArns=[provider])
    assert ecs.describe_daemon_task_definition(daemonTaskDefinition=used)["daemonTaskDefinition"]["status"] == "DELETED"
    with pytest.raises(ClientError, match="could not be found"):
        ecs.list_tags_for_resource(resourceArn=used)
    fourth = ecs.register_daemon_task_definition(**daemon_task_definition("agent"))["daemonTaskDefinitionArn"]
    assert fourth.endswith(":4")  # revision numbers are never reused


def hook(endpoint: str, name: str, daemon_arn: str, outcome: str) -> None:
    body = json.dumps({"daemonArn": daemon_arn, "outcome": outcome}).encode()
    request = urllib.request.Request(f"{endpoint}/moto-api/ecs-daemons/{name}", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def running(ecs: Any, daemon: str) -> list[str]:
    """The daemon task definitions the daemon's current revisions run."""
    revisions = [r["arn"] for r in ecs.describe_daemon(daemonArn=daemon)["daemon"]["currentRevisions"]]
    described = ecs.describe_daemon_revisions(daemonRevisionArns=revisions)["daemonRevisions"]
    return [r["daemonTaskDefinitionArn"] for r in described]


def test_daemon_update_and_the_rollback_hook(moto_endpoint: str) -> None:
    ecs = ecs_client(moto_endpoint)
    cluster, provider = cluster_with_provider(ecs)
    v1, v2, v3, v4 = (
        ecs.register_daemon_task_definition(**daemon_task_definition("sensor"))["daemonTaskDefinitionArn"]
        for _ in range(4)
    )
    created = ecs.create_daemon(
        daemonName="sensor",
        clusterArn=cluster,
        daemonTaskDefinitionArn=v1,
        capacityProviderArns=[provider],
        critical=False,
        enableExecuteCommand=True,
    )
    daemon = created["daemonArn"]
    assert daemon == "arn:aws:ecs:us-east-1:123456789012:daemon/agents/sensor"
    assert created["deploymentArn"].startswith("arn:aws:ecs:us-east-1:123456789012:daemon-deployment/agents/sensor/")
    assert running(ecs, daemon) == [v1]

    ecs.update_daemon(daemonArn=daemon, daemonTaskDefinitionArn=v2, capacityProviderArns=[provider])
    assert running(ecs, daemon) == [v2]
    revision = ecs.describe_daemon(daemonArn=daemon)["daemon"]["currentRevisions"][0]
    assert [p["arn"] for p in revision["capacityProviders"]] == [provider]
    [settings] = ecs.describe_daemon_revisions(daemonRevisionArns=[revision["arn"]])["daemonRevisions"]
    assert (settings["critical"], settings["enableExecuteCommand"]) == (False, True)  # kept when left out

    hook(moto_endpoint, "next-deployment", daemon, "ROLLBACK_SUCCESSFUL")
    rolled = ecs.update_daemon(daemonArn=daemon, daemonTaskDefinitionArn=v3, capacityProviderArns=[provider])
    assert running(ecs, daemon) == [v2]  # back on the previous revision
    [deployment] = ecs.describe_daemon_deployments(daemonDeploymentArns=[rolled["deploymentArn"]])["daemonDeployments"]
    assert deployment["status"] == "ROLLBACK_SUCCESSFUL"
    assert deployment["rollback"]["rollbackTargetDaemonRevisionArn"] == revision["arn"]
    assert deployment["circuitBreaker"]["status"] == "TRIGGERED"
    history = ecs.list_daemon_deployments(daemonArn=daemon)["daemonDeployments"]
    assert [d["status"] for d in history] == ["ROLLBACK_SUCCESSFUL", "SUCCESSFUL", "SUCCESSFUL"]  # newest first

    hook(moto_endpoint, "next-deployment", daemon, "IN_PROGRESS")
    ecs.update_daemon(daemonArn=daemon, daemonTaskDefinitionArn=v4, capacityProviderArns=[provider])
    assert running(ecs, daemon) == [v4, v2]  # both while instances are replaced
    hook(moto_endpoint, "finish-deployment", daemon, "SUCCESSFUL")
    assert running(ecs, daemon) == [v4]
    assert ecs.list_daemon_deployments(daemonArn=daemon, status=["SUCCESSFUL"], maxResults=2)["nextToken"]


def test_daemon_deployments_page_at_twenty(moto_endpoint: str) -> None:
    ecs = ecs_client(moto_endpoint)
    cluster, provider = cluster_with_provider(ecs)
    arn = ecs.register_daemon_task_definition(**daemon_task_definition("agent"))["daemonTaskDefinitionArn"]
    daemon = ecs.create_daemon(
        daemonName="a", clusterArn=cluster, daemonTaskDefinitionArn=arn, capacityProviderArns=[provider]
    )["daemonArn"]
    for _ in range(22):
        ecs.update_daemon(daemonArn=daemon, daemonTaskDefinitionArn=arn, capacityProviderArns=[provider])
    first = ecs.list_daemon_deployments(daemonArn=daemon)
    second = ecs.list_daemon_deployments(daemonArn=daemon, nextToken=first["nextToken"])
    assert (len(first["daemonDeployments"]), len(second["daemonDeployments"])) == (20, 3)
    assert "nextToken" not in second
    everything = [d["daemonDeploymentArn"] for d in first["daemonDeployments"] + second["daemonDeployments"]]
    assert len(set(everything)) == 23


def test_create_daemon_checks_cluster_capacity_providers_and_revision(moto_endpoint: str) -> None:
    ecs = ecs_client(moto_endpoint)
    cluster, provider = cluster_with_provider(ecs)
    ecs.create_cluster(clusterName="other")
    elsewhere = managed_instances_provider(ecs, "other", "mi-other")
    asg = ecs.create_capacity_provider(
        name="asg",
        autoScalingGroupProvider={"autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:123456789012:x"},
    )["capacityProvider"]["capacityProviderArn"]
    arn = ecs.register_daemon_task_definition(**daemon_task_definition("agent"))["daemonTaskDefinitionArn"]

    def create(**overrides: Any) -> Any:
        params = {
            "daemonName": "agent",
            "clusterArn": cluster,
            "daemonTaskDefinitionArn": arn,
            "capacityProviderArns": [provider],
            **overrides,
        }
        return ecs.create_daemon(**params)

    for overrides, expected, says in [
        ({"clusterArn": "nope"}, "ClusterNotFoundException", "Cluster not found"),
        ({"capacityProviderArns": [asg]}, "InvalidParameterException", "Managed Instances"),
        ({"capacityProviderArns": [elsewhere]}, "InvalidParameterException", "cluster"),
        ({"capacityProviderArns": []}, "InvalidParameterException", "capacityProviderArns"),
        ({"capacityProviderArns": [provider + "x"]}, "InvalidParameterException", "not found"),
        ({"daemonTaskDefinitionArn": arn[:-1] + "9"}, "ClientException", "Unable to describe"),
        ({"daemonName": "no spaces"}, "InvalidParameterException", "daemonName"),
        ({"deploymentConfiguration": {"drainPercent": 120.0}}, "InvalidParameterException", "drainPercent"),
    ]:
        with pytest.raises(ClientError, match=says) as error:
            create(**overrides)
        assert code(error) == expected, overrides
    assert ecs.list_daemons(clusterArn=cluster)["daemonSummariesList"] == []

    once = create(clientToken="token-1")
    assert create(clientToken="token-1")["daemonArn"] == once["daemonArn"]  # idempotent retry
    with pytest.raises(ClientError, match="already exists"):
        create()
    assert len(ecs.list_daemons(clusterArn=cluster)["daemonSummariesList"]) == 1
    with pytest.raises(ClientError) as error:
        ecs.describe_daemon(daemonArn=once["daemonArn"] + "x")
    assert code(error) == "DaemonNotFoundException"


def test_describe_daemon_revisions_takes_twenty_and_reports_missing(moto_endpoint: str) -> None:
    ecs = ecs_client(moto_endpoint)
    missing = "arn:aws:ecs:us-east-1:123456789012:daemon-revision/agents/agent/0"
    answer = ecs.describe_daemon_revisions(daemonRevisionArns=[missing])
    assert answer["daemonRevisions"] == [] and answer["failures"] == [{"arn": missing, "reason": "MISSING"}]
    with pytest.raises(ClientError, match="between 1 and 20"):
        ecs.describe_daemon_revisions(daemonRevisionArns=[missing] * 21)


def test_tags_on_daemon_task_definitions_and_moto_resources_side_by_side(moto_endpoint: str) -> None:
    ecs = ecs_client(moto_endpoint)
    arn = ecs.register_daemon_task_definition(**daemon_task_definition(tags=[{"key": "team", "value": "a"}]))[
        "daemonTaskDefinitionArn"
    ]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "b"}, {"key": "tier", "value": "1"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["tier"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "team", "value": "b"}]
    with pytest.raises(ClientError, match="reserved"):
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "AWS:x", "value": "y"}])
    with pytest.raises(ClientError, match="50"):
        ecs.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(50)])
    task = ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "a", "image": "x", "memory": 8}], tags=[{"key": "k", "value": "v"}]
    )["taskDefinition"]["taskDefinitionArn"]
    assert ecs.list_tags_for_resource(resourceArn=task)["tags"] == [{"key": "k", "value": "v"}]  # moto's, untouched


def test_reset_clears_daemon_state(moto_endpoint: str) -> None:
    ecs = ecs_client(moto_endpoint)
    ecs.register_daemon_task_definition(**daemon_task_definition())
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).read()
    assert daemon_arns(ecs) == []
    assert ecs.register_daemon_task_definition(**daemon_task_definition())["daemonTaskDefinitionArn"].endswith(":1")


def test_a_daemon_being_deleted_still_runs_its_revision_until_it_is_gone(moto_endpoint: str) -> None:
    ecs = ecs_client(moto_endpoint)
    cluster, provider = cluster_with_provider(ecs)
    arn = ecs.register_daemon_task_definition(**daemon_task_definition())["daemonTaskDefinitionArn"]
    daemon = ecs.create_daemon(
        daemonName="agent", clusterArn=cluster, daemonTaskDefinitionArn=arn, capacityProviderArns=[provider]
    )["daemonArn"]
    assert ecs.delete_daemon(daemonArn=daemon)["status"] == "DELETE_IN_PROGRESS"
    ecs.delete_daemon_task_definition(daemonTaskDefinition=arn)
    assert [d["status"] for d in ecs.list_daemons(clusterArn=cluster)["daemonSummariesList"]] == ["DELETE_IN_PROGRESS"]
    assert running(ecs, daemon) == [arn]
    assert ecs.describe_daemon_task_definition(daemonTaskDefinition=arn)["daemonTaskDefinition"]["status"] == (
        "DELETE_IN_PROGRESS"
    )
    for call in (
        lambda: ecs.delete_daemon(daemonArn=daemon),
        lambda: ecs.update_daemon(daemonArn=daemon, daemonTaskDefinitionArn=arn, capacityProviderArns=[provider]),
    ):
        with pytest.raises(ClientError) as error:
            call()
        assert code(error) == "DaemonNotActiveException"
    hook(moto_endpoint, "finish-delete", daemon, "")
    with pytest.raises(ClientError) as error:
        ecs.describe_daemon(daemonArn=daemon)
    assert code(error) == "DaemonNotFoundException"
    assert ecs.describe_daemon_task_definition(daemonTaskDefinition=arn)["daemonTaskDefinition"]["status"] == "DELETED"
