"""One local server for the tests and the demo: moto, with the ECS daemon operations answered by the emulator.

`EmulatorServer` is moto's ThreadedMotoServer with a WSGI middleware in front of moto's app. The middleware looks at
X-Amz-Target: a daemon operation (and a tag call on a daemon or daemon task definition ARN, and CreateCapacityProvider
for Managed Instances) goes to `DaemonEmulator`; everything else reaches moto untouched. `POST /moto-api/reset`
resets both. Test hooks, over HTTP so that a server in another thread or process can be driven too:

    POST /moto-api/ecs-daemons/next-deployment   {"daemonArn": ..., "outcome": "ROLLBACK_SUCCESSFUL"}
    POST /moto-api/ecs-daemons/finish-deployment {"daemonArn": ..., "outcome": "SUCCESSFUL"}
    POST /moto-api/ecs-daemons/finish-delete     {"daemonArn": ...}

    GET  /moto-api/account-of?accessKeyId=...    {"account": ...}: the account moto answers that key's requests for
         (an IAM user's, or the role's account for credentials from moto's AssumeRole); `account_of(endpoint)`
         asks it, for a throttling proxy in another process (ECS's buckets are per account)

AWS Config's advanced query (X-Amz-Target StarlingDoveService.Select*ResourceConfig) is answered by `ConfigQueries`
from the same moto state (emulators/config_queries.py); its hooks are under /moto-api/config-queries/.
`local_emulator()` starts one on a loopback port with moto_fidelity.py applied: what the demo and `make emulator` run.

Where it may differ from AWS:
- one endpoint answers every service, account and Region; no signature is verified and no IAM is evaluated: the
  account is moto's reading of the request (MOTO_ACCOUNT_ID, then x-moto-account-id, then the access key), the
  Region the one the request is signed for;
- a request body past 1 MiB is cut there (the daemon and Config requests are far smaller; AWS's own limits are not
  modelled), so a larger one fails as a SerializationException;
- errors of the emulated operations are sent in the JSON protocol's form (`__type`, `message`, x-amzn-ErrorType),
  an emulator bug as HTTP 500 ServerException; everything else is moto's answer, with moto's own gaps.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from moto.iam.models import get_account_id_from
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Request

from emulators import config_queries, moto_fidelity
from emulators.config_queries import ConfigQueries
from emulators.daemon_api import ApiError, Caller, target_prefix
from emulators.daemon_emulator import DaemonEmulator

HOOK_PREFIX = "/moto-api/ecs-daemons/"
ACCOUNT_OF_PATH = "/moto-api/account-of"
_MAX_BODY = 1 << 20  # 1 MiB: far above any daemon request (a task definition is at most 64 KiB)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class DaemonMiddleware:
    """WSGI middleware: the daemon operations to the emulator, the rest to moto."""

    def __init__(
        self, app: Callable[..., Iterable[bytes]], emulator: DaemonEmulator, queries: ConfigQueries | None = None
    ) -> None:
        self.app = app
        self.emulator = emulator
        self.prefix = target_prefix()
        self.queries = queries

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if method == "POST" and path == "/moto-api/reset":
            self.emulator.reset()
            if self.queries is not None:
                self.queries.reset()
            return self.app(environ, start_response)
        if path.startswith(HOOK_PREFIX):
            return self._hook(path[len(HOOK_PREFIX) :], _body(environ), start_response)
        if method == "GET" and path == ACCOUNT_OF_PATH:
            key = (urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("accessKeyId") or [""])[0]
            return _json(start_response, "200 OK", {"account": get_account_id_from(key)})
        prefix, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
        if self.queries is not None and (
            path.startswith(config_queries.HOOK_PREFIX)
            or (prefix == config_queries.target_prefix() and operation in self.queries.OPERATIONS)
        ):
            return self._config(environ, path, operation, start_response)
        if method != "POST" or prefix != self.prefix or operation not in self.emulator.OPERATIONS:
            return self.app(environ, start_response)
        body = _body(environ)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return _error(start_response, ApiError("SerializationException", "the request body is not JSON"))
        if not self.emulator.handles(operation, params):
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
            return self.app(environ, start_response)
        try:
            answer = self.emulator.dispatch(operation, params, caller_of(environ))
        except ApiError as error:
            return _error(start_response, error)
        except AssertionError as error:  # an answer that breaks the output shape: our bug, loudly
            return _error(start_response, ApiError("ServerException", f"emulator bug: {error}"[:2000], 500))
        return _json(start_response, "200 OK", answer)

    def _hook(self, name: str, body: bytes, start_response: StartResponse) -> Iterable[bytes]:
        try:
            request = json.loads(body or b"{}")
            arn, outcome = request["daemonArn"], request.get("outcome", "SUCCESSFUL")
            if name == "next-deployment":
                self.emulator.set_next_deployment_outcome(arn, outcome)
            elif name == "finish-deployment":
                self.emulator.finish_deployment(arn, outcome)
            elif name == "finish-delete":
                self.emulator.finish_delete(arn)
            else:
                raise KeyError(name)
        except (ValueError, KeyError, TypeError) as error:
            return _json(start_response, "400 Bad Request", {"error": str(error)})
        return _json(start_response, "200 OK", {"ok": True})

    def _config(
        self, environ: dict[str, Any], path: str, operation: str, start_response: StartResponse
    ) -> Iterable[bytes]:
        """AWS Config's advanced query, or one of its test hooks."""
        assert self.queries is not None
        try:
            request = json.loads(_body(environ) or b"{}")
        except ValueError:
            return _error(start_response, ApiError("SerializationException", "the request body is not JSON"))
        if path.startswith(config_queries.HOOK_PREFIX):
            try:
                return _json(
                    start_response, "200 OK", self.queries.hook(path[len(config_queries.HOOK_PREFIX) :], request)
                )
            except (KeyError, TypeError, ValueError) as error:
                return _json(start_response, "400 Bad Request", {"error": str(error)})
        try:
            return _json(start_response, "200 OK", self.queries.dispatch(operation, request, caller_of(environ)))
        except ApiError as error:
            return _error(start_response, error)
        except AssertionError as error:  # an answer that breaks the output shape: our bug, loudly
            return _error(start_response, ApiError("ServerException", f"emulator bug: {error}"[:2000], 500))


