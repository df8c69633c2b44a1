"""Burst benchmark (issue 23): 1,000 privileged registrations across 200 families in one minute, delivered to the
function the way the stack delivers them, against an ECS that throttles as ECS does.

  python -m bench.burst [--scale 10] [--designs queue,async] [--revisions 1000 --families 200]

The emulator: a moto server behind emulators/throttle_proxy.py with ECS's token buckets per account and Region, as the
ECS API reference's request-throttling page gives them: RegisterTaskDefinition and DeregisterTaskDefinition share a
bucket of 20 that refills 1 a second; DescribeTaskDefinition, ListTaskDefinitions and ListTaskDefinitionFamilies one
of 50 that refills 20 a second. Time runs `--scale` times faster than in AWS: the refill rates are multiplied by it,
and every duration of the delivery path (visibility timeout, deferral delays, Lambda's retry delays, event age and
timeout) and botocore's backoff are divided by it; figures are reported as ratios to the floor. The pipelines'
registrations themselves are made on moto directly (the bucket is the function's alone, so the floor is its own).

Designs, side by side:
  queue: the stack's (infra/remediator.py): EventBridge -> the event queue (moto's SQS: visibility timeout, receive
    counts, DelaySeconds, the redrive to the dead-letter queue) -> the event source mapping (emulators/event_queue.py:
    batches of 10, ReportBatchItemFailures) at MaximumConcurrency 2, each concurrent invocation a process of its own
    running `handler.queue_handler`;
  async: the design before it: EventBridge invokes the function asynchronously per event; Lambda retries a failed
    invocation twice (about 1 and 2 minutes later), drops events older than an hour and a timed-out invocation
    (60 s) counts as failed; failures go to the dead-letter queue. Lambda would run up to 1,000 at once; here
    `--async-concurrency` processes (16), each with its own clients (its own retry quota), as Lambda's
    execution environments have: fewer than AWS would run, so fewer throttles than AWS would give.

Read back at the end from the emulator: every source revision's notice (from the queue subscribed to the topic), each
family's copies (their marker tag, privileged flags and registeredAt), the dead-letter queue. The floor: the time
RegisterTaskDefinition's bucket allows for the copies made, (copies - 20) / rate, counted from the first
registration.
"""

from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.function_env import (
    ACCOUNT,
    FUNCTION_TIMEOUT,
    REGION,
    REGISTER,
    SHARED,
    Context,
    emulator_process,
    limits,
    worker_env,
    worker_setup,
)
from emulators.throttle_proxy import ThrottleProxy

ROOT = Path(__file__).resolve().parent.parent
MARKER = "ecs-remediate:source-revision"
# Lambda's asynchronous invocation: 2 retries, about 1 and 2 minutes after a failure; an hour's maximum event age.
ASYNC_RETRY_DELAYS = (60.0, 120.0)
ASYNC_MAX_AGE = 3600.0


def queue_worker(env: dict[str, str], scale: float, queue: dict[str, Any], stop: Any, deferrals: Any) -> None:
    """One concurrent invocation slot of the event source mapping: poll, invoke `queue_handler`, delete; at the end
    its deferrals go to `deferrals`."""
    handler = worker_setup(env, scale)
    import boto3

    from emulators.event_queue import EventQueue

    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=env["AWS_ENDPOINT_URL"])
    events = EventQueue(sqs, **queue)
    while not stop.is_set():
        events.poll(handler.queue_handler, Context(FUNCTION_TIMEOUT / scale), wait=1)
    deferrals.put(handler.delivery().deferred)


def async_worker(env: dict[str, str], scale: float, tasks: Any, results: Any) -> None:
    """One execution environment of the asynchronously invoked function: `lambda_handler`, one event at a time."""
    handler = worker_setup(env, scale)
    timeout = FUNCTION_TIMEOUT / scale
    while (task := tasks.get()) is not None:
        key, event = task
        started = time.monotonic()
        error = ""
        try:
            handler.lambda_handler(event, Context(timeout))
        except Exception as caught:  # noqa: BLE001 - the invocation failed: Lambda retries it
            error = type(caught).__name__
        seconds = time.monotonic() - started
        if seconds > timeout:
            error = error or "Timeout"
        results.put((key, error))


@dataclass
class Run:
    design: str
    seconds_to_last_copy: float = 0.0
    floor: float = 0.0
    copies: int = 0
    sources: int = 0
    families_fixed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    silent: int = 0
    doubled: int = 0
    dead_letters: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    throttles: dict[str, int] = field(default_factory=dict)
    invocations: int = 0
    deferrals: int = 0
    copy_times: list[float] = field(default_factory=list)  # each copy's registeredAt, from the first registration

    @property
    def ratio(self) -> float:
        return self.seconds_to_last_copy / self.floor if self.floor else 0.0


