"""The AWS Config plan on the schedule (sweep_handler and its notice) and with --remediate, each on a fresh emulator
(they reset the server, so they live apart from tests/test_sweep_config.py's module-wide estate)."""

from __future__ import annotations

import importlib

import pytest

from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.core.config import Config, ConfigError
from ecs_remediate.core.policy import PASS
from ecs_remediate.sweep import run as sweep
from emulators.config_queries import start_recorder
from emulators.throttle_proxy import BucketRate, ThrottleProxy
from tests.test_sweep_config import FAST, PLAIN, PRIVILEGED, REGION, fail_config, post


def test_the_scheduled_sweep_says_when_config_was_not_used(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """inventory=config on the schedule: a clean sweep from Config's records sends nothing; the same sweep when Config
    refuses sends a notice of its own, with the reason (the verdicts are the describes')."""
    post(moto_server, "/moto-api/reset")
    box = Sandbox(endpoint_url=moto_server).create()
    box.register({"family": "web", "containerDefinitions": [PLAIN]})
    start_recorder(box.client("config"), box.client("s3"))
    limits = {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
    with ThrottleProxy(moto_server, limits) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("SWEEP_RATES", "describe=1000/1000,list=1000/1000,register=1000/1000,config=1000/1000")
        for name, value in box.env(MODE="report").items():
            monkeypatch.setenv(name, value)
        aws.reset_clients()
        import ecs_remediate.functions.handler as module

        handler = importlib.reload(module)
        quiet = handler.sweep_handler({"scope": "active", "inventory": "config"}, LambdaContext())
        assert quiet["counts"]["PASS"] == 1 and quiet["notified"] is False
        assert proxy.calls["SelectResourceConfig"] == 2 and "DescribeTaskDefinition" not in proxy.calls
        fail_config(moto_server, "AccessDeniedException", message="not allowed")
        loud = handler.sweep_handler({"scope": "active", "inventory": "config"}, LambdaContext())
        assert loud["counts"]["PASS"] == 1 and loud["notified"] is True
        with pytest.raises(ConfigError, match="inventory"):
            handler.sweep_handler({"scope": "latest", "inventory": "config"}, LambdaContext())
    aws.reset_clients()
    [note] = [n for n in box.inbox() if n.attributes.get("outcome") == "sweep"]
    assert "AWS Config not used" in note.subject
    [line] = note.payload["inventory"]
    assert "AccessDeniedException" in line and "1 of 1 revision(s) described" in line


def test_remediation_on_the_config_plan_and_a_rerun_that_fixes_nothing_twice(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--remediate with the Config plan: the privileged revision is described and copied as today; on the rerun the
    copy (its marker tag recorded by Config) is described and verified: not forged, nothing copied again."""
    post(moto_server, "/moto-api/reset")
    box = Sandbox(endpoint_url=moto_server).create()
    start_recorder(box.client("config"), box.client("s3"))
    source = box.register({"family": "web", "containerDefinitions": [PRIVILEGED]})["taskDefinition"]
    box.register({"family": "api", "containerDefinitions": [PLAIN]})
    limits = {op: BucketRate(10_000.0, 10_000) for op in sweep.DEFAULT_RATES}
    with ThrottleProxy(moto_server, limits, page_size=2) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        aws.reset_clients()
        config = Config.from_env(box.env())
        first = sweep.sweep([REGION], config, scope="active", remediate=True, rates=FAST, inventory=sweep.CONFIG)
        proxy.reset()
        again = sweep.sweep([REGION], config, scope="active", remediate=True, rates=FAST, inventory=sweep.CONFIG)
        calls = dict(proxy.calls)
    aws.reset_clients()
    [fixed] = [f for f in first.findings if f.remediated]
    assert fixed.task_definition_arn == source["taskDefinitionArn"] and fixed.new_task_definition_arn
    rows_again = {f.task_definition_arn: f for f in again.findings}
    copy = rows_again[fixed.new_task_definition_arn]
    assert copy.status == PASS and copy.forged is None and copy.marker == "web:1"
    assert again.remediated == 0 and "RegisterTaskDefinition" not in calls
    assert again.inventory[0].marked == 1 and again.inventory[0].from_config == 1  # api:1 from Config's record
