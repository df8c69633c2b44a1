"""Pure: what in a task definition still amounts to root on the host once `privileged` is false.

Removing `privileged` is not the same as removing host access: an added capability, a host path, a device or a
host namespace can give the same. `host_equivalents` lists those so that a notice never calls such a copy safe.
`privileged` itself is not listed (the caller reports it). Works on task definitions and on daemon task
definitions (ECS Managed Daemons: `pidMode`/`ipcMode` `shared`, no `networkMode`, no `volumesFrom`).

Every input is hostile: any member may have any type or be missing; nothing here raises or reads an
environment value, and the text is capped. The reasons, and what was left out and why, are in
docs/host-equivalents.md.
"""

from __future__ import annotations

import posixpath
import re
from collections import deque
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CAPABILITY, HOST_PATH, DEVICE = "capability", "host-path", "device"
PID_MODE, IPC_MODE, NETWORK_MODE = "pid-mode", "ipc-mode", "network-mode"

MAX_RESULTS = 200  # a real revision has a few dozen at most
MAX_PROPAGATION = 1_000_000  # volumesFrom steps
MAX_NAME = 100
MAX_PATH = 200

# -- capabilities ------------------------------------------------------------------------------------------------
# Docker's default seccomp profile allows the syscalls behind each of these only when the capability is added
# (moby profiles/seccomp/default.json), and ECS applies "drop, then add" (KernelCapabilities in the API
# reference), so an added capability is in effect whatever `drop` says, unless it is ALL.
CAPABILITIES: dict[str, str] = {
    "ALL": "every capability, SYS_ADMIN and SYS_MODULE among them",
    # mount(2) and the cgroup v1 release_agent: the host runs a script of the container's as root
    "SYS_ADMIN": "mount and cgroup release_agent: the host runs the container's program as root",
    # init_module/finit_module: code of the container's choosing runs in the host kernel
    "SYS_MODULE": "loads a kernel module: the container's code runs in the host kernel",
    # iopl/ioperm and raw access to any device it can open
    "SYS_RAWIO": "raw port I/O (iopl, ioperm) and raw device access",
    # open_by_handle_at ("Shocker", 2014): opens any host file by inode handle, outside the mount namespace
    "DAC_READ_SEARCH": "open_by_handle_at reads any host file (the Shocker escape)",
}
# Host root only together with the host's PID namespace (pidMode host, or shared for a daemon).
PID_HOST_CAPABILITIES: dict[str, str] = {
    # ptrace of host processes (root's among them): code injection; without the host's PID namespace it only
    # reaches the task's own processes (Fargate allows it for that reason)
    "SYS_PTRACE": "with the host's PID namespace, ptrace injects code into host root processes",
    # reboot(2) in the initial PID namespace reboots the host; in its own it only stops the task, and the
    # default seccomp profile refuses kexec_load whatever the capabilities
    "SYS_BOOT": "with the host's PID namespace, reboot(2) reboots the host",
}
# Host root only as a pair: eBPF tracing programs that write user memory or override kernel returns
# (He et al., "Cross Container Attacks: The Bewildered eBPF on Clouds", USENIX Security 2023).
BPF_PAIR = ("BPF", "PERFMON")
BPF_REASON = "with PERFMON (or SYS_ADMIN), eBPF tracing programs rewrite host processes' memory"

# -- host paths --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _HostPath:
    path: str  # canonical form (see _canonical)
    subtree: bool  # a mount of a descendant is as dangerous
    read_only_lowers: bool  # a read-only mount of it is not reported
    reason: str


