"""`ecs-remediate verify` against the deployed stack, stood in for in the emulator (demo/stack_standin.py).

The stand-in is the synthesized template made into a moto CloudFormation stack (tables, topic, queues, the rules with
their synthesized patterns and states, the template's own outputs) plus the stack's delivery: every registration the
emulator answers becomes the CloudTrail event (demo/trail.py), each of the stack's rules is read from EventBridge as it
is now and matched by LocalStack's engine, and a matched event runs the real handler with the template's environment.
Everything asserted is read back from the emulator: revisions left in the canary family, the notice from an SQS queue
subscribed to the stack's topic, the stack's ledger.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from demo.eventbridge import synthesized_template
from demo.sandbox import ACCOUNT
from demo.stack_standin import StandIn, wait_for, with_mode
from ecs_remediate import aws, cli_verify
from ecs_remediate.cli import main
from ecs_remediate.ledger import DynamoLedger
from ecs_remediate.verify_canary import CANARY_FAMILY
from ecs_remediate.verify_stack import target_kind

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return synthesized_template()


@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The handler module is reloaded with a stand-in's environment; reloaded plain again afterwards."""
    yield
    import ecs_remediate.handler as module

    monkeypatch.undo()
    aws.reset_clients()
    importlib.reload(module)


def deploy(
    template: dict[str, Any], endpoint: str, monkeypatch: pytest.MonkeyPatch, *, deliver: bool = True, **kw: Any
) -> StandIn:
    """The stand-in deployed; the handler loaded with its environment and (deliver) its delivery running."""
    stand_in = StandIn(template, endpoint_url=endpoint, **kw).deploy()
    for name, value in stand_in.environment.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    if deliver:
        import ecs_remediate.handler as module

        stand_in.start(importlib.reload(module))
    return stand_in


