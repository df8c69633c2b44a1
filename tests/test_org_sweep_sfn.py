"""The organization sweep on Step Functions, end to end: the hub's synthesized state machine executed by moto (ASL,
Distributed Map with its ItemReader, Retry and Catch), its Lambda tasks calling our real handlers in this process
(demo/org_sweep_machine.py), against an emulated Organization whose members are reached through moto's STS.

What is read back is the emulator's state: the report objects in S3, the inbox queue subscribed to the topic, the
members' task definition revisions."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from org_support import MEMBER_ROLE, RequestLog, compliant, privileged
from strategies import RawBody, error_response

from demo.org_sandbox import Organization
from demo.org_sweep_machine import (
    CONTROL_FUNCTION,
    CONTROL_HANDLER,
    ITEM_FUNCTION,
    ITEM_HANDLER,
    Names,
    SynthesizedSweep,
    patch_lambda,
    run,
)
from demo.sandbox import ACCOUNT, LambdaContext, Note, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.functions import org_sweep as org_sweep_handler
from ecs_remediate.organization.account_names import AccountListingFailed
from ecs_remediate.organization.sweep_items import BadItem, ou_accounts

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"]
BUCKET = "ecs-remediate-org-sweep-reports"
ENGINE = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
# The tests' emulated ECS answers at once: the item's rate floor is not under test here (bench/org_sweep.py).
FAST_RATES = "describe=1000/1000,list=1000/1000,register=1000/1000"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedSweep:
    return SynthesizedSweep.build({"regions": ",".join(REGIONS)}, outdir=str(tmp_path_factory.mktemp("cdk-orgsweep")))


@dataclass
class World:
    sandbox: Sandbox
    names: Names
    synthesized: SynthesizedSweep
    monkeypatch: pytest.MonkeyPatch
    org: Organization | None = None
    ou: str = ""
    machine_arn: str = ""
    calls: list[tuple[str, dict[str, Any]]] | None = None

    def organization(self, count: int, *, nested: int = 0) -> Organization:
        """`count` member accounts in one target OU; the last `nested` of them in a child OU of it."""
        org = Organization().create([f"member-{i:03d}" for i in range(count)])
        organizations = org.hub_client("organizations")
        root = organizations.list_roots()["Roots"][0]["Id"]
        self.ou = organizations.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
        child = organizations.create_organizational_unit(ParentId=self.ou, Name="team")["OrganizationalUnit"]["Id"]
        for i, account in enumerate(org.accounts):
            target = child if i >= count - nested else self.ou
            organizations.move_account(AccountId=account, SourceParentId=root, DestinationParentId=target)
        self.org = org
        return org

    def machine(self, mode: str = "report", **env: str) -> str:
        """The synthesized state machine in the emulator, the functions' synthesized environment in this process."""
        variables = {
            **self.synthesized.environment(ITEM_HANDLER, self.names),
            **self.synthesized.environment(CONTROL_HANDLER, self.names),
            "MODE": mode,
            "ORG_SWEEP_OUS": self.ou,  # the emulated organization's OU (ids are random); the synth had a placeholder
            "SWEEP_RATES": FAST_RATES,
            "POWERTOOLS_TRACE_DISABLED": "true",
            **env,
        }
        for name, value in variables.items():
            self.monkeypatch.setenv(name, value)
        aws.reset_clients()
        org_sweep_handler.config.cache_clear()
        org_sweep_handler.members.cache_clear()
        self.calls = patch_lambda(
            self.monkeypatch,
            {ITEM_FUNCTION: org_sweep_handler.item_handler, CONTROL_FUNCTION: org_sweep_handler.control_handler},
        )
        sfn = self.sandbox.client("stepfunctions")
        self.machine_arn = sfn.create_state_machine(
            name=f"org-sweep-{mode}",
            definition=self.synthesized.definition(self.names),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/org-sweep",
        )["stateMachineArn"]
        return self.machine_arn

    def run(self, name: str) -> dict[str, Any]:
        described = run(self.sandbox.client("stepfunctions"), self.machine_arn, name)
        assert described["status"] == "SUCCEEDED", described
        report: dict[str, Any] = json.loads(self.object(f"runs/{name}/report.json"))
        return report

    def object(self, key: str) -> str:
        return str(self.sandbox.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read().decode())

    def deny(self, accounts: set[str], code: str = "AccessDenied") -> None:
        """STS refuses the member role of `accounts` (what it answers when the role does not exist)."""

        def refuse(request: Any, **_: Any) -> Any:
            if any(f"%3A{account}%3Arole" in str(request.body) for account in accounts):
                message = (
                    "User: arn:aws:sts::123456789012:assumed-role/hub/fn is not authorized to perform: sts:AssumeRole"
                )
                return error_response(request, 403, code, message, protocol="query")
            return None

        org_sweep_handler.members().sts.meta.events.register_first("before-send.sts.AssumeRole", refuse)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, synthesized: SynthesizedSweep) -> Iterator[World]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name in ("MODE", "TOPIC_ARN", "IDEMPOTENCY_TABLE", "EXEMPTIONS_TABLE", "EXEMPT_FAMILIES", "SWEEP_RATES"):
        monkeypatch.delenv(name, raising=False)
    aws.reset_clients()
    with mock_aws(config=ENGINE):  # type: ignore[arg-type]
        sandbox = Sandbox().create()
        sandbox.client("s3").create_bucket(Bucket=BUCKET)
        names = Names(BUCKET, sandbox.table_name, sandbox.exemptions_table, sandbox.topic_arn)
        yield World(sandbox, names, synthesized, monkeypatch)
        org_sweep_handler.config.cache_clear()
        org_sweep_handler.members.cache_clear()
    aws.reset_clients()