_SOCKET = "the container runtime's API starts a privileged container; read-only does not guard a Unix socket"
_INIT = "the init system's API, as root, runs any command on the host; read-only does not guard a Unix socket"
_RUNTIME_STATE = (
    "writable: other containers' images and config; read-only: every container's config, "
    "environment values and injected secrets included"
)
_READABLE = "host secrets, readable even read-only"
HOST_PATHS: tuple[_HostPath, ...] = (
    # Writable: cron, systemd units, /etc/passwd. Read-only: every host secret, and the runtime sockets below
    # it, which a read-only mount does not guard (nor, on older engines, its writable submounts).
    _HostPath("/", False, False, "the host's whole filesystem: host secrets even read-only, and the runtime sockets"),
    _HostPath("/run/docker.sock", False, False, _SOCKET),
    _HostPath("/run/containerd/containerd.sock", False, False, _SOCKET),
    _HostPath("/run/docker/containerd/containerd.sock", False, False, _SOCKET),
    _HostPath("/run/crio/crio.sock", False, False, _SOCKET),
    _HostPath("/run/podman/podman.sock", False, False, _SOCKET),
    _HostPath("/run/systemd/private", False, False, _INIT),
    _HostPath("/run/dbus/system_bus_socket", False, False, _INIT),
    # Writable core_pattern or sysrq-trigger run code on the host; read-only still shows every host process's
    # command line and leaves the binfmt_misc submount writable on engines whose read-only is not recursive.
    _HostPath(
        "/proc", True, False, "the host's /proc: core_pattern runs code as root; read-only leaks and may not hold"
    ),
    # Writable uevent_helper or a cgroup v1 release_agent run code as root; the cgroup submounts can stay writable
    # under a read-only /sys (read-only bind mounts were not recursive before Docker 25, moby#44978).
    _HostPath("/sys", True, False, "the host's /sys: uevent_helper and cgroup release_agent run code as root"),
    # Device writes ignore a read-only mount; the device cgroup refuses most nodes without privileged, so this is
    # one setting away from the raw disks rather than root by itself. Single device nodes: see DEVICE below.
    _HostPath("/dev", False, False, "every host device node (disks, memory); read-only does not stop device writes"),
    # Writable: cron.d, passwd, sudoers, systemd units. A read-only mount of a part of /etc without secrets
    # (localtime, resolv.conf, CA certificates) is harmless; the secret-bearing parts are listed below.
    _HostPath("/etc", True, True, "the host's configuration: writable is root (cron.d, passwd, sudoers, units)"),
    _HostPath("/etc/shadow", True, False, _READABLE),
    _HostPath("/etc/gshadow", True, False, _READABLE),
    _HostPath("/etc/ssh", True, False, _READABLE + " (host keys)"),
    _HostPath("/etc/ecs", True, False, _READABLE + " (ecs.config: registry credentials)"),
    _HostPath("/etc/pki/tls/private", True, False, _READABLE + " (TLS keys)"),
    _HostPath("/etc/ssl/private", True, False, _READABLE + " (TLS keys)"),
    # authorized_keys and shell profiles are root at the next login; .ssh, .aws and .docker hold credentials.
    _HostPath("/root", True, False, "root's home: writable is root at the next login; keys readable even read-only"),
    # Kernel and boot loader: root at the next boot; /boot/efi is a separate mount a non-recursive read-only
    # bind leaves writable.
    _HostPath("/boot", True, False, "kernel and boot loader: root at the next boot"),
    _HostPath("/var/lib/docker", True, False, _RUNTIME_STATE),
    _HostPath("/var/lib/containerd", True, False, _RUNTIME_STATE),
    # A module the host loads later runs in its kernel; reading modules is harmless.
    _HostPath("/usr/lib/modules", True, True, "kernel modules: writable replaces one the host loads later"),
    # Programs root runs (systemd, cron jobs, the agent's tools); reading them is harmless.
    _HostPath("/usr", True, True, "host programs: writable replaces what root runs next"),
    # Users' authorized_keys and shell profiles; ec2-user has passwordless sudo on Amazon Linux. Read-only: on a
    # container instance /home holds public keys only.
    _HostPath("/home", True, True, "users' homes: writable is their login, ec2-user's sudo among them"),
)

# Symlinks of the distributions ECS runs on (merged /usr, /var/run -> /run): one canonical form each.
_ALIASES = (
    ("/var/run", "/run"),
    ("/var/lock", "/run/lock"),
    ("/lib", "/usr/lib"),
    ("/lib64", "/usr/lib64"),
    ("/bin", "/usr/bin"),
    ("/sbin", "/usr/sbin"),
)

# Device nodes that give no host access (or only an accelerator's): not reported.
_HARMLESS_DEVICES = re.compile(
    r"/dev/(null|zero|full|random|urandom|tty|fuse|net/tun|nvidia[0-9a-z-]*|dri/.*|neuron\d+|infiniband/.*)\Z"
)
DEVICE_REASON = "a host device node opened directly (a disk reads every host file)"

