"""Issue 23, "Half the calls": what one event costs in AWS calls, and the attacks on what made it cheaper.

Calls are counted at the function's own clients: a botocore `before-call` hook on every session the adapters make
(once per API call, not per retry attempt), against moto with the daemon emulator (tests/conftest.py). The test's
own set-up and read-back go through the sandbox's clients, which are not counted. docs/performance.md ("Calls per
event") lists each call, why it is made and when it is skipped.

What the reductions rest on, each attacked below:
- the copy's idempotency record covers the notice of the invocation that made the copy (no notice record of its
  own): two workers at once, a crash at each step, the event delivered again;
- a copy that lands right above its source (the register response's revision) means nothing came in between: a
  deploy registered between the source and the copy;
- the family's first revision and its copy are the whole family up to the copy (no listing to count what is left);
  a latest right above the source leaves nothing between them to look at (no listing to find the copy): tags on the
  policed's revisions claiming to be the stack's copy.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from test_daemon_handler import SENSOR, register_event, revisions
from test_daemon_handler import register as register_daemon
from test_handler import invoke

from conftest import load_handler, load_json
from demo.sandbox import ACCOUNT, LambdaContext, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.core.config import Config
from ecs_remediate.core.events import Registration, parse_registration_event
from ecs_remediate.core.taskdef import build_fixed_copy
from ecs_remediate.remediation.provenance import described_document
from ecs_remediate.remediation.remediator import Remediator

MARKER = "ecs-remediate:source-revision"
ATTACKER = f"arn:aws:sts::{ACCOUNT}:assumed-role/Dev/mallory"
PRIVILEGED = {
    "family": "web",
    "containerDefinitions": [
        {"name": "app", "image": "nginx:1.27", "memory": 128, "privileged": True},
        {"name": "sidecar", "image": "envoy:1.31", "memory": 64},
    ],
    "tags": [{"key": "team", "value": "payments"}],
}
COMPLIANT = {"family": "web", "containerDefinitions": [{"name": "app", "image": "nginx:1.26", "memory": 128}]}

DESCRIBE, LIST, REGISTER = "ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions", "ecs:RegisterTaskDefinition"
REGISTRY, PUT, UPDATE, GET = "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"
PUBLISH = "sns:Publish"
# The default privileged registration (the family's first revision, a default stack): 11 calls before, 8 now.
DEFAULT = [DESCRIBE, REGISTRY, PUT, REGISTER, PUT, UPDATE, PUBLISH, UPDATE]
LIMIT = 8  # issue 23


class Calls:
    """Every AWS call of the function's clients, as `service:Operation`, in order."""

    def __init__(self) -> None:
        self.made: list[str] = []
        self._lock = threading.Lock()

    def seen(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.made.append(f"{model.service_model.service_name}:{model.name}")

    def during(self, action: Callable[[], Any]) -> tuple[Any, list[str]]:
        with self._lock:
            self.made.clear()
        answer = action()
        with self._lock:
            return answer, list(self.made)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Counts the calls of every session the adapters make from now on (the handler's clients included)."""
    counted = Calls()
    original = aws.new_session

    def new_session(profile_name: str | None = None) -> Any:
        session = original(profile_name)
        session.events.register("before-call", counted.seen)
        return session

    monkeypatch.setattr(aws, "new_session", new_session)
    aws.reset_clients()
    return counted


def instance(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    """A fresh execution environment of the function: its clients, its remediator, nothing cached from another."""
    return load_handler(sandbox, monkeypatch, **env)


def copy_record(sandbox: Sandbox, source_arn: str) -> dict[str, Any]:
    """The copy's idempotency record, as the stack's table holds it (Powertools' key: prefix and the key's MD5)."""
    digest = hashlib.md5(json.dumps(source_arn).encode(), usedforsecurity=False).hexdigest()
    item = sandbox.client("dynamodb").get_item(
        TableName=sandbox.table_name, Key={"id": {"S": f"ecs-remediate-copy#{digest}"}}, ConsistentRead=True
    )
    return dict(item.get("Item") or {})


def arn_of(response: dict[str, Any]) -> str:
    return str(response["taskDefinition"]["taskDefinitionArn"])


# --- the counts -----------------------------------------------------------------------------------------------------


def test_a_privileged_registration_costs_eight_calls(
    sandbox: Sandbox, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = instance(sandbox, monkeypatch)
    response = sandbox.register(PRIVILEGED)
    result, made = calls.during(lambda: invoke(handler, sandbox.event_for(PRIVILEGED, response)))

    assert made == DEFAULT and len(made) <= LIMIT
    source = arn_of(response)
    assert result["outcome"] == "remediated" and sandbox.active_revisions("web") == [source, f"{source[:-2]}:2"]
    [note] = sandbox.inbox()
    assert note.attributes["outcome"] == "remediated" and note.payload["copyVerified"] is True
    assert note.payload["remainingPrivileged"] == 1  # the source itself, counted without a listing
    record = copy_record(sandbox, source)
    assert record["status"]["S"] == "COMPLETED" and f'"notified": "remediated|{source}|' in record["data"]["S"]


def test_the_latest_of_a_family_with_older_revisions_lists_them_once(
    sandbox: Sandbox, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = instance(sandbox, monkeypatch)
    older = arn_of(sandbox.register(COMPLIANT))
    response = sandbox.register(PRIVILEGED)
    result, made = calls.during(lambda: invoke(handler, sandbox.event_for(PRIVILEGED, response)))

    # 12 before; the older revision is described for the count of privileged revisions left (compliant: 1, the source)
    assert made == [DESCRIBE, REGISTRY, PUT, REGISTER, PUT, UPDATE, LIST, DESCRIBE, PUBLISH, UPDATE]
    assert result["outcome"] == "remediated"
    assert sandbox.active_revisions("web") == [older, arn_of(response), result["new_task_definition_arn"]]
    [note] = sandbox.inbox()
    assert note.payload["remainingPrivileged"] == 1


def test_a_duplicate_delivery_writes_and_sends_nothing(
    sandbox: Sandbox, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = instance(sandbox, monkeypatch)
    event = sandbox.event_for(PRIVILEGED, sandbox.register(PRIVILEGED))
    first = invoke(handler, event)
    again, warm = calls.during(lambda: invoke(handler, event))  # the same execution environment
    other = instance(sandbox, monkeypatch)
    elsewhere, cold = calls.during(lambda: invoke(other, event))  # another one: nothing cached

    # the source is no longer the latest (its copy is): described by ARN too; the copy record says the notice went out
    found = [DESCRIBE, DESCRIBE, REGISTRY, UPDATE, GET]
    assert warm == found  # 7 before
    # 8 before; + the ledger's record, read once per execution environment (copies are immutable)
    assert cold == [DESCRIBE, DESCRIBE, REGISTRY, GET, UPDATE, GET]
    assert first["new_task_definition_arn"] == again["new_task_definition_arn"] == elsewhere["new_task_definition_arn"]
    assert again["outcome"] == elsewhere["outcome"] == "remediated"
    assert len(sandbox.active_revisions("web")) == 2
    assert [n.attributes["outcome"] for n in sandbox.inbox()] == ["remediated"]


def test_a_privileged_revision_already_superseded(
    sandbox: Sandbox, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = instance(sandbox, monkeypatch)
    event = sandbox.event_for(PRIVILEGED, sandbox.register(PRIVILEGED))
    newer = arn_of(sandbox.register(COMPLIANT))  # right above it, before its event is handled
    result, made = calls.during(lambda: invoke(handler, event))

    # no listing between the source and a latest right above it (8 before); the notice through its own record
    assert made == [DESCRIBE, DESCRIBE, REGISTRY, GET, PUT, PUBLISH, UPDATE]
    assert result["outcome"] == "superseded" and sandbox.active_revisions("web")[-1] == newer
    assert [n.attributes["outcome"] for n in sandbox.inbox()] == ["superseded"]


def test_a_compliant_registration_costs_one_describe(
    sandbox: Sandbox, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = instance(sandbox, monkeypatch)
    response = sandbox.register(COMPLIANT)
    result, made = calls.during(lambda: invoke(handler, sandbox.event_for(COMPLIANT, response)))

    assert made == [DESCRIBE] and result["outcome"] == "compliant"
    assert sandbox.active_revisions("web") == [arn_of(response)] and sandbox.inbox() == []


def test_a_privileged_daemon_task_definition(sandbox: Sandbox, calls: Calls, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = instance(sandbox, monkeypatch)
    params = load_json(SENSOR)
    arn = register_daemon(sandbox, params)
    event = register_event(sandbox, params, arn)
    result, made = calls.during(lambda: invoke(handler, event))
    again, duplicate = calls.during(lambda: invoke(handler, event))

    describe, tags = "ecs:DescribeDaemonTaskDefinition", "ecs:ListTagsForResource"
    register, daemons = "ecs:RegisterDaemonTaskDefinition", "ecs:ListClusters"
    # described by revision (its tags by ListTagsForResource); the daemons that run it looked up for the notice
    # the source by revision, then the family's latest (no describe by family here), the copy read back by a describe
    # (its register response holds no members), the daemons that run the source looked up for the notice
    assert made == [
        *(
            describe,
            tags,
            REGISTRY,
            describe,
            tags,
            PUT,
            register,
            PUT,
            describe,
            tags,
            UPDATE,
            daemons,
            PUBLISH,
            UPDATE,
        )
    ]  # 16 before: the notice's record (PutItem, UpdateItem)
    assert duplicate == [describe, tags, REGISTRY, describe, tags, UPDATE, daemons, GET]  # 9 before
    assert result["outcome"] == again["outcome"] == "remediated"
    assert revisions(sandbox, "security-sensor") == [arn, result["new_task_definition_arn"]]
    assert [n.attributes["outcome"] for n in sandbox.inbox()] == ["remediated"]


# --- attacks on what the counts rest on -----------------------------------------------------------------------------


def worker(sandbox: Sandbox) -> Remediator:
    """One execution environment of the function: its own session and clients; only the table is shared."""
    session = boto3.session.Session()
    made = {
        s: session.client(s, region_name=sandbox.region, config=aws.BOTO_CONFIG) for s in ("ecs", "dynamodb", "sns")
    }
    persistence = DynamoDBPersistenceLayer(table_name=sandbox.table_name, boto3_client=made["dynamodb"])
    remediator = Remediator(
        Config.from_env(sandbox.env()), aws.Ecs(made["ecs"]), aws.Topic(made["sns"], sandbox.topic_arn), persistence
    )
    remediator.register_lambda_context(LambdaContext())
    return remediator


def registration_of(event: dict[str, Any]) -> Registration:
    parsed = parse_registration_event(event)
    assert isinstance(parsed, Registration)
    return parsed


# Where the first worker is held while the second gets the same event: before its RegisterTaskDefinition (the copy's
# record claimed, no copy yet), before its Publish (the copy made, not notified), before the copy's record completes
# (notified, the record not saying so yet).
HOLDS = {
    "register": ("ecs", "RegisterTaskDefinition", None),
    "publish": ("sns", "Publish", None),
    "complete": ("dynamodb", "UpdateItem", "ecs-remediate-copy#"),
}


@pytest.mark.parametrize("hold", list(HOLDS))
def test_the_same_event_to_two_workers_at_once_makes_one_copy_and_one_notice(sandbox: Sandbox, hold: str) -> None:
    event = sandbox.event_for(PRIVILEGED, sandbox.register(PRIVILEGED))
    first, second = worker(sandbox), worker(sandbox)
    service, operation, key = HOLDS[hold]
    client = {"ecs": first.ecs._client, "sns": first.topic._client, "dynamodb": first.ledger._client}[service]  # type: ignore[union-attr, attr-defined]
    held, release = threading.Event(), threading.Event()

    def wait_here(params: dict[str, Any], **_: Any) -> None:
        if key is None or str(params.get("Key", {}).get("id", {}).get("S", "")).startswith(key):
            held.set()
            assert release.wait(30)

    client.meta.events.register(f"provide-client-params.{service}.{operation}", wait_here)
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(first.process(registration_of(event))))
    thread.start()
    try:
        assert held.wait(30)
        with pytest.raises(IdempotencyAlreadyInProgressError):  # the queue defers it: tried again later
            second.process(registration_of(event))
        assert len(sandbox.inbox()) == (1 if hold == "complete" else 0)  # only the first worker's notice, if any
    finally:
        release.set()
        thread.join(30)
    [made] = results
    again = second.process(registration_of(event))  # the deferred event, delivered again

    assert made.outcome == again.outcome == "remediated"
    assert made.new_task_definition_arn == again.new_task_definition_arn
    assert len(sandbox.active_revisions("web")) == 2
    assert [n.attributes["outcome"] for n in sandbox.inbox()] == ([] if hold == "complete" else ["remediated"])


class Crash(BaseException):
    """The execution environment ends here (a timeout, the process killed): no handler of ours or Powertools' runs."""


class ShortContext(LambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 300  # the invocation's end, when its in-progress record expires


# The function's process ends right after RegisterTaskDefinition (before the ledger's record), right before Publish,
# or right after it (before the copy's record says so). Notices: the last can only be sent again (at least once).
CRASHES = {
    "after register": ("dynamodb", "PutItem", "ecs-remediate#copy#", 1),
    "before publish": ("sns", "Publish", None, 1),
    "after publish": ("dynamodb", "UpdateItem", "ecs-remediate-copy#", 2),
}


@pytest.mark.parametrize("crash", list(CRASHES))
@pytest.mark.parametrize("trusted", [True, False], ids=["principal trusted", "principal not trusted"])
def test_a_crash_mid_way_then_the_event_again_makes_no_second_copy_and_notifies(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, crash: str, trusted: bool
) -> None:
    principal = str(
        sandbox.client("sts").get_caller_identity()["Arn"]
    )  # the function's, as ECS's registeredBy names it
    env = {"TRUSTED_PRINCIPALS": principal} if trusted else {}
    handler = instance(sandbox, monkeypatch, **env)
    source = arn_of(sandbox.register(PRIVILEGED))
    event = sandbox.event_for(PRIVILEGED, {"taskDefinition": {"taskDefinitionArn": source}})
    service, operation, key, notices = CRASHES[crash]

    def die(params: dict[str, Any], **_: Any) -> None:
        if key is None or str((params.get("Item") or params.get("Key") or {}).get("id", {}).get("S", "")).startswith(
            key
        ):
            raise Crash

    aws.client(service).meta.events.register(f"provide-client-params.{service}.{operation}", die, unique_id="crash")
    with pytest.raises(Crash):
        handler.lambda_handler(event, ShortContext())
    assert len(sandbox.active_revisions("web")) == 2  # the copy was registered before the crash
    time.sleep(0.4)  # the invocation's end: its in-progress record expires
    result = invoke(instance(sandbox, monkeypatch, **env), event)  # delivered again, to another environment

    assert sandbox.active_revisions("web") == [source, f"{source[:-2]}:2"]  # no second copy
    outcomes = [n.attributes["outcome"] for n in sandbox.inbox()]
    if crash == "after register" and not trusted:
        # The ledger has no record and ECS's registeredBy is no principal of the stack's: the copy cannot be proven the
        # stack's, so it is not acted on, and the source is notified as superseded (the notice names the copy)
        assert result["outcome"] == "superseded" and outcomes == ["superseded"]
    else:
        assert result["outcome"] == "remediated" and result["new_task_definition_arn"] == f"{source[:-2]}:2"
        assert outcomes == ["remediated"] * notices


@pytest.mark.parametrize("deploy", ["compliant", "privileged"])
def test_a_deploy_between_the_source_and_the_copy_is_looked_at(
    sandbox: Sandbox, calls: Calls, monkeypatch: pytest.MonkeyPatch, deploy: str
) -> None:
    """The policed pipeline registers :2 right before the stack's copy: the copy lands at :3, not right above its
    source, so the shortcuts that rest on that do not apply: :2 is described and restored on top, the family listed."""
    handler = instance(sandbox, monkeypatch)
    attacker = sandbox.as_principal()
    source = arn_of(sandbox.register(PRIVILEGED))
    pipeline = COMPLIANT if deploy == "compliant" else {**PRIVILEGED, "tags": [{"key": "team", "value": "pipeline"}]}
    deployed: list[str] = []

    def deploy_first(**_: Any) -> None:
        if not deployed:
            deployed.append(arn_of(attacker.register(pipeline)))

    aws.client("ecs").meta.events.register("before-call.ecs.RegisterTaskDefinition", deploy_first, unique_id="pipe")
    result, made = calls.during(
        lambda: invoke(handler, sandbox.event_for(PRIVILEGED, {"taskDefinition": {"taskDefinitionArn": source}}))
    )

    prefix = source[:-2]
    assert deployed == [f"{prefix}:2"] and result["new_task_definition_arn"] == f"{prefix}:3"
    assert made.count(REGISTER) == 2 and made.count(LIST) == 1  # the restore of :2 on top; the count listed the family
    assert made.index(f"{DESCRIBE}") < made.index(REGISTER) < len(made) - made[::-1].index(DESCRIBE) - 1
    top = sandbox.describe("web")["taskDefinition"]
    assert (
        top["revision"] == 4 and top["containerDefinitions"][0]["image"] == pipeline["containerDefinitions"][0]["image"]
    )
    assert not any(c.get("privileged") for c in top["containerDefinitions"])
    [note] = sandbox.inbox()
    assert note.attributes["outcome"] == "remediated" and note.payload["restoredArn"] == f"{prefix}:4"
    assert note.payload["remainingPrivileged"] == (1 if deploy == "compliant" else 2)  # :1 (and the pipeline's :2)
    if deploy == "privileged":  # the pipeline's own event: its copy was the restore, notified once
        again = invoke(handler, sandbox.event_for(pipeline, {"taskDefinition": {"taskDefinitionArn": deployed[0]}}))
        assert again["outcome"] == "remediated" and again["new_task_definition_arn"] == f"{prefix}:4"
        assert [n.attributes["outcome"] for n in sandbox.inbox()] == ["remediated"]
        assert len(sandbox.active_revisions("web")) == 4


def fixed_copy_of(sandbox: Sandbox, arn: str, marker: str) -> dict[str, Any]:
    """The exact fixed copy of `arn` with the stack's marker naming `marker`, as the stack itself would register it."""
    ecs = aws.Ecs(sandbox.client("ecs"))
    fix = build_fixed_copy(described_document(ecs.describe(arn), ecs.model), ecs.model, (MARKER, marker))
    return dict(fix.register_input)


@pytest.mark.parametrize("claim", ["web:1", "web:0", "web:2"])
def test_a_source_tagged_as_the_stacks_copy_is_still_copied(
    sandbox: Sandbox, calls: Calls, monkeypatch: pytest.MonkeyPatch, claim: str
) -> None:
    handler = instance(sandbox, monkeypatch)
    tagged = {**PRIVILEGED, "tags": [*PRIVILEGED["tags"], {"key": MARKER, "value": claim}]}  # type: ignore[list-item]
    response = sandbox.as_principal().register(tagged)
    result, made = calls.during(lambda: invoke(handler, sandbox.event_for(tagged, response)))

    assert made == DEFAULT and result["outcome"] == "remediated"
    copy = sandbox.describe(result["new_task_definition_arn"])
    assert {"key": MARKER, "value": "web:1"} in copy["tags"] and not copy["taskDefinition"]["containerDefinitions"][0][
        "privileged"
    ]
    assert [n.attributes["outcome"] for n in sandbox.inbox()] == ["remediated"]


@pytest.mark.parametrize("claimed", ["exact", "still privileged", "another image"])
def test_a_revision_right_above_the_source_claiming_to_be_its_copy_is_not_taken_for_it(
    sandbox: Sandbox, calls: Calls, monkeypatch: pytest.MonkeyPatch, claimed: str
) -> None:
    """The policed registers :1, then :2 tagged as the stack's copy of :1 (the exact fixed copy, or not): :2 is right
    above the source, so nothing is listed in between, and the stack has no record of :2: never remediated onto it."""
    handler = instance(sandbox, monkeypatch)
    attacker = sandbox.as_principal()
    source = arn_of(attacker.register(PRIVILEGED))
    claim = fixed_copy_of(sandbox, source, "web:1")
    if claimed == "still privileged":
        claim["containerDefinitions"][0]["privileged"] = True
    elif claimed == "another image":
        claim["containerDefinitions"][0]["image"] = "attacker/miner:latest"
    forged = arn_of(attacker.register(claim))
    event = sandbox.event_for(PRIVILEGED, {"taskDefinition": {"taskDefinitionArn": source}})
    result, made = calls.during(lambda: invoke(handler, event))
    invoke(instance(sandbox, monkeypatch), event)  # delivered again, elsewhere

    assert result["outcome"] == "superseded"
    notes = sandbox.inbox()
    if claimed == "still privileged":  # :2 is privileged itself: fixed on sight as its own event would fix it
        [*_, copy] = sandbox.active_revisions("web")
        assert sandbox.active_revisions("web") == [source, forged, copy] and made.count(REGISTER) == 1, made
        described = sandbox.describe(copy)
        assert {"key": MARKER, "value": "web:2"} in described["tags"]
        assert not any(c.get("privileged") for c in described["taskDefinition"]["containerDefinitions"])
        assert sorted(n.attributes["outcome"] for n in notes) == ["remediated", "superseded"]
        assert result["reason"].endswith("the latest :2 is privileged too: fixed now by its copy :3")
        return
    assert REGISTER not in made and LIST not in made and sandbox.active_revisions("web") == [source, forged]
    [note] = notes  # one notice for both deliveries
    assert note.attributes["outcome"] == "superseded"
    if claimed == "exact":
        assert "no record of registering it" in note.payload["raceNote"]
    else:
        [finding] = note.payload["forgedCopies"]
        assert finding["arn"] == forged and finding["registeredBy"] == ATTACKER


@pytest.mark.parametrize("retagged", [False, True])
def test_a_burst_of_one_family_describes_each_revision_once_per_execution_environment(
    sandbox: Sandbox, calls: Calls, monkeypatch: pytest.MonkeyPatch, retagged: bool
) -> None:
    """Five privileged revisions registered before any event, the events handled oldest first in one execution
    environment: the first fixes :5 on sight; a revision's content never changes, so what one event described is not
    described again by the next (the search for a copy between the source and the latest, the count of what is left).
    The policed retagging :3 as the stack's copy of :2 before :2's event changes nothing: its content is privileged,
    so it is nobody's copy (and, seen already, it is not described again to find that out)."""
    handler = instance(sandbox, monkeypatch)
    attacker = sandbox.as_principal()
    events, arns = [], []
    for n in range(5):
        params = {
            **PRIVILEGED,
            "containerDefinitions": [{**PRIVILEGED["containerDefinitions"][0], "image": f"nginx:{n}"}],
        }
        response = attacker.register(params)
        events.append(sandbox.event_for(params, response))
        arns.append(arn_of(response))
    seen = []
    for n, event in enumerate(events):
        if retagged and n == 1:
            attacker.client("ecs").tag_resource(resourceArn=arns[2], tags=[{"key": MARKER, "value": "web:2"}])
        result, made = calls.during(lambda event=event: invoke(handler, event))
        seen.append((result["outcome"], made.count(DESCRIBE)))

    assert seen == [("superseded", 5), ("superseded", 2), ("superseded", 2), ("superseded", 2), ("remediated", 2)]
    [*_, copy] = sandbox.active_revisions("web")
    assert sandbox.active_revisions("web") == [*arns, copy]
    assert {"key": MARKER, "value": "web:5"} in sandbox.describe(copy)["tags"]
    outcomes = {n.payload["taskDefinitionArn"]: n.payload["outcome"] for n in sandbox.inbox()}
    assert outcomes == {**dict.fromkeys(arns[:4], "superseded"), arns[4]: "remediated"}
