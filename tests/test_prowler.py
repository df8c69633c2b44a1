"""Acceptance for issue 6: after `scan --scope active --remediate --rollout --retire`, the real Prowler
(`ecs_task_definitions_no_privileged_containers`, which judges every ACTIVE revision), run against the same
moto server, reports no FAIL for the remediated families; before the sweep it reports FAIL for them (so the
check can fail here). Prowler runs from its own virtualenv (`make prowler-venv`, part of `make test-all`)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from bench.sweep import PROWLER, prowler_verdicts
from demo.sandbox import Sandbox
from ecs_remediate.cli.main import main

pytestmark = pytest.mark.external  # Prowler, from .venv-prowler

FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]
FAMILIES = ("web", "solo", "clean")
TIMEOUT = 600.0


@pytest.fixture
def box(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    if not PROWLER.exists():
        pytest.fail(f"Prowler is not installed at {PROWLER}: run `make prowler-venv` (make test-all does)")
    for name in ("MODE", "TOPIC_ARN", "EXEMPTIONS_TABLE", "EXEMPT_FAMILIES", "SWEEP_RATES", "ROLLOUT", "RETIRE"):
        monkeypatch.delenv(name, raising=False)
    box = Sandbox(endpoint_url=moto_endpoint).create()
    # the stack's table, as the docs tell an operator: the scan shares idempotency (and the ledger) with the
    # function, so it fixes revisions registered a minute ago too
    monkeypatch.setenv("IDEMPOTENCY_TABLE", box.table_name)
    yield box


def seed(box: Sandbox) -> None:
    """web:1 used by an ECS service, web:2 unused, web:3 (latest) used; solo:1 used, solo:2 latest; clean:1
    compliant. Two clusters."""
    ecs = box.client("ecs")

    def register(family: str, version: str, privileged: bool = True) -> str:
        container: dict[str, Any] = {"name": "app", "image": f"nginx:{version}", "memory": 64}
        container["privileged"] = privileged
        response = box.register({"family": family, "containerDefinitions": [container]})
        return str(response["taskDefinition"]["taskDefinitionArn"])

    for cluster in ("blue", "green"):
        ecs.create_cluster(clusterName=cluster)
    web1, _, web3 = register("web", "v1"), register("web", "v2"), register("web", "v3")
    solo1, _ = register("solo", "v1"), register("solo", "v2")
    clean = register("clean", "v1", privileged=False)
    for cluster, name, arn in (
        ("blue", "web-old", web1),
        ("green", "web", web3),
        ("green", "solo-old", solo1),
        ("blue", "clean", clean),
    ):
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=arn, desiredCount=1)


def by_family(verdicts: dict[str, str]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for arn, status in verdicts.items():
        family = arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
        if family in FAMILIES:
            counts.setdefault(family, {}).setdefault(status, 0)
            counts[family][status] += 1
    return counts


def test_prowler_reports_no_fail_after_rollout_and_retire(box: Sandbox, moto_endpoint: str) -> None:
    seed(box)
    before = prowler_verdicts(moto_endpoint, TIMEOUT)
    assert not before.note, before.note
    # the control: the check sees the privileged revisions (5 FAIL) and the compliant one
    assert by_family(before.verdicts) == {"web": {"FAIL": 3}, "solo": {"FAIL": 2}, "clean": {"PASS": 1}}

    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(
        ["scan", "--scope", "active", "--remediate", "--rollout", "--retire", "--output", "json", *FAST],
        stdout,
        stderr,
    )
    assert code == 0, stderr.getvalue()
    rows = json.loads(stdout.getvalue())
    assert sum(1 for row in rows if row["status"] == "FAIL") == 5
    assert all(not row["error"] for row in rows), rows

    after = prowler_verdicts(moto_endpoint, TIMEOUT)
    assert not after.note, after.note
    counts = by_family(after.verdicts)
    assert all("FAIL" not in statuses for statuses in counts.values()), counts
    # what is ACTIVE now: web:4 (copy of :3), web:5 (copy of :1), web:6 (:4 again, the latest); solo likewise
    assert counts == {"web": {"PASS": 3}, "solo": {"PASS": 3}, "clean": {"PASS": 1}}
    print(
        f"Prowler FAIL before: {sum(s.get('FAIL', 0) for s in by_family(before.verdicts).values())}, after: 0; "
        f"Prowler runs {before.seconds:.0f} s and {after.seconds:.0f} s"
    )
