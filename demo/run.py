"""`make demo`: the real flow, end to end, with no AWS account.

  * an AWS emulator (moto server) on 127.0.0.1, on a port the OS picks, stopped on every exit path;
  * the CDK app synthesized in-process; the rule's event pattern is read from that template;
  * the stack's surroundings: idempotency table, SNS topic, an SQS queue subscribed as the "inbox";
  * three task definitions registered through boto3; for each, the CloudTrail-shaped EventBridge event is
    run through an EventBridge pattern engine (LocalStack's) and the real `lambda_handler` is invoked only
    when the rule matches, as EventBridge would; the remediation's own registration event is fed back too;
  * the notice read back from the inbox and shown as the email subscriber gets it;
  * Prowler's `ecs_task_definitions_no_privileged_containers` rule on the latest revision of each family;
  * last, `ecs-remediate verify` against the synthesized stack stood in for in the emulator (demo/verify_scene.py).

Exit status 0 only when every privileged registration was remediated and every compliant one left alone.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from demo.environment import (
    REGION,
    STOP_SIGNALS,
    isolate_from_aws,
    quiet_jsii_node_warnings,
    raise_interrupt,
)
from demo.printing import Printer, Style
from demo.scenarios import SCENARIOS
from demo.stage import Demo
from demo.verify_scene import run_verify_scene
from emulators.event_queue import EventQueue

# ---------------------------------------------------------------------------------------------------------
# The run


def main() -> int:
    """Exit status: 0 when every privileged registration was remediated and every compliant one left alone,
    1 otherwise, 130 when interrupted (the emulator is stopped in every case)."""
    p = Printer(Style.for_stdout())
    # SIGINT explicitly too: a shell starting us in the background may have set it to ignored.
    for signum in STOP_SIGNALS:
        signal.signal(signum, raise_interrupt)
    try:
        return run(p)
    except KeyboardInterrupt:
        p.line()
        p.line(p.s.bad("interrupted") + ": stopped; nothing is left running")
        return 130


def _organization_and_verify(p: Printer, endpoint: str, sandbox: Any) -> list[str]:
    """The last two scenes: an organization's hub, then `ecs-remediate verify` against the stack as deployed."""
    from demo.org_scene import run_org_scene
    from emulators.eventbridge import matches

    p.line()
    p.line(p.s.bold("[org] An organization: a hub fixes a member's registration in that member, and nowhere else"))
    return run_org_scene(p, endpoint, sandbox, matches) + run_verify_scene(p, endpoint)


def run(p: Printer) -> int:
    started = time.monotonic()
    s = p.s
    isolate_from_aws()
    p.line(s.bold("ecs-remediate demo") + ": the real handler and the synthesized rule against an AWS emulator")
    p.line(s.dim("No AWS account, no Docker; nothing leaves 127.0.0.1, and the emulator is stopped at the end."))
    total = 5
    p.step(1, total, "Synthesizing the CDK app in-process (asset bundling skipped)")
    p.line(s.dim(f"  {quiet_jsii_node_warnings()}"))
    t0 = time.monotonic()
    from demo.synthesized import synthesized_daemon_rule_pattern, synthesized_rule_pattern
    from emulators.eventbridge import matches

    pattern = synthesized_rule_pattern()
    p.line(f"  the remediation rule's EventPattern, from the template ({time.monotonic() - t0:.1f} s):")
    p.wrapped(json.dumps(pattern), indent=4)
    from emulators.server import local_emulator

    with local_emulator() as endpoint:
        p.step(2, total, f"Started a moto server on {endpoint}")
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        from demo.sandbox import Sandbox

        sandbox = Sandbox(region=REGION, endpoint_url=endpoint).create()
        queue = EventQueue(sandbox.client("sqs"), region=REGION).create()
        os.environ.update(
            sandbox.env(DAEMON_ROLLOUT="true", **queue.env())
        )  # daemons: the scene after step 5 moves one
        p.step(3, total, "Created what the stack would create")
        p.field("idempotency", f"DynamoDB table {sandbox.table_name}")
        p.field("notices", f"SNS topic {sandbox.topic_arn}")
        p.field("inbox", "SQS queue 'inbox' subscribed to the topic, standing in for the email address")
        p.field("event queue", f"SQS queue {queue.name} (dead-letter queue after {queue.max_receives} deliveries)")
        # The handler parses its configuration at import: only now is the environment complete.
        from ecs_remediate.functions import handler

        demo = Demo(p, pattern, sandbox, handler, matches, queue)
        demo.watch_function_registrations()
        p.step(4, total, "Registering task definitions through boto3; EventBridge decides what the function sees")
        for number, scenario in enumerate(SCENARIOS, 1):
            demo.scenario(number, scenario)
        p.step(
            5,
            total,
            "Prowler ecs_task_definitions_no_privileged_containers, latest ACTIVE revision of each family",
        )
        p.wrapped(
            "The same rule evaluated here on what the emulator returns (FAIL when any container is privileged); "
            "Prowler itself is not installed for the demo.",
            indent=2,
        )
        p.line()
        demo.verdicts()
        from demo.daemon_scene import run_scene  # ECS Managed Daemons: a privileged security agent

        run_scene(demo, synthesized_daemon_rule_pattern())
        demo.failures += _organization_and_verify(p, endpoint, sandbox)
    privileged = [sc.family for sc in SCENARIOS if sc.privileged]
    compliant = [sc.family for sc in SCENARIOS if not sc.privileged]
    elapsed = time.monotonic() - started
    p.line()
    if demo.failures:
        p.line(s.bad(f"DEMO FAILED ({len(demo.failures)} problem(s)):"))
        for failure in demo.failures:
            p.line(f"  - {failure}")
        p.line(s.dim(f"moto server stopped; {elapsed:.1f} s"))
        return 1
    p.line(
        s.good("OK")
        + f": {len(privileged)} of {len(privileged)} privileged registrations remediated ({', '.join(privileged)}), "
        f"{len(compliant)} compliant left alone ({', '.join(compliant)})."
    )
    p.line(s.dim(f"moto server stopped; {elapsed:.1f} s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
