"""The sweep against a moto server behind the paging/throttling proxy: findings equal the ground truth
read back from the emulator, across pages, for both scopes; fail-closed under persistent throttling."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from demo.sandbox import Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.core.config import Config
from ecs_remediate.core.events import Registration
from ecs_remediate.core.policy import ERROR, EXEMPT, FAIL, PASS
from ecs_remediate.remediation.remediator import Remediator
from ecs_remediate.sweep import run as sweep
from ecs_remediate.sweep.run import Rate, RateLimiter, SweepEcs, TokenBucket, parse_rates
from emulators.throttle_proxy import BucketRate, ThrottleProxy, persistent_throttle

REGION = "us-east-1"
FAST = {op: Rate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}  # the proxy paces these tests, not us
EXEMPTIONS = "world-exemptions"
CONFIG = Config(exempt_families=("exempt-*",), exemptions_table=EXEMPTIONS)
PRIVILEGED = {"name": "app", "image": "nginx", "memory": 64, "privileged": True}
PLAIN = {"name": "app", "image": "nginx", "memory": 64}
SIDECAR = {"name": "log", "image": "fluent-bit", "memory": 32}


def reset(moto_server: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()


@dataclass
class World:
    """Task definitions registered straight into moto, and the verdicts they must get."""

    moto: str
    families: int = 0
    quirks: int = 0  # families whose newest revision is deregistered (but not all of them)
    active: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # arn -> (status, privileged)
    latest: dict[str, str] = field(default_factory=dict)  # family -> newest ACTIVE arn


def seed(moto: str, families: int = 150, multi: int = 50) -> World:
    """`families` families; the first `multi` have 3 revisions, the others 1 (150/50: 250 revisions).
    Every 7th multi-revision family has its newest revision deregistered (moto then describes the INACTIVE
    one for the family name); one family is deregistered entirely; exemptions in the registry (valid and
    expired), by family glob, and tags that claim one (never honoured)."""
    ecs = boto3.client("ecs", region_name=REGION, endpoint_url=moto)
    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto)
    dynamodb.create_table(
        TableName=EXEMPTIONS,
        KeySchema=[{"AttributeName": "target", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "target", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    world = World(moto)
    future = [{"key": "ecs-remediate:exempt-reason", "value": "needs /dev"}, {"key": "ecs-remediate:exempt-until"}]
    jobs: list[tuple[str, int, dict[str, Any]]] = []
    for i in range(families):
        family = f"exempt-agent-{i:03d}" if i % 25 == 3 else f"svc-{i:03d}"
        revisions = 3 if i < multi else 1
        for r in range(1, revisions + 1):
            privileged = (i + r) % 3 == 0
            params: dict[str, Any] = {
                "family": family,
                "containerDefinitions": [PRIVILEGED if privileged else PLAIN, SIDECAR],
            }
            if i % 10 == 4:
                until = "2999-01-01" if i % 20 == 4 else "2000-01-01"  # valid / expired exemption
                params["tags"] = [future[0], {**future[1], "value": until}]
            jobs.append((family, r, params))

    def register(job: tuple[str, int, dict[str, Any]]) -> str:
        return str(ecs.register_task_definition(**job[2])["taskDefinition"]["taskDefinitionArn"])

    # revisions of one family in order, families in parallel
    by_family: dict[str, list[tuple[str, int, dict[str, Any]]]] = {}
    for job in jobs:
        by_family.setdefault(job[0], []).append(job)
    with ThreadPoolExecutor(8) as pool:
        arns = dict(zip(by_family, pool.map(lambda js: [register(j) for j in js], by_family.values()), strict=True))
    deregistered: set[str] = set()
    for n, family in enumerate(list(by_family)[:multi]):
        if n % 7 == 0:
            deregistered.add(arns[family][-1])
    world.quirks = len(deregistered)
    gone = [register(("gone", r, {"family": "gone", "containerDefinitions": [PRIVILEGED]})) for r in (1, 2)]
    deregistered.update(gone)
    for arn in deregistered:
        ecs.deregister_task_definition(taskDefinition=arn)
    for family, family_jobs in by_family.items():
        for arn, (_, _, params) in zip(arns[family], family_jobs, strict=True):
            if arn in deregistered:
                continue
            privileged = [c["name"] for c in params["containerDefinitions"] if c.get("privileged")]
            tags = {t["key"]: t.get("value") for t in params.get("tags", [])}
            registry = tags.get("ecs-remediate:exempt-until") == "2999-01-01"  # an approver exempts these
            if registry:  # a valid registry item (the tags on these revisions count for nothing)
                until = (date.today() + timedelta(days=30)).isoformat()
                item = {"target": arn, "reason": "needs /dev", "until": until, "approver": "arn:aws:iam::1:role/A"}
                dynamodb.put_item(TableName=EXEMPTIONS, Item={k: {"S": v} for k, v in item.items()})
            if not privileged:
                status = PASS
            elif family.startswith("exempt-") or registry:
                status = EXEMPT
            else:
                status = FAIL
            world.active[arn] = (status, privileged)
            world.latest[family] = arn
    world.families = len(by_family) + 1
    return world


@pytest.fixture(scope="module")
def world(moto_server: str) -> World:
    reset(moto_server)
    return seed(moto_server)


@pytest.fixture
def proxy(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThrottleProxy]:
    """The paging proxy (100-item pages, generous limits) as every client's endpoint."""
    limits = {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
    with ThrottleProxy(moto_server, limits) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.url)
        aws.reset_clients()
        yield running
    aws.reset_clients()