def revisions(org: Organization, account: str, region: str) -> list[str]:
    return sorted(org.task_definitions(account, region))


def summary_notes(sandbox: Sandbox) -> list[Note]:
    return [note for note in sandbox.inbox() if note.attributes.get("kind") == "org-sweep-summary"]


# --- the acceptance figure: 100 accounts x 4 Regions ---


@pytest.mark.slow
def test_100_accounts_x_4_regions_every_planted_revision_fixed_missing_roles_are_errors_rerun_fixes_nothing(
    world: World,
) -> None:
    org = world.organization(100, nested=10)
    missing = set(org.accounts[7:10])
    planted: set[str] = set()
    compliant_arns: set[str] = set()
    for i, account in enumerate(org.accounts):
        for r, region in enumerate(REGIONS):
            if (i + r) % 3 == 0:  # a privileged revision in a third of the places
                planted.add(org.register(account, region, privileged())["taskDefinition"]["taskDefinitionArn"])
            if (i + r) % 4 == 0:
                compliant_arns.add(org.register(account, region, compliant())["taskDefinition"]["taskDefinitionArn"])
    world.machine("remediate")
    world.deny(missing)
    before = {(a, r): revisions(org, a, r) for a in org.accounts for r in REGIONS}

    report = world.run("run-1")

    rows = report["rows"]
    in_reach = [arn for arn in planted | compliant_arns if arn.split(":")[4] not in missing]
    # Exactly one row per revision of every reachable account-Region, and one ERROR row per Region of each
    # account whose member role is missing: nothing missing, nothing extra.
    assert len(rows) == len(in_reach) + len(missing) * len(REGIONS)
    assert report["items"] == 100 * len(REGIONS) and len(report["places"]) == 100 * len(REGIONS)
    by_arn = {row["taskDefinitionArn"]: row for row in rows}
    for arn in planted:
        if arn.split(":")[4] in missing:
            continue
        row = by_arn[arn]
        assert row["status"] == "FAIL" and row["action"].startswith("remediated"), row
        assert row["privilegedContainers"] == ["app"] and row["newTaskDefinitionArn"].endswith(":2")
        assert (row["account"], row["region"]) == (arn.split(":")[4], arn.split(":")[3])
    assert all(by_arn[arn]["status"] == "PASS" for arn in compliant_arns if arn.split(":")[4] not in missing)
    for account in missing:
        for region in REGIONS:
            (row,) = [r for r in rows if (r["account"], r["region"]) == (account, region)]
            assert row["status"] == "ERROR" and "AccessDenied" in row["error"] and f"role/{MEMBER_ROLE}" in row["error"]
            assert "deploy or fix the member role" in row["error"]
            assert revisions(org, account, region) == before[(account, region)]  # nothing done there
    # The emulator: each planted revision has its fixed copy, registered by that account's member role.
    fixed = [arn for arn in planted if arn.split(":")[4] not in missing]
    for arn in fixed:
        account, region = arn.split(":")[4], arn.split(":")[3]
        copy = org.client("ecs", account, region).describe_task_definition(taskDefinition=arn.rsplit(":", 1)[0] + ":2")
        assert not any(c.get("privileged") for c in copy["taskDefinition"]["containerDefinitions"])
        assert copy["taskDefinition"]["registeredBy"].startswith(f"arn:aws:sts::{account}:assumed-role/{MEMBER_ROLE}/")
    (note,) = summary_notes(world.sandbox)
    assert note.payload["counts"]["ERROR"] == len(missing) * len(REGIONS)
    assert note.payload["counts"]["FAIL"] == len(fixed) and note.payload["remediated"] == len(fixed)

    after_first = {(a, r): revisions(org, a, r) for a in org.accounts for r in REGIONS}
    second = world.run("run-2")
    # A rerun fixes nothing twice: no revision registered anywhere, nothing reported as remediated.
    assert {(a, r): revisions(org, a, r) for a in org.accounts for r in REGIONS} == after_first
    assert not [row for row in second["rows"] if row["action"].startswith("remediated")]
    assert second["counts"]["ERROR"] == len(missing) * len(REGIONS)
    assert len(summary_notes(world.sandbox)) == 1  # one notice for the second run too


