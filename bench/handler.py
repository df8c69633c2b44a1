"""Handler benchmarks (issue 2): per-event work without AWS round trips, cold start, peak memory.

  python -m bench.handler

(a) per-event work on the largest fixture, two ways: the pure core alone (parse event, assess, build
    and validate the copy, build the notice) and the whole handler (Powertools decorators, idempotency,
    botocore serialisation and parsing) over a zero-latency transport that answers every AWS call
    with a canned response, so only the function's own CPU is timed.
(b) start-up to handler-ready (import + config + clients + model) as a ratio to `import boto3` plus the
    same three clients alone, each in fresh interpreters, median of N runs.
(c) peak RSS of a process that imports the handler and handles 1,000 events.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "taskdefs" / "console-export_nulls_tags_privileged-middle.json"
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/payments-api:1234"
ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "ecs-remediate",
    "POWERTOOLS_METRICS_NAMESPACE": "EcsRemediate",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    # As in Lambda: the X-Ray SDK sees LAMBDA_TASK_ROOT and uses its local sampler; tracing stays on.
    "LAMBDA_TASK_ROOT": str(ROOT / "lambda"),
    "AWS_LAMBDA_FUNCTION_NAME": "ecs-remediate",
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    "MODE": "remediate",
    "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:notices",
    "IDEMPOTENCY_TABLE": "idempotency",
}


def describe_body() -> dict[str, Any]:
    from ecs_remediate.core.taskdef import drop_nulls

    raw = drop_nulls(json.loads(FIXTURE.read_text()))
    tags = raw.pop("tags")
    raw.update(taskDefinitionArn=ARN, revision=1234, registeredAt=1714564800.0)
    return {"taskDefinition": raw, "tags": [t for t in tags if not t["key"].startswith("aws:")]}


def event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": "bench-event",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": "2026-11-29T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventSource": "ecs.amazonaws.com",
            "eventName": "RegisterTaskDefinition",
            "eventTime": "2026-11-29T00:00:00Z",
            "userIdentity": {"arn": "arn:aws:sts::123456789012:assumed-role/Dev/alice"},
            "sourceIPAddress": "203.0.113.10",
            "responseElements": {"taskDefinition": {"taskDefinitionArn": ARN}},
        },
    }


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any) -> bytes:
        return self._data


def install_zero_latency_transport() -> None:
    """Answer every call of our cached clients with a canned success response, without any I/O."""
    from botocore.awsrequest import AWSResponse

    from ecs_remediate.adapters import aws

    described = json.dumps(describe_body()).encode()
    registered_td = dict(describe_body()["taskDefinition"], revision=1235, taskDefinitionArn=ARN[:-4] + "1235")
    registered = json.dumps({"taskDefinition": registered_td}).encode()
    published = (
        b"<PublishResponse><PublishResult><MessageId>m-1</MessageId></PublishResult>"
        b"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>"
    )
    canned = {
        "DescribeTaskDefinition": described,
        "RegisterTaskDefinition": registered,
        "Publish": published,
    }

    def respond(request: Any, event_name: str, **_: Any) -> AWSResponse:
        operation = event_name.rsplit(".", 1)[-1]
        return AWSResponse(request.url, 200, {}, _Body(canned.get(operation, b"{}")))

    for service in ("ecs", "sns", "dynamodb"):
        aws.client(service).meta.events.register_first("before-send", respond)


def bench_per_event(iterations: int) -> dict[str, float]:
    from ecs_remediate.core.config import Config
    from ecs_remediate.core.events import parse_registration_event
    from ecs_remediate.core.notice import build_message
    from ecs_remediate.core.outcomes import REMEDIATED, Result
    from ecs_remediate.core.policy import assess
    from ecs_remediate.core.taskdef import Document, build_fixed_copy, default_register_model
    from ecs_remediate.functions import handler

    model = default_register_model()
    body, config, ev = describe_body(), Config(), event()

    def core() -> None:
        registration = parse_registration_event(ev)
        td, tags = body["taskDefinition"], body["tags"]
        verdict = assess(td, arn=ARN, tags=tags, config=config, today=date(2026, 11, 29))
        fix = build_fixed_copy(Document("describe-response", td, tags), model, ("ecs-remediate:source-revision", "x"))
        result = Result(REMEDIATED, ARN, "payments-api", 1234, verdict.privileged, ARN, registration=registration)  # type: ignore[arg-type]
        build_message(result)
        assert fix.privileged == ["log-router"]

    handler.remediator()
    install_zero_latency_transport()

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "bench", 256, "r"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    devnull = open(os.devnull, "w")  # noqa: SIM115 - Powertools metrics print EMF to stdout
    real_stdout = sys.stdout

    # Time spent inside AWS calls (botocore serialising, signing and parsing, X-Ray subsegments, the
    # zero-latency transport), so it can be taken out of the handler's own figure.
    from botocore.client import BaseClient

    in_aws = [0.0]
    calls: list[str] = []
    make_api_call = BaseClient._make_api_call

    def timed_api_call(self: Any, operation: str, params: Any) -> Any:
        calls.append(operation)
        started = time.perf_counter()
        try:
            return make_api_call(self, operation, params)
        finally:
            in_aws[0] += time.perf_counter() - started

    BaseClient._make_api_call = timed_api_call  # type: ignore[method-assign]

    def whole() -> float:
        """One invocation; returns the milliseconds spent outside AWS calls."""
        in_aws[0] = 0.0
        calls.clear()
        sys.stdout = devnull
        started = time.perf_counter()
        try:
            out = handler.lambda_handler(ev, Context())  # type: ignore[arg-type]
        finally:
            sys.stdout = real_stdout
        assert out["outcome"] == "remediated", out
        return (time.perf_counter() - started - in_aws[0]) * 1000

    figures: dict[str, float] = {}
    for name, fn in (("core", core), ("handler", whole)):
        for _ in range(20):
            fn()  # warm
        samples, own = [], []
        for _ in range(iterations):
            started = time.perf_counter()
            own.append(fn() or 0.0)
            samples.append((time.perf_counter() - started) * 1000)
        figures[f"{name}_median_ms"] = statistics.median(samples)
        figures[f"{name}_p95_ms"] = sorted(samples)[int(len(samples) * 0.95)]
        figures[f"{name}_own_median_ms"] = statistics.median(own)
        figures[f"{name}_own_p95_ms"] = sorted(own)[int(len(own) * 0.95)]
    figures["aws_calls"] = len(calls)  # of the last invocation
    return figures


STARTUP_HANDLER = "import ecs_remediate.functions.handler as h; h.remediator()"
STARTUP_BASELINE = "import boto3; s = boto3.session.Session(); [s.client(n) for n in ('ecs', 'sns', 'dynamodb')]"


def time_fresh(code: str, runs: int, env_overrides: dict[str, str] | None = None) -> list[float]:
    """CPU seconds (user + system) of `runs` fresh interpreters running `code`: on a shared machine,
    CPU time is far steadier than wall time, and a cold start is CPU-bound. Bytecode caching is on for
    both sides (boto3's modules were compiled when pip installed them; ours are compiled by the first run)
    so that neither side pays for compiling what the other reads from its cache. `env_overrides`: set last."""
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT / "lambda"), **(env_overrides or {})}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    samples = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return samples


def instructions(code: str, env_overrides: dict[str, str] | None = None) -> int | None:
    """Instructions executed by a fresh interpreter running `code`, counted by valgrind's callgrind: the
    same count on every run, whatever else the machine is doing. None without valgrind."""
    if shutil.which("valgrind") is None:
        return None
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT / "lambda"), **(env_overrides or {})}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-c", code], env=env, check=True)  # writes our bytecode cache first
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", code],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    counted = re.search(r"Collected : (\d+)", done.stderr)
    return int(counted[1]) if counted else None


PEAK_RSS = """
import resource, sys, io
import ecs_remediate.functions.handler as h
from bench.handler import install_zero_latency_transport, event, Context_
h.remediator(); install_zero_latency_transport()
real = sys.stdout; sys.stdout = io.StringIO()
for i in range(1000):
    h.lambda_handler(event(), Context_())
    sys.stdout.seek(0); sys.stdout.truncate()
sys.stdout = real
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


class Context_:
    function_name, memory_limit_in_mb, aws_request_id = "bench", 128, "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def peak_rss_mb() -> float:
    env = {**os.environ, **ENV, "PYTHONPATH": f"{ROOT / 'lambda'}:{ROOT}"}
    out = subprocess.run([sys.executable, "-c", PEAK_RSS], env=env, check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT / "lambda"))
    per_event = bench_per_event(iterations=500)
    # Interleaved so that load from other processes hits both sides alike; the minimum is the least noisy.
    handler_runs: list[float] = []
    baseline_runs: list[float] = []
    for _ in range(15):
        handler_runs += time_fresh(STARTUP_HANDLER, 1)
        baseline_runs += time_fresh(STARTUP_BASELINE, 1)
    handler_s, baseline_s = min(handler_runs), min(baseline_runs)
    handler_instructions, baseline_instructions = instructions(STARTUP_HANDLER), instructions(STARTUP_BASELINE)
    rss = peak_rss_mb()
    print("Handler benchmark (python", sys.version.split()[0], ")")
    print(
        f"(a) per event, largest fixture, remediated ({per_event['aws_calls']:.0f} AWS calls): handler work outside "
        "the AWS calls "
        f"{per_event['handler_own_median_ms']:.2f} ms median (p95 {per_event['handler_own_p95_ms']:.2f})"
        "  [target <= 2 ms]"
    )
    print(
        f"    pure core alone {per_event['core_median_ms']:.2f} ms; whole invocation including botocore and X-Ray "
        f"work over a zero-latency transport {per_event['handler_median_ms']:.2f} ms "
        f"(p95 {per_event['handler_p95_ms']:.2f})"
    )
    print(
        f"(b) start-up to handler-ready {handler_s * 1000:.0f} ms vs import boto3 + the same 3 clients "
        f"{baseline_s * 1000:.0f} ms (CPU time, best of 15, interleaved): {handler_s / baseline_s:.2f}x"
        "  [target <= 1.3x]"
    )
    if handler_instructions and baseline_instructions:
        print(
            f"    instructions (valgrind callgrind, repeatable): {handler_instructions / 1e9:.3f} G vs "
            f"{baseline_instructions / 1e9:.3f} G: {handler_instructions / baseline_instructions:.3f}x"
        )
    print(f"(c) peak RSS after 1,000 events: {rss:.0f} MB  [target: fits a 128 MB function]")


if __name__ == "__main__":
    main()
