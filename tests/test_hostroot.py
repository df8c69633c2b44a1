"""Host access (issue 10, finding 11; issue 19, class 1): everything that still reaches the host once `privileged` is
false, named with its level (`host-equivalent`: root on the host; `host-access`: review it).

The model is inverted: what is not on a short, documented list of harmless things is named. Against the shared
fixtures and the daemon fixtures, then rule by rule (host paths inside and outside any list, Docker volume drivers
and options, devices, capabilities, namespaces, kernel parameters, security options), then hostile shapes and
secrets under hypothesis.
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
from ecs_remediate.core import hostroot, hostroot_paths
from ecs_remediate.core.hostroot import (
    DEFAULT_CAPABILITIES,
    HOST_ACCESS,
    HOST_EQUIVALENT,
    MAX_NAME,
    MAX_PATH,
    MAX_RESULTS,
    HostEquivalent,
    host_equivalents,
    normalise_path,
    security_option,
    summary,
)
from ecs_remediate.core.hostroot_paths import HARMLESS_READ_ONLY

TASKDEFS = SHARED_FIXTURES / "taskdefs"
DAEMONS = SHARED_FIXTURES / "daemons"
EQ, ACCESS = HOST_EQUIVALENT, HOST_ACCESS


def texts(task_definition: Any) -> list[str]:
    return [item.text for item in host_equivalents(task_definition)]


def judged(task_definition: Any) -> list[tuple[str, str]]:
    return [(item.level, item.text) for item in host_equivalents(task_definition)]


def mounting(source: str, *, read_only: bool | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    mount: dict[str, Any] = {"sourceVolume": "v", "containerPath": "/mnt"}
    if read_only is not None:
        mount["readOnly"] = read_only
    return {
        "family": "f",
        "volumes": [{"name": "v", "host": {"sourcePath": source}}],
        "containerDefinitions": [{"name": "app", "image": "x", "mountPoints": [mount], **(extra or {})}],
    }


def docker_volume(config: dict[str, Any], *, read_only: bool = False) -> dict[str, Any]:
    document = mounting("/unused", read_only=read_only)
    document["volumes"] = [{"name": "v", "dockerVolumeConfiguration": config}]
    return document


def adding(*capabilities: str, drop: list[str] | None = None, **task: Any) -> dict[str, Any]:
    caps: dict[str, Any] = {"add": list(capabilities)}
    if drop is not None:
        caps["drop"] = drop
    container = {"name": "app", "image": "x", "linuxParameters": {"capabilities": caps}}
    return {"family": "f", "containerDefinitions": [container], **task}


def with_container(**members: Any) -> dict[str, Any]:
    return {"family": "f", "containerDefinitions": [{"name": "app", "image": "x", **members}]}


# --- the shared fixtures ------------------------------------------------------------------------------------------

SYSDIG = [
    *(
        (EQ, f"{name}: {what}")
        for name in ("sysdig-agent", "sysdig-agent-kmodule")
        for what in (
            "host path /boot (read-only)",
            "host path /dev",
            "host path /proc (read-only)",
            "host path /var/run/docker.sock",
        )
    ),
    (ACCESS, "task: pidMode host"),
    (ACCESS, "task: networkMode host"),
    *(
        (ACCESS, f"{name}: host path {path} (read-only)")
        for name in ("sysdig-agent", "sysdig-agent-kmodule")
        for path in ("/lib/modules", "/usr")
    ),
]
EXPECTED = {
    "newrelic-nri-ecs__task_definition_example.json": [
        (EQ, "newrelic-infra: host path / (read-only)"),
        (EQ, "newrelic-infra: host path /var/run/docker.sock"),
        (ACCESS, "task: networkMode host"),
    ],
    "sysdig-docs__ecs-on-ec2_kernel-module-driver.json": SYSDIG,
    "aws-amazon-ecs-agent__add-drop-capabilities.json": [(EQ, "exit: capability SYS_ADMIN")],
    "aws-amazon-ecs-agent__devices.json": [(EQ, "exit: device /dev/xvda")],
    # read-only system libraries: not root, but the host's files; named (the old deny-list left them out)
    "aws-amazon-ecs-agent__appmesh-plugin-validator.json": [
        (ACCESS, f"app-mesh: host path {p} (read-only)") for p in ("/sbin", "/lib", "/lib64", "/usr/lib", "/usr/lib64")
    ],
}


@pytest.mark.parametrize("path", sorted(TASKDEFS.glob("*.json")), ids=lambda p: p.name)
def test_shared_taskdef_fixtures(path: Any) -> None:
    assert judged(load_json(path)) == EXPECTED.get(path.name, [])


def test_appmesh_library_mounts_are_root_when_writable() -> None:
    writable = copy.deepcopy(load_json(TASKDEFS / "aws-amazon-ecs-agent__appmesh-plugin-validator.json"))
    for mount in writable["containerDefinitions"][0]["mountPoints"]:
        mount["readOnly"] = False
    name = writable["containerDefinitions"][0]["name"]
    # /sbin and /lib are /usr/sbin and /usr/lib on the merged-/usr distributions ECS runs on
    assert judged(writable) == [
        (EQ, f"{name}: host path {p}") for p in ("/sbin", "/lib", "/lib64", "/usr/lib", "/usr/lib64")
    ]


def test_security_sensor_daemon() -> None:
    document = load_json(DAEMONS / "crafted__security-sensor_privileged_register-input.json")
    found = host_equivalents(document)
    assert [(i.level, i.text) for i in found] == [
        (EQ, "init-container: host path /opt"),  # writable: a host path outside any list is named
        (EQ, "sensor: capability SYS_PTRACE"),  # host root with the host's PID namespace
        (ACCESS, "task: pidMode shared"),  # a daemon's "shared" joins the host's PID namespace (botocore's model)
        (ACCESS, "task: ipcMode shared"),
        (ACCESS, "sensor: host path /opt (read-only)"),
    ]
    assert found[2].container is None and found[1].container == "sensor"


def test_log_router_daemon_describe_response_is_unwrapped() -> None:
    document = load_json(DAEMONS / "crafted__log-router_compliant_describe-response.json")
    assert "daemonTaskDefinition" in document
    assert judged(document) == [(ACCESS, "fluent-bit: host path /var/log (read-only)")]
    writable_root = copy.deepcopy(document)
    writable_root["daemonTaskDefinition"]["volumes"][0]["host"]["sourcePath"] = "/"
    assert judged(writable_root) == [(EQ, "fluent-bit: host path / (read-only)")]


def test_describe_response_wrapper_is_unwrapped() -> None:
    inner = mounting("/var/run/docker.sock")
    assert texts({"taskDefinition": inner, "tags": []}) == texts(inner) == ["app: host path /var/run/docker.sock"]


# --- daemon shapes ------------------------------------------------------------------------------------------------


def test_daemon_shapes() -> None:
    daemon = {
        "family": "agent",
        "pidMode": "shared",
        "ipcMode": "none",
        "volumes": [
            {"name": "logs", "logDriverVolumeConfiguration": {"driver": "json-file"}},
            {"name": "state", "host": {"sourcePath": "/var/lib/agent"}},
            {"name": "unused-logs", "logDriverVolumeConfiguration": {"driver": "json-file"}},
        ],
        "containerDefinitions": [
            {
                "name": "agent",
                "image": "x",
                "mountPoints": [
                    {"sourceVolume": "logs", "containerPath": "/logs", "readOnly": True},
                    {"sourceVolume": "state", "containerPath": "/state"},
                ],
                "systemControls": [{"namespace": "net.core.somaxconn", "value": "4096"}],
                "linuxParameters": {"capabilities": {"add": ["SYS_PTRACE", "NET_ADMIN"]}, "devices": []},
            }
        ],
    }
    assert judged({"daemonTaskDefinition": daemon}) == [
        (EQ, "agent: capability SYS_PTRACE"),
        (EQ, "agent: host path /var/lib/agent"),
        (ACCESS, "task: pidMode shared"),
        (ACCESS, "agent: capability NET_ADMIN"),
        (ACCESS, "agent: systemControls net.core.somaxconn"),
        (ACCESS, "agent: log driver volume logs"),  # other tasks' log files; the unmounted one reaches nothing
    ]
    daemon["pidMode"] = "none"
    assert (ACCESS, "agent: capability SYS_PTRACE") in judged(daemon)  # its own PID namespace: not root


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
        ("/run/containerd/", "/run/containerd"),
        ("/lib/modules/", "/lib/modules"),
        ("/opt/bin/", "/opt/bin"),
    ],
)
def test_paths_are_normalised(source: str, reported: str) -> None:
    assert judged(mounting(source)) == [(EQ, f"app: host path {reported}")]


# (path, level read-only, level writable). None: not named. Paths outside any list are named too.
PATHS = [
    # the whole host, sockets (connect(2) ignores a read-only mount), kernel interfaces, secrets
    ("/", EQ, EQ),
    ("/var/run/docker.sock", EQ, EQ),
    ("/run/containerd/containerd.sock", EQ, EQ),
    ("/run/dbus/system_bus_socket", EQ, EQ),
    ("/run/k3s/containerd/containerd.sock", EQ, EQ),  # a socket no list names: /run, and its name
    ("/var/snap/lxd/common/lxd/unix.socket", EQ, EQ),  # outside /run: by its name
    ("/var/lib/kubelet/pod-resources/kubelet.sock", EQ, EQ),
    ("/run/xtables.lock", EQ, EQ),  # under /run: read-only is named as a socket might be (conservative)
    ("/var/run", EQ, EQ),
    ("/var", EQ, EQ),  # contains /var/lib/docker and /var/run
    ("/proc", EQ, EQ),
    ("/proc/sys/kernel", EQ, EQ),
    ("/sys", EQ, EQ),
    ("/sys/fs/cgroup", EQ, EQ),
    ("/dev", EQ, EQ),
    ("/etc", EQ, EQ),  # contains /etc/shadow and ecs.config
    ("/etc/pki", EQ, EQ),  # contains the TLS keys
    ("/etc/ecs/ecs.config", EQ, EQ),
    ("/etc/shadow", EQ, EQ),
    ("/root", EQ, EQ),
    ("/root/.aws", EQ, EQ),
    ("/boot", EQ, EQ),
    ("/var/lib/docker", EQ, EQ),
    ("/var/lib/containerd", EQ, EQ),
    # root executes or trusts them: root when writable, the host's files when read-only
    ("/etc/cron.d", ACCESS, EQ),
    ("/etc/sudoers.d", ACCESS, EQ),
    ("/etc/systemd/system", ACCESS, EQ),
    ("/usr", ACCESS, EQ),
    ("/lib/modules", ACCESS, EQ),
    ("/home", ACCESS, EQ),
    ("/home/ec2-user/.ssh", ACCESS, EQ),
    # outside any list: named all the same (a list of dangerous paths is never complete)
    ("/opt/bin", ACCESS, EQ),
    ("/opt", ACCESS, EQ),
    ("/var/lib/kubelet", ACCESS, EQ),
    ("/usr/local/sbin", ACCESS, EQ),
    ("/usr/local/bin", ACCESS, EQ),
    ("/var/lib/ecs", ACCESS, EQ),
    ("/var/log", ACCESS, EQ),
    ("/var/spool/cron", ACCESS, EQ),
    ("/etc/resolv.conf", ACCESS, EQ),
    ("/etc/hosts", ACCESS, EQ),
    ("/tmp", ACCESS, EQ),
    ("/data", ACCESS, EQ),
    ("/dev/shm", ACCESS, EQ),
    ("/etcetera", ACCESS, EQ),
    ("/usr/share", ACCESS, EQ),  # contains zoneinfo, but more than it
    ("/ETC/LOCALTIME", ACCESS, EQ),  # another path: Linux paths are case-sensitive
    ("C:\\ProgramData\\Amazon\\ECS", ACCESS, EQ),  # a Windows path: named like any other
    # the allow-list: harmless read-only, root when writable
    ("/etc/localtime", None, EQ),
    ("/etc/timezone", None, EQ),
    ("/usr/share/zoneinfo", None, EQ),
    ("/usr/share/zoneinfo/Europe/Paris", None, EQ),
    ("/etc/pki/ca-trust", None, EQ),
    ("/etc/pki/ca-trust/extracted/pem", None, EQ),
    ("/etc/pki/tls/certs", None, EQ),
    ("/etc/ssl/certs", None, EQ),
    ("/etc/ssl/certs/ca-certificates.crt", None, EQ),
    ("/etc/./ssl/../ssl/certs/", None, EQ),
]


@pytest.mark.parametrize(("source", "read_only", "writable"), PATHS, ids=[p for p, _, _ in PATHS])
def test_every_host_path_is_named_unless_harmless_read_only(
    source: str, read_only: str | None, writable: str | None
) -> None:
    ro = host_equivalents(mounting(source, read_only=True))
    assert [i.level for i in ro] == ([read_only] if read_only else [])
    assert all(i.read_only and i.kind == "host-path" for i in ro)
    rw = host_equivalents(mounting(source, read_only=False))
    assert [i.level for i in rw] == [writable]
    assert not rw[0].read_only and rw[0].text == f"app: host path {normalise_path(source)}"
    assert host_equivalents(mounting(source)) == rw  # readOnly absent: writable (Docker's default)


def test_the_allow_list_is_short_and_every_entry_is_tested() -> None:
    assert len(HARMLESS_READ_ONLY) <= 8
    tested = {normalise_path(p) for p, ro, _ in PATHS if ro is None}
    assert set(HARMLESS_READ_ONLY) <= tested
    for path, why in HARMLESS_READ_ONLY.items():
        assert why and path == normalise_path(path)


def test_volume_without_source_path_is_not_a_host_path() -> None:
    document = mounting("/")
    document["volumes"] = [{"name": "v", "host": {}}, {"name": "w"}, {"name": "v2", "efsVolumeConfiguration": {}}]
    assert texts(document) == []


def test_a_host_volume_nobody_mounts_reaches_nothing() -> None:
    document = mounting("/")
    document["containerDefinitions"][0]["mountPoints"] = [{"sourceVolume": "other", "containerPath": "/x"}]
    assert texts(document) == []


def test_volumes_from_passes_host_paths_on() -> None:
    document = mounting("/var/run/docker.sock")
    document["volumes"].append({"name": "u", "host": {"sourcePath": "/usr"}})
    document["containerDefinitions"][0]["mountPoints"].append({"sourceVolume": "u", "containerPath": "/u"})
    document["containerDefinitions"] += [
        {"name": "b", "image": "x", "volumesFrom": [{"sourceContainer": "app"}]},
        {"name": "c", "image": "x", "volumesFrom": [{"sourceContainer": "b", "readOnly": True}]},
    ]
    assert judged(document) == [
        (EQ, "app: host path /var/run/docker.sock"),
        (EQ, "app: host path /usr"),
        (EQ, "b: host path /var/run/docker.sock"),
        (EQ, "b: host path /usr"),
        (EQ, "c: host path /var/run/docker.sock (read-only)"),  # a socket answers read-only
        (ACCESS, "c: host path /usr (read-only)"),
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


def test_long_volumes_from_chains_are_cut_at_max_results_and_say_so() -> None:
    found = host_equivalents(chain(20_000))
    assert len(found) == MAX_RESULTS and found[-2].container == f"c{MAX_RESULTS - 3}"
    assert found[-1].kind == "truncated" and found[-1].level == EQ
    assert found[-1].text == f"task: not listed: {20_001 - (MAX_RESULTS - 1)} more"


def test_host_equivalent_items_never_hide_behind_host_access_past_the_cap() -> None:
    document = mounting("/var/run/docker.sock")
    document["volumes"] += [{"name": f"p{i}", "host": {"sourcePath": f"/opt/p{i}"}} for i in range(1_000)]
    container = document["containerDefinitions"][0]
    container["mountPoints"] = [
        {"sourceVolume": f"p{i}", "containerPath": f"/p{i}", "readOnly": True} for i in range(1_000)
    ] + container["mountPoints"]
    found = host_equivalents(document)
    assert len(found) == MAX_RESULTS
    assert found[0].text == "app: host path /var/run/docker.sock" and found[0].level == EQ
    assert found[-1].text == "task: not listed: 802 more" and found[-1].level == ACCESS


def test_past_the_propagation_budget_every_taker_gets_every_mount_writable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostroot_paths, "MAX_PROPAGATION", 1)
    document = chain(3)
    document["containerDefinitions"][0]["mountPoints"][0]["readOnly"] = True
    document["volumes"].append({"name": "u", "host": {"sourcePath": "/usr"}})
    document["containerDefinitions"][1]["mountPoints"] = [
        {"sourceVolume": "u", "containerPath": "/u", "readOnly": True}
    ]
    found = judged(document)
    # conservative: /usr, read-only where it is mounted, is writable for every container that takes volumes
    assert sorted(found) == sorted(
        (EQ, f"{c}: host path {p}") for c in ("app", "c0", "c1", "c2") for p in ("/", "/usr")
    )


# --- Docker volumes -----------------------------------------------------------------------------------------------

DISK = "the host's root mounts a device"
VOLUMES = [
    # a bind mount under another name, read-only through `o`
    (
        {"driver": "local", "driverOpts": {"type": "none", "o": "bind", "device": "/opt/bin"}},
        False,
        [(EQ, "app: host path /opt/bin")],
    ),
    (
        {"driverOpts": {"type": "none", "o": "bind,ro", "device": "/opt/bin"}},
        False,
        [(ACCESS, "app: host path /opt/bin (read-only)")],
    ),
    (
        {"driverOpts": {"type": "none", "o": "rbind,ro", "device": "/var/run/docker.sock"}},
        False,
        [(EQ, "app: host path /var/run/docker.sock (read-only)")],
    ),
    ({"driverOpts": {"type": "ext4", "o": "bind", "device": "/etc/localtime"}}, True, []),  # bind whatever the type
    # the host's root disk, no bind at all
    (
        {"driver": "local", "driverOpts": {"type": "ext4", "device": "/dev/xvda1"}},
        False,
        [(EQ, "app: docker volume v: ext4 /dev/xvda1")],
    ),
    (
        {"driverOpts": {"type": "xfs", "device": "/dev/nvme0n1p1", "o": "ro"}},
        True,
        [(EQ, "app: docker volume v: xfs /dev/nvme0n1p1")],
    ),
    ({"driverOpts": {"type": "btrfs", "device": "/dev/sda"}}, True, [(EQ, "app: docker volume v: btrfs /dev/sda")]),
    ({"driverOpts": {"Type": "EXT4", "Device": "/dev/xvda1"}}, False, [(EQ, "app: docker volume v: ext4 /dev/xvda1")]),
    # kernel filesystems mounted by the host's root
    ({"driverOpts": {"type": "proc", "device": "proc"}}, False, [(EQ, "app: docker volume v: proc")]),
    (
        {"driverOpts": {"type": "cgroup", "device": "cgroup", "o": "rdma"}},
        False,
        [(EQ, "app: docker volume v: cgroup")],
    ),
    ({"driverOpts": {"device": "/dev/xvda1"}}, False, [(EQ, "app: docker volume v: no type /dev/xvda1")]),
    # an overlay whose layers are host paths: lowerdir read-only, upperdir and workdir writable
    (
        {"driverOpts": {"type": "overlay", "device": "overlay", "o": "lowerdir=/,upperdir=/tmp/u,workdir=/tmp/w"}},
        False,
        [(EQ, "app: host path / (read-only)"), (EQ, "app: host path /tmp/u"), (EQ, "app: host path /tmp/w")],
    ),
    (
        {"driverOpts": {"type": "overlay", "device": "overlay", "o": "lowerdir=/usr/share/zoneinfo:/etc/cron.d"}},
        False,
        [(ACCESS, "app: host path /etc/cron.d (read-only)")],
    ),
    (  # Linux 6.8's appended layers are layers too
        {"driverOpts": {"type": "overlay", "device": "overlay", "o": "lowerdir=/usr/share/zoneinfo,lowerdir+=/"}},
        False,
        [(EQ, "app: host path / (read-only)")],
    ),
    (  # an option this does not know that names a path: the overlay as a whole, conservatively
        {"driverOpts": {"type": "overlay", "device": "overlay", "o": "lowerdir=/usr/share/zoneinfo,newdir=/"}},
        False,
        [(EQ, "app: docker volume v: overlay")],
    ),
    (
        {"driverOpts": {"type": "overlay", "device": "overlay", "o": "lowerdir=/a\\:b"}},
        False,
        [(EQ, "app: docker volume v: overlay")],
    ),
    ({"driverOpts": {"type": "overlay", "device": "overlay"}}, False, [(EQ, "app: docker volume v: overlay")]),
    # network shares: the host mounts them with its own identity; the options (a CIFS password) are never shown
    (
        {"driverOpts": {"type": "nfs", "o": "addr=10.0.0.5,rw", "device": ":/exports"}},
        False,
        [(ACCESS, "app: docker volume v: nfs")],
    ),
    (
        {"driverOpts": {"type": "nfs4", "o": "addr=10.0.0.5", "device": ":/"}},
        True,
        [(ACCESS, "app: docker volume v: nfs4")],
    ),
    (
        {"driverOpts": {"type": "cifs", "o": "username=u,password=hunter2", "device": "//fs/share"}},
        False,
        [(ACCESS, "app: docker volume v: cifs")],
    ),
    # harmless: memory, a Docker-managed directory, a quota
    ({"driverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=100m,uid=1000"}}, False, []),
    ({"driver": "local"}, False, []),
    ({"driver": "local", "driverOpts": {"size": "10G"}}, False, []),
    ({"scope": "shared", "autoprovision": True}, False, []),
    ({"driver": "", "driverOpts": {}}, False, []),
    # other drivers: a plugin, root on the host, mounts what its options say
    (
        {"driver": "rexray/ebs", "driverOpts": {"volumetype": "gp2"}},
        False,
        [(ACCESS, "app: docker volume v: driver rexray/ebs")],
    ),
    (
        {"driver": "local-persist", "driverOpts": {"mountpoint": "/"}},
        True,
        [(ACCESS, "app: docker volume v: driver local-persist")],
    ),
    ({"driver": 7}, False, [(ACCESS, "app: docker volume v: driver 7")]),
]


@pytest.mark.parametrize(("config", "read_only", "expected"), VOLUMES)
def test_docker_volumes(config: dict[str, Any], read_only: bool, expected: list[tuple[str, str]]) -> None:
    assert judged(docker_volume(config, read_only=read_only)) == expected


def test_docker_volume_options_never_reach_the_text() -> None:
    document = docker_volume({"driverOpts": {"type": "cifs", "o": "password=SECRET-x,user=u", "device": "//h/s"}})
    document["volumes"].append(
        {"name": "w", "dockerVolumeConfiguration": {"driverOpts": {"type": "SECRET-y", "device": "SECRET-z"}}}
    )
    document["containerDefinitions"][0]["mountPoints"].append({"sourceVolume": "w", "containerPath": "/w"})
    found = host_equivalents(document)
    assert [i.text for i in found] == ["app: docker volume w: secret-y", "app: docker volume v: cifs"]
    assert "SECRET-x" not in json.dumps([vars(i) for i in found]) and "SECRET-z" not in json.dumps(
        [vars(i) for i in found]
    )


def test_a_docker_volume_nobody_mounts_reaches_nothing() -> None:
    document = docker_volume({"driverOpts": {"type": "ext4", "device": "/dev/xvda1"}})
    document["containerDefinitions"][0]["mountPoints"] = []
    assert texts(document) == []
    document["containerDefinitions"].append({"name": "b", "volumesFrom": [{"sourceContainer": "app"}]})
    assert texts(document) == []
    document["containerDefinitions"][0]["mountPoints"] = [{"sourceVolume": "v", "containerPath": "/v"}]
    assert texts(document) == ["app: docker volume v: ext4 /dev/xvda1", "b: docker volume v: ext4 /dev/xvda1"]


# --- capabilities -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("capability", ["SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "DAC_READ_SEARCH", "ALL"])
def test_host_root_capabilities(capability: str) -> None:
    assert judged(adding(capability)) == [(EQ, f"app: capability {capability}")]


@pytest.mark.parametrize("spelling", ["sys_admin", "CAP_SYS_ADMIN", " cap_sys_admin "])
def test_capability_names_are_normalised_like_docker(spelling: str) -> None:
    assert texts(adding(spelling)) == ["app: capability SYS_ADMIN"]


def test_drop_does_not_undo_add() -> None:  # ECS: drop first, then add
    assert texts(adding("SYS_ADMIN", drop=["SYS_ADMIN", "ALL"])) == ["app: capability SYS_ADMIN"]


@pytest.mark.parametrize("capability", sorted(DEFAULT_CAPABILITIES))
def test_dockers_default_capabilities_are_not_named(capability: str) -> None:
    assert texts(adding(capability)) == []
    assert len(DEFAULT_CAPABILITIES) == 14


@pytest.mark.parametrize(
    "capability",
    [
        "NET_ADMIN",
        "SYS_TIME",
        "SYSLOG",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "SYS_RESOURCE",
        "IPC_LOCK",
        "LEASE",
        "AUDIT_CONTROL",
        "SYS_NICE",
        "WAKE_ALARM",
        "CHECKPOINT_RESTORE",
        "NET_BROADCAST",
        "LINUX_IMMUTABLE",
    ],
)
def test_every_capability_beyond_the_default_set_is_host_access(capability: str) -> None:
    [item] = host_equivalents(adding(capability))
    assert (item.level, item.text) == (ACCESS, f"app: capability {capability}") and item.reason


def test_an_unknown_capability_is_named() -> None:
    assert judged(adding("FUTURE_THING", "")) == [(ACCESS, "app: capability FUTURE_THING")]


def test_add_all_is_named_at_the_level_of_what_remains() -> None:
    assert judged(adding("ALL", drop=["ALL"])) == [(EQ, "app: capability ALL")]  # drop ALL does not undo add ALL
    assert judged(adding("ALL", drop=["SYS_ADMIN"])) == [(EQ, "app: capability ALL")]
    roots = ["SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "DAC_READ_SEARCH", "BPF"]
    assert judged(adding("ALL", drop=roots)) == [(ACCESS, "app: capability ALL")]  # SYS_TIME, NET_ADMIN, ... remain
    assert judged(adding("ALL", drop=roots, pidMode="host")) == [
        (EQ, "app: capability ALL"),
        (ACCESS, "task: pidMode host"),
    ]
    beyond = sorted(hostroot.EVERY_CAPABILITY - DEFAULT_CAPABILITIES)
    assert texts(adding("ALL", drop=beyond)) == []  # only Docker's defaults remain


@pytest.mark.parametrize("capability", ["SYS_PTRACE", "SYS_BOOT"])
def test_pid_namespace_capabilities_are_root_with_the_hosts_pid_namespace_only(capability: str) -> None:
    assert judged(adding(capability)) == [(ACCESS, f"app: capability {capability}")]  # Fargate allows SYS_PTRACE
    assert judged(adding(capability, pidMode="task")) == [(ACCESS, f"app: capability {capability}")]
    assert judged(adding(capability, pidMode="host")) == [
        (EQ, f"app: capability {capability}"),
        (ACCESS, "task: pidMode host"),
    ]
    assert judged(adding(capability, pidMode="shared"))[0] == (EQ, f"app: capability {capability}")


def test_bpf_and_perfmon_are_root_as_a_pair() -> None:
    assert judged(adding("BPF")) == [(ACCESS, "app: capability BPF")]
    assert judged(adding("PERFMON")) == [(ACCESS, "app: capability PERFMON")]
    assert judged(adding("BPF", "PERFMON")) == [(EQ, "app: capability BPF"), (EQ, "app: capability PERFMON")]


def test_privileged_itself_is_not_listed() -> None:
    assert host_equivalents(with_container(privileged=True)) == []


# --- devices, namespaces, kernel parameters, security options ------------------------------------------------------


def with_devices(*host_paths: str) -> dict[str, Any]:
    devices = [{"hostPath": p, "containerPath": p, "permissions": ["read"]} for p in host_paths]
    return with_container(linuxParameters={"devices": devices})


def test_devices() -> None:
    assert judged(with_devices("/dev/mem", "/dev/../dev/sda/", "/dev/kmsg", "/dev/xvda1", "/dev/port")) == [
        (EQ, "app: device /dev/mem"),
        (EQ, "app: device /dev/sda"),
        (EQ, "app: device /dev/kmsg"),
        (EQ, "app: device /dev/xvda1"),
        (EQ, "app: device /dev/port"),
    ]
    assert judged(with_devices("/dev/nvidia0", "/dev/dri/card0", "/dev/neuron0", "/dev/infiniband/uverbs0")) == [
        (ACCESS, f"app: device {p}")
        for p in ("/dev/nvidia0", "/dev/dri/card0", "/dev/neuron0", "/dev/infiniband/uverbs0")
    ]
    harmless = (
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        "/dev/fuse",
        "/dev/net/tun",
    )
    assert texts(with_devices(*harmless)) == []
    assert judged(with_devices("/dev/null2", "/dev/tty0")) == [
        (EQ, "app: device /dev/null2"),
        (EQ, "app: device /dev/tty0"),
    ]


def test_namespace_modes() -> None:
    assert judged({"pidMode": "host", "ipcMode": "host", "networkMode": "host", "containerDefinitions": []}) == [
        (ACCESS, "task: pidMode host"),
        (ACCESS, "task: ipcMode host"),
        (ACCESS, "task: networkMode host"),
    ]
    assert texts({"pidMode": "task", "ipcMode": "none", "networkMode": "awsvpc", "containerDefinitions": []}) == []
    assert texts({"pidMode": "none", "ipcMode": "none", "containerDefinitions": []}) == []  # daemon defaults
    assert texts({"pidMode": "HOST", "ipcMode": "Shared", "containerDefinitions": []}) == [
        "task: pidMode host",
        "task: ipcMode shared",
    ]


def test_every_system_control_is_named() -> None:
    controls = [
        {"namespace": "net.ipv4.ip_forward", "value": "1"},
        {"namespace": "kernel.shmmax", "value": "1"},
        {"namespace": "kernel.core_pattern", "value": "|/tmp/x"},  # runc refuses it; named all the same
        {"value": "1"},
    ]
    assert judged(with_container(systemControls=controls)) == [
        (ACCESS, "app: systemControls net.ipv4.ip_forward"),
        (ACCESS, "app: systemControls kernel.shmmax"),
        (ACCESS, "app: systemControls kernel.core_pattern"),
        (ACCESS, "app: systemControls ?"),
    ]
    assert "|/tmp/x" not in json.dumps([vars(i) for i in host_equivalents(with_container(systemControls=controls))])


SECURITY_OPTIONS = [
    # confinement off: both spellings, any case
    ("seccomp=unconfined", ACCESS),
    ("seccomp:unconfined", ACCESS),
    ("SECCOMP=Unconfined", ACCESS),
    ("apparmor=unconfined", ACCESS),
    ("apparmor:unconfined", ACCESS),
    (" AppArmor:UNCONFINED ", ACCESS),
    ("label=disable", ACCESS),
    ("label:disable", ACCESS),
    ("disable", ACCESS),  # Docker reads a bare "disable" as label=disable
    ("label=type:spc_t", ACCESS),
    ("label:type:spc_t", ACCESS),
    ("label=type:unconfined_t", ACCESS),
    ("label:user:system_u", ACCESS),
    ("label=level:s0:c1,c2", ACCESS),
    ("systempaths=unconfined", EQ),  # /proc/sys writable: core_pattern as root
    ("systempaths:unconfined", EQ),
    ("writable-cgroups=true", ACCESS),
    # profiles this cannot read, and options it does not recognise: named, conservatively
    ("apparmor:my-profile", ACCESS),
    ("seccomp=/etc/docker/seccomp-permissive.json", ACCESS),
    ("something-new=1", ACCESS),
    ("nonsense", ACCESS),
    ("systempaths=other", ACCESS),
    # Docker's own confinement, hardening, an Active Directory credential spec: not named
    ("no-new-privileges", None),
    ("no-new-privileges=true", None),
    ("no-new-privileges:false", None),
    ("apparmor=docker-default", None),
    ("apparmor:docker-default", None),
    ("seccomp=builtin", None),
    ("label:type:container_t", None),
    ("writable-cgroups=false", None),
    ("credentialspec:file://gmsa.json", None),
    ("", None),
]


@pytest.mark.parametrize(("option", "level"), SECURITY_OPTIONS)
def test_security_options(option: str, level: str | None) -> None:
    found = judged(with_container(dockerSecurityOptions=[option, 7, None]))
    assert found == ([(level, f"app: dockerSecurityOptions {option.strip()}")] if level else [])
    assert (security_option(option) or (None,))[0] == level


# --- order, wording, safety ---------------------------------------------------------------------------------------


def test_host_equivalent_items_come_first() -> None:
    document = mounting(
        "/etc/cron.d", read_only=True, extra={"linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}}}
    )
    document["pidMode"] = "host"
    assert judged(document) == [
        (EQ, "app: capability SYS_ADMIN"),
        (ACCESS, "task: pidMode host"),
        (ACCESS, "app: host path /etc/cron.d (read-only)"),
    ]


def test_summary_for_a_notice_line() -> None:
    document = mounting("/var/run/docker.sock", extra={"linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}}})
    document["pidMode"] = "host"
    assert summary(host_equivalents(document)) == (
        "still host-equivalent: app: capability SYS_ADMIN, app: host path /var/run/docker.sock; "
        "host access: task: pidMode host"
    )
    assert summary([]) == ""
    many = [HostEquivalent("app", "device", f"/dev/d{i}", "r") for i in range(9)]
    assert summary(many, max_items=2) == "still host-equivalent: app: device /dev/d0, app: device /dev/d1 and 7 more"
    access = [HostEquivalent(None, "pid-mode", "host", "r", level=ACCESS)]
    assert summary(access) == "host access: task: pidMode host"  # never "safe", never empty when there is some


def test_text_is_safe_and_capped() -> None:
    document = mounting("/etc/" + "x" * 5_000 + "\n" + "line two")
    document["containerDefinitions"][0]["name"] = "evil\nFAKE: all clear " + "n" * 500
    (item,) = host_equivalents(document)
    assert "\n" not in item.text and item.text.isprintable()
    assert len(item.container or "") <= MAX_NAME and len(item.detail) <= MAX_PATH
    assert item.text.startswith("evil?FAKE")


def check_output(found: Any) -> list[HostEquivalent]:
    assert isinstance(found, list) and len(found) <= MAX_RESULTS
    for item in found:
        assert isinstance(item, HostEquivalent) and item.level in (EQ, ACCESS)
        assert item.text.isprintable() and len(item.text) <= MAX_NAME + MAX_PATH + 60
    levels = [item.level for item in found]
    assert levels == sorted(levels, key=(EQ, ACCESS).index)  # host-equivalent first
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
    volume = {"name": "v", "dockerVolumeConfiguration": value, "host": value, "logDriverVolumeConfiguration": value}
    container = {
        "name": "a",
        "mountPoints": [{"sourceVolume": "v"}],
        "dockerSecurityOptions": value,
        "systemControls": value,
        "linuxParameters": {"capabilities": value, "devices": value},
    }
    check_output(host_equivalents({"containerDefinitions": [container], "volumes": [volume]}))


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
        "dockerSecurityOptions": ["no-new-privileges"] * size,
        "systemControls": [{"namespace": "net.core.somaxconn"}] * size,
    }
    document = {
        "volumes": [{"name": f"v{i}", "host": {"sourcePath": "/"}} for i in range(size)],
        "containerDefinitions": [container, container],
    }
    found = check_output(host_equivalents(document))
    assert {i.text for i in found} == {
        "app: capability SYS_ADMIN",
        "app: host path /",
        "app: systemControls net.core.somaxconn",
    }


def test_nothing_hides_behind_a_long_list() -> None:
    # the registrant pads lists so that the dangerous item comes last: every item is read
    padding = 50_000
    document = mounting("/var/run/docker.sock")
    document["volumes"] = [
        {"name": f"p{i}", "host": {"sourcePath": "/etc/localtime"}} for i in range(padding)
    ] + document["volumes"]
    container = document["containerDefinitions"][0]
    container["mountPoints"] = [
        {"sourceVolume": f"p{i}", "containerPath": f"/p{i}", "readOnly": True} for i in range(padding)
    ] + container["mountPoints"]
    container["linuxParameters"] = {
        "capabilities": {"add": ["CHOWN"] * padding + ["SYS_ADMIN"]},
        "devices": [{"hostPath": "/dev/null"}] * padding + [{"hostPath": "/dev/nvme0n1"}],
    }
    container["dockerSecurityOptions"] = ["no-new-privileges"] * padding + ["seccomp=unconfined"]
    assert judged(document) == [
        (EQ, "app: capability SYS_ADMIN"),
        (EQ, "app: host path /var/run/docker.sock"),
        (EQ, "app: device /dev/nvme0n1"),
        (ACCESS, "app: dockerSecurityOptions seccomp=unconfined"),
    ]


def test_normalise_path() -> None:
    assert normalise_path("") == "/"
    assert normalise_path("/a/b/../../../c/") == "/c"
    assert normalise_path("etc//./ssh/") == "/etc/ssh"
