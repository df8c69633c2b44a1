"""The hub function against an emulated organization (moto server, multi-account through moto's STS).

Events are built as EventBridge delivers them to the hub's rule: the member's CloudTrail event with its own
envelope (`account` and `region` of the member; a rule forwarding to another account's bus keeps them; moto's own
forwarding does not, see ../shared/ORG.md, so it is not used here), and delivered only when the hub rule's pattern
matches it (LocalStack's rule engine; the synthesized member and hub rules have this very pattern:
tests/test_infra_org.py). Every assertion reads state back from the emulator (each account's and Region's task
definitions) or from the hub's inbox queue, and the credentials of every request are checked (org_support.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws
from org_support import HUB, MEMBER_ROLE, Clock, RequestLog, compliant, leave_hub, load_hub, privileged

from demo.eventbridge import matches
from demo.org_sandbox import Organization
from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.accounts import MemberAccounts, regional_sts_client
from ecs_remediate.hub import HubRuntime
from ecs_remediate.org_accounts import AccountNames
from infra import event_pattern

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
MEMBERS = 50
# The pattern of the hub's rule and of every member's forwarding rule (test_infra_org.py: both synthesized equal).
PATTERN = {
    "source": event_pattern.SOURCES,
    "detail-type": event_pattern.DETAIL_TYPES,
    "detail": event_pattern.remediation_detail(),
}


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The hub's table, registry, topic and inbox, in moto in this process (no HTTP: the same emulation, faster
    for 50 accounts and 1,000 events)."""
    from ecs_remediate import aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    with mock_aws():
        yield Sandbox().create()
    aws.reset_clients()


@pytest.fixture
def org(sandbox: Sandbox) -> Organization:
    return Organization(endpoint_url=sandbox.endpoint_url).create([f"member-{i:02d}" for i in range(MEMBERS)])


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> RequestLog:
    return RequestLog(monkeypatch)


@pytest.fixture
def hub(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    module = load_hub(sandbox, monkeypatch)
    yield module
    leave_hub(module)


def deliver(hub: ModuleType, event: dict[str, Any]) -> dict[str, Any] | None:
    """What EventBridge does with the event: invoke the function only when the rule matches."""
    if not matches(PATTERN, event):
        return None
    result: dict[str, Any] = hub.lambda_handler(event, LambdaContext())
    return result


def everywhere(org: Organization) -> dict[tuple[str, str], list[str]]:
    """Every (account, Region) of the organization, the hub included, with its ACTIVE revisions."""
    return {(a, r): org.task_definitions(a, r) for a in [HUB, *org.accounts] for r in REGIONS}


def test_privileged_registration_in_any_member_fixed_there_and_nowhere_else(
    org: Organization, hub: ModuleType, sandbox: Sandbox, requests: RequestLog
) -> None:
    expected: dict[tuple[str, str], set[str]] = {}
    for i, account in enumerate(org.accounts):
        region = REGIONS[i % len(REGIONS)]
        response = org.register(account, region, privileged())
        source = response["taskDefinition"]["taskDefinitionArn"]
        assert source == f"arn:aws:ecs:{region}:{account}:task-definition/web:1"
        result = deliver(hub, org.event_for(account, region, privileged(), response))
        assert result is not None and result["outcome"] == "remediated", result
        assert (result["account"], result["region"]) == (account, region)
        assert result["new_task_definition_arn"] == f"arn:aws:ecs:{region}:{account}:task-definition/web:2"
        expected[(account, region)] = {source, result["new_task_definition_arn"]}
        if i % 10 == 0:  # a compliant registration in the same account and Region: the rule delivers nothing
            params = compliant()
            response = org.register(account, region, params)
            assert deliver(hub, org.event_for(account, region, params, response)) is None
            expected[(account, region)].add(response["taskDefinition"]["taskDefinitionArn"])

    requests.stop()
    state = everywhere(org)
    assert len(state) == (MEMBERS + 1) * len(REGIONS)
    for where, arns in state.items():
        assert set(arns) == expected.get(where, set()), where  # one copy there, none anywhere else
    for account, region in expected:
        copy = org.client("ecs", account, region).describe_task_definition(
            taskDefinition=f"arn:aws:ecs:{region}:{account}:task-definition/web:2", include=["TAGS"]
        )
        assert [c.get("privileged", False) for c in copy["taskDefinition"]["containerDefinitions"]] == [False, False]
        member_role_session = f"arn:aws:sts::{account}:assumed-role/{MEMBER_ROLE}/ecs-remediate"
        assert copy["taskDefinition"]["registeredBy"] == member_role_session
        assert {t["key"]: t["value"] for t in copy["tags"]}["team"] == "payments"

    notes = sandbox.inbox()
    assert len(notes) == MEMBERS  # one notice per registration
    by_account = {n.payload["account"]: n for n in notes}
    assert set(by_account) == set(org.accounts)
    for i, account in enumerate(org.accounts):
        note, region = by_account[account], REGIONS[i % len(REGIONS)]
        name = org.members[account]
        assert note.payload["region"] == region and note.payload["accountName"] == name
        assert note.attributes["account"] == account and note.attributes["region"] == region
        assert note.subject.startswith(f"[ECS.4] {name}/{region} web:1 -> :2 privileged removed")
        assert note.payload["newTaskDefinitionArn"] == f"arn:aws:ecs:{region}:{account}:task-definition/web:2"
    requests.assert_each_account_used_only_its_own_credentials()
    assembled = Counter(requests.account_of(r.key) for r in requests.of("ecs"))
    assert set(assembled) == set(org.accounts)


def test_assume_role_at_most_once_per_account_per_credential_lifetime_over_1000_events(
    org: Organization, hub: ModuleType, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    # The emulator's STS dates its credentials by the same clock (it runs in this process), as AWS's and the
    # function's clocks agree.
    monkeypatch.setattr("moto.sts.models.utcnow", lambda: clock.now.replace(tzinfo=None))
    sts = regional_sts_client("us-east-1")
    sent: Counter[str] = Counter()
    sts.meta.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: sent.update([params["RoleArn"].split(":")[4]])
    )
    runtime = HubRuntime(
        hub.CONFIG,
        MemberAccounts(MEMBER_ROLE, sts=sts, clock=clock),
        dynamodb=sandbox.client("dynamodb"),
        sns=sandbox.client("sns"),
        names=AccountNames(lambda: sandbox.client("organizations")),
    )
    monkeypatch.setattr(hub, "hub_runtime", lambda: runtime)
    events = []
    for i, account in enumerate(org.accounts):
        region = REGIONS[i % len(REGIONS)]
        response = org.register(account, region, privileged())
        events.append(org.event_for(account, region, privileged(), response))

    outcomes: Counter[str] = Counter()
    for n in range(1000):  # EventBridge delivers at least once: the same 50 events, 20 times each
        if n == 500:
            clock.now += timedelta(minutes=56)  # within 5 minutes of the credentials' 1-hour expiry
            assert sent == Counter(dict.fromkeys(org.accounts, 1))
        result = deliver(hub, events[n % len(events)])
        assert result is not None
        outcomes[result["outcome"]] += 1

    assert outcomes == {"remediated": 1000}
    assert sent == Counter(dict.fromkeys(org.accounts, 2))  # renewed once each, not per event
    assert {a: len(org.task_definitions(a, REGIONS[i % 3])) for i, a in enumerate(org.accounts)} == dict.fromkeys(
        org.accounts, 2
    )
    assert len(sandbox.inbox()) == MEMBERS
