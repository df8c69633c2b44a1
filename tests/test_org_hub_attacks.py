"""The hub's trust boundaries, attacked: a member trying to make the hub act in another account or Region, and
member roles that are missing, deny, or hand back another account's credentials.

Each test reads back every account's and Region's task definitions (nothing written anywhere), the hub's inbox
(one failure notice naming the account and Region) and the requests actually sent (org_support.RequestLog: no
member-side request at all when an event is refused).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config as BotoConfig
from moto import mock_aws
from org_support import HUB, MEMBER_ROLE, RequestLog, leave_hub, load_hub, privileged
from strategies import RawBody, error_response

from demo.org_sandbox import Organization
from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.organization.account_names import AccountNames
from ecs_remediate.organization.hub import HubRuntime
from ecs_remediate.organization.member_accounts import MemberAccessTransient, MemberAccounts

REGIONS = ["us-east-1", "eu-west-1"]


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
    return Organization().create(["payments-prod", "analytics-dev", "sandbox-3"])


@pytest.fixture
def hub(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    module = load_hub(sandbox, monkeypatch)
    yield module
    leave_hub(module)


def invoke(hub: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = hub.lambda_handler(event, LambdaContext())
    return result


def state(org: Organization) -> dict[tuple[str, str], list[str]]:
    return {(a, r): org.task_definitions(a, r) for a in [HUB, *org.accounts] for r in REGIONS}


def registered(org: Organization, account: str, region: str) -> tuple[dict[str, Any], str]:
    response = org.register(account, region, privileged())
    return response, str(response["taskDefinition"]["taskDefinitionArn"])


def only_notice(sandbox: Sandbox) -> Any:
    notes = sandbox.inbox()
    assert len(notes) == 1, [n.subject for n in notes]
    return notes[0]


def test_forged_arn_of_another_member_is_refused(
    org: Organization, hub: ModuleType, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    attacker, victim = org.accounts[0], org.accounts[1]
    response, victims_revision = registered(org, victim, "us-east-1")
    before = state(org)
    requests = RequestLog(monkeypatch)
    # The attacker's account sends (EventBridge sets `account` to the sender) an event naming the victim's revision.
    event = org.event_for(attacker, "us-east-1", privileged(), response)
    assert event["detail"]["responseElements"]["taskDefinition"]["taskDefinitionArn"] == victims_revision

    result = invoke(hub, event)
    assert result["outcome"] == "skipped" and result["refused"] is True
    assert result["reason"].startswith(f"foreign account: the revision is in {victim}")
    assert invoke(hub, event)["refused"] is True  # delivered again: refused again, notified once
    requests.stop()

    assert state(org) == before  # nothing written anywhere
    assert requests.of("ecs", "events", "scheduler") == []  # not even a describe, in any account
    assert [r for r in requests.of("sts") if r.operation == "Query"] == []  # no AssumeRole at all
    note = only_notice(sandbox)
    assert note.attributes["outcome"] == "failed" and note.payload["errorCode"] == "Refused"
    assert note.payload["account"] == attacker and note.payload["accountName"] == "payments-prod"
    assert note.payload["region"] == "us-east-1" and note.payload["nextCommands"] == []
    assert note.payload["taskDefinitionArn"] == victims_revision
    assert note.subject.startswith(f"[ECS.4] {attacker}/us-east-1 web:1 remediation FAILED")


def test_envelope_account_other_than_the_calls_account_is_refused(
    org: Organization, hub: ModuleType, sandbox: Sandbox
) -> None:
    """The CloudTrail record is the first member's (its revision, its recipientAccountId) but the envelope says the
    second sent it: the hub acts in neither."""
    first, second = org.accounts[0], org.accounts[1]
    response, _ = registered(org, first, "eu-west-1")
    before = state(org)
    event = org.event_for(first, "eu-west-1", privileged(), response)
    event["account"] = second

    result = invoke(hub, event)
    assert result["refused"] is True and f"not the sending account {second}" in result["reason"]
    assert state(org) == before
    assert only_notice(sandbox).payload["account"] == second


def test_revision_in_another_region_than_the_sending_one_is_refused(
    org: Organization, hub: ModuleType, sandbox: Sandbox
) -> None:
    account = org.accounts[2]
    response, _ = registered(org, account, "us-east-1")
    before = state(org)
    event = org.event_for(account, "eu-west-1", privileged(), response)  # sent from eu-west-1, names us-east-1

    result = invoke(hub, event)
    assert result["refused"] is True and result["reason"] == (
        "foreign Region: the revision is in us-east-1, not the sending Region eu-west-1"
    )
    assert state(org) == before
    note = only_notice(sandbox)
    assert (note.payload["account"], note.payload["region"]) == (account, "eu-west-1")


@pytest.mark.parametrize("sender", [None, "", "12345678901", "123456789012 ", "arn:aws:iam::210000000000:root"])
def test_envelope_without_a_valid_sending_account_is_refused(
    org: Organization, hub: ModuleType, sandbox: Sandbox, sender: str | None
) -> None:
    account = org.accounts[0]
    response, _ = registered(org, account, "us-east-1")
    before = state(org)
    event = org.event_for(account, "us-east-1", privileged(), response)
    if sender is None:
        del event["account"]
    else:
        event["account"] = sender

    result = invoke(hub, event)
    assert result["outcome"] == "skipped" and result["refused"] is True
    assert state(org) == before  # never "the ARN's account" as a fallback
    assert only_notice(sandbox).payload["errorCode"] == "Refused"


def test_event_naming_no_revision_is_searched_in_the_sending_account_only(
    org: Organization, hub: ModuleType, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No responseElements: the hub looks for the revision by family, time and registrant, in the sender's account
    and Region only; the family of the same name in another account is never read."""
    sender, other = org.accounts[0], org.accounts[1]
    registered(org, other, "us-east-1")
    before = state(org)
    requests = RequestLog(monkeypatch)
    event = org.event_for(sender, "us-east-1", privileged(), None)

    result = invoke(hub, event)
    requests.stop()
    assert result["outcome"] == "unresolved" and result["account"] == sender
    assert state(org) == before
    assert {requests.account_of(r.key) for r in requests.of("ecs")} == {sender}
    requests.assert_each_account_used_only_its_own_credentials()
    note = only_notice(sandbox)
    assert note.payload["account"] == sender and note.attributes["outcome"] == "unresolved"


