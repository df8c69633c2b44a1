"""Hub fairness benchmark (issue 23): one member's burst must not hold back another member's registration.

  python -m bench.hub_burst [--members 20] [--burst 2000] [--scale 1]

An organization in moto (demo/org_sandbox.py: 20 member accounts reached through moto's STS), the hub's function in
hub mode (MEMBER_ROLE_NAME) fed by the hub's event queue as the hub stack sets its mapping (batches of up to 1,000
gathered for a second, MaximumConcurrency 4; emulators/event_queue.py), and ECS behind emulators/throttle_proxy.py
with ECS's buckets per member account (bench/function_env.py's rates, `--scale` times faster).

  idle: each member but the first registers one privileged revision, one after another with the hub otherwise idle;
  burst: the first member registers `--burst` privileged revisions at once while each other member registers one,
      spread over the burst's registrations (in a process of their own, apart from the hub's workers and the proxy).

Each member's latency: from its registration (ECS's registeredAt) to its fixed copy's registeredAt, read back from
the member account. Reported: every other member's latency in the burst as a ratio to the idle hub's median; the
target is at most 2x. The burst member's own backlog keeps draining at its account's rate; the run stops once every
other member's copy exists (what is left of the backlog is counted, not waited for).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.function_env import REGION, SHARED, Context, emulator_process, limits, worker_env, worker_setup
from emulators.throttle_proxy import ThrottleProxy

ROOT = Path(__file__).resolve().parent.parent
MEMBER_ROLE = "ecs-remediate-member"
# infra/settings.py: HUB_QUEUE_BATCH_SIZE, HUB_QUEUE_BATCHING_WINDOW_SECONDS, HUB_DEFAULT_QUEUE_CONCURRENCY
HUB_BATCH_SIZE, HUB_WINDOW, HUB_CONCURRENCY = 1000, 1.0, 4


def privileged(family: str) -> dict[str, Any]:
    return {
        "family": family,
        "containerDefinitions": [
            {"name": "agent", "image": "public.ecr.aws/x/agent:1", "memory": 128, "privileged": True}
        ],
    }


def hub_worker(env: dict[str, str], scale: float, queue: dict[str, Any], stop: Any, trace: Any, noisy: str) -> None:
    """One concurrent invocation slot of the hub's mapping. For each other member's record it hands over, `trace` gets
    (account, when SQS took the message, when it was first received, when its invocation began, the batch's size, why
    it was deferred or ""); for each invocation ("invocation <pid>", began, ended, began, size, "")."""
    handler = worker_setup(env, scale)
    import boto3

    from emulators.event_queue import EventQueue

    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=env["AWS_ENDPOINT_URL"])
    events = EventQueue(sqs, **queue)

    def traced(event: dict[str, Any], context: Any) -> dict[str, Any]:
        began, size = time.time(), len(event["Records"])
        others = [r for r in event["Records"] if json.loads(r["body"]).get("account") != noisy]
        try:
            return dict(handler.queue_handler(event, context))
        finally:
            why = handler.delivery().deferred_why
            for record in others:
                attributes = record["attributes"]
                sent, received = (
                    int(attributes[name]) / 1000 for name in ("SentTimestamp", "ApproximateFirstReceiveTimestamp")
                )
                account = json.loads(record["body"]).get("account")
                trace.put((account, sent, received, began, size, why.get(record["messageId"], "")))
            trace.put((f"invocation {os.getpid()}", began, time.time(), began, size, ""))

    while not stop.is_set():
        events.poll(traced, Context(60.0 / scale), batch_size=HUB_BATCH_SIZE, wait=1, window=HUB_WINDOW / scale)


def feed_burst(moto: str, members: dict[str, str], queue_url: str, noisy: str, quiet: list[str], burst: int) -> None:
    """The members' registrations during the burst, each event put on the hub's queue as EventBridge would: the noisy
    member's `burst`, the quiet members' one each spread among them. In a process of its own: the members' pipelines
    are not the hub's, and in the bench's process they would share the throttling proxy's interpreter lock."""
    import boto3

    from demo.org_sandbox import Organization
    from emulators.event_queue import EventQueue

    org = Organization(endpoint_url=moto, members=members)
    queue = EventQueue(boto3.client("sqs", region_name=REGION, endpoint_url=moto), queue_url=queue_url)
    spacing = max(1, burst // (len(quiet) + 1))
    quiet_left = list(quiet)

    def register(account: str, family: str) -> None:
        response = org.register(account, REGION, privileged(family))
        queue.put(org.event_for(account, REGION, privileged(family), response))

    for n in range(burst):
        register(noisy, f"burst-{n % 200:03d}")
        if n % spacing == spacing // 2 and quiet_left:
            register(quiet_left.pop(0), "busy")
    for account in quiet_left:
        register(account, "busy")


def copy_latency(org: Any, account: str, family: str) -> float | None:
    """Seconds from the family's first revision to its fixed copy (the revision carrying the marker), or None."""
    ecs = org.client("ecs", account, REGION)
    arns = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
    if len(arns) < 2:  # no copy yet: the observer describes nothing (its load on the emulator stays small)
        return None
    described = [ecs.describe_task_definition(taskDefinition=a, include=["TAGS"]) for a in arns]
    source = min(described, key=lambda d: d["taskDefinition"]["revision"])["taskDefinition"]
    for item in described:
        if any(t["key"] == "ecs-remediate:source-revision" for t in item.get("tags") or []):
            return float((item["taskDefinition"]["registeredAt"] - source["registeredAt"]).total_seconds())
    return None


Invocation = tuple[str, float, float, int]  # (worker, began, ended, batch size)
Delivered = tuple[float, float, float, int, str]  # (sent, first received, invocation began, batch size, deferred why)


def _drain(trace: Any) -> tuple[dict[str, list[Delivered]], list[Invocation]]:
    """The workers' trace: each other member's deliveries in order (the idle phase's first), and every invocation."""
    import queue as queues

    seen: dict[str, list[Delivered]] = {}
    invocations: list[Invocation] = []
    while True:
        try:
            who, first, second, began, size, why = trace.get(timeout=1)
        except queues.Empty:
            return seen, invocations
        if who.startswith("invocation "):
            invocations.append((who.split()[1], first, second, size))
        else:
            seen.setdefault(who, []).append((first, second, began, size, why))


def print_breakdown(
    busy: dict[str, float], seen: dict[str, list[Delivered]], invocations: list[Invocation], scale: float
) -> None:
    """Where each other member's latency went: in the queue until a poller took it, from then until its batch's
    invocation began (the batching window, and waiting for a free invocation), and from then to its copy; with the
    burst's deliveries before the last, and why each was deferred. For one that waited in the queue over a second,
    what each invocation slot was doing meanwhile."""
    print("member: latency = queued + gathered + handled (s) of its last delivery, batch size [earlier: deferred why]")
    for account, latency in sorted(busy.items(), key=lambda item: item[1]):
        deliveries = seen.get(account, [])[1:]  # the idle phase's first
        if not deliveries:
            continue
        sent, received, began, size, _ = deliveries[-1]
        queued, gathered = max(0.0, received - sent), max(0.0, began - received)
        handled = latency - queued - gathered
        parts = " + ".join(f"{part * scale:.2f}" for part in (queued, gathered, handled))
        earlier = [why or "not deferred" for *_, why in deliveries[:-1]]
        print(
            f"  {account}: {latency * scale:.2f} = {parts}, {size}"
            + (f" [earlier: {', '.join(earlier)}]" if earlier else "")
        )
        if queued > 1.0:
            busy_then = [i for i in invocations if i[1] < received and i[2] > sent]
            print(
                "    invocations meanwhile (slot: from, to, records; s from its sending): "
                + "; ".join(f"{w}: {(b - sent) * scale:.1f}, {(e - sent) * scale:.1f}, {n}" for w, b, e, n in busy_then)
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hub_burst", description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=HUB_CONCURRENCY, help="the mapping's MaximumConcurrency")
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--limit", type=float, default=900.0)
    args = parser.parse_args(argv)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": REGION})
    sys.path.insert(0, str(ROOT / "lambda"))
    import logging

    import boto3

    from demo.org_sandbox import Organization
    from demo.sandbox import Sandbox
    from emulators.event_queue import EventQueue
    from emulators.server import account_of

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    emulator = emulator_process()
    moto = emulator.__enter__()
    urllib.request.urlopen(urllib.request.Request(f"{moto}/moto-api/reset", method="POST")).read()
    scale = args.scale
    try:
        sandbox = Sandbox(endpoint_url=moto).create()
        org = Organization(endpoint_url=moto).create([f"member-{i:02d}" for i in range(args.members)])
        noisy, *quiet = org.accounts
        queue = EventQueue(boto3.client("sqs", region_name=REGION, endpoint_url=moto)).create()
        context = multiprocessing.get_context("spawn")
        with ThrottleProxy(moto, limits(scale), shared=SHARED, account_of=account_of(moto)) as proxy:
            env = worker_env({**sandbox.env(MEMBER_ROLE_NAME=MEMBER_ROLE), **queue.env()}, moto, proxy.url)
            stop, trace = context.Event(), context.Queue()
            spec = {"queue_url": queue.queue_url, "queue_arn": queue.queue_arn, "dlq_url": queue.dlq_url}
            workers = [
                context.Process(target=hub_worker, args=(env, scale, spec, stop, trace, noisy))
                for _ in range(args.concurrency)
            ]
            for worker in workers:
                worker.start()
            time.sleep(args.warmup)

            def register(account: str, family: str) -> None:
                response = org.register(account, REGION, privileged(family))
                queue.put(org.event_for(account, REGION, privileged(family), response))

            def wait_for(accounts: list[str], family: str) -> dict[str, float]:
                ends = time.time() + args.limit
                found: dict[str, float] = {}
                while len(found) < len(accounts) and time.time() < ends:
                    for account in accounts:
                        if account not in found and (latency := copy_latency(org, account, family)) is not None:
                            found[account] = latency
                    time.sleep(1.0)  # latencies come from registeredAt: polling less often loads the emulator less
                return found

            # Idle: one registration at a time.
            idle: dict[str, float] = {}
            for account in quiet:
                register(account, "idle")
                idle.update(wait_for([account], "idle"))
            # Burst: the noisy member's registrations, the quiet members' spread among them.
            feeder = context.Process(
                target=feed_burst, args=(moto, dict(org.members), queue.queue_url, noisy, quiet, args.burst)
            )
            feeder.start()
            feeder.join()
            busy = wait_for(quiet, "busy")
            backlog = queue.depth()
            seen, invocations = _drain(trace)
            stop.set()
            for worker in workers:
                worker.join(timeout=60)
            throttles = dict(proxy.throttles)
    finally:
        emulator.__exit__(None, None, None)
    if busy:
        print("the others' latencies during the burst, s:", " ".join(f"{v * scale:.2f}" for v in sorted(busy.values())))
        print_breakdown(busy, seen, invocations, scale)
    baseline = statistics.median(idle.values()) if idle else 0.0
    ratios = {a: busy[a] / baseline for a in busy} if baseline else {}
    worst = max(ratios.values()) if ratios else float("inf")
    print(
        f"hub, {args.members} members (scale {scale:g}): idle copy latency median {baseline * scale:.2f} s of AWS time "
        f"(min {min(idle.values()) * scale:.2f}, max {max(idle.values()) * scale:.2f}); with member {noisy} "
        f"registering {args.burst} at once: the other {len(quiet)} members' copies {len(busy)}/{len(quiet)}, latency "
        f"median {statistics.median(busy.values()) * scale if busy else 0:.2f} s, max "
        f"{max(busy.values()) * scale if busy else 0:.2f} s: worst {worst:.2f}x the idle median (target 2x); "
        f"throttled calls {throttles}; the noisy member's backlog left in the queue {backlog}",
        flush=True,
    )
    return 0 if len(busy) == len(quiet) and worst <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