def run(scope: str, **kwargs: Any) -> sweep.SweepReport:
    kwargs.setdefault("rates", FAST)
    kwargs.setdefault("max_attempts", 2)
    kwargs.setdefault("concurrency", 8)
    return sweep.sweep([REGION], kwargs.pop("config", CONFIG), scope=scope, **kwargs)


def verdicts(report: sweep.SweepReport) -> dict[str, tuple[str, list[str]]]:
    return {f.task_definition_arn: (f.status, f.privileged_containers) for f in report.findings}


def test_active_scope_equals_ground_truth_across_pages(world: World, proxy: ThrottleProxy) -> None:
    report = run(sweep.ACTIVE)
    assert verdicts(report) == world.active
    assert len(world.active) > 200  # more than two pages
    assert proxy.calls["ListTaskDefinitions"] == 3  # 100 + 100 + the rest
    assert proxy.calls["DescribeTaskDefinition"] == len(world.active)
    assert report.counts()[ERROR] == 0
    # only the newest ACTIVE revision of a family would be copied; older privileged ones say why not
    for finding in report.findings:
        newest = finding.task_definition_arn == world.latest[finding.family]
        if finding.status == FAIL:
            assert finding.action == "reported" if newest else finding.action.startswith("superseded: ")
    assert report.open == sum(1 for status, _ in world.active.values() if status == FAIL)


def test_latest_scope_describes_about_one_revision_per_family(world: World, proxy: ThrottleProxy) -> None:
    report = run(sweep.LATEST)
    assert verdicts(report) == {arn: world.active[arn] for arn in world.latest.values()}
    assert proxy.calls["ListTaskDefinitionFamilies"] == 2  # 151 families: two pages
    # one describe per family, plus the fallback where moto answers the family with an INACTIVE revision
    # (families whose newest is deregistered: list their ACTIVE revisions, describe the newest; "gone" has none)
    assert world.quirks == 8
    assert proxy.calls["DescribeTaskDefinition"] == world.families + world.quirks
    assert proxy.calls["ListTaskDefinitions"] == world.quirks + 1
    assert not any("gone" in f.task_definition_arn for f in report.findings)


def test_latest_active_falls_back_when_moto_describes_an_inactive_revision(world: World, proxy: ThrottleProxy) -> None:
    ecs = SweepEcs(sweep.ecs_client(REGION))
    family = "svc-000"  # its newest revision (3) is deregistered
    assert ecs.describe(family).arn.endswith(":2") and ecs.describe(family).status == "ACTIVE"
    assert (
        boto3.client("ecs", region_name=REGION).describe_task_definition(taskDefinition=family)["taskDefinition"][
            "status"
        ]
        == "INACTIVE"
    )  # the quirk this works around
    assert ecs.latest_active("gone") is None
    assert ecs.latest_active("no-such-family") is None
    assert ecs.latest_active("svc") is None  # a prefix of many families is not a family


