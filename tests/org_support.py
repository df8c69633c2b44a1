"""Helpers of the organization tests: the hub function loaded as the hub stack starts it, a clock, and a record
of every HTTP request any client of this process sends (transport level: what reached the emulator).

`RequestLog` is how "one account's credentials are never used for another" is asserted on the calls made: each
request's access key (from its signed Authorization header) is mapped to the account STS issued it for (from the
AssumeRole answers it saw; the hub's own fake key belongs to the hub), and every account an ECS, EventBridge or
Scheduler request or answer names (in an ARN) must be that one.
"""

from __future__ import annotations

import importlib
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from botocore.endpoint import Endpoint
from moto.core.botocore_stubber import BotocoreStubber

from demo.org_sandbox import HUB, MEMBER_ROLE
from demo.sandbox import Sandbox

# The hub's own role: conftest's fake credentials, or those moto's mock_aws sets while it is active.
HUB_KEYS = frozenset({"testing", "FOOBARKEY"})
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_ISSUED_KEY = re.compile(r"<AccessKeyId>([A-Z0-9]+)</AccessKeyId>")
_ISSUED_FOR = re.compile(r"<Arn>arn:aws:sts::(\d{12}):assumed-role/")
_ARN_ACCOUNT = re.compile(r"arn:aws:(?:ecs|events|scheduler|iam|sts):[a-z0-9-]*:(\d{12}):")
MEMBER_SERVICES = ("ecs", "events", "scheduler")


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Request:
    key: str
    region: str
    service: str
    operation: str
    accounts: frozenset[str]  # accounts named by ARNs in the request and its answer


class RequestLog:
    """Every request sent through botocore while installed: to a moto server (Endpoint._send) or answered by moto in
    this process (its botocore stubber); pytest's monkeypatch removes both hooks."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.requests: list[Request] = []
        self.key_account: dict[str, str] = dict.fromkeys(HUB_KEYS, HUB)
        self._lock = threading.Lock()
        self.recording = True
        send = Endpoint._send

        def recorded(endpoint: Endpoint, request: Any) -> Any:
            response = send(endpoint, request)
            if self.recording:
                self._record(request, response)
            return response

        monkeypatch.setattr(Endpoint, "_send", recorded)
        # moto in this process (mock_aws) answers before any HTTP is sent: record what it answers.
        process = BotocoreStubber.process_request

        def answered(stubber: BotocoreStubber, request: Any) -> Any:
            response = process(stubber, request)
            if self.recording and response is not None:
                body = response[2]
                self._record(request, SimpleNamespace(content=body if isinstance(body, bytes) else str(body).encode()))
            return response

        monkeypatch.setattr(BotocoreStubber, "process_request", answered)

    def _record(self, request: Any, response: Any) -> None:
        auth = request.headers.get("Authorization") or b""
        auth = auth.decode() if isinstance(auth, bytes) else str(auth)
        scope = _CREDENTIAL.search(auth)
        if scope is None:
            return
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        answer = response.content or b""
        target = request.headers.get("X-Amz-Target") or b""
        operation = (target.decode() if isinstance(target, bytes) else str(target)).rsplit(".", 1)[-1]
        text = body.decode(errors="replace") + "\n" + answer.decode(errors="replace")
        with self._lock:
            issued, issued_for = _ISSUED_KEY.search(text), _ISSUED_FOR.search(text)
            if scope[3] == "sts" and issued is not None and issued_for is not None:  # an AssumeRole answer
                self.key_account[issued[1]] = issued_for[1]
            self.requests.append(
                Request(scope[1], scope[2], scope[3], operation or "Query", frozenset(_ARN_ACCOUNT.findall(text)))
            )

    def stop(self) -> None:
        """Stop recording (what the test itself then reads back, with the hub's key, is not the function's)."""
        self.recording = False

    def of(self, *services: str) -> list[Request]:
        return [r for r in self.requests if r.service in services]

    def account_of(self, key: str) -> str:
        return self.key_account.get(key, "unknown")

    def assert_each_account_used_only_its_own_credentials(self) -> None:
        """Member-side requests: signed by a key STS issued for a member role (the hub's account too, when it is swept
        as a member), and every ARN in them and their answers is that key's account's;
        the hub's own key never reaches a member service; the hub's state services are called with the hub's key."""
        member = self.of(*MEMBER_SERVICES)
        assert member, "no member request was recorded"
        for request in member:
            owner = self.account_of(request.key)
            assert request.key not in HUB_KEYS, f"the hub's own credentials called {request}"
            assert owner != "unknown", f"{request.operation} signed by a key STS did not issue: {request}"
            assert request.accounts <= {owner}, f"{request.operation} under {owner}'s key named {request.accounts}"
        for request in self.of("dynamodb", "sns", "organizations"):
            assert request.key in HUB_KEYS, f"signed by {self.account_of(request.key)}: {request}"


def load_hub(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    """The handler module as the hub stack starts it: the sandbox's environment plus MEMBER_ROLE_NAME."""
    from ecs_remediate.adapters import aws

    for name, value in sandbox.env(MEMBER_ROLE_NAME=MEMBER_ROLE, **env).items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    import ecs_remediate.functions.handler as module

    module = importlib.reload(module)
    assert module.HUB_MODE
    return module


def leave_hub(module: ModuleType) -> None:
    """Back to the single-account function for the tests that follow (they reload the module, or use it as is)."""
    module.HUB_MODE = False
    clear = getattr(module.hub_runtime, "cache_clear", None)  # a test may have put a runtime of its own there
    if clear is not None:
        clear()


def privileged(family: str = "web", image: str = "nginx:1") -> dict[str, Any]:
    return {
        "family": family,
        "containerDefinitions": [
            {"name": "app", "image": image, "memory": 64, "privileged": True},
            {"name": "log", "image": "fluent-bit", "memory": 32},
        ],
        "tags": [{"key": "team", "value": "payments"}],
    }


def compliant(family: str = "api") -> dict[str, Any]:
    return {"family": family, "containerDefinitions": [{"name": "api", "image": "nginx:1", "memory": 64}]}


__all__ = ["HUB", "HUB_KEYS", "MEMBER_ROLE", "Clock", "RequestLog", "leave_hub", "load_hub", "privileged"]


def deny_member_role(monkeypatch: pytest.MonkeyPatch, cli_module: ModuleType, account: str) -> None:
    """STS answers AccessDenied to AssumeRole into `account`'s member role, for the STS clients `cli_module` makes
    (its `regional_sts_client`): the role is not there, or its trust refuses the caller."""
    from strategies import error_response

    from ecs_remediate.organization.member_accounts import regional_sts_client

    def sts(region: str | None = None) -> Any:
        client = regional_sts_client(region)

        def refuse(request: Any, **_: Any) -> Any:
            if f"%3A{account}%3Arole" in str(request.body):
                return error_response(
                    request, 403, "AccessDenied", "not authorized to perform: sts:AssumeRole", protocol="query"
                )
            return None

        client.meta.events.register_first("before-send.sts.AssumeRole", refuse)
        return client

    monkeypatch.setattr(cli_module, "regional_sts_client", sts)
