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

import contextlib
import io
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from demo.checks import container_changes, copy_differences, is_emf, prowler_failed_containers, snake
from demo.environment import (
    REGION,
    STOP_SIGNALS,
    isolate_from_aws,
    moto_server,
    quiet_jsii_node_warnings,
    raise_interrupt,
)
from demo.event_queue import EventQueue
from demo.printing import WIDTH, Printer, Style
from demo.scenarios import SCENARIOS, Scenario
from demo.verify_scene import run_verify_scene

# ---------------------------------------------------------------------------------------------------------
# The run


@dataclass
class Demo:
    p: Printer
    pattern: dict[str, Any]
    sandbox: Any  # demo.sandbox.Sandbox
    handler: ModuleType
    matches: Callable[[dict[str, Any], dict[str, Any]], bool]
    queue: Any  # demo.event_queue.EventQueue: the stack's event queue, drained as its event source mapping would
    failures: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)  # RegisterTaskDefinition calls the function made
    emails: dict[str, str] = field(default_factory=dict)  # subject -> the email text the function published

    def fail(self, text: str) -> None:
        self.failures.append(text)
        self.p.field("", self.p.s.bad(f"PROBLEM: {text}"))

    def watch_function_registrations(self) -> None:
        """Record the exact RegisterTaskDefinition input the function sends (its CloudTrail requestParameters)."""
        from ecs_remediate.adapters import aws

        def record(params: dict[str, Any], **_: Any) -> None:
            self.sent.append(json.loads(json.dumps(params)))

        def record_email(params: dict[str, Any], **_: Any) -> None:
            if params.get("MessageStructure") == "json":
                self.emails[str(params.get("Subject"))] = str(json.loads(params["Message"]).get("email"))

        aws.client("ecs").meta.events.register("provide-client-params.ecs.RegisterTaskDefinition", record)
        aws.client("sns").meta.events.register("provide-client-params.sns.Publish", record_email)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """As the stack delivers it: EventBridge puts the event on the event queue, and the event source mapping hands
        the batch to `queue_handler` (demo/event_queue.py); the record's outcome is read from the batch."""
        from demo.sandbox import LambdaContext

        captured = io.StringIO()
        try:
            # Powertools prints the cold-start EMF metric even with metrics disabled: keep it out of the story.
            with contextlib.redirect_stdout(captured):
                self.queue.put(event)
                handed = self.queue.poll(self.handler.queue_handler, LambdaContext())
                results = list(self.handler.delivery().last_batch.values())
            if handed != 1 or self.queue.depth() or len(results) != 1 or not isinstance(results[0], dict):
                self.fail(f"the queue handed over {handed} record(s) and kept {self.queue.depth()}: {results}")
                return None
            result: dict[str, Any] = results[0]
        except Exception as error:  # noqa: BLE001 - shown and counted; the demo goes on and exits non-zero
            self.fail(f"the handler raised {type(error).__name__}: {error}")
            return None
        finally:
            for line in captured.getvalue().splitlines():
                if not is_emf(line):
                    self.p.line(line)
        return result

    def scenario(self, number: int, scenario: Scenario) -> None:
        s, p = self.p.s, self.p
        p.line()
        p.line(s.accent(f"-- {number}. {scenario.family}: {scenario.title} ").ljust(WIDTH, "-"))
        response = self.sandbox.register(scenario.params)
        arn = response["taskDefinition"]["taskDefinitionArn"]
        names = ", ".join(c["name"] for c in scenario.params["containerDefinitions"])
        privileged = ", ".join(scenario.privileged) or "none"
        p.field("registered", f"{arn}\ncontainers: {names}; privileged: {privileged}")
        event = self.sandbox.event_for(scenario.params, response)
        matched = self.matches(self.pattern, event)
        if not matched:
            p.field("EventBridge", s.good("not matched") + ": the rule does not deliver this event; no invocation")
            revisions = self.sandbox.active_revisions(scenario.family)
            notes = self.sandbox.inbox()
            if scenario.privileged:
                self.fail(f"{scenario.family}: privileged, but the rule did not match its event")
            elif len(revisions) == 1 and not notes:
                p.field("outcome", s.good("left alone") + f": {scenario.family} still has one revision, no notice")
            else:
                self.fail(f"{scenario.family}: compliant, yet {len(revisions)} revisions and {len(notes)} notices")
            return
        p.field(
            "EventBridge", s.note("MATCHED") + ": the rule delivers the event to the queue -> queue_handler's batch"
        )
        self.sent.clear()
        result = self.invoke(event)
        if result is None:
            return
        outcome = str(result["outcome"])
        colour = s.good if outcome == "remediated" else s.bad
        p.field("outcome", colour(outcome.upper()) + f": {result.get('reason', '')}")
        if not scenario.privileged:
            self.fail(f"{scenario.family}: compliant, but the rule matched and the function was invoked")
        new_arn = result.get("new_task_definition_arn")
        if outcome != "remediated" or not new_arn:
            self.fail(f"{scenario.family}: expected remediated, got {outcome}")
            return
        p.field("new revision", s.bold(new_arn))
        self.show_copy(arn, new_arn)
        self.feed_back_own_registration(new_arn)
        self.show_notices(scenario.family)

    def show_copy(self, arn: str, new_arn: str) -> None:
        from ecs_remediate.core.taskdef import default_register_model

        s, p = self.p.s, self.p
        before, after = self.sandbox.describe(arn), self.sandbox.describe(new_arn)
        changes = container_changes(
            before["taskDefinition"]["containerDefinitions"], after["taskDefinition"]["containerDefinitions"]
        )
        for i, (name, diffs) in enumerate(changes.items()):
            image = next((c["image"] for c in after["taskDefinition"]["containerDefinitions"] if c["name"] == name), "")
            text = f"container {s.bold(name)} ({image}): " + "; ".join(
                s.bad(d) if "privileged" not in d else d.replace("-> false", "-> " + s.good("false")) for d in diffs
            )
            p.field("before/after" if i == 0 else "", text)
        if not changes:
            self.fail("the new revision changed no container")
        if prowler_failed_containers(after["taskDefinition"]):
            self.fail(f"{new_arn} still has a privileged container")
        marker_key = "ecs-remediate:source-revision"
        problems, fields_, tags = copy_differences(before, after, default_register_model().input_members, marker_key)
        marker = next((t["value"] for t in after.get("tags", []) if t["key"] == marker_key), None)
        if problems:
            for problem in problems:
                self.fail(f"not a faithful copy: {problem}")
        else:
            p.field(
                "",
                f"everything else identical: {fields_} task-definition fields and {tags} tag(s) compared;"
                f"\nmarker tag {marker_key}={marker}",
            )

    def feed_back_own_registration(self, new_arn: str) -> None:
        """The function's own RegisterTaskDefinition is a CloudTrail event too: run it through the rule."""
        s, p = self.p.s, self.p
        if self.sent:
            params = self.sent[-1]
        else:  # registered by an earlier attempt: rebuild the request from the revision itself
            from ecs_remediate.core.taskdef import default_register_model

            described = self.sandbox.describe(new_arn)
            members = default_register_model().input_members
            params = {k: v for k, v in described["taskDefinition"].items() if k in members}
            params["tags"] = described.get("tags", [])
        response = self.sandbox.describe(new_arn)
        event = self.sandbox.event_for(params, response, user_arn=self.handler_role_arn())
        if self.matches(self.pattern, event):
            p.field("own event", s.bad("MATCHED") + ": the remediation's own registration would invoke it again")
            self.fail(f"the rule matches the remediation's own registration of {new_arn}")
            self.invoke(event)
        else:
            p.field(
                "own event",
                s.good("not matched") + ": the remediation's own registration of "
                f":{new_arn.rsplit(':', 1)[1]} does not invoke the function (no loop)",
            )

    @staticmethod
    def handler_role_arn() -> str:
        from demo.sandbox import ACCOUNT

        return f"arn:aws:sts::{ACCOUNT}:assumed-role/ecs-remediate-function/ecs-remediate"

    def show_notices(self, family: str) -> None:
        """Each notice from the inbox, rendered as the email subscriber gets it (the same builder, from the
        JSON the SQS subscription received)."""
        from ecs_remediate.core.notice import build_message
        from ecs_remediate.core.outcomes import Result

        p = self.p
        notes = self.sandbox.inbox()
        if len(notes) != 1:
            self.fail(f"{family}: expected one notice in the inbox, found {len(notes)}")
        for note in notes:
            data = {snake(k): v for k, v in note.payload.items()}
            if isinstance(data.get("registration"), dict):
                data["registration"] = {snake(k): v for k, v in data["registration"].items()}
            message = build_message(
                Result.from_dict(data), region=note.payload.get("region", ""), account=note.payload.get("account", "")
            )
            p.field("notice", f"SNS -> inbox (SQS), outcome={note.attributes.get('outcome')}; the email reads:")
            p.email(note.subject, message.text)
            if message.subject != note.subject:
                self.fail(f"rendered subject {message.subject!r} differs from the delivered {note.subject!r}")
            elif self.emails.get(note.subject) != message.text:
                self.fail("the email text rendered from the inbox's JSON differs from the one the function published")

    def verdicts(self) -> None:
        s, p = self.p.s, self.p
        ecs = self.sandbox.client("ecs")
        families = sorted(
            f
            for page in ecs.get_paginator("list_task_definition_families").paginate(status="ACTIVE")
            for f in page["families"]
        )
        still_active: list[str] = []
        for family in families:
            revisions = self.sandbox.active_revisions(family)
            latest = max(revisions, key=lambda a: int(a.rsplit(":", 1)[1]))
            task_definition = self.sandbox.describe(latest)["taskDefinition"]
            name, revision = task_definition["family"], task_definition["revision"]
            failed = prowler_failed_containers(task_definition)
            if failed:
                status = s.bad("FAIL")
                text = f"ECS task definition {name} with revision {revision} has privileged containers: " + ", ".join(
                    failed
                )
                self.failures.append(f"Prowler: {name}:{revision} FAIL")
            else:
                status = s.good("PASS")
                text = f"ECS task definition {name} with revision {revision} does not have privileged containers."
            p.line(f"  {status}  {f'{name}:{revision}':<20}{text}")
            for arn in revisions:
                if arn != latest and prowler_failed_containers(self.sandbox.describe(arn)["taskDefinition"]):
                    still_active.append(arn.rsplit("/", 1)[1])
        if still_active:
            p.line()
            p.wrapped(
                f"Still ACTIVE and privileged: {', '.join(still_active)} (the source revisions; nothing is deleted "
                "unless RETIRE=true). Prowler itself checks every ACTIVE revision and reports them FAIL until they are "
                "deregistered: the last command in each notice does that once the services have moved. Security Hub "
                "ECS.4 and AWS Config judge the latest revision, as above.",
                indent=2,
            )


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
    from demo.eventbridge import matches
    from demo.org_scene import run_org_scene

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
    from demo.eventbridge import matches, synthesized_daemon_rule_pattern, synthesized_rule_pattern

    pattern = synthesized_rule_pattern()
    p.line(f"  the remediation rule's EventPattern, from the template ({time.monotonic() - t0:.1f} s):")
    p.wrapped(json.dumps(pattern), indent=4)
    with moto_server() as endpoint:
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
