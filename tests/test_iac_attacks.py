"""Issue 15, attacks: the policed developer (RegisterTaskDefinition and tag-on-create, own assumed-role credentials)
dresses a privileged registration up as IaC, with CloudFormation and Copilot tags (ECS refuses `aws:` tags from
callers; moto accepts them, so the worst case is tested), and a user agent that claims CloudFormation, Terraform or
the CDK. Attribution is a hint for the notice: nothing is skipped, exempted or left unnotified, and repeating the
registration only makes the notice louder. Every assertion reads the emulator's state or the inbox back."""

from __future__ import annotations

import io
import json
from types import ModuleType
from typing import Any

import pytest
from test_handler import invoke
from test_iac_sources import CDK_CLI_AGENT, TERRAFORM_AGENT, cfn_tags, email

from demo.sandbox import ACCOUNT, Sandbox
from ecs_remediate.cli.main import main
from ecs_remediate.core.taskdef import privileged_containers

ATTACKER = f"arn:aws:sts::{ACCOUNT}:assumed-role/Dev/mallory"
SECRET = "sk_live_9f8e7d6c5b4a-TOPSECRET"
FORGED_TAGS = [
    *cfn_tags("TrustedTaskDefinition"),
    {"key": "copilot-application", "value": "platform"},
    {"key": "copilot-service", "value": "security-agent"},
]
FAST = ["--rate", "describe=1000/1000,list=1000/1000,register=1000/1000", "--max-attempts", "2", "-q"]


def miner(family: str = "miner") -> dict[str, Any]:
    container = {"name": "x", "image": "attacker/miner", "memory": 64, "privileged": True}
    return {"family": family, "containerDefinitions": [container], "tags": FORGED_TAGS}


@pytest.fixture
def attacker(sandbox: Sandbox) -> Sandbox:
    return sandbox.as_principal("Dev", "mallory")


@pytest.mark.parametrize(
    "user_agent",
    ["cloudformation.amazonaws.com", TERRAFORM_AGENT, CDK_CLI_AGENT, f"{TERRAFORM_AGENT} {SECRET}\n<script>x</script>"],
    ids=["claims-cloudformation", "claims-terraform", "claims-cdk", "hostile-agent"],
)
def test_forged_iac_tags_and_user_agent_gain_no_skip_no_exemption_no_silence(
    sandbox: Sandbox, attacker: Sandbox, handler: ModuleType, user_agent: str
) -> None:
    params = miner()
    response = attacker.register(params)
    forged = sandbox.event_for(params, response, user_arn=ATTACKER)
    forged["detail"]["userAgent"] = user_agent  # invokedBy is CloudTrail's own: the caller cannot set it

    assert invoke(handler, forged)["outcome"] == "remediated"

    revisions = [sandbox.describe(arn)["taskDefinition"] for arn in sandbox.active_revisions("miner")]
    assert [bool(privileged_containers(r)) for r in revisions] == [True, False]  # copied, not skipped
    [note] = sandbox.inbox()  # notified, not suppressed
    assert note.payload["outcome"] == "remediated" and note.payload["exemption"] is None
    assert note.payload["registeredBy"] == ATTACKER
    text = email(note)
    assert f"Registered by:   {ATTACKER} (CloudTrail)" in text  # the principal is AWS's record, not the claim
    assert "(a hint from tags, CloudTrail and the user agent" in text
    # Only the product token is recognised (the raw userAgent stays where it was: the payload's `registration`).
    assert SECRET not in json.dumps(note.payload["attribution"]) and SECRET not in json.dumps(note.payload["repeats"])
    assert SECRET not in text and "<script>" not in text


def test_repeating_a_forged_registration_only_escalates(
    sandbox: Sandbox, attacker: Sandbox, handler: ModuleType
) -> None:
    for _ in range(4):
        params = miner()
        event = sandbox.event_for(params, attacker.register(params), user_arn=ATTACKER)
        event["detail"]["userAgent"] = "cloudformation.amazonaws.com"
        invoke(handler, event)
    revisions = [sandbox.describe(arn)["taskDefinition"] for arn in sandbox.active_revisions("miner")]
    assert [bool(privileged_containers(r)) for r in revisions] == [True, False] * 4  # every one copied
    notes = sandbox.inbox()
    assert [n.payload["severity"] for n in notes] == ["MEDIUM", "MEDIUM", "HIGH", "HIGH"]  # louder, never quiet
    assert all(n.payload["outcome"] == "remediated" for n in notes)


def test_the_sweep_fixes_a_forged_iac_revision_like_any_other(
    sandbox: Sandbox, attacker: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = attacker.register(miner())["taskDefinition"]["taskDefinitionArn"]
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    stdout, stderr = io.StringIO(), io.StringIO()
    assert main(["scan", "--remediate", "--output", "json", *FAST], stdout, stderr) == 0, stderr.getvalue()
    [row] = [r for r in json.loads(stdout.getvalue()) if r["taskDefinitionArn"] == arn]
    assert (row["status"], row["action"]) == ("FAIL", "remediated")
    assert row["source"].startswith("Copilot platform/security-agent")  # named as claimed, fixed all the same
    [note] = sandbox.inbox()
    assert note.payload["outcome"] == "remediated"