class Pipelines:
    """The burst: `revisions` privileged registrations over `families` families, spread over `seconds`, made on moto
    directly; each one's event handed to `deliver` as soon as it is registered."""

    def __init__(self, sandbox: Any, revisions: int, families: int, seconds: float) -> None:
        self.sandbox, self.revisions, self.families, self.seconds = sandbox, revisions, families, seconds
        self.sources: list[str] = []

    def run(self, deliver: Any) -> float:
        started = time.monotonic()
        for n in range(self.revisions):
            params = {
                "family": f"svc-{n % self.families:03d}",
                "containerDefinitions": [
                    {"name": "app", "image": "public.ecr.aws/nginx/nginx:1", "memory": 128, "privileged": True}
                ],
                "tags": [{"key": "team", "value": f"t{n % 7}"}],
            }
            response = self.sandbox.register(params)
            self.sources.append(response["taskDefinition"]["taskDefinitionArn"])
            deliver(self.sandbox.event_for(params, response))
            lag = started + (n + 1) * self.seconds / self.revisions - time.monotonic()
            if lag > 0:
                time.sleep(lag)
        return started


def read_back(run: Run, sandbox: Any, sources: list[str], started_wall: float, scale: float) -> None:
    """Copies, notices and dead letters as the emulator holds them."""
    ecs = sandbox.client("ecs")
    copies: Counter[str] = Counter()
    last = started_wall
    families = sorted({arn.rsplit("/", 1)[1].rsplit(":", 1)[0] for arn in sources})
    for family in families:
        arns = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
        described = [ecs.describe_task_definition(taskDefinition=a, include=["TAGS"]) for a in arns]
        for item in described:
            marker = next((t["value"] for t in item.get("tags", []) if t["key"] == MARKER), None)
            if marker:
                copies[marker] += 1
                registered = item["taskDefinition"].get("registeredAt")
                if registered is not None:
                    last = max(last, registered.timestamp())
                    run.copy_times.append(registered.timestamp() - started_wall)
                assert not any(c.get("privileged") for c in item["taskDefinition"]["containerDefinitions"])
        latest = max(described, key=lambda d: d["taskDefinition"]["revision"])
        if not any(c.get("privileged") for c in latest["taskDefinition"]["containerDefinitions"]):
            run.families_fixed += 1
    run.copies = sum(copies.values())
    run.doubled = sum(1 for count in copies.values() if count > 1)
    notices: dict[str, list[str]] = {}
    for note in sandbox.inbox():
        arn = str(note.payload.get("taskDefinitionArn") or "")
        notices.setdefault(arn, []).append(note.attributes.get("outcome", ""))
    for arn in sources:
        outcomes = notices.get(arn, [])
        run.outcomes[outcomes[0] if len(outcomes) == 1 else ("silent" if not outcomes else "notified twice")] += 1
    run.silent = run.outcomes.get("silent", 0)
    run.doubled += run.outcomes.get("notified twice", 0)
    run.sources = len(sources)
    run.seconds_to_last_copy = last - started_wall
    run.floor = max(0, run.copies - REGISTER.burst) / (REGISTER.per_second * scale)


def run_design(design: str, args: argparse.Namespace, moto: str) -> Run:
    import boto3

    from demo.sandbox import Sandbox
    from emulators.event_queue import EventQueue

    requests = f"{moto}/moto-api/reset"
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(requests, method="POST")).read()
    scale = args.scale
    run = Run(design)
    sandbox = Sandbox(endpoint_url=moto).create()
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto)
    queue = EventQueue(sqs, visibility_timeout=max(1, int(360 / scale))).create()
    context = multiprocessing.get_context("spawn")
    with ThrottleProxy(moto, limits(scale), shared=SHARED) as proxy:
        env = {
            **worker_env(sandbox.env(), moto, proxy.url),
            "TRUSTED_PRINCIPALS": f"arn:aws:iam::{ACCOUNT}:role/ecs-remediate-function",
            "BENCH_RETRY_MODE": args.retry_mode or "",
        }
        pipelines = Pipelines(sandbox, args.revisions, args.families, 60.0 / scale)
        if design == "queue":
            env.update(queue.env())
            stop, deferrals = context.Event(), context.Queue()
            spec = {"queue_url": queue.queue_url, "queue_arn": queue.queue_arn, "dlq_url": queue.dlq_url}
            workers = [
                context.Process(target=queue_worker, args=(env, scale, spec, stop, deferrals))
                for _ in range(args.concurrency)
            ]
            for worker in workers:
                worker.start()
            time.sleep(args.warmup)  # the execution environments exist before the burst (their cold start apart)
            proxy.reset()
            started_wall = time.time()
            pipelines.run(queue.put)
            while queue.depth() and time.time() - started_wall < args.limit and any(w.is_alive() for w in workers):
                time.sleep(0.5)
            stop.set()
            run.deferrals = sum(deferrals.get(timeout=60) for _ in workers)
            for worker in workers:
                worker.join(timeout=60)
        else:
            started_wall = run_async(context, env, scale, pipelines, queue, args, proxy)
        run.calls, run.throttles = dict(proxy.calls), dict(proxy.throttles)
    run.dead_letters = len(queue.dead_letters())
    read_back(run, sandbox, pipelines.sources, started_wall, scale)
    return run


