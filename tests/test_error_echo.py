"""Issue 19: AWS error messages copied into notices, reports and findings. An AWS error can echo the request: ECS's
ClientException on RegisterTaskDefinition quotes the value it refuses. Here every such error echoes what the
registrant planted in the task definition (an environment value, a secret's ARN, a command line, a docker label),
and the project's outputs are searched for it: the notice (subject, JSON, attributes from the inbox queue, and the
email text as handed to SNS), every log record and line the process wrote, the error the handler raised (its text
and traceback, as Lambda logs it), the Security Hub findings stored and sent, every `scan` output format and stderr.

Variants: a refused RegisterTaskDefinition (three codes), a DescribeTaskDefinition denied (permanent) or throttled
(raised for Lambda's retry), an SNS Publish refused, Security Hub refusing the import (an error, and a per-finding
ErrorMessage), a refused RegisterDaemonTaskDefinition, the scheduled sweep, and `scan` with and without --remediate.
What stays: the error code, the operation and the request id (adapters.aws_errors.safe_error).
"""

from __future__ import annotations

import io
import json
import logging
import re
import traceback
import uuid
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ParamValidationError
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from test_handler import invoke

from conftest import load_handler
from demo.daemon_sandbox import call_event
from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.adapters.aws_errors import safe_error, scrub
from ecs_remediate.cli.main import main
from ecs_remediate.remediation.remediator import RemediationFailed
from emulators.securityhub import documented_security_hub

FAST = "describe=1000/1000,list=1000/1000,register=1000/1000"
REQUEST_ID = "echo-request-0001"


class Planted:
    """A privileged task definition carrying four secrets, and the text an AWS error would echo them in."""

    def __init__(self, family: str = "web") -> None:
        token = uuid.uuid4().hex[:12]
        self.env, self.arn_part = f"env-{token}-hunter2", f"arnpart-{token}"
        self.command, self.label = f"cmdline-{token}-s3cr3t", f"label-{token}-t0ken"
        self.secrets = (self.env, self.arn_part, self.command, self.label)
        self.params = {
            "family": family,
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": "nginx",
                    "memory": 64,
                    "privileged": True,
                    "environment": [{"name": "DB_PASSWORD", "value": self.env}],
                    "secrets": [
                        {
                            "name": "API_KEY",
                            "valueFrom": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{self.arn_part}",
                        }
                    ],
                    "command": ["serve", f"--password={self.command}"],
                    "dockerLabels": {"token": self.label},
                }
            ],
        }

    def echo(self) -> str:
        """What a validation error quoting the request looks like (quotes, brackets, `value:` and bare text)."""
        return (
            f"Invalid parameter at 'containerDefinitions.1.member.environment.1.member.value' failed to satisfy "
            f"constraint: value '{self.env}'; secrets[0].valueFrom=[arn:...:secret:{self.arn_part}], command: "
            f"--password={self.command} dockerLabels {{token={self.label}}}"
        )

    def leaks(self, texts: list[str]) -> list[str]:
        """Each secret found, with the text around it (a failure says where it leaked)."""
        joined = "\n".join(texts)
        return [joined[max(0, joined.index(s) - 300) : joined.index(s) + 50] for s in self.secrets if s in joined]


def error_body(protocol: str, code: str, message: str, status: int) -> tuple[int, dict[str, str], bytes]:
    """An error answer as moto's in-process stub returns one: status, headers, body."""
    if protocol == "query":
        inner = f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        body = f"<ErrorResponse>{inner}<RequestId>{REQUEST_ID}</RequestId></ErrorResponse>"
        return status, {"content-type": "text/xml", "x-amzn-requestid": REQUEST_ID}, body.encode()
    body = json.dumps({"__type": code, "message": message})
    headers = {"x-amzn-errortype": code, "content-type": "application/json", "x-amzn-requestid": REQUEST_ID}
    return status, headers, body.encode()


