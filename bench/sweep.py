"""Sweep benchmark: `ecs-remediate scan` (both scopes), Prowler and Cloud Custodian against the same ECS
emulator: a moto server behind `throttle_proxy` (per-operation token buckets, 100-item pages).

  python -m bench [--sizes 1000,5000] [--families 1000] [--scopes latest,active] [--inventories describe,config]
                  [--config-limit 2/5] [--daemon-api emulated|absent] [--prowler] [--custodian] [--json FILE]

Seeds N ACTIVE revisions in F families straight into moto (not through the proxy), every 10th revision
privileged, with AWS Config recording them (its advanced query answered by emulators/config_queries.py), then for each
size runs each tool with full buckets and prints, per run: wall time, the floor the emulated rates set for the
describes the describe path needs, the ratio, calls and throttles per operation, ERROR rows, and verdicts present /
expected / wrong. `--inventories config` adds the active-scope scan with `--inventory config` (ratio to the same
describe floor); `--config-limit` sets the emulated (and the client's) Config query rate. The ECS daemon API is
emulated behind the same proxy (no daemon task definitions are seeded: the sweep lists them once and finds none);
`--daemon-api absent` makes the proxy answer every daemon operation as an endpoint without them does
(UnknownOperationException), as in a Region without ECS Managed Daemons.

Prowler (pins boto3 1.40.61) and Custodian run from their own virtualenvs, `.venv-prowler` and `.venv-c7n`
(`make bench-prowler` creates them); they are skipped with a note when absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from emulators.throttle_proxy import DEFAULT_LIMITS, BucketRate, Injector, ThrottleProxy

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
PROWLER = ROOT / ".venv-prowler" / "bin" / "prowler"
CUSTODIAN = ROOT / ".venv-c7n" / "bin" / "custodian"
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
CUSTODIAN_POLICY = """\
policies:
  - name: ecs-privileged-containers
    resource: aws.ecs-task-definition
    filters:
      - type: value
        key: "containerDefinitions[].privileged"
        op: contains
        value: true