def run_async(
    context: Any,
    env: dict[str, str],
    scale: float,
    pipelines: Pipelines,
    queue: Any,
    args: argparse.Namespace,
    proxy: Any,
) -> float:
    """Lambda's asynchronous invocation: an internal queue, `--async-concurrency` environments, 2 retries after about
    1 and 2 minutes, an hour's event age, failures to the dead-letter queue (the stack's DLQ, in SQS)."""
    tasks, results = context.Queue(), context.Queue()
    workers = [
        context.Process(target=async_worker, args=(env, scale, tasks, results)) for _ in range(args.async_concurrency)
    ]
    for worker in workers:
        worker.start()
    time.sleep(args.warmup)
    proxy.reset()
    events: dict[int, dict[str, Any]] = {}
    attempts: Counter[int] = Counter()
    first_seen: dict[int, float] = {}
    waiting: list[tuple[float, int]] = []
    lock = threading.Lock()
    pending = [0]

    def deliver(event: dict[str, Any]) -> None:
        with lock:
            key = len(events)
            events[key], first_seen[key] = event, time.monotonic()
            pending[0] += 1
        tasks.put((key, event))

    started_wall = time.time()
    feeder = threading.Thread(target=pipelines.run, args=(deliver,))
    feeder.start()
    while feeder.is_alive() or pending[0]:
        now = time.monotonic()
        while waiting and waiting[0][0] <= now:
            _, key = heapq.heappop(waiting)
            tasks.put((key, events[key]))
        try:
            key, error = results.get(timeout=0.2)
        except Exception:  # noqa: BLE001 - queue.Empty: nothing finished in the last 0.2 s
            continue
        if not error:
            pending[0] -= 1
            continue
        attempts[key] += 1
        age = time.monotonic() - first_seen[key]
        if attempts[key] > len(ASYNC_RETRY_DELAYS) or age > ASYNC_MAX_AGE / scale:
            queue.sqs.send_message(QueueUrl=queue.dlq_url, MessageBody=json.dumps(events[key]))  # the on-failure DLQ
            pending[0] -= 1
            continue
        heapq.heappush(waiting, (time.monotonic() + ASYNC_RETRY_DELAYS[attempts[key] - 1] / scale, key))
    feeder.join()
    for _ in workers:
        tasks.put(None)
    for worker in workers:
        worker.join(timeout=60)
    return started_wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10.0, help="how much faster than AWS time runs")
    parser.add_argument("--revisions", type=int, default=1000)
    parser.add_argument("--families", type=int, default=200)
    parser.add_argument("--designs", default="queue,async")
    parser.add_argument("--concurrency", type=int, default=2, help="the mapping's MaximumConcurrency")
    parser.add_argument("--async-concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds for the workers to start")
    parser.add_argument("--limit", type=float, default=1800.0, help="stop waiting for the queue after this")
    parser.add_argument(
        "--retry-mode", choices=("adaptive", "standard"), help="botocore retries other than the function's"
    )
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "lambda"))
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": REGION})
    from emulators import moto_fidelity

    moto_fidelity.apply()  # this process reads registeredAt back through its own moto clients' parsing only
    runs: list[Run] = []
    with emulator_process() as moto:
        for design in args.designs.split(","):
            runs.append(run_design(design.strip(), args, moto))
            print(report(runs[-1], args), flush=True)
    ours = next((r for r in runs if r.design == "queue"), None)
    ok = ours is None or (ours.silent == 0 and ours.doubled == 0 and ours.dead_letters == 0 and ours.ratio <= 1.2)
    return 0 if ok else 1


def report(run: Run, args: argparse.Namespace) -> str:
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(run.outcomes.items()))
    calls = ", ".join(f"{k} {v} ({run.throttles.get(k, 0)})" for k, v in sorted(run.calls.items()))
    return (
        f"{run.design}: {run.sources} privileged registrations in {run.sources // 5 if run.sources else 0} families "
        f"over 60 s (scale {args.scale:g}): last copy after {run.seconds_to_last_copy * args.scale:.0f} s of AWS "
        f"time ({run.seconds_to_last_copy:.1f} s here), floor {run.floor * args.scale:.0f} s for {run.copies} copies:"
        f" {run.ratio:.2f}x; families whose latest is fixed {run.families_fixed}/{args.families}; notices: "
        f"{outcomes}; silent {run.silent}, doubled {run.doubled}, dead-letter queue {run.dead_letters}; ECS calls "
        f"(throttled): {calls}; deferrals {run.deferrals}; {_copies_by(run, args.scale)}"
    )


def _copies_by(run: Run, scale: float) -> str:
    """When a share of the copies existed (s of AWS time): a tail after the 99th shows records waiting out a delay."""
    times = sorted(run.copy_times)
    if not times:
        return "no copies"
    shares = ((0.5, "half"), (0.9, "90%"), (0.99, "99%"), (1.0, "all"))
    return "copies made by: " + ", ".join(
        f"{name} {times[max(0, round(share * len(times)) - 1)] * scale:.0f} s" for share, name in shares
    )


if __name__ == "__main__":
    sys.exit(main())
