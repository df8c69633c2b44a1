"""Issue 19, class 1 (and issue 10, finding 11): host access the verdict does not name. The policed developer
(RegisterTaskDefinition through their own assumed role) keeps the host without `privileged`: the host's root disk
through a Docker `local` volume (type and device, no bind), an overlay whose lowerdir is the host's `/`, writable
host paths no list names, devices, capabilities, namespaces, kernel parameters, security options. Each is driven
through the real handler and the real sweep on a moto server: the notice is read back from the SQS queue subscribed
to the topic, the sweep row from `ecs-remediate scan`, the copy from the emulator. No message may call such a copy
safe: each names what it keeps, with its level."""

from __future__ import annotations

import io
import json
from types import ModuleType
from typing import Any

import pytest
from test_handler import invoke, registrable

from conftest import SHARED_FIXTURES
from demo.sandbox import ACCOUNT, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.cli.main import main

ATTACKER = f"arn:aws:sts::{ACCOUNT}:assumed-role/Dev/mallory"
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]
EQ, ACCESS = "hostEquivalents", "hostAccess"  # the JSON fields of each level
SAFE_WORDS = ("safe", "no host access", "compliant", "all clear")


def local_volume(name: str, **driver_opts: str) -> dict[str, Any]:
    return {"name": name, "dockerVolumeConfiguration": {"scope": "task", "driver": "local", "driverOpts": driver_opts}}


def host_volume(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "host": {"sourcePath": path}}


def revision(family: str, volumes: list[dict[str, Any]], *, read_only: bool = False, **extra: Any) -> dict[str, Any]:
    """A privileged container that mounts every volume (at /h/<name>), plus `extra` container or task members."""
    task = {k: v for k, v in extra.items() if k in ("pidMode", "ipcMode", "networkMode")}
    members = {k: v for k, v in extra.items() if k not in task}
    mounts = [{"sourceVolume": v["name"], "containerPath": f"/h/{v['name']}", "readOnly": read_only} for v in volumes]
    container = {"name": "app", "image": "nginx:1", "memory": 64, "privileged": True, "mountPoints": mounts, **members}
    return {"family": family, "volumes": volumes, "containerDefinitions": [container], **task}


