"""What bench/hub.py runs in fresh interpreters: the function in one mode over a zero-latency transport that
answers every AWS call of any client (the hub's member clients are created at run time) with a canned success,
without I/O. Kept small: whatever it imports, every mode pays alike.

Modes: `single` (the single-account function), `hub` (a member's event; the account's name already in the hub's
table, as for every cold start after that account's first) and `hub-new` (the account's name never looked up:
the instance builds an Organizations client and asks). The canned answers are bench/handler.py's (the largest
fixture, remediated: describe, register, publish), with the revision in the event's account, plus STS AssumeRole
(credentials of the member role, valid until 2099), DynamoDB GetItem (the name's item, or none) and Organizations
DescribeAccount.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

MEMBER = "210987654321"
SINGLE = "123456789012"
ROLE = "ecs-remediate-member"


MODES = ("single", "hub", "hub-new")


def account_of(mode: str) -> str:
    return SINGLE if mode == "single" else MEMBER


def arn(mode: str, revision: int = 1234) -> str:
    return f"arn:aws:ecs:us-east-1:{account_of(mode)}:task-definition/payments-api:{revision}"


def event(mode: str) -> dict[str, Any]:
    from bench.handler import event as single_event

    delivered = single_event()
    delivered["account"] = account_of(mode)
    delivered["detail"]["responseElements"]["taskDefinition"]["taskDefinitionArn"] = arn(mode)
    delivered["detail"]["userIdentity"]["arn"] = f"arn:aws:sts::{account_of(mode)}:assumed-role/Dev/alice"
    return delivered


def canned(mode: str) -> dict[str, bytes]:
    from bench.handler import describe_body

    body = describe_body()
    body["taskDefinition"]["taskDefinitionArn"] = arn(mode)
    registered = dict(body["taskDefinition"], revision=1235, taskDefinitionArn=arn(mode, 1235))
    assumed = (
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
        f"<AssumedRoleUser><AssumedRoleId>AROABENCH:ecs-remediate</AssumedRoleId>"
        f"<Arn>arn:aws:sts::{MEMBER}:assumed-role/{ROLE}/ecs-remediate</Arn></AssumedRoleUser>"
        "<Credentials><AccessKeyId>ASIABENCH</AccessKeyId><SecretAccessKey>bench</SecretAccessKey>"
        "<SessionToken>bench</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>"
        "</AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>"
    )
    return {
        "DescribeTaskDefinition": json.dumps(body).encode(),
        "RegisterTaskDefinition": json.dumps({"taskDefinition": registered}).encode(),
        "Publish": b"<PublishResponse><PublishResult><MessageId>m-1</MessageId></PublishResult>"
        b"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>",
        "AssumeRole": assumed.encode(),
        "DescribeAccount": json.dumps({"Account": {"Id": MEMBER, "Name": "payments-prod"}}).encode(),
        "GetItem": json.dumps(
            {
                "Item": {
                    "id": {"S": f"ecs-remediate#account-name#{MEMBER}"},
                    "name": {"S": "payments-prod"},
                    "expiration": {"N": "4102444800"},
                }
            }
            if mode == "hub"
            else {}
        ).encode(),
    }


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any) -> bytes:
        return self._data


def install_transport(mode: str) -> None:
    """Every HTTP request of every botocore client answered in process (same mechanism for both modes)."""
    from botocore.awsrequest import AWSResponse
    from botocore.httpsession import URLLib3Session

    answers = canned(mode)

    def send(self: Any, request: Any) -> AWSResponse:
        target = request.headers.get("X-Amz-Target") or b""
        target = target.decode() if isinstance(target, bytes) else str(target)
        if target:
            operation = target.rsplit(".", 1)[-1]
        else:  # query protocol (SNS, STS): Action=... in the form body
            body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
            operation = next((p[7:] for p in body.split("&") if p.startswith("Action=")), "")
        return AWSResponse(request.url, 200, {}, _Body(answers.get(operation, b"{}")))

    URLLib3Session.send = send  # type: ignore[method-assign]


def environment(mode: str) -> dict[str, str]:
    from bench.handler import ENV

    env = dict(ENV)
    if mode != "single":
        env["MEMBER_ROLE_NAME"] = ROLE
    return env


class Context:
    function_name, memory_limit_in_mb, aws_request_id = "bench", 256, "r"
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{SINGLE}:function:bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def ready(mode: str) -> Any:
    """Import the handler and build what its first event needs (remediator / hub runtime)."""
    import ecs_remediate.functions.handler as handler

    return handler.remediator() if mode == "single" else handler.hub_runtime()


def first_event(mode: str) -> None:
    """A cold start through its first event: import, build, handle one remediation (the hub assumes the member
    role and builds that account's clients here)."""
    install_transport(mode)
    import ecs_remediate.functions.handler as handler

    ready(mode)
    real, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 - Powertools prints EMF to stdout
    try:
        out = handler.lambda_handler(event(mode), Context())  # type: ignore[arg-type]
    finally:
        sys.stdout = real
    assert out["outcome"] == "remediated", out
