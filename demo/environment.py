"""The demo's surroundings: no real AWS credentials or configuration reach it, the project's Node.js, quiet jsii
banners, and signals that unwind through the clean-up. The emulator itself is emulators/server.py's
`local_emulator`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from types import FrameType

REGION = "us-east-1"
# The Node.js that `make install` pins (the npm registry's `node` package in package.json, Node.js 22).
PROJECT_NODE_BIN = Path(__file__).resolve().parent.parent / "node_modules" / ".bin"

# Configuration the function reads: cleared so the demo runs with the stack's defaults whatever the shell has.
_FUNCTION_ENV = (
    "MODE",
    "TOPIC_ARN",
    "IDEMPOTENCY_TABLE",
    "IDEMPOTENCY_TTL_SECONDS",
    "TAG_PREFIX",
    "EXEMPT_FAMILIES",
    "NOTIFY_ON",
    "ROLLOUT",
    "RETIRE",
    "DAEMON_ROLLOUT",
)


def isolate_from_aws() -> None:
    """Fake credentials, no profile or config file: nothing here can reach a real AWS account."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", *_FUNCTION_ENV):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_SECURITY_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "ecs-remediate",
            "POWERTOOLS_METRICS_NAMESPACE": "EcsRemediate",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_DEV": "false",
        }
    )
    # The function's JSON logs and EMF metrics would drown the story; warnings and errors still show
    # (POWERTOOLS_LOG_LEVEL=INFO make demo shows everything).
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")


def use_project_node() -> None:
    """Put the project's Node.js first on PATH (when `make install` has fetched it), so that jsii, the CDK's Node
    bridge, runs on it in this process as it does under the make targets. Call before aws_cdk is imported."""
    path = os.environ.get("PATH", "")
    if (PROJECT_NODE_BIN / "node").exists() and str(PROJECT_NODE_BIN) not in path.split(os.pathsep):
        os.environ["PATH"] = f"{PROJECT_NODE_BIN}{os.pathsep}{path}"


def quiet_jsii_node_warnings() -> str:
    """jsii (the CDK's Node bridge) prints a large banner when the Node version is untested, deprecated or
    end-of-life; the demo runs on the project's Node.js 22 when installed, and otherwise says it in one line
    instead (`make synth` shows the banner)."""
    use_project_node()
    node = shutil.which("node")
    if node is None:
        return "node not found on PATH (the CDK needs Node.js 22; make install fetches it)"
    try:
        version = subprocess.run(
            [node, "--version"], check=False, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"{node} --version failed"
    major = version.lstrip("v").split(".")[0]
    for kind in ("END_OF_LIFE", "DEPRECATED", "UNTESTED"):
        os.environ.setdefault(f"JSII_SILENCE_WARNING_{kind}_NODE_VERSION", major)
    return f"node {version}; jsii's Node version notices are left to `make synth`"


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    """The first Ctrl-C, hang-up or `kill` unwinds through the `finally` that stops the emulator; later
    ones are ignored so that clean-up itself is not interrupted."""
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise KeyboardInterrupt(signal.Signals(signum).name)
