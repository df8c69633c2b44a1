"""A small HTTP proxy in front of a moto server that behaves like ECS at its limits.

- Per-operation token buckets keyed on X-Amz-Target (ECS throttles per account and Region, per action):
  when a bucket is empty the proxy answers HTTP 400 `ThrottlingException`, as ECS does. AWS Config's advanced
  query (SelectResourceConfig, SelectAggregateResourceConfig) gets a bucket too; the emulator behind pages it.
  By default one set of buckets for everything (one account, one Region); with `account_of` (access key ->
  account) one set per (account, Region) of the signed request, as ECS keeps them for an organization's accounts.
  moto's `get_account_id_from` answers only in the process moto runs in; for moto in another process,
  `emulators.server.account_of(endpoint)` asks the emulator.
- Pages ListTaskDefinitions / ListTaskDefinitionFamilies at 100 items (or maxResults when smaller) with
  a nextToken, which moto 5.2.5 does not do. The first page snapshots moto's full answer; later pages
  slice that snapshot, so a paging client sees one consistent listing.
- Counts calls and throttles per operation; `inject` lets a test fail chosen requests on purpose.

Other services (DynamoDB, SNS, ...) pass through untouched. Loopback only; use it as a context manager
so it always stops.

Where it may differ from AWS:
- the rates are assumptions (DEFAULT_LIMITS; docs/performance.md), not measured against ECS: describe and the lists
  20 a second with a burst of 50, register 1 a second with a burst of 1; ECS publishes no rate for the daemon
  actions and Config none for its queries, so theirs are guesses; which actions share a bucket is the caller's
  `shared`, and without `account_of` every account and Region shares one set of buckets;
- a bucket starts full, spends a token before moto answers (a throttled call never reaches it) and refills
  continuously; the answer is HTTP 400 ThrottlingException "Rate exceeded"; no other service is ever throttled;
- a listing's pages are slices of one snapshot taken at its first page, where ECS pages a live listing (whether a
  revision registered between pages shows up is unverified); tokens are `<snapshot>:<offset>`, readable, never
  expiring and not bound to the request's filters; a bad one is InvalidParameterException "Invalid nextToken",
  AWS's message may differ.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
CONFIG_TARGET_PREFIX = "StarlingDoveService."
TARGET_PREFIXES = (ECS_TARGET_PREFIX, CONFIG_TARGET_PREFIX)
PAGE_SIZE = 100
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/\d{8}/([a-z0-9-]+)/")
LIST_KEYS = {"ListTaskDefinitions": "taskDefinitionArns", "ListTaskDefinitionFamilies": "families"}


@dataclass(frozen=True)
class BucketRate:
    per_second: float
    burst: int


# What the benchmark assumes ECS allows per account and Region (see docs/performance.md, "Sweep benchmark").
DEFAULT_LIMITS: dict[str, BucketRate] = {
    "DescribeTaskDefinition": BucketRate(20.0, 50),
    "ListTaskDefinitions": BucketRate(20.0, 50),
    "ListTaskDefinitionFamilies": BucketRate(20.0, 50),
    "RegisterTaskDefinition": BucketRate(1.0, 1),
    # ECS Managed Daemons: ECS documents no rate of their own; its read rate assumed, a bucket per action.
    "ListDaemonTaskDefinitions": BucketRate(20.0, 50),
    "DescribeDaemonTaskDefinition": BucketRate(20.0, 50),
    # AWS Config publishes no rate for its queries: assumed (docs/sweep-config.md#rates).
    "SelectResourceConfig": BucketRate(2.0, 5),
    "SelectAggregateResourceConfig": BucketRate(2.0, 5),
}

# inject(operation, request body) -> None to go on, or (status, error type, message) to answer with.
Injector = Callable[[str, dict[str, Any]], tuple[int, str, str] | None]


class _Bucket:
    def __init__(self, rate: BucketRate) -> None:
        self.rate = rate
        self.tokens = float(rate.burst)
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(float(self.rate.burst), self.tokens + (now - self.updated) * self.rate.per_second)
            self.updated = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


class ThrottleProxy:
    """`with ThrottleProxy(moto_url) as proxy:` then point clients at `proxy.url`."""

    def __init__(
        self,
        upstream: str,
        limits: Mapping[str, BucketRate] | None = None,
        *,
        page_size: int = PAGE_SIZE,
        inject: Injector | None = None,
        throttle: bool = True,
        account_of: Callable[[str], str] | None = None,
        shared: Mapping[str, str] | None = None,
    ) -> None:
        """`shared`: operation -> the operation whose bucket it takes tokens from (ECS groups its actions:
        DeregisterTaskDefinition shares RegisterTaskDefinition's bucket, the lists share DescribeTaskDefinition's)."""
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self.page_size = page_size
        self.inject = inject
        self.throttle = throttle
        self.account_of = account_of
        self.shared = dict(shared or {})
        self.calls: dict[str, int] = {}
        self.throttles: dict[str, int] = {}
        self.throttles_by_place: dict[tuple[str, str], int] = {}  # (account, Region) -> throttled answers
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._snapshots: dict[str, list[Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> ThrottleProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                proxy._handle(self)

            def do_GET(self) -> None:
                proxy._handle(self)

            def log_message(self, *_: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.request_queue_size = 128
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="throttle-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ThrottleProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        """Full buckets, zero counters, no snapshots (between benchmark runs)."""
        with self._lock:
            self._buckets = {}
            self.calls, self.throttles, self._snapshots, self.throttles_by_place = {}, {}, {}, {}

    # -- request handling ----------------------------------------------------------------------------
    def _count(self, table: dict[str, int], operation: str) -> None:
        with self._lock:
            table[operation] = table.get(operation, 0) + 1

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        target = handler.headers.get("X-Amz-Target", "")
        prefix = next((p for p in TARGET_PREFIXES if target.startswith(p)), None)
        if prefix is None:
            self._forward(handler, body)
            return
        operation = target[len(prefix) :]
        self._count(self.calls, operation)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        if self.inject is not None:
            injected = self.inject(operation, request)
            if injected is not None:
                status, kind, message = injected
                if kind == "ThrottlingException":
                    self._count(self.throttles, operation)
                self._reply_error(handler, status, kind, message)
                return
        place = self._place(handler)
        bucket = self._bucket(place, operation)
        if self.throttle and bucket is not None and not bucket.take():
            self._count(self.throttles, operation)
            with self._lock:
                self.throttles_by_place[place] = self.throttles_by_place.get(place, 0) + 1
            self._reply_error(handler, 400, "ThrottlingException", "Rate exceeded")
            return
        if operation in LIST_KEYS:
            self._page(handler, operation, request, body)
            return
        self._forward(handler, body)

    def _place(self, handler: BaseHTTPRequestHandler) -> tuple[str, str]:
        """(account, Region) of the signed request when buckets are per account; ("", "") otherwise."""
        if self.account_of is None:
            return "", ""
        scope = _CREDENTIAL.search(handler.headers.get("Authorization", ""))
        return (self.account_of(scope[1]), scope[2]) if scope else ("", "")

    def _bucket(self, place: tuple[str, str], operation: str) -> _Bucket | None:
        operation = self.shared.get(operation, operation)
        rate = self.limits.get(operation)
        if rate is None:
            return None
        key = (*place, operation)
        with self._lock:
            if key not in self._buckets:  # full when first used, as an account's bucket is
                self._buckets[key] = _Bucket(rate)
            return self._buckets[key]

    def _page(self, handler: BaseHTTPRequestHandler, operation: str, request: dict[str, Any], body: bytes) -> None:
        key = LIST_KEYS[operation]
        token = request.pop("nextToken", None)
        size = min(int(request.pop("maxResults", None) or self.page_size), self.page_size)
        if token:
            snapshot_id, _, offset_text = str(token).partition(":")
            with self._lock:
                items = self._snapshots.get(snapshot_id)
            if items is None or not offset_text.isdigit():
                self._reply_error(handler, 400, "InvalidParameterException", "Invalid nextToken")
                return
            offset = int(offset_text)
        else:
            status, _, payload = self._upstream(handler, json.dumps(request).encode())
            if status != 200:
                self._reply(handler, status, payload)
                return
            items = list(json.loads(payload).get(key, []))
            snapshot_id, offset = str(next(self._ids)), 0
            with self._lock:
                self._snapshots[snapshot_id] = items
        page: dict[str, Any] = {key: items[offset : offset + size]}
        if offset + size < len(items):
            page["nextToken"] = f"{snapshot_id}:{offset + size}"
        self._reply(handler, 200, json.dumps(page).encode())

    def _upstream(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "content-length")}
        headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        status, headers, payload = self._upstream(handler, body)
        self._reply(handler, status, payload, headers.get("Content-Type") or headers.get("content-type"))

    def _reply_error(self, handler: BaseHTTPRequestHandler, status: int, kind: str, message: str) -> None:
        body = json.dumps({"__type": kind, "message": message}).encode()
        self._reply(handler, status, body, extra={"x-amzn-ErrorType": kind})

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type or "application/x-amz-json-1.1")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("x-amzn-RequestId", "proxy")
        for name, value in (extra or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)


def persistent_throttle(arns: set[str]) -> Injector:
    """An injector that throttles every DescribeTaskDefinition of the given revisions, forever."""

    def inject(operation: str, request: dict[str, Any]) -> tuple[int, str, str] | None:
        if operation == "DescribeTaskDefinition" and request.get("taskDefinition") in arns:
            return 400, "ThrottlingException", "Rate exceeded"
        return None

    return inject
