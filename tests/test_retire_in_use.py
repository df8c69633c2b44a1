"""Issue 19: retire must not deregister a privileged revision while a service still runs it other than as its own task
definition: in a deployment that still has tasks (a rolling deployment under way: its ACTIVE deployment, which a
failed deployment rolls back onto) or in a task set (CODE_DEPLOY and EXTERNAL deployment controllers). Nor delete a
daemon task definition while a daemon deployment still runs it.

The policed developer drives their own services (UpdateService, CreateTaskSet, UpdateDaemon) into those states; the real
handler and the real sweep then run with retire on. moto 5.2.5 keeps a service's deployments frozen on its first task
definition; emulators/moto_fidelity.py makes UpdateService start deployments as ECS does (at once, unless a test holds
them in progress). Task sets are moto's own (it lets a test create one on a CODE_DEPLOY service, where AWS has
CodeDeploy create them). Daemon deployments are the daemon emulator's (held in progress with its hook).
"""

from __future__ import annotations

import io
import json
from types import ModuleType
from typing import Any

import pytest
from test_handler import invoke

from conftest import load_handler
from demo.daemon_sandbox import call_event, cluster_with_provider, next_deployment
from demo.sandbox import ACCOUNT, Sandbox
from ecs_remediate.cli.main import main
from emulators import moto_fidelity

ATTACKER = f"arn:aws:sts::{ACCOUNT}:assumed-role/Dev/mallory"
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]
PRIVILEGED = {
    "family": "web",
    "containerDefinitions": [{"name": "app", "image": "web:1", "memory": 64, "privileged": True}],
}
NEXT = {"family": "web-next", "containerDefinitions": [{"name": "app", "image": "web:2", "memory": 64}]}


@pytest.fixture
def attacker(sandbox: Sandbox) -> Sandbox:
    return sandbox.as_principal("Dev", "mallory")


@pytest.fixture(autouse=True)
def deployments_released() -> Any:
    yield
    moto_fidelity.complete_deployments()  # nothing held leaks into the next test


def arn_of(response: dict[str, Any]) -> str:
    return str(response["taskDefinition"]["taskDefinitionArn"])


def status(sandbox: Sandbox, arn: str) -> str:
    return str(sandbox.describe(arn)["taskDefinition"]["status"])


def service(sandbox: Sandbox, cluster: str, name: str) -> dict[str, Any]:
    [described] = sandbox.client("ecs").describe_services(cluster=cluster, services=[name])["services"]
    return dict(described)


def estate(sandbox: Sandbox, attacker: Sandbox) -> tuple[dict[str, Any], str, str]:
    """web:1 (privileged, the family's latest), web-next:1 (compliant), the cluster blue; returns (the registration
    response of web:1, its ARN, web-next:1's ARN)."""
    response = attacker.register(PRIVILEGED)
    nxt = arn_of(attacker.register(NEXT))
    sandbox.client("ecs").create_cluster(clusterName="blue")
    return response, arn_of(response), nxt


def scan(*args: str) -> dict[str, dict[str, Any]]:
    stdout, stderr = io.StringIO(), io.StringIO()
    main(["scan", "--output", "json", *FAST, *args], stdout, stderr)
    return {row["taskDefinitionArn"].rsplit("/", 1)[1]: row for row in json.loads(stdout.getvalue() or "[]")}


# --- a rolling deployment under way ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rollout", ["true", "false"])
def test_a_deployment_moving_away_from_the_revision_blocks_retire(
    sandbox: Sandbox, attacker: Sandbox, monkeypatch: pytest.MonkeyPatch, rollout: str
) -> None:
    """The developer's service is being deployed from web:1 onto web-next:1; its ACTIVE deployment still runs web:1
    (a failed deployment rolls back onto it). The service's own taskDefinition already names web-next:1."""
    handler = load_handler(sandbox, monkeypatch, ROLLOUT=rollout, RETIRE="true")
    response, web1, nxt = estate(sandbox, attacker)
    svc = attacker.client("ecs").create_service(cluster="blue", serviceName="web", taskDefinition=web1, desiredCount=2)
    moto_fidelity.hold_deployments(svc["service"]["serviceArn"])
    attacker.client("ecs").update_service(cluster="blue", service="web", taskDefinition=nxt)

    result = invoke(handler, sandbox.event_for(PRIVILEGED, response, user_arn=ATTACKER))

    assert result["outcome"] == "remediated"
    assert status(sandbox, web1) == "ACTIVE"  # not deregistered under the ACTIVE deployment
    described = service(sandbox, "blue", "web")
    assert described["taskDefinition"] == nxt  # not moved: its own deployment stands
    assert [(d["status"], d["taskDefinition"]) for d in described["deployments"]] == [
        ("PRIMARY", nxt),
        ("ACTIVE", web1),
    ]
    [note] = sandbox.inbox()
    assert note.payload["retired"] is False and note.payload["servicesUpdated"] == []
    assert "not deregistered: 1 service(s) still use it (blue/web: deployment ecs-svc/" in note.payload["retireNote"]
    assert "(ACTIVE))" in note.payload["retireNote"]
    [held] = note.payload["servicesManual"]
    assert held["step"] == "aws ecs wait services-stable --cluster blue --services web --region us-east-1"
    assert "still runs it; it is not retired while one does" in held["note"]