PID_REASON = (
    "the host's PID namespace: every host process visible and signalable; other containers' environment "
    "and files through /proc/<pid>"
)
IPC_REASON = "the host's IPC namespace: host processes' System V shared memory, read and written as root"
NETWORK_REASON = (
    "the host's network stack: services bound to the host's localhost, the instance role through IMDS, "
    "every task's traffic with the default NET_RAW"
)


@dataclass(frozen=True)
class HostEquivalent:
    """One thing that still gives the host away. `text` is safe for a notice (names, capabilities, paths)."""

    container: str | None  # None: the whole task (a namespace mode)
    kind: str  # capability | host-path | device | pid-mode | ipc-mode | network-mode
    detail: str  # SYS_ADMIN, /var/run/docker.sock, /dev/xvda, host, shared
    reason: str
    read_only: bool = False  # a host path mounted read-only and still reported
    text: str = field(init=False)

    def __post_init__(self) -> None:
        who = "task" if self.container is None else self.container
        suffix = " (read-only)" if self.read_only else ""
        object.__setattr__(self, "text", f"{who}: {_LABELS.get(self.kind, self.kind)} {self.detail}{suffix}")


_LABELS = {CAPABILITY: "capability", HOST_PATH: "host path", DEVICE: "device"}
_MODES = {PID_MODE: "pidMode", IPC_MODE: "ipcMode", NETWORK_MODE: "networkMode"}
_LABELS.update(_MODES)


def host_equivalents(task_definition: Mapping[str, Any]) -> list[HostEquivalent]:
    """What in `task_definition` (a task or daemon task definition, or a Describe response around one) amounts
    to host root besides `privileged`: task-level namespace modes first, then each container's capabilities,
    host paths and devices, in definition order. Never raises."""
    task = _unwrap(task_definition)
    if task is None:
        return []
    pid_host = _text(task.get("pidMode")).lower() in ("host", "shared")  # shared: a daemon in the host's
    found: list[HostEquivalent] = []
    if pid_host:
        found.append(HostEquivalent(None, PID_MODE, _text(task.get("pidMode")).lower(), PID_REASON))
    if _text(task.get("ipcMode")).lower() in ("host", "shared"):
        found.append(HostEquivalent(None, IPC_MODE, _text(task.get("ipcMode")).lower(), IPC_REASON))
    if _text(task.get("networkMode")).lower() == "host":
        found.append(HostEquivalent(None, NETWORK_MODE, "host", NETWORK_REASON))

    containers = list(_dicts(task.get("containerDefinitions")))
    names = [_safe(_text(c.get("name")) or f"#{i}", MAX_NAME) for i, c in enumerate(containers)]
    volumes = _host_volumes(task.get("volumes"))
    for name, container, mounts in zip(names, containers, _mounts(containers, volumes), strict=True):
        found += _capabilities(container, name, pid_host)
        found += _host_paths(mounts, volumes, name)
        found += _devices(container, name)
    return _dedupe(found)[:MAX_RESULTS]


def summary(found: Sequence[HostEquivalent], max_items: int = 6, max_chars: int = 300) -> str:
    """ "SYS_ADMIN, /var/run/docker.sock, pidMode host" for a one-line notice; "" when nothing is found."""
    details = list(dict.fromkeys(_short(item) for item in found))
    text = ", ".join(details[:max_items])
    if len(details) > max_items:
        text += f" and {len(details) - max_items} more"
    return _safe(text, max_chars)


def _short(item: HostEquivalent) -> str:
    return f"{_MODES[item.kind]} {item.detail}" if item.kind in _MODES else item.detail


# -- the parts ---------------------------------------------------------------------------------------------------


