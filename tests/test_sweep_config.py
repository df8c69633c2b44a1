"""The sweep's AWS Config plan against the emulator (moto + Config's advanced query answered from moto's state),
through the paging proxy: exactly the verdicts of the describe path on the same estate, with far fewer describes;
every Config failure falls back to describes with the reason in the report; ERROR never PASS; every page of ECS's
listing and of Config's queries."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import boto3
import pytest

from ecs_remediate.adapters import aws
from ecs_remediate.core.config import Config
from ecs_remediate.core.policy import ERROR, EXEMPT, FAIL, PASS
from ecs_remediate.sweep import run as sweep
from ecs_remediate.sweep.config_queries import ConfigSource
from emulators.config_queries import start_recorder
from emulators.throttle_proxy import BucketRate, ThrottleProxy, persistent_throttle

REGION = "us-east-1"
ACCOUNT = "123456789012"
EXEMPTIONS = "config-world-exemptions"
CONFIG = Config(exempt_families=("exempt-*",), exemptions_table=EXEMPTIONS)
MARKER = CONFIG.marker_tag_key
FAST = {op: sweep.Rate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}  # the proxy paces these tests
PRIVILEGED = {"name": "app", "image": "nginx", "memory": 64, "privileged": True}
PLAIN = {"name": "app", "image": "nginx", "memory": 64, "privileged": False}
UNSET = {"name": "app", "image": "nginx", "memory": 64}  # privileged not given at all
HOST_ROOT = {
    "name": "agent",
    "image": "agent",
    "memory": 64,
    "linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}},
}
SIDECAR = {"name": "log", "image": "fluent-bit", "memory": 32}


def post(moto: str, path: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body or {}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{moto}{path}", data=data, method="POST")).read()


@dataclass
class Estate:
    moto: str
    active: dict[str, str] = field(default_factory=dict)  # ARN -> expected status
    privileged: set[str] = field(default_factory=set)  # ACTIVE privileged revisions
    forged: str = ""
    marked: set[str] = field(default_factory=set)
    forgotten: set[str] = field(default_factory=set)  # Config has no record of these
    inactive_privileged: str = ""
    host_root: str = ""


def seed(moto: str) -> Estate:
    """260 revisions in 60 families (3 pages of ECS's listing, 3 of Config's inventory at 100 a page): privileged
    (1 in 6), compliant (privileged false, or not set at all), exempt by family glob and by the registry, a compliant
    revision with a host-root capability, a forged copy marker, revisions Config has not recorded, and a
    deregistered privileged revision Config still remembers."""
    post(moto, "/moto-api/reset")
    ecs = boto3.client("ecs", region_name=REGION, endpoint_url=moto)
    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto)
    dynamodb.create_table(
        TableName=EXEMPTIONS,
        KeySchema=[{"AttributeName": "target", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "target", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    start_recorder(
        boto3.client("config", region_name=REGION, endpoint_url=moto),
        boto3.client("s3", region_name=REGION, endpoint_url=moto),
    )
    estate = Estate(moto)

    def register(family: str, *containers: dict[str, Any], tags: list[dict[str, str]] | None = None) -> str:
        params: dict[str, Any] = {"family": family, "containerDefinitions": list(containers)}
        if tags:
            params["tags"] = tags
        return str(ecs.register_task_definition(**params)["taskDefinition"]["taskDefinitionArn"])

    for n in range(250):
        family = f"exempt-{n % 10:02d}" if n % 25 == 0 else f"svc-{n % 50:02d}"
        privileged = n % 6 == 0
        arn = register(family, PRIVILEGED if privileged else (PLAIN if n % 2 else UNSET), SIDECAR)
        estate.active[arn] = (EXEMPT if family.startswith("exempt-") else FAIL) if privileged else PASS
        if privileged:
            estate.privileged.add(arn)
    registry_exempt = register("vendor-agent", PRIVILEGED)
    until = (date.today() + timedelta(days=30)).isoformat()
    item = {"target": registry_exempt, "reason": "needs /dev", "until": until, "approver": "arn:aws:iam::1:role/A"}
    dynamodb.put_item(TableName=EXEMPTIONS, Item={k: {"S": v} for k, v in item.items()})
    estate.active[registry_exempt] = EXEMPT
    estate.privileged.add(registry_exempt)
    estate.host_root = register("monitor", HOST_ROOT)
    estate.active[estate.host_root] = PASS
    # svc-06:1 is privileged (n = 6); this claims to be its fixed copy and is not (another image).
    forged = {**PLAIN, "image": "attacker/miner"}
    estate.forged = register("svc-06", forged, SIDECAR, tags=[{"key": MARKER, "value": "svc-06:1"}])
    estate.active[estate.forged] = PASS  # a verdict of PASS, and an open row: forged
    estate.marked = {estate.forged}
    for n in range(4):  # Config has not recorded these yet (it records within minutes)
        arn = register("fresh", PRIVILEGED if n == 0 else PLAIN)
        estate.active[arn] = FAIL if n == 0 else PASS
        estate.forgotten.add(arn)
        if n == 0:
            estate.privileged.add(arn)
    post(moto, "/moto-api/config-queries/forget", {"arns": sorted(estate.forgotten)})
    estate.inactive_privileged = register("gone", PRIVILEGED)
    ecs.deregister_task_definition(taskDefinition=estate.inactive_privileged)  # Config still remembers it
    return estate


@pytest.fixture(scope="module")
def estate(moto_server: str) -> Estate:
    return seed(moto_server)


@pytest.fixture
def proxy(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThrottleProxy]:
    post(estate.moto, "/moto-api/config-queries/reset")
    post(estate.moto, "/moto-api/config-queries/forget", {"arns": sorted(estate.forgotten)})
    limits = {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
    with ThrottleProxy(estate.moto, limits) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.url)
        aws.reset_clients()
        yield running
    aws.reset_clients()


def run(proxy: ThrottleProxy, inventory: str, **kwargs: Any) -> tuple[sweep.SweepReport, dict[str, int]]:
    proxy.reset()
    report = sweep.sweep([REGION], CONFIG, scope="active", rates=FAST, inventory=inventory, **kwargs)
    return report, dict(proxy.calls)


def rows(report: sweep.SweepReport) -> dict[str, tuple[Any, ...]]:
    """Everything a row says, but the free text of errors."""
    return {
        f.task_definition_arn: (
            f.status,
            tuple(f.privileged_containers),
            tuple(f.host_equivalents),
            f.action,
            f.forged is not None,
            f.expiring,
        )
        for f in report.findings
    }


def fail_config(moto: str, code: str, **extra: Any) -> None:
    post(moto, "/moto-api/config-queries/fail", {"operation": "SelectResourceConfig", "code": code, **extra})


def test_config_plan_gives_the_describe_verdicts_with_far_fewer_describes(estate: Estate, proxy: ThrottleProxy) -> None:
    described, described_calls = run(proxy, sweep.DESCRIBE)
    judged, config_calls = run(proxy, sweep.CONFIG)

    assert rows(judged) == rows(described)
    assert {arn: row[0] for arn, row in rows(judged).items()} == estate.active  # the ground truth
    assert estate.inactive_privileged not in rows(judged)  # Config remembers it; ECS's listing decides
    assert rows(judged)[estate.forged][4]  # the forged marker is found: its revision was described
    assert rows(judged)[estate.host_root][2] == ("agent: capability SYS_ADMIN",)  # judged from Config's record
    # Describes: the privileged (Config's query), the marked and those Config has no record of; nothing else.
    expected = estate.privileged | estate.marked | estate.forgotten
    assert described_calls["DescribeTaskDefinition"] == len(estate.active)
    assert config_calls["DescribeTaskDefinition"] == len(expected) < len(estate.active) / 4
    # Every page: ECS's listing (262 ACTIVE: 3 pages) and Config's inventory (263 records: 3 pages) + privileged query.
    assert config_calls["ListTaskDefinitions"] == 3
    assert config_calls["SelectResourceConfig"] == 1 + 3
    [outcome] = judged.inventory
    assert outcome.fallback is None
    assert (outcome.listed, outcome.from_config) == (len(estate.active), len(estate.active) - len(expected))
    assert outcome.privileged == len(estate.privileged - estate.forgotten)
    assert outcome.unknown == len(estate.forgotten) and outcome.marked == 1
    assert outcome.records == len(estate.active) - len(estate.forgotten) + 1  # + the INACTIVE one it remembers
    assert (
        f"{outcome.from_config} of {outcome.listed} revision(s) judged PASS from Config's records" in judged.summary()
    )
    assert described.inventory == []  # describe: Config is not asked
    assert "SelectResourceConfig" not in described_calls


@pytest.mark.parametrize(
    ("code", "extra", "reason"),
    [
        ("AccessDeniedException", {}, "AccessDeniedException"),
        ("ThrottlingException", {}, "ThrottlingException"),  # every attempt throttled
        ("InvalidExpressionException", {}, "InvalidExpressionException"),
        ("AccessDeniedException", {"afterPages": 2}, "AccessDeniedException"),  # part-way through the inventory
    ],
)
def test_a_config_failure_falls_back_to_describes_with_the_reason(
    estate: Estate, proxy: ThrottleProxy, code: str, extra: dict[str, Any], reason: str
) -> None:
    described, _ = run(proxy, sweep.DESCRIBE)
    fail_config(estate.moto, code, message="injected by the test", **extra)
    judged, calls = run(proxy, sweep.CONFIG, max_attempts=2)

    assert rows(judged) == rows(described)
    [outcome] = judged.inventory
    assert outcome.fallback is not None and reason in outcome.fallback and "AWS Config failed" in outcome.fallback
    assert reason in judged.summary()
    if extra:  # rows already judged from Config's first page stand; the rest were described
        assert 0 < outcome.from_config < outcome.listed
        assert calls["DescribeTaskDefinition"] == outcome.described
    else:
        assert outcome.from_config == 0 and calls["DescribeTaskDefinition"] == len(estate.active)
    if code == "ThrottlingException":
        assert calls["SelectResourceConfig"] == 2  # retried (max attempts), then given up


def test_no_recorder_means_config_knows_nothing_and_every_revision_is_described(
    estate: Estate, proxy: ThrottleProxy
) -> None:
    config = boto3.client("config", region_name=REGION, endpoint_url=estate.moto)
    config.stop_configuration_recorder(ConfigurationRecorderName="default")
    try:
        described, _ = run(proxy, sweep.DESCRIBE)
        judged, calls = run(proxy, sweep.AUTO)
    finally:
        config.start_configuration_recorder(ConfigurationRecorderName="default")
    assert rows(judged) == rows(described)
    [outcome] = judged.inventory
    assert outcome.fallback is not None and "Config has no record of any" in outcome.fallback
    assert calls["DescribeTaskDefinition"] == len(estate.active) and calls["SelectResourceConfig"] == 2


def test_error_never_pass_on_the_config_path(estate: Estate, moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A privileged revision (named by Config's query) and one Config has no record of, whose describes are
    throttled every time: ERROR rows, never PASS; a compliant one Config vouches for needs no describe."""
    post(moto_server, "/moto-api/config-queries/reset")
    post(moto_server, "/moto-api/config-queries/forget", {"arns": sorted(estate.forgotten)})
    privileged = sorted(estate.privileged - estate.forgotten)[0]
    unknown = sorted(estate.forgotten - estate.privileged)[0]
    limits = {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
    with ThrottleProxy(moto_server, limits, inject=persistent_throttle({privileged, unknown})) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        aws.reset_clients()
        report = sweep.sweep([REGION], CONFIG, scope="active", rates=FAST, inventory=sweep.CONFIG, max_attempts=2)
    aws.reset_clients()
    found = {f.task_definition_arn: f for f in report.findings}
    assert found[privileged].status == ERROR and found[unknown].status == ERROR
    assert "describe failed after retries" in (found[unknown].error or "")
    assert all(found[arn].status == status for arn, status in estate.active.items() if arn not in (privileged, unknown))


def test_a_privileged_revision_config_has_not_recorded_is_still_fail(estate: Estate, proxy: ThrottleProxy) -> None:
    """The developer's race: a privileged revision registered right before the sweep, before Config records it."""
    [fresh] = sorted(estate.forgotten & estate.privileged)
    judged, _ = run(proxy, sweep.CONFIG)
    assert {f.task_definition_arn: f.status for f in judged.findings}[fresh] == FAIL


def test_aggregator_path_narrows_to_the_account(estate: Estate, proxy: ThrottleProxy) -> None:
    config = boto3.client("config", region_name=REGION, endpoint_url=estate.moto)
    config.put_configuration_aggregator(
        ConfigurationAggregatorName="org",
        AccountAggregationSources=[{"AccountIds": [ACCOUNT], "AwsRegions": [REGION]}],
    )
    try:
        described, _ = run(proxy, sweep.DESCRIBE)
        source = ConfigSource("org", account=ACCOUNT)
        judged, calls = run(proxy, sweep.CONFIG, config_source=source)
        missing, _ = run(proxy, sweep.CONFIG, config_source=ConfigSource("no-such", account=ACCOUNT))
    finally:
        config.delete_configuration_aggregator(ConfigurationAggregatorName="org")
    assert rows(judged) == rows(described) == rows(missing)
    assert calls["SelectAggregateResourceConfig"] == 4 and "SelectResourceConfig" not in calls
    assert judged.inventory[0].source == "aggregator org" and judged.inventory[0].fallback is None
    assert "NoSuchConfigurationAggregatorException" in (missing.inventory[0].fallback or "")


def test_inventory_settings_are_checked() -> None:
    with pytest.raises(sweep.SweepError, match="inventory: expected one of describe, config, auto"):
        sweep.sweep([REGION], CONFIG, inventory="fast")
    with pytest.raises(sweep.SweepError, match="needs the active scope"):
        sweep.sweep([REGION], CONFIG, scope="latest", inventory=sweep.CONFIG)


def test_a_listing_that_fails_part_way_is_an_error_row_on_the_config_path_too(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    post(estate.moto, "/moto-api/config-queries/reset")
    post(estate.moto, "/moto-api/config-queries/forget", {"arns": sorted(estate.forgotten)})

    def second_page_fails(operation: str, request: dict[str, Any]) -> tuple[int, str, str] | None:
        if operation == "ListTaskDefinitions" and request.get("nextToken"):
            return 400, "AccessDeniedException", "denied"
        return None

    limits = {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
    reports = {}
    with ThrottleProxy(estate.moto, limits, inject=second_page_fails) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        aws.reset_clients()
        for inventory in (sweep.DESCRIBE, sweep.CONFIG):
            reports[inventory] = sweep.sweep([REGION], CONFIG, scope="active", rates=FAST, inventory=inventory)
    aws.reset_clients()
    assert rows(reports[sweep.CONFIG]) == rows(reports[sweep.DESCRIBE])
    errors = [f for f in reports[sweep.CONFIG].findings if f.status == ERROR]
    assert len(errors) == 1 and "ListTaskDefinitions failed, the sweep is incomplete" in (errors[0].error or "")
    assert len(reports[sweep.CONFIG].findings) == 100 + 1  # the first page's revisions, and the ERROR row
