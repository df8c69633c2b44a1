"""Every SNS subject the project can send is one SNS accepts: fewer than 100 characters, printable ASCII, no line
break, starting with a letter, digit or punctuation mark (issue 20).

One helper (`aws.fit_subject`) is applied by `aws.Message` itself, so every builder and every path to
`aws.Topic.publish` goes through it. Here each subject builder is driven at its longest input (255-character family
and container names, seven-digit revisions, every outcome and title, 50-character account names in any script, the
largest counts), the result is published through moto's SNS and read back from the SQS inbox, and the source is
checked for any other place that hands SNS a subject.
"""

from __future__ import annotations

import ast
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from demo.sandbox import Sandbox
from ecs_remediate.adapters.aws import Topic
from ecs_remediate.core.events import Registration
from ecs_remediate.core.message import SUBJECT_LIMIT, Message, fit_subject
from ecs_remediate.core.notice import build_message
from ecs_remediate.core.outcomes import SEVERITY, SUPERSEDED, Result
from ecs_remediate.daemons.notice import build_daemon_message
from ecs_remediate.daemons.result import DEPLOYMENT, ROLLED_BACK, DaemonResult
from ecs_remediate.organization.hub import _without_next_commands
from ecs_remediate.organization.notice import name_account
from ecs_remediate.organization.sweep_summary import build_summary
from ecs_remediate.sweep.notice import build_sweep_summary

PACKAGE = Path(__file__).resolve().parents[1] / "lambda" / "ecs_remediate"
LONG = "f" * 255  # ECS's longest family and container name
REGION = "ap-southeast-2"
ACCOUNT = "123456789012"
SNS_PRINTABLE = set(string.printable) - set("\t\n\r\x0b\x0c")
NAMES = [
    "x" * 50,  # Organizations' longest account name
    "\u202eevil\u202c" * 10,  # right-to-left override
    "P\u0430yments-prod" * 4,  # a Cyrillic lookalike
    "line\nbreak\r\x1b[31m" * 5,
    "\U0001f600" * 50,
    " leading spaces",
]


def assert_sns_subject(subject: str) -> None:
    assert 0 < len(subject) < 100, (len(subject), subject)
    assert set(subject) <= SNS_PRINTABLE, subject
    assert subject[0] != " ", subject


def longest_result(outcome: str, kind: type[Result] = Result) -> Result:
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{LONG}:9999999"
    result = kind(outcome, arn, LONG, 9_999_999, registration=Registration(arn, account=ACCOUNT, region=REGION))
    result.privileged = [f"{n}{LONG}"[:255] for n in range(10)]
    result.new_task_definition_arn = arn[:-7] + "10000000"
    result.host_equivalents = ["pidMode host"] * 5
    result.forged_copies = [{"arn": arn, "why": "not ours", "registeredBy": "x"}]
    result.retired = outcome == SUPERSEDED
    return result


def every_result() -> Iterator[Result]:
    for outcome in SEVERITY:
        yield longest_result(outcome)
        escalated = longest_result(outcome)
        escalated.escalation, escalated.repeats = "registered 10,000 times", [{}] * 10_000
        yield escalated


def every_daemon_result() -> Iterator[DaemonResult]:
    for outcome in [*SEVERITY, DEPLOYMENT]:
        result = longest_result(outcome, DaemonResult)
        assert isinstance(result, DaemonResult)
        yield result
    for status in [*ROLLED_BACK, "SUCCESSFUL", "X" * 255]:
        deployment = longest_result(DEPLOYMENT, DaemonResult)
        assert isinstance(deployment, DaemonResult)
        deployment.deployment = {"status": status, "daemonArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:daemon/{LONG}/{LONG}"}
        yield deployment


