"""`make emulator` (`python -m demo.emulator`): the project's emulator on a free loopback port until Ctrl-C, to try the
CLI against (README, "Try the CLI").

moto with the ECS daemon API emulator and AWS Config's queries in front (emulators/server.py, as the demo and the
tests use it), the stack's resources (idempotency table, exemption registry, SNS topic with an SQS inbox) and two
privileged revisions to find: the task definition demo/samples/web-app.json and the daemon task definition
demo/samples/node-monitor.json, beside a compliant one. It prints the shell lines that point the AWS SDKs, and so
`ecs-remediate`, at it: endpoint, fake credentials, Region and the stack's table and topic names. Nothing reaches AWS.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from demo.environment import REGION, STOP_SIGNALS, isolate_from_aws, raise_interrupt
from demo.sandbox import Sandbox

SAMPLES = Path(__file__).resolve().parent / "samples"
READY = "# ready: Ctrl-C stops the emulator"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
COMPLIANT = {
    "family": "billing-api",
    "containerDefinitions": [{"name": "api", "image": "public.ecr.aws/docker/library/python:3.12", "memory": 256}],
}


def seed(sandbox: Sandbox) -> list[str]:
    """The revisions a first scan finds; returns what to say about them."""
    sandbox.register(json.loads((SAMPLES / "web-app.json").read_text()))
    sandbox.register(COMPLIANT)
    daemon = json.loads((SAMPLES / "node-monitor.json").read_text())
    sandbox.client("ecs").register_daemon_task_definition(**daemon)
    return [
        "task definitions web-app:1 (privileged, demo/samples/web-app.json) and billing-api:1 (compliant)",
        "daemon task definition node-monitor:1 (privileged, demo/samples/node-monitor.json)",
    ]


def shell_lines(endpoint: str, sandbox: Sandbox) -> list[str]:
    credentials = " ".join(f"{name}={value}" for name, value in FAKE_CREDENTIALS.items())
    return [
        f"export AWS_ENDPOINT_URL={endpoint}",
        f"export {credentials}",
        f"export AWS_REGION={REGION} AWS_DEFAULT_REGION={REGION}",
        f"export IDEMPOTENCY_TABLE={sandbox.table_name} EXEMPTIONS_TABLE={sandbox.exemptions_table} "
        f"TOPIC_ARN={sandbox.topic_arn}",
        "unset AWS_PROFILE",
    ]


def main(argv: Sequence[str] | None = None, stdout: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.emulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    parser.add_argument("--empty", action="store_true", help="no revisions, only the stack's resources")
    args = parser.parse_args(argv)
    isolate_from_aws()  # this process seeds with fake credentials; nothing here can reach AWS
    for signum in STOP_SIGNALS:
        signal.signal(signum, raise_interrupt)
    from emulators.server import local_emulator  # moto, imported once the environment is isolated

    try:
        with local_emulator(port=args.port) as endpoint:
            sandbox = Sandbox(endpoint_url=endpoint).create()
            seeded = [] if args.empty else seed(sandbox)
            lines = [
                f"# ecs-remediate's emulator (moto + the ECS daemon API) at {endpoint}; in another shell:",
                *shell_lines(endpoint, sandbox),
                *(f"# seeded: {line}" for line in seeded),
                READY,
            ]
            print("\n".join(lines), file=stdout, flush=True)
            threading.Event().wait()  # until a signal raises KeyboardInterrupt
    except KeyboardInterrupt:
        print("# emulator stopped", file=stdout, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
