"""Issue 19, class 4: restores that bury a newer deploy. The policed developer's pipeline deploys (registers a
revision of the family) right before or right after each of the stack's own registrations: its fixed copy, and each
restore of the family's latest after it. Whatever the timing, a deploy by family name must get the newest deploy's
content, never older; when the stack cannot win the race, the notice (or the sweep row) names the family's latest, the
newer deploy below it and the command that makes that deploy the latest again.

Through the real handler (task definitions on moto, daemon task definitions on the daemon emulator) and the real
sweep (`ecs-remediate scan --scope active --remediate --rollout`). The pipeline is injected deterministically: hooks on
the stack's own ECS client register the developer's deploy (their assumed-role credentials, their own client) right
before or after the stack's Nth registration call; no sleeps. Everything asserted is read back from the emulator and
the inbox queue.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from strategies import Fault
from test_handler import invoke

from demo.daemon_sandbox import call_event
from demo.sandbox import ACCOUNT, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.cli.main import main
from ecs_remediate.remediation import restore
from ecs_remediate.sweep import run as sweep

MARKER = "ecs-remediate:source-revision"
ATTACKER = f"arn:aws:sts::{ACCOUNT}:assumed-role/Dev/mallory"
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]
BEFORE, AFTER = "before", "after"


# --- the policed pipeline -------------------------------------------------------------------------------------------


@dataclass
class Pipeline:
    """The developer's pipeline, deploying at chosen moments of the stack's registrations: hooks on the stack's ECS
    client (the developer's own client has none) register each planned deploy, with the developer's credentials, right
    before or right after the stack's Nth registration call."""

    stack_client: Any
    operation: str  # RegisterTaskDefinition | RegisterDaemonTaskDefinition
    deploy: Callable[[str], str]  # registers a deploy of this image as the developer; returns its ARN
    plan: dict[tuple[str, int], list[str]]  # (BEFORE | AFTER, the stack's Nth registration) -> images deployed
    deployed: list[str] = field(default_factory=list)
    calls: int = 0

    def __post_init__(self) -> None:
        events = self.stack_client.meta.events
        events.register(f"before-call.ecs.{self.operation}", self._before, unique_id=f"pipeline-before-{id(self)}")
        events.register(f"after-call.ecs.{self.operation}", self._after, unique_id=f"pipeline-after-{id(self)}")

    def _before(self, **_: Any) -> None:
        self.calls += 1
        self._deploy(BEFORE)

    def _after(self, **_: Any) -> None:
        self._deploy(AFTER)

    def _deploy(self, when: str) -> None:
        for image in self.plan.get((when, self.calls), []):
            self.deployed.append(self.deploy(image))


@dataclass(frozen=True)
class Kind:
    """Task definitions or daemon task definitions, as the developer and a reader see them."""

    name: str
    operation: str

    def params(self, family: str, image: str, privileged: bool = False, tags: list[Any] | None = None) -> Any:
        container: dict[str, Any] = {"name": "app", "image": image, "privileged": privileged}
        if self.name == "task":
            container["memory"] = 64
        return {"family": family, "containerDefinitions": [container], **({"tags": tags} if tags else {})}

    def register(self, box: Sandbox, params: dict[str, Any]) -> str:
        ecs = box.client("ecs")
        if self.name == "task":
            return str(ecs.register_task_definition(**params)["taskDefinition"]["taskDefinitionArn"])
        return str(ecs.register_daemon_task_definition(**params)["daemonTaskDefinitionArn"])

    def describe(self, box: Sandbox, ref: str) -> tuple[dict[str, Any], dict[str, str]]:
        ecs = box.client("ecs")
        if self.name == "task":
            described = ecs.describe_task_definition(taskDefinition=ref, include=["TAGS"])
            return described["taskDefinition"], {t["key"]: t["value"] for t in described.get("tags", [])}
        definition = ecs.describe_daemon_task_definition(daemonTaskDefinition=ref)["daemonTaskDefinition"]
        tags = ecs.list_tags_for_resource(resourceArn=definition["daemonTaskDefinitionArn"]).get("tags", [])
        return definition, {t["key"]: t["value"] for t in tags}

    def active(self, box: Sandbox, family: str) -> list[int]:
        """The family's ACTIVE revision numbers, ascending: its latest is what a deploy by family name gets."""
        ecs = box.client("ecs")
        if self.name == "task":
            arns = box.active_revisions(family)
        else:
            arns, token = [], None
            while True:
                page = ecs.list_daemon_task_definitions(
                    family=family, status="ACTIVE", **({"nextToken": token} if token else {})
                )
                arns += [s["arn"] for s in page["daemonTaskDefinitions"]]
                if not (token := page.get("nextToken")):
                    break
        return sorted(int(arn.rsplit(":", 1)[1]) for arn in arns)

    def latest(self, box: Sandbox, family: str) -> tuple[int, str, bool, dict[str, str]]:
        """(revision, image, privileged, tags) of the family's latest ACTIVE revision."""
        revision = self.active(box, family)[-1]
        definition, tags = self.describe(box, f"{family}:{revision}")
        [container] = definition["containerDefinitions"]
        return revision, container["image"], bool(container.get("privileged")), tags

    def event(self, box: Sandbox, params: dict[str, Any], arn: str) -> dict[str, Any]:
        if self.name == "task":
            return box.event_for(params, {"taskDefinition": {"taskDefinitionArn": arn}}, user_arn=ATTACKER)
        response = {"daemonTaskDefinitionArn": arn}
        return call_event(box, "RegisterDaemonTaskDefinition", params, response, user_arn=ATTACKER)


TASK = Kind("task", "RegisterTaskDefinition")
DAEMON = Kind("daemon", "RegisterDaemonTaskDefinition")


@pytest.fixture
def attacker(sandbox: Sandbox) -> Sandbox:
    return sandbox.as_principal("Dev", "mallory")


def pipeline(kind: Kind, attacker: Sandbox, family: str, plan: dict[tuple[str, int], list[str]], **kw: Any) -> Pipeline:
    def deploy(image: str) -> str:
        return kind.register(attacker, kind.params(family, image, **kw))

    return Pipeline(aws.client("ecs"), kind.operation, deploy, plan)


# --- the function: a deploy before, between and after each of its registrations -------------------------------------

# (BEFORE|AFTER, the stack's Nth registration) -> images the pipeline deploys then. The stack's 1st registration is
# the fixed copy of api:1 (image v1); the 2nd, 3rd, 4th are restores.
SCENARIOS: dict[str, tuple[dict[tuple[str, int], list[str]], int, str, str | None]] = {
    # name: (plan, the family's latest revision afterwards, its image, what the notice says: the revision whose
    # content the stack's last restore holds, or "buried <image>" for the deploy left below the latest)
    "before-the-copy": ({(BEFORE, 1): ["v2"]}, 4, "v2", "api:2"),  # 2 v2, 3 copy, 4 restore(v2)
    "two-before-the-copy": ({(BEFORE, 1): ["v2", "v3"]}, 5, "v3", "api:3"),  # 2 v2, 3 v3, 4 copy, 5 restore(v3)
    "after-the-copy": ({(AFTER, 1): ["v2"]}, 3, "v2", None),  # 2 copy, 3 v2 (the deploy itself): nothing to say
    "before-the-copy-and-before-the-restore": (
        {(BEFORE, 1): ["v2"], (BEFORE, 2): ["v3"]},
        6,  # 2 v2, 3 copy, 4 v3, 5 restore(v2), 6 restore(v3)
        "v3",
        "api:4",
    ),
    "before-the-copy-and-after-the-restore": (
        {(BEFORE, 1): ["v2"], (AFTER, 2): ["v3"]},
        5,  # 2 v2, 3 copy, 4 restore(v2), 5 v3 (the deploy itself, above the restore)
        "v3",
        "api:2",
    ),
    "before-every-registration": (
        {(BEFORE, n): [f"v{n + 1}"] for n in range(1, 5)},
        9,  # 2 v2, 3 copy, 4 v3, 5 r(v2), 6 v4, 7 r(v3), 8 v5, 9 r(v4): 3 restores, v5 (:8) is left below
        "v4",
        "buried api:8",
    ),
}


@pytest.mark.parametrize("kind", [TASK, DAEMON], ids=["task-definition", "daemon-task-definition"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_deploy_around_each_registration_of_the_function(
    sandbox: Sandbox, attacker: Sandbox, handler: ModuleType, kind: Kind, scenario: str
) -> None:
    plan, latest_revision, latest_image, said = SCENARIOS[scenario]
    source = kind.params("api", "v1", privileged=True)
    arn = kind.register(attacker, source)
    deploys = pipeline(kind, attacker, "api", plan)

    result = invoke(handler, kind.event(sandbox, source, arn))

    assert result["outcome"] == "remediated"
    assert kind.latest(sandbox, "api")[:3] == (latest_revision, latest_image, False)
    [note] = sandbox.inbox()
    if said is None:
        assert not note.payload["raceNote"] and not note.payload["restoredArn"]
    elif not said.startswith("buried"):
        assert note.payload["raceNote"].endswith(f"holds {said}'s content")
        assert not note.payload["buriedArn"] and "not restored" not in note.subject
    else:
        ref = said.split()[1]
        assert note.payload["buriedArn"] == deploys.deployed[-1] and deploys.deployed[-1].endswith(ref)
        assert note.payload["raceLost"] is True
        assert "family latest not restored" in note.subject and note.payload["severity"] == "HIGH"
        assert (
            f"{ref} was not restored: still losing the race after {restore.MAX_RESTORES} restores. The family's "
            f"latest is api:{latest_revision}, older content than {ref}"
        ) in note.payload["raceNote"]
        assert (
            note.payload["raceStep"] in note.payload["nextCommands"] and "ecs-remediate fix" in note.payload["raceStep"]
        )


@pytest.mark.parametrize("kind", [TASK, DAEMON], ids=["task-definition", "daemon-task-definition"])
def test_the_notice_states_each_step_of_a_won_race(
    sandbox: Sandbox, attacker: Sandbox, handler: ModuleType, kind: Kind
) -> None:
    source = kind.params("api", "v1", privileged=True)
    arn = kind.register(attacker, source)
    pipeline(kind, attacker, "api", {(BEFORE, 1): ["v2"], (BEFORE, 2): ["v3"]})
    invoke(handler, kind.event(sandbox, source, arn))
    [note] = sandbox.inbox()
    assert note.payload["raceNote"] == (
        "api:2 was registered meanwhile, so the stack's api:3 landed above it; api:5 was registered as api:2's copy "
        "(the same content); api:4 was registered meanwhile, so the stack's api:5 landed above it; api:6 was "
        "registered as api:4's copy (the same content); nothing was registered in between: the family's latest, "
        "api:6, holds api:4's content"
    )
    assert note.payload["restoredArn"].endswith("api:6") and note.payload["restoredFrom"].endswith("api:4")
    assert kind.describe(sandbox, "api:6")[1][MARKER] == "api:4"  # the restore names what it copies


def test_a_privileged_deploy_in_between_gets_its_fixed_copy_once(
    sandbox: Sandbox, attacker: Sandbox, handler: ModuleType
) -> None:
    """The deploy is privileged too: the restore is its fixed copy, through the same idempotent write its own event
    uses, so that event finds the copy instead of registering a second one."""
    source = TASK.params("api", "v1", privileged=True)
    arn = TASK.register(attacker, source)
    deploys = pipeline(TASK, attacker, "api", {(BEFORE, 1): ["v2"]}, privileged=True)
    invoke(handler, TASK.event(sandbox, source, arn))
    assert TASK.latest(sandbox, "api")[:3] == (4, "v2", False)
    [note] = sandbox.inbox()
    assert "api:4 was registered as api:2's fixed copy (privileged removed)" in note.payload["raceNote"]

    [deploy] = deploys.deployed
    again = invoke(handler, TASK.event(sandbox, TASK.params("api", "v2", privileged=True), deploy))
    assert again["outcome"] == "remediated" and again["new_task_definition_arn"].endswith("api:4")
    assert TASK.active(sandbox, "api") == [1, 2, 3, 4]  # no second copy of api:2
    [note] = sandbox.inbox()
    assert note.payload["copyProof"] == "recorded in the stack's ledger when it was registered"


def test_an_exempt_deploy_in_between_is_not_copied_and_the_notice_says_what_to_run(
    sandbox: Sandbox, attacker: Sandbox, handler: ModuleType
) -> None:
    source = TASK.params("api", "v1", privileged=True)
    arn = TASK.register(attacker, source)

    def exempt_deploy(image: str) -> str:
        deployed = TASK.register(attacker, TASK.params("api", image, privileged=True))
        sandbox.exempt(deployed, "CSI node plugin", (datetime.now(UTC).date() + timedelta(days=30)).isoformat())
        return deployed

    deploys = Pipeline(aws.client("ecs"), TASK.operation, exempt_deploy, {(BEFORE, 1): ["v2"]})
    result = invoke(handler, TASK.event(sandbox, source, arn))
    assert result["outcome"] == "remediated"
    assert TASK.latest(sandbox, "api")[:3] == (3, "v1", False)  # the copy: nothing was registered over it
    [note] = sandbox.inbox()
    [deploy] = deploys.deployed
    assert note.payload["buriedArn"] == deploy and note.payload["raceStep"] == ""
    assert "api:2 was not restored: it is privileged and exempt" in note.payload["raceNote"]
    assert "re-run the deploy that registered api:2" in note.payload["raceNote"]
    assert note.payload["severity"] == "HIGH" and "family latest not restored" in note.subject


def test_a_deploy_withdrawn_before_the_copy_is_not_restored(
    sandbox: Sandbox, attacker: Sandbox, handler: ModuleType
) -> None:
    source = TASK.params("api", "v1", privileged=True)
    arn = TASK.register(attacker, source)

    def deploy_then_withdraw(image: str) -> str:
        deployed = TASK.register(attacker, TASK.params("api", image))
        attacker.client("ecs").deregister_task_definition(taskDefinition=deployed)
        return deployed

    Pipeline(aws.client("ecs"), TASK.operation, deploy_then_withdraw, {(BEFORE, 1): ["v2"]})
    invoke(handler, TASK.event(sandbox, source, arn))
    assert TASK.active(sandbox, "api") == [1, 3]  # the withdrawn deploy is not brought back
    [note] = sandbox.inbox()
    assert not note.payload["raceNote"] and not note.payload.get("buriedArn")


def test_a_deploy_that_clones_the_stacks_marker_is_still_a_deploy(
    sandbox: Sandbox, attacker: Sandbox, handler: ModuleType
) -> None:
    """A pipeline that copies the latest revision's tags carries the marker too: a claim, not proof that the stack
    registered it, so it is restored like any deploy (and never skipped as one of the stack's copies)."""
    source = TASK.params("api", "v1", privileged=True)
    arn = TASK.register(attacker, source)
    pipeline(TASK, attacker, "api", {(BEFORE, 1): ["v2"]}, tags=[{"key": MARKER, "value": "api:1"}])
    invoke(handler, TASK.event(sandbox, source, arn))
    assert TASK.latest(sandbox, "api")[:3] == (4, "v2", False)


def test_the_command_in_a_lost_race_makes_the_buried_deploy_the_latest(
    sandbox: Sandbox, attacker: Sandbox, handler: ModuleType, tmp_path: Path
) -> None:
    """The notice's command, step by step against the emulator: describe the buried deploy, `ecs-remediate fix` it
    (unchanged: it is compliant), register the result."""
    source = TASK.params("api", "v1", privileged=True)
    arn = TASK.register(attacker, source)
    deploys = pipeline(TASK, attacker, "api", {(BEFORE, n): [f"v{n + 1}"] for n in range(1, 5)})
    invoke(handler, TASK.event(sandbox, source, arn))
    [note] = sandbox.inbox()
    buried = note.payload["buriedArn"]
    assert buried == deploys.deployed[-1]
    assert note.payload["raceStep"].startswith(
        "aws ecs describe-task-definition --task-definition api:8 --include TAGS"
    )

    described = tmp_path / "api-8.json"
    described.write_text(json.dumps(attacker.describe("api:8"), default=str))
    stdout, stderr = io.StringIO(), io.StringIO()
    assert main(["fix", str(described)], stdout, stderr) == 0, stderr.getvalue()
    sandbox.client("ecs").register_task_definition(**json.loads(stdout.getvalue()))
    assert TASK.latest(sandbox, "api")[:3] == (10, "v5", False)


@pytest.mark.parametrize("fails", ["describe", "register"])
def test_a_restore_that_fails_is_a_lost_race_with_no_aws_error_text(
    sandbox: Sandbox, attacker: Sandbox, handler: ModuleType, fails: str
) -> None:
    """The deploy in between cannot be described (so it is unknown whether it is newer content), or its copy cannot be
    registered: HIGH, the family's latest named, the error's code only (AWS error texts can echo request content)."""
    source = TASK.params("api", "v1", privileged=True)
    arn = TASK.register(attacker, source)
    pipeline(TASK, attacker, "api", {(BEFORE, 1): ["v2"]})
    operation = "DescribeTaskDefinition" if fails == "describe" else "RegisterTaskDefinition"
    Fault(aws.client("ecs"), operation, "access-denied", 1, body="api:2")  # the first call about api:2
    result = invoke(handler, TASK.event(sandbox, source, arn))
    assert result["outcome"] == "remediated"
    assert TASK.latest(sandbox, "api")[:3] == (3, "v1", False)  # the stack's copy: nothing registered over it
    [note] = sandbox.inbox()
    assert note.payload["raceLost"] is True and note.payload["severity"] == "HIGH"
    assert "family latest not restored" in note.subject
    assert "AccessDeniedException" in note.payload["raceNote"] and "not authorized" not in json.dumps(note.payload)
    if fails == "describe":
        assert note.payload["buriedArn"] is None
        assert note.payload["raceNote"].startswith("what was registered below it could not be read")
        assert note.payload["raceStep"].startswith("aws ecs list-task-definitions --family-prefix api")
    else:
        assert note.payload["buriedArn"].endswith("api:2")
        assert "api:2 was not restored: registering its copy failed (AccessDeniedException)" in note.payload["raceNote"]
        assert "ecs-remediate fix" in note.payload["raceStep"]
    assert note.payload["raceStep"] in note.payload["nextCommands"]


# --- the sweep: --scope active --rollout copies an older revision a service uses ----------------------------------


@pytest.fixture
def swept(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The CLI's environment as the stack's; web:1 privileged, used by blue/web-old; web:2 compliant, the latest."""
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    ecs = sandbox.client("ecs")
    ecs.create_cluster(clusterName="blue")
    old = TASK.register(sandbox, TASK.params("web", "v1", privileged=True))
    TASK.register(sandbox, TASK.params("web", "v2"))
    ecs.create_service(cluster="blue", serviceName="web-old", taskDefinition=old, desiredCount=1)
    yield sandbox


def scan_with(
    monkeypatch: pytest.MonkeyPatch, attacker: Sandbox, plan: dict[tuple[str, int], list[str]]
) -> tuple[dict[str, dict[str, Any]], Pipeline]:
    """`ecs-remediate scan --scope active --remediate --rollout`, the pipeline hooked on the sweep's own client."""
    made: list[Pipeline] = []
    real = sweep.ecs_client

    def hooked(region: str | None, **kwargs: Any) -> Any:
        client = real(region, **kwargs)
        made.append(Pipeline(client, TASK.operation, lambda i: TASK.register(attacker, TASK.params("web", i)), plan))
        return client

    monkeypatch.setattr(sweep, "ecs_client", hooked)
    stdout, stderr = io.StringIO(), io.StringIO()
    main(["scan", "--output", "json", *FAST, "--scope", "active", "--remediate", "--rollout"], stdout, stderr)
    rows = {row["taskDefinitionArn"].rsplit("/", 1)[1]: row for row in json.loads(stdout.getvalue() or "[]")}
    [made_pipeline] = made
    return rows, made_pipeline


SWEEP_SCENARIOS: dict[str, tuple[dict[tuple[str, int], list[str]], int, str, str | None]] = {
    # The sweep's 1st registration is the fixed copy of web:1, its 2nd the restore of the latest, then re-checks.
    "before-the-copy": ({(BEFORE, 1): ["v3"]}, 5, "v3", None),  # 3 v3, 4 copy(web:1), 5 r(v3): never web:2's
    "before-the-restore": ({(BEFORE, 2): ["v3"]}, 6, "v3", None),  # 3 copy, 4 v3, 5 r(v2), 6 r(v3)
    "after-the-restore": ({(AFTER, 2): ["v3"]}, 5, "v3", None),  # 3 copy, 4 r(v2), 5 v3
    "before-every-registration": (
        {(BEFORE, n): [f"v{n + 2}"] for n in range(1, 5)},
        10,  # 3 v3, 4 copy, 5 v4, 6 r(v3), 7 v5, 8 r(v4), 9 v6, 10 r(v5): v6 (:9) is left below
        "v5",
        "v6",
    ),
}


@pytest.mark.parametrize("scenario", list(SWEEP_SCENARIOS))
def test_a_deploy_around_each_registration_of_the_sweep(
    swept: Sandbox, attacker: Sandbox, monkeypatch: pytest.MonkeyPatch, scenario: str
) -> None:
    plan, latest_revision, latest_image, buried_image = SWEEP_SCENARIOS[scenario]
    rows, deploys = scan_with(monkeypatch, attacker, plan)
    revision, image, privileged, _ = TASK.latest(swept, "web")
    assert (revision, image, privileged) == (latest_revision, latest_image, False)
    copy = rows["web:1"]["newTaskDefinitionArn"]
    [service] = swept.client("ecs").describe_services(cluster="blue", services=["web-old"])["services"]
    assert service["taskDefinition"] == copy  # moved onto the fixed copy of its own revision
    assert TASK.describe(swept, copy)[0]["containerDefinitions"][0]["image"] == "v1"
    action = rows["web:1"]["action"]
    if buried_image is None:
        assert "not restored" not in action
    else:
        ref = deploys.deployed[-1].rsplit("/", 1)[1]
        assert f"{ref} was not restored: still losing the race after {restore.MAX_RESTORES} restores" in action
        assert f"The family's latest is web:{revision}, older content than {ref}" in action
        assert f"aws ecs describe-task-definition --task-definition {ref} --include TAGS" in action


def test_the_repair_of_an_interrupted_sweep_is_re_checked_too(
    swept: Sandbox, attacker: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An earlier run stopped after its copy of web:1 (now the family's latest, a roll-back); the pipeline deploys
    during the repair's registration: the repair restores that deploy too."""
    marker = [{"key": MARKER, "value": "web:1"}]
    TASK.register(swept, TASK.params("web", "v1", tags=marker))  # web:3, the stack's copy of web:1 (registeredBy)
    rows, _ = scan_with(monkeypatch, attacker, {(BEFORE, 1): ["v3"]})
    # 4 v3, 5 r(v2) lands above it, re-checked: 6 r(v3)
    assert TASK.latest(swept, "web")[:3] == (6, "v3", False)
    assert "family latest restored as :6 (copy of web:4)" in rows["web:1"]["action"]
