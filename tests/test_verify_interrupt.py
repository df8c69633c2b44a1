"""`ecs-remediate verify` interrupted: Ctrl-C, Ctrl-C twice and SIGTERM sent to a real process while it waits for the
stack; nothing is left registered, read back from the emulator (tests/verify_support.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from verify_support import (
    REGION,
    ROOT,
    canary_revisions,
    deploy,
)

from demo.stack_standin import wait_for

# --- Ctrl-C: a real signal to a real process ---------------------------------------------------------------------


def _subprocess_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "PYTHONPATH": str(ROOT / "lambda"),
        }
    )
    return env


@pytest.mark.parametrize(
    ("signals", "gap", "code"),
    [
        ((signal.SIGINT,), 0.05, 130),
        ((signal.SIGINT, signal.SIGINT), 0.05, 130),
        # the second while it reports and exits (the clean-up is done): ignored, not a death by SIGINT
        ((signal.SIGINT, signal.SIGINT, signal.SIGINT), 0.3, 130),
        ((signal.SIGTERM,), 0.05, 143),
    ],
    ids=["ctrl-c", "ctrl-c-twice", "ctrl-c-while-exiting", "sigterm"],
)
def test_an_interrupted_run_leaves_nothing_registered(
    stack_template: dict[str, Any],
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    handler_reloaded: None,
    signals: tuple[int, ...],
    gap: float,
    code: int,
) -> None:
    stand_in = deploy(stack_template, moto_endpoint, monkeypatch, deliver=False)  # the canary waits: nothing delivers
    process = subprocess.Popen(
        [sys.executable, "-m", "ecs_remediate", "verify", "--timeout", "120", "-o", "json"],
        env=_subprocess_env(moto_endpoint),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: bool(canary_revisions(stand_in)["ACTIVE"]), 60), "the canary was never registered"
        for signum in signals:
            process.send_signal(signum)  # nothing once it has exited
            time.sleep(gap)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, err
    (row,) = json.loads(out)
    assert row["outcome"] == "INTERRUPTED" and row["left"] == []
    assert "nothing left registered" in err and "Traceback" not in err
    assert canary_revisions(stand_in) == {"ACTIVE": [], "INACTIVE": []}
