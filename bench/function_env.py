"""What the burst benchmarks share (bench/burst.py, bench/hub_burst.py): ECS's buckets as the throttling proxy
enforces them, the function's environment in a worker process (its own clients, time compressed by `scale`, the
deferral constants scaled with it), a Lambda context, and the emulator in a process of its own."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emulators.throttle_proxy import BucketRate

ROOT = Path(__file__).resolve().parent.parent
# ECS's buckets (API reference, "Request throttling for the Amazon ECS API"), per account and Region, at scale 1.
REGISTER = BucketRate(1.0, 20)  # task definition modify actions
READ = BucketRate(20.0, 50)  # task definition read actions
SHARED = {
    "DeregisterTaskDefinition": "RegisterTaskDefinition",
    "ListTaskDefinitions": "DescribeTaskDefinition",
    "ListTaskDefinitionFamilies": "DescribeTaskDefinition",
}
ACCOUNT, REGION = "123456789012", "us-east-1"
FUNCTION_TIMEOUT = 60.0


def worker_env(stack_env: dict[str, str], moto: str, ecs_url: str) -> dict[str, str]:
    """A worker process's environment: the stack's variables, every AWS call to the emulator (ECS through the
    throttling proxy), Powertools quiet."""
    return {
        **stack_env,
        "AWS_ENDPOINT_URL": moto,
        "AWS_ENDPOINT_URL_ECS": ecs_url,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "ecs-remediate",
        "POWERTOOLS_METRICS_NAMESPACE": "EcsRemediate",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }


def limits(scale: float) -> dict[str, BucketRate]:
    return {
        "RegisterTaskDefinition": BucketRate(REGISTER.per_second * scale, REGISTER.burst),
        "DescribeTaskDefinition": BucketRate(READ.per_second * scale, READ.burst),
    }


def compress_time(scale: float) -> None:
    """In a worker: botocore's backoff (its base scales and its 20 s ceiling) and the adaptive client's slowest rate,
    `scale` times faster."""
    from botocore.retries.bucket import TokenBucket
    from botocore.retries.standard import ExponentialBackoff

    ExponentialBackoff._DEFAULT_BACKOFF_CONFIG = {
        key: value / scale for key, value in ExponentialBackoff._DEFAULT_BACKOFF_CONFIG.items()
    }
    ExponentialBackoff.__init__.__defaults__ = (20 / scale, *ExponentialBackoff.__init__.__defaults__[1:])  # type: ignore[index]
    TokenBucket.__init__.__defaults__ = (0.5 * scale,)  # type: ignore[attr-defined]


class Context:
    function_name, function_version, memory_limit_in_mb = "ecs-remediate", "$LATEST", 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecs-remediate"
    log_group_name, log_stream_name, aws_request_id = "/aws/lambda/ecs-remediate", "bench", "bench"

    def __init__(self, timeout: float = FUNCTION_TIMEOUT) -> None:
        self.deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def worker_setup(env: dict[str, str], scale: float) -> Any:
    os.environ.update(env)
    sys.path[:0] = [str(ROOT / "lambda"), str(ROOT)]
    import logging

    logging.disable(logging.CRITICAL)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Powertools prints metrics (EMF) to stdout
    compress_time(scale)
    if env.get("BENCH_RETRY_MODE"):  # an alternative to the function's own retries, to compare (--retry-mode)
        from botocore.config import Config as BotoConfig

        from ecs_remediate.adapters import aws

        aws.BOTO_CONFIG = aws.BOTO_CONFIG.merge(
            BotoConfig(
                retries={"mode": env["BENCH_RETRY_MODE"], "max_attempts": aws.BOTO_CONFIG.retries["max_attempts"]}
            )
        )
    from ecs_remediate.functions import delivery, handler

    delivery.DEFER_BASE_SECONDS = delivery.DEFER_BASE_SECONDS / scale
    delivery.DEFER_MAX_SECONDS = max(1, int(delivery.DEFER_MAX_SECONDS / scale))
    delivery.DEADLINE_MARGIN_SECONDS = delivery.DEADLINE_MARGIN_SECONDS / scale
    delivery.SATURATED_SECONDS = delivery.SATURATED_SECONDS / scale
    delivery.ACCOUNT_RATE = delivery.ACCOUNT_RATE * scale
    handler.remediator()
    return handler


EMULATOR = """
import logging, sys, time
from emulators import moto_fidelity
from emulators.server import EmulatorServer
moto_fidelity.apply()
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = EmulatorServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
sys.stdin.read()
server.stop()
"""


@contextlib.contextmanager
def emulator_process() -> Iterator[str]:
    """The emulator (moto with the project's fidelity patches) in a process of its own, so that it does not share an
    interpreter lock with the throttling proxy; stopped (stdin closed, then killed if need be) on the way out."""
    from bench.sweep import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", EMULATOR, str(port)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready", "the emulator did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