# --- the report and its notice ---


def test_report_json_and_csv_with_account_and_region_and_one_notice_per_run(world: World) -> None:
    org = world.organization(4, nested=2)
    closed = org.accounts[3]
    org.hub_client("organizations").close_account(AccountId=closed)  # not ACTIVE: not an item
    for i, account in enumerate(org.accounts[:3]):
        org.register(account, REGIONS[i], privileged())
        org.register(account, REGIONS[i], compliant())
    world.machine("report", ORG_SWEEP_EXCLUDED=org.accounts[2])
    before = {(a, r): revisions(org, a, r) for a in org.accounts for r in REGIONS}

    report = world.run("nightly-1")

    swept = org.accounts[:2]  # one excluded, one closed; the nested OU's account is swept
    assert report["accounts"] == sorted(swept) and report["items"] == 2 * len(REGIONS)
    assert sorted(report["rows"], key=lambda r: r["taskDefinitionArn"]) == sorted(
        (
            {
                "account": account,
                "region": REGIONS[i],
                "taskDefinitionArn": f"arn:aws:ecs:{REGIONS[i]}:{account}:task-definition/{family}:1",
                "status": status,
                "privilegedContainers": ["app"] if status == "FAIL" else [],
                "action": "reported" if status == "FAIL" else "none",
                "newTaskDefinitionArn": None,
                "error": None,
                "hostEquivalents": [],  # core/hostroot.py's levels: nothing here reaches the host
                "hostAccess": [],
            }
            for i, account in enumerate(swept)
            for family, status in (("web", "FAIL"), ("api", "PASS"))
        ),
        key=lambda r: r["taskDefinitionArn"],
    )
    assert {(a, r): revisions(org, a, r) for a in org.accounts for r in REGIONS} == before  # report mode: no write
    table = list(csv.DictReader(io.StringIO(world.object("runs/nightly-1/report.csv"))))
    assert list(table[0])[:4] == ["account", "region", "taskDefinitionArn", "status"]
    assert {(r["account"], r["region"], r["status"]) for r in table} == {
        (account, REGIONS[i], status) for i, account in enumerate(swept) for status in ("FAIL", "PASS")
    }
    (note,) = summary_notes(world.sandbox)
    assert note.payload["run"] == "nightly-1" and note.payload["counts"] == {
        "PASS": 2,
        "FAIL": 2,
        "EXEMPT": 0,
        "ERROR": 0,
    }
    assert note.payload["byAccount"] == {a: {"PASS": 1, "FAIL": 1, "EXEMPT": 0, "ERROR": 0} for a in swept}
    assert note.payload["report"]["json"] == f"s3://{BUCKET}/runs/nightly-1/report.json"
    assert note.payload["report"]["console"].startswith(f"https://us-east-1.console.aws.amazon.com/s3/buckets/{BUCKET}")
    assert note.subject.startswith("[ECS.4] organization sweep: 2 FAIL, 0 ERROR")
    # No environment value and no task definition content in the notice.
    assert "nginx" not in json.dumps(note.payload) and world.names.table not in json.dumps(note.payload)

    world.run("nightly-2")
    assert len(summary_notes(world.sandbox)) == 1  # one per run
    # A summary retried for a run already notified sends nothing more.
    again = org_sweep_handler.control_handler({"action": "summary", "run": "nightly-2"}, LambdaContext())
    assert again["notified"] is False and summary_notes(world.sandbox) == []