def _capabilities(container: Mapping[str, Any], name: str, pid_host: bool) -> list[HostEquivalent]:
    linux = container.get("linuxParameters")
    capabilities = linux.get("capabilities") if isinstance(linux, Mapping) else None
    if not isinstance(capabilities, Mapping):
        return []
    added = _capability_names(capabilities.get("add"))
    if "ALL" in added:
        # add ALL is every capability but the dropped ones (a drop of ALL does not undo it: moby's
        # TweakCapabilities), so it counts when what remains would count on its own.
        remaining = _EVERY_DANGEROUS - _capability_names(capabilities.get("drop"))
        return [HostEquivalent(name, CAPABILITY, "ALL", CAPABILITIES["ALL"])] if _dangerous(remaining, pid_host) else []
    return [HostEquivalent(name, CAPABILITY, cap, reason) for cap, reason in _dangerous(added, pid_host)]


_EVERY_DANGEROUS = (set(CAPABILITIES) - {"ALL"}) | set(PID_HOST_CAPABILITIES) | set(BPF_PAIR)


def _dangerous(added: set[str], pid_host: bool) -> list[tuple[str, str]]:
    found = []
    for capability in sorted(added):
        if capability in CAPABILITIES and capability != "ALL":
            found.append((capability, CAPABILITIES[capability]))
        elif capability in PID_HOST_CAPABILITIES and pid_host:
            found.append((capability, PID_HOST_CAPABILITIES[capability]))
        elif capability in BPF_PAIR and (set(BPF_PAIR) <= added or {"BPF", "SYS_ADMIN"} <= added):
            found.append((capability, BPF_REASON))
    return found


def _capability_names(value: Any) -> set[str]:
    """Docker normalises capability names (upper case, optional CAP_ prefix); so does this."""
    names = set()
    for item in _items(value):
        if isinstance(item, str):
            text = item.strip().upper()
            names.add(text.removeprefix("CAP_") if text != "CAP_ALL" else "ALL")
    return names


def _mounts(containers: list[Mapping[str, Any]], host_volumes: Collection[str]) -> list[dict[str, bool]]:
    """Each container's mounted host volumes (name -> read-only): its own and those it takes through volumesFrom,
    transitively (cycles included). A read-only volumesFrom makes what it brings read-only; a volume reached
    both ways counts as writable. A worklist: each (container, volume) changes at most twice, and a budget
    bounds hostile fan-outs (past it, every taker is given every mount, writable: conservative)."""
    mounts: list[dict[str, bool]] = [{} for _ in containers]
    by_name: dict[str, int] = {}
    for index, container in enumerate(containers):
        by_name.setdefault(_text(container.get("name")), index)
    takers: list[dict[int, bool]] = [{} for _ in containers]  # source -> {taker: read-only}
    for taker, container in enumerate(containers):
        for item in _dicts(container.get("volumesFrom")):
            source = by_name.get(_text(item.get("sourceContainer")))
            if source is not None and source != taker:
                takers[source][taker] = takers[source].get(taker, True) and item.get("readOnly") is True
    queue: deque[tuple[int, str]] = deque()
    for index, container in enumerate(containers):
        for mount in _dicts(container.get("mountPoints")):
            volume = _text(mount.get("sourceVolume"))
            if volume in host_volumes and _record(mounts[index], volume, mount.get("readOnly") is True):
                queue.append((index, volume))
    budget = MAX_PROPAGATION
    while queue:
        source, volume = queue.popleft()
        budget -= len(takers[source])
        if budget < 0:
            everything = {v: False for own in mounts for v in own}
            taking = {taker for of_source in takers for taker in of_source}
            return [everything if index in taking else own for index, own in enumerate(mounts)]
        for taker, forced_read_only in takers[source].items():
            if _record(mounts[taker], volume, mounts[source][volume] or forced_read_only):
                queue.append((taker, volume))
    return mounts


def _record(mounts: dict[str, bool], volume: str, read_only: bool) -> bool:
    """Note a mount; True when it is new, or writable where it was read-only."""
    current = mounts.get(volume)
    if current is None or (current and not read_only):
        mounts[volume] = read_only
        return True
    return False


