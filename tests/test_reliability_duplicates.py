"""Duplicates and loops against a moto server: the same event 100 times (in order, from 100 threads, through 10
separate "Lambda instances" that share only the DynamoDB table), and the remediation's own events fed back.

Counts are read back from the emulator (revisions of the family) and from the inbox queue subscribed to the
topic (notices), never from the code under test.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from strategies import Calls, record

from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.core.config import Config
from ecs_remediate.core.events import Registration, parse_registration_event
from ecs_remediate.remediation.remediator import Remediator

DUPLICATES = 100
THREADS = 100
INSTANCES = 10
CHAIN = 50
RETRY_WAIT_SECONDS = 0.05
MAX_RETRIES = 400  # 20 s of "in progress" at most; the test fails if a duplicate never gets the result

PRIVILEGED = {
    "family": "web",
    "taskRoleArn": "arn:aws:iam::123456789012:role/app",
    "containerDefinitions": [
        {"name": "app", "image": "nginx", "memory": 128, "privileged": True},
        {"name": "sidecar", "image": "envoy", "memory": 64},
    ],
    "tags": [{"key": "team", "value": "payments"}],
}


def with_retries(call: Callable[[], dict[str, Any]], waits: list[int]) -> dict[str, Any]:
    """A duplicate that finds the first one still in progress fails; Lambda's async invoke retries it later and
    it then gets the stored result. Modelled here with a short wait. `waits` gets this invocation's retries."""
    for attempt in range(MAX_RETRIES):
        try:
            result = call()
        except IdempotencyAlreadyInProgressError:
            time.sleep(RETRY_WAIT_SECONDS)
            continue
        waits.append(attempt)
        return result
    raise AssertionError("still in progress after every retry")


def run_threads(count: int, target: Callable[[int], dict[str, Any]]) -> list[dict[str, Any] | BaseException]:
    results: list[dict[str, Any] | BaseException] = [RuntimeError("not run")] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = target(index)
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return results


def copies(sandbox: Sandbox, family: str = "web") -> list[str]:
    """Every ACTIVE revision of the family but the original :1."""
    return [arn for arn in sandbox.active_revisions(family) if not arn.endswith(":1")]


def test_same_event_100_times_in_order(sandbox: Sandbox, handler: ModuleType) -> None:
    event = sandbox.event_for(PRIVILEGED, sandbox.register(PRIVILEGED))
    handler.remediator()
    calls = Calls(aws.client("ecs"))
    started = time.perf_counter()
    results = [handler.lambda_handler(event, LambdaContext()) for _ in range(DUPLICATES)]
    elapsed = time.perf_counter() - started

    assert {r["outcome"] for r in results} == {"remediated"}
    assert len({r["new_task_definition_arn"] for r in results}) == 1
    assert copies(sandbox) == [results[0]["new_task_definition_arn"]]
    notes = sandbox.inbox()
    assert [n.attributes["outcome"] for n in notes] == ["remediated"]
    assert calls.count("RegisterTaskDefinition") == 1
    record(
        "duplicates_sequential",
        events=DUPLICATES,
        copies=len(copies(sandbox)),
        notices=len(notes),
        register_calls=calls.count("RegisterTaskDefinition"),
        ecs_calls=len(calls.names),
        seconds=round(elapsed, 2),
    )


def test_same_event_from_100_threads_in_one_instance(sandbox: Sandbox, handler: ModuleType) -> None:
    event = sandbox.event_for(PRIVILEGED, sandbox.register(PRIVILEGED))
    handler.remediator()
    calls = Calls(aws.client("ecs"))
    waits: list[int] = []

    results = run_threads(
        THREADS, lambda _: with_retries(lambda: handler.lambda_handler(event, LambdaContext()), waits)
    )

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert {r["outcome"] for r in results if isinstance(r, dict)} == {"remediated"}
    assert len({r["new_task_definition_arn"] for r in results if isinstance(r, dict)}) == 1
    assert len(copies(sandbox)) == 1
    notes = sandbox.inbox()
    assert len(notes) == 1
    record(
        "duplicates_threads_one_instance",
        threads=THREADS,
        copies=len(copies(sandbox)),
        notices=len(notes),
        register_calls=calls.count("RegisterTaskDefinition"),
        invocations_told_in_progress=sum(1 for w in waits if w),
        in_progress_retries=sum(waits),
    )


def instance(sandbox: Sandbox, config: Config, with_idempotency: bool = True) -> Remediator:
    """What one Lambda execution environment holds: its own session and clients, the shared table."""
    session = boto3.session.Session()

    def make(service: str) -> Any:
        return session.client(service, region_name=sandbox.region, config=aws.BOTO_CONFIG)

    persistence = DynamoDBPersistenceLayer(table_name=sandbox.table_name, boto3_client=make("dynamodb"))
    return Remediator(
        config,
        aws.Ecs(make("ecs")),
        aws.Topic(make("sns"), sandbox.topic_arn),
        persistence if with_idempotency else None,
    )