def test_image_digest_items_of_earlier_versions_exempt_nothing_and_the_run_notice_names_them(world: World) -> None:
    """Issue 19, class 2: the hub's one registry held an item keyed by a digest alone (every family of every member
    account). It exempts nothing: the member's revision running the digest is a FAIL row saying why, and the run's
    one notice lists the item until an approver replaces it (`exempt migrate`) and removes it."""
    digest = "sha256:" + "a" * 64
    until = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    world.sandbox.exempt(digest, "node agent (an item of earlier versions)", until)
    org = world.organization(1)
    [account] = org.accounts
    arn = org.register(account, REGIONS[0], privileged(image=f"example.com/agent@{digest}"))["taskDefinition"][
        "taskDefinitionArn"
    ]
    world.machine("report")

    report = world.run("nightly-1")

    [row] = [r for r in report["rows"] if r["taskDefinitionArn"] == arn]
    assert row["status"] == "FAIL" and row["error"].startswith("not exempt: too broad: the image-digest exemption")
    (note,) = summary_notes(world.sandbox)
    assert note.payload["tooBroadExemptions"] == [digest]


def test_an_item_without_a_result_is_an_error_row_never_missing(world: World) -> None:
    org = world.organization(2)
    org.register(org.accounts[0], "us-east-1", compliant())
    world.machine("report")
    world.run("r1")
    s3 = world.sandbox.client("s3")
    lost = f"runs/r1/items/{org.accounts[0]}-us-east-1.json"
    s3.delete_object(Bucket=BUCKET, Key=lost)
    s3.delete_object(Bucket=BUCKET, Key="runs/r1/notice.json")
    summary = org_sweep_handler.control_handler({"action": "summary", "run": "r1"}, LambdaContext())
    assert summary["counts"]["ERROR"] == 1 and summary["counts"]["PASS"] == 0
    report = json.loads(world.object("runs/r1/report.json"))
    (row,) = [r for r in report["rows"] if r["status"] == "ERROR"]
    assert (row["account"], row["region"]) == (org.accounts[0], "us-east-1")
    assert "no result was recorded" in row["error"]


# --- attacks: a member's content or its role tries to act elsewhere or to look clean ---


