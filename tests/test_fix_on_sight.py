"""Issue 23: the function fixes a family's privileged latest on sight, from an older revision's event.

In a burst the queue reaches a family's older revisions long before its latest one's event; the first of them handled
after the latest registration copies the latest (judged as its own event would judge it), and the latest's own event
later finds the copy and sends no second notice. Each test drives the real handler on moto and reads back the family
and the notices; the policed developer's variants: a latest that is exempt, one tagged on create to look exempt or
fixed, one deregistered before it is reached, one whose register is throttled past every retry, the idempotency table
failing during the fix, the latest's own event at the same moment; report mode.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config as BotoConfig
from test_handler import _Raw, invoke, throttle_first

from conftest import load_handler
from demo.sandbox import ACCOUNT, Sandbox
from ecs_remediate.adapters import aws

MARKER = "ecs-remediate:source-revision"
POLICED = f"arn:aws:sts::{ACCOUNT}:assumed-role/Dev/mallory"  # Sandbox.as_principal()


def privileged(image: str = "nginx:1.27") -> dict[str, Any]:
    return {
        "family": "web",
        "containerDefinitions": [{"name": "app", "image": image, "memory": 128, "privileged": True}],
    }


def burst(sandbox: Sandbox, count: int) -> list[tuple[str, dict[str, Any]]]:
    """`count` privileged revisions of one family, registered before any event is handled: (ARN, its event)."""
    made = []
    for n in range(count):
        params = privileged(f"nginx:1.{n}")
        response = sandbox.as_principal().register(params)
        made.append((response["taskDefinition"]["taskDefinitionArn"], sandbox.event_for(params, response)))
    return made


def copies_of(sandbox: Sandbox) -> dict[str, str]:
    """The family's fixed copies: marker value -> copy ARN, each checked non-privileged. A revision the policed
    registered (ECS's registeredBy) is never one, whatever marker it carries."""
    found = {}
    for arn in sandbox.active_revisions("web"):
        described = sandbox.describe(arn)
        marker = next((t["value"] for t in described.get("tags", []) if t["key"] == MARKER), None)
        if marker and described["taskDefinition"].get("registeredBy") != POLICED:
            assert not any(c.get("privileged") for c in described["taskDefinition"]["containerDefinitions"])
            found[marker] = arn
    return found


def notices(sandbox: Sandbox) -> list[Any]:
    """Every notice the sandbox's inbox gave so far (reading the inbox drains it)."""
    received: list[Any] = sandbox.__dict__.setdefault("received", [])
    received += sandbox.inbox()
    return received


def outcomes(sandbox: Sandbox) -> dict[str, list[str]]:
    by_revision: dict[str, list[str]] = {}
    for note in notices(sandbox):
        by_revision.setdefault(note.payload["taskDefinitionArn"].rsplit("/", 1)[1], []).append(note.payload["outcome"])
    return by_revision


@pytest.fixture
def handler(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_handler(sandbox, monkeypatch)


def two_attempts_a_call(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The function with two attempts a call, not its eight with their backoff: what is under test is what follows
    a call that failed every attempt."""
    retries = BotoConfig(retries={"mode": "standard", "total_max_attempts": 2})
    monkeypatch.setattr(aws, "BOTO_CONFIG", aws.BOTO_CONFIG.merge(retries))
    return load_handler(sandbox, monkeypatch)


def test_the_oldest_event_fixes_the_latest_and_the_latests_own_event_adds_nothing(
    sandbox: Sandbox, handler: ModuleType
) -> None:
    (one, first), (_, second), (three, third) = burst(sandbox, 3)

    result = invoke(handler, first)

    assert result["outcome"] == "superseded" and result["reason"].endswith("fixed now by its copy :4")
    assert copies_of(sandbox) == {"web:3": sandbox.active_revisions("web")[-1]}
    assert outcomes(sandbox) == {"web:3": ["remediated"], "web:1": ["superseded"]}
    remediated = next(n for n in notices(sandbox) if n.payload["outcome"] == "remediated")
    assert remediated.payload["registeredBy"].endswith(":assumed-role/Dev/mallory")  # who, as ECS records it
    # the later events: :2 is superseded by the copy (not privileged: nothing more on sight); :3's finds its copy
    assert invoke(handler, second)["outcome"] == "superseded"
    assert invoke(handler, third)["outcome"] == "remediated"
    assert len(copies_of(sandbox)) == 1 and len(sandbox.active_revisions("web")) == 4
    assert outcomes(sandbox) == {"web:3": ["remediated"], "web:1": ["superseded"], "web:2": ["superseded"]}
    assert one.endswith(":1") and three.endswith(":3")


def test_an_exempt_latest_is_not_copied(sandbox: Sandbox, handler: ModuleType) -> None:
    (_, first), (latest, _) = burst(sandbox, 2)
    sandbox.exempt(latest, "vendor agent (SEC-9)", (datetime.now(UTC) + timedelta(days=30)).date().isoformat())

    result = invoke(handler, first)

    assert result["outcome"] == "superseded" and result["reason"].endswith("the latest :2 is privileged too: exempt")
    assert copies_of(sandbox) == {} and len(sandbox.active_revisions("web")) == 2
    assert outcomes(sandbox) == {"web:2": ["exempt"], "web:1": ["superseded"]}


@pytest.mark.parametrize(
    "tags",
    [
        [
            {"key": "ecs-remediate:exempt-reason", "value": "vendor agent"},
            {"key": "ecs-remediate:exempt-until", "value": "2099-01-01"},
        ],
        [{"key": MARKER, "value": "web:1"}],  # claims to be the stack's copy of :1
        [{"key": "ecs-remediate:source-revision", "value": "web:2"}],  # claims to be its own copy
    ],
    ids=["exempt tags", "marker of the older", "marker of itself"],
)
def test_a_latest_tagged_on_create_to_look_exempt_or_fixed_is_fixed_on_sight(
    sandbox: Sandbox, handler: ModuleType, tags: list[dict[str, str]]
) -> None:
    """The policed registers :1, then :2 with tags given at registration that claim an exemption or claim :2 is the
    stack's copy: tags never exempt (the default configuration) and a privileged revision is nobody's copy, so the
    older revision's event fixes :2 as :2's own event would."""
    (_, first), *_ = burst(sandbox, 1)
    params = {**privileged("nginx:2"), "tags": tags}
    sandbox.as_principal().register(params)

    result = invoke(handler, first)

    assert result["outcome"] == "superseded" and result["reason"].endswith("fixed now by its copy :3")
    assert list(copies_of(sandbox)) == ["web:2"]
    assert outcomes(sandbox) == {"web:2": ["remediated"], "web:1": ["superseded"]}


def test_a_latest_deregistered_before_the_older_event_is_handled_leaves_the_new_latest_to_be_fixed(
    sandbox: Sandbox, handler: ModuleType
) -> None:
    (_, first), (_, _), (three, _) = burst(sandbox, 3)
    sandbox.client("ecs").deregister_task_definition(taskDefinition=three)

    result = invoke(handler, first)

    assert result["outcome"] == "superseded"
    assert list(copies_of(sandbox)) == ["web:2"]  # the ACTIVE latest, not the deregistered one
    assert outcomes(sandbox) == {"web:2": ["remediated"], "web:1": ["superseded"]}


def test_a_throttled_register_never_fails_the_older_event_and_the_latest_is_fixed_by_its_own(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    (_, first), (_, second) = burst(sandbox, 2)
    handler = two_attempts_a_call(sandbox, monkeypatch)
    throttled = throttle_first(aws.client("ecs"), "RegisterTaskDefinition", 1000)  # every attempt, until released

    result = invoke(handler, first)

    assert len(throttled) >= 2 and result["outcome"] == "superseded"
    assert result["reason"].endswith("(left to its own event: ThrottlingException)")
    assert copies_of(sandbox) == {} and outcomes(sandbox) == {"web:1": ["superseded"]}
    throttled += [1] * 1000  # ECS takes registrations again
    assert invoke(handler, second)["outcome"] == "remediated"
    assert list(copies_of(sandbox)) == ["web:2"]
    assert outcomes(sandbox) == {"web:1": ["superseded"], "web:2": ["remediated"]}


def test_the_older_event_and_the_latests_own_at_once_make_one_copy_and_one_notice_each(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    (_, first), (_, second) = burst(sandbox, 2)
    workers = [load_handler(sandbox, monkeypatch) for _ in range(2)]
    start = threading.Barrier(2)
    answers: list[Any] = []

    def run(worker: ModuleType, event: dict[str, Any]) -> None:
        start.wait()
        try:
            answers.append(invoke(worker, event)["outcome"])
        except Exception as error:  # noqa: BLE001 - another invocation holds the copy: deferred by the queue
            answers.append(type(error).__name__)

    threads = [threading.Thread(target=run, args=pair) for pair in zip(workers, (first, second), strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if "remediated" not in answers:  # the latest's own event lost the race to the copy's guard: delivered again
        assert invoke(workers[1], second)["outcome"] == "remediated"

    assert list(copies_of(sandbox)) == ["web:2"] and len(sandbox.active_revisions("web")) == 3
    assert outcomes(sandbox) == {"web:1": ["superseded"], "web:2": ["remediated"]}


def test_report_mode_fixes_nothing_on_sight(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    (_, first), (_, _) = burst(sandbox, 2)
    handler = load_handler(sandbox, monkeypatch, MODE="report")

    result = invoke(handler, first)

    assert result["outcome"] == "reported" and "privileged too" not in result["reason"]
    assert copies_of(sandbox) == {} and outcomes(sandbox) == {"web:1": ["reported"]}


def test_the_idempotency_table_failing_during_the_fix_leaves_the_latest_to_its_own_event(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    (_, first), (_, second) = burst(sandbox, 2)
    handler = two_attempts_a_call(sandbox, monkeypatch)
    failed: list[int] = []

    def unavailable(request: Any, **_: Any) -> AWSResponse | None:
        if len(failed) >= 2:  # both attempts of the first PutItem: the latest's copy record
            return None
        failed.append(1)
        body = json.dumps({"__type": "InternalServerError", "message": "unavailable"}).encode()
        return AWSResponse(request.url, 500, {"x-amzn-errortype": "InternalServerError"}, _Raw(body))

    aws.client("dynamodb").meta.events.register_first("before-send.dynamodb.PutItem", unavailable)

    result = invoke(handler, first)

    assert len(failed) == 2 and result["outcome"] == "superseded"
    assert result["reason"].endswith("(left to its own event: the idempotency table is unavailable)")
    assert copies_of(sandbox) == {} and outcomes(sandbox) == {"web:1": ["superseded"]}
    assert invoke(handler, second)["outcome"] == "remediated"
    assert list(copies_of(sandbox)) == ["web:2"]
