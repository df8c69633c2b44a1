"""Issue 10: the policed developer (RegisterTaskDefinition and TagResource only, through their own assumed-role
credentials) tries to switch the control off or turn it against the account. One test per finding, through the
real handlers against a moto server; every assertion reads state back from the emulator or the inbox queue."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from test_handler import invoke

from conftest import load_handler
from demo.sandbox import ACCOUNT, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.cli.main import main
from ecs_remediate.core.notice import build_message
from ecs_remediate.core.outcomes import REMEDIATED, Result

MARKER = "ecs-remediate:source-revision"
ATTACKER = f"arn:aws:sts::{ACCOUNT}:assumed-role/Dev/mallory"
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]


def container(image: str = "nginx:1", privileged: bool = True, **extra: Any) -> dict[str, Any]:
    return {"name": "app", "image": image, "memory": 64, "privileged": privileged, **extra}


def arn_of(response: dict[str, Any]) -> str:
    return str(response["taskDefinition"]["taskDefinitionArn"])


def service_on(sandbox: Sandbox, cluster: str, name: str) -> str:
    [svc] = sandbox.client("ecs").describe_services(cluster=cluster, services=[name])["services"]
    return str(svc["taskDefinition"])


def status(sandbox: Sandbox, arn: str) -> str:
    return str(sandbox.describe(arn)["taskDefinition"]["status"])


def scan(*args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", *FAST, *args], stdout, stderr)
    return code, {row["taskDefinitionArn"]: row for row in json.loads(stdout.getvalue() or "[]")}, stderr.getvalue()


@pytest.fixture
def attacker(sandbox: Sandbox) -> Sandbox:
    return sandbox.as_principal("Dev", "mallory")


@pytest.fixture
def production(sandbox: Sandbox) -> str:
    """payments:1, privileged, run by the production service blue/payments."""
    params = {"family": "payments", "containerDefinitions": [container("payments:1.0")]}
    arn = arn_of(sandbox.register(params))
    sandbox.client("ecs").create_cluster(clusterName="blue")
    sandbox.client("ecs").create_service(cluster="blue", serviceName="payments", taskDefinition=arn, desiredCount=1)
    return arn


# 1. Forged copy marker ----------------------------------------------------------------------------------------


def test_1_a_forged_copy_marker_moves_nothing_and_is_reported(
    sandbox: Sandbox, attacker: Sandbox, production: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, ROLLOUT="true", RETIRE="true")
    forged = {
        "family": "payments",
        "containerDefinitions": [container("attacker/miner:latest", privileged=False)],
        "tags": [{"key": MARKER, "value": "payments:1"}],
    }
    forged_arn = arn_of(attacker.register(forged))
    source = {"family": "payments", "containerDefinitions": [container("payments:1.0")]}
    result = invoke(handler, sandbox.event_for(source, {"taskDefinition": {"taskDefinitionArn": production}}))

    assert result["outcome"] == "superseded"
    assert service_on(sandbox, "blue", "payments") == production  # never moved onto the attacker's image
    assert status(sandbox, production) == "ACTIVE"  # a service uses it: not retired
    [note] = sandbox.inbox()
    [claim] = note.payload["forgedCopies"]
    assert claim["arn"] == forged_arn and claim["registeredBy"] == ATTACKER
    assert "content differs" in claim["why"] and "FORGED" in note.subject
    assert note.payload["severity"] == "HIGH"
    assert not any(forged_arn.rsplit("/", 1)[1] in c for c in note.payload["nextCommands"])


def test_1_the_active_sweep_never_acts_on_a_forged_compliant_copy(
    sandbox: Sandbox, attacker: Sandbox, production: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = {
        "family": "payments",
        "containerDefinitions": [container("attacker/miner:latest", privileged=False)],
        "tags": [{"key": MARKER, "value": "payments:1"}],
    }
    forged_arn = arn_of(attacker.register(forged))
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    code, rows, err = scan("--scope", "active", "--remediate", "--rollout", "--retire")
    assert code == 1, err
    assert rows[forged_arn]["forged"] and ATTACKER in rows[forged_arn]["forged"]
    assert rows[forged_arn]["action"].startswith("forged:")
    moved_to = service_on(sandbox, "blue", "payments")
    assert moved_to != forged_arn
    # the service got the stack's own fixed copy of payments:1 (its own image, unprivileged)
    fixed = sandbox.describe(moved_to)["taskDefinition"]
    assert fixed["containerDefinitions"][0]["image"] == "payments:1.0"
    assert fixed["containerDefinitions"][0]["privileged"] is False
    assert "claim to be fixed copies and are not" in err


# 2. Self-granted exemptions -----------------------------------------------------------------------------------


def exemption_tags(until: str = "9999-12-31") -> list[dict[str, str]]:
    return [
        {"key": "ecs-remediate:exempt-reason", "value": "trust me"},
        {"key": "ecs-remediate:exempt-until", "value": until},
    ]


def test_2_exemption_tags_at_registration_or_after_do_not_exempt(
    sandbox: Sandbox, attacker: Sandbox, handler: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    at_registration = {"family": "miner", "containerDefinitions": [container()], "tags": exemption_tags()}
    response = attacker.register(at_registration)
    result = invoke(handler, sandbox.event_for(at_registration, response, user_arn=ATTACKER))
    assert result["outcome"] == "remediated"
    assert len(sandbox.active_revisions("miner")) == 2
    [note] = sandbox.inbox()
    assert "not honoured" in note.payload["exemption"]

    # tagged right after registration, then swept
    later = {"family": "agent", "containerDefinitions": [container()]}
    arn = arn_of(attacker.register(later))
    attacker.client("ecs").tag_resource(
        resourceArn=arn, tags=[{"key": t["key"], "value": t["value"]} for t in exemption_tags("2026-12-31")]
    )
    for name, value in sandbox.env(MODE="report").items():
        monkeypatch.setenv(name, value)
    code, rows, _ = scan()
    assert code == 1
    assert rows[arn]["status"] == "FAIL" and "not honoured" in rows[arn]["error"]


# 3. Superseded privileged revisions are never silent ------------------------------------------------------------


def test_3_web1_then_web2_gives_a_notice_about_web1_and_retires_it(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, RETIRE="true")
    privileged = {"family": "web", "containerDefinitions": [container()]}
    response = sandbox.register(privileged)
    sandbox.register({"family": "web", "containerDefinitions": [container(privileged=False)]})  # before the event
    result = invoke(handler, sandbox.event_for(privileged, response, user_arn=ATTACKER))
    assert result["outcome"] == "superseded"
    assert status(sandbox, arn_of(response)) == "INACTIVE"  # retire on, nothing uses it
    [note] = sandbox.inbox()
    assert note.payload["outcome"] == "superseded" and note.payload["retired"] is True
    assert note.payload["latestArn"].endswith("task-definition/web:2")
    assert note.payload["registration"]["userArn"] == ATTACKER  # who registered it


def test_3_without_retire_the_notice_gives_the_deregister_command(sandbox: Sandbox, handler: ModuleType) -> None:
    privileged = {"family": "web", "containerDefinitions": [container()]}
    response = sandbox.register(privileged)
    sandbox.register({"family": "web", "containerDefinitions": [container(privileged=False)]})
    assert invoke(handler, sandbox.event_for(privileged, response))["outcome"] == "superseded"
    assert status(sandbox, arn_of(response)) == "ACTIVE"
    [note] = sandbox.inbox()
    assert (
        "aws ecs deregister-task-definition --task-definition web:1 --region us-east-1" in note.payload["nextCommands"]
    )


def test_3_a_retry_finds_its_copy_behind_a_newer_deploy_and_moves_the_service(
    sandbox: Sandbox, production: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, ROLLOUT="true")
    event = sandbox.event_for(
        {"family": "payments", "containerDefinitions": [container("payments:1.0")]},
        {"taskDefinition": {"taskDefinitionArn": production}},
    )
    client = aws.client("ecs")
    failures = [1]

    def fail_once(**_: Any) -> None:
        if failures:
            failures.pop()
            raise aws.ClientError({"Error": {"Code": "ServerException", "Message": "down"}}, "UpdateService")

    client.meta.events.register("before-call.ecs.UpdateService", fail_once)
    with pytest.raises(aws.ClientError):
        invoke(handler, event)  # the copy :2 exists, the rollout step failed: Lambda retries the event
    copy_arn = production.rsplit(":", 1)[0] + ":2"
    sandbox.register({"family": "payments", "containerDefinitions": [container("payments:2.0", privileged=False)]})
    result = invoke(handler, event)  # the retry, after a pipeline registered :3
    assert (result["outcome"], result["new_task_definition_arn"]) == ("remediated", copy_arn)
    assert service_on(sandbox, "blue", "payments") == copy_arn  # not left on the privileged revision


# 4. Cached decisions do not outlive the facts --------------------------------------------------------------------


def test_4_a_revoked_or_expired_exemption_is_fail_at_the_next_sweep(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    arns = [arn_of(sandbox.register({"family": f"csi-{i}", "containerDefinitions": [container()]})) for i in (1, 2)]
    until = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    for arn in arns:
        sandbox.exempt(arn, "CSI node plugin", until)
    for name, value in sandbox.env().items():  # remediate mode, with the function's idempotency table
        monkeypatch.setenv(name, value)
    code, rows, _ = scan()
    assert code == 0 and {rows[a]["status"] for a in arns} == {"EXEMPT"}
    table = sandbox.client("dynamodb")
    table.delete_item(TableName=sandbox.exemptions_table, Key={"target": {"S": arns[0]}})  # revoked
    sandbox.exempt(arns[1], "CSI node plugin", "2020-01-01")  # expired
    code, rows, _ = scan("--remediate")
    assert code == 0
    assert [rows[a]["action"].split(":")[0] for a in arns] == ["remediated", "remediated"]
    assert rows[arns[1]]["error"].startswith("not exempt: exemption expired on 2020-01-01")


# 5. DEBUG logging leaks nothing ----------------------------------------------------------------------------------


def test_5_at_debug_no_planted_secret_appears_in_any_log_record(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "PLANTED-SECRET-7f3a9c"
    params = {
        "family": "leaky",
        "containerDefinitions": [
            container(
                environment=[{"name": "DB_PASSWORD", "value": secret}],
                command=["--token", f"{secret}-cmd"],
                dockerLabels={"api-key": f"{secret}-label"},
            )
        ],
    }
    caplog.set_level(logging.DEBUG)  # the root logger at DEBUG, as the Lambda runtime sets it for logLevel=DEBUG
    handler = load_handler(sandbox, monkeypatch, POWERTOOLS_LOG_LEVEL="DEBUG")
    assert invoke(handler, sandbox.event_for(params, sandbox.register(params)))["outcome"] == "remediated"
    assert caplog.records, "nothing was logged at all: the check would prove nothing"
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records) + capsys.readouterr().out
    assert secret not in text
    for name in ("botocore", "urllib3"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING


# 6. Check-then-act races ------------------------------------------------------------------------------------------


def test_6_a_deploy_between_the_check_and_the_copy_stays_the_familys_latest(
    sandbox: Sandbox, handler: ModuleType
) -> None:
    source = {"family": "api", "containerDefinitions": [container("api:1")]}
    response = sandbox.register(source)
    deploy = {"family": "api", "containerDefinitions": [container("api:2", privileged=False)]}
    client = aws.client("ecs")
    raced = []

    def pipeline_registers_first(**_: Any) -> None:
        if not raced:
            raced.append(1)  # before registering: the pipeline's own call must not trigger this again
            sandbox.register(deploy)

    client.meta.events.register("before-call.ecs.RegisterTaskDefinition", pipeline_registers_first)
    result = invoke(handler, sandbox.event_for(source, response))
    assert result["outcome"] == "remediated"
    latest = sandbox.describe("api")["taskDefinition"]
    assert latest["containerDefinitions"][0]["image"] == "api:2"  # the pipeline's deploy, not our older copy
    assert latest["revision"] == 4  # :2 deploy, :3 our copy of :1, :4 the deploy again
    [note] = sandbox.inbox()
    assert "api:2 was registered meanwhile, so the stack's api:3 landed above it" in note.payload["raceNote"]
    assert note.payload["raceNote"].endswith("the family's latest, api:4, holds api:2's content")


def test_6_rollout_re_describes_each_service_before_the_update(
    sandbox: Sandbox, production: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, ROLLOUT="true")
    other = arn_of(sandbox.register({"family": "hotfix", "containerDefinitions": [container("hotfix", False)]}))
    client = aws.client("ecs")
    calls = []

    def deploy_after_lookup(**_: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            sandbox.client("ecs").update_service(cluster="blue", service="payments", taskDefinition=other)

    client.meta.events.register("after-call.ecs.DescribeServices", deploy_after_lookup)
    source = {"family": "payments", "containerDefinitions": [container("payments:1.0")]}
    result = invoke(handler, sandbox.event_for(source, {"taskDefinition": {"taskDefinitionArn": production}}))
    assert result["outcome"] == "remediated"
    assert service_on(sandbox, "blue", "payments") == other  # the deploy made in between stands
    [note] = sandbox.inbox()
    [manual] = note.payload["servicesManual"]
    assert "changed to hotfix:1 since it was looked up" in manual["note"]


# 7. Retire checks more than services ------------------------------------------------------------------------------


def test_7_a_scheduled_target_naming_the_revision_blocks_retire(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, RETIRE="true")
    params = {"family": "nightly", "containerDefinitions": [container()]}
    response = sandbox.register(params)
    arn = arn_of(response)
    events = sandbox.client("events")
    events.put_rule(Name="nightly-batch", ScheduleExpression="rate(1 day)")
    events.put_targets(
        Rule="nightly-batch",
        Targets=[
            {
                "Id": "run",
                "Arn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/batch",
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/events-run-task",
                "EcsParameters": {"TaskDefinitionArn": arn, "TaskCount": 1},
            }
        ],
    )
    result = invoke(handler, sandbox.event_for(params, response))
    assert result["outcome"] == "remediated"
    assert status(sandbox, arn) == "ACTIVE"  # not deregistered: the rule would break
    [note] = sandbox.inbox()
    assert note.payload["retired"] is False and "nightly-batch" in note.payload["retireNote"]


# 8. Other accounts' ARNs ------------------------------------------------------------------------------------------


def test_8_a_foreign_account_arn_writes_nothing(sandbox: Sandbox, handler: ModuleType) -> None:
    params = {"family": "web", "containerDefinitions": [container()]}
    response = sandbox.register(params)
    event = sandbox.event_for(params, response)
    foreign = arn_of(response).replace(ACCOUNT, "999999999999")
    event["detail"]["responseElements"]["taskDefinition"]["taskDefinitionArn"] = foreign
    result = invoke(handler, event)
    assert result["outcome"] == "skipped" and result["reason"].startswith("foreign account")
    assert len(sandbox.active_revisions("web")) == 1
    assert sandbox.inbox() == []


def test_8_an_event_from_another_account_writes_nothing(sandbox: Sandbox, handler: ModuleType) -> None:
    params = {"family": "web", "containerDefinitions": [container()]}
    event = sandbox.event_for(params, sandbox.register(params))
    event["account"] = "999999999999"
    assert invoke(handler, event)["outcome"] == "skipped"
    assert len(sandbox.active_revisions("web")) == 1 and sandbox.inbox() == []


# 9. responseElements: null -----------------------------------------------------------------------------------------


def test_9_response_elements_null_finds_the_revision(sandbox: Sandbox, handler: ModuleType) -> None:
    params = {"family": "web", "containerDefinitions": [container()]}
    sandbox.register(params)
    event = sandbox.event_for(params, None)  # responseElements: null, requestParameters.family = web
    result = invoke(handler, event)
    assert result["outcome"] == "remediated" and result["task_definition_arn"].endswith("web:1")
    assert len(sandbox.active_revisions("web")) == 2


def test_9_response_elements_null_without_a_match_notifies(sandbox: Sandbox, handler: ModuleType) -> None:
    params = {"family": "web", "containerDefinitions": [container()]}
    sandbox.register(params)
    event = sandbox.event_for(params, None)
    event["detail"]["eventTime"] = "2020-01-01T00:00:00Z"  # no revision was registered then
    result = invoke(handler, event)
    assert result["outcome"] == "unresolved"
    assert len(sandbox.active_revisions("web")) == 1
    [note] = sandbox.inbox()
    assert note.payload["outcome"] == "unresolved" and note.payload["family"] == "web"
    assert (
        "aws ecs list-task-definitions --family-prefix web --sort DESC --region us-east-1"
        in note.payload["nextCommands"]
    )


def test_9_an_event_naming_neither_revision_nor_family_still_notifies(sandbox: Sandbox, handler: ModuleType) -> None:
    event = sandbox.event_for({"family": "web", "containerDefinitions": [container()]}, None)
    del event["detail"]["requestParameters"]  # CloudTrail may omit them: the rule lets such events through
    result = invoke(handler, event)
    assert result["outcome"] == "unresolved"
    [note] = sandbox.inbox()
    assert note.payload["outcome"] == "unresolved" and note.attributes["family"] == "-"


# 10. Notices state only what was checked ---------------------------------------------------------------------------


def test_10_a_result_from_an_earlier_attempt_is_read_back(sandbox: Sandbox, handler: ModuleType) -> None:
    params = {"family": "web", "containerDefinitions": [container()]}
    response = sandbox.register(params)
    topic = handler.remediator().topic
    original = topic.publish

    def down(message: Any) -> str:
        raise aws.ClientError({"Error": {"Code": "InternalFailure", "Message": "down"}}, "Publish")

    topic.publish = down
    with pytest.raises(aws.ClientError):
        invoke(handler, sandbox.event_for(params, response))
    topic.publish = original
    result = invoke(handler, sandbox.event_for(params, response))
    assert result["outcome"] == "remediated"
    [note] = sandbox.inbox()
    assert note.payload["copyVerified"] is True and note.payload["markerAdded"] is True
    assert note.payload["copyCheck"].startswith("read back from web:2: no container is privileged")


def test_10_the_marker_sentence_only_when_the_copy_has_no_marker(sandbox: Sandbox, handler: ModuleType) -> None:
    full = {
        "family": "tagged",
        "containerDefinitions": [container()],
        "tags": [{"key": f"k{i}", "value": "v"} for i in range(50)],
    }
    invoke(handler, sandbox.event_for(full, sandbox.register(full)))
    plain = {"family": "plain", "containerDefinitions": [container()]}
    invoke(handler, sandbox.event_for(plain, sandbox.register(plain)))
    notes = {n.payload["family"]: n.payload for n in sandbox.inbox()}
    assert (notes["tagged"]["markerAdded"], notes["plain"]["markerAdded"]) == (False, True)
    # the email text says it only when it was read back so
    for family, payload in notes.items():
        result = Result(
            REMEDIATED,
            payload["taskDefinitionArn"],
            family,
            1,
            new_task_definition_arn=payload["newTaskDefinitionArn"],
            copy_check=payload["copyCheck"],
            marker_added=payload["markerAdded"],
        )
        assert ("carries no marker tag" in build_message(result).text) is (family == "tagged")
    unread = Result(REMEDIATED, notes["plain"]["taskDefinitionArn"], "plain", 1, new_task_definition_arn="x:2")
    assert "marker" not in build_message(unread).text  # nothing read back: nothing said about the marker


# 11. "Remediated" can still be host root: tests/test_attacks_host.py (issue 19, class 1) ----------------------