def test_member_role_returning_another_accounts_credentials_is_an_error_and_touches_nothing(world: World) -> None:
    org = world.organization(3)
    asked, other = org.accounts[0], org.accounts[1]
    for account in (asked, other):
        org.register(account, "us-east-1", privileged())
    world.machine("remediate")

    def other_accounts_keys(request: Any, **_: Any) -> Any:
        if f"%3A{asked}%3Arole" not in str(request.body):
            return None
        body = (
            '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
            f"<AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:ecs-remediate</AssumedRoleId>"
            f"<Arn>arn:aws:sts::{other}:assumed-role/{MEMBER_ROLE}/ecs-remediate</Arn></AssumedRoleUser>"
            "<Credentials><AccessKeyId>ASIAOTHER</AccessKeyId><SecretAccessKey>SECRET-other</SecretAccessKey>"
            "<SessionToken>TOKEN-other</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>"
            "</AssumeRoleResult><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></AssumeRoleResponse>"
        ).encode()
        return AWSResponse(request.url, 200, {"content-type": "text/xml"}, RawBody(body))

    org_sweep_handler.members().sts.meta.events.register_first("before-send.sts.AssumeRole", other_accounts_keys)
    before = {a: revisions(org, a, r) for a in org.accounts for r in ("us-east-1",)}

    report = world.run("swap")

    asked_rows = [r for r in report["rows"] if r["account"] == asked]
    assert {r["status"] for r in asked_rows} == {"ERROR"} and len(asked_rows) == len(REGIONS)
    assert all("WrongAccount" in r["error"] for r in asked_rows)
    assert "SECRET" not in json.dumps(report) and "TOKEN-other" not in json.dumps(report)
    # The other account was swept once, as itself (its own item), and fixed once; the asked account not at all.
    assert revisions(org, asked, "us-east-1") == before[asked]
    assert len(revisions(org, other, "us-east-1")) == len(before[other]) + 1
    other_rows = [r for r in report["rows"] if r["account"] == other and r["status"] != "PASS"]
    assert [r["action"].split(":")[0] for r in other_rows] == ["remediated"]