# (case id, RegisterTaskDefinition input, the JSON field it must appear in, the text it must appear as)
ROOT_DISK = [
    (
        "ext4-xvda1",
        revision("disk-a", [local_volume("root", type="ext4", device="/dev/xvda1")]),
        EQ,
        "app: docker volume root: ext4 /dev/xvda1",
    ),
    (
        "xfs-nvme-read-only",
        revision("disk-b", [local_volume("root", type="xfs", device="/dev/nvme0n1p1", o="ro")], read_only=True),
        EQ,
        "app: docker volume root: xfs /dev/nvme0n1p1",
    ),
    (
        "btrfs-no-driver-named",
        revision(
            "disk-c",
            [
                {
                    "name": "root",
                    "dockerVolumeConfiguration": {
                        "scope": "shared",
                        "autoprovision": True,
                        "driverOpts": {"type": "btrfs", "device": "/dev/sda"},
                    },
                }
            ],
        ),
        EQ,
        "app: docker volume root: btrfs /dev/sda",
    ),
    (
        "proc-filesystem",
        revision("disk-d", [local_volume("kernel", type="proc", device="proc")]),
        EQ,
        "app: docker volume kernel: proc",
    ),
]
OVERLAY = [
    (
        "lowerdir-root",
        revision(
            "ovl-a",
            [
                local_volume(
                    "o", type="overlay", device="overlay", o="lowerdir=/,upperdir=/var/tmp/u,workdir=/var/tmp/w"
                )
            ],
        ),
        EQ,
        "app: host path / (read-only)",
    ),
    (
        "root-behind-a-harmless-layer",
        revision("ovl-b", [local_volume("o", type="overlay", device="overlay", o="lowerdir=/usr/share/zoneinfo:/")]),
        EQ,
        "app: host path / (read-only)",
    ),
    (
        "lowerdir-etc-secrets",
        revision("ovl-c", [local_volume("o", type="overlay", device="overlay", o="lowerdir=/etc")]),
        EQ,
        "app: host path /etc (read-only)",
    ),
    (
        "upperdir-writes-the-host",
        revision(
            "ovl-d",
            [
                local_volume(
                    "o",
                    type="overlay",
                    device="overlay",
                    o="lowerdir=/usr/share/zoneinfo,upperdir=/etc/cron.d,workdir=/var/tmp/w",
                )
            ],
        ),
        EQ,
        "app: host path /etc/cron.d",
    ),
]
PATHS = [
    # writable host paths outside any list: root on the host
    ("opt-bin", revision("path-a", [host_volume("p", "/opt/bin")]), EQ, "app: host path /opt/bin"),
    ("kubelet", revision("path-b", [host_volume("p", "/var/lib/kubelet")]), EQ, "app: host path /var/lib/kubelet"),
    (
        "usr-local-sbin",
        revision("path-c", [host_volume("p", "/usr/local/sbin/")]),
        EQ,
        "app: host path /usr/local/sbin",
    ),
    ("cron-d", revision("path-d", [host_volume("p", "/etc/./cron.d")]), EQ, "app: host path /etc/cron.d"),
    (
        "bind-through-a-local-volume",
        revision("path-e", [local_volume("p", type="none", o="bind", device="/opt/bin")]),
        EQ,
        "app: host path /opt/bin",
    ),
    # read-only: named as host access (not root by itself), never left out
    (
        "opt-bin-read-only",
        revision("path-f", [host_volume("p", "/opt/bin")], read_only=True),
        ACCESS,
        "app: host path /opt/bin (read-only)",
    ),
    (
        "kubelet-read-only",
        revision("path-g", [host_volume("p", "/var/lib/kubelet")], read_only=True),
        ACCESS,
        "app: host path /var/lib/kubelet (read-only)",
    ),
    (
        "bind-ro-option",
        revision("path-h", [local_volume("p", type="none", o="bind,ro", device="/etc/cron.d")]),
        ACCESS,
        "app: host path /etc/cron.d (read-only)",
    ),
    # a socket no list names stays root read-only
    (
        "k3s-socket-read-only",
        revision("path-i", [host_volume("p", "/run/k3s/containerd/containerd.sock")], read_only=True),
        EQ,
        "app: host path /run/k3s/containerd/containerd.sock (read-only)",
    ),
]
CONFINEMENT = [
    (
        "devices",
        revision("conf-a", [], linuxParameters={"devices": [{"hostPath": "/dev/xvda"}]}),
        EQ,
        "app: device /dev/xvda",
    ),
    (
        "capability",
        revision("conf-b", [], linuxParameters={"capabilities": {"add": ["cap_sys_module"]}}),
        EQ,
        "app: capability SYS_MODULE",
    ),
    (
        "ptrace-with-host-pid",
        revision("conf-c", [], pidMode="host", linuxParameters={"capabilities": {"add": ["SYS_PTRACE"]}}),
        EQ,
        "app: capability SYS_PTRACE",
    ),
    (
        "capability-beyond-defaults",
        revision("conf-d", [], linuxParameters={"capabilities": {"add": ["NET_ADMIN"]}}),
        ACCESS,
        "app: capability NET_ADMIN",
    ),
    ("host-ipc", revision("conf-e", [], ipcMode="host"), ACCESS, "task: ipcMode host"),
    ("host-network", revision("conf-f", [], networkMode="host"), ACCESS, "task: networkMode host"),
    (
        "sysctl",
        revision("conf-g", [], systemControls=[{"namespace": "net.ipv4.ip_forward", "value": "1"}]),
        ACCESS,
        "app: systemControls net.ipv4.ip_forward",
    ),
    (
        "seccomp-off",
        revision("conf-h", [], dockerSecurityOptions=["Seccomp:Unconfined"]),
        ACCESS,
        "app: dockerSecurityOptions Seccomp:Unconfined",
    ),
    (
        "systempaths",
        revision("conf-i", [], dockerSecurityOptions=["systempaths=unconfined"]),
        EQ,
        "app: dockerSecurityOptions systempaths=unconfined",
    ),
    (
        "unrecognised-option",
        revision("conf-j", [], dockerSecurityOptions=["label=type:spc_t"]),
        ACCESS,
        "app: dockerSecurityOptions label=type:spc_t",
    ),
]
CASES = ROOT_DISK + OVERLAY + PATHS + CONFINEMENT


@pytest.fixture
def attacker(sandbox: Sandbox) -> Sandbox:
    return sandbox.as_principal("Dev", "mallory")


@pytest.fixture
def emails(handler: ModuleType) -> list[str]:
    """The email text of every notice the function publishes, read from its SNS Publish requests (SQS, a machine
    subscriber, gets the JSON)."""
    sent: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(json.loads(params["Message"])["email"])

    aws.client("sns").meta.events.register("provide-client-params.sns.Publish", record)
    return sent


