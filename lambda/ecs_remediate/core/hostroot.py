"""Pure: the verdict model for host access: what in a task definition still reaches the host once `privileged` is
false. `host_equivalents` is the one function every verdict, notice, report, finding and `fix` shows.

Removing `privileged` is not the same as removing host access. The model is inverted: everything that reaches the
host is named (host paths, Docker volumes that mount something, devices, capabilities beyond Docker's default set,
host namespaces, `systemControls`, `dockerSecurityOptions` that change confinement), each with a level:
`host-equivalent` (root on the host, or its secrets) or `host-access` (review it). Only short, documented lists of
harmless things are left out. `privileged` itself is not listed (the caller reports it). Works on task definitions
and on daemon task definitions (ECS Managed Daemons: `pidMode`/`ipcMode` `shared`, log driver volumes).

Every input is hostile: any member may have any type or be missing; nothing here raises or reads an
environment value, and the text is capped and printable. The reasons, and what is left out and why, are in
docs/host-equivalents.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence, Set
from typing import Any

from .hostroot_model import (
    CAPABILITY,
    HOST_ACCESS,
    HOST_EQUIVALENT,
    HOST_PATH,
    IPC_MODE,
    LEVELS,
    MAX_NAME,
    MAX_PATH,
    NETWORK_MODE,
    PID_MODE,
    SECURITY_OPTION,
    SYSTEM_CONTROL,
    TRUNCATED,
    UNCHANGED,
    HostEquivalent,
    describe,
    dicts,
    explained,
    items,
    normalise_path,
    safe,
    text_of,
    texts_by_level,
)
from .hostroot_paths import devices, mounted_items, mounts, volume_sources

__all__ = [
    "HOST_ACCESS",
    "HOST_EQUIVALENT",
    "HOST_PATH",
    "LEVELS",
    "MAX_NAME",
    "MAX_PATH",
    "MAX_RESULTS",
    "HostEquivalent",
    "describe",
    "host_equivalents",
    "normalise_path",
    "summary",
    "texts_by_level",
]

MAX_RESULTS = 200  # a real revision has a few dozen at most; the last one says how many more there were
MAX_OPTION = 100

# -- capabilities ------------------------------------------------------------------------------------------------
# Docker's default set (moby oci/caps/defaults.go): not named.
DEFAULT_CAPABILITIES = frozenset(
    {
        "CHOWN",
        "DAC_OVERRIDE",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "KILL",
        "AUDIT_WRITE",
    }
)
# Every capability of Linux 6.x (capability.h), for what `add: ALL` minus `drop` leaves.
EVERY_CAPABILITY = DEFAULT_CAPABILITIES | {
    "DAC_READ_SEARCH",
    "LINUX_IMMUTABLE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "LEASE",
    "AUDIT_CONTROL",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
}
# Root on the host by themselves. Docker's default seccomp profile opens the syscalls behind each only when the
# capability is added, and ECS applies "drop, then add", so an added capability is in effect whatever `drop` says.
ROOT_CAPABILITIES: dict[str, str] = {
    "SYS_ADMIN": "mount and cgroup release_agent: the host runs the container's program as root",
    "SYS_MODULE": "loads a kernel module: the container's code runs in the host kernel",
    "SYS_RAWIO": "raw port I/O (iopl, ioperm) and raw device access",
    "DAC_READ_SEARCH": "open_by_handle_at reads any host file (the Shocker escape)",
}
# Root only with the host's PID namespace (pidMode host, or shared for a daemon); host access without it.
PID_HOST_CAPABILITIES: dict[str, str] = {
    "SYS_PTRACE": "with the host's PID namespace, ptrace injects code into host root processes",
    "SYS_BOOT": "with the host's PID namespace, reboot(2) reboots the host",
}
BPF_PAIR = ("BPF", "PERFMON")
BPF_REASON = "with PERFMON (or SYS_ADMIN), eBPF tracing programs rewrite host processes' memory"
ALL_REASON = "every capability, SYS_ADMIN and SYS_MODULE among them"
# Beyond Docker's defaults, not root by themselves: named as host access, with what each reaches.
ACCESS_CAPABILITIES: dict[str, str] = {
    "SYS_PTRACE": "ptrace of the task's own processes (host root with the host's PID namespace)",
    "SYS_BOOT": "reboot(2) in the task's own PID namespace ends the task (host reboot with the host's)",
    "BPF": "loads eBPF programs (host memory with PERFMON or SYS_ADMIN)",
    "PERFMON": "perf events and eBPF tracing (host memory with BPF)",
    "NET_ADMIN": "the task's network stack (the host's with networkMode host: routes, firewall, interfaces)",
    "SYS_TIME": "sets the host's clock (it is not namespaced)",
    "SYSLOG": "the kernel log: kernel addresses and other tasks' messages",
    "MAC_ADMIN": "changes the host's AppArmor or SELinux policy",
    "MAC_OVERRIDE": "overrides the host's AppArmor or SELinux policy",
    "LINUX_IMMUTABLE": "clears immutable and append-only flags on files it can reach",
    "SYS_RESOURCE": "overrides the host's resource limits",
    "AUDIT_CONTROL": "changes the host's audit rules",
    "AUDIT_READ": "reads the host's audit log through netlink",
}
ACCESS_REASON = "a capability beyond Docker's default set"
UNKNOWN_CAPABILITY = "not a capability Docker knows (refused by Docker, or a newer kernel's): not known here"

# -- namespaces, kernel parameters, security options -------------------------------------------------------------
PID_REASON = (
    "the host's PID namespace: every host process visible and signalable; other containers' environment "
    "and files through /proc/<pid>"
)
IPC_REASON = "the host's IPC namespace: host processes' System V shared memory, read and written as root"
NETWORK_REASON = (
    "the host's network stack: services bound to the host's localhost, the instance role through IMDS, "
    "every task's traffic with the default NET_RAW"
)
SYSCTL_REASON = (
    "a kernel parameter set for the task: the task's own for namespaced ones (runc refuses the rest, and net.* "
    "in the host's network namespace); named so a person sees it"
)
SECURITY_REASONS: dict[str, tuple[str, str]] = {
    "systempaths": (HOST_EQUIVALENT, "/proc/sys and /proc/sysrq-trigger unmasked and writable: core_pattern as root"),
    "seccomp": (HOST_ACCESS, "seccomp off: user namespaces, keyctl, bpf and more open, the kernel bugs behind them"),
    "apparmor": (HOST_ACCESS, "AppArmor confinement off (docker-default denies mount, /proc/sys and /sys writes)"),
    "label": (HOST_ACCESS, "SELinux confinement off (the label Docker gives keeps host files out of reach)"),
    "writable-cgroups": (HOST_ACCESS, "the cgroup filesystem writable inside the container"),
    "unknown": (HOST_ACCESS, "not an option recognised here: what it changes is not known, so it is named"),
    "profile": (HOST_ACCESS, "a profile other than Docker's default: what it allows is not known here"),
}
_CONFINED_LABEL_TYPES = frozenset({"container_t"})  # Docker's own type
_UNCONFINED_LABEL_TYPES = frozenset({"spc_t", "unconfined_t"})  # super-privileged, unconfined


def host_equivalents(task_definition: Mapping[str, Any]) -> list[HostEquivalent]:
    """Everything in `task_definition` (a task or daemon task definition, or a Describe response around one) that
    reaches the host besides `privileged`: host-equivalent items first, then host access; within each,
    task-level namespace modes first, then each container's in definition order. At most MAX_RESULTS (the last
    then says how many more). Never raises."""
    task = _unwrap(task_definition)
    if task is None:
        return []
    pid_mode = text_of(task.get("pidMode")).lower()
    pid_host = pid_mode in ("host", "shared")  # shared: a daemon in the host's
    found: list[HostEquivalent] = []
    if pid_host:
        found.append(HostEquivalent(None, PID_MODE, pid_mode, PID_REASON, level=HOST_ACCESS))
    ipc_mode = text_of(task.get("ipcMode")).lower()
    if ipc_mode in ("host", "shared"):
        found.append(HostEquivalent(None, IPC_MODE, ipc_mode, IPC_REASON, level=HOST_ACCESS))
    if text_of(task.get("networkMode")).lower() == "host":
        found.append(HostEquivalent(None, NETWORK_MODE, "host", NETWORK_REASON, level=HOST_ACCESS))

    containers = list(dicts(task.get("containerDefinitions")))
    names = [safe(text_of(c.get("name")) or f"#{i}", MAX_NAME) for i, c in enumerate(containers)]
    volumes = volume_sources(task.get("volumes"))
    for name, container, mounted in zip(names, containers, mounts(containers, volumes), strict=True):
        found += _capabilities(container, name, pid_host)
        found += _security_options(container, name)
        found += _system_controls(container, name)
        found += mounted_items(mounted, volumes, name)
        found += devices(container, name)
    ordered = sorted(_dedupe(found), key=lambda item: LEVELS.index(item.level))  # stable: definition order kept
    return _capped(ordered)


def summary(found: Sequence[HostEquivalent], max_items: int = 6, max_chars: int = 300) -> str:
    """`still host-equivalent: app: capability SYS_ADMIN; host access: task: pidMode host`; "" for nothing."""
    equivalents, access = texts_by_level(found)
    return describe(equivalents, access, max_items=max_items, max_chars=max_chars)


# -- the parts ---------------------------------------------------------------------------------------------------


def _capabilities(container: Mapping[str, Any], name: str, pid_host: bool) -> list[HostEquivalent]:
    linux = container.get("linuxParameters")
    capabilities = linux.get("capabilities") if isinstance(linux, Mapping) else None
    if not isinstance(capabilities, Mapping):
        return []
    added = _capability_names(capabilities.get("add"))
    if "ALL" in added:
        # add ALL is every capability but the dropped ones (a drop of ALL does not undo it: moby's
        # TweakCapabilities); named at the level of the most serious one left.
        remaining = EVERY_CAPABILITY - _capability_names(capabilities.get("drop"))
        levels = {level for _, level, _ in _judged(remaining, pid_host)}
        if not levels:
            return []
        level = HOST_EQUIVALENT if HOST_EQUIVALENT in levels else HOST_ACCESS
        return [HostEquivalent(name, CAPABILITY, "ALL", ALL_REASON, level=level)]
    return [
        HostEquivalent(name, CAPABILITY, safe(cap, MAX_NAME), reason, level=level)
        for cap, level, reason in _judged(added, pid_host)
    ]


def _judged(added: Set[str], pid_host: bool) -> list[tuple[str, str, str]]:
    """(capability, level, reason) for each added capability beyond Docker's default set."""
    bpf = set(BPF_PAIR) <= added or {"BPF", "SYS_ADMIN"} <= added
    found = []
    for capability in sorted(added - DEFAULT_CAPABILITIES):
        if capability in ROOT_CAPABILITIES:
            found.append((capability, HOST_EQUIVALENT, ROOT_CAPABILITIES[capability]))
        elif capability in PID_HOST_CAPABILITIES and pid_host:
            found.append((capability, HOST_EQUIVALENT, PID_HOST_CAPABILITIES[capability]))
        elif capability in BPF_PAIR and bpf:
            found.append((capability, HOST_EQUIVALENT, BPF_REASON))
        elif capability in EVERY_CAPABILITY:
            found.append((capability, HOST_ACCESS, ACCESS_CAPABILITIES.get(capability, ACCESS_REASON)))
        else:
            found.append((capability, HOST_ACCESS, UNKNOWN_CAPABILITY))
    return found