def test_answers_naming_another_accounts_revision_are_errors_never_pass(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member's listing that names a revision of another account (a forged or confused answer): that row is an ERROR
    of the member's own item; nothing of the other account is described, judged or written."""
    org = world.organization(2)
    member, victim = org.accounts
    org.register(member, "us-east-1", compliant())
    victim_arn = org.register(victim, "us-east-1", privileged("victim"))["taskDefinition"]["taskDefinitionArn"]
    world.machine("remediate")
    from ecs_remediate.organization.member_accounts import MemberAccounts

    new_client = MemberAccounts.new_client

    def forging(self: MemberAccounts, service: str, account: str, region: str, config: Any = None) -> Any:
        client = new_client(self, service, account, region, config)
        if service == "ecs" and account == member and region == "us-east-1":

            def add(parsed: dict[str, Any], **_: Any) -> None:
                parsed.setdefault("taskDefinitionArns", []).append(victim_arn)

            client.meta.events.register("after-call.ecs.ListTaskDefinitions", add)
        return client

    monkeypatch.setattr(MemberAccounts, "new_client", forging)
    before = revisions(org, victim, "us-east-1")
    requests = RequestLog(monkeypatch)

    report = world.run("forged")
    requests.stop()

    member_rows = [r for r in report["rows"] if (r["account"], r["region"]) == (member, "us-east-1")]
    assert {r["status"] for r in member_rows} == {"PASS", "ERROR"}
    (error,) = [r for r in member_rows if r["status"] == "ERROR"]
    assert victim in error["error"] and error["taskDefinitionArn"].split(":")[4] == member
    assert not [r for r in report["rows"] if r["account"] == member and victim in r["taskDefinitionArn"]]
    # The victim's revision: judged only by the victim's own item, fixed once, by the victim's own member role.
    (victim_row,) = [r for r in report["rows"] if r["taskDefinitionArn"] == victim_arn]
    assert victim_row["account"] == victim and victim_row["action"].startswith("remediated")
    assert len(revisions(org, victim, "us-east-1")) == len(before) + 1
    requests.assert_each_account_used_only_its_own_credentials()


def test_bad_items_raise_and_write_nothing(world: World) -> None:
    world.organization(1)
    world.machine("report")
    for event in (
        {"account": "12345", "region": "us-east-1", "run": "r"},
        {"account": "111122223333", "region": "us-east-1/../x", "run": "r"},
        {"account": "111122223333", "region": "us-east-1", "run": "../../other"},
        {"action": "error", "account": "1111", "region": "us-east-1", "run": "r", "error": "x", "cause": "y"},
    ):
        with pytest.raises(BadItem):
            org_sweep_handler.item_handler(event, LambdaContext())
    assert world.sandbox.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_listing_recurses_into_child_ous_skips_closed_and_excluded_and_never_returns_empty(world: World) -> None:
    org = world.organization(6, nested=3)
    organizations = org.hub_client("organizations")
    organizations.close_account(AccountId=org.accounts[0])
    assert ou_accounts(organizations, [world.ou], excluded=[org.accounts[5]]) == sorted(org.accounts[1:5])
    with pytest.raises(AccountListingFailed, match="no ACTIVE account"):
        ou_accounts(organizations, [world.ou], excluded=org.accounts)


def test_aws_errors_echoing_a_members_task_definition_never_reach_the_report_or_the_notice(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 19: an AWS error can echo the request. One member's DescribeTaskDefinition is refused with a message
    quoting the environment value its administrator planted (a row's error); another member's item fails writing its
    result (S3 refuses with the same echo): its Lambda error goes through the state machine's Catch into that item's
    ERROR row. report.json, report.csv, the run's notice and every log line say the code and operation only."""
    org = world.organization(2)
    described, failed = org.accounts
    secret = "env-value-7f3c-not-for-reports"
    leaky = privileged("leaky")
    leaky["containerDefinitions"][0]["environment"] = [{"name": "DB_PASSWORD", "value": secret}]
    for account in org.accounts:
        org.register(account, "us-east-1", leaky)
    world.machine("report")
    echo = f"Invalid parameter: value '{secret}' at containerDefinitions[0].environment[0].value"
    from ecs_remediate.organization.member_accounts import MemberAccounts

    new_client = MemberAccounts.new_client

    def refusing(self: MemberAccounts, service: str, account: str, region: str, config: Any = None) -> Any:
        client = new_client(self, service, account, region, config)
        if service == "ecs" and account == described:
            client.meta.events.register_first(
                "before-send.ecs.DescribeTaskDefinition",
                lambda request, **_: error_response(request, 400, "ClientException", echo),
            )
        return client

    monkeypatch.setattr(MemberAccounts, "new_client", refusing)
    refused: list[str] = []

    def put(params: dict[str, Any], **_: Any) -> Any:
        if params["url_path"].endswith(f"/items/{failed}-us-east-1.json") and not refused:
            refused.append(params["url_path"])
            answer = {"Error": {"Code": "InvalidRequest", "Message": echo}, "ResponseMetadata": {"HTTPStatusCode": 400}}
            return AWSResponse("https://s3", 400, {}, None), answer
        return None

    aws.client("s3").meta.events.register_first("before-call.s3.PutObject", put)
    capsys.readouterr()
    caplog.set_level("INFO")

    report = world.run("echoes")

    assert refused and secret not in json.dumps(report)
    rows = {r["account"]: r for r in report["rows"] if r["region"] == "us-east-1"}
    assert rows[described]["status"] == "ERROR"
    assert rows[described]["error"].startswith("describe failed after retries: ClientException: DescribeTaskDefinition")
    assert rows[failed]["status"] == "ERROR" and rows[failed]["taskDefinitionArn"].endswith(":task-definition/*")
    assert "InvalidRequest: PutObject was refused by the service" in rows[failed]["error"]
    assert secret not in world.object("runs/echoes/report.csv")
    (note,) = summary_notes(world.sandbox)
    assert note.payload["counts"]["ERROR"] >= 2 and secret not in json.dumps(note.payload) + note.subject
    out, err = capsys.readouterr()
    assert secret not in out + err + caplog.text
