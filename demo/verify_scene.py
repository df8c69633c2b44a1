"""The demo's last scene: `ecs-remediate verify` against the stack as deployed, stood in for in the emulator.

The synthesized template becomes a moto CloudFormation stack (demo/stack_standin.py: its tables, topic, queues and
rules, its outputs), the real handler runs with the template's environment, and the stand-in's delivery turns each
registration into the CloudTrail event, matched against the rules as EventBridge holds them. Then the CLI runs as a
user runs it after `cdk deploy`: it finds the stack, registers its canary, waits for the copy and the notice, checks
them and removes everything it registered (read back here).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import time
from typing import Any

from demo.stack_standin import StandIn
from demo.synthesized import synthesized_template

DELAY = 0.2  # seconds: CloudTrail's minutes, shortened


def run_verify_scene(p: Any, endpoint: str) -> list[str]:
    """Play the scene on `p` (demo.printing.Printer); returns the problems found (none when it behaves)."""
    from ecs_remediate.adapters import aws
    from ecs_remediate.cli.main import main
    from ecs_remediate.cli.verify_canary import CANARY_FAMILY

    started = time.monotonic()
    p.line()
    p.line(p.s.bold("[verify] After `cdk deploy`: ecs-remediate verify proves the stack end to end, and cleans up"))
    stand_in = StandIn(synthesized_template(), endpoint_url=endpoint, delay=DELAY).deploy()
    p.field("stack", f"{stand_in.name}: the synthesized template in the emulator's CloudFormation (outputs, rules)")
    saved = {name: os.environ.get(name) for name in stand_in.environment}
    os.environ.update(stand_in.environment)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    aws.reset_clients()
    import ecs_remediate.functions.handler as module

    problems: list[str] = []
    out, err = io.StringIO(), io.StringIO()
    try:
        with stand_in.start(importlib.reload(module)), contextlib.redirect_stdout(io.StringIO()):
            code = main(["verify", "--timeout", "30"], out, err)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        aws.reset_clients()
    p.line(p.s.dim("  $ ecs-remediate verify --timeout 30"))
    for line in err.getvalue().splitlines()[:1] + out.getvalue().splitlines() + err.getvalue().splitlines()[1:]:
        p.line(f"  {line}")
    ecs = stand_in.client("ecs")
    left = [
        arn
        for status in ("ACTIVE", "INACTIVE")
        for arn in ecs.list_task_definitions(familyPrefix=CANARY_FAMILY, status=status)["taskDefinitionArns"]
    ]
    if code != 0:
        problems.append(f"verify exited {code}")
    if left:
        problems.append(f"verify left {', '.join(left)}")
    problems += [f"the stand-in's delivery: {failure}" for failure in stand_in.failures]
    verdict = p.s.bad(f"{len(problems)} problem(s)") if problems else p.s.good("OK")
    p.line(f"  {verdict}: read back, the canary family has {len(left)} revision(s) left")
    p.line(p.s.dim(f"  verify scene: {time.monotonic() - started:.1f} s"))
    return problems


__all__ = ["run_verify_scene"]
