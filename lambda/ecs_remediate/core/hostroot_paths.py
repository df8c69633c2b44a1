"""Pure: the host paths, Docker volumes and devices a task definition's containers keep, and what each gives away.

The default is "named": every host path a container mounts (directly or through `volumesFrom`) is host access,
writable ones host-equivalent; a read-only one is left out only when it is on HARMLESS_READ_ONLY, and stays
host-equivalent when HOST_PATHS says reading it is enough (sockets, /proc, /sys, secrets). Every `local` Docker
volume that mounts something (a device, a type, mount options) is named, and so is every other volume driver.
The reasons for each entry are in docs/host-equivalents.md.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterator, Mapping
from typing import Any, NamedTuple

from .hostroot_model import (
    DEVICE,
    DOCKER_VOLUME,
    HOST_ACCESS,
    HOST_EQUIVALENT,
    HOST_PATH,
    LOG_VOLUME,
    MAX_NAME,
    MAX_PATH,
    HostEquivalent,
    dicts,
    normalise_path,
    safe,
    text_of,
)

MAX_PROPAGATION = 1_000_000  # volumesFrom steps


class _HostPath(NamedTuple):
    path: str  # canonical form (see canonical)
    subtree: bool  # a mount of a descendant is as dangerous
    read_only_root: bool  # a read-only mount of it is still host-equivalent
    reason: str


_SOCKET = "the container runtime's API starts a privileged container; read-only does not guard a Unix socket"
_INIT = "the init system's API, as root, runs any command on the host; read-only does not guard a Unix socket"
_RUNTIME_STATE = (
    "writable: other containers' images and config; read-only: every container's config, "
    "environment values and injected secrets included"
)
_READABLE = "host secrets, readable even read-only"
HOST_PATHS: tuple[_HostPath, ...] = (
    _HostPath("/", False, True, "the host's whole filesystem: host secrets even read-only, and the runtime sockets"),
    _HostPath("/run/docker.sock", False, True, _SOCKET),
    _HostPath("/run/containerd/containerd.sock", False, True, _SOCKET),
    _HostPath("/run/docker/containerd/containerd.sock", False, True, _SOCKET),
    _HostPath("/run/crio/crio.sock", False, True, _SOCKET),
    _HostPath("/run/podman/podman.sock", False, True, _SOCKET),
    _HostPath("/run/systemd/private", False, True, _INIT),
    _HostPath("/run/dbus/system_bus_socket", False, True, _INIT),
    # Everything else under /run: where the host's daemons keep their sockets (a list of them is never complete).
    _HostPath("/run", True, True, "the host's daemons' Unix sockets live here; read-only does not guard a socket"),
    _HostPath(
        "/proc", True, True, "the host's /proc: core_pattern runs code as root; read-only leaks and may not hold"
    ),
    _HostPath("/sys", True, True, "the host's /sys: uevent_helper and cgroup release_agent run code as root"),
    _HostPath("/dev", False, True, "every host device node (disks, memory); read-only does not stop device writes"),
    _HostPath("/etc", True, False, "the host's configuration: writable is root (cron.d, passwd, sudoers, units)"),
    _HostPath("/etc/shadow", True, True, _READABLE),
    _HostPath("/etc/gshadow", True, True, _READABLE),
    _HostPath("/etc/ssh", True, True, _READABLE + " (host keys)"),
    _HostPath("/etc/ecs", True, True, _READABLE + " (ecs.config: registry credentials)"),
    _HostPath("/etc/pki/tls/private", True, True, _READABLE + " (TLS keys)"),
    _HostPath("/etc/ssl/private", True, True, _READABLE + " (TLS keys)"),
    _HostPath("/root", True, True, "root's home: writable is root at the next login; keys readable even read-only"),
    _HostPath("/boot", True, True, "kernel and boot loader: root at the next boot"),
    _HostPath("/var/lib/docker", True, True, _RUNTIME_STATE),
    _HostPath("/var/lib/containerd", True, True, _RUNTIME_STATE),
    _HostPath("/usr/lib/modules", True, False, "kernel modules: writable replaces one the host loads later"),
    _HostPath("/usr", True, False, "host programs: writable replaces what root runs next"),
    _HostPath("/home", True, False, "users' homes: writable is their login, ec2-user's sudo among them"),
)
_SOCKET_NAMES = (".sock", ".socket", "_socket")  # endings of a name that is, by its name, a Unix socket
SOCKET_REASON = "by its name a Unix socket: whatever answers on it, read-only does not guard a socket"

# Read-only mounts of these (or below them) are not named: public data every host ships, no secret, no socket.
HARMLESS_READ_ONLY: dict[str, str] = {
    "/etc/localtime": "the host's time zone, a copy of a public tz file",
    "/etc/timezone": "the host's time zone name (Debian, Ubuntu)",
    "/usr/share/zoneinfo": "the public time zone database",
    "/etc/pki/ca-trust": "public CA certificates (Amazon Linux, RHEL)",
    "/etc/pki/tls/certs": "public CA bundles (Amazon Linux, RHEL)",
    "/etc/ssl/certs": "public CA bundles (Debian, Ubuntu; a link to /etc/pki/tls/certs on Amazon Linux)",
}
WRITABLE_REASON = (
    "writable host path: root on the host wherever root runs or trusts a file under it "
    "(a list of such paths is never complete)"
)
READ_ONLY_REASON = "the host's files under it are readable by the task"

# Symlinks of the distributions ECS runs on (merged /usr, /var/run -> /run): one canonical form each.
_ALIASES = (
    ("/var/run", "/run"),
    ("/var/lock", "/run/lock"),
    ("/lib", "/usr/lib"),
    ("/lib64", "/usr/lib64"),
    ("/bin", "/usr/bin"),
    ("/sbin", "/usr/sbin"),
)

# Docker's `local` driver: what mount(2) it makes for driverOpts type/device/o (moby volume/local).
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3"})
HARMLESS_TYPES = frozenset({"tmpfs"})  # memory, charged to the task: no host file behind it
NETWORK_REASON = (
    "the host's root mounts a network share for the task, with the host's network identity; not the host's own files"
)
MOUNT_REASON = (
    "the host's root mounts a device or kernel filesystem for the task (a host disk reads and writes every "
    "host file, proc/sysfs/cgroup are the host's), read-only or not"
)
PLUGIN_REASON = "a volume plugin, root on the host, mounts whatever its options say: what it gives is not known here"
LOG_REASON = "other tasks' log files on the instance: whatever they print, secrets included"

# Device nodes that give no host access: not named.
_HARMLESS_DEVICES = frozenset(
    f"/dev/{name}" for name in ("null", "zero", "full", "random", "urandom", "tty", "fuse", "net/tun")
)
DEVICE_REASON = "a host device node opened directly (a disk reads every host file)"
ACCELERATOR_REASON = "an accelerator shared with the host and every other task on it (its memory and driver)"
_ACCELERATOR_NODES = ("/dev/nvidia", "/dev/neuron")  # nvidia0, nvidiactl, nvidia-uvm, neuron0
_ACCELERATOR_DIRS = ("/dev/dri/", "/dev/infiniband/")


class _Source(NamedTuple):
    """What mounting a volume gives: a host path (`path`), or a fixed item (`kind`, `detail`, `level`)."""

    path: str | None
    read_only: bool = False  # the volume itself is read-only (o=ro, an overlay's lowerdir)
    via: str = ""  # "" for host.sourcePath; "docker volume v (overlay lowerdir)" ...
    kind: str = HOST_PATH
    detail: str = ""
    level: str = HOST_ACCESS
    reason: str = ""


def volume_sources(value: Any) -> dict[str, list[_Source]]:
    """Volume name -> what a container that mounts it reaches on the host. A volume that reaches nothing (a
    Docker-managed directory, tmpfs, EFS, FSx) is not in the map."""
    volumes: dict[str, list[_Source]] = {}
    for volume in dicts(value):
        name = text_of(volume.get("name"))
        if not name:
            continue  # nothing can mount it
        found: list[_Source] = []
        host = volume.get("host")
        source = host.get("sourcePath") if isinstance(host, Mapping) else None
        if isinstance(source, str) and source.strip():  # no sourcePath: a Docker-managed directory, not a host path
            found.append(_Source(source))
        docker = volume.get("dockerVolumeConfiguration")
        if isinstance(docker, Mapping):
            found += _docker_volume(name, docker)
        if isinstance(volume.get("logDriverVolumeConfiguration"), Mapping):  # a daemon's
            detail = safe(name, MAX_NAME)
            found.append(_Source(None, kind=LOG_VOLUME, detail=detail, level=HOST_ACCESS, reason=LOG_REASON))
        if found:
            volumes.setdefault(name, []).extend(found)
    return volumes


def _docker_volume(name: str, config: Mapping[str, Any]) -> list[_Source]:
    """What Docker's `local` driver mounts for driverOpts `type`, `device` and `o` (moby validates that `o` and
    `type` come with a `device`; this does not rely on it), and any other driver."""
    label = safe(name, MAX_NAME)
    driver = config.get("driver")
    if driver is not None and (not isinstance(driver, str) or driver.strip().lower() not in ("", "local")):
        detail = f"{label}: driver {safe(str(driver), MAX_NAME)}"
        return [_Source(None, kind=DOCKER_VOLUME, detail=detail, level=HOST_ACCESS, reason=PLUGIN_REASON)]
    raw = config.get("driverOpts")
    options = {str(k).strip().lower(): v for k, v in raw.items()} if isinstance(raw, Mapping) else {}
    if not {"type", "device", "o"} & options.keys():
        return []  # a Docker-managed directory (`size` is a quota on it)
    kind = text_of(options.get("type")).strip().lower()
    device = text_of(options.get("device")).strip()
    flags = [part.strip() for part in text_of(options.get("o")).split(",") if part.strip()]
    keys = {flag.split("=", 1)[0].strip().lower() for flag in flags}
    read_only = "ro" in keys
    via = f"docker volume {label}"
    if keys & {"bind", "rbind"} and device:  # a bind mount of `device`, whatever `type` says
        return [_Source(device, read_only, f"{via} (bind)")]
    if kind == "overlay":
        layers = _overlay_layers(flags, read_only, via)
        if layers:
            return layers
    elif kind in HARMLESS_TYPES:
        return []
    elif kind in NETWORK_FILESYSTEMS:
        return [_Source(None, kind=DOCKER_VOLUME, detail=f"{label}: {kind}", reason=NETWORK_REASON)]
    shown = f" {safe(device, MAX_PATH)}" if device.startswith("/") else ""  # a device path; never other text
    detail = f"{label}: {safe(kind, 40) or 'no type'}{shown}"
    return [_Source(None, kind=DOCKER_VOLUME, detail=detail, level=HOST_EQUIVALENT, reason=MOUNT_REASON)]


def _overlay_layers(flags: list[str], read_only: bool, via: str) -> list[_Source]:
    """An overlay's lower layers (`lowerdir`, and the `lowerdir+`/`datadir+` of Linux 6.8; read-only) and its
    `upperdir` and `workdir` (writable) are host paths. [] when they cannot be read plainly (none given, escapes, or
    another option that names a path): the caller names the volume as a mount it cannot see into."""
    layers = []
    for flag in flags:
        key, _, value = flag.partition("=")
        key = key.strip().lower()
        if "\\" in value:
            return []
        if key == "lowerdir":
            layers += [_Source(p, True, f"{via} (overlay lowerdir)") for p in value.split(":") if p.strip()]
        elif key in ("lowerdir+", "datadir+") and value.strip():
            layers.append(_Source(value, True, f"{via} (overlay {key})"))
        elif key in ("upperdir", "workdir") and value.strip():
            layers.append(_Source(value, read_only, f"{via} (overlay {key})"))
        elif "/" in value:
            return []
    return layers


def mounts(containers: list[Mapping[str, Any]], volumes: Collection[str]) -> list[dict[str, bool]]:
    """Each container's mounted volumes among `volumes` (name -> read-only): its own and those it takes through
    volumesFrom, transitively (cycles included). A read-only volumesFrom makes what it brings read-only; a volume
    reached both ways counts as writable. A worklist: each (container, volume) changes at most twice, and a budget
    bounds hostile fan-outs (past it, every taker is given every mount, writable: conservative)."""
    mounted: list[dict[str, bool]] = [{} for _ in containers]
    by_name: dict[str, int] = {}
    for index, container in enumerate(containers):
        by_name.setdefault(text_of(container.get("name")), index)
    takers: list[dict[int, bool]] = [{} for _ in containers]  # source -> {taker: read-only}
    for taker, container in enumerate(containers):
        for item in dicts(container.get("volumesFrom")):
            source = by_name.get(text_of(item.get("sourceContainer")))
            if source is not None and source != taker:
                takers[source][taker] = takers[source].get(taker, True) and item.get("readOnly") is True
    queue: deque[tuple[int, str]] = deque()
    for index, container in enumerate(containers):
        for mount in dicts(container.get("mountPoints")):
            volume = text_of(mount.get("sourceVolume"))
            if volume in volumes and _record(mounted[index], volume, mount.get("readOnly") is True):
                queue.append((index, volume))
    budget = MAX_PROPAGATION
    while queue:
        source, volume = queue.popleft()
        budget -= len(takers[source])
        if budget < 0:
            everything = {v: False for own in mounted for v in own}
            taking = {taker for of_source in takers for taker in of_source}
            return [everything if index in taking else own for index, own in enumerate(mounted)]
        for taker, forced_read_only in takers[source].items():
            if _record(mounted[taker], volume, mounted[source][volume] or forced_read_only):
                queue.append((taker, volume))
    return mounted


def _record(mounted: dict[str, bool], volume: str, read_only: bool) -> bool:
    """Note a mount; True when it is new, or writable where it was read-only."""
    current = mounted.get(volume)
    if current is None or (current and not read_only):
        mounted[volume] = read_only
        return True
    return False


def mounted_items(mounted: dict[str, bool], volumes: dict[str, list[_Source]], name: str) -> Iterator[HostEquivalent]:
    for volume, mount_read_only in mounted.items():
        for source in volumes.get(volume, []):
            if source.path is None:
                yield HostEquivalent(name, source.kind, source.detail, source.reason, False, source.level)
                continue
            read_only = mount_read_only or source.read_only
            path = normalise_path(source.path)
            judged = judge_path(canonical(path), read_only)
            if judged is not None:
                level, reason = judged
                reason = f"{source.via}: {reason}" if source.via else reason
                yield HostEquivalent(name, HOST_PATH, safe(path, MAX_PATH), reason, read_only, level)


def judge_path(path: str, read_only: bool) -> tuple[str, str] | None:
    """(level, reason) for a mount of the canonical `path`; None for a read-only one on HARMLESS_READ_ONLY."""
    if not read_only:
        return HOST_EQUIVALENT, _listed(path, read_only=False) or WRITABLE_REASON
    reason = _listed(path, read_only=True)
    if reason is not None:
        return HOST_EQUIVALENT, reason
    if path.endswith(_SOCKET_NAMES):
        return HOST_EQUIVALENT, SOCKET_REASON
    if any(path == allowed or path.startswith(allowed + "/") for allowed in HARMLESS_READ_ONLY):
        return None
    return HOST_ACCESS, READ_ONLY_REASON


def _listed(path: str, read_only: bool) -> str | None:
    """HOST_PATHS' reason for a mount of `path`: a listed path, an ancestor of one (/var contains
    /var/lib/docker), or inside a listed subtree. Read-only, only the entries reading is enough for."""
    for entry in HOST_PATHS:
        if read_only and not entry.read_only_root:
            continue
        if path == entry.path:
            return entry.reason
        if _is_ancestor(path, entry.path):
            return f"contains {entry.path}: {entry.reason}"
        if entry.subtree and entry.path != "/" and _is_ancestor(entry.path, path):
            return entry.reason
    return None


def devices(container: Mapping[str, Any], name: str) -> Iterator[HostEquivalent]:
    linux = container.get("linuxParameters")
    if not isinstance(linux, Mapping):
        return
    for device in dicts(linux.get("devices")):
        host_path = device.get("hostPath")
        if not isinstance(host_path, str) or not host_path.strip():
            continue
        path = normalise_path(host_path)
        if path in _HARMLESS_DEVICES:
            continue
        if (path.startswith(_ACCELERATOR_NODES) and "/" not in path[5:]) or path.startswith(_ACCELERATOR_DIRS):
            yield HostEquivalent(name, DEVICE, safe(path, MAX_PATH), ACCELERATOR_REASON, level=HOST_ACCESS)
        else:
            yield HostEquivalent(name, DEVICE, safe(path, MAX_PATH), DEVICE_REASON)


def canonical(path: str) -> str:
    for alias, target in _ALIASES:
        if path == alias or path.startswith(alias + "/"):
            return target + path[len(alias) :]
    return path


def _is_ancestor(ancestor: str, path: str) -> bool:
    return ancestor != path and (ancestor == "/" or path.startswith(ancestor + "/"))