def test_persistent_throttling_gives_error_rows_never_pass(world: World, moto_server: str, monkeypatch: Any) -> None:
    throttled = sorted(world.active)[:3]
    families = sorted(world.latest)[:2]
    limits = {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
    with ThrottleProxy(moto_server, limits, inject=persistent_throttle({*throttled, *families})) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        active = run(sweep.ACTIVE)
        latest = run(sweep.LATEST)
    rows = {f.task_definition_arn: f for f in active.findings}
    for arn in throttled:
        assert rows[arn].status == ERROR and "ThrottlingException" in (rows[arn].error or "")
        assert rows[arn].privileged_containers == []
    assert {arn: v for arn, v in verdicts(active).items() if arn not in throttled} == {
        arn: v for arn, v in world.active.items() if arn not in throttled
    }
    assert active.counts()[ERROR] == 3 and active.open >= 3
    errors = [f for f in latest.findings if f.status == ERROR]
    assert sorted(f.family for f in errors) == families
    # the row names the family (its revision is unknown) under the account's ARN prefix
    assert all(f.task_definition_arn.endswith(f"task-definition/{f.family}") for f in errors)
    assert "2 ERROR" in latest.summary()
    assert proxy.throttles["DescribeTaskDefinition"] == 2 * (3 + 2)  # max_attempts=2 each
    assert latest.stats.throttles == {"DescribeTaskDefinition": 4}


def test_failed_listing_is_an_error_row(world: World, moto_server: str, monkeypatch: Any) -> None:
    def fail_second_page(operation: str, request: dict[str, Any]) -> tuple[int, str, str] | None:
        if operation == "ListTaskDefinitions" and request.get("nextToken"):
            return 400, "AccessDeniedException", "not authorized"
        return None

    limits = {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
    with ThrottleProxy(moto_server, limits, inject=fail_second_page) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        report = run(sweep.ACTIVE)
    assert len(report.findings) == 101
    [error] = [f for f in report.findings if f.status == ERROR]
    assert "ListTaskDefinitions failed" in (error.error or "") and "AccessDenied" in (error.error or "")
    assert report.open >= 1


def test_client_rate_limit_matches_the_account_bucket_without_throttles(
    world: World, moto_server: str, monkeypatch: Any
) -> None:
    """At the emulated rate (50/s, burst 20; the client keeps 10 in reserve) no call is throttled and the
    sweep lasts about the floor the rate sets."""
    limits = {op: BucketRate(50.0, 20) for op in sweep.DEFAULT_RATES}
    with ThrottleProxy(moto_server, limits) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        started = time.monotonic()
        report = run(sweep.LATEST, rates={op: Rate(50.0, 10) for op in sweep.DEFAULT_RATES}, max_attempts=1)
        elapsed = time.monotonic() - started
    describes = proxy.calls["DescribeTaskDefinition"]
    floor = (describes - 20) / 50
    assert proxy.throttles == {}
    assert report.counts()[ERROR] == 0
    assert floor * 0.95 <= elapsed <= floor * 1.5 + 1.0
    assert report.stats.calls["DescribeTaskDefinition"] == describes


def test_a_slow_start_at_the_endpoint_does_not_make_the_client_overrun_the_account_bucket(
    world: World, moto_server: str, monkeypatch: Any
) -> None:
    """The account's describe bucket spends a token when a request reaches it. Here every describe that arrives in
    the first 0.5 s is held until then (a slow first connection, a cold endpoint): a client that refilled its burst
    while its first calls were on their way would be 50 tokens ahead (at 100 per second) with a reserve of 1.
    Counting the calls in flight against the burst, nothing is throttled."""
    held: list[float] = []
    lock = threading.Lock()

    def slow_start(operation: str, _: dict[str, Any]) -> None:
        if operation == "DescribeTaskDefinition":
            with lock:
                held.append(held[0] if held else time.monotonic())
                release = held[0] + 0.5
            time.sleep(max(0.0, release - time.monotonic()))
        return None

    limits = {
        **{op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES},
        "DescribeTaskDefinition": BucketRate(100.0, 10),
    }
    with ThrottleProxy(moto_server, limits, inject=slow_start) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        rates = {**FAST, "DescribeTaskDefinition": Rate(100.0, 9)}
        report = run(sweep.ACTIVE, rates=rates, max_attempts=1, concurrency=16)
    assert proxy.throttles == {}
    assert report.stats.throttles == {}
    assert verdicts(report) == world.active
    assert len(held) == proxy.calls["DescribeTaskDefinition"] == len(world.active)


def test_adaptive_retries_recover_from_throttling(world: World, moto_server: str, monkeypatch: Any) -> None:
    """A client that overestimates the account's rate is throttled, retries, and still judges every revision."""
    limits = {
        **{op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES},
        "DescribeTaskDefinition": BucketRate(60.0, 5),
    }
    with ThrottleProxy(moto_server, limits) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        report = run(sweep.LATEST, max_attempts=8)
    assert proxy.throttles.get("DescribeTaskDefinition", 0) > 0
    assert report.stats.throttles == proxy.throttles
    assert verdicts(report) == {arn: world.active[arn] for arn in world.latest.values()}


# -- remediation through the function's path ---------------------------------------------------------


@pytest.fixture
def small(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A fresh emulator with the idempotency table and topic, clients through a paging proxy."""
    reset(moto_server)
    box = Sandbox(endpoint_url=moto_server).create()
    limits = {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
    with ThrottleProxy(moto_server, limits, page_size=2) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        aws.reset_clients()
        yield box
    aws.reset_clients()


def register(box: Sandbox, family: str, *containers: dict[str, Any]) -> str:
    return str(
        box.register({"family": family, "containerDefinitions": list(containers)})["taskDefinition"][
            "taskDefinitionArn"
        ]
    )


def test_remediate_active_scope_copies_only_the_newest_revision(small: Sandbox) -> None:
    old = register(small, "web", PRIVILEGED)
    new = register(small, "web", PRIVILEGED, SIDECAR)
    register(small, "api", PLAIN)
    config = Config.from_env(small.env())
    report = run(sweep.ACTIVE, remediate=True, config=config)
    rows = {f.task_definition_arn: f for f in report.findings}
    assert rows[old].status == FAIL and rows[old].action.startswith("superseded: the latest ACTIVE revision is :2")
    assert rows[new].action == "remediated" and rows[new].new_task_definition_arn
    copy = small.describe(rows[new].new_task_definition_arn)
    assert copy["taskDefinition"]["revision"] == 3
    assert [c.get("privileged") for c in copy["taskDefinition"]["containerDefinitions"]] == [False, None]
    assert {t["key"]: t["value"] for t in copy["tags"]}["ecs-remediate:source-revision"] == "web:2"
    assert report.remediated == 1 and report.open == 1  # web:1 stays FAIL until it is retired
    [note] = small.inbox()
    assert note.attributes["outcome"] == "remediated"


def test_remediate_latest_revision_behind_a_deregistered_one(small: Sandbox) -> None:
    """moto describes `web` as the deregistered :2; the sweep and the Remediator's guard both see :1."""
    first = register(small, "web", PRIVILEGED)
    second = register(small, "web", PLAIN)
    small.client("ecs").deregister_task_definition(taskDefinition=second)
    report = run(sweep.LATEST, remediate=True, config=Config.from_env(small.env()))
    [row] = report.findings
    assert (row.task_definition_arn, row.action) == (first, "remediated")
    assert row.new_task_definition_arn and row.new_task_definition_arn.endswith(":3")
    again = run(sweep.LATEST, remediate=True, config=Config.from_env(small.env()))
    assert [(f.status, f.task_definition_arn) for f in again.findings] == [(PASS, row.new_task_definition_arn)]
    assert len(small.active_revisions("web")) == 2


def test_revision_in_progress_in_the_function_is_error_not_pass(small: Sandbox) -> None:
    arn = register(small, "web", PRIVILEGED)
    config = Config.from_env(small.env())
    # the "function": its describe blocks until released, holding the idempotency record IN_PROGRESS
    function_client = boto3.client("ecs", region_name=REGION)
    entered, release = threading.Event(), threading.Event()

    def hold(**_: Any) -> None:
        entered.set()
        release.wait(10)

    # held inside the write: the idempotency record is IN_PROGRESS while RegisterTaskDefinition waits
    function_client.meta.events.register("before-send.ecs.RegisterTaskDefinition", hold)
    persistence = DynamoDBPersistenceLayer(table_name=small.table_name, boto3_client=small.client("dynamodb"))
    function = Remediator(config, aws.Ecs(function_client), None, persistence)
    with ThreadPoolExecutor(1) as pool:
        handled = pool.submit(function.process, Registration(task_definition_arn=arn))
        assert entered.wait(10)
        report = run(sweep.LATEST, remediate=True, config=config)
        release.set()
        assert handled.result().outcome == "remediated"
    [row] = report.findings
    assert row.status == ERROR and "in progress elsewhere" in (row.error or "")
    assert report.open == 1
    assert len(small.active_revisions("web")) == 2  # one copy, the function's


def test_remediation_failure_is_fail_with_the_error(small: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    register(small, "web", PRIVILEGED)

    def make_client(region: str | None) -> Any:
        client = sweep.ecs_client(region, max_attempts=1)
        body = json.dumps({"__type": "AccessDeniedException", "message": "no iam:PassRole"}).encode()
        from botocore.awsrequest import AWSResponse
        from test_handler import _Raw

        client.meta.events.register_first(
            "before-send.ecs.RegisterTaskDefinition", lambda request, **_: AWSResponse(request.url, 400, {}, _Raw(body))
        )
        return client

    report = run(sweep.LATEST, remediate=True, config=Config.from_env(small.env()), make_client=make_client)
    [row] = report.findings
    assert (row.status, row.action) == (FAIL, "failed")
    assert row.error and row.error.startswith("AccessDeniedException: RegisterTaskDefinition was denied")
    # AWS's message is withheld: it can echo the request (adapters/aws_errors.py)
    assert "no iam:PassRole" not in row.error
    assert report.open == 1
    assert small.inbox()[0].attributes["outcome"] == "failed"


# -- pieces ----------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_token_bucket_bursts_then_paces() -> None:
    clock = FakeClock()
    bucket = TokenBucket(Rate(20.0, 50), clock, clock.sleep)
    waits = []
    for _ in range(70):
        waits.append(bucket.acquire())
        bucket.release()  # answered at once
    assert waits[:50] == [0.0] * 50
    assert all(w == pytest.approx(0.05) for w in waits[50:])
    assert clock.now == pytest.approx(20 / 20)  # 20 calls past the burst at 20/s


def test_token_bucket_counts_calls_in_flight_against_the_burst() -> None:
    """The account's bucket spends a token when a request reaches it: time that passes while the calls are still on
    their way is not refill the client may spend on top of them."""
    clock = FakeClock()
    bucket = TokenBucket(Rate(20.0, 10), clock, clock.sleep)
    assert [bucket.acquire() for _ in range(9)] == [0.0] * 9
    clock.now += 2.0  # 2 s with all 9 on their way: 40 tokens' worth, had the refill ignored them
    assert bucket.in_flight == 9
    bucket.release()
    assert bucket.acquire() == 0.0  # the burst's last token
    assert bucket.acquire() == pytest.approx(0.05)  # then the sustained rate: nothing was refilled meanwhile
    for _ in range(bucket.in_flight):
        bucket.release()
    clock.now += 10.0
    assert [bucket.acquire() for _ in range(10)] == [0.0] * 10  # answered and idle: the burst is back


def test_token_bucket_waits_for_an_answer_when_the_burst_is_in_flight() -> None:
    """As many calls in flight as the burst: the next one waits until one of them is answered."""
    bucket = TokenBucket(Rate(1_000.0, 2))
    bucket.acquire()
    bucket.acquire()
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (bucket.acquire(), done.set()))
    waiter.start()
    assert not done.wait(0.3)  # still waiting: both calls are in flight
    bucket.release()
    waiter.join(timeout=5)
    assert done.is_set()
    assert bucket.in_flight == 2


def test_token_bucket_takes_a_call_in_flight_too_long_as_lost() -> None:
    """A call whose answer never reached `release` does not hold a token for ever."""
    clock = FakeClock()
    bucket = TokenBucket(Rate(1.0, 1), clock, clock.sleep)
    bucket.acquire()
    clock.now += TokenBucket.LOST_AFTER + 1  # longer than botocore lets an attempt connect and read
    bucket.acquire()
    assert bucket.in_flight == 1


def test_rate_limiter_shares_a_bucket_within_an_alias_group() -> None:
    """A daemon task definition's describes spend the same bucket as a task definition's (ECS documents no bucket of
    their own): the daemon phase cannot start a fresh burst on a bucket the task definitions just spent."""
    limiter = RateLimiter()
    describe = limiter.buckets["DescribeTaskDefinition"]
    assert describe is limiter.buckets["DescribeDaemonTaskDefinition"] is limiter.buckets["ListTagsForResource"]
    assert limiter.buckets["ListTaskDefinitions"] is limiter.buckets["ListDaemonTaskDefinitions"]
    assert limiter.buckets["RegisterTaskDefinition"] is limiter.buckets["RegisterDaemonTaskDefinition"]
    assert describe is not limiter.buckets["ListTaskDefinitions"]
    assert describe is not limiter.buckets["SelectResourceConfig"]
    own = RateLimiter(parse_rates(["DescribeDaemonTaskDefinition=5/10"]))  # a rate of its own: a bucket of its own
    assert own.buckets["DescribeDaemonTaskDefinition"] is not own.buckets["DescribeTaskDefinition"]
    assert own.buckets["DescribeTaskDefinition"] is own.buckets["ListTagsForResource"]
    for _ in range(49):
        describe.acquire()
        describe.release()
    assert limiter.buckets["DescribeDaemonTaskDefinition"].acquire() > 0  # the burst is spent for both kinds


def test_rate_limiter_releases_every_attempt(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answered, throttled or never answered: no attempt stays counted in flight."""
    from test_handler import throttle_first

    limiter = RateLimiter(FAST)
    client = limiter.attach(sweep.ecs_client(REGION, max_attempts=2))
    throttle_first(client, "ListTaskDefinitionFamilies", 1)
    assert list(SweepEcs(client).families()) == []
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    unreachable = limiter.attach(sweep.ecs_client(REGION, max_attempts=2))
    with pytest.raises(aws.BotoCoreError):
        unreachable.describe_task_definition(taskDefinition="nope:1")
    assert limiter.stats.calls == {"ListTaskDefinitionFamilies": 2, "DescribeTaskDefinition": 2}
    assert {op: bucket.in_flight for op, bucket in limiter.buckets.items() if bucket.in_flight} == {}


def test_token_bucket_slows_down_on_throttling_and_recovers() -> None:
    clock = FakeClock()
    bucket = TokenBucket(Rate(20.0, 50), clock, clock.sleep)
    bucket.throttled()
    bucket.throttled()  # the same burst of answers: counted once
    assert bucket.per_second == pytest.approx(14.0)
    assert bucket.acquire() == pytest.approx(1 / 14)  # the bucket is empty after a throttle
    clock.now += 1.0
    bucket.throttled()
    assert bucket.per_second == pytest.approx(9.8)
    for _ in range(100):
        bucket.succeeded()
    assert bucket.per_second == 20.0


def test_token_bucket_is_exact_across_threads() -> None:
    bucket = TokenBucket(Rate(200.0, 5))
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: (bucket.acquire(), bucket.release()), range(105)))
    assert 0.45 <= time.monotonic() - started <= 0.9  # (105 - 5) / 200


def test_parse_rates() -> None:
    rates = parse_rates(["describe=10", "list=5/7,register=0.5/2"])
    assert rates["DescribeTaskDefinition"] == Rate(10.0, 49)
    assert rates["ListTaskDefinitions"] == rates["ListTaskDefinitionFamilies"] == Rate(5.0, 7)
    assert rates["RegisterTaskDefinition"] == Rate(0.5, 2)
    assert parse_rates([""]) == sweep.DEFAULT_RATES
    for bad in ("describe", "describe=fast", "nope=1", "describe=0", "describe=1/0"):
        with pytest.raises(sweep.SweepError):
            parse_rates([bad])


def test_rate_limiter_counts_calls_and_throttles(moto_endpoint: str) -> None:
    limiter = RateLimiter(FAST)
    client = limiter.attach(sweep.ecs_client(REGION, max_attempts=2))
    from test_handler import throttle_first

    throttle_first(client, "ListTaskDefinitionFamilies", 1)
    assert list(SweepEcs(client).families()) == []
    assert limiter.stats.calls == {"ListTaskDefinitionFamilies": 2}
    assert limiter.stats.throttles == {"ListTaskDefinitionFamilies": 1}
