"""Issue 13 acceptance, daemons: CreateDaemon/UpdateDaemon through the handler, daemon rollout onto the verified copy
(capacity providers and settings unchanged, services untouched), the follow-up notice on the deployment's outcome
(a rollback included), and retire (never while a daemon's current revision uses the revision; fail-closed). Every
check reads the emulator's daemons and revisions back, and the notices from the inbox."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest
from test_daemon_handler import describe, register, register_event, revisions
from test_handler import invoke

from conftest import SHARED_FIXTURES, load_handler, load_json
from demo.daemon_sandbox import call_event, cluster_with_provider, deployment_event, next_deployment
from demo.sandbox import Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.core.taskdef import privileged_containers

SENSOR = SHARED_FIXTURES / "daemons" / "crafted__security-sensor_privileged_register-input.json"


def create_daemon(sandbox: Sandbox, arn: str, name: str = "sensor", **extra: Any) -> tuple[str, dict[str, Any]]:
    cluster, provider = cluster_with_provider(sandbox, provider=f"mi-{name}")
    params = {
        "daemonName": name,
        "clusterArn": cluster,
        "daemonTaskDefinitionArn": arn,
        "capacityProviderArns": [provider],
        **extra,
    }
    response = sandbox.client("ecs").create_daemon(**params)
    return str(response["daemonArn"]), call_event(sandbox, "CreateDaemon", params, response)


def daemon_state(sandbox: Sandbox, daemon_arn: str) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    """(task definitions its current revisions run, their capacity providers, the first revision's settings)."""
    ecs = sandbox.client("ecs")
    detail = ecs.describe_daemon(daemonArn=daemon_arn)["daemon"]
    arns = [r["arn"] for r in detail["currentRevisions"]]
    described = ecs.describe_daemon_revisions(daemonRevisionArns=arns)["daemonRevisions"]
    providers = [[p["arn"] for p in r["capacityProviders"]] for r in detail["currentRevisions"]]
    settings = {k: described[0].get(k) for k in ("propagateTags", "enableExecuteCommand", "critical")}
    return [r["daemonTaskDefinitionArn"] for r in described], providers, settings


@pytest.fixture
def rollout(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_handler(sandbox, monkeypatch, DAEMON_ROLLOUT="true")


def test_create_daemon_on_a_privileged_revision_is_fixed_and_the_daemon_named(
    sandbox: Sandbox, handler: ModuleType
) -> None:
    """Registered before the stack existed (no event then); the daemon pointed at it now is the news."""
    arn = register(sandbox, load_json(SENSOR))
    daemon_arn, event = create_daemon(sandbox, arn)
    result = invoke(handler, event)
    assert result["outcome"] == "remediated" and result["task_definition_arn"] == arn
    fixed = describe(sandbox, result["new_task_definition_arn"])
    assert privileged_containers(fixed) == []
    assert daemon_state(sandbox, daemon_arn)[0] == [arn]  # without daemon rollout: not moved
    [note] = sandbox.inbox()
    assert note.payload["registration"]["eventName"] == "CreateDaemon"
    assert note.payload["registration"]["daemonArn"] == daemon_arn
    [manual] = note.payload["daemonsManual"]
    assert manual["daemon"] == "sensor" and "aws ecs update-daemon --daemon-arn" in manual["step"]
    assert result["new_task_definition_arn"] in manual["step"] and "--capacity-provider-arns arn:" in manual["step"]


def test_update_daemon_onto_a_compliant_revision_writes_nothing_and_notifies_nothing(
    sandbox: Sandbox, handler: ModuleType
) -> None:
    params = load_json(SENSOR)
    privileged = register(sandbox, params)
    plain = {**params, "containerDefinitions": [{**c, "privileged": False} for c in params["containerDefinitions"]]}
    compliant = register(sandbox, plain)
    daemon_arn, _ = create_daemon(sandbox, compliant)
    request = {"daemonArn": daemon_arn, "daemonTaskDefinitionArn": compliant, "capacityProviderArns": ["x"]}
    result = invoke(handler, call_event(sandbox, "UpdateDaemon", request, {"daemonArn": daemon_arn}))
    assert result["outcome"] == "compliant"
    assert revisions(sandbox, "security-sensor") == [privileged, compliant] and sandbox.inbox() == []


def test_daemon_rollout_moves_the_daemon_with_its_capacity_providers_and_never_touches_services(
    sandbox: Sandbox, rollout: ModuleType
) -> None:
    ecs = sandbox.client("ecs")
    arn = register(sandbox, load_json(SENSOR))
    daemon_arn, event = create_daemon(sandbox, arn, critical=False, enableExecuteCommand=True, propagateTags="DAEMON")
    _, providers_before, settings_before = daemon_state(sandbox, daemon_arn)
    web = ecs.register_task_definition(family="web", containerDefinitions=[{"name": "a", "image": "x", "memory": 8}])
    ecs.create_service(
        cluster="agents", serviceName="web", taskDefinition=web["taskDefinition"]["taskDefinitionArn"], desiredCount=1
    )
    calls: list[str] = []
    aws.client("ecs").meta.events.register("before-call.ecs.*", lambda model, **_: calls.append(model.name))

    result = invoke(rollout, event)

    copy = result["new_task_definition_arn"]
    running, providers, settings = daemon_state(sandbox, daemon_arn)
    assert running == [copy] and providers == providers_before and settings == settings_before
    assert "UpdateService" not in calls and calls.count("UpdateDaemon") == 1
    [service] = ecs.describe_services(cluster="agents", services=["web"])["services"]
    assert service["taskDefinition"] == web["taskDefinition"]["taskDefinitionArn"]
    [note] = sandbox.inbox()
    [moved] = note.payload["daemonsUpdated"]
    assert moved["daemonArn"] == daemon_arn and ":daemon-deployment/" in moved["deploymentArn"]
    # the stack recorded the deployment it started: its outcome comes as a follow-up
    item = sandbox.client("dynamodb").get_item(
        TableName=sandbox.table_name, Key={"id": {"S": "ecs-remediate#daemon-deployment#" + moved["deploymentArn"]}}
    )["Item"]
    assert (item["daemonArn"]["S"], item["sourceArn"]["S"], item["copyArn"]["S"]) == (daemon_arn, arn, copy)

    followup = invoke(rollout, deployment_event(moved["deploymentArn"], daemon_arn, "DAEMON_DEPLOYMENT_SUCCESSFUL"))
    assert followup["deployment"]["status"] == "SUCCESSFUL"
    [done] = sandbox.inbox()
    assert done.attributes["outcome"] == "daemon-deployment" and "deployment SUCCESSFUL" in done.subject
    assert [d["revisions"] for d in done.payload["daemons"]] == [[copy.rsplit("/", 1)[-1]]]


def test_a_rollback_is_reported_in_the_follow_up_notice(
    sandbox: Sandbox, rollout: ModuleType, moto_endpoint: str
) -> None:
    arn = register(sandbox, load_json(SENSOR))
    daemon_arn, event = create_daemon(sandbox, arn)
    next_deployment(moto_endpoint, daemon_arn, "ROLLBACK_SUCCESSFUL")  # the de-privileged agent fails to start
    result = invoke(rollout, event)
    [note] = sandbox.inbox()
    [moved] = note.payload["daemonsUpdated"]
    assert daemon_state(sandbox, daemon_arn)[0] == [arn]  # ECS rolled it back onto the privileged revision
    sent: list[dict[str, Any]] = []
    aws.client("sns").meta.events.register("provide-client-params.sns.Publish", lambda params, **_: sent.append(params))

    # the event's name says SUCCESSFUL; the function believes DescribeDaemonDeployments, not the event body
    followup = invoke(rollout, deployment_event(moved["deploymentArn"], daemon_arn, "DAEMON_DEPLOYMENT_SUCCESSFUL"))

    assert followup["deployment"]["status"] == "ROLLBACK_SUCCESSFUL"
    [rolled_back] = sandbox.inbox()
    assert rolled_back.payload["severity"] == "HIGH" and "privileged again" in rolled_back.subject
    assert rolled_back.payload["newTaskDefinitionArn"] == result["new_task_definition_arn"]
    email = json.loads(sent[-1]["Message"])["email"]
    assert "ECS rolled the daemon back to the privileged revision" in email
    assert "linuxParameters.capabilities.add" in email
    # the same outcome delivered again: one notice only
    invoke(rollout, deployment_event(moved["deploymentArn"], daemon_arn, "DAEMON_DEPLOYMENT_ROLLBACK_SUCCESSFUL"))
    assert sandbox.inbox() == []


def test_deployments_the_stack_did_not_start_get_no_notice(sandbox: Sandbox, rollout: ModuleType) -> None:
    arn = register(sandbox, load_json(SENSOR))
    daemon_arn, _ = create_daemon(sandbox, arn)
    detail = sandbox.client("ecs").describe_daemon(daemonArn=daemon_arn)["daemon"]
    result = invoke(rollout, deployment_event(detail["deploymentArn"], daemon_arn, "DAEMON_DEPLOYMENT_SUCCESSFUL"))
    assert result["outcome"] == "skipped" and "not a deployment this stack started" in result["reason"]
    assert sandbox.inbox() == []


def test_retire_refuses_while_a_daemon_uses_the_revision(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = load_handler(sandbox, monkeypatch, RETIRE="true")
    params = load_json(SENSOR)
    arn = register(sandbox, params)
    create_daemon(sandbox, arn)
    result = invoke(handler, register_event(sandbox, params, arn))
    assert result["outcome"] == "remediated"
    assert describe(sandbox, arn)["status"] == "ACTIVE"  # the daemon's current revision runs it
    [note] = sandbox.inbox()
    assert note.payload["retired"] is False
    assert note.payload["retireNote"].startswith("not deleted: 1 daemon(s) still run it (agents/sensor)")


def test_retire_deletes_once_no_daemon_uses_it_and_says_running_daemons_keep_running(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, RETIRE="true", DAEMON_ROLLOUT="true")
    arn = register(sandbox, load_json(SENSOR))
    daemon_arn, event = create_daemon(sandbox, arn)
    result = invoke(handler, event)
    assert daemon_state(sandbox, daemon_arn)[0] == [result["new_task_definition_arn"]]
    assert describe(sandbox, arn)["status"] in ("DELETE_IN_PROGRESS", "DELETED")
    [note] = sandbox.inbox()
    assert note.payload["retired"] is True
    assert "daemons already running it keep running it" in note.payload["retireNote"]


def test_retire_and_rollout_fail_closed_when_the_daemons_cannot_be_established(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, RETIRE="true", DAEMON_ROLLOUT="true")
    arn = register(sandbox, load_json(SENSOR))
    daemon_arn, event = create_daemon(sandbox, arn)

    def lose_revisions(response_dict: dict[str, Any], **_: Any) -> None:  # a revision that cannot be described
        body = json.loads(response_dict["body"])
        response_dict["body"] = json.dumps({**body, "daemonRevisions": []}).encode()

    aws.client("ecs").meta.events.register_first("before-parse.ecs.DescribeDaemonRevisions", lose_revisions)
    result = invoke(handler, event)
    assert result["outcome"] == "remediated"
    assert describe(sandbox, arn)["status"] == "ACTIVE"  # never "no daemon uses it"
    assert daemon_state(sandbox, daemon_arn)[0] == [arn]  # nothing moved
    [note] = sandbox.inbox()
    assert note.payload["daemonsError"].startswith("which daemons run it could not be established")
    assert note.payload["retireNote"].startswith("not deleted: which daemons run it could not be established")
