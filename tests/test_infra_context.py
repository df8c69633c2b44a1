"""Context validated at synth: a key that is neither ecs-remediate's nor the CDK's fails naming it and the nearest
known key (infra.settings.check_context_keys, KNOWN_KEYS); a stack that would notify nobody says so (a warning on the
stack and a line on stderr). Through build_app, and through app.py as the CDK CLI runs it (CDK_CONTEXT_JSON)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from app import ROOT, SKIP_BUNDLING, build_app, cdk_json_context, hub_of, stack_of
from infra.org_settings import OrgSettings, organization_selected
from infra.settings import KNOWN_KEYS, NO_RECIPIENTS_WARNING, ContextError, StackSettings
from infra.sweep_schedule import SweepSettings

ORG_CONTEXT = {
    "organization": "true",
    "organizationId": "o-abcdefghij",
    "targetOus": "ou-ab12-11111111",
    "regions": "us-east-1,eu-west-1",
}
EMAIL = {"notificationEmails": "secops@example.com"}


def run_app(context: dict[str, Any], outdir: Path) -> subprocess.CompletedProcess[str]:
    """app.py as `cdk synth` runs it: cdk.json's context and the -c values in CDK_CONTEXT_JSON."""
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({**cdk_json_context(), **SKIP_BUNDLING, **context}),
        "CDK_OUTDIR": str(outdir),
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py")], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )


# --- unknown keys ---


def test_the_issues_two_typos_fail_synth_naming_each_and_the_key_meant(tmp_path: Path) -> None:
    """`make deploy CONTEXT='-c mdoe=report -c notificationEmail=secops@example.com'` synthesized a stack in
    remediate mode that emailed nobody; now the app exits 2 with one line naming both, and writes no template."""
    result = run_app({"mdoe": "report", "notificationEmail": "secops@example.com"}, tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "ecs-remediate: invalid CDK context: "
        "mdoe: not a context key of ecs-remediate (did you mean mode?); "
        "notificationEmail: not a context key of ecs-remediate (did you mean notificationEmails?)\n"
    )
    assert not list(tmp_path.glob("*.template.json"))


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("Mode", "mode"),  # case
        ("sweepschedule", "sweepSchedule"),
        ("rollot", "rollout"),  # a letter missing
        ("retires", "retire"),  # one too many
        ("exemptionApprover", "exemptionApprovers"),  # singular
        ("target_ous", "targetOus"),  # another spelling convention
        ("regoins", "regions"),  # transposed, an organization key
    ],
)
def test_a_near_miss_fails_naming_the_key_meant(typo: str, meant: str, tmp_path: Path) -> None:
    with pytest.raises(ContextError) as error:
        build_app({**SKIP_BUNDLING, **EMAIL, typo: "true"}, outdir=str(tmp_path))
    assert str(error.value) == f"{typo}: not a context key of ecs-remediate (did you mean {meant}?)"
    assert not list(tmp_path.glob("*.template.json"))


@pytest.mark.parametrize("key", ["colour", "orgId", "x"])
def test_an_unknown_key_with_no_near_one_fails_pointing_at_the_docs(key: str, tmp_path: Path) -> None:
    with pytest.raises(ContextError) as error:
        build_app({**SKIP_BUNDLING, **EMAIL, key: "1"}, outdir=str(tmp_path))
    assert str(error.value) == f"{key}: not a context key of ecs-remediate (the keys are in docs/configuration.md)"


def test_an_unknown_key_fails_the_organization_synth_too(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match=r"^guardrails: not a context key of ecs-remediate \(did you mean guardrail"):
        build_app({**SKIP_BUNDLING, **ORG_CONTEXT, **EMAIL, "guardrails": "attach"}, outdir=str(tmp_path))


def test_the_cdks_own_keys_pass(tmp_path: Path) -> None:
    """cdk.json's feature flags (layered in by build_app), what the CDK CLI passes and writes to cdk.context.json."""
    cdk_keys = {
        "aws:cdk:enable-path-metadata": True,
        "aws:cdk:version-reporting": True,
        "@aws-cdk/core:failSynthOnValidationErrors": False,
        "@aws-cdk-containers/ecs-service-extensions:enableDefaultLogDriver": True,
        "availability-zones:account=123456789012:region=us-east-1": ["us-east-1a"],
        "acknowledged-issue-numbers": [34892],
        "cli-telemetry": False,
    }
    app = build_app({**SKIP_BUNDLING, **EMAIL, **cdk_keys}, outdir=str(tmp_path))
    assert set(cdk_json_context()) <= set(app.node.get_all_context())
    assert stack_of(app).settings.notification_emails == ("secops@example.com",)


def test_known_keys_are_exactly_the_keys_the_settings_read() -> None:
    """KNOWN_KEYS (the list docs are checked against) cannot name a key nobody reads, nor miss one that is read."""
    asked: list[str] = []

    def get(key: str) -> Any:
        asked.append(key)
        return {**ORG_CONTEXT, "tagPrefix": "ecs-remediate"}.get(key)

    StackSettings.from_context(get)
    SweepSettings.from_context(get)
    organization_selected(get)
    OrgSettings.from_context(get, tag_prefix="ecs-remediate")
    assert set(asked) == set(KNOWN_KEYS)
    assert len(KNOWN_KEYS) == len(set(KNOWN_KEYS))


# --- nobody notified ---


@pytest.mark.parametrize("organization", [False, True], ids=["single-account", "hub"])
def test_a_stack_without_emails_warns_that_nobody_will_be_notified(organization: bool, tmp_path: Path) -> None:
    context = {**SKIP_BUNDLING, **(ORG_CONTEXT if organization else {})}
    stack = (hub_of if organization else stack_of)(build_app(context, outdir=str(tmp_path / "none")))
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("notificationEmails is empty"))
    assert [w.entry.data for w in warnings] == [f"{NO_RECIPIENTS_WARNING} [ack: ecs-remediate:noNotificationEmails]"]

    notified = (hub_of if organization else stack_of)(build_app({**context, **EMAIL}, outdir=str(tmp_path / "one")))
    assert Annotations.from_stack(notified).find_warning("*", Match.string_like_regexp("notificationEmails")) == []


@pytest.mark.slow  # app.py in a subprocess twice, as the CDK CLI runs it
def test_synth_without_emails_prints_that_nobody_will_be_notified(tmp_path: Path) -> None:
    """The app's synth prints the stack's warnings (cdk.json's annotationsInValidationReport), as `make synth` shows."""
    result = run_app({"sweepSchedule": "off"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"WARNING {NO_RECIPIENTS_WARNING} (Annotation)\n   EcsRemediate aws-cdk-lib.Stack\n" in result.stderr
    assert (tmp_path / "EcsRemediate.template.json").exists()
    assert run_app({"sweepSchedule": "off", **EMAIL}, tmp_path / "notified").stderr == ""