def inbox(stand_in: StandIn) -> str:
    """An SQS queue subscribed to the stack's topic (the email address's stand-in); returns its URL."""
    sqs, sns = stand_in.client("sqs"), stand_in.client("sns")
    url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = outputs(stand_in)["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return str(url)


def notices(stand_in: StandIn, url: str) -> list[dict[str, Any]]:
    sqs = stand_in.client("sqs")
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            envelope = json.loads(message["Body"])
            found.append({"subject": envelope.get("Subject"), **json.loads(envelope["Message"])})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def outputs(stand_in: StandIn) -> dict[str, str]:
    stack = stand_in.client("cloudformation").describe_stacks(StackName=stand_in.name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def canary_revisions(stand_in: StandIn) -> dict[str, list[str]]:
    """Every revision of the canary family the emulator still has, by status."""
    ecs = stand_in.client("ecs")
    return {
        status: ecs.list_task_definitions(familyPrefix=CANARY_FAMILY, status=status)["taskDefinitionArns"]
        for status in ("ACTIVE", "INACTIVE")
    }


def verify(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["verify", *args], stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_a_working_stack_passes_and_nothing_is_left(
    template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_env: None
) -> None:
    with deploy(template, moto_endpoint, monkeypatch, delay=0.3) as stand_in:
        queue = inbox(stand_in)
        code, out, err = verify("--timeout", "30", "-o", "json")
    assert code == 0, (out, err, stand_in.failures)
    (row,) = json.loads(out)
    assert (row["account"], row["region"], row["outcome"], row["notice"]) == (ACCOUNT, REGION, "PASS", "sent")
    assert row["latencySeconds"] >= 0.3 and row["left"] == []
    canary, copy = row["canary"], row["copy"]
    assert canary.endswith(f"{CANARY_FAMILY}:1") and copy.endswith(f"{CANARY_FAMILY}:2")
    # The stack did it: its ledger names the copy, its notice reached the subscriber.
    ledger = DynamoLedger(stand_in.client("dynamodb"), outputs(stand_in)["IdempotencyTableName"])
    assert ledger.copy_of(canary) == copy
    (notice,) = notices(stand_in, queue)
    assert notice["outcome"] == "remediated" and notice["newTaskDefinitionArn"] == copy
    # The delivery ran the canary and the stack's own copy through the rule: only the canary matched.
    assert [e["detail"]["responseElements"]["taskDefinition"]["taskDefinitionArn"] for e in stand_in.delivered] == [
        canary
    ]
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []}
    # The delivery as the stack has it (a queue in front of the function, or the function), read from EventBridge.
    rule = outputs(stand_in)["RuleName"]
    (target,) = stand_in.client("events").list_targets_by_rule(Rule=rule)["Targets"]
    assert (
        f"stack EcsRemediate in us-east-1 (remediate mode), rule {rule} (ENABLED) -> {target_kind(target['Arn'])}"
        in err
    )


def test_the_table_names_account_region_latency_notice_outcome(
    template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_env: None
) -> None:
    with deploy(template, moto_endpoint, monkeypatch):
        code, out, _ = verify("--timeout", "30")
    assert code == 0
    header, line = out.splitlines()
    assert header.split() == ["ACCOUNT", "REGION", "LATENCY", "NOTICE", "OUTCOME", "REASON"]
    assert line.split()[:2] == [ACCOUNT, REGION] and line.split()[3:6] == ["s", "sent", "PASS"]


def test_report_mode_checks_the_notice_and_that_nothing_was_registered(
    template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_env: None
) -> None:
    with deploy(with_mode(template, "report"), moto_endpoint, monkeypatch) as stand_in:
        queue = inbox(stand_in)
        code, out, err = verify("--timeout", "30", "-o", "json")
    assert code == 0, (out, err)
    (row,) = json.loads(out)
    assert row["outcome"] == "PASS" and row["notice"] == "sent" and row["copy"] is None
    assert row["latencyIsUpperBound"] is True
    assert "report mode" in row["reason"] and "(report mode)" in err
    (notice,) = notices(stand_in, queue)
    assert notice["outcome"] == "reported" and notice["taskDefinitionArn"] == row["canary"]
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []}


def test_a_disabled_rule_fails_naming_it_and_registers_nothing(
    template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_env: None
) -> None:
    with deploy(template, moto_endpoint, monkeypatch) as stand_in:
        rule = outputs(stand_in)["RuleName"]
        stand_in.set_rule_state(rule, "DISABLED")
        started = time.monotonic()
        code, out, err = verify("--timeout", "30", "-o", "json")
    assert code == 1, err
    assert time.monotonic() - started < 10  # said at once, not after the timeout
    (row,) = json.loads(out)
    assert row["outcome"] == "FAIL" and row["canary"] is None
    assert f"the stack's rule {rule} is DISABLED" in row["reason"] and f"enable-rule --name {rule}" in row["reason"]
    assert f"rule {rule} (DISABLED)" in err
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []} and stand_in.delivered == []


def test_nothing_delivered_fails_after_the_timeout_and_still_cleans_up(
    template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_env: None
) -> None:
    """No CloudTrail (no trail logging): the rule is enabled, nothing ever reaches it."""
    stand_in = deploy(template, moto_endpoint, monkeypatch, deliver=False)
    code, out, _ = verify("--timeout", "2", "-o", "json")
    assert code == 1
    (row,) = json.loads(out)
    assert row["outcome"] == "FAIL" and row["notice"] == "none" and row["canary"]
    assert row["reason"].startswith("no copy of the canary within 2 s") and "trail" in row["reason"]
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []}


def test_no_stack_is_exit_3_in_one_line(moto_endpoint: str) -> None:
    code, out, err = verify("--timeout", "5")
    assert code == 3 and out == ""
    assert err.strip().splitlines() == [
        "error: nothing could be verified: no stack EcsRemediate in us-east-1 (deploy it there, or pass "
        "--stack-name or --region)"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "0"], "--timeout: expected 1 to 3600 seconds"),
        (["--role-name", "x"], "--role-name needs --accounts"),
        (["--region", "mars"], "--region: not a Region name: mars"),
        (["--region", "all"], "--region all: name the Regions"),
    ],
)
def test_usage_errors_are_exit_2_before_any_call(args: list[str], message: str) -> None:
    code, out, err = verify(*args)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