"""


@dataclass
class Truth:
    privileged: dict[str, bool] = field(default_factory=dict)  # every ACTIVE revision
    latest: dict[str, str] = field(default_factory=dict)  # family -> newest ARN

    def expected(self, scope: str) -> dict[str, str]:
        arns = self.latest.values() if scope == "latest" else self.privileged
        return {arn: "FAIL" if self.privileged[arn] else "PASS" for arn in arns}


@dataclass
class Run:
    tool: str
    size: int
    scope: str
    seconds: float
    floor: float
    calls: dict[str, int]
    throttles: dict[str, int]
    errors: int | None  # ERROR rows; None for tools that have no such verdict (they drop the revision)
    present: int
    expected: int
    wrong: int
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor if self.floor else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(moto: str, truth: Truth, families: int, total: int) -> None:
    """Add revisions until there are `total`, spread round-robin over `families` families."""
    ecs = boto3.client("ecs", region_name=REGION, endpoint_url=moto)
    start = len(truth.privileged)
    per_family: dict[int, list[int]] = {}
    for n in range(start, total):
        per_family.setdefault(n % families, []).append(n)

    def register(family: int) -> list[tuple[str, bool]]:
        out = []
        for n in per_family[family]:
            privileged = n % 10 == 0
            container = {"name": "app", "image": "nginx", "memory": 64, "privileged": privileged}
            response = ecs.register_task_definition(
                family=f"bench-{family:04d}",
                containerDefinitions=[container, {"name": "log", "image": "fluent-bit", "memory": 32}],
            )
            out.append((response["taskDefinition"]["taskDefinitionArn"], privileged))
        return out

    with ThreadPoolExecutor(8) as pool:
        for results in pool.map(register, sorted(per_family)):
            for arn, privileged in results:
                truth.privileged[arn] = privileged
                truth.latest[arn.split("/")[-1].rsplit(":", 1)[0]] = arn


def floor_seconds(describes: int, pages: int) -> float:
    """The shortest time the emulated buckets allow: burst first, then the sustained rate."""
    d, lists = DEFAULT_LIMITS["DescribeTaskDefinition"], DEFAULT_LIMITS["ListTaskDefinitions"]
    return max(0.0, (describes - d.burst) / d.per_second, (pages - lists.burst) / lists.per_second)


def pages_for(items: int) -> int:
    return max(1, -(-items // 100))


CONFIG_QUERIES = ("SelectResourceConfig", "SelectAggregateResourceConfig")


def run_ours(
    proxy: ThrottleProxy, truth: Truth, size: int, scope: str, inventory: str = "describe", config_rate: str = ""
) -> Run:
    from ecs_remediate.adapters import aws
    from ecs_remediate.core.config import Config
    from ecs_remediate.sweep import run as sweep

    proxy.reset()
    os.environ["AWS_ENDPOINT_URL"] = proxy.url
    aws.reset_clients()
    rates = sweep.parse_rates([f"config={config_rate}"] if config_rate else [])
    report = sweep.sweep([REGION], Config(), scope=scope, inventory=inventory, rates=rates)
    expected = truth.expected(scope)
    got = {f.task_definition_arn: f.status for f in report.findings if f.status != "ERROR"}
    judged = len(truth.latest) if scope == "latest" else len(truth.privileged)
    listed = len(truth.latest) if scope == "latest" else len(truth.privileged)
    notes = [outcome.text().split(": ", 1)[1] for outcome in report.inventory]
    notes += [f"no daemon API: {why}" for why in sorted(set(report.daemon_api_absent.values()))]
    note = "; ".join(notes)
    return Run(
        "ecs-remediate scan" + ("" if inventory == "describe" else f" --inventory {inventory}"),
        size,
        scope,
        report.seconds,
        floor_seconds(judged, pages_for(listed)),  # the describe path's floor, whichever path ran
        dict(proxy.calls),
        dict(proxy.throttles),
        report.counts()["ERROR"],
        sum(1 for arn in expected if arn in got),
        len(expected),
        sum(1 for arn, status in got.items() if expected.get(arn) != status),
        note,
    )


PROWLER_CHECK = "ecs_task_definitions_no_privileged_containers"


@dataclass
class ProwlerRun:
    verdicts: dict[str, str]  # resource ARN -> PASS | FAIL | ...
    seconds: float
    note: str = ""  # why the run is incomplete (timeout)


def prowler_verdicts(endpoint: str, timeout: float, prowler: Path = PROWLER, region: str = REGION) -> ProwlerRun:
    """Run Prowler's privileged-container check against an emulator endpoint (fake credentials,
    AWS_ENDPOINT_URL) and read its verdicts per task definition revision from the JSON-OCSF output."""
    out = Path(tempfile.mkdtemp(prefix="prowler-"))
    env = {**_base_env(), "AWS_ENDPOINT_URL": endpoint}
    command = [
        str(prowler),
        "aws",
        "--checks",
        PROWLER_CHECK,
        "-f",
        region,
        "--output-formats",
        "json-ocsf",
        "--output-directory",
        str(out),
        "--no-banner",
    ]
    started = time.monotonic()
    note = ""
    try:
        subprocess.run(command, env=env, capture_output=True, timeout=timeout, check=False, cwd=out)
    except subprocess.TimeoutExpired:
        note = f"stopped after {timeout:.0f} s"
    seconds = time.monotonic() - started
    verdicts: dict[str, str] = {}
    for path in out.glob("*.ocsf.json"):
        try:
            findings = json.loads(path.read_text() or "[]")
        except ValueError:
            continue
        for finding in findings:
            for resource in finding.get("resources", []):
                verdicts[resource.get("uid", "")] = str(finding.get("status_code", ""))
    shutil.rmtree(out, ignore_errors=True)
    return ProwlerRun(verdicts, seconds, note)


def run_prowler(proxy: ThrottleProxy, truth: Truth, size: int, timeout: float) -> Run:
    proxy.reset()
    run = prowler_verdicts(proxy.url, timeout)
    return _compare("prowler 5.46", size, run.seconds, proxy, truth, run.verdicts, run.note)


def run_custodian(proxy: ThrottleProxy, truth: Truth, size: int, timeout: float) -> Run:
    """Custodian reports only the matches (FAIL); a revision it does not list counts as its PASS."""
    proxy.reset()
    out = Path(tempfile.mkdtemp(prefix="bench-c7n-"))
    (out / "policy.yml").write_text(CUSTODIAN_POLICY)
    env = {**_base_env(), "AWS_ENDPOINT_URL": proxy.url}
    command = [str(CUSTODIAN), "run", "-s", str(out / "run"), "--region", REGION, "--cache-period", "0"]
    command.append(str(out / "policy.yml"))
    started = time.monotonic()
    note = ""
    try:
        done = subprocess.run(command, env=env, capture_output=True, timeout=timeout, check=False, cwd=out)
        if done.returncode != 0:
            note = f"exit {done.returncode}: {done.stderr.decode()[-200:]}"
    except subprocess.TimeoutExpired:
        note = f"stopped after {timeout:.0f} s"
    seconds = time.monotonic() - started
    matched_path = out / "run" / "ecs-privileged-containers" / "resources.json"
    verdicts: dict[str, str] = {}
    if matched_path.exists():
        matched = {r["taskDefinitionArn"] for r in json.loads(matched_path.read_text())}
        verdicts = {arn: "FAIL" if arn in matched else "PASS" for arn in truth.privileged}
        if note:  # a run that failed part-way cannot claim the PASSes
            verdicts = {arn: v for arn, v in verdicts.items() if v == "FAIL"}
    shutil.rmtree(out, ignore_errors=True)
    return _compare("custodian 0.9.53", size, seconds, proxy, truth, verdicts, note)


def _compare(
    tool: str, size: int, seconds: float, proxy: ThrottleProxy, truth: Truth, verdicts: dict[str, str], note: str
) -> Run:
    expected = truth.expected("active")
    present = {arn: v for arn, v in verdicts.items() if arn in expected}
    return Run(
        tool,
        size,
        "active",
        seconds,
        floor_seconds(len(expected), pages_for(len(expected))),
        dict(proxy.calls),
        dict(proxy.throttles),
        None,
        len(present),
        len(expected),
        sum(1 for arn, v in present.items() if expected[arn] != v),
        note,
    )


def without_operations(operations: frozenset[str]) -> Injector:
    """The proxy answers `operations` as an ECS endpoint that does not have them (AWS's JSON protocol: HTTP 400
    UnknownOperationException)."""

    def inject(operation: str, _: dict[str, Any]) -> tuple[int, str, str] | None:
        if operation in operations:
            return 400, "UnknownOperationException", f"Unknown operation {operation}"
        return None

    return inject


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **FAKE_ENV}


def print_table(runs: list[Run]) -> None:
    short = {
        "ListTaskDefinitionFamilies": "ListFam",
        "ListTaskDefinitions": "ListTD",
        "DescribeTaskDefinition": "Describe",
        "SelectResourceConfig": "Select",
        "ListDaemonTaskDefinitions": "ListDaemonTD",
    }
    width = max([20, *(len(r.tool) for r in runs)])
    print(
        f"{'tool':<{width}} {'revisions':>9} {'scope':<7} {'wall s':>7} {'floor s':>7} {'ratio':>6} "
        f"{'ERROR':>5} {'verdicts':>12} {'wrong':>5}  calls (throttled)"
    )
    for r in runs:
        calls = ", ".join(
            f"{short.get(op, op)} {n}" + (f" ({r.throttles[op]})" if r.throttles.get(op) else "")
            for op, n in sorted(r.calls.items())
            if op in short
        )
        print(
            f"{r.tool:<{width}} {r.size:>9} {r.scope:<7} {r.seconds:>7.1f} {r.floor:>7.1f} {r.ratio:>5.2f}x "
            f"{'-' if r.errors is None else r.errors:>5} {f'{r.present}/{r.expected}':>12} {r.wrong:>5}  {calls}"
            + (f"  [{r.note}]" if r.note else "")
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000", help="ACTIVE revisions, ascending (default 1000,5000)")
    parser.add_argument("--families", type=int, default=1000)
    parser.add_argument("--prowler", action="store_true", help="also run Prowler from .venv-prowler")
    parser.add_argument("--custodian", action="store_true", help="also run Cloud Custodian from .venv-c7n")
    parser.add_argument("--scopes", default="latest,active")
    parser.add_argument(
        "--inventories", default="describe,config", help="describe, config: the latter in the active scope only"
    )
    parser.add_argument(
        "--config-limit",
        default="",
        metavar="PER_SECOND/BURST",
        help="emulated AWS Config query rate (default 2/5); the client runs at the same rate with one less burst",
    )
    parser.add_argument(
        "--daemon-api",
        choices=("emulated", "absent"),
        default="emulated",
        help="absent: the proxy answers the daemon operations as an endpoint without them (default emulated)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per external tool run")
    parser.add_argument("--json", help="write the runs as JSON here too")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    os.environ.update(FAKE_ENV)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from emulators import moto_fidelity
    from emulators.config_queries import start_recorder
    from emulators.daemon_emulator import DaemonEmulator
    from emulators.server import EmulatorServer

    moto_fidelity.apply()
    limits = dict(DEFAULT_LIMITS)
    config_rate = ""
    if args.config_limit:
        per_second, _, burst = args.config_limit.partition("/")
        emulated = BucketRate(float(per_second), int(burst or 1))
        limits.update({op: emulated for op in CONFIG_QUERIES})
        config_rate = f"{emulated.per_second:g}/{max(1, emulated.burst - 1)}"
    inventories = args.inventories.split(",")

    server = EmulatorServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = f"http://{host}:{port}"
    text = ", ".join(f"{op} {r.burst} burst / {r.per_second:g} per s" for op, r in limits.items())
    print(f"emulated limits: {text}; pages of 100", file=sys.stderr)
    start_recorder(
        boto3.client("config", region_name=REGION, endpoint_url=moto),
        boto3.client("s3", region_name=REGION, endpoint_url=moto),
    )
    runs: list[Run] = []
    truth = Truth()
    try:
        daemon_only = frozenset(op for op in DaemonEmulator.OPERATIONS if "Daemon" in op)  # not the tag calls
        inject = without_operations(daemon_only) if args.daemon_api == "absent" else None
        with ThrottleProxy(moto, limits, inject=inject) as proxy:
            for size in sizes:
                started = time.monotonic()
                seed(moto, truth, min(args.families, size), size)
                print(
                    f"seeded {size} revisions in {len(truth.latest)} families in {time.monotonic() - started:.0f} s",
                    file=sys.stderr,
                )
                for scope in args.scopes.split(","):
                    for inventory in inventories:
                        if inventory != "describe" and scope != "active":
                            continue  # the Config plan is for the active scope
                        runs.append(run_ours(proxy, truth, size, scope, inventory, config_rate))
                        print_table(runs[-1:])
                if args.prowler:
                    if PROWLER.exists():
                        runs.append(run_prowler(proxy, truth, size, args.timeout))
                        print_table(runs[-1:])
                    else:
                        print(f"skipped Prowler: {PROWLER} not found (make bench-prowler)", file=sys.stderr)
                if args.custodian:
                    if CUSTODIAN.exists():
                        runs.append(run_custodian(proxy, truth, size, args.timeout))
                        print_table(runs[-1:])
                    else:
                        print(f"skipped Custodian: {CUSTODIAN} not found (make bench-prowler)", file=sys.stderr)
    finally:
        server.stop()
    print()
    print_table(runs)
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ | {"ratio": r.ratio} for r in runs], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