def test_the_stacks_own_rollout_deployment_defers_retire_to_the_next_sweep(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in AWS: right after rollout's UpdateService the old deployment is ACTIVE until its tasks are replaced, so
    retire waits; once the deployment completed, the sweep (--scope active --retire) deregisters the revision."""
    handler = load_handler(sandbox, monkeypatch, ROLLOUT="true", RETIRE="true")
    response = sandbox.register(PRIVILEGED)
    web1 = arn_of(response)
    sandbox.client("ecs").create_cluster(clusterName="blue")
    svc = sandbox.client("ecs").create_service(cluster="blue", serviceName="web", taskDefinition=web1, desiredCount=1)
    moto_fidelity.hold_deployments(svc["service"]["serviceArn"])

    result = invoke(handler, sandbox.event_for(PRIVILEGED, response))

    copy = result["new_task_definition_arn"]
    assert service(sandbox, "blue", "web")["taskDefinition"] == copy  # moved
    assert status(sandbox, web1) == "ACTIVE"  # but its deployment is still under way
    [note] = sandbox.inbox()
    assert [s["service"] for s in note.payload["servicesUpdated"]] == ["web"]
    assert "blue/web: deployment ecs-svc/" in note.payload["retireNote"]

    moto_fidelity.complete_deployments()
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    rows = scan("--scope", "active", "--remediate", "--retire")
    assert rows["web:1"]["action"] == "retired: no service uses it; deregistered (INACTIVE)"
    assert status(sandbox, web1) == "INACTIVE"


# --- task sets -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("controller", ["EXTERNAL", "CODE_DEPLOY"])
def test_a_task_set_on_the_revision_blocks_retire(
    sandbox: Sandbox, attacker: Sandbox, monkeypatch: pytest.MonkeyPatch, controller: str
) -> None:
    """EXTERNAL: the service names no task definition at all, its task sets do. CODE_DEPLOY: traffic is on
    web-next:1 (the service's task definition) while the original task set on web:1 waits for termination."""
    handler = load_handler(sandbox, monkeypatch, ROLLOUT="true", RETIRE="true")
    response, web1, nxt = estate(sandbox, attacker)
    ecs = attacker.client("ecs")
    own = {"taskDefinition": nxt} if controller == "CODE_DEPLOY" else {}
    ecs.create_service(
        cluster="blue", serviceName="web", desiredCount=1, deploymentController={"type": controller}, **own
    )
    task_set = ecs.create_task_set(cluster="blue", service="web", taskDefinition=web1)["taskSet"]

    result = invoke(handler, sandbox.event_for(PRIVILEGED, response, user_arn=ATTACKER))

    assert result["outcome"] == "remediated"
    assert status(sandbox, web1) == "ACTIVE"
    assert [t["taskDefinition"] for t in service(sandbox, "blue", "web")["taskSets"]] == [web1]  # untouched
    [note] = sandbox.inbox()
    assert f"blue/web: task set {task_set['id']} (ACTIVE)" in note.payload["retireNote"]
    [held] = note.payload["servicesManual"]
    assert held["controller"] == controller
    step = "delete-task-set --cluster blue --service web" if controller == "EXTERNAL" else "describe-services"
    assert step in held["step"]


def test_without_a_deployment_or_task_set_the_revision_is_retired(
    sandbox: Sandbox, attacker: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control case: once the developer's deployment completed and the task set is deleted, retire proceeds."""
    handler = load_handler(sandbox, monkeypatch, RETIRE="true")
    response, web1, nxt = estate(sandbox, attacker)
    ecs = attacker.client("ecs")
    ecs.create_service(cluster="blue", serviceName="web", taskDefinition=web1, desiredCount=1)
    ecs.update_service(cluster="blue", service="web", taskDefinition=nxt)  # completes at once
    ecs.create_service(cluster="blue", serviceName="ext", desiredCount=1, deploymentController={"type": "EXTERNAL"})
    task_set = ecs.create_task_set(cluster="blue", service="ext", taskDefinition=web1)["taskSet"]
    ecs.delete_task_set(cluster="blue", service="ext", taskSet=task_set["taskSetArn"])
    invoke(handler, sandbox.event_for(PRIVILEGED, response, user_arn=ATTACKER))
    assert status(sandbox, web1) == "INACTIVE"


# --- the sweep: an older privileged revision that only a deployment still runs --------------------------------------


@pytest.mark.parametrize("flags", [["--retire"], ["--rollout", "--retire"]])
def test_the_sweep_neither_retires_nor_copies_a_revision_a_deployment_still_runs(
    sandbox: Sandbox, attacker: Sandbox, monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    web1 = arn_of(attacker.register(PRIVILEGED))
    web2 = arn_of(
        attacker.register({**PRIVILEGED, "containerDefinitions": [{"name": "app", "image": "web:2", "memory": 64}]})
    )
    sandbox.client("ecs").create_cluster(clusterName="blue")
    svc = attacker.client("ecs").create_service(cluster="blue", serviceName="web", taskDefinition=web1, desiredCount=2)
    moto_fidelity.hold_deployments(svc["service"]["serviceArn"])
    attacker.client("ecs").update_service(cluster="blue", service="web", taskDefinition=web2)

    rows = scan("--scope", "active", "--remediate", *flags)

    assert status(sandbox, web1) == "ACTIVE"
    assert sandbox.active_revisions("web") == [web1, web2]  # no copy of web:1: nothing would move onto it
    action = rows["web:1"]["action"]
    assert rows["web:1"]["status"] == "FAIL"
    assert action.startswith("superseded: used by 1 service(s): blue/web (ECS: deployment ecs-svc/")
    assert action.endswith("(ACTIVE)); never retired while a deployment or task set runs it")


# --- daemons: a daemon deployment under way ---------------------------------------------------------------------


def test_a_daemon_deployment_moving_away_from_the_revision_blocks_delete(
    sandbox: Sandbox, attacker: Sandbox, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The developer moves their daemon from sensor:1 onto sensor-next:1; while that deployment runs, the daemon's
    current revisions include sensor:1's, and retire (DeleteDaemonTaskDefinition) waits."""
    handler: ModuleType = load_handler(sandbox, monkeypatch, RETIRE="true")
    ecs = attacker.client("ecs")
    params = {"family": "sensor", "containerDefinitions": [{"name": "s", "image": "sensor:1", "privileged": True}]}
    sensor = ecs.register_daemon_task_definition(**params)["daemonTaskDefinitionArn"]
    nxt = ecs.register_daemon_task_definition(
        family="sensor-next", containerDefinitions=[{"name": "s", "image": "sensor:2"}]
    )["daemonTaskDefinitionArn"]
    cluster, provider = cluster_with_provider(sandbox)
    daemon = sandbox.client("ecs").create_daemon(
        daemonName="sensor", clusterArn=cluster, daemonTaskDefinitionArn=sensor, capacityProviderArns=[provider]
    )["daemonArn"]
    next_deployment(moto_endpoint, daemon, "IN_PROGRESS")
    ecs.update_daemon(daemonArn=daemon, daemonTaskDefinitionArn=nxt, capacityProviderArns=[provider])

    event = call_event(sandbox, "RegisterDaemonTaskDefinition", params, {"daemonTaskDefinitionArn": sensor})
    result = invoke(handler, event)

    assert result["outcome"] == "remediated"
    described = sandbox.client("ecs").describe_daemon_task_definition(daemonTaskDefinition=sensor)
    assert described["daemonTaskDefinition"]["status"] == "ACTIVE"  # not deleted
    [note] = sandbox.inbox()
    assert note.payload["retired"] is False
    assert "not deleted: 1 daemon(s) still run it (agents/sensor)" in note.payload["retireNote"]
