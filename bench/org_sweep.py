"""The organization sweep on Step Functions over emulated member accounts, each account-Region with ECS buckets of
its own, at several MaxConcurrency settings.

  python -m bench.org_sweep [--accounts 100] [--regions 4] [--concurrency 25,50,100] [--smallest 8] [--spread 8]
                            [--rate 2] [--burst 4]

A moto server in this process, with the ECS daemon API emulated (emulators/server.py: each item lists its daemon
task definitions once and finds none), holds an organization (members reached through moto's STS) and executes the
hub's synthesized state machine (synthesized once per concurrency setting, with `orgSweepConcurrency`); its Lambda tasks
call the real handlers in this process (demo/org_sweep_machine.py). The handlers' AWS calls go through
emulators/throttle_proxy.py keyed per (account, Region): each account-Region has its own per-operation token buckets, as
ECS keeps them. Account-Region k has `smallest + k % spread` ACTIVE revisions (every 5th privileged), report mode.

Printed per setting: the execution's wall time, the slowest item's floor (the shortest time its emulated buckets
allow: burst first, then the sustained rate, for describes and list pages), the waves (items / MaxConcurrency, rounded
up), the ratio wall / (slowest floor x waves), calls per item, throttled answers, whether every verdict is right, and
the time an item takes beyond its own floor on average (wall x MaxConcurrency / items - the mean floor: the map keeps
MaxConcurrency items under way; meaningful where this machine is not the bound).
Then the item function's peak memory (tracemalloc) sweeping the largest item alone.  [target: <= 1.2x]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from demo.org_sandbox import Organization
from demo.org_sweep_machine import (
    CONTROL_FUNCTION,
    CONTROL_HANDLER,
    ITEM_FUNCTION,
    ITEM_HANDLER,
    Names,
    SynthesizedSweep,
    run,
)
from demo.sandbox import ACCOUNT, REGION, LambdaContext, Sandbox
from emulators.throttle_proxy import BucketRate, ThrottleProxy

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1", "eu-central-1", "ap-northeast-1"]
BUCKET = "ecs-remediate-org-sweep-bench"
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def floor(revisions: int, rate: BucketRate) -> float:
    """One item's describes and list pages at its buckets (both `rate`): burst first, then the sustained rate."""
    pages = max(1, -(-revisions // 100))
    return max(0.0, (revisions - rate.burst) / rate.per_second, (pages - rate.burst) / rate.per_second)


def seed(org: Organization, account: str, region: str, count: int) -> dict[str, str]:
    ecs = org.client("ecs", account, region)
    truth = {}
    for n in range(count):
        privileged = n % 5 == 0
        response = ecs.register_task_definition(
            family=f"svc-{n % 4}",
            containerDefinitions=[{"name": "app", "image": "nginx", "memory": 64, "privileged": privileged}],
        )
        truth[response["taskDefinition"]["taskDefinitionArn"]] = "FAIL" if privileged else "PASS"
    return truth


def patch_lambda() -> None:
    """moto's Docker-free Lambda (in this process, behind the server) calls our handlers."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from ecs_remediate.functions import org_sweep as org_sweep_handler

    handlers = {ITEM_FUNCTION: org_sweep_handler.item_handler, CONTROL_FUNCTION: org_sweep_handler.control_handler}

    def invoke(_backend: Any, function_name: str, _q: Any, body: Any, _h: Any, response: Any) -> bytes:
        try:
            result = handlers[function_name.rsplit(":", 1)[-1]](json.loads(body or "{}"), LambdaContext())
        except Exception as error:  # noqa: BLE001 - as Lambda reports an unhandled error
            response["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
        return json.dumps(result).encode()

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.org_sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--regions", type=int, default=4, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--concurrency", default="25,50,100", help="MaxConcurrency settings, comma-separated")
    parser.add_argument("--smallest", type=int, default=8, help="revisions of the smallest account-Region")
    parser.add_argument("--spread", type=int, default=8, help="account-Region k has smallest + k %% spread")
    parser.add_argument("--rate", type=float, default=2.0, help="per account-Region: describe and list calls/s")
    parser.add_argument("--burst", type=int, default=4, help="per account-Region: the buckets' burst")
    args = parser.parse_args(argv)
    settings = [int(c) for c in args.concurrency.split(",")]
    regions = REGIONS[: args.regions]
    os.environ.update(FAKE_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)

    from moto.iam.models import get_account_id_from

    from bench.sweep import free_port
    from emulators.server import EmulatorServer  # moto + the ECS daemon API the item also lists

    machines = {c: SynthesizedSweep.build({"regions": ",".join(regions), "orgSweepConcurrency": c}) for c in settings}
    server = EmulatorServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = f"http://{host}:{port}"
    os.environ["MOTO_PORT"] = str(port)  # where moto's Step Functions sends its tasks' calls (Lambda, S3)
    import requests

    config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    requests.post(f"{moto}/moto-api/config", json=config, timeout=10)
    patch_lambda()
    rate = BucketRate(args.rate, args.burst)
    limits = {
        "DescribeTaskDefinition": rate,
        "ListTaskDefinitions": rate,
        "ListTaskDefinitionFamilies": rate,
        "RegisterTaskDefinition": BucketRate(1.0, 1),
        "ListDaemonTaskDefinitions": rate,
        "DescribeDaemonTaskDefinition": rate,
    }
    results: list[dict[str, Any]] = []
    try:
        started = time.monotonic()
        sandbox = Sandbox(endpoint_url=moto).create()
        sandbox.client("s3").create_bucket(Bucket=BUCKET)
        org = Organization(endpoint_url=moto).create([f"member-{i:03d}" for i in range(args.accounts)])
        organizations = org.hub_client("organizations")
        root = organizations.list_roots()["Roots"][0]["Id"]
        ou = organizations.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
        for account in org.accounts:
            organizations.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
        places = [(a, r) for a in org.accounts for r in regions]
        sizes = {place: args.smallest + k % args.spread for k, place in enumerate(places)}
        truth: dict[str, str] = {}
        with ThreadPoolExecutor(8) as pool:
            for part in pool.map(lambda kv: seed(org, kv[0][0], kv[0][1], kv[1]), sizes.items()):
                truth.update(part)
        print(
            f"seeded {len(truth)} revisions in {len(places)} account-Regions ({min(sizes.values())} to "
            f"{max(sizes.values())} each) in {time.monotonic() - started:.0f} s; per account-Region: "
            f"{rate.burst} burst / {rate.per_second:g} per s for describe and list",
            file=sys.stderr,
        )
        names = Names(BUCKET, sandbox.table_name, sandbox.exemptions_table, sandbox.topic_arn)
        slowest = max(floor(n, rate) for n in sizes.values())
        mean_floor = sum(floor(n, rate) for n in sizes.values()) / len(sizes)
        client_burst = max(1, rate.burst - 1)  # a token in reserve, as the CLI's defaults keep
        client_rates = f"describe={rate.per_second:g}/{client_burst},list={rate.per_second:g}/{client_burst}"
        with ThrottleProxy(moto, limits, account_of=get_account_id_from) as proxy:
            for concurrency, machine in machines.items():
                env = {
                    **machine.environment(ITEM_HANDLER, names),
                    **machine.environment(CONTROL_HANDLER, names),
                    "MODE": "report",
                    "ORG_SWEEP_OUS": ou,
                    "SWEEP_RATES": client_rates,
                    "AWS_ENDPOINT_URL": proxy.url,
                    "AWS_ENDPOINT_URL_S3": moto,  # the proxy forwards POST and GET only; S3 is not throttled here
                }
                os.environ.update(env)
                from ecs_remediate.adapters import aws
                from ecs_remediate.functions import org_sweep as org_sweep_handler

                aws.reset_clients()
                org_sweep_handler.config.cache_clear()
                org_sweep_handler.members.cache_clear()
                proxy.reset()
                sfn = sandbox.client("stepfunctions")
                arn = sfn.create_state_machine(
                    name=f"bench-{concurrency}",
                    definition=machine.definition(names),
                    roleArn=f"arn:aws:iam::{ACCOUNT}:role/bench",
                )["stateMachineArn"]
                began = time.monotonic()
                described = run(sfn, arn, f"bench-c{concurrency}")
                wall = time.monotonic() - began
                if described["status"] != "SUCCEEDED":
                    raise RuntimeError(f"the execution ended {described['status']}: {described.get('cause')}")
                report = json.loads(
                    sandbox.client("s3")
                    .get_object(Bucket=BUCKET, Key=f"runs/bench-c{concurrency}/report.json")["Body"]
                    .read()
                )
                got = {row["taskDefinitionArn"]: row["status"] for row in report["rows"]}
                wrong = sum(1 for arn_, status in truth.items() if got.get(arn_) != status)
                waves = math.ceil(len(places) / concurrency)
                results.append(
                    {
                        "concurrency": concurrency,
                        "status": described["status"],
                        "wall": wall,
                        "waves": waves,
                        "ratio": wall / (slowest * waves),
                        # MaxConcurrency items are always under way: each took wall x MaxConcurrency / items on average
                        "beyond": wall * min(concurrency, len(places)) / len(places) - mean_floor,
                        "rows": len(report["rows"]),
                        "errors": report["counts"]["ERROR"],
                        "wrong": wrong,
                        "calls_per_item": sum(proxy.calls.values()) / len(places),
                        "calls": dict(proxy.calls),
                        "throttles": sum(proxy.throttles.values()),
                    }
                )
                os.environ.pop("AWS_ENDPOINT_URL", None)
            # The item function's peak memory: the largest item alone, traced.
            os.environ["AWS_ENDPOINT_URL"] = proxy.url
            from ecs_remediate.functions import org_sweep as org_sweep_handler

            largest = max(sizes, key=lambda p: sizes[p])
            tracemalloc.start()
            org_sweep_handler.item_handler(
                {"account": largest[0], "region": largest[1], "run": "bench-memory"}, LambdaContext()
            )
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            os.environ.pop("AWS_ENDPOINT_URL", None)
    finally:
        server.stop()
    print(
        f"Organization sweep on Step Functions: {args.accounts} accounts x {len(regions)} Regions = {len(places)} items"
    )
    print(f"  slowest item ({max(sizes.values())} revisions): floor {slowest:.1f} s; mean floor {mean_floor:.2f} s")
    for r in results:
        print(
            f"  MaxConcurrency {r['concurrency']:>4}: {r['wall']:6.1f} s wall, {r['waves']} waves, "
            f"{r['ratio']:.2f}x (slowest floor x waves); {r['rows']} rows, {r['errors']} ERROR, {r['wrong']} wrong, "
            f"{r['status']}; {r['calls_per_item']:.1f} calls per item, {r['throttles']} throttled; "
            f"{r['beyond']:.2f} s per item beyond its floor (mean)"
        )
    print(f"  calls (last setting): {results[-1]['calls']}")
    print(f"  item function peak memory (tracemalloc, largest item alone): {peak / 1e6:.1f} MB")
    print("  [target: <= 1.2x the slowest item's floor x waves]")
    return 0 if all(r["wrong"] == 0 and r["errors"] == 0 and r["status"] == "SUCCEEDED" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
