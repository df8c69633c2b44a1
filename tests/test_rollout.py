"""Rollout and retire through the handler against a moto server: which services move, which are listed,
when the privileged revision is deregistered, and what the notice says."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from test_handler import invoke

from conftest import load_handler
from demo.sandbox import Sandbox

PRIVILEGED = {
    "family": "web",
    "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 64, "privileged": True}],
}
OTHER = {"family": "other", "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 64}]}


def estate(sandbox: Sandbox) -> tuple[dict[str, Any], str, str]:
    """Two clusters; services on the privileged revision (ECS and CODE_DEPLOY controllers) and elsewhere."""
    ecs = sandbox.client("ecs")
    response = sandbox.register(PRIVILEGED)
    privileged = response["taskDefinition"]["taskDefinitionArn"]
    other = sandbox.register(OTHER)["taskDefinition"]["taskDefinitionArn"]
    for cluster in ("blue", "green"):
        ecs.create_cluster(clusterName=cluster)
    ecs.create_service(cluster="blue", serviceName="web-ecs", taskDefinition=privileged, desiredCount=1)
    ecs.create_service(cluster="green", serviceName="web-ecs-2", taskDefinition=privileged, desiredCount=1)
    ecs.create_service(
        cluster="green",
        serviceName="web-bluegreen",
        taskDefinition=privileged,
        desiredCount=1,
        deploymentController={"type": "CODE_DEPLOY"},
    )
    ecs.create_service(cluster="blue", serviceName="other", taskDefinition=other, desiredCount=1)
    return response, privileged, other


def service_revisions(sandbox: Sandbox) -> dict[str, str]:
    ecs = sandbox.client("ecs")
    found = {}
    for cluster in ("blue", "green"):
        arns = ecs.list_services(cluster=cluster)["serviceArns"]
        for service in ecs.describe_services(cluster=cluster, services=arns)["services"]:
            found[f"{cluster}/{service['serviceName']}"] = service["taskDefinition"].rsplit("/", 1)[1]
    return found


def test_rollout_moves_only_ecs_controlled_services_on_the_privileged_revision(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler: ModuleType = load_handler(sandbox, monkeypatch, ROLLOUT="true")
    response, privileged, _ = estate(sandbox)
    result = invoke(handler, sandbox.event_for(PRIVILEGED, response))
    assert result["outcome"] == "remediated"
    assert service_revisions(sandbox) == {
        "blue/web-ecs": "web:2",
        "green/web-ecs-2": "web:2",
        "green/web-bluegreen": "web:1",  # CODE_DEPLOY: not touched
        "blue/other": "other:1",
    }
    [note] = sandbox.inbox()
    updated = sorted((s["cluster"], s["service"]) for s in note.payload["servicesUpdated"])
    assert updated == [("blue", "web-ecs"), ("green", "web-ecs-2")]
    assert all(s["deploymentId"] for s in note.payload["servicesUpdated"])
    [manual] = note.payload["servicesManual"]
    assert (manual["cluster"], manual["service"], manual["controller"]) == ("green", "web-bluegreen", "CODE_DEPLOY")
    assert "web:2" in manual["step"]
    # without retire the revision stays ACTIVE, and the notice counts what remains
    assert sandbox.describe(privileged)["taskDefinition"]["status"] == "ACTIVE"
    assert note.payload["remainingPrivileged"] == 1
    assert note.payload["retired"] is False


def test_retire_never_deregisters_a_revision_a_service_still_uses(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, ROLLOUT="true", RETIRE="true")
    response, privileged, _ = estate(sandbox)
    invoke(handler, sandbox.event_for(PRIVILEGED, response))
    assert sandbox.describe(privileged)["taskDefinition"]["status"] == "ACTIVE"
    [note] = sandbox.inbox()
    assert note.payload["retired"] is False
    assert "1 service(s) still use it" in note.payload["retireNote"]


def test_rollout_and_retire_leave_no_active_privileged_revision(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, ROLLOUT="true", RETIRE="true")
    ecs = sandbox.client("ecs")
    response = sandbox.register(PRIVILEGED)
    privileged = response["taskDefinition"]["taskDefinitionArn"]
    ecs.create_cluster(clusterName="blue")
    ecs.create_service(cluster="blue", serviceName="web", taskDefinition=privileged, desiredCount=1)

    result = invoke(handler, sandbox.event_for(PRIVILEGED, response))
    assert result["outcome"] == "remediated"
    assert sandbox.describe(privileged)["taskDefinition"]["status"] == "INACTIVE"
    assert service_revisions_one(sandbox, "blue", "web") == "web:2"
    assert sandbox.active_revisions("web") == [result["new_task_definition_arn"]]
    [note] = sandbox.inbox()
    assert note.payload["retired"] is True and note.payload["remainingPrivileged"] is None
    # the same event again: judged afresh, the revision is INACTIVE now, nothing more happens
    again = invoke(handler, sandbox.event_for(PRIVILEGED, response))
    assert (again["outcome"], again["reason"]) == ("skipped", "the revision is INACTIVE")
    assert sandbox.active_revisions("web") == [result["new_task_definition_arn"]]
    assert sandbox.inbox() == []


def test_retire_without_rollout_deregisters_an_unused_revision(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, RETIRE="true")
    response = sandbox.register(PRIVILEGED)
    invoke(handler, sandbox.event_for(PRIVILEGED, response))
    assert sandbox.describe(response["taskDefinition"]["taskDefinitionArn"])["taskDefinition"]["status"] == "INACTIVE"


def test_default_counts_the_privileged_revisions_left(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = load_handler(sandbox, monkeypatch)
    sandbox.register(PRIVILEGED)
    sandbox.register(PRIVILEGED)
    response = sandbox.register(PRIVILEGED)
    invoke(handler, sandbox.event_for(PRIVILEGED, response))
    [note] = sandbox.inbox()
    assert note.payload["remainingPrivileged"] == 3
    assert note.payload["servicesChecked"] is False
    assert len(sandbox.active_revisions("web")) == 4


def service_revisions_one(sandbox: Sandbox, cluster: str, service: str) -> str:
    described = sandbox.client("ecs").describe_services(cluster=cluster, services=[service])["services"][0]
    return str(described["taskDefinition"].rsplit("/", 1)[1])
