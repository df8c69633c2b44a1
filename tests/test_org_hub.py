"""The hub function against an emulated organization (moto server, multi-account through moto's STS).

Events are built as EventBridge delivers them to the hub's rule: the member's CloudTrail event with its own
envelope (`account` and `region` of the member; a rule forwarding to another account's bus keeps them; moto's own
forwarding does not, see ../shared/ORG.md, so it is not used here), and delivered only when the hub rule's pattern
matches it (LocalStack's rule engine; the synthesized member and hub rules have this very pattern:
tests/test_infra_org.py). Every assertion reads state back from the emulator (each account's and Region's task
definitions) or from the hub's inbox queue, and the credentials of every request are checked (org_support.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws
from org_support import HUB, MEMBER_ROLE, Clock, RequestLog, compliant, leave_hub, load_hub, privileged

from conftest import load_handler
from demo.org_sandbox import Organization
from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.core.events import Registration
from ecs_remediate.organization.account_names import AccountNames
from ecs_remediate.organization.hub import HubRuntime
from ecs_remediate.organization.member_accounts import MemberAccounts, regional_sts_client
from ecs_remediate.remediation.provenance import is_trusted_principal
from emulators.eventbridge import matches
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
    from ecs_remediate.adapters import aws

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
        assert note.subject.startswith(f"[ECS.4] {account}/{region} web:1 -> :2 privileged removed")
        assert note.payload["newTaskDefinitionArn"] == f"arn:aws:ecs:{region}:{account}:task-definition/web:2"
    requests.assert_each_account_used_only_its_own_credentials()
    assembled = Counter(requests.account_of(r.key) for r in requests.of("ecs"))
    assert set(assembled) == set(org.accounts)


@pytest.mark.slow
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


def test_the_member_role_is_the_stack_s_own_registrant_in_its_account_only(
    org: Organization, hub: ModuleType, sandbox: Sandbox
) -> None:
    """Without the ledger's record (lost, or written by another stack), the copy still counts: ECS says the member
    role registered it, and that account's Remediator trusts that role, in that account only."""
    account, other = org.accounts[0], org.accounts[1]
    response = org.register(account, "us-east-1", privileged())
    event = org.event_for(account, "us-east-1", privileged(), response)
    assert deliver(hub, event) is not None
    source = response["taskDefinition"]["taskDefinitionArn"]
    sandbox.client("dynamodb").delete_item(
        TableName=sandbox.table_name, Key={"id": {"S": f"ecs-remediate#copy#{source}"}}
    )
    hub.hub_runtime.cache_clear()  # a new instance of the function: nothing remembered

    remediator = hub.hub_runtime().remediator(account, "us-east-1")
    remediator.register_lambda_context(LambdaContext())
    result = remediator.process(Registration(task_definition_arn=source))
    assert result.outcome == "remediated" and result.new_task_definition_arn == source[:-1] + "2"
    assert result.copy_proof == (
        f"registered by the stack's principal arn:aws:sts::{account}:assumed-role/{MEMBER_ROLE}/ecs-remediate"
    )
    assert len(org.task_definitions(account, "us-east-1")) == 2
    trusted = hub.hub_runtime().config_for(account).trusted_principals
    assert trusted == (f"arn:aws:iam::{account}:role/{MEMBER_ROLE}",)
    assert not is_trusted_principal(f"arn:aws:sts::{other}:assumed-role/{MEMBER_ROLE}/ecs-remediate", trusted)


def test_retire_looks_up_rules_and_schedules_in_the_member_account(
    org: Organization, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = load_hub(sandbox, monkeypatch, RETIRE="true")
    try:
        account = org.accounts[3]
        response = org.register(account, "eu-west-1", privileged())
        requests = RequestLog(monkeypatch)
        result = deliver(hub, org.event_for(account, "eu-west-1", privileged(), response))
        requests.stop()
    finally:
        leave_hub(hub)
    assert result is not None and result["outcome"] == "remediated"
    assert org.task_definitions(account, "eu-west-1") == [f"arn:aws:ecs:eu-west-1:{account}:task-definition/web:2"]
    looked_up = {r.service for r in requests.of("events", "scheduler")}
    assert looked_up == {"events", "scheduler"}
    assert {requests.account_of(r.key) for r in requests.of("ecs", "events", "scheduler")} == {account}
    requests.assert_each_account_used_only_its_own_credentials()


def test_notice_names_the_account_by_id_when_organizations_cannot_be_read(sandbox: Sandbox, hub: ModuleType) -> None:
    """A hub that cannot read Organizations (not the management account nor a delegated administrator; here no
    organization at all): the account id alone, no failure, and one DescribeAccount per account."""
    org = Organization()  # accounts of no organization: moto's STS still acts in them
    asked: list[str] = []
    from ecs_remediate.adapters import aws

    aws.client("organizations").meta.events.register(
        "provide-client-params.organizations.DescribeAccount", lambda params, **_: asked.append(params["AccountId"])
    )
    account = "210000000042"
    for family in ("web", "worker"):
        response = org.register(account, "us-east-1", privileged(family))
        assert deliver(hub, org.event_for(account, "us-east-1", privileged(family), response)) is not None
    notes = sandbox.inbox()
    assert len(notes) == 2 and asked == [account]
    for note in notes:
        assert note.payload["account"] == account and note.payload["accountName"] == ""
        assert note.subject.startswith(f"[ECS.4] {account}/us-east-1 ")


def test_without_member_role_name_the_function_is_the_single_account_one(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEMBER_ROLE_NAME", raising=False)
    module = load_handler(sandbox, monkeypatch)
    assert module.HUB_MODE is False
    response = sandbox.register(privileged())
    result = module.lambda_handler(sandbox.event_for(privileged(), response), LambdaContext())
    assert result["outcome"] == "remediated" and "account" not in result  # today's answer, unchanged
    assert result["new_task_definition_arn"] == f"arn:aws:ecs:us-east-1:{HUB}:task-definition/web:2"


def test_account_names_are_shared_by_the_function_s_instances_through_the_hub_table(
    org: Organization, hub: ModuleType, sandbox: Sandbox
) -> None:
    """Organizations' API rate is low and every instance would ask: the first instance's answer is kept in the hub's
    table for a day (with the table's TTL), and later instances read it there."""
    from ecs_remediate.adapters import aws

    asked: list[str] = []
    aws.client("organizations").meta.events.register(
        "provide-client-params.organizations.DescribeAccount", lambda params, **_: asked.append(params["AccountId"])
    )
    account = org.accounts[5]
    for family in ("web", "worker"):
        hub.hub_runtime.cache_clear()  # a new instance of the function each time
        response = org.register(account, "us-east-1", privileged(family))
        assert deliver(hub, org.event_for(account, "us-east-1", privileged(family), response)) is not None
    assert asked == [account]
    assert [n.payload["accountName"] for n in sandbox.inbox()] == [org.members[account]] * 2
    item = sandbox.client("dynamodb").get_item(
        TableName=sandbox.table_name, Key={"id": {"S": f"ecs-remediate#account-name#{account}"}}
    )["Item"]
    assert item["name"]["S"] == org.members[account]
    assert 0 < int(item["expiration"]["N"]) - time.time() <= 86_400  # DynamoDB's TTL removes it after a day