# --- attacks: the policed developer, the canary family and verify's clean-up -------------------------------------


def test_a_developer_racing_into_the_canary_family_fails_verify_and_keeps_their_revision(
    template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_env: None
) -> None:
    """A revision registered in the canary family right after the canary: the stack reports the canary superseded (it
    never copies an older revision); verify says so and removes only what it registered."""
    stand_in = deploy(template, moto_endpoint, monkeypatch, delay=1.0)
    dev = stand_in.client("ecs")
    theirs: list[str] = []

    def race() -> None:
        if wait_for(lambda: bool(canary_revisions(stand_in)["ACTIVE"]), 20):
            body = {"family": CANARY_FAMILY, "containerDefinitions": [{"name": "x", "image": "nginx", "memory": 8}]}
            theirs.append(dev.register_task_definition(**body)["taskDefinition"]["taskDefinitionArn"])

    racer = threading.Thread(target=race)
    racer.start()
    try:
        code, out, _ = verify("--timeout", "20", "-o", "json")
    finally:
        racer.join()
        stand_in.stop()
    assert code == 1
    (row,) = json.loads(out)
    assert row["outcome"] == "FAIL" and "another revision was registered in the canary family" in row["reason"]
    assert canary_revisions(stand_in) == {"ACTIVE": theirs, "INACTIVE": []}


def test_a_forged_copy_in_the_ledger_is_not_a_pass_and_is_not_removed(
    template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_env: None
) -> None:
    """Had a copy record named a revision that is not the canary's exact fixed copy (here: its image swapped), verify
    fails on provenance. (Only the stack's roles can write the ledger; the test writes it to play a broken stack.)"""
    stand_in = deploy(template, moto_endpoint, monkeypatch, deliver=False)
    table = outputs(stand_in)["IdempotencyTableName"]
    ecs = stand_in.client("ecs")

    def forge() -> None:
        if not wait_for(lambda: bool(canary_revisions(stand_in)["ACTIVE"]), 20):
            return
        (canary,) = canary_revisions(stand_in)["ACTIVE"]
        source = ecs.describe_task_definition(taskDefinition=canary)["taskDefinition"]
        container = {**source["containerDefinitions"][0], "privileged": False, "image": "attacker/image"}
        forged = ecs.register_task_definition(
            family=CANARY_FAMILY,
            requiresCompatibilities=["EC2"],
            containerDefinitions=[container],
            tags=[{"key": "ecs-remediate:source-revision", "value": f"{CANARY_FAMILY}:1"}],
        )["taskDefinition"]["taskDefinitionArn"]
        DynamoLedger(stand_in.client("dynamodb"), table).record_copy(canary, forged, "test")

    forger = threading.Thread(target=forge)
    forger.start()
    code, out, _ = verify("--timeout", "20", "-o", "json")
    forger.join()
    assert code == 1
    (row,) = json.loads(out)
    assert row["outcome"] == "FAIL" and "not proven the stack's faithful copy" in row["reason"]
    assert "content differs" in row["reason"]
    # Removed: the canary, which verify registered. Kept, and named: the revision it cannot prove the stack's.
    (forged,) = canary_revisions(stand_in)["ACTIVE"]
    assert forged.endswith(f"{CANARY_FAMILY}:2") and canary_revisions(stand_in)["INACTIVE"] == []
    assert row["left"] == [f"{forged} (ACTIVE; not proven the stack's copy: not removed)"]


# --- Ctrl-C: a real signal to a real process ---------------------------------------------------------------------


def _subprocess_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "PYTHONPATH": str(ROOT / "lambda"),
        }
    )
    return env


