"""Shared test set-up: fake credentials only, Powertools quiet, moto in-process; nothing reaches AWS."""

from __future__ import annotations

import copy
import functools
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.session
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"
LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"
REGION = "us-east-1"
ACCOUNT = "123456789012"

# Set before any boto3 client or Powertools object exists (handler modules read them at import).
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "ecs-remediate",
        "POWERTOOLS_METRICS_NAMESPACE": "EcsRemediate",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
    }
)
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(_name, None)

# moto records no registeredBy/registeredAt on task definitions; ECS does, and the stack relies on both.
from demo.environment import use_project_node  # noqa: E402
from emulators import moto_fidelity  # noqa: E402

moto_fidelity.apply()
use_project_node()  # jsii (every in-process synth) and the app.py subprocesses run on the pinned Node.js 22

# Every botocore session in the test process reads the service models through one loader. Tests reset the clients and
# the handler builds its session anew, so each test parsed the same JSON again (about half of a typical moto test's
# CPU). The models are read-only data of the installed botocore; the function, too, parses them once per cold start.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


SYNTHETIC_EVENT = load_json(
    SHARED_FIXTURES / "events" / "SYNTHETIC__eventbridge_RegisterTaskDefinition_privileged.json"
)


def event_variant(**changes: Any) -> dict[str, Any]:
    """The synthetic privileged registration event with `a__b=value` set (KeyError: deleted) along each path."""
    event = copy.deepcopy(SYNTHETIC_EVENT)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = event
        for key in parents:
            target = target[key]
        if value is KeyError:
            del target[leaf]
        else:
            target[leaf] = value
    return event


def shared_taskdefs() -> list[Path]:
    return sorted((SHARED_FIXTURES / "taskdefs").glob("*.json"))


def local_taskdefs() -> list[Path]:
    return sorted((LOCAL_FIXTURES / "taskdefs").glob("*.json"))


@pytest.fixture
def fixture_path() -> Iterator[Path]:
    yield SHARED_FIXTURES


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port for the whole session, with the ECS daemon operations answered by the
    daemon emulator (emulators/server.py); always stopped."""
    from emulators.server import EmulatorServer

    server = EmulatorServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean emulator for one test: state reset, every boto3 client pointed at it."""
    import urllib.request

    from ecs_remediate.adapters import aws

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    aws.reset_clients()
    yield moto_server
    aws.reset_clients()


@pytest.fixture(autouse=True)
def _signal_handlers_restored() -> Iterator[None]:
    """Each test leaves SIGINT, SIGTERM and SIGHUP as it found them: code run in-process (the demo's and the CLI's
    interrupt handling) ignores later signals once one arrived, and a process a later test starts would inherit an
    ignored signal."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    saved = {signum: signal.getsignal(signum) for signum in signals}
    yield
    for signum, handler in saved.items():
        if handler is not None and signal.getsignal(signum) is not handler:
            signal.signal(signum, handler)


@pytest.fixture
def short_sdk_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retry decisions kept (its attempts, its retry quota), its waits shortened: a throttled
    call is retried as in production without the test sitting out up to 20 s between attempts. Clients made after
    this fixture get it (load_handler makes the function's)."""
    from botocore.retries.standard import ExponentialBackoff

    scales = {**ExponentialBackoff._DEFAULT_BACKOFF_CONFIG, "throttling_base_scale": 0.05}
    monkeypatch.setattr(ExponentialBackoff, "_DEFAULT_BACKOFF_CONFIG", scales)


def load_handler(sandbox: Any, monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    """The handler module as the function starts it: its environment from the sandbox (plus `env`), fresh
    clients, config parsed at import, and the remediator built (clients exist for fault injection)."""
    import importlib

    from ecs_remediate.adapters import aws

    for name, value in sandbox.env(**env).items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    import ecs_remediate.functions.handler as module

    module = importlib.reload(module)
    module.remediator()
    return module


@pytest.fixture
def sandbox(moto_endpoint: str) -> Any:
    """What the stack creates (idempotency table, topic, inbox queue) in a clean emulator."""
    from demo.sandbox import Sandbox

    return Sandbox(endpoint_url=moto_endpoint).create()


@pytest.fixture
def handler(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The function's handler module, configured for `sandbox`."""
    return load_handler(sandbox, monkeypatch)


# --- ecs-remediate verify's tests (tests/verify_support.py) --------------------------------------------------------


@pytest.fixture(scope="session")
def stack_template() -> dict[str, Any]:
    from demo.synthesized import synthesized_template

    return synthesized_template()


@pytest.fixture
def handler_reloaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The handler module is reloaded with a stand-in's environment; reloaded plain again afterwards."""
    yield
    import importlib

    import ecs_remediate.functions.handler as module
    from ecs_remediate.adapters import aws

    monkeypatch.undo()
    aws.reset_clients()
    importlib.reload(module)
