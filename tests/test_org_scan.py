"""`ecs-remediate scan --accounts ID,...|org` from the hub against an emulated organization (moto in this process,
multi-account through moto's STS): one report with account and Region columns in every format, ERROR rows for an
account whose member role cannot be assumed, remediation in each member through its member role, exit codes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from org_support import HUB, MEMBER_ROLE, RequestLog, compliant, deny_member_role, privileged

from demo.org_sandbox import Organization
from demo.sandbox import Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.cli import accounts as cli_accounts
from ecs_remediate.cli.main import main
from ecs_remediate.organization.account_names import AccountListingFailed, active_accounts

REGIONS = ["us-east-1", "eu-west-1"]
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name in ("MODE", "TOPIC_ARN", "IDEMPOTENCY_TABLE", "EXEMPTIONS_TABLE", "EXEMPT_FAMILIES", "SWEEP_RATES"):
        monkeypatch.delenv(name, raising=False)
    aws.reset_clients()
    with mock_aws():
        yield Sandbox().create()
    aws.reset_clients()


@pytest.fixture
def org(sandbox: Sandbox) -> Organization:
    """Four members; each has web:1 privileged and api:1 compliant in one Region (alternating)."""
    org = Organization().create(["payments-prod", "analytics-dev", "data-lake", "ml-train"])
    for i, account in enumerate(org.accounts):
        region = REGIONS[i % 2]
        org.register(account, region, privileged())
        org.register(account, region, compliant())
    return org


def scan(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", "--region", ",".join(REGIONS), *FAST, *args], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def deny(monkeypatch: pytest.MonkeyPatch, account: str) -> None:
    """STS answers AccessDenied for `account`'s member role (no role there, or its trust refuses the caller)."""
    deny_member_role(monkeypatch, cli_accounts, account)


