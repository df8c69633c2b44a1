"""The demo's stage: one run's printer, emulator endpoint, sandbox and the function, and what each scene calls on them
(`invoke` the real handler on an event as EventBridge would deliver it, `fail` with a line). The scenes (demo/run.py's,
demo/daemon_scene.py) play on it.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from demo.checks import container_changes, copy_differences, is_emf, prowler_failed_containers, snake
from demo.printing import WIDTH, Printer
from demo.scenarios import Scenario


@dataclass
class Demo:
    p: Printer
    pattern: dict[str, Any]
    sandbox: Any  # demo.sandbox.Sandbox
    handler: ModuleType
    matches: Callable[[dict[str, Any], dict[str, Any]], bool]
    queue: Any  # emulators.event_queue.EventQueue: the stack's event queue, drained as its event source mapping would
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
        the batch to `queue_handler` (emulators/event_queue.py); the record's outcome is read from the batch."""
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