def caller_of(environ: dict[str, Any]) -> Caller:
    """Account and Region exactly as moto resolves them for its own services (moto's BaseResponse)."""
    from moto.core.responses import BaseResponse
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    request = Request(environ)
    resolver = BaseResponse()
    resolver.headers = request.headers
    resolver.querystring = {}
    account = resolver.get_current_account()
    region = resolver.get_region_from_url(request, request.url)
    partition = get_partition(region)
    role = sts_backends[account][partition].get_assumed_role_from_access_key(resolver.get_access_key())
    who = role.arn if role is not None else f"arn:{partition}:iam::{account}:root"
    return Caller(account=account, region=region, arn=who, partition=partition)


def _body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(min(length, _MAX_BODY)) if length else b""


def _json(start_response: StartResponse, status: str, body: Any) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(data))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [data]


def _error(start_response: StartResponse, error: ApiError) -> Iterable[bytes]:
    data = json.dumps({"__type": error.code, "message": error.message}).encode()
    reason = {400: "Bad Request", 500: "Internal Server Error"}.get(error.status, "Error")
    start_response(
        f"{error.status} {reason}",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(data))),
            ("x-amzn-ErrorType", error.code),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [data]


class EmulatorServer(ThreadedMotoServer):
    """ThreadedMotoServer whose app is moto behind `DaemonMiddleware`; `emulator` is its daemon state (tests may
    call its hooks directly). stop() also closes the listening socket."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=verbose)
        self.emulator = DaemonEmulator()
        self.config_queries = ConfigQueries()

    def _server_entry(self) -> None:  # moto 5.2.5's own entry, with the middleware around the app
        app = DaemonMiddleware(DomainDispatcherApplication(create_backend_app), self.emulator, self.config_queries)
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    def stop(self) -> None:
        super().stop()
        if self._server is not None:
            self._server.server_close()


def account_of(endpoint: str) -> Callable[[str], str]:
    """Access key -> the account moto answers for, asked of the emulator at `endpoint` (moto's state is in its
    process) once per key: a key never changes account."""

    @functools.lru_cache(maxsize=4096)
    def ask(key: str) -> str:
        query = urllib.parse.urlencode({"accessKeyId": key})
        with urllib.request.urlopen(f"{endpoint}{ACCOUNT_OF_PATH}?{query}", timeout=10) as answer:
            return str(json.load(answer)["account"])

    return ask


@contextlib.contextmanager
def local_emulator(port: int = 0) -> Iterator[str]:
    """The emulator on 127.0.0.1 (`port`, or one the OS chooses): moto made faithful where the stack depends on it
    (moto_fidelity), with the daemon API and Config's queries in front; yields its endpoint URL, and stops it and
    closes its socket on every exit."""
    moto_fidelity.apply()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log lines
    server = EmulatorServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, bound = server.get_host_and_port()
        yield f"http://{host}:{bound}"
    finally:
        server.stop()
