"""`ecs-remediate fix --check` on Terraform plans (`terraform show -json`): addresses, containers, the fix.

The plan fixture is written from Terraform's documented JSON output format and the AWS provider's schemas
(aws_ecs_task_definition: JSON-encoded container_definitions; aws_ecs_daemon_task_definition: repeatable
container_definition blocks); see tests/fixtures/terraform/README.md.
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from strategies import FUZZ, json_values, mutated, scaled

from conftest import LOCAL_FIXTURES, ROOT
from ecs_remediate.cli import common as cli_common
from ecs_remediate.cli import main as cli
from ecs_remediate.iac import terraform_plan as terraform

SCRIPT = Path(sys.executable).parent / "ecs-remediate"
PLAN = LOCAL_FIXTURES / "terraform" / "plan_modules-count-for_each.json"

PRIVILEGED = [
    ("aws_ecs_task_definition.web", "log-router"),
    ('aws_ecs_task_definition.regional["eu-west-1"]', "collector"),
    ("module.monitoring.aws_ecs_task_definition.agent[0]", "agent"),
    ("module.monitoring.aws_ecs_task_definition.agent[1]", "agent"),
    ('module.services["worker"].aws_ecs_task_definition.this', "worker"),
    ("module.monitoring.module.sensor.aws_ecs_daemon_task_definition.sensor", "init"),
]


def plan() -> dict[str, Any]:
    return json.loads(PLAN.read_text())


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_check_lists_the_addresses_and_containers_with_the_fix() -> None:
    done = run("fix", "--check", str(PLAN))
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    privileged = [line for line in lines if "is privileged" in line]
    assert [line.split(": ", 2)[1] for line in privileged] == [address for address, _ in PRIVILEGED]
    for line, (address, container) in zip(privileged, PRIVILEGED, strict=True):
        assert line.startswith(f"{PLAN}: {address}: container {container!r} is privileged; fix: privileged = false")
    assert 'in the "log-router" entry of container_definitions' in privileged[0]
    assert 'in its container_definition block (name = "init")' in privileged[-1]
    # Unknown until apply: reported, not passed. Deleted resources and data sources are not the plan's output.
    assert [line for line in lines if "unresolved" in line] == [
        f"{PLAN}: aws_ecs_task_definition.pending: container '*': unresolved "
        "(container_definitions is known only after apply)"
    ]
    assert "legacy" not in done.stdout and "existing" not in done.stdout
    assert "6 privileged, 1 unresolved, in 8 task definition(s) of the plan" in done.stderr


def test_planned_values_and_state_give_the_same_addresses() -> None:
    without_changes = plan()
    del without_changes["resource_changes"]
    state = {"format_version": "1.0", "terraform_version": "1.9.5", "values": without_changes["planned_values"]}
    in_module_order = [PRIVILEGED[i] for i in (0, 1, 2, 3, 5, 4)]  # root first, then each module depth-first
    for document in (without_changes, state):
        report = terraform.check_plan(document)
        assert [(f.address, f.container) for f in report.privileged] == in_module_order
        # planned_values omits unknown values: the pending definition has no container_definitions at all.
        assert [(f.address, f.detail) for f in report.unresolved] == [
            ("aws_ecs_task_definition.pending", "no container_definitions in the plan")
        ]


def test_a_compliant_plan_exits_0() -> None:
    document = plan()
    for change in document["resource_changes"]:
        after = change["change"]["after"]
        if after and "container_definitions" in after:
            encoded = after["container_definitions"]
            after["container_definitions"] = encoded.replace('"privileged":true', '"privileged":false')
        for block in (after or {}).get("container_definition", []):
            block["privileged"] = False
        if change["address"] == "aws_ecs_task_definition.pending":
            change["change"]["actions"], change["change"]["after"] = ["delete"], None
    done = run("fix", "--check", "-", stdin=json.dumps(document))
    assert (done.returncode, done.stdout) == (0, ""), done.stdout
    assert "0 privileged, 0 unresolved, in 7 task definition(s)" in done.stderr


def test_a_daemon_container_known_only_after_apply_is_unresolved() -> None:
    document = plan()
    change = next(c for c in document["resource_changes"] if c["type"] == terraform.DAEMON_TASK_DEFINITION)
    change["change"]["after"]["container_definition"][1].pop("privileged")
    change["change"]["after_unknown"]["container_definition"][1]["privileged"] = True
    report = terraform.check_plan(document)
    assert [
        (f.container, f.detail) for f in report.unresolved if f.resource_type == terraform.DAEMON_TASK_DEFINITION
    ] == [("sensor", "privileged is known only after apply")]


def test_fix_without_check_refuses_a_plan() -> None:
    done = run("fix", str(PLAN))
    assert done.returncode == 2 and done.stdout == ""
    assert "a Terraform plan is not a source to fix" in done.stderr and len(done.stderr.splitlines()) == 1


def check(document: Any) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(json.dumps(document))
    try:
        code = cli.main(["fix", "--check", "-"], stdout=stdout, stderr=stderr)
    finally:
        sys.stdin = old
    return code, stdout.getvalue(), stderr.getvalue()


@settings(FUZZ, max_examples=scaled(300))
@given(document=mutated(plan(), mutations=4).map(lambda pair: pair[0]))
def test_hostile_plans_never_raise_and_never_pass_silently(document: Any) -> None:
    code, out, err = check(document)
    assert code in (cli_common.EXIT_OK, cli_common.EXIT_FINDINGS, cli_common.EXIT_USAGE), err
    if code == cli_common.EXIT_USAGE:
        assert out == "" and err.count("\n") == 1
        return
    if terraform.is_plan(document):
        report = terraform.check_plan(document)
        assert code == (cli_common.EXIT_FINDINGS if report.findings else cli_common.EXIT_OK)
        assert len(out.splitlines()) == len(report.findings)


@settings(FUZZ, max_examples=scaled(200))
@given(value=json_values)
def test_any_container_definitions_value_is_judged_without_raising(value: Any) -> None:
    document = copy.deepcopy(plan())
    web = document["resource_changes"][0]["change"]["after"]
    web["container_definitions"] = json.dumps([{"name": "x", "privileged": value}])
    report = terraform.check_plan(document)
    judged = [f for f in report.findings if f.address == "aws_ecs_task_definition.web"]
    if value is True:
        assert [f.status for f in judged] == [terraform.PRIVILEGED]
    elif value is None or value is False:
        assert judged == []
    else:
        assert [f.status for f in judged] == [terraform.UNRESOLVED]