@pytest.mark.parametrize(
    ("signals", "code"),
    [((signal.SIGINT,), 130), ((signal.SIGINT, signal.SIGINT), 130), ((signal.SIGTERM,), 143)],
    ids=["ctrl-c", "ctrl-c-twice", "sigterm"],
)
def test_an_interrupted_run_leaves_nothing_registered(
    template: dict[str, Any],
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    handler_env: None,
    signals: tuple[int, ...],
    code: int,
) -> None:
    stand_in = deploy(template, moto_endpoint, monkeypatch, deliver=False)  # the canary waits: nothing delivers
    process = subprocess.Popen(
        [sys.executable, "-m", "ecs_remediate", "verify", "--timeout", "120", "-o", "json"],
        env=_subprocess_env(moto_endpoint),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: bool(canary_revisions(stand_in)["ACTIVE"]), 60), "the canary was never registered"
        for signum in signals:
            process.send_signal(signum)
            time.sleep(0.05)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, err
    (row,) = json.loads(out)
    assert row["outcome"] == "INTERRUPTED" and row["left"] == []
    assert "nothing left registered" in err and "Traceback" not in err
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []}


def test_boto3_is_pointed_at_the_emulator(moto_endpoint: str) -> None:
    """A guard for the tests above: nothing here can reach AWS."""
    assert boto3.client("ecs", region_name=REGION).meta.endpoint_url == moto_endpoint


# --- the IAM docs/deploy.md lists is what verify calls -----------------------------------------------------------


def documented_actions() -> set[str]:
    """The `service:Action` names of docs/deploy.md's 'What verify needs (IAM)' table."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("### What verify needs (IAM)", 1)[1].split("###", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {action for row in rows for action in re.findall(r"`([a-z0-9]+:[A-Za-z]+)`", row.split("|")[1])}


def test_every_call_verify_makes_is_in_the_documented_iam(
    template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_env: None
) -> None:
    """Every AWS call of a passing run, a run that gives up (the dead-letter queue's depth read for the reason) and a
    disabled rule is in the table; and each row of the table is called by one of them, but the lost-answer search."""
    calls: set[str] = set()
    create = cli_verify._client

    def recording(session: Any, service: str, region: str) -> Any:
        client = create(session, service, region)
        prefix = client.meta.service_model.signing_name

        def record(model: Any, **_: Any) -> None:
            calls.add(f"{prefix}:{model.name}")

        client.meta.events.register("before-call", record)
        return client

    monkeypatch.setattr(cli_verify, "_client", recording)
    stand_in = deploy(template, moto_endpoint, monkeypatch)
    assert verify("--timeout", "30")[0] == 0
    stand_in.stop()
    assert verify("--timeout", "1")[0] == 1  # nothing delivers now: the failed wait reads the DLQ's depth
    stand_in.set_rule_state(outputs(stand_in)["RuleName"], "DISABLED")
    assert verify("--timeout", "1")[0] == 1
    documented = documented_actions()
    assert calls <= documented, calls - documented
    assert documented - calls == {"ecs:ListTaskDefinitions"}  # only when a registration's answer was lost


def test_a_second_run_passes_on_new_revisions(
    template: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, handler_env: None
) -> None:
    """ECS never reuses a deleted revision's number (demo/moto_fidelity.py makes moto agree): the second canary is :3,
    and the ledger's record of the first (:1 -> :2) is not taken for its copy."""
    with deploy(template, moto_endpoint, monkeypatch) as stand_in:
        first = json.loads(verify("--timeout", "30", "-o", "json")[1])[0]
        second = json.loads(verify("--timeout", "30", "-o", "json")[1])[0]
    assert [first["outcome"], second["outcome"]] == ["PASS", "PASS"]
    assert [row["canary"].rsplit(":", 1)[1] for row in (first, second)] == ["1", "3"]
    assert second["copy"].endswith(f"{CANARY_FAMILY}:4")
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []}
