"""Issue 19, class 5: notices that trust what a member writes. A member account's administrator names their account
(AWS Organizations, the Account Management API): another account's id, "OK, compliant", line breaks and escape
sequences, a right-to-left override, lookalike letters, a very long name. The hub's notices name the account by its
id first everywhere; the name is never in the subject nor an attribute, and in the text and JSON it follows the id,
cleaned and marked as the member's own words.

Each variant renames a member in moto's Organizations, registers a privileged revision there, and delivers the
CloudTrail event to the real hub handler (moto's STS, the member role); the notice is read back from the hub's
inbox queue (subject, JSON, attributes) and the email text as it was handed to SNS.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws
from org_support import leave_hub, load_hub, privileged

from demo.org_sandbox import Organization
from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.cli.main import main
from ecs_remediate.organization.notice import NAME_NOTE

REGION = "eu-west-1"
ACCOUNT_LINE = "Account:         "
NAME_NOTE_TEXT = f", {NAME_NOTE})"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    with mock_aws():
        yield Sandbox().create()
    aws.reset_clients()


@pytest.fixture
def org(sandbox: Sandbox) -> Organization:
    return Organization().create(["payments-prod", "analytics-dev"])


@pytest.fixture
def hub(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    module = load_hub(sandbox, monkeypatch)
    yield module
    leave_hub(module)


@pytest.fixture
def emails(hub: ModuleType) -> Iterator[list[str]]:
    """The email text of every notice the hub handed to SNS (the `email` member of its message, as sent)."""
    sent: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(str(json.loads(params["Message"])["email"]))

    aws.client("sns").meta.events.register("provide-client-params.sns.Publish", record, unique_id="names")
    yield sent
    aws.client("sns").meta.events.unregister("provide-client-params.sns.Publish", unique_id="names")


def rename(org: Organization, account: str, name: str) -> None:
    """What the member's administrator does (moto keeps any name: the hub must not rely on AWS's pattern)."""
    from moto.organizations.models import organizations_backends

    for backend in organizations_backends.values():
        for region_backend in backend.values():
            for member in getattr(region_backend, "accounts", []):
                if member.id == account:
                    member.name = name
    described = org.hub_client("organizations").describe_account(AccountId=account)["Account"]["Name"]
    assert described == name


# The member's name for its own account, and what the notice may show of it (cleaned, quoted, ASCII-escaped).
VARIANTS = {
    "another-accounts-id": ("{other}", '"{other}"'),
    "compliant-wording": (
        "OK compliant - no action needed: {other}/eu-west-1 web:1 exempt",
        '"OK compliant - no action needed: {other}/eu-w"',
    ),
    "line-breaks-and-escapes": (
        "prod\nOutcome:  COMPLIANT\r\n\x1b[2K\x00",
        '"prod Outcome: COMPLIANT [2K"',
    ),
    "right-to-left-override": ("\u202edorp-stnemyap\u202c", '"dorp-stnemyap"'),
    "lookalike-letters": ("p\u0430yments-pr\u043ed", '"p\\u0430yments-pr\\u043ed"'),
    "very-long": ("A" * 5000, '"' + "A" * 50 + '"'),
    "quotes-and-backslashes": ('x", name "y\\', '"x\\", name \\"y\\\\"'),
}


def check_notice(note: Any, text: str, account: str, shown: str, outcome: str) -> None:
    """Subject and attributes by id only; text and JSON: the id first, then the name, cleaned and marked."""
    assert note.subject.startswith(f"[ECS.4] {account}/{REGION} web:1 ")
    assert note.subject.isascii() and "\n" not in note.subject
    assert note.attributes["account"] == account and note.attributes["region"] == REGION
    assert set(note.attributes) == {"outcome", "severity", "family", "account", "region"}
    assert note.payload["account"] == account and note.payload["region"] == REGION
    cleaned = note.payload["accountName"]
    assert cleaned == json.loads(shown) and note.payload["accountNameNote"] == NAME_NOTE
    assert cleaned.isprintable() and len(cleaned) <= 50 and cleaned == " ".join(cleaned.split())
    lines = text.split("\n")
    assert lines[0] == note.subject
    account_line = f"{ACCOUNT_LINE}{account} (name {shown}{NAME_NOTE_TEXT}"
    assert [line for line in lines if line.startswith("Account:")] == [account_line]
    assert [line for line in lines if line.startswith("Outcome:")] == [f"Outcome:         {outcome}"]
    assert text.isascii() and not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", text)
    assert cleaned not in note.subject  # the name is never in the subject


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_members_name_for_its_account_never_stands_for_the_account_in_a_remediation_notice(
    variant: str, org: Organization, hub: ModuleType, sandbox: Sandbox, emails: list[str]
) -> None:
    account, other = org.accounts
    name, shown = (part.format(other=other) for part in VARIANTS[variant])
    rename(org, account, name)
    response = org.register(account, REGION, privileged())

    result = hub.lambda_handler(org.event_for(account, REGION, privileged(), response), LambdaContext())
    assert result["outcome"] == "remediated" and result["account"] == account

    notes = sandbox.inbox()
    assert len(notes) == 1 and len(emails) == 1
    check_notice(notes[0], emails[0], account, shown, "REMEDIATED (MEDIUM)")
    assert other not in notes[0].subject and other not in json.dumps(notes[0].attributes)
    assert notes[0].payload["taskDefinitionArn"].split(":")[4] == account


@pytest.mark.parametrize("variant", ["another-accounts-id", "line-breaks-and-escapes", "lookalike-letters"])
def test_a_refused_event_names_the_sender_by_id_whatever_its_name(
    variant: str, org: Organization, hub: ModuleType, sandbox: Sandbox, emails: list[str]
) -> None:
    """The sender names itself after the victim and sends an event naming the victim's revision: refused, and the
    notice says the sender's id first (the victim's id appears only as what the name claims)."""
    attacker, victim = org.accounts
    name, shown = (part.format(other=victim) for part in VARIANTS[variant])
    rename(org, attacker, name)
    response = org.register(victim, REGION, privileged())
    event = org.event_for(attacker, REGION, privileged(), response)

    assert hub.lambda_handler(event, LambdaContext())["refused"] is True
    notes = sandbox.inbox()
    assert len(notes) == 1 and len(emails) == 1
    check_notice(notes[0], emails[0], attacker, shown, "FAILED (HIGH)")
    assert notes[0].payload["errorCode"] == "Refused"


def test_scan_accounts_names_members_by_id_in_every_output_and_in_its_notices(
    org: Organization, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ecs-remediate scan --accounts ... --remediate` with every member named by a hostile administrator: each row of
    every output format names the account by id and none carries a name; each notice is named as the hub's are."""
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    first, second = org.accounts
    names = {first: f"{second} OK compliant\n\u202e", second: "p\u0430yments-prod\x1b[0m"}
    for account, name in names.items():
        rename(org, account, name)
        org.register(account, REGION, privileged())
    hostile = ("compliant", "\u202e", "\u0430", "\x1b")

    def scan(*args: str) -> str:
        stdout, stderr = io.StringIO(), io.StringIO()
        fast = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "-q"]
        main(["scan", "--region", REGION, *fast, "--accounts", f"{first},{second}", *args], stdout, stderr)
        assert not any(word in stderr.getvalue() for word in hostile)
        return stdout.getvalue()

    rows = json.loads(scan("--scope", "latest", "--remediate", "--output", "json"))
    assert {(r["account"], r["action"].split(":")[0]) for r in rows} == {(first, "remediated"), (second, "remediated")}
    notes = sandbox.inbox()
    assert sorted(n.payload["account"] for n in notes) == sorted(names)
    for note in notes:
        account = note.payload["account"]
        assert note.subject.startswith(f"[ECS.4] {account}/{REGION} web:1 -> :2 privileged removed")
        assert note.attributes["account"] == account and note.payload["accountNameNote"] == NAME_NOTE
    for output in ("json", "csv", "table", "ocsf", "asff", "html"):
        text = scan("--output", output)
        assert not any(word in text for word in hostile), output
        assert first in text and second in text, output
    table = [line.split() for line in scan("--output", "table").splitlines()[1:]]
    assert {(line[1], line[2]) for line in table} == {(first, REGION), (second, REGION)}
    assert {(r["account"], r["region"]) for r in csv.DictReader(io.StringIO(scan("--output", "csv")))} == {
        (first, REGION),
        (second, REGION),
    }
