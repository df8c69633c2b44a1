"""`ecs-remediate scan --accounts` over emulated member accounts, each with ECS buckets of its own.

  python -m bench.org_scan [--accounts 20] [--smallest 40] [--step 4] [--rate 5] [--burst 10]

A moto server (this process) holds an organization whose members are reached through moto's STS; account i has
`smallest + step * i` ACTIVE revisions in us-east-1 (every 10th privileged), seeded straight into moto. The scan
runs as an operator would run it (a CLI process of its own, through the member role) against emulators/throttle_proxy.py
keyed per (account, Region): each account has its own per-operation token buckets, as ECS keeps them.

Measured in the same run: the slowest account swept alone (the baseline), then every account at once. Printed:
each wall time, the slowest account's floor (the shortest time its emulated buckets allow: burst first, then the
sustained rate), the ratios, the sum of the floors (what sweeping the accounts one after another could not beat),
calls and throttles, and whether every verdict is right.  [target: all accounts <= 1.2x the slowest floor]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from demo.org_sandbox import Organization
from emulators.throttle_proxy import BucketRate, ThrottleProxy

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


@dataclass
class Scan:
    accounts: int
    seconds: float  # wall time of the CLI process
    reported: float  # the scan's own figure (its summary line)
    rows: int
    errors: int
    wrong: int
    code: int


def floor(revisions: int, rate: BucketRate) -> float:
    """Describes and list pages of one account's active-scope scan at its buckets (both are `rate`)."""
    pages = max(1, -(-revisions // 100))
    return max(0.0, (revisions - rate.burst) / rate.per_second, (pages - rate.burst) / rate.per_second)


def seed(org: Organization, account: str, count: int) -> dict[str, str]:
    """`count` revisions in 10 families; every 10th privileged. Returns ARN -> expected status."""
    ecs = org.client("ecs", account, REGION)
    truth = {}
    for n in range(count):
        privileged = n % 10 == 0
        response = ecs.register_task_definition(
            family=f"svc-{n % 10}",
            containerDefinitions=[{"name": "app", "image": "nginx", "memory": 64, "privileged": privileged}],
        )
        truth[response["taskDefinition"]["taskDefinitionArn"]] = "FAIL" if privileged else "PASS"
    return truth


def scan(proxy_url: str, accounts: list[str], rate: BucketRate, truth: dict[str, str]) -> Scan:
    env = {
        **{k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ},
        **FAKE_ENV,
        "AWS_ENDPOINT_URL": proxy_url,
        "PYTHONPATH": str(ROOT / "lambda"),
    }
    client_burst = max(1, rate.burst - 2)  # a little reserve, as the CLI's defaults keep
    rates = f"describe={rate.per_second:g}/{client_burst},list={rate.per_second:g}/{client_burst}"
    command = [sys.executable, "-m", "ecs_remediate", "scan", "--accounts", ",".join(accounts)]
    command += ["--region", REGION, "--scope", "active", "--output", "json", "-q", "--rate", rates]
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    rows = json.loads(done.stdout or "[]")
    summary = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    reported = float(summary.rsplit(";", 1)[-1].strip().rstrip("s") or 0) if summary.endswith("s") else 0.0
    expected = {arn: status for arn, status in truth.items() if arn.split(":")[4] in accounts}
    got = {row["taskDefinitionArn"]: row["status"] for row in rows}
    wrong = sum(1 for arn, status in expected.items() if got.get(arn) != status)
    errors = sum(1 for row in rows if row["status"] == "ERROR")
    return Scan(len(accounts), seconds, reported, len(rows), errors, wrong, done.returncode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.org_scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--smallest", type=int, default=40, help="revisions of the smallest account")
    parser.add_argument("--step", type=int, default=4, help="revisions more per account")
    parser.add_argument("--rate", type=float, default=5.0, help="per account: describe and list calls per second")
    parser.add_argument("--burst", type=int, default=10, help="per account: the buckets' burst")
    args = parser.parse_args(argv)
    os.environ.update(FAKE_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from moto.iam.models import get_account_id_from

    from bench.sweep import free_port
    from emulators.server import EmulatorServer  # moto + the ECS daemon API the sweep also lists

    server = EmulatorServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = f"http://{host}:{port}"
    rate = BucketRate(args.rate, args.burst)
    limits = {
        "DescribeTaskDefinition": rate,
        "ListTaskDefinitions": rate,
        "ListTaskDefinitionFamilies": rate,
        "RegisterTaskDefinition": BucketRate(1.0, 1),
    }
    try:
        started = time.monotonic()
        org = Organization(endpoint_url=moto).create([f"member-{i:02d}" for i in range(args.accounts)])
        sizes = {account: args.smallest + args.step * i for i, account in enumerate(org.accounts)}
        truth: dict[str, str] = {}
        with ThreadPoolExecutor(8) as pool:
            for part in pool.map(lambda item: seed(org, *item), sizes.items()):
                truth.update(part)
        print(
            f"seeded {len(truth)} revisions in {args.accounts} accounts ({min(sizes.values())} to "
            f"{max(sizes.values())} each) in {time.monotonic() - started:.0f} s; per account and Region: "
            f"{rate.burst} burst / {rate.per_second:g} per s for describe and list, pages of 100",
            file=sys.stderr,
        )
        slowest = max(sizes, key=lambda a: sizes[a])
        slowest_floor = floor(sizes[slowest], rate)
        summed = sum(floor(n, rate) for n in sizes.values())
        with ThrottleProxy(moto, limits, account_of=get_account_id_from) as proxy:
            alone = scan(proxy.url, [slowest], rate, truth)
            proxy.reset()
            everyone = scan(proxy.url, list(org.accounts), rate, truth)
            calls, throttles, places = dict(proxy.calls), dict(proxy.throttles), len(proxy.throttles_by_place)
    finally:
        server.stop()
    print(f"Organization scan benchmark: {args.accounts} accounts, each with ECS buckets of its own")
    print(f"  slowest account ({sizes[slowest]} revisions): floor {slowest_floor:.1f} s")
    for label, run in (("the slowest account alone", alone), (f"all {args.accounts} accounts at once", everyone)):
        print(
            f"  {label:<28} {run.seconds:6.1f} s wall ({run.reported:.1f} s by the scan): "
            f"{run.seconds / slowest_floor:.2f}x the slowest floor; {run.rows} rows, {run.errors} ERROR, "
            f"{run.wrong} wrong, exit {run.code}"
        )
    print(
        f"  all accounts vs the slowest alone (same run): {everyone.seconds / alone.seconds:.2f}x; the sum of the "
        f"floors (one account after another) is {summed:.0f} s, {summed / everyone.seconds:.1f}x the parallel scan"
    )
    print(f"  calls (all accounts): {calls}; throttled: {throttles or 'none'} in {places} (account, Region) buckets")
    print("  [target: all accounts <= 1.2x the slowest account's floor]")
    return 0 if everyone.wrong == 0 and everyone.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