def scan(*args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", *FAST, *args], stdout, stderr)
    return code, {row["taskDefinitionArn"]: row for row in json.loads(stdout.getvalue() or "[]")}, stderr.getvalue()


def never_safe(text: str) -> None:
    lowered = text.lower()
    assert not [word for word in SAFE_WORDS if word in lowered], text


@pytest.mark.parametrize(("params", "field", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_11_the_notice_and_the_sweep_row_name_the_host_access_a_fixed_copy_keeps(
    sandbox: Sandbox,
    attacker: Sandbox,
    handler: ModuleType,
    emails: list[str],
    monkeypatch: pytest.MonkeyPatch,
    params: dict[str, Any],
    field: str,
    text: str,
) -> None:
    response = attacker.register(params)
    arn = str(response["taskDefinition"]["taskDefinitionArn"])
    result = invoke(handler, sandbox.event_for(params, response, user_arn=ATTACKER))
    assert result["outcome"] == "remediated"

    [note] = sandbox.inbox()  # what a subscriber got
    assert text in note.payload[field], (note.payload["hostEquivalents"], note.payload["hostAccess"])
    other = ACCESS if field == EQ else EQ
    assert text not in note.payload[other]
    suffix = "; still host-equivalent" if note.payload["hostEquivalents"] else "; keeps host access"
    assert note.subject.endswith(suffix), note.subject
    [email] = emails
    assert email.startswith(note.subject)
    heading = "Host-root equivalents the revision still has" if field == EQ else "Host access the revision still has"
    assert heading in email and f"  - {text}\n" in email
    never_safe(note.subject + email)

    # the copy is faithful (only privileged changed), so it keeps the same host access: and says so in the sweep
    copy = sandbox.describe(result["new_task_definition_arn"])["taskDefinition"]
    source = sandbox.describe(arn)["taskDefinition"]
    assert copy["volumes"] == source["volumes"] and copy["containerDefinitions"][0]["privileged"] is False
    for name, value in sandbox.env(MODE="report").items():
        monkeypatch.setenv(name, value)
    _, rows, _ = scan("--scope", "active")
    assert text in rows[arn][field]
    assert rows[copy["taskDefinitionArn"]]["status"] == "PASS"
    assert text in rows[copy["taskDefinitionArn"]][field]  # a PASS that names what it keeps, never a bare one


def test_11_the_shared_agent_fixture_names_its_root_mount_and_docker_socket(
    sandbox: Sandbox, handler: ModuleType
) -> None:
    # the New Relic fixture mounts / (read-only) and the Docker socket into its privileged container
    params = registrable(SHARED_FIXTURES / "taskdefs" / "newrelic-nri-ecs__task_definition_example.json")
    result = invoke(handler, sandbox.event_for(params, sandbox.register(params)))
    assert result["outcome"] == "remediated"
    [note] = sandbox.inbox()
    assert note.payload[EQ] == [
        "newrelic-infra: host path / (read-only)",
        "newrelic-infra: host path /var/run/docker.sock",
    ]
    # the verdict reads Describe's answer (moto 5.2 answers awsvpc for this EC2 + EXTERNAL definition)
    described = sandbox.describe(result["task_definition_arn"])["taskDefinition"]
    network = ["task: networkMode host"] if described["networkMode"] == "host" else []
    assert note.payload[ACCESS] == network
    assert note.subject.endswith("still host-equivalent")
    copy = sandbox.describe(result["new_task_definition_arn"])["taskDefinition"]
    assert copy["volumes"] == sandbox.describe(result["task_definition_arn"])["taskDefinition"]["volumes"]


def test_11_a_daemon_copy_names_what_it_keeps(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import load_handler
    from demo.daemon_sandbox import call_event

    handler = load_handler(sandbox, monkeypatch)
    params = {
        "family": "sensor",
        "pidMode": "shared",
        "volumes": [
            {"name": "logs", "logDriverVolumeConfiguration": {"driver": "json-file"}},
            {"name": "bin", "host": {"sourcePath": "/usr/local/bin"}},
        ],
        "containerDefinitions": [
            {
                "name": "sensor",
                "image": "vendor/sensor:7",
                "privileged": True,
                "mountPoints": [
                    {"sourceVolume": "logs", "containerPath": "/logs", "readOnly": True},
                    {"sourceVolume": "bin", "containerPath": "/hostbin"},
                ],
                "linuxParameters": {"capabilities": {"add": ["SYS_PTRACE"]}},
                "systemControls": [{"namespace": "kernel.shmmax", "value": "1"}],
            }
        ],
    }
    arn = str(sandbox.client("ecs").register_daemon_task_definition(**params)["daemonTaskDefinitionArn"])
    event = call_event(
        sandbox, "RegisterDaemonTaskDefinition", params, {"daemonTaskDefinitionArn": arn}, user_arn=ATTACKER
    )
    result = invoke(handler, event)
    assert result["outcome"] == "remediated"
    [note] = sandbox.inbox()
    assert note.payload[EQ] == ["sensor: capability SYS_PTRACE", "sensor: host path /usr/local/bin"]
    assert note.payload[ACCESS] == [
        "task: pidMode shared",
        "sensor: systemControls kernel.shmmax",
        "sensor: log driver volume logs",
    ]
    assert note.subject.endswith("; still host-equivalent")
    never_safe(note.subject)
