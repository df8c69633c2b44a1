"""Issue 13: the policed developer (RegisterDaemonTaskDefinition and tag-on-create only, through their own assumed-role
credentials) against the daemon path, as tests/test_attacks.py does for task definitions: the same trust rules, one
test per guarantee, through the real handler and the real sweep; every assertion reads state back from the emulator
or the inbox queue."""

from __future__ import annotations

import io
import json
import logging
from types import ModuleType
from typing import Any

import pytest
from test_daemon_rollout import daemon_state
from test_handler import invoke

from conftest import load_handler
from demo.daemon_sandbox import call_event, cluster_with_provider
from demo.sandbox import ACCOUNT, Sandbox
from ecs_remediate.cli.main import main
from ecs_remediate.core.taskdef import Document, build_fixed_copy, default_daemon_register_model

MARKER = "ecs-remediate:source-revision"
ATTACKER = f"arn:aws:sts::{ACCOUNT}:assumed-role/Dev/mallory"
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]


def sensor(image: str = "vendor/sensor:7", privileged: bool = True, **extra: Any) -> dict[str, Any]:
    return {"name": "sensor", "image": image, "privileged": privileged, **extra}


def register(box: Sandbox, params: dict[str, Any]) -> str:
    return str(box.client("ecs").register_daemon_task_definition(**params)["daemonTaskDefinitionArn"])


def status(box: Sandbox, arn: str) -> str:
    return str(
        box.client("ecs").describe_daemon_task_definition(daemonTaskDefinition=arn)["daemonTaskDefinition"]["status"]
    )


def event(box: Sandbox, params: dict[str, Any], arn: str, user: str = ATTACKER) -> dict[str, Any]:
    return call_event(box, "RegisterDaemonTaskDefinition", params, {"daemonTaskDefinitionArn": arn}, user_arn=user)


@pytest.fixture
def attacker(sandbox: Sandbox) -> Sandbox:
    return sandbox.as_principal("Dev", "mallory")


@pytest.fixture
def production(sandbox: Sandbox) -> tuple[str, str]:
    """sensor:1, privileged, run by the daemon agents/sensor: (its ARN, the daemon's)."""
    arn = register(sandbox, {"family": "sensor", "containerDefinitions": [sensor()]})
    cluster, provider = cluster_with_provider(sandbox)
    daemon = sandbox.client("ecs").create_daemon(
        daemonName="sensor", clusterArn=cluster, daemonTaskDefinitionArn=arn, capacityProviderArns=[provider]
    )
    return arn, str(daemon["daemonArn"])


