"""Fair across accounts (issue 23): the organization hub's function takes its event queue in large batches and handles
them in round-robin order of the member accounts; an execution environment tries an account's records ACCOUNT_BURST at
once and then at ACCOUNT_RATE a second, the rest deferred, spread at that rate and grouped by account
(MessageGroupId). Against moto in this process: an organization through moto's STS, the hub's queue in moto's SQS;
revisions read back from each member account.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import ModuleType

import pytest
from moto import mock_aws
from org_support import leave_hub, load_hub, privileged

from demo.org_sandbox import Organization
from demo.sandbox import REGION, LambdaContext, Sandbox
from ecs_remediate.functions import delivery
from emulators.event_queue import EventQueue

MARKER = "ecs-remediate:source-revision"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    from ecs_remediate.adapters import aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    with mock_aws():
        yield Sandbox().create()
    aws.reset_clients()


@pytest.fixture
def org(sandbox: Sandbox) -> Organization:
    return Organization(endpoint_url=sandbox.endpoint_url).create(["noisy", "quiet", "other"])


@pytest.fixture
def queue(sandbox: Sandbox) -> EventQueue:
    return EventQueue(sandbox.client("sqs"), visibility_timeout=30).create()


@pytest.fixture
def hub(sandbox: Sandbox, queue: EventQueue, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    module = load_hub(sandbox, monkeypatch, **queue.env())
    yield module
    leave_hub(module)


def fixed(org: Organization, account: str, family: str) -> bool:
    """The family's latest ACTIVE revision in `account` is a fixed copy (the marker, no privileged container)."""
    ecs = org.client("ecs", account, REGION)
    latest = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    privileged_left = any(c.get("privileged") for c in latest["taskDefinition"]["containerDefinitions"])
    return not privileged_left and any(t["key"] == MARKER for t in latest.get("tags") or [])


def test_one_members_burst_does_not_hold_back_another_members_registration(
    org: Organization, hub: ModuleType, queue: EventQueue, sandbox: Sandbox
) -> None:
    noisy, quiet, other = org.accounts
    for n in range(12):  # the burst is on the queue first
        response = org.register(noisy, REGION, privileged(f"svc{n}"))
        queue.put(org.event_for(noisy, REGION, privileged(f"svc{n}"), response))
    for account in (quiet, other):
        response = org.register(account, REGION, privileged("web"))
        queue.put(org.event_for(account, REGION, privileged("web"), response))

    # One batch, as the hub's mapping gathers it (up to 1,000 records within its window).
    assert queue.poll(hub.queue_handler, LambdaContext(), batch_size=1000, window=1.0) == 14

    assert fixed(org, quiet, "web") and fixed(org, other, "web")  # handled in the first round of the batch
    done = [n for n in range(12) if fixed(org, noisy, f"svc{n}")]
    assert len(done) == delivery.ACCOUNT_BURST  # the rest waits for its own account's rate
    attributes = queue.sqs.get_queue_attributes(QueueUrl=queue.queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == str(12 - delivery.ACCOUNT_BURST)
    assert hub.delivery().deferred == 12 - delivery.ACCOUNT_BURST
    assert sorted(hub.delivery().deferred_why.values()) == ["paced"] * (12 - delivery.ACCOUNT_BURST)

    # Deferred events come back grouped by their member account, spread a second apart; all are fixed in the end.
    deadline = time.monotonic() + 60
    groups: set[str] = set()
    while queue.depth() and time.monotonic() < deadline:
        messages = queue.sqs.receive_message(
            QueueUrl=queue.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            time.sleep(0.3)
            continue
        groups |= {m["Attributes"].get("MessageGroupId", "") for m in messages}
        response = hub.queue_handler({"Records": [queue._record(m) for m in messages]}, LambdaContext())
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                queue.sqs.delete_message(QueueUrl=queue.queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert groups == {noisy}
    assert all(fixed(org, noisy, f"svc{n}") for n in range(12))
    outcomes = [n.attributes["outcome"] for n in sandbox.inbox()]
    assert outcomes == ["remediated"] * 14
    assert queue.dead_letters() == []


def test_round_robin_order_of_a_batch(hub: ModuleType) -> None:
    """The accounts with the fewest records first, then each account's next record in turn; an unreadable record is an
    account of its own."""
    records = [
        {"messageId": str(n), "body": f'{{"account": "{account}"}}'}
        for n, account in enumerate(["111111111111"] * 4 + ["222222222222", "333333333333", "222222222222"])
    ]
    records.insert(2, {"messageId": "x", "body": "{not json"})
    ordered = [r["messageId"] for r in hub.delivery().fair_order(records)]
    assert ordered == ["x", "5", "4", "0", "6", "1", "2", "3"]