def operation_of(request: Any) -> str:
    target = request.headers.get("X-Amz-Target") or b""
    target = target.decode() if isinstance(target, bytes) else str(target)
    if target:
        return target.rsplit(".", 1)[-1]
    body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
    action = re.search(rb"Action=([A-Za-z]+)", body)
    if action:
        return action[1].decode()
    return "BatchImportFindings" if request.url.endswith("/findings/import") else ""


class Echoes:
    """Answer `operation` (any client of this process, in moto's in-process emulator) with an error whose message
    echoes the planted secrets, `times` times (None: always)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rules: list[tuple[str, int, str, str, int | None]] = []
        self.answered: list[str] = []
        original = BotocoreStubber.process_request

        def process(stubber: BotocoreStubber, request: Any) -> Any:
            operation = operation_of(request)
            for i, (wanted, status, code, message, times) in enumerate(self.rules):
                if operation == wanted and times != 0:
                    self.rules[i] = (wanted, status, code, message, None if times is None else times - 1)
                    self.answered.append(operation)
                    body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
                    protocol = "query" if b"Action=" in body else "json"
                    return error_body(protocol, code, message, status)
            return original(stubber, request)

        monkeypatch.setattr(BotocoreStubber, "process_request", process)

    def add(self, operation: str, code: str, message: str, status: int = 400, times: int | None = None) -> None:
        self.rules.append((operation, status, code, message, times))


class Outputs:
    """Everything the process said: the inbox, the emails handed to SNS, log records and lines, raised errors."""

    def __init__(self, sandbox: Sandbox, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
        self.sandbox, self.capsys, self.caplog = sandbox, capsys, caplog
        self.emails: list[str] = []
        self.raised: list[str] = []
        self.logged: list[str] = []
        self.notes: list[Any] = []
        caplog.set_level("DEBUG")

    def watch_sns(self) -> None:
        def record(params: dict[str, Any], **_: Any) -> None:
            self.emails.append(str(json.loads(params["Message"]).get("email", "")))

        aws.client("sns").meta.events.register("provide-client-params.sns.Publish", record, unique_id="echo-emails")

    def call(self, function: Callable[[], Any]) -> Any:
        """`function()`, or the error it raised as Lambda's runtime logs it (type, text, traceback with its chain).
        What was printed or logged before (the test's own set-up) is not the function's, and is dropped. The
        Powertools loggers' JSON lines (stdout in Lambda: CloudWatch Logs) are captured from their own handlers,
        which may hold the stream of an earlier test."""
        self.capsys.readouterr()
        self.caplog.clear()
        streams = [
            handler
            for name in ("ecs-remediate", *logging.root.manager.loggerDict)
            for handler in logging.getLogger(name).handlers
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
        ]
        lines = io.StringIO()
        kept = [handler.setStream(lines) for handler in streams]
        try:
            return function()
        except Exception as error:  # noqa: BLE001 - what was raised is searched
            self.raised.append("".join(traceback.format_exception(error)))
            return error
        finally:
            for handler, stream in zip(streams, kept, strict=True):
                handler.setStream(stream)
            self.logged.append(lines.getvalue())

    def texts(self) -> list[str]:
        self.notes += self.sandbox.inbox()
        out, err = self.capsys.readouterr()
        records = [f"{r.getMessage()} {json.dumps(vars(r), default=str)}" for r in self.caplog.records]
        notes = [n.subject + json.dumps(n.payload) + json.dumps(n.attributes) for n in self.notes]
        return [*notes, *self.emails, out, err, self.caplog.text, *records, *self.raised, *self.logged]


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[tuple[Sandbox, Echoes, Outputs]]:
    for name in ("AWS_ENDPOINT_URL", "EXEMPT_FAMILIES", "ROLLOUT", "RETIRE", "SECURITY_HUB", "MODE", "TOPIC_ARN"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(), documented_security_hub(monkeypatch):
        aws.reset_clients()
        sandbox = Sandbox().create()
        sandbox.client("securityhub").enable_security_hub()
        yield sandbox, Echoes(monkeypatch), Outputs(sandbox, capsys, caplog)
    aws.reset_clients()


def function(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, outputs: Outputs, **env: str) -> ModuleType:
    handler = load_handler(sandbox, monkeypatch, SECURITY_HUB="true", SWEEP_RATES=FAST, **env)
    outputs.watch_sns()
    return handler


def findings(sandbox: Sandbox) -> list[str]:
    return [
        json.dumps(f)
        for p in sandbox.client("securityhub").get_paginator("get_findings").paginate()
        for f in p["Findings"]
    ]


def assert_safe(planted: Planted, outputs: Outputs, *, code: str, operation: str) -> None:
    texts = outputs.texts()
    assert planted.leaks(texts) == []
    assert planted.leaks(findings(outputs.sandbox)) == []
    said = "\n".join(texts)
    assert f"{code}: {operation}" in said, "the error code and the operation are what is said instead"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ClientException", "{echo}"),
        ("InvalidParameterException", "{echo}"),
        ("AccessDeniedException", "User is not authorized to perform: iam:PassRole on resource: {echo}"),
    ],
)
def test_a_refused_copy_whose_error_echoes_the_task_definition_leaks_nothing(
    code: str, message: str, world: tuple[Sandbox, Echoes, Outputs], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, echoes, outputs = world
    planted = Planted()
    response = sandbox.register(planted.params)
    handler = function(sandbox, monkeypatch, outputs)
    echoes.add("RegisterTaskDefinition", code, message.format(echo=planted.echo()))

    raised = outputs.call(lambda: invoke(handler, sandbox.event_for(planted.params, response)))
    assert isinstance(raised, RemediationFailed) and echoes.answered == ["RegisterTaskDefinition"]
    assert_safe(planted, outputs, code=code, operation="RegisterTaskDefinition")
    [note] = outputs.notes
    assert note.payload["outcome"] == "failed" and note.payload["errorCode"] == code
    assert note.payload["errorMessage"].startswith("RegisterTaskDefinition was ")
    assert f"request id {REQUEST_ID}" in note.payload["errorMessage"]
    if code == "AccessDeniedException":
        assert "(needs iam:PassRole)" in note.payload["errorMessage"]
    [finding] = findings(sandbox)
    assert '"Compliance": {"Status": "FAILED"' in finding
    assert len(sandbox.active_revisions("web")) == 1


@pytest.mark.usefixtures("short_sdk_backoff")  # the throttled describe goes through the SDK's 8 attempts
@pytest.mark.parametrize(("code", "status"), [("AccessDeniedException", 400), ("ThrottlingException", 400)])
def test_a_describe_error_echoing_the_task_definition_leaks_nothing(
    code: str, status: int, world: tuple[Sandbox, Echoes, Outputs], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Denied: a failure notice. Throttled (after the SDK's retries): raised for Lambda's retry, and what Lambda logs
    of the raised error is searched too."""
    sandbox, echoes, outputs = world
    planted = Planted()
    response = sandbox.register(planted.params)
    handler = function(sandbox, monkeypatch, outputs)
    echoes.add("DescribeTaskDefinition", code, planted.echo(), status)

    raised = outputs.call(lambda: invoke(handler, sandbox.event_for(planted.params, response)))
    assert isinstance(raised, Exception) and outputs.raised
    assert_safe(planted, outputs, code=code, operation="DescribeTaskDefinition")
    if code == "ThrottlingException":
        assert isinstance(raised, aws.ClientError)  # the same error, for the same retry; only its text changed
        # the SDK's retries were all made (aws.BOTO_CONFIG: 8; short_sdk_backoff shortens the waits, not the retries)
        assert echoes.answered.count("DescribeTaskDefinition") > 8
        assert outputs.notes == []
    else:
        [note] = outputs.notes
        assert note.payload["errorCode"] == code


def test_a_refused_publish_echoing_the_notice_leaks_nothing(
    world: tuple[Sandbox, Echoes, Outputs], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, echoes, outputs = world
    planted = Planted()
    response = sandbox.register(planted.params)
    handler = function(sandbox, monkeypatch, outputs)
    echoes.add("Publish", "InvalidParameter", f"Invalid parameter: Message {planted.echo()}")

    raised = outputs.call(lambda: invoke(handler, sandbox.event_for(planted.params, response)))
    assert isinstance(raised, aws.ClientError) and echoes.answered == ["Publish"]
    assert_safe(planted, outputs, code="InvalidParameter", operation="Publish")


def test_security_hub_refusing_the_import_with_an_echo_leaks_nothing(
    world: tuple[Sandbox, Echoes, Outputs], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, echoes, outputs = world
    planted = Planted()
    response = sandbox.register(planted.params)
    handler = function(sandbox, monkeypatch, outputs)
    echoes.add("BatchImportFindings", "AccessDeniedException", planted.echo(), 403, times=1)

    raised = outputs.call(lambda: invoke(handler, sandbox.event_for(planted.params, response)))
    assert isinstance(raised, aws.ClientError)
    assert_safe(planted, outputs, code="AccessDeniedException", operation="BatchImportFindings")
    [logged] = [r for r in outputs.caplog.records if r.getMessage() == "Security Hub import failed"]
    assert str(getattr(logged, "error", "")).startswith("AccessDeniedException: BatchImportFindings was denied")


def test_a_finding_refused_with_an_echoing_error_message_leaks_nothing(
    world: tuple[Sandbox, Echoes, Outputs], monkeypatch: pytest.MonkeyPatch
) -> None:
    """BatchImportFindings answers 200 with the finding in FailedFindings, its ErrorMessage echoing the finding."""
    sandbox, _, outputs = world
    planted = Planted()
    response = sandbox.register(planted.params)
    handler = function(sandbox, monkeypatch, outputs)

    def refuse(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        ids = [f["Id"] for f in json.loads(params["body"])["Findings"]]
        failed = [{"Id": i, "ErrorCode": "InvalidInput", "ErrorMessage": planted.echo()} for i in ids]
        answer = {"FailedCount": len(ids), "SuccessCount": 0, "FailedFindings": failed}
        return AWSResponse("https://securityhub", 200, {}, None), answer

    aws.client("securityhub", "us-east-1").meta.events.register_first(
        "before-call.securityhub.BatchImportFindings", refuse
    )
    raised = outputs.call(lambda: invoke(handler, sandbox.event_for(planted.params, response)))
    assert type(raised).__name__ == "SecurityHubImportFailed"
    assert_safe(planted, outputs, code="InvalidInput", operation="BatchImportFindings")


def test_the_scheduled_sweep_leaks_nothing_of_a_describe_error(
    world: tuple[Sandbox, Echoes, Outputs], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its rows go into the summary notice, the log line and one Security Hub finding each."""
    sandbox, echoes, outputs = world
    planted = Planted()
    sandbox.register(planted.params)
    handler = function(sandbox, monkeypatch, outputs, MODE="report")
    echoes.add("DescribeTaskDefinition", "ClientException", planted.echo())

    summary = outputs.call(lambda: handler.sweep_handler({"scope": "active"}, LambdaContext()))
    assert summary["counts"]["ERROR"] == 1
    assert_safe(planted, outputs, code="ClientException", operation="DescribeTaskDefinition")
    [note] = outputs.notes
    assert note.payload["openFindings"][0]["error"].startswith("describe failed after retries: ClientException: ")
    [finding] = findings(sandbox)
    assert "ClientException: DescribeTaskDefinition was refused" in finding


@pytest.mark.parametrize(
    ("operation", "code", "args"),
    [
        ("DescribeTaskDefinition", "ClientException", []),
        ("RegisterTaskDefinition", "ClientException", ["--remediate"]),
        ("BatchImportFindings", "AccessDeniedException", ["--security-hub"]),
    ],
)
def test_scan_outputs_leak_nothing_of_an_echoing_error(
    operation: str, code: str, args: list[str], world: tuple[Sandbox, Echoes, Outputs], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, echoes, outputs = world
    planted = Planted()
    sandbox.register(planted.params)
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    echoes.add(operation, code, planted.echo())
    said = []
    for output in ("json", "csv", "table", "ocsf", "asff", "html"):
        stdout, stderr = io.StringIO(), io.StringIO()
        rates = ["--rate", FAST, "--max-attempts", "1", "-q", "--scope", "active"]
        main(["scan", "--region", "us-east-1", *rates, "--output", output, *args], stdout, stderr)
        said += [stdout.getvalue(), stderr.getvalue()]
        assert planted.leaks(said) == [], output
    assert planted.leaks(outputs.texts()) == []
    assert f"{code}: {operation}" in "\n".join(said)


def test_a_refused_daemon_copy_whose_error_echoes_it_leaks_nothing(
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ECS Managed Daemons (the daemon emulator): RegisterDaemonTaskDefinition refused with an echo."""
    from strategies import error_response

    sandbox = Sandbox(endpoint_url=moto_endpoint).create()
    outputs = Outputs(sandbox, capsys, caplog)
    handler = load_handler(sandbox, monkeypatch)
    outputs.watch_sns()
    planted = Planted("agent")
    source = planted.params["containerDefinitions"][0]
    container = {k: v for k, v in source.items() if k not in ("memory", "dockerLabels")}
    container["command"] = [*container["command"], f"--label={planted.label}"]  # daemon containers have no labels
    params = {**planted.params, "containerDefinitions": [container]}
    arn = sandbox.client("ecs").register_daemon_task_definition(**params)["daemonTaskDefinitionArn"]
    event = call_event(sandbox, "RegisterDaemonTaskDefinition", params, {"daemonTaskDefinitionArn": arn})

    def refuse(request: Any, **_: Any) -> Any:
        return error_response(request, 400, "ClientException", planted.echo())

    aws.client("ecs").meta.events.register_first("before-send.ecs.RegisterDaemonTaskDefinition", refuse)
    raised = outputs.call(lambda: invoke(handler, event))
    assert isinstance(raised, RemediationFailed)
    assert planted.leaks(outputs.texts()) == []
    [note] = outputs.notes
    assert note.payload["resourceType"] == "daemon task definition" and note.payload["errorCode"] == "ClientException"
    assert note.payload["errorMessage"].startswith("RegisterDaemonTaskDefinition was refused by the service")


SECRET = "s3cr3t-value-in-the-request"


def _client_error(code: str, message: str, status: int = 400) -> aws.ClientError:
    metadata = {"HTTPStatusCode": status, "RequestId": REQUEST_ID}
    return aws.ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": metadata}, "Op")


def _wrapped() -> Exception:
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError

    try:
        try:
            raise _client_error("ValidationException", f"value {SECRET}")
        except aws.ClientError as error:
            raise IdempotencyPersistenceLayerError("Failed to save in progress record", error) from error
    except IdempotencyPersistenceLayerError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda: _client_error("ClientException", f"bad '{SECRET}'"), "ClientException: Op was refused by the service"),
        (lambda: _client_error("ThrottlingException", SECRET), "ThrottlingException: Op was throttled"),
        (lambda: _client_error("ServerException", SECRET, 500), "ServerException: Op failed on the service's side"),
        (lambda: _client_error("AccessDenied", f"is not authorized to perform: ecs:Describe on {SECRET}"), "(needs"),
        (lambda: ParamValidationError(report=f"Invalid type, value: {SECRET}"), "ParamValidationError: the request"),
        (_wrapped, "IdempotencyPersistenceLayerError (its text is withheld): ValidationException: Op was refused"),
        (lambda: ValueError(f"invalid literal for int(): {SECRET!r}"), "ValueError (its text is withheld)"),
    ],
)
def test_safe_error_and_scrub_keep_the_code_and_drop_the_text(make: Callable[[], Exception], said: str) -> None:
    error = make()
    text = safe_error(error)
    assert said in text and SECRET not in text and len(text) <= 1000
    assert scrub(error) == text
    assert SECRET not in "".join(traceback.format_exception(error))  # what a logged or raised traceback shows
    if isinstance(error, aws.ClientError):
        assert f"request id {REQUEST_ID}" in text and SECRET not in error.response["Error"]["Message"]


def test_no_client_of_ours_holds_an_aws_message_so_no_trace_records_one(
    world: tuple[Sandbox, Echoes, Outputs],
) -> None:
    """The X-Ray SDK (the function's Tracer patches botocore) records a failed call's error text as the SDK raised
    it, before our code sees it: the process session's clients and each member account's session withhold AWS's
    message in the parsed answer (adapters.aws_errors.withhold_message), so the raised error never holds it. The one
    message the code reads, ECS's "Unable to describe task definition.", quotes nothing and is kept."""
    from ecs_remediate.organization.member_accounts import MemberAccounts

    sandbox, echoes, _ = world
    planted = Planted()
    echoes.add("DescribeTaskDefinition", "ClientException", planted.echo(), times=1)
    echoes.add("ListTaskDefinitions", "AccessDeniedException", planted.echo(), times=1)
    member = MemberAccounts("ecs-remediate-member", sts=aws.client("sts")).client("ecs", "111122223333", "eu-west-1")
    calls = [
        lambda: aws.client("ecs").describe_task_definition(taskDefinition="web:1"),
        member.list_task_definitions,
    ]
    for call in calls:
        with pytest.raises(aws.ClientError) as raised:
            call()
        assert planted.leaks([str(raised.value), json.dumps(raised.value.response, default=str)]) == []
        assert "AWS's message is withheld" in str(raised.value)
    with pytest.raises(aws.ClientError, match=r"Unable to describe task definition\.$"):
        aws.client("ecs").describe_task_definition(taskDefinition="absent:1")
    assert aws.Ecs(aws.client("ecs")).latest_active("absent") is None  # read as RevisionNotFound, as before
    assert sandbox.active_revisions("web") == []


def test_only_an_access_denied_keeps_the_action_it_names() -> None:
    """An echo dressed as an AccessDenied inside another error keeps nothing; an AccessDenied keeps `service:Action`."""
    from ecs_remediate.adapters.aws_errors import withhold_message

    token = "Tok3nFromTheRequest"
    for code, kept in (("ClientException", False), ("AccessDeniedException", True)):
        response = {"Error": {"Code": code, "Message": f"is not authorized to perform: ecs:{token} on x"}}
        withhold_message(response)
        error = aws.ClientError({**response, "ResponseMetadata": {"HTTPStatusCode": 400}}, "RegisterTaskDefinition")
        assert (token in str(error)) is kept and (token in safe_error(error)) is kept


def test_an_access_denied_keeps_iams_words_for_why_and_nothing_else() -> None:
    from ecs_remediate.adapters.aws_errors import withhold_message

    message = (
        "User: arn:aws:sts::123456789012:assumed-role/fn/s is not authorized to perform: ecs:RegisterTaskDefinition "
        f"on resource: arn:aws:ecs:us-east-1:123456789012:task-definition/{SECRET} with an explicit deny in a "
        "service control policy"
    )
    response = {"Error": {"Code": "AccessDeniedException", "Message": message}}
    withhold_message(response)
    error = aws.ClientError({**response, "ResponseMetadata": {"HTTPStatusCode": 400}}, "RegisterTaskDefinition")
    assert safe_error(error) == (
        "AccessDeniedException: RegisterTaskDefinition was denied with an explicit deny in a service control policy "
        "(needs ecs:RegisterTaskDefinition); AWS's message is withheld, as it can echo the request"
    )
    assert SECRET not in str(error)