@pytest.fixture
def armed(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_handler(sandbox, monkeypatch, DAEMON_ROLLOUT="true", RETIRE="true")


# 1. Forged copy marker ------------------------------------------------------------------------------------------


def test_1_a_forged_copy_marker_moves_no_daemon_and_is_reported(
    sandbox: Sandbox, attacker: Sandbox, production: tuple[str, str], armed: ModuleType
) -> None:
    source, daemon = production
    forged = {
        "family": "sensor",
        "containerDefinitions": [sensor("attacker/miner:latest", privileged=False)],
        "tags": [{"key": MARKER, "value": "sensor:1"}],
    }
    forged_arn = register(attacker, forged)
    result = invoke(armed, event(sandbox, {"family": "sensor", "containerDefinitions": [sensor()]}, source))

    assert result["outcome"] == "superseded"
    assert daemon_state(sandbox, daemon)[0] == [source]  # never moved onto the attacker's image
    assert status(sandbox, source) == "ACTIVE"  # a daemon runs it: not deleted
    [note] = sandbox.inbox()
    [claim] = note.payload["forgedCopies"]
    assert claim["arn"] == forged_arn and claim["registeredBy"] == ATTACKER and "content differs" in claim["why"]
    assert "FORGED" in note.subject and note.payload["severity"] == "HIGH"
    assert not any(forged_arn.rsplit("/", 1)[1] in c for c in note.payload["nextCommands"])
    assert [d["daemon"] for d in note.payload["daemons"]] == ["sensor"]


def test_1_an_exact_copy_the_stack_did_not_register_is_not_acted_on(
    sandbox: Sandbox, attacker: Sandbox, production: tuple[str, str], armed: ModuleType
) -> None:
    source, daemon = production
    described = sandbox.client("ecs").describe_daemon_task_definition(daemonTaskDefinition=source)
    model = default_daemon_register_model()
    exact = build_fixed_copy(
        Document("daemon-describe-response", described["daemonTaskDefinition"], []), model, (MARKER, "sensor:1")
    ).register_input
    register(attacker, dict(exact))  # the right content, registered by the developer
    result = invoke(armed, event(sandbox, {"family": "sensor", "containerDefinitions": [sensor()]}, source))
    assert result["outcome"] == "superseded"
    assert daemon_state(sandbox, daemon)[0] == [source]
    [note] = sandbox.inbox()
    assert "the stack has no record of registering it" in note.payload["raceNote"]


def test_1_the_sweep_marks_a_forged_daemon_copy_and_moves_nothing_onto_it(
    sandbox: Sandbox, attacker: Sandbox, production: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, daemon = production
    forged_arn = register(
        attacker,
        {
            "family": "sensor",
            "containerDefinitions": [sensor("attacker/miner:latest", privileged=False)],
            "tags": [{"key": MARKER, "value": "sensor:1"}],
        },
    )
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", *FAST, "--remediate", "--daemon-rollout", "--retire"], stdout, stderr)
    rows = {row["taskDefinitionArn"]: row for row in json.loads(stdout.getvalue())}
    assert code == 1
    assert rows[forged_arn]["forged"] and ATTACKER in rows[forged_arn]["forged"]
    assert rows[forged_arn]["action"].startswith("forged:")
    assert rows[source]["status"] == "FAIL"
    assert daemon_state(sandbox, daemon)[0] == [source] and status(sandbox, source) == "ACTIVE"


# 2. Self-granted exemptions -------------------------------------------------------------------------------------


def test_2_exemption_tags_do_not_exempt_a_daemon_task_definition(
    sandbox: Sandbox, attacker: Sandbox, handler: ModuleType
) -> None:
    params = {
        "family": "miner",
        "containerDefinitions": [sensor("attacker/miner:latest")],
        "tags": [
            {"key": "ecs-remediate:exempt-reason", "value": "trust me"},
            {"key": "ecs-remediate:exempt-until", "value": "9999-12-31"},
        ],
    }
    arn = register(attacker, params)
    result = invoke(handler, event(sandbox, params, arn))
    assert result["outcome"] == "remediated"
    [note] = sandbox.inbox()
    assert "not honoured" in note.payload["exemption"]
    assert status(sandbox, result["new_task_definition_arn"]) == "ACTIVE"


# 3. Superseded privileged revisions are never silent --------------------------------------------------------------


def test_3_agent1_then_agent2_gives_a_notice_about_agent1_and_deletes_it_when_unused(
    sandbox: Sandbox, attacker: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, RETIRE="true")
    privileged = {"family": "agent", "containerDefinitions": [sensor()]}
    first = register(attacker, privileged)
    register(attacker, {"family": "agent", "containerDefinitions": [sensor(privileged=False)]})  # before the event
    result = invoke(handler, event(sandbox, privileged, first))
    assert result["outcome"] == "superseded"
    assert status(sandbox, first) in ("DELETE_IN_PROGRESS", "DELETED")  # no daemon runs it
    [note] = sandbox.inbox()
    assert note.payload["retired"] is True and note.payload["latestArn"].endswith("daemon-task-definition/agent:2")
    assert note.payload["registration"]["userArn"] == ATTACKER


def test_3_a_superseded_revision_a_daemon_runs_is_named_with_the_daemon_and_kept(
    sandbox: Sandbox, production: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, RETIRE="true")
    source, _ = production
    register(sandbox, {"family": "sensor", "containerDefinitions": [sensor(privileged=False)]})
    result = invoke(handler, event(sandbox, {"family": "sensor", "containerDefinitions": [sensor()]}, source))
    assert result["outcome"] == "superseded" and status(sandbox, source) == "ACTIVE"
    [note] = sandbox.inbox()
    [manual] = note.payload["daemonsManual"]
    assert manual["daemon"] == "sensor" and "aws ecs update-daemon --daemon-arn" in manual["step"]
    assert note.payload["retireNote"].startswith("not deleted: 1 daemon(s) still run it")


# 8. Another account's resources ---------------------------------------------------------------------------------


def test_8_a_daemon_call_naming_another_account_is_skipped(sandbox: Sandbox, armed: ModuleType) -> None:
    other = "arn:aws:ecs:us-east-1:210987654321"
    request = {
        "daemonArn": f"{other}:daemon/agents/x",
        "daemonTaskDefinitionArn": f"{other}:daemon-task-definition/x:1",
    }
    result = invoke(armed, call_event(sandbox, "UpdateDaemon", request, {"daemonArn": f"{other}:daemon/agents/x"}))
    assert (
        result["outcome"] == "skipped"
        and "names no daemon or daemon task definition of this account" in (result["reason"])
    )
    foreign = call_event(
        sandbox, "RegisterDaemonTaskDefinition", {}, {"daemonTaskDefinitionArn": f"{other}:daemon-task-definition/x:1"}
    )
    assert invoke(armed, foreign)["reason"].startswith("foreign account")
    assert sandbox.inbox() == []


# 5. DEBUG logging leaks nothing ----------------------------------------------------------------------------------


def test_5_at_debug_no_planted_secret_appears_in_any_log_record_or_notice(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "PLANTED-DAEMON-SECRET-41c7"
    params = {
        "family": "leaky",
        "containerDefinitions": [
            sensor(environment=[{"name": "SENSOR_TOKEN", "value": secret}], command=["--token", f"{secret}-cmd"])
        ],
    }
    handler = load_handler(sandbox, monkeypatch, POWERTOOLS_LOG_LEVEL="DEBUG")
    arn = register(sandbox, params)
    with caplog.at_level(logging.DEBUG):
        result = invoke(handler, event(sandbox, params, arn))
    assert result["outcome"] == "remediated"
    logged = caplog.text + capsys.readouterr().out + capsys.readouterr().err
    assert secret not in logged
    [note] = sandbox.inbox()
    assert secret not in json.dumps(note.payload)
