"""No secret in any notice or log line, for every task-definition fixture and every event fixture.

Each sensitive value of a fixture (environment values, `secrets[].valueFrom`, `secretOptions[].valueFrom`,
`repositoryCredentials.credentialsParameter`, `proxyConfiguration` properties) is replaced by a distinctive token,
so that a leak is found by a plain substring search. Each fixture is run through the function three times: in
remediate mode, in report mode, and with the copy refused (AccessDenied on iam:PassRole: the failure notice quotes
the API's error message). Every notice (SNS -> SQS inbox) and every line the process logged is searched.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from strategies import SECRET_PREFIX, Fault, collect_secrets, leaked_secrets, record

from conftest import LOCAL_FIXTURES, SHARED_FIXTURES, load_handler, load_json, local_taskdefs, shared_taskdefs
from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.core.taskdef import default_register_model, parse_document

TOKENS = (f"{SECRET_PREFIX}{n:016x}" for n in itertools.count(0xA000))
FIGURES: dict[str, int] = {
    "fixtures": 0,
    "runs": 0,
    "secrets_planted": 0,
    "notices_searched": 0,
    "log_lines_searched": 0,
}


@pytest.fixture(scope="module", autouse=True)
def figures() -> Iterator[None]:
    yield
    record("secrets", **FIGURES)


def plant_secrets(value: Any) -> Any:
    """The same document with every sensitive value replaced by a token."""
    if isinstance(value, list):
        return [plant_secrets(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: plant_secrets(v) for k, v in value.items()}
    for key in ("environment", "secrets", "secretOptions"):
        if isinstance(out.get(key), list):
            for item in out[key]:
                if isinstance(item, dict):
                    for field in ("value", "valueFrom"):
                        if field in item:
                            item[field] = next(TOKENS)
    credentials = out.get("repositoryCredentials")
    if isinstance(credentials, dict) and "credentialsParameter" in credentials:
        credentials["credentialsParameter"] = next(TOKENS)
    proxy = out.get("proxyConfiguration")
    if isinstance(proxy, dict) and isinstance(proxy.get("properties"), list):
        for item in proxy["properties"]:
            if isinstance(item, dict) and "value" in item:
                item["value"] = next(TOKENS)
    return out


def registrable(path: Path) -> dict[str, Any]:
    document = parse_document(load_json(path))
    model = default_register_model()
    params = {k: v for k, v in document.task_definition.items() if k in model.input_members}
    params.setdefault("family", path.stem.split("__")[-1][:60].replace(".", "-"))
    if document.tags:
        params["tags"] = document.tags
    for container in params.get("containerDefinitions", []):  # the emulator wants a container-level memory
        if "memory" not in container and "memoryReservation" not in container:
            container["memory"] = 128
    return plant_secrets(params)


FIXTURES = [p for p in [*shared_taskdefs(), *local_taskdefs()] if "INVALID" not in p.name]
EVENTS = sorted([*(SHARED_FIXTURES / "events").glob("*.json"), *(LOCAL_FIXTURES / "events").glob("*.json")])


def searched(sandbox: Sandbox, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> list[str]:
    notes = sandbox.inbox()
    out, err = capsys.readouterr()
    lines = [*out.splitlines(), *err.splitlines(), *caplog.text.splitlines()]
    caplog.clear()
    FIGURES["notices_searched"] += len(notes)
    FIGURES["log_lines_searched"] += len(lines)
    return [json.dumps(n.payload, ensure_ascii=False) + n.subject for n in notes] + lines


@pytest.mark.parametrize("mode", ["remediate", "report", "refused"])
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_no_secret_in_notices_or_logs(
    path: Path,
    mode: str,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="ecs_remediate")
    sandbox = Sandbox(endpoint_url=moto_endpoint).create()
    handler = load_handler(sandbox, monkeypatch, MODE="report" if mode == "report" else "remediate")
    params = registrable(path)
    secrets = collect_secrets(params)
    try:
        response = sandbox.register(copy.deepcopy(params))
    except aws.ClientError as error:  # moto is stricter than ECS on a few Fargate shapes
        pytest.skip(f"moto refuses to register this fixture: {error}")
    if mode == "refused":
        Fault(aws.client("ecs"), "RegisterTaskDefinition", "pass-role-denied", None)
    capsys.readouterr()
    try:
        handler.lambda_handler(sandbox.event_for(params, response), LambdaContext())
    except Exception:  # noqa: BLE001 - a refused copy raises after its notice; the notice is what is searched
        assert mode == "refused"
    texts = searched(sandbox, capsys, caplog)
    assert texts, "nothing was notified or logged"
    assert leaked_secrets(texts, secrets) == []
    FIGURES["runs"] += 1
    FIGURES["secrets_planted"] += len(secrets)
    FIGURES["fixtures"] = len(FIXTURES)


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_event_fixtures_leak_nothing_they_carry(
    path: Path,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The events' own requestParameters (environment values included) never reach a log line or a notice."""
    sandbox = Sandbox(endpoint_url=moto_endpoint).create()
    handler = load_handler(sandbox, monkeypatch)
    event = plant_secrets(load_json(path))
    detail = event.get("detail") if isinstance(event, dict) else None
    parameters = detail.get("requestParameters") if isinstance(detail, dict) else None
    containers = parameters.get("containerDefinitions") if isinstance(parameters, dict) else None
    for container in containers if isinstance(containers, list) else []:  # carry some, if the event has none
        if isinstance(container, dict):
            container.setdefault("environment", []).append({"name": "TOKEN", "value": next(TOKENS)})
            container.setdefault("secrets", []).append({"name": "DB", "valueFrom": next(TOKENS)})
            container["repositoryCredentials"] = {"credentialsParameter": next(TOKENS)}
    secrets = collect_secrets(event)
    capsys.readouterr()
    with contextlib.suppress(Exception):  # whatever the outcome, what was logged is searched
        handler.lambda_handler(event, LambdaContext())
    assert leaked_secrets(searched(sandbox, capsys, caplog), secrets) == []
    FIGURES["event_fixtures"] = len(EVENTS)
    FIGURES["event_secrets_planted"] = FIGURES.get("event_secrets_planted", 0) + len(secrets)