def _capability_names(value: Any) -> set[str]:
    """Docker normalises capability names (upper case, optional CAP_ prefix); so does this."""
    names = set()
    for item in items(value):
        if isinstance(item, str) and item.strip():
            text = item.strip().upper()
            names.add(text.removeprefix("CAP_") if text != "CAP_ALL" else "ALL")
    return names


def _security_options(container: Mapping[str, Any], name: str) -> Iterator[HostEquivalent]:
    for option in items(container.get("dockerSecurityOptions")):
        if not isinstance(option, str):
            continue  # ECS refuses anything but strings
        judged = security_option(option)
        if judged is not None:
            level, reason = judged
            yield HostEquivalent(name, SECURITY_OPTION, safe(option.strip(), MAX_OPTION), reason, level=level)


def security_option(option: str) -> tuple[str, str] | None:
    """(level, reason) for a dockerSecurityOptions entry, or None when it keeps Docker's confinement. Split as
    Docker does (`key=value`, else the legacy `key:value`), in any case; what is not recognised is named."""
    text = option.strip().lower()
    if text in ("no-new-privileges", ""):
        return None
    if text == "disable":  # Docker reads a bare "disable" as label=disable
        return SECURITY_REASONS["label"]
    separator = "=" if "=" in text else ":"
    key, found, value = text.partition(separator)
    key, value = key.strip(), value.strip()
    if not found:
        return SECURITY_REASONS["unknown"]
    if key in ("no-new-privileges", "credentialspec"):  # hardening; an Active Directory credential spec
        return None
    if key == "systempaths":
        return SECURITY_REASONS["systempaths"] if value == "unconfined" else SECURITY_REASONS["unknown"]
    if key in ("seccomp", "apparmor"):
        if value in ("builtin", "docker-default", "runtime/default"):
            return None
        return SECURITY_REASONS[key] if value == "unconfined" else SECURITY_REASONS["profile"]
    if key == "label":
        kind, _, label = value.partition(":")
        if kind.strip() == "type" and label.strip() in _CONFINED_LABEL_TYPES:
            return None
        if value == "disable" or (kind.strip() == "type" and label.strip() in _UNCONFINED_LABEL_TYPES):
            return SECURITY_REASONS["label"]
        return SECURITY_REASONS["profile"]
    if key == "writable-cgroups":
        return None if value in ("false", "0", "f") else SECURITY_REASONS["writable-cgroups"]
    return SECURITY_REASONS["unknown"]