def _host_volumes(value: Any) -> dict[str, list[tuple[str, bool]]]:
    """Volume name -> host paths it binds (with a read-only flag from the volume itself): `host.sourcePath`, or a
    `local` Docker volume with `o=bind` and a `device` (the same bind mount under another name)."""
    volumes: dict[str, list[tuple[str, bool]]] = {}
    for volume in _dicts(value):
        name = _text(volume.get("name"))
        if not name:
            continue  # nothing can mount it
        host = volume.get("host")
        source = host.get("sourcePath") if isinstance(host, Mapping) else None
        if isinstance(source, str) and source.strip():  # no sourcePath: a Docker-managed directory, not a host path
            volumes.setdefault(name, []).append((source, False))
        docker = volume.get("dockerVolumeConfiguration")
        if isinstance(docker, Mapping) and _text(docker.get("driver") or "local") == "local":
            options = docker.get("driverOpts")
            if isinstance(options, Mapping) and isinstance(options.get("device"), str):
                flags = {part.strip() for part in _text(options.get("o")).split(",")}
                if "bind" in flags or "rbind" in flags:
                    volumes.setdefault(name, []).append((options["device"], "ro" in flags))
    return volumes


def _host_paths(
    mounts: dict[str, bool], volumes: dict[str, list[tuple[str, bool]]], name: str
) -> Iterator[HostEquivalent]:
    for volume, mount_read_only in mounts.items():
        for source, volume_read_only in volumes.get(volume, []):
            read_only = mount_read_only or volume_read_only
            path = normalise_path(source)
            reason = _dangerous_path(_canonical(path), read_only)
            if reason is not None:
                yield HostEquivalent(name, HOST_PATH, _safe(path, MAX_PATH), reason, read_only)


def _dangerous_path(path: str, read_only: bool) -> str | None:
    """The reason a mount of `path` exposes the host, or None. A mount is dangerous when it is a listed path,
    contains one (an ancestor: /var contains /var/lib/docker), or lies inside a listed subtree."""
    for entry in HOST_PATHS:
        if read_only and entry.read_only_lowers:
            continue
        if path == entry.path:
            return entry.reason
        if _is_ancestor(path, entry.path):
            return f"contains {entry.path}: {entry.reason}"
        if entry.subtree and entry.path != "/" and _is_ancestor(entry.path, path):
            return entry.reason
    return None


def _devices(container: Mapping[str, Any], name: str) -> Iterator[HostEquivalent]:
    linux = container.get("linuxParameters")
    if not isinstance(linux, Mapping):
        return
    for device in _dicts(linux.get("devices")):
        host_path = device.get("hostPath")
        if not isinstance(host_path, str) or not host_path.strip():
            continue
        path = normalise_path(host_path)
        if not _HARMLESS_DEVICES.match(path):
            yield HostEquivalent(name, DEVICE, _safe(path, MAX_PATH), DEVICE_REASON)


# -- helpers -----------------------------------------------------------------------------------------------------


def normalise_path(raw: str) -> str:
    """An absolute path without trailing slashes, `//`, `.` or `..` (above / stays at /). A relative path is
    taken from / (conservative: Docker would refuse it or make a named volume)."""
    path = posixpath.normpath("/" + raw.lstrip("/"))
    return "/" + path.lstrip("/")  # normpath keeps a leading "//"


def _canonical(path: str) -> str:
    for alias, target in _ALIASES:
        if path == alias or path.startswith(alias + "/"):
            return target + path[len(alias) :]
    return path


def _is_ancestor(ancestor: str, path: str) -> bool:
    return ancestor != path and (ancestor == "/" or path.startswith(ancestor + "/"))


def _unwrap(value: Any) -> Mapping[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    if "containerDefinitions" not in value:
        for key in ("taskDefinition", "daemonTaskDefinition"):
            inner = value.get(key)
            if isinstance(inner, Mapping):
                return inner
    return value


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []  # every item: nothing hides past a cap


def _dicts(value: Any) -> Iterator[Mapping[str, Any]]:
    return (item for item in _items(value) if isinstance(item, Mapping))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _safe(text: str, limit: int) -> str:
    """Printable characters only (no line breaks to forge a notice line with), at most `limit` of them."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in text[: limit + 1])
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def _dedupe(found: list[HostEquivalent]) -> list[HostEquivalent]:
    """One entry per (container, kind, detail); a writable mount wins over a read-only one of the same path."""
    best: dict[tuple[str | None, str, str], HostEquivalent] = {}
    for item in found:
        key = (item.container, item.kind, item.detail)
        if key not in best or (best[key].read_only and not item.read_only):
            best[key] = item
    return list(best.values())