def test_same_event_through_10_instances_sharing_only_the_table(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = sandbox.event_for(PRIVILEGED, sandbox.register(PRIVILEGED))
    registration = parse_registration_event(event)
    assert isinstance(registration, Registration)
    config = Config.from_env(sandbox.env())
    instances = [instance(sandbox, config) for _ in range(INSTANCES)]
    for remediator in instances:
        remediator.register_lambda_context(LambdaContext())
    waits: list[int] = []

    def target(index: int) -> dict[str, Any]:
        remediator = instances[index % INSTANCES]
        return with_retries(lambda: remediator.process(registration).to_dict(), waits)

    results = run_threads(THREADS, target)

    assert [r for r in results if isinstance(r, BaseException)] == []
    outcomes = Counter(r["outcome"] for r in results if isinstance(r, dict))
    assert outcomes == {"remediated": THREADS}
    assert len(copies(sandbox)) == 1
    notes = sandbox.inbox()
    assert len(notes) == 1
    record(
        "duplicates_threads_10_instances",
        threads=THREADS,
        instances=INSTANCES,
        copies=len(copies(sandbox)),
        notices=len(notes),
        invocations_told_in_progress=sum(1 for w in waits if w),
        in_progress_retries=sum(waits),
    )


def test_without_idempotency_the_durable_guard_alone_still_makes_one_copy(sandbox: Sandbox) -> None:
    """Idempotency records expire (TTL) or may be lost; the marker on the latest revision still stops a second
    copy. Each later attempt re-sends the notice (that is what makes a retry after an SNS failure notify)."""
    event = sandbox.event_for(PRIVILEGED, sandbox.register(PRIVILEGED))
    registration = parse_registration_event(event)
    assert isinstance(registration, Registration)
    remediator = instance(sandbox, Config.from_env(sandbox.env()), with_idempotency=False)
    results = [remediator.process(registration) for _ in range(DUPLICATES)]
    assert {r.outcome for r in results} == {"remediated"}
    assert len(copies(sandbox)) == 1
    notes = sandbox.inbox()
    assert len(notes) == DUPLICATES
    record("duplicates_no_idempotency_sequential", events=DUPLICATES, copies=1, notices=len(notes))


def test_own_registration_fed_back_writes_nothing_chain_of_50(sandbox: Sandbox, handler: ModuleType) -> None:
    response = sandbox.register(PRIVILEGED)
    first = handler.lambda_handler(sandbox.event_for(PRIVILEGED, response), LambdaContext())
    assert first["outcome"] == "remediated"
    sandbox.inbox()
    calls = Calls(aws.client("ecs"))
    sns_calls = Calls(aws.client("sns"))
    # The chain is run twice: through the function (idempotency on: generations after the first get the stored
    # verdict) and through an instance without idempotency, where every generation is described and judged.
    fresh = instance(sandbox, Config.from_env(sandbox.env()), with_idempotency=False)
    fresh_calls = Calls(fresh.ecs._client)

    def feed_back(arn: str, generation: int) -> dict[str, Any]:
        described = sandbox.describe(arn)
        params = {k: v for k, v in described["taskDefinition"].items() if k in ("family", "containerDefinitions")}
        return sandbox.event_for(
            params,
            {"taskDefinition": described["taskDefinition"], "tags": described["tags"]},
            user_arn="arn:aws:sts::123456789012:assumed-role/EcsRemediate-FunctionRole/ecs-remediate",
            invoked_by="lambda.amazonaws.com" if generation % 2 else None,
        )

    # Generation after generation: the event of the latest registration made by the function is fed back; any
    # write would be a new registration whose event would be fed back in turn.
    outcomes: Counter[str] = Counter()
    for run in ("function", "no-idempotency"):
        arn = first["new_task_definition_arn"]
        for generation in range(CHAIN):
            event = feed_back(arn, generation)
            if run == "function":
                result = handler.lambda_handler(event, LambdaContext())
            else:
                registration = parse_registration_event(event)
                assert isinstance(registration, Registration)
                result = fresh.process(registration).to_dict()
            outcomes[f"{run}:{result['outcome']}"] += 1
            arn = result.get("new_task_definition_arn") or arn

    assert outcomes == {"function:compliant": CHAIN, "no-idempotency:compliant": CHAIN}
    assert fresh_calls.count("DescribeTaskDefinition") == CHAIN
    assert calls.writes == [] and sns_calls.writes == [] and fresh_calls.writes == []
    assert len(copies(sandbox)) == 1 and sandbox.inbox() == []
    record(
        "no_loop",
        fed_back_events=2 * CHAIN,
        judged_afresh=fresh_calls.count("DescribeTaskDefinition"),
        outcomes=dict(outcomes),
        writes=len(calls.writes) + len(fresh_calls.writes),
        notices=len(sns_calls.writes),
    )
