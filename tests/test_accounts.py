"""Member-account credentials against moto's STS (multi-account through assumed-role credentials, over HTTP).

MOTO_ACCOUNT_ID is never set: moto maps the keys its STS issues to the account of the assumed role, so every
request below acts in the account whose keys signed it. AssumeRole calls are counted with botocore event hooks
on the STS client (requests actually sent), and the access key of every member request is read from its signed
Authorization header.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config as BotoConfig
from botocore.exceptions import ConnectTimeoutError
from strategies import RawBody, error_response

from ecs_remediate.adapters import aws
from ecs_remediate.organization.member_accounts import (
    CredentialsAccountMismatch,
    MemberAccessTransient,
    MemberAccounts,
    MemberRoleUnavailable,
    regional_sts_client,
)

HUB = "123456789012"  # the fake credentials of conftest act here
MEMBERS = [f"{210000000000 + i}" for i in range(10)]
REGIONS = ["us-east-1", "eu-west-1"]
ROLE = "ecs-remediate-member"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class StsLog:
    """AssumeRole requests sent, and the account each issued access key belongs to."""

    def __init__(self, sts: Any) -> None:
        self.sent = 0
        self.per_account: Counter[str] = Counter()
        self.key_account: dict[str, str] = {}
        self._lock = threading.Lock()
        sts.meta.events.register("before-send.sts.AssumeRole", self._sent)
        sts.meta.events.register("after-call.sts.AssumeRole", self._issued)

    def _sent(self, request: Any, **_: Any) -> None:
        with self._lock:
            self.sent += 1

    def _issued(self, parsed: dict[str, Any], **_: Any) -> None:
        if "Credentials" not in parsed:
            return
        account = parsed["AssumedRoleUser"]["Arn"].split(":")[4]
        with self._lock:
            self.per_account[account] += 1
            self.key_account[parsed["Credentials"]["AccessKeyId"]] = account


class KeysUsed:
    """(account the client was asked for, access key that signed the request), for every request of a client."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def watch(self, client: Any, account: str) -> Any:
        def record(request: Any, **_: Any) -> None:
            auth = (
                request.headers["Authorization"].decode()
                if isinstance(request.headers["Authorization"], bytes)
                else request.headers["Authorization"]
            )
            key = auth.split("Credential=", 1)[1].split("/", 1)[0]
            with self._lock:
                self.seen.append((account, key))

        client.meta.events.register("before-send", record, unique_id=f"keys-{account}-{id(client)}")
        return client


def sts_client(**retries: Any) -> Any:
    if retries:
        return boto3.client("sts", region_name="us-east-1", config=BotoConfig(retries=retries))
    return regional_sts_client("us-east-1")


@pytest.fixture
def members(moto_endpoint: str) -> tuple[MemberAccounts, StsLog, Clock]:
    clock = Clock()
    sts = sts_client()
    return MemberAccounts(ROLE, sts=sts, clock=clock), StsLog(sts), clock


