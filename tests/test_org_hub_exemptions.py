"""Issue 19, class 2, in an organization: one registry in the hub, and a member account's exemption never exempts
another member's revision.

The approver reads member A's revision through A's credentials (`exempt add --describe-profile`) and writes the
hub's registry with their own; member B's administrator then registers the very same content in B (same family
name, same image digest, same command and host access). Through the real hub function (moto in this process,
member roles through moto's STS): B's revision is fixed in B with a notice naming the part that differs (other
account), A's next revision of the same content stays exempt. State is read back from each account.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws
from org_support import leave_hub, load_hub

from demo.org_sandbox import Organization
from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.cli.main import main

REGION = "us-east-1"
IMAGE = "registry.example.com/csi-node@sha256:" + "f" * 64
UNTIL = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
CSI = {
    "family": "csi-node",
    "containerDefinitions": [
        {
            "name": "node",
            "image": IMAGE,
            "memory": 128,
            "privileged": True,
            "command": ["--endpoint=unix:///csi/csi.sock"],
            "mountPoints": [{"sourceVolume": "kubelet", "containerPath": "/var/lib/kubelet"}],
        }
    ],
    "volumes": [{"name": "kubelet", "host": {"sourcePath": "/var/lib/kubelet"}}],
}


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    from ecs_remediate.adapters import aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    with mock_aws():
        yield Sandbox().create()
    aws.reset_clients()


@pytest.fixture
def org(sandbox: Sandbox) -> Organization:
    return Organization().create(["payments-prod", "analytics-dev"])


@pytest.fixture
def hub(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    module = load_hub(sandbox, monkeypatch)
    yield module
    leave_hub(module)


def profile_of(org: Organization, account: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An AWS profile with credentials of `account` (what an approver would use to read a member's revision)."""
    issued = org.hub_client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/SecurityAudit", RoleSessionName="approver"
    )["Credentials"]
    path = tmp_path / "credentials"
    path.write_text(
        f"[member]\naws_access_key_id = {issued['AccessKeyId']}\naws_secret_access_key = {issued['SecretAccessKey']}\n"
        f"aws_session_token = {issued['SessionToken']}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    return "member"


def exempt(*args: str) -> tuple[int, str]:
    stderr = io.StringIO()
    code = main(["exempt", "add", *args, "--reason", "CSI node plugin", "--until", UNTIL], io.StringIO(), stderr)
    return code, stderr.getvalue()


def deliver(hub: ModuleType, org: Organization, account: str) -> dict[str, Any]:
    response = org.register(account, REGION, CSI)
    user = f"arn:aws:sts::{account}:assumed-role/OrganizationAccountAccessRole/admin"
    result: dict[str, Any] = hub.lambda_handler(
        org.event_for(account, REGION, CSI, response, user_arn=user), LambdaContext()
    )
    return result


def registry_targets(sandbox: Sandbox) -> set[str]:
    items = sandbox.client("dynamodb").scan(TableName=sandbox.exemptions_table)["Items"]
    return {item["target"]["S"] for item in items}


def test_a_member_s_exemption_never_exempts_the_same_content_in_another_member(
    org: Organization,
    hub: ModuleType,
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    approved_in, attacker = org.accounts
    source = org.register(approved_in, REGION, CSI)["taskDefinition"]["taskDefinitionArn"]

    # the hub's own credentials cannot read the member's revision: refused, nothing written
    code, err = exempt(source)
    assert code == 2 and f"cannot describe {source}" in err and "--describe-profile" in err
    assert registry_targets(sandbox) == set()
    code, err = exempt(source, "--describe-profile", profile_of(org, approved_in, tmp_path, monkeypatch))
    assert code == 0, err
    assert f"scope:{approved_in}:task-definition/csi-node" in registry_targets(sandbox)

    # member B's administrator registers the very same content in B
    result = deliver(hub, org, attacker)
    assert result["outcome"] == "remediated" and result["account"] == attacker
    assert org.task_definitions(attacker, REGION) == [
        f"arn:aws:ecs:{REGION}:{attacker}:task-definition/csi-node:1",
        f"arn:aws:ecs:{REGION}:{attacker}:task-definition/csi-node:2",
    ]
    copy = org.client("ecs", attacker, REGION).describe_task_definition(
        taskDefinition=result["new_task_definition_arn"]
    )
    assert copy["taskDefinition"]["containerDefinitions"][0]["privileged"] is False
    [note] = sandbox.inbox()
    assert note.payload["account"] == attacker and note.payload["exemptionMismatch"] == "other account"
    assert note.payload["exemption"].startswith("other account: image sha256:ffffffffffff... is exempt in another")
    assert approved_in not in note.payload["exemption"]  # one member's notice names no other member

    # the approved member's next revision of the same content stays exempt, with no copy
    result = deliver(hub, org, approved_in)
    assert result["outcome"] == "exempt" and result["account"] == approved_in
    # the next revision's ARN from the family's (a moto account id may itself hold ":1")
    assert org.task_definitions(approved_in, REGION) == [source, source.rsplit(":", 1)[0] + ":2"]
    [note] = sandbox.inbox()
    assert note.payload["outcome"] == "exempt" and f"in account {approved_in}, as approved" in note.payload["exemption"]