def _system_controls(container: Mapping[str, Any], name: str) -> Iterator[HostEquivalent]:
    for control in items(container.get("systemControls")):
        key = control.get("namespace") if isinstance(control, Mapping) else None
        detail = safe(key.strip(), MAX_NAME) if isinstance(key, str) and key.strip() else "?"
        yield HostEquivalent(name, SYSTEM_CONTROL, detail, SYSCTL_REASON, level=HOST_ACCESS)


# -- helpers -----------------------------------------------------------------------------------------------------


def _unwrap(value: Any) -> Mapping[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    if "containerDefinitions" not in value:
        for key in ("taskDefinition", "daemonTaskDefinition"):
            inner = value.get(key)
            if isinstance(inner, Mapping):
                return inner
    return value


def _dedupe(found: list[HostEquivalent]) -> list[HostEquivalent]:
    """One entry per (container, kind, detail): a writable mount wins over a read-only one of the same path, and
    the more serious level over the other."""
    best: dict[tuple[str | None, str, str], HostEquivalent] = {}
    for item in found:
        key = (item.container, item.kind, item.detail)
        current = best.get(key)
        if current is None or _rank(item) < _rank(current):
            best[key] = item
    return list(best.values())


def _rank(item: HostEquivalent) -> tuple[int, bool]:
    return LEVELS.index(item.level), item.read_only


def _capped(found: list[HostEquivalent]) -> list[HostEquivalent]:
    """At most MAX_RESULTS; past it the last item names how many more there were, at their most serious level
    (host-equivalent items come first, so none of them hides behind host access)."""
    if len(found) <= MAX_RESULTS:
        return found
    kept, rest = found[: MAX_RESULTS - 1], found[MAX_RESULTS - 1 :]
    level = min((item.level for item in rest), key=LEVELS.index)
    reason = "more were found than a notice lists; see the revision itself"
    return [*kept, HostEquivalent(None, TRUNCATED, f"{len(rest)} more", reason, level=level)]


def host_lines(definition: Any, *, bare_containers: bool = False) -> list[str]:
    """What the (fixed) definition still reaches on the host, one line each with its level and why (core/hostroot.py:
    the verdict model every output shows). `fix` changes none of it."""
    lines = explained(host_equivalents(definition))
    if lines:
        lines.append(UNCHANGED)
    if bare_containers and any(c.get("mountPoints") for c in _containers(definition)):
        lines.append(
            "note: a list of container definitions names no volumes: the host paths its mountPoints reach "
            "are not judged here; run fix on the whole task definition"
        )
    return lines


def _containers(definition: Any) -> list[dict[str, Any]]:
    containers = definition.get("containerDefinitions") if isinstance(definition, dict) else None
    return [c for c in containers if isinstance(c, dict)] if isinstance(containers, list) else []