def _deny(account: str, message: str) -> Any:
    def handler(request: Any, **_: Any) -> Any:
        if f"%3A{account}%3Arole" in str(request.body):
            return error_response(request, 403, "AccessDenied", message, protocol="query")
        return None

    return handler


@pytest.mark.parametrize(
    "message",
    [
        "User: arn:aws:sts::123456789012:assumed-role/hub/fn is not authorized to perform: sts:AssumeRole on "
        "resource: arn:aws:iam::{account}:role/ecs-remediate-member",  # what STS says when the role does not exist
        "An explicit deny in a service control policy",
    ],
    ids=["role-missing", "denied"],
)
def test_member_role_missing_or_denied_gives_a_failure_notice_and_no_write(
    org: Organization, hub: ModuleType, sandbox: Sandbox, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    account, healthy = org.accounts[1], org.accounts[2]
    runtime = hub.hub_runtime()
    runtime.members.sts.meta.events.register_first(
        "before-send.sts.AssumeRole", _deny(account, message.format(account=account)), unique_id="deny"
    )
    response, source = registered(org, account, "eu-west-1")
    before = state(org)
    requests = RequestLog(monkeypatch)

    result = invoke(hub, org.event_for(account, "eu-west-1", privileged(), response))  # returns: no retry
    requests.stop()
    assert result["outcome"] == "failed" and (result["account"], result["region"]) == (account, "eu-west-1")
    assert result["task_definition_arn"] == source and "cannot be assumed (AccessDenied)" in result["reason"]
    assert state(org) == before
    assert requests.of("ecs") == []
    note = only_notice(sandbox)
    assert note.payload["errorCode"] == "MemberRoleUnavailable" and note.payload["account"] == account
    assert note.payload["region"] == "eu-west-1" and note.payload["accountName"] == "analytics-dev"
    assert f"arn:aws:iam::{account}:role/{MEMBER_ROLE}" in note.payload["errorMessage"]
    assert note.subject.startswith(f"[ECS.4] {account}/eu-west-1 web:1 remediation FAILED")

    # Another account is not affected.
    response, _ = registered(org, healthy, "eu-west-1")
    assert invoke(hub, org.event_for(healthy, "eu-west-1", privileged(), response))["outcome"] == "remediated"


def test_member_role_throttled_is_raised_for_a_retry(
    org: Organization, hub: ModuleType, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One attempt per call: what the hub does after botocore's retries, not the retries, is under test.
    sts = boto3.client("sts", region_name="us-east-1", config=BotoConfig(retries={"total_max_attempts": 1}))
    sts.meta.events.register_first(
        "before-send.sts.AssumeRole",
        lambda request, **_: error_response(request, 400, "Throttling", "Rate exceeded", protocol="query"),
    )
    runtime = HubRuntime(
        hub.CONFIG,
        MemberAccounts(MEMBER_ROLE, sts=sts),
        dynamodb=sandbox.client("dynamodb"),
        sns=sandbox.client("sns"),
        names=AccountNames(lambda: sandbox.client("organizations")),
    )
    monkeypatch.setattr(hub, "hub_runtime", lambda: runtime)
    account = org.accounts[0]
    response, _ = registered(org, account, "us-east-1")
    before = state(org)
    with pytest.raises(MemberAccessTransient):  # Lambda retries the event, then the dead-letter queue has it
        invoke(hub, org.event_for(account, "us-east-1", privileged(), response))
    assert state(org) == before
    assert sandbox.inbox() == []


def test_credentials_of_another_account_are_refused(org: Organization, hub: ModuleType, sandbox: Sandbox) -> None:
    asked, other = org.accounts[0], org.accounts[1]

    def other_accounts_keys(request: Any, **_: Any) -> Any:
        body = (
            '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
            f"<AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:ecs-remediate</AssumedRoleId>"
            f"<Arn>arn:aws:sts::{other}:assumed-role/{MEMBER_ROLE}/ecs-remediate</Arn></AssumedRoleUser>"
            "<Credentials><AccessKeyId>ASIAOTHER</AccessKeyId><SecretAccessKey>SECRET-other</SecretAccessKey>"
            "<SessionToken>TOKEN-other</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>"
            "</AssumeRoleResult><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></AssumeRoleResponse>"
        ).encode()
        return AWSResponse(request.url, 200, {"content-type": "text/xml"}, RawBody(body))

    hub.hub_runtime().members.sts.meta.events.register_first(
        "before-send.sts.AssumeRole", other_accounts_keys, unique_id="swap"
    )
    response, _ = registered(org, asked, "us-east-1")
    before = state(org)
    result = invoke(hub, org.event_for(asked, "us-east-1", privileged(), response))
    assert result["outcome"] == "failed" and "WrongAccount" in result["reason"]
    assert state(org) == before
    note = only_notice(sandbox)
    assert note.payload["account"] == asked
    assert "SECRET" not in str(note.payload) and "TOKEN" not in str(note.payload)
