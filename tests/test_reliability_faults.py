# ruff: noqa: E501 - the table of cases reads best one case per line
"""Faults injected at each AWS call the function makes, against a moto server.

For every case: what the first invocation does (retried inside the SDK and succeeded, raised so that Lambda
retries the event, or failed with a notice), then what a retry of the same event does once the fault is gone
(Lambda's async retry), counting the copies read back from the emulator and the notices from the inbox. The
invariant across the table: never two copies, and no copy lost once a retry completes.

Bursts run with the function's own botocore Config (standard retries, 8 attempts). Persistent faults run with
3 attempts (the Config is patched in those cases only). Only the sleeps are shortened, never the decisions:
botocore's throttling backoff base goes from 1 s to 50 ms, so that the table does not spend minutes asleep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.config import Config as BotoConfig
from botocore.retries.standard import ExponentialBackoff
from strategies import Fault, record

from conftest import load_handler
from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.adapters import aws

SOURCE = "task-definition/web:1"  # in the body of the describe of the revision named by the event
LATEST = '"taskDefinition": "web"'  # in the body of the describe of the family (its latest revision)
PRIVILEGED = {
    "family": "web",
    "taskRoleArn": "arn:aws:iam::123456789012:role/app",
    "containerDefinitions": [
        {
            "name": "app",
            "image": "nginx",
            "memory": 128,
            "privileged": True,
            "environment": [{"name": "DB_PASSWORD", "value": "SECRET-00112233445566aa"}],
        }
    ],
}


@dataclass(frozen=True)
class Case:
    id: str
    service: str
    operation: str
    kind: str
    times: int | None  # None: every attempt (persistent)
    first: str  # outcome of the first invocation: an outcome, or "raised <Exception>"
    notices_first: int
    copies_first: int
    retry: str | None = "remediated"  # outcome of the event retried once the fault is gone; None: not retried
    notices_total: int = 1
    body: str | None = None
    keep_fault: bool = False  # a permanent fault: the retry meets it too
    short_context: bool = False  # the invocation's remaining time is short, so an in-progress record expires
    setup: str | None = None

    @property
    def attempts(self) -> int:
        return 3 if self.times is None else 8


R = "remediated"
CASES = [
    # ECS DescribeTaskDefinition of the family, the first call: its latest ACTIVE revision, which is the revision named by
    # the event (described by name only when it is not the latest); deleted: every describe answers "unable"
    Case("describe: throttling burst x3", "ecs", "DescribeTaskDefinition", "throttle", 3, R, 1, 1, None, body=LATEST),
    Case("describe: HTTP 500 x3", "ecs", "DescribeTaskDefinition", "500", 3, R, 1, 1, None, body=LATEST),
    Case("describe: read timeout x2", "ecs", "DescribeTaskDefinition", "read-timeout", 2, R, 1, 1, None, body=LATEST),
    Case("describe: connect timeout x2", "ecs", "DescribeTaskDefinition", "connect-timeout", 2, R, 1, 1, None, body=LATEST),
    Case("describe: throttled throughout", "ecs", "DescribeTaskDefinition", "throttle", None, "raised ThrottlingException", 0, 0, body=LATEST),
    Case("describe: AccessDenied", "ecs", "DescribeTaskDefinition", "access-denied", None, "raised RemediationFailed", 1, 0, "raised RemediationFailed", 1, body=LATEST, keep_fault=True),
    Case("describe: revision deleted after the event", "ecs", "DescribeTaskDefinition", "gone", None, "skipped", 0, 0, None, 0, body=None),
    Case("describe: revision INACTIVE after the event", "ecs", "DescribeTaskDefinition", "none", 0, "skipped", 0, 0, None, 0, setup="deregister"),
    # ECS DescribeTaskDefinition of the family (the latest-revision guard)
    Case("describe latest: throttling burst x3", "ecs", "DescribeTaskDefinition", "throttle", 3, R, 1, 1, None, body=LATEST),
    Case("describe latest: HTTP 500 throughout", "ecs", "DescribeTaskDefinition", "500", None, "raised ServerException", 0, 0, body=LATEST),
    Case("describe latest: read timeout throughout", "ecs", "DescribeTaskDefinition", "read-timeout", None, "raised ReadTimeoutError", 0, 0, body=LATEST),
    # ECS RegisterTaskDefinition
    Case("register: throttling burst x3", "ecs", "RegisterTaskDefinition", "throttle", 3, R, 1, 1, None),
    Case("register: HTTP 500 x2 (not carried out)", "ecs", "RegisterTaskDefinition", "500", 2, R, 1, 1, None),
    Case("register: connect timeout x2", "ecs", "RegisterTaskDefinition", "connect-timeout", 2, R, 1, 1, None),
    Case("register: throttled throughout", "ecs", "RegisterTaskDefinition", "throttle", None, "raised ThrottlingException", 0, 0),
    Case("register: response lost after ECS registered (read timeout)", "ecs", "RegisterTaskDefinition", "lost-response", 1, R, 1, 1, None),
    Case("register: HTTP 500 after ECS registered", "ecs", "RegisterTaskDefinition", "carried-out-500", 1, R, 1, 1, None),
    Case("register: response lost, ECS registered, every attempt", "ecs", "RegisterTaskDefinition", "lost-response", None, R, 1, 1, None),
    Case("register: AccessDenied on iam:PassRole", "ecs", "RegisterTaskDefinition", "pass-role-denied", None, "raised RemediationFailed", 1, 0, "raised RemediationFailed", 1, keep_fault=True),
    # SNS Publish, after the copy was registered
    Case("publish: throttling burst x3", "sns", "Publish", "throttle", 3, R, 1, 1, None),
    Case("publish: HTTP 500 throughout", "sns", "Publish", "500", None, "raised InternalFailure", 0, 1),
    Case("publish: AuthorizationError", "sns", "Publish", "access-denied", None, "raised AuthorizationError", 0, 1, "raised AuthorizationError", 0, keep_fault=True),
    # DynamoDB (Powertools Idempotency)
    Case("idempotency PutItem: throttling burst x3", "dynamodb", "PutItem", "throttle", 3, R, 1, 1, None),
    Case("idempotency PutItem: table unavailable (500)", "dynamodb", "PutItem", "500", None, "raised IdempotencyPersistenceLayerError", 0, 0),
    # UpdateItem of the copy's record, once SNS took the notice (issue 23: the record that stops a second copy is the
    # notice's too). It cannot say the notice went out, so the retry sends it again: at least once, never silent; the
    # copy is not made twice
    Case("idempotency UpdateItem: the copy's record unavailable after the notice", "dynamodb", "UpdateItem", "500", None, "raised IdempotencyPersistenceLayerError", 1, 1, notices_total=2, short_context=True, body="ecs-remediate-copy#"),
    Case("idempotency DeleteItem: unavailable after a failure", "dynamodb", "DeleteItem", "500", None, "raised IdempotencyPersistenceLayerError", 0, 0, short_context=True, setup="throttle-register"),
    # The family's remediation history (one UpdateItem, issue 23) only decides how loud the notice is: unavailable, the
    # notice goes out unescalated
    Case("history UpdateItem: unavailable (the notice goes out unescalated)", "dynamodb", "UpdateItem", "500", None, R, 1, 1, None, body="#history#"),
]  # fmt: skip
ROWS: list[dict[str, Any]] = []


class ShortContext(LambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 300


@pytest.fixture(scope="module", autouse=True)
def table() -> Any:
    yield
    record("faults", cases=len(ROWS), rows=ROWS)


def outcome(call: Any) -> str:
    try:
        return str(call()["outcome"])
    except aws.ClientError as error:
        return f"raised {aws.error_code(error)}"
    except Exception as error:  # noqa: BLE001 - the table records which exception the invocation raised
        return f"raised {type(error).__name__}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(case: Case, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    scales = {**ExponentialBackoff._DEFAULT_BACKOFF_CONFIG, "throttling_base_scale": 0.05}
    monkeypatch.setattr(ExponentialBackoff, "_DEFAULT_BACKOFF_CONFIG", scales)
    if case.times is None:
        config = aws.BOTO_CONFIG.merge(
            BotoConfig(retries={"mode": aws.BOTO_CONFIG.retries["mode"], "max_attempts": case.attempts})
        )
        monkeypatch.setattr(aws, "BOTO_CONFIG", config)
    sandbox = Sandbox(endpoint_url=moto_endpoint).create()
    handler = load_handler(sandbox, monkeypatch)
    response = sandbox.register(PRIVILEGED)
    event = sandbox.event_for(PRIVILEGED, response)
    if case.setup == "deregister":
        sandbox.client("ecs").deregister_task_definition(taskDefinition=response["taskDefinition"]["taskDefinitionArn"])
    handler.remediator()  # the clients exist: faults go below them
    faults = (
        [Fault(aws.client(case.service), case.operation, case.kind, case.times, case.body)] if case.times != 0 else []
    )
    if case.setup == "throttle-register":
        faults.append(Fault(aws.client("ecs"), "RegisterTaskDefinition", "throttle", None))
    context = ShortContext if case.short_context else LambdaContext

    started = time.perf_counter()
    first = outcome(lambda: handler.lambda_handler(event, context()))
    seconds = time.perf_counter() - started
    copies_first = len(sandbox.active_revisions("web")) - (0 if case.setup == "deregister" else 1)
    notes = sandbox.inbox()

    retried = None
    if case.retry is not None:
        if not case.keep_fault:
            for fault in faults:
                fault.remove()
        if case.short_context:
            time.sleep(0.4)  # the in-progress record left behind expires with the invocation's timeout
        retried = outcome(lambda: handler.lambda_handler(event, LambdaContext()))
    copies = len(sandbox.active_revisions("web")) - (0 if case.setup == "deregister" else 1)
    notices_first = len(notes)
    notes += sandbox.inbox()

    row = {
        "case": case.id,
        "attempts_faulted": sum(f.injected for f in faults),
        "first": first,
        "copies_after_first": copies_first,
        "notices_after_first": notices_first,
        "retry": retried or "-",
        "copies": copies,
        "notices": [n.attributes["outcome"] for n in notes],
        "seconds": round(seconds, 1),
    }
    ROWS.append(row)
    assert row["attempts_faulted"] > 0 or case.times == 0, row  # the fault met the call: no case passes vacuously
    assert first == case.first, row
    assert copies_first == case.copies_first, row
    assert notices_first == case.notices_first, row
    assert retried == case.retry, row
    assert copies <= 1, row  # never two copies
    if case.retry == "remediated" or first == "remediated":
        assert copies == 1, row  # no lost copy once the event is retried to completion
    assert len(notes) == case.notices_total, row
