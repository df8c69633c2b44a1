"""`make demo`: the real flow, end to end, with no AWS account.

  * an AWS emulator (moto server) on 127.0.0.1, on a port the OS picks, stopped on every exit path;
  * the CDK app synthesized in-process; the rule's event pattern is read from that template;
  * the stack's surroundings: idempotency table, SNS topic, an SQS queue subscribed as the "inbox";
  * three task definitions registered through boto3; for each, the CloudTrail-shaped EventBridge event is
    run through an EventBridge pattern engine (LocalStack's) and the real `lambda_handler` is invoked only
    when the rule matches, as EventBridge would; the remediation's own registration event is fed back too;
  * the notice read back from the inbox and shown as the email subscriber gets it;
  * Prowler's `ecs_task_definitions_no_privileged_containers` rule on the latest revision of each family.

Exit status 0 only when every privileged registration was remediated and every compliant one left alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType, ModuleType
from typing import Any

REGION = "us-east-1"
WIDTH = 100

# ---------------------------------------------------------------------------------------------------------
# The registrations


@dataclass(frozen=True)
class Scenario:
    title: str
    params: dict[str, Any]

    @property
    def family(self) -> str:
        return str(self.params["family"])

    @property
    def privileged(self) -> list[str]:
        return [c["name"] for c in self.params["containerDefinitions"] if c.get("privileged") is True]


SCENARIOS = [
    Scenario(
        "a web server with a privileged container",
        {
            "family": "web-app",
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": "nginx:latest",
                    "essential": True,
                    "memory": 512,
                    "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                    "privileged": True,
                }
            ],
            "tags": [{"key": "team", "value": "web"}],
        },
    ),
    Scenario(
        "a compliant service (privileged: false)",
        {
            "family": "billing-api",
            "requiresCompatibilities": ["EC2"],
            "containerDefinitions": [
                {
                    "name": "api",
                    "image": "public.ecr.aws/docker/library/python:3.12-slim",
                    "essential": True,
                    "memory": 256,
                    "portMappings": [{"containerPort": 8000, "protocol": "tcp"}],
                    "readonlyRootFilesystem": True,
                    "privileged": False,
                }
            ],
            "tags": [{"key": "team", "value": "billing"}],
        },
    ),
    Scenario(
        "three containers, only the middle one privileged",
        {
            "family": "ingest-pipeline",
            "networkMode": "bridge",
            "requiresCompatibilities": ["EC2"],
            "volumes": [{"name": "spool", "host": {"sourcePath": "/var/spool/ingest"}}],
            "containerDefinitions": [
                {
                    "name": "log-router",
                    "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
                    "essential": True,
                    "memory": 128,
                    "firelensConfiguration": {"type": "fluentbit"},
                },
                {
                    "name": "collector",
                    "image": "public.ecr.aws/docker/library/busybox:1.36",
                    "essential": False,
                    "memory": 64,
                    "command": ["sh", "-c", "while true; do sleep 60; done"],
                    "mountPoints": [{"sourceVolume": "spool", "containerPath": "/spool"}],
                    "privileged": True,
                },
                {
                    "name": "worker",
                    "image": "public.ecr.aws/docker/library/python:3.12-slim",
                    "essential": True,
                    "memory": 256,
                    "environment": [{"name": "SPOOL_DIR", "value": "/spool"}],
                    "mountPoints": [{"sourceVolume": "spool", "containerPath": "/spool", "readOnly": True}],
                    "dependsOn": [{"containerName": "log-router", "condition": "START"}],
                },
            ],
            "tags": [{"key": "team", "value": "data"}, {"key": "cost-center", "value": "4711"}],
        },
    ),
]


# ---------------------------------------------------------------------------------------------------------
# Output


class Style:
    """ANSI colour when stdout is a terminal (and NO_COLOR is not set); plain text otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stdout(cls) -> Style:
        tty = sys.stdout.isatty()
        return cls(tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb")

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def good(self, text: str) -> str:
        return self._wrap("1;32", text)

    def bad(self, text: str) -> str:
        return self._wrap("1;31", text)

    def note(self, text: str) -> str:
        return self._wrap("1;33", text)

    def accent(self, text: str) -> str:
        return self._wrap("36", text)


class Printer:
    def __init__(self, style: Style) -> None:
        self.s = style

    def line(self, text: str = "") -> None:
        print(text, flush=True)

    def step(self, number: int, total: int, text: str) -> None:
        self.line()
        self.line(self.s.bold(f"[{number}/{total}] {text}"))

    def field(self, label: str, text: str) -> None:
        """`  label           text`, continuation lines aligned under the text."""
        lines = text.split("\n")
        self.line(f"  {label:<16}{lines[0]}")
        for extra in lines[1:]:
            self.line(f"  {'':<16}{extra}")

    def wrapped(self, text: str, indent: int = 6) -> None:
        for line in textwrap.wrap(text, WIDTH - indent, break_on_hyphens=False, break_long_words=True):
            self.line(" " * indent + line)

    def email(self, subject: str, body: str) -> None:
        bar = self.s.dim("|")
        self.line(f"      {bar} Subject: {self.s.bold(subject)}")
        self.line(f"      {bar}")
        for text in body.rstrip("\n").split("\n"):
            self.line(f"      {bar} {text}".rstrip())


# ---------------------------------------------------------------------------------------------------------
# Environment and emulator


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


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (port chosen by the OS), with the ECS daemon operations answered by the daemon
    emulator; stopped and its socket closed on every exit."""
    from demo import moto_fidelity
    from demo.emulator_server import EmulatorServer

    moto_fidelity.apply()  # registeredBy/registeredAt on task definitions, as ECS records them
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log lines
    server = EmulatorServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        # stop() ends the serving thread but leaves the listening socket open until the process exits.
        if server._server is not None:
            server._server.server_close()


def quiet_jsii_node_warnings() -> str:
    """jsii (the CDK's Node bridge) prints a large banner when the Node version is untested, deprecated or
    end-of-life; the demo says it in one line instead (`make synth` shows the banner)."""
    node = shutil.which("node")
    if node is None:
        return "node not found on PATH (the CDK needs Node.js 20+)"
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


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    """The first Ctrl-C, hang-up or `kill` unwinds through the `finally` that stops the emulator; later
    ones are ignored so that clean-up itself is not interrupted."""
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise KeyboardInterrupt(signal.Signals(signum).name)


# ---------------------------------------------------------------------------------------------------------
# Checks


def prowler_failed_containers(task_definition: dict[str, Any]) -> list[str]:
    """Prowler's ecs_task_definitions_no_privileged_containers rule: FAIL naming every container whose
    `privileged` is set (prowler/providers/aws/services/ecs/ecs_task_definitions_no_privileged_containers)."""
    return [str(c["name"]) for c in task_definition.get("containerDefinitions", []) if c.get("privileged", False)]


def container_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per container name, every field that differs between two revisions: `field: before -> after`."""
    changes: dict[str, list[str]] = {}
    after_by_name = {c["name"]: c for c in after}
    for container in before:
        other = after_by_name.get(container["name"])
        if other is None:
            changes[container["name"]] = ["missing from the new revision"]
            continue
        diffs = [
            f"{key}: {_js(container.get(key))} -> {_js(other.get(key))}"
            for key in sorted(set(container) | set(other))
            if container.get(key) != other.get(key)
        ]
        if diffs:
            changes[container["name"]] = diffs
    for name in after_by_name.keys() - {c["name"] for c in before}:
        changes[name] = ["added in the new revision"]
    return changes


def copy_differences(
    before: dict[str, Any], after: dict[str, Any], input_members: frozenset[str], marker_key: str
) -> tuple[list[str], int, int]:
    """What differs between a source revision and its copy beyond privileged true -> false and the marker
    tag (should be nothing); also how many task-definition fields and tags were compared."""
    source, copy_ = before["taskDefinition"], after["taskDefinition"]
    problems: list[str] = []
    compared = 0
    for member in sorted(input_members - {"tags"}):
        if member not in source and member not in copy_:
            continue
        compared += 1
        expected = source.get(member)
        if member == "containerDefinitions":
            expected = [{**c, "privileged": False} if c.get("privileged") is True else c for c in expected]
        if copy_.get(member) != expected:
            problems.append(f"{member} differs")
    source_tags = [t for t in before.get("tags", []) if not t["key"].lower().startswith("aws:")]
    copy_tags = [t for t in after.get("tags", []) if t["key"] != marker_key]
    if sorted(map(json.dumps, source_tags)) != sorted(map(json.dumps, copy_tags)):
        problems.append("tags differ")
    return problems, compared, len(source_tags)


def is_emf(line: str) -> bool:
    """A CloudWatch embedded-metric-format record (what Powertools Metrics prints)."""
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "_aws" in record


def _js(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# ---------------------------------------------------------------------------------------------------------
# The run


@dataclass
class Demo:
    p: Printer
    pattern: dict[str, Any]
    sandbox: Any  # demo.sandbox.Sandbox
    handler: ModuleType
    matches: Callable[[dict[str, Any], dict[str, Any]], bool]
    failures: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)  # RegisterTaskDefinition calls the function made
    emails: dict[str, str] = field(default_factory=dict)  # subject -> the email text the function published

    def fail(self, text: str) -> None:
        self.failures.append(text)
        self.p.field("", self.p.s.bad(f"PROBLEM: {text}"))

    def watch_function_registrations(self) -> None:
        """Record the exact RegisterTaskDefinition input the function sends (its CloudTrail requestParameters)."""
        from ecs_remediate import aws

        def record(params: dict[str, Any], **_: Any) -> None:
            self.sent.append(json.loads(json.dumps(params)))

        def record_email(params: dict[str, Any], **_: Any) -> None:
            if params.get("MessageStructure") == "json":
                self.emails[str(params.get("Subject"))] = str(json.loads(params["Message"]).get("email"))

        aws.client("ecs").meta.events.register("provide-client-params.ecs.RegisterTaskDefinition", record)
        aws.client("sns").meta.events.register("provide-client-params.sns.Publish", record_email)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any] | None:
        from demo.sandbox import LambdaContext

        captured = io.StringIO()
        try:
            # Powertools prints the cold-start EMF metric even with metrics disabled: keep it out of the story.
            with contextlib.redirect_stdout(captured):
                result: dict[str, Any] = self.handler.lambda_handler(event, LambdaContext())
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
        p.field("EventBridge", s.note("MATCHED") + ": the rule delivers the event -> invoking lambda_handler")
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
        from ecs_remediate.taskdef import default_register_model

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
            from ecs_remediate.taskdef import default_register_model

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
        from ecs_remediate.notice import build_message
        from ecs_remediate.outcomes import Result

        p = self.p
        notes = self.sandbox.inbox()
        if len(notes) != 1:
            self.fail(f"{family}: expected one notice in the inbox, found {len(notes)}")
        for note in notes:
            data = {_snake(k): v for k, v in note.payload.items()}
            if isinstance(data.get("registration"), dict):
                data["registration"] = {_snake(k): v for k, v in data["registration"].items()}
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
        signal.signal(signum, _raise_interrupt)
    try:
        return run(p)
    except KeyboardInterrupt:
        p.line()
        p.line(p.s.bad("interrupted") + ": stopped; nothing is left running")
        return 130


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
        os.environ.update(sandbox.env(DAEMON_ROLLOUT="true"))  # daemons: the scene after step 5 moves one
        p.step(3, total, "Created what the stack would create")
        p.field("idempotency", f"DynamoDB table {sandbox.table_name}")
        p.field("notices", f"SNS topic {sandbox.topic_arn}")
        p.field("inbox", "SQS queue 'inbox' subscribed to the topic, standing in for the email address")
        # The handler parses its configuration at import: only now is the environment complete.
        from ecs_remediate import handler

        demo = Demo(p, pattern, sandbox, handler, matches)
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
        from demo.org_scene import run_org_scene

        p.line()
        p.line(s.bold("[org] An organization: a hub fixes a member's registration in that member, and nowhere else"))
        demo.failures += run_org_scene(p, endpoint, sandbox, matches)
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
