"""The sweep and the function remediate the same revisions at the same time (moto server): one copy each.

20 families each get a privileged revision. A sweep (`sweep.sweep(..., remediate=True)`, what `ecs-remediate scan
--remediate` and the scheduled sweep run) and the function (one event per revision, from 20 threads) start together.
With the idempotency table shared (the deployed set-up: both read IDEMPOTENCY_TABLE), the one that comes second
gets "in progress" (the function: Lambda retries it; the sweep: an ERROR row, "sweep again later") or the stored
result. Copies are counted in the emulator, notices in the inbox.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from strategies import record

from conftest import load_handler
from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.core.config import Config
from ecs_remediate.sweep import run as sweep

FAMILIES = 20
ROUNDS = 4
FAST = sweep.parse_rates(["describe=1000/1000", "list=1000/1000", "register=1000/1000"])


def privileged(family: str) -> dict[str, Any]:
    return {
        "family": family,
        "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 128, "privileged": True}],
        "tags": [{"key": "team", "value": "payments"}],
    }


def invoke_until_done(handler: ModuleType, event: dict[str, Any], waits: list[int]) -> dict[str, Any]:
    for attempt in range(400):
        try:
            result: dict[str, Any] = handler.lambda_handler(event, LambdaContext())
        except IdempotencyAlreadyInProgressError:  # Lambda's async retry, shortened
            time.sleep(0.05)
            continue
        waits.append(attempt)
        return result
    raise AssertionError("still in progress")


def client_with_registered_at(region: str | None) -> Any:
    """The sweep's ECS client, with `registeredAt` in DescribeTaskDefinition responses as ECS returns it
    (moto leaves it out; the sweep needs it to leave fresh registrations to the function)."""
    client = sweep.ecs_client(region)

    def add_registered_at(response_dict: dict[str, Any], **_: Any) -> None:
        body = json.loads(response_dict.get("body") or b"{}")
        if isinstance(body.get("taskDefinition"), dict):
            body["taskDefinition"].setdefault("registeredAt", time.time())
            response_dict["body"] = json.dumps(body).encode()

    client.meta.events.register_first("before-parse.ecs.DescribeTaskDefinition", add_registered_at)
    return client


def race(sandbox: Sandbox, handler: ModuleType, round_: int, shared_table: bool) -> dict[str, Any]:
    families = [f"race{round_}-{i:02d}" for i in range(FAMILIES)]
    events = [sandbox.event_for(privileged(f), sandbox.register(privileged(f))) for f in families]
    config = Config.from_env(sandbox.env() if shared_table else {**sandbox.env(), "IDEMPOTENCY_TABLE": ""})
    persistence = (
        DynamoDBPersistenceLayer(table_name=sandbox.table_name, boto3_client=aws.client("dynamodb"))
        if shared_table
        else None
    )
    barrier = threading.Barrier(FAMILIES + 1)
    results: dict[str, Any] = {}
    waits: list[int] = []

    def function(index: int) -> None:
        barrier.wait()
        time.sleep(round_ * 0.5 * (index % 2))  # later rounds give the sweep a head start on half the events
        results[families[index]] = invoke_until_done(handler, events[index], waits)

    def sweeper() -> None:
        barrier.wait()
        results["sweep"] = sweep.sweep(
            [sandbox.region],
            config,
            remediate=True,
            rates=FAST,
            concurrency=8,
            persistence=persistence,
            make_client=client_with_registered_at,
        )

    threads = [threading.Thread(target=function, args=(i,)) for i in range(FAMILIES)]
    threads.append(threading.Thread(target=sweeper))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)

    copies = {f: len(sandbox.active_revisions(f)) - 1 for f in families}
    notices = Counter(
        n.attributes.get("family", "") for n in sandbox.inbox() if n.attributes.get("outcome") == "remediated"
    )
    report = results["sweep"]
    actions = Counter(
        (f.status, f.action.split(":")[0])
        for f in report.findings
        if f.task_definition_arn.split("/")[-1].startswith(f"race{round_}-")
    )
    function_outcomes = Counter(results[f]["outcome"] for f in families)
    return {
        "copies": copies,
        "notices": {f: notices.get(f, 0) for f in families},
        "sweep_rows": {f"{s}/{a}": n for (s, a), n in sorted(actions.items())},
        "function_outcomes": dict(function_outcomes),
        "function_invocations_told_in_progress": sum(1 for w in waits if w),
    }


def test_sweep_and_function_race_with_the_shared_table(sandbox_and_handler: tuple[Sandbox, ModuleType]) -> None:
    sandbox, handler = sandbox_and_handler
    rounds = [race(sandbox, handler, r, shared_table=True) for r in range(ROUNDS)]
    copies = Counter(n for r in rounds for n in r["copies"].values())
    notices = Counter(n for r in rounds for n in r["notices"].values())
    record(
        "race_shared_table",
        revisions=FAMILIES * ROUNDS,
        copies_per_revision=dict(copies),
        remediated_notices_per_revision=dict(notices),
        sweep_rows=[r["sweep_rows"] for r in rounds],
        function_outcomes=[r["function_outcomes"] for r in rounds],
        function_invocations_told_in_progress=sum(r["function_invocations_told_in_progress"] for r in rounds),
    )
    assert copies == {1: FAMILIES * ROUNDS}
    assert notices == {1: FAMILIES * ROUNDS}
    for r in rounds:
        assert r["function_outcomes"] == {"remediated": FAMILIES}


def test_sweep_without_the_table_and_function_race(sandbox_and_handler: tuple[Sandbox, ModuleType]) -> None:
    """`scan --remediate` run without IDEMPOTENCY_TABLE: nothing shared would stop both from copying, so the
    sweep leaves revisions registered in the last 30 minutes to the function (rows stay FAIL, "skipped")."""
    sandbox, handler = sandbox_and_handler
    rounds = [race(sandbox, handler, r, shared_table=False) for r in range(ROUNDS)]
    copies = Counter(n for r in rounds for n in r["copies"].values())
    record(
        "race_no_table",
        revisions=FAMILIES * ROUNDS,
        copies_per_revision=dict(copies),
        sweep_rows=[r["sweep_rows"] for r in rounds],
    )
    assert copies == {1: FAMILIES * ROUNDS}
    for r in rounds:
        assert r["function_outcomes"] == {"remediated": FAMILIES}
        # skipped: left to the function; superseded: an earlier round's revision (every ACTIVE one is swept)
        assert set(r["sweep_rows"]) <= {"FAIL/skipped", "FAIL/superseded", "PASS/none"}


@pytest.fixture
def sandbox_and_handler(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Sandbox, ModuleType]:
    sandbox = Sandbox(endpoint_url=moto_endpoint).create()
    return sandbox, load_handler(sandbox, monkeypatch)
