"""Host-root equivalents (issue 10, finding 11): what still gives the host away once `privileged` is false.

Against the shared fixtures (real task definitions from agents that need the host) and the daemon fixtures, then
rule by rule, then hostile shapes and secrets under hypothesis.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import FUZZ, collect_secrets, json_values, mutated, scaled, seeded_register_inputs

from conftest import SHARED_FIXTURES, load_json
from ecs_remediate import hostroot
from ecs_remediate.hostroot import (
    MAX_NAME,
    MAX_PATH,
    MAX_RESULTS,
    HostEquivalent,
    host_equivalents,
    normalise_path,
    summary,
)

TASKDEFS = SHARED_FIXTURES / "taskdefs"
DAEMONS = SHARED_FIXTURES / "daemons"


def texts(task_definition: Any) -> list[str]:
    return [item.text for item in host_equivalents(task_definition)]


def mounting(source: str, *, read_only: bool | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    mount: dict[str, Any] = {"sourceVolume": "v", "containerPath": "/mnt"}
    if read_only is not None:
        mount["readOnly"] = read_only
    return {
        "family": "f",
        "volumes": [{"name": "v", "host": {"sourcePath": source}}],
        "containerDefinitions": [{"name": "app", "image": "x", "mountPoints": [mount], **(extra or {})}],
    }


def adding(*capabilities: str, drop: list[str] | None = None, **task: Any) -> dict[str, Any]:
    caps: dict[str, Any] = {"add": list(capabilities)}
    if drop is not None:
        caps["drop"] = drop
    container = {"name": "app", "image": "x", "linuxParameters": {"capabilities": caps}}
    return {"family": "f", "containerDefinitions": [container], **task}


# --- the shared fixtures ------------------------------------------------------------------------------------------

EXPECTED = {
    "newrelic-nri-ecs__task_definition_example.json": [
        "task: networkMode host",
        "newrelic-infra: host path / (read-only)",
        "newrelic-infra: host path /var/run/docker.sock",
    ],
    "sysdig-docs__ecs-on-ec2_kernel-module-driver.json": [
        "task: pidMode host",
        "task: networkMode host",
        *(
            f"{name}: {what}"
            for name in ("sysdig-agent", "sysdig-agent-kmodule")
            for what in (
                "host path /boot (read-only)",
                "host path /dev",
                "host path /proc (read-only)",
                "host path /var/run/docker.sock",
            )
        ),
    ],
    "aws-amazon-ecs-agent__add-drop-capabilities.json": ["exit: capability SYS_ADMIN"],
    "aws-amazon-ecs-agent__devices.json": ["exit: device /dev/xvda"],
}


@pytest.mark.parametrize("path", sorted(TASKDEFS.glob("*.json")), ids=lambda p: p.name)
def test_shared_taskdef_fixtures(path: Any) -> None:
    document = load_json(path)
    assert texts(document) == EXPECTED.get(path.name, [])


def test_sysdig_read_only_module_and_usr_mounts_are_lowered() -> None:
    # /lib/modules and /usr are mounted read-only there: reading them is harmless, so they are not listed.
    found = texts(load_json(TASKDEFS / "sysdig-docs__ecs-on-ec2_kernel-module-driver.json"))
    assert not [t for t in found if "/lib/modules" in t or "/usr" in t]


def test_appmesh_library_mounts_are_harmless_read_only_and_root_when_writable() -> None:
    document = load_json(TASKDEFS / "aws-amazon-ecs-agent__appmesh-plugin-validator.json")
    assert texts(document) == []  # /sbin, /lib, /lib64, /usr/lib, /usr/lib64, all read-only
    writable = copy.deepcopy(document)
    for mount in writable["containerDefinitions"][0]["mountPoints"]:
        mount["readOnly"] = False
    found = texts(writable)
    name = writable["containerDefinitions"][0]["name"]
    # /sbin and /lib are /usr/sbin and /usr/lib on the merged-/usr distributions ECS runs on
    assert found == [f"{name}: host path {p}" for p in ("/sbin", "/lib", "/lib64", "/usr/lib", "/usr/lib64")]


def test_security_sensor_daemon() -> None:
    document = load_json(DAEMONS / "crafted__security-sensor_privileged_register-input.json")
    found = host_equivalents(document)
    assert [i.text for i in found] == [
        "task: pidMode shared",  # a daemon's "shared" joins the host's PID namespace (botocore's model says so)
        "task: ipcMode shared",
        "sensor: capability SYS_PTRACE",  # host root with the host's PID namespace
    ]
    assert all(i.container is None for i in found[:2]) and found[2].container == "sensor"
    # /opt (mounted by both containers) is not a host-root path
    assert not [i for i in found if i.kind == "host-path"]


def test_log_router_daemon_describe_response_is_unwrapped_and_clean() -> None:
    document = load_json(DAEMONS / "crafted__log-router_compliant_describe-response.json")
    assert "daemonTaskDefinition" in document
    assert texts(document) == []  # /var/log read-only
    writable_root = copy.deepcopy(document)
    writable_root["daemonTaskDefinition"]["volumes"][0]["host"]["sourcePath"] = "/"
    assert texts(writable_root) == ["fluent-bit: host path / (read-only)"]


def test_describe_response_wrapper_is_unwrapped() -> None:
    inner = mounting("/var/run/docker.sock")
    assert texts({"taskDefinition": inner, "tags": []}) == texts(inner) == ["app: host path /var/run/docker.sock"]


# --- host paths ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reported"),
    [
        ("/var//run/./docker.sock/", "/var/run/docker.sock"),
        ("//var/run/docker.sock", "/var/run/docker.sock"),
        ("/tmp/../etc", "/etc"),
        ("/../../", "/"),
        ("///", "/"),
        ("/./", "/"),
        ("var/lib/docker", "/var/lib/docker"),  # relative: taken from / (conservative)
        ("/run/containerd/", "/run/containerd"),  # contains containerd.sock
        ("/var/run", "/var/run"),
        ("/run", "/run"),
        ("/var", "/var"),  # contains /var/lib/docker
        ("/run/crio/crio.sock", "/run/crio/crio.sock"),
        ("/var/run/crio/crio.sock", "/var/run/crio/crio.sock"),
        ("/run/containerd/containerd.sock", "/run/containerd/containerd.sock"),
        ("/proc/sys/kernel", "/proc/sys/kernel"),
        ("/sys/fs/cgroup", "/sys/fs/cgroup"),
        ("/lib/modules/", "/lib/modules"),
        ("/home/ec2-user/.ssh", "/home/ec2-user/.ssh"),
        ("/root/.aws", "/root/.aws"),
    ],
)
def test_paths_are_normalised_and_matched(source: str, reported: str) -> None:
    assert texts(mounting(source)) == [f"app: host path {reported}"]


@pytest.mark.parametrize(
    "source", ["/opt", "/var/log", "/tmp", "/data", "/dev/shm", "/dev/log", "/run/xtables.lock", "/etcetera", "/usrx"]
)
def test_paths_that_give_nothing_away(source: str) -> None:
    assert texts(mounting(source)) == []


# read-only: lowered where reading is harmless, kept where reading exposes secrets or a socket still answers
@pytest.mark.parametrize(
    ("source", "still_reported"),
    [
        ("/", True),  # host secrets and the runtime sockets
        ("/var/run/docker.sock", True),  # connect() ignores a read-only mount
        ("/run/containerd/containerd.sock", True),
        ("/run/dbus/system_bus_socket", True),
        ("/var/run", True),
        ("/proc", True),
        ("/sys", True),
        ("/dev", True),
        ("/etc", True),  # /etc/shadow, ecs.config
        ("/etc/ecs/ecs.config", True),
        ("/etc/shadow", True),
        ("/root", True),
        ("/boot", True),
        ("/var/lib/docker", True),  # other containers' environment values
        ("/var/lib/containerd", True),
        ("/etc/localtime", False),
        ("/etc/resolv.conf", False),
        ("/etc/pki/ca-trust", False),
        ("/lib/modules", False),
        ("/usr", False),
        ("/usr/share/zoneinfo", False),
        ("/home", False),
    ],
)
def test_read_only_decisions(source: str, still_reported: bool) -> None:
    found = host_equivalents(mounting(source, read_only=True))
    assert bool(found) is still_reported
    assert all(item.read_only for item in found)
    assert host_equivalents(mounting(source, read_only=False))  # every one of them is reported when writable


def test_volume_without_source_path_is_not_a_host_path() -> None:
    document = mounting("/")
    document["volumes"] = [{"name": "v", "host": {}}, {"name": "w"}]
    assert texts(document) == []


def test_a_host_volume_nobody_mounts_exposes_nothing() -> None:
    document = mounting("/")
    document["containerDefinitions"][0]["mountPoints"] = [{"sourceVolume": "other", "containerPath": "/x"}]
    assert texts(document) == []


def test_local_docker_volume_bind_is_a_host_path() -> None:
    document = mounting("/")
    document["volumes"] = [
        {
            "name": "v",
            "dockerVolumeConfiguration": {
                "scope": "task",
                "driver": "local",
                "driverOpts": {"type": "none", "o": "bind,ro", "device": "/var/run/docker.sock"},
            },
        }
    ]
    found = host_equivalents(document)
    assert [i.text for i in found] == ["app: host path /var/run/docker.sock (read-only)"]
    document["volumes"][0]["dockerVolumeConfiguration"]["driver"] = "rexray/ebs"  # another driver: not a bind
    assert texts(document) == []


def test_volumes_from_passes_host_paths_on() -> None:
    document = mounting("/var/run/docker.sock")
    document["volumes"].append({"name": "u", "host": {"sourcePath": "/usr"}})
    document["containerDefinitions"][0]["mountPoints"].append({"sourceVolume": "u", "containerPath": "/u"})
    document["containerDefinitions"] += [
        {"name": "b", "image": "x", "volumesFrom": [{"sourceContainer": "app"}]},
        {"name": "c", "image": "x", "volumesFrom": [{"sourceContainer": "b", "readOnly": True}]},
    ]
    assert texts(document) == [
        "app: host path /var/run/docker.sock",
        "app: host path /usr",
        "b: host path /var/run/docker.sock",
        "b: host path /usr",
        "c: host path /var/run/docker.sock (read-only)",  # a socket answers read-only; /usr read-only is harmless
    ]


def chain(count: int) -> dict[str, Any]:
    """app mounts / and takes from the last of `count` containers, each of which takes from the one before."""
    document = mounting("/")
    document["containerDefinitions"] += [
        {"name": f"c{i}", "image": "x", "volumesFrom": [{"sourceContainer": "app" if i == 0 else f"c{i - 1}"}]}
        for i in range(count)
    ]
    document["containerDefinitions"][0]["volumesFrom"] = [{"sourceContainer": f"c{count - 1}"}]  # a cycle
    return document


def test_volumes_from_through_a_cycle() -> None:
    found = host_equivalents(chain(150))
    assert [i.container for i in found] == ["app"] + [f"c{i}" for i in range(150)]
    assert {i.text.split(": ", 1)[1] for i in found} == {"host path /"}


def test_long_volumes_from_chains_are_cut_at_max_results() -> None:
    found = host_equivalents(chain(20_000))
    assert len(found) == MAX_RESULTS and found[-1].container == f"c{MAX_RESULTS - 2}"


def test_past_the_propagation_budget_every_taker_gets_every_mount_writable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostroot, "MAX_PROPAGATION", 1)
    document = chain(3)
    document["containerDefinitions"][0]["mountPoints"][0]["readOnly"] = True
    document["volumes"].append({"name": "u", "host": {"sourcePath": "/usr"}})
    document["containerDefinitions"][1]["mountPoints"] = [
        {"sourceVolume": "u", "containerPath": "/u", "readOnly": True}
    ]
    found = texts(document)
    # conservative: /usr, read-only where it is mounted, is writable for every container that takes volumes
    assert sorted(found) == sorted(f"{c}: host path {p}" for c in ("app", "c0", "c1", "c2") for p in ("/", "/usr"))


# --- capabilities -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("capability", ["SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "DAC_READ_SEARCH", "ALL"])
def test_host_root_capabilities(capability: str) -> None:
    assert texts(adding(capability)) == [f"app: capability {capability}"]


@pytest.mark.parametrize("spelling", ["sys_admin", "CAP_SYS_ADMIN", " cap_sys_admin "])
def test_capability_names_are_normalised_like_docker(spelling: str) -> None:
    assert texts(adding(spelling)) == ["app: capability SYS_ADMIN"]


def test_drop_does_not_undo_add() -> None:  # ECS: drop first, then add
    assert texts(adding("SYS_ADMIN", drop=["SYS_ADMIN", "ALL"])) == ["app: capability SYS_ADMIN"]


def test_add_all_counts_unless_every_dangerous_one_is_dropped() -> None:
    assert texts(adding("ALL", drop=["ALL"])) == ["app: capability ALL"]  # moby: drop ALL does not undo add ALL
    assert texts(adding("ALL", drop=["SYS_ADMIN"])) == ["app: capability ALL"]
    everything = ["SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "DAC_READ_SEARCH", "BPF"]
    assert texts(adding("ALL", drop=everything)) == []
    assert texts(adding("ALL", drop=everything, pidMode="host")) == ["task: pidMode host", "app: capability ALL"]


@pytest.mark.parametrize("capability", ["SYS_PTRACE", "SYS_BOOT"])
def test_pid_namespace_capabilities_count_with_the_hosts_pid_namespace_only(capability: str) -> None:
    assert texts(adding(capability)) == []  # Fargate allows SYS_PTRACE for the task's own processes
    assert texts(adding(capability, pidMode="task")) == []
    assert texts(adding(capability, pidMode="host")) == ["task: pidMode host", f"app: capability {capability}"]
    assert texts(adding(capability, pidMode="shared")) == ["task: pidMode shared", f"app: capability {capability}"]


def test_bpf_and_perfmon_count_as_a_pair() -> None:
    assert texts(adding("BPF")) == []
    assert texts(adding("PERFMON")) == []
    assert texts(adding("BPF", "PERFMON")) == ["app: capability BPF", "app: capability PERFMON"]


@pytest.mark.parametrize(
    "capability", ["DAC_OVERRIDE", "NET_ADMIN", "NET_RAW", "SYS_TIME", "MKNOD", "SETFCAP", "SYSLOG", "CHOWN"]
)
def test_capabilities_left_out(capability: str) -> None:
    # each is documented in docs/host-equivalents.md with the reason it is not host root on its own
    assert texts(adding(capability)) == []


def test_privileged_itself_is_not_listed() -> None:
    document = {"family": "f", "containerDefinitions": [{"name": "app", "image": "x", "privileged": True}]}
    assert host_equivalents(document) == []


# --- devices and namespaces ---------------------------------------------------------------------------------------


def with_devices(*host_paths: str) -> dict[str, Any]:
    devices = [{"hostPath": p, "containerPath": p, "permissions": ["read"]} for p in host_paths]
    return {"family": "f", "containerDefinitions": [{"name": "app", "linuxParameters": {"devices": devices}}]}


def test_devices() -> None:
    assert texts(with_devices("/dev/mem", "/dev/../dev/sda/", "/dev/kmsg")) == [
        "app: device /dev/mem",
        "app: device /dev/sda",
        "app: device /dev/kmsg",
    ]
    assert texts(with_devices("/dev/fuse", "/dev/net/tun", "/dev/nvidia0", "/dev/neuron0", "/dev/null")) == []


def test_namespace_modes() -> None:
    assert texts({"pidMode": "host", "ipcMode": "host", "networkMode": "host", "containerDefinitions": []}) == [
        "task: pidMode host",
        "task: ipcMode host",
        "task: networkMode host",
    ]
    assert texts({"pidMode": "task", "ipcMode": "none", "networkMode": "awsvpc", "containerDefinitions": []}) == []
    assert texts({"pidMode": "none", "ipcMode": "none", "containerDefinitions": []}) == []  # daemon defaults


def test_summary_for_a_notice_line() -> None:
    document = mounting("/var/run/docker.sock", extra={"linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}}})
    document["pidMode"] = "host"
    assert summary(host_equivalents(document)) == "pidMode host, SYS_ADMIN, /var/run/docker.sock"
    assert summary([]) == ""
    many = [HostEquivalent("app", "device", f"/dev/d{i}", "r") for i in range(9)]
    assert summary(many, max_items=2) == "/dev/d0, /dev/d1 and 7 more"


def test_text_is_safe_and_capped() -> None:
    document = mounting("/etc/" + "x" * 5_000 + "\n" + "line two")
    document["containerDefinitions"][0]["name"] = "evil\nFAKE: all clear " + "n" * 500
    (item,) = host_equivalents(document)
    assert "\n" not in item.text and item.text.isprintable()
    assert len(item.container or "") <= MAX_NAME and len(item.detail) <= MAX_PATH
    assert item.text.startswith("evil?FAKE")


# --- hostile shapes and secrets -----------------------------------------------------------------------------------


def check_output(found: Any) -> list[HostEquivalent]:
    assert isinstance(found, list) and len(found) <= MAX_RESULTS
    for item in found:
        assert isinstance(item, HostEquivalent)
        assert item.text.isprintable() and len(item.text) <= MAX_NAME + MAX_PATH + 40
    return found


BASES = [load_json(TASKDEFS / n) for n in EXPECTED] + [
    load_json(DAEMONS / "crafted__security-sensor_privileged_register-input.json")
]


@settings(FUZZ, max_examples=scaled(500))
@given(st.sampled_from(BASES).flatmap(lambda base: mutated(base, mutations=4)))
def test_hostile_mutations_never_raise(case: tuple[Any, Any]) -> None:
    document, _ = case
    check_output(host_equivalents(document))


@settings(FUZZ, max_examples=scaled(300))
@given(json_values)
def test_any_json_never_raises(value: Any) -> None:
    check_output(host_equivalents(value))
    check_output(host_equivalents({"containerDefinitions": [value], "volumes": value, "pidMode": value}))


@settings(FUZZ, max_examples=scaled(300))
@given(seeded_register_inputs())
def test_generated_task_definitions_never_leak_a_secret(params: dict[str, Any]) -> None:
    secrets = collect_secrets(params)  # environment values, secret references, repository credentials
    found = check_output(host_equivalents(params))
    out = json.dumps([vars(item) for item in found], ensure_ascii=False) + summary(found)
    assert not [s for s in secrets if s in out]


def test_huge_lists() -> None:
    size = 100_000
    container = {
        "name": "app",
        "mountPoints": [{"sourceVolume": f"v{i}", "containerPath": "/x"} for i in range(size)],
        "linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"] * size}, "devices": [{}] * size},
        "volumesFrom": [{"sourceContainer": "app"}] * size,
    }
    document = {
        "volumes": [{"name": f"v{i}", "host": {"sourcePath": "/"}} for i in range(size)],
        "containerDefinitions": [container, container],
    }
    found = check_output(host_equivalents(document))
    assert {i.text for i in found} == {"app: capability SYS_ADMIN", "app: host path /"}


def test_nothing_hides_behind_a_long_list() -> None:
    # the registrant pads lists so that the dangerous item comes last: every item is read
    padding = 50_000
    document = mounting("/var/run/docker.sock")
    document["volumes"] = [{"name": f"p{i}", "host": {"sourcePath": "/opt"}} for i in range(padding)] + document[
        "volumes"
    ]
    container = document["containerDefinitions"][0]
    container["mountPoints"] = [
        {"sourceVolume": f"p{i}", "containerPath": f"/p{i}"} for i in range(padding)
    ] + container["mountPoints"]
    container["linuxParameters"] = {
        "capabilities": {"add": ["CHOWN"] * padding + ["SYS_ADMIN"]},
        "devices": [{"hostPath": "/dev/null"}] * padding + [{"hostPath": "/dev/nvme0n1"}],
    }
    assert texts(document) == [
        "app: capability SYS_ADMIN",
        "app: host path /var/run/docker.sock",
        "app: device /dev/nvme0n1",
    ]


def test_normalise_path() -> None:
    assert normalise_path("") == "/"
    assert normalise_path("/a/b/../../../c/") == "/c"
    assert normalise_path("etc//./ssh/") == "/etc/ssh"