def test_json_rows_name_account_and_region_and_unreachable_accounts_are_errors(
    org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    denied = org.accounts[2]
    deny(monkeypatch, denied)
    requests = RequestLog(monkeypatch)
    code, out, err = scan("--accounts", "org", "--output", "json")
    requests.stop()
    assert code == 1, err
    rows = json.loads(out)
    by_place: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_place.setdefault((row["account"], row["region"]), []).append(row)
    # `org`: every ACTIVE account, the management account (the hub here) included.
    assert {account for account, _ in by_place} == {HUB, *org.accounts} - {HUB}  # the hub has nothing to report
    for i, account in enumerate(org.accounts):
        if account == denied:
            continue
        region = REGIONS[i % 2]
        statuses = {r["taskDefinitionArn"]: r["status"] for r in by_place[(account, region)]}
        assert statuses == {
            f"arn:aws:ecs:{region}:{account}:task-definition/web:1": "FAIL",
            f"arn:aws:ecs:{region}:{account}:task-definition/api:1": "PASS",
        }
        assert (account, REGIONS[(i + 1) % 2]) not in by_place  # nothing there
    for region in REGIONS:  # never a silent skip: one ERROR row per Region of the unreachable account
        (row,) = by_place[(denied, region)]
        assert (
            row["status"] == "ERROR" and row["taskDefinitionArn"] == f"arn:aws:ecs:{region}:{denied}:task-definition/*"
        )
        assert "AccessDenied" in row["error"] and f"role/{MEMBER_ROLE}" in row["error"]
    assert "2 ERROR" in err
    requests.assert_each_account_used_only_its_own_credentials()


def test_table_csv_and_finding_formats_carry_the_account(org: Organization) -> None:
    first = org.accounts[0]
    code, table, _ = scan("--accounts", first, "--output", "table")
    assert code == 1
    header, *lines = table.splitlines()
    assert header.split()[:4] == ["STATUS", "ACCOUNT", "REGION", "TASK"]
    assert any(line.split()[:4] == ["FAIL", first, "us-east-1", "web:1"] for line in lines)

    code, text, _ = scan("--accounts", first, "--output", "csv")
    (fail,) = [r for r in csv.DictReader(io.StringIO(text)) if r["status"] == "FAIL"]
    assert list(fail)[:3] == ["account", "region", "taskDefinitionArn"]
    assert (fail["account"], fail["region"]) == (first, "us-east-1")

    _, text, _ = scan("--accounts", first, "--output", "asff")
    findings = json.loads(text)
    assert {f["AwsAccountId"] for f in findings} == {first}
    _, text, _ = scan("--accounts", first, "--output", "ocsf")
    assert {f["cloud"]["account"]["uid"] for f in json.loads(text)} == {first}
    _, text, _ = scan("--accounts", first, "--output", "html")
    assert f'data-account="{first}"' in text


def test_remediate_fixes_each_member_in_its_own_account_through_its_member_role(
    org: Organization, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    picked = org.accounts[:3]
    code, out, err = scan("--accounts", ",".join(picked), "--scope", "latest", "--remediate", "--output", "json")
    assert code == 0, err
    remediated = [r for r in json.loads(out) if r["action"].startswith("remediated")]
    assert {r["account"] for r in remediated} == set(picked)
    for i, account in enumerate(org.accounts):
        region = REGIONS[i % 2]
        expected = 3 if account in picked else 2  # web:1, api:1 (+ web:2, the fixed copy)
        assert len(org.task_definitions(account, region)) == expected
        assert org.task_definitions(account, REGIONS[(i + 1) % 2]) == []
        if account in picked:
            copy = org.client("ecs", account, region).describe_task_definition(taskDefinition="web:2")
            assert copy["taskDefinition"]["registeredBy"].startswith(
                f"arn:aws:sts::{account}:assumed-role/{MEMBER_ROLE}/"
            )
    notes = sandbox.inbox()
    assert sorted(n.payload["account"] for n in notes) == sorted(picked)
    assert {n.payload["accountName"] for n in notes} == {org.members[a] for a in picked}
    # Again: the copies are recognised as the stack's own (ledger, and registeredBy the member role): nothing left.
    code, out, _ = scan("--accounts", ",".join(picked), "--scope", "latest", "--output", "json")
    assert code == 0 and {r["status"] for r in json.loads(out)} == {"PASS"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--accounts", "12345"], "not an AWS account id (12 digits): 12345"),
        (["--accounts", "org,111122223333"], "'org' means every account; give it alone"),
        (["--role-name", "x"], "--role-name needs --accounts"),
        (["--accounts", "111122223333", "--role-name", "bad/name"], "--role-name: not an IAM role name"),
    ],
)
def test_usage_errors(sandbox: Sandbox, args: list[str], message: str) -> None:
    code, out, err = scan(*args)
    assert code == 2 and message in err and out == ""


def test_org_that_cannot_be_listed_stops_the_scan(sandbox: Sandbox) -> None:
    """Not the management account nor a delegated administrator (here: no organization): an error, never an empty
    report that would look like a clean organization."""
    code, out, err = scan("--accounts", "org")
    assert code == 2 and out == ""
    assert "--accounts org: organizations:ListAccounts lists no ACTIVE account: run from the management" in err


def test_org_lists_every_active_account_over_every_page(sandbox: Sandbox) -> None:
    org = Organization().create([f"member-{i:02d}" for i in range(25)])
    organizations = sandbox.client("organizations")
    pages: list[int] = []
    organizations.meta.events.register(
        "after-call.organizations.ListAccounts", lambda parsed, **_: pages.append(len(parsed["Accounts"]))
    )
    closed = org.accounts[4]
    organizations.close_account(AccountId=closed)
    listed = active_accounts(organizations, page_size=7)
    assert pages == [7, 7, 7, 5]  # 25 members and the management account, over four pages
    assert listed == sorted({HUB, *org.accounts} - {closed})


def test_org_listing_denied_stops_with_the_reason() -> None:
    client = boto3.client("organizations", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("list_accounts", "AccessDeniedException", "You don't have permissions", 400)
        with pytest.raises(AccountListingFailed, match=r"ListAccounts failed: .*AccessDeniedException"):
            active_accounts(client)