def every_message() -> Iterator[Message]:
    """Every subject builder of the package, at its longest input."""
    for result in every_result():
        yield build_message(result, region=REGION, account=ACCOUNT)
    for daemon in every_daemon_result():
        yield build_daemon_message(daemon, region=REGION, account=ACCOUNT)
    most = 10**12
    rows = [{"taskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{LONG}:1"}]
    yield build_sweep_summary(
        region=REGION,
        scope="active",
        mode="remediate",
        counts={"PASS": most, "FAIL": most, "EXEMPT": most, "ERROR": most},
        open_rows=rows * 30,
        remediated_rows=rows * 30,
        seconds=1e9,
        account=ACCOUNT,
        retired_rows=rows * 30,
        expiring_rows=rows * 30,
        exempt_rows=rows * 30,
        family_globs=[LONG],
        inventory=["x"],
        inventory_fallback=True,
    )
    by_account = {str(10**11 + n): {"PASS": most, "FAIL": most, "EXEMPT": most, "ERROR": most} for n in range(300)}
    links = {"json": "s3://b/k.json", "csv": "s3://b/k.csv", "console": "https://console"}
    totals = {"PASS": most, "FAIL": most, "EXEMPT": most, "ERROR": most}
    yield build_summary("r" * 80, totals, by_account, most, most, links, mode="remediate", scope="active")


def every_org_message() -> Iterator[Message]:
    """The hub's and the organization sweep's notices: every message above, named for an account and Region."""
    for message in every_message():
        for account in (ACCOUNT, "unknown", "arn:aws:iam"):
            for name in NAMES:
                named = name_account(message, account=account, region=REGION, name=name)
                yield named
                yield _without_next_commands(named)


def test_every_builder_at_its_longest_input_gives_a_subject_sns_accepts() -> None:
    checked = 0
    for message in [*every_message(), *every_org_message()]:
        assert_sns_subject(message.subject)
        checked += 1
    assert checked > 400


def test_the_organization_sweep_summary_is_cut_below_100() -> None:
    """It was cut at 100 characters, one more than SNS takes."""
    summaries = [m for m in every_message() if m.payload.get("kind") == "org-sweep-summary"]
    assert len(summaries) == 1
    assert len(summaries[0].subject) == SUBJECT_LIMIT == 99 and summaries[0].subject.endswith("...")


@pytest.mark.parametrize("name", NAMES)
def test_published_subjects_read_back_from_the_queue_are_valid(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sandbox = Sandbox().create()
        topic = Topic(sandbox.client("sns"), sandbox.topic_arn)
        longest = build_message(longest_result("failed"), region=REGION, account=ACCOUNT)
        messages = [
            longest,
            name_account(longest, account=ACCOUNT, region=REGION, name=name),
            Message(f"{name}\n{LONG}", "text", {}, {"outcome": "x"}),  # a Message made by hand is fitted too
        ]
        for message in messages:
            topic.publish(message)
        notes = sandbox.inbox()
    assert [n.subject for n in notes] == [m.subject for m in messages]
    for note in notes:
        assert_sns_subject(note.subject)


@given(st.text(max_size=400))
def test_fit_subject_gives_a_valid_subject_for_any_text_and_keeps_a_valid_one(text: str) -> None:
    fitted = fit_subject(text)
    assert_sns_subject(fitted)
    assert fit_subject(fitted) == fitted
    if 0 < len(text) <= SUBJECT_LIMIT and set(text) <= SNS_PRINTABLE and text[0] != " ":
        assert fitted == text


def test_no_code_but_topic_publish_hands_sns_a_subject() -> None:
    """`Subject=` is passed to an AWS call in one place only (aws.Topic.publish, which sends a Message's subject),
    and every notice is a Message: nothing bypasses fit_subject."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and any(k.arg == "Subject" for k in node.keywords):
                found.append(path.relative_to(PACKAGE).as_posix())
    assert found == ["adapters/aws.py"]
    source = ast.parse((PACKAGE / "adapters/aws.py").read_text())
    publish = next(node for node in ast.walk(source) if isinstance(node, ast.FunctionDef) and node.name == "publish")
    assert "Subject=message.subject" in ast.unparse(publish)