def test_one_assume_role_per_account_across_1000_requests_in_parallel(
    members: tuple[MemberAccounts, StsLog, Clock],
) -> None:
    accounts, log, _ = members
    keys = KeysUsed()
    watched: set[tuple[str, str]] = set()
    watch_lock = threading.Lock()
    work = [(MEMBERS[i % len(MEMBERS)], REGIONS[(i // len(MEMBERS)) % 2]) for i in range(1000)]

    def call(item: tuple[str, str]) -> tuple[str, str, str]:
        account, region = item
        client = accounts.client("sts", account, region)
        with watch_lock:
            if (account, region) not in watched:
                watched.add((account, region))
                keys.watch(client, account)
        identity = client.get_caller_identity()
        return account, identity["Account"], identity["Arn"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(call, work))

    assert len(results) == 1000
    for asked, acted_in, arn in results:
        assert acted_in == asked
        assert arn.startswith(f"arn:aws:sts::{asked}:assumed-role/{ROLE}/")
    assert log.sent == len(MEMBERS)  # one AssumeRole per account, however many threads asked first
    assert set(log.per_account.values()) == {1} and set(log.per_account) == set(MEMBERS)
    # Every request watched was signed with a key issued for the account its client was asked for.
    assert len(keys.seen) > 900
    assert all(log.key_account[key] == account for account, key in keys.seen)


def test_each_account_acts_only_in_its_own_state(members: tuple[MemberAccounts, StsLog, Clock]) -> None:
    accounts, _, _ = members
    a, b = MEMBERS[0], MEMBERS[1]
    container = [{"name": "app", "image": "nginx", "memory": 64}]
    registered = accounts.client("ecs", a, "eu-west-1").register_task_definition(
        family="web", containerDefinitions=container
    )
    assert registered["taskDefinition"]["taskDefinitionArn"] == f"arn:aws:ecs:eu-west-1:{a}:task-definition/web:1"
    assert accounts.client("ecs", a, "eu-west-1").list_task_definitions()["taskDefinitionArns"] == [
        f"arn:aws:ecs:eu-west-1:{a}:task-definition/web:1"
    ]
    assert accounts.client("ecs", a, "us-east-1").list_task_definitions()["taskDefinitionArns"] == []
    assert accounts.client("ecs", b, "eu-west-1").list_task_definitions()["taskDefinitionArns"] == []
    assert aws.client("ecs", "eu-west-1").list_task_definitions()["taskDefinitionArns"] == []  # the hub's own


def test_clients_are_cached_per_service_account_and_region(members: tuple[MemberAccounts, StsLog, Clock]) -> None:
    accounts, log, _ = members
    a, b = MEMBERS[0], MEMBERS[1]
    assert accounts.client("ecs", a, "us-east-1") is accounts.client("ecs", a, "us-east-1")
    assert accounts.client("ecs", a, "us-east-1") is not accounts.client("ecs", a, "eu-west-1")
    assert accounts.client("ecs", a, "us-east-1") is not accounts.client("ecs", b, "us-east-1")
    assert accounts.client("ecs", a, "us-east-1").meta.config.retries == aws.BOTO_CONFIG.retries
    assert log.sent == 2


def test_credentials_renewed_only_within_the_margin_of_expiry(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    # The emulator's STS dates its credentials by the same clock (it runs in this process), as AWS's and the
    # function's clocks agree.
    monkeypatch.setattr("moto.sts.models.utcnow", lambda: clock.now.replace(tzinfo=None))
    sts = sts_client()
    log = StsLog(sts)
    margin = timedelta(minutes=5)
    accounts = MemberAccounts(ROLE, sts=sts, clock=clock, refresh_margin=margin, session_seconds=900)
    account = MEMBERS[3]
    keys = KeysUsed()
    client = keys.watch(accounts.client("sts", account, "us-east-1"), account)
    assert client.get_caller_identity()["Account"] == account
    first = accounts.credentials(account)
    assert timedelta(seconds=890) <= first.expiration - clock.now <= timedelta(seconds=910)

    clock.now = first.expiration - margin - timedelta(seconds=1)  # still fresh enough
    for _ in range(5):
        assert client.get_caller_identity()["Account"] == account
    assert log.sent == 1

    clock.now = first.expiration - margin + timedelta(seconds=1)  # within the margin: renewed once
    for _ in range(5):
        assert client.get_caller_identity()["Account"] == account
    assert log.sent == 2
    second = accounts.credentials(account)
    assert second.access_key_id != first.access_key_id
    used = [key for _, key in keys.seen]
    assert used[:6] == [first.access_key_id] * 6 and used[6:] == [second.access_key_id] * 5


def _denied(request: Any, **_: Any) -> Any:
    message = f"User: arn:aws:sts::{HUB}:assumed-role/hub/fn is not authorized to perform: sts:AssumeRole"
    return error_response(request, 403, "AccessDenied", message, protocol="query")


def test_access_denied_is_permanent_remembered_then_asked_again(moto_endpoint: str) -> None:
    clock = Clock()
    sts = sts_client()
    log = StsLog(sts)
    accounts = MemberAccounts(ROLE, sts=sts, clock=clock, failure_ttl=timedelta(seconds=60))
    sts.meta.events.register_first("before-send.sts.AssumeRole", _denied, unique_id="deny")
    account = MEMBERS[4]
    with pytest.raises(MemberRoleUnavailable) as error:
        accounts.client("ecs", account, "us-east-1")
    assert error.value.code == "AccessDenied" and error.value.account == account
    assert error.value.role_arn == f"arn:aws:iam::{account}:role/{ROLE}"
    for _ in range(50):  # a storm of events from an account without the role: no storm of AssumeRole calls
        with pytest.raises(MemberRoleUnavailable):
            accounts.client("ecs", account, "us-east-1")
    assert log.sent == 1
    assert MEMBERS[5] not in accounts._credentials  # another account is not affected
    sts.meta.events.unregister("before-send.sts.AssumeRole", unique_id="deny")  # the role gets deployed
    clock.now += timedelta(seconds=61)
    assert accounts.client("sts", account, "us-east-1").get_caller_identity()["Account"] == account
    assert log.sent == 2


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (
            lambda request, **_: error_response(request, 400, "Throttling", "Rate exceeded", protocol="query"),
            "Throttling",
        ),
        (
            lambda request, **_: error_response(request, 500, "InternalFailure", "x", protocol="query"),
            "InternalFailure",
        ),
        (
            lambda request, **_: error_response(request, 400, "ExpiredToken", "hub token", protocol="query"),
            "ExpiredToken",
        ),
        (
            lambda request, **_: (_ for _ in ()).throw(ConnectTimeoutError(endpoint_url=request.url)),
            "ConnectTimeoutError",
        ),
    ],
    ids=["throttled", "5xx", "caller-token-expired", "network"],
)
def test_transient_sts_errors_are_typed_and_not_remembered(moto_endpoint: str, fault: Any, code: str) -> None:
    # One attempt per call: the classification, not botocore's retries, is under test.
    sts = sts_client(mode="standard", total_max_attempts=1)
    calls: list[str] = []
    sts.meta.events.register("before-call.sts.AssumeRole", lambda **_: calls.append("AssumeRole"))
    accounts = MemberAccounts(ROLE, sts=sts, clock=Clock())
    sts.meta.events.register_first("before-send.sts.AssumeRole", fault, unique_id="fault")
    account = MEMBERS[6]
    for attempt in (1, 2):
        with pytest.raises(MemberAccessTransient) as error:
            accounts.credentials(account)
        assert error.value.code == code
        assert len(calls) == attempt  # asked again every time: a transient answer is never cached
    sts.meta.events.unregister("before-send.sts.AssumeRole", unique_id="fault")
    assert accounts.credentials(account).account == account


def test_credentials_of_another_account_are_never_used(moto_endpoint: str) -> None:
    sts = sts_client()
    accounts = MemberAccounts(ROLE, sts=sts, clock=Clock())
    asked, other = MEMBERS[7], MEMBERS[8]

    def other_accounts_keys(request: Any, **_: Any) -> Any:
        body = (
            '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
            f"<AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:ecs-remediate</AssumedRoleId>"
            f"<Arn>arn:aws:sts::{other}:assumed-role/{ROLE}/ecs-remediate</Arn></AssumedRoleUser>"
            "<Credentials><AccessKeyId>ASIAOTHERACCOUNT</AccessKeyId><SecretAccessKey>SECRET-other</SecretAccessKey>"
            "<SessionToken>TOKEN-other</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>"
            "</AssumeRoleResult><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></AssumeRoleResponse>"
        ).encode()
        return AWSResponse(request.url, 200, {"content-type": "text/xml"}, RawBody(body))

    sts.meta.events.register_first("before-send.sts.AssumeRole", other_accounts_keys, unique_id="swap")
    with pytest.raises(CredentialsAccountMismatch) as error:
        accounts.client("ecs", asked, "us-east-1")
    assert other in str(error.value) and "SECRET" not in str(error.value) and "TOKEN" not in str(error.value)
    assert accounts._clients == {} and accounts._credentials == {}


def test_secrets_stay_out_of_reprs_and_messages(members: tuple[MemberAccounts, StsLog, Clock]) -> None:
    accounts, _, _ = members
    credentials = accounts.credentials(MEMBERS[9])
    assert credentials.secret_access_key not in repr(credentials)
    assert credentials.session_token not in repr(credentials)
    assert credentials.access_key_id in repr(credentials)  # the key id identifies, it does not authorize


@pytest.mark.parametrize("account", ["12345678901", "1234567890123", "12345678901a", "", "123456789012/x"])
def test_bad_account_ids_are_refused_before_any_call(
    members: tuple[MemberAccounts, StsLog, Clock], account: str
) -> None:
    accounts, log, _ = members
    with pytest.raises(ValueError, match="not an AWS account id"):
        accounts.client("ecs", account, "us-east-1")
    assert log.sent == 0


def test_bad_role_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not an IAM role name"):
        MemberAccounts("role/with/path", sts=sts_client())


def test_regional_sts_endpoint_and_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_STS_REGIONAL_ENDPOINTS", "legacy")  # would send us-east-1 to the global endpoint
    assert regional_sts_client("us-east-1").meta.endpoint_url == "https://sts.us-east-1.amazonaws.com"
    assert regional_sts_client("eu-west-1").meta.endpoint_url == "https://sts.eu-west-1.amazonaws.com"
    china = MemberAccounts(ROLE, sts=regional_sts_client("cn-north-1"))
    assert china.role_arn("111122223333") == "arn:aws-cn:iam::111122223333:role/ecs-remediate-member"
    monkeypatch.setenv("MEMBER_ROLE_NAME", "custom-member")
    assert MemberAccounts.from_env(sts=regional_sts_client("us-east-1")).role_arn("111122223333") == (
        "arn:aws:iam::111122223333:role/custom-member"
    )
