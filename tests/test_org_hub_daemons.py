"""The hub function on members' daemon events, against an emulated organization: moto server (multi-account through
moto's STS) with the ECS daemon operations answered by the project's daemon emulator (conftest's `moto_server`).

Events are built as the hub's daemon rule delivers them: the member's CloudTrail event with its own envelope
(`account` and `region` of the member), delivered only when the synthesized member forwarding rule's pattern matches
it (LocalStack's rule engine; the hub's rule has the same pattern: tests/test_infra_org_daemons.py). Every assertion
reads state back from the emulator (each account's and Region's daemon task definitions), the hub's inbox queue, or
the requests actually sent (org_support.RequestLog).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from daemon_support import cluster_with_provider
from org_support import HUB, MEMBER_ROLE, RequestLog, leave_hub, load_hub
from strategies import error_response
from synth_cache import synthesized_app
from test_infra_org import ORG_CONTEXT, of_type, stack_set

from app import hub_of
from demo.daemon_sandbox import call_event, deployment_event, next_deployment
from demo.org_sandbox import Organization
from demo.sandbox import LambdaContext, Sandbox
from ecs_remediate.organization import hub_daemons
from ecs_remediate.remediation.provenance import is_trusted_principal
from emulators.eventbridge import matches

REGIONS = ["us-east-1", "eu-west-1"]


@pytest.fixture(scope="module")
def patterns(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The synthesized member template's daemon forwarding rules (as the StackSet inlines it), daemon rollout on."""
    app = synthesized_app({**ORG_CONTEXT, "daemonRollout": "true"})
    hub = hub_of(app)
    template = app.synth().get_stack_by_name(hub.stack_name).template
    member = json.loads(stack_set(template)["TemplateBody"])
    found = {}
    for prefix in ("ForwardPrivilegedDaemonRule", "ForwardDaemonDeploymentOutcomeRule"):
        (rule,) = [r for rid, r in of_type(member, "AWS::Events::Rule").items() if rid.startswith(prefix)]
        found[prefix] = rule["Properties"]["EventPattern"]
    return found


@pytest.fixture(scope="module")
def pattern(patterns: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return patterns["ForwardPrivilegedDaemonRule"]


@pytest.fixture
def org(sandbox: Sandbox) -> Organization:
    return Organization(endpoint_url=sandbox.endpoint_url).create(["payments-prod", "analytics-dev", "sandbox-3"])


@pytest.fixture
def hub(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    module = load_hub(sandbox, monkeypatch)
    yield module
    leave_hub(module)


def agent(family: str = "agent", privileged: bool = True) -> dict[str, Any]:
    return {
        "family": family,
        "containerDefinitions": [
            {"name": "sensor", "image": "public.ecr.aws/x/sensor:7", "privileged": privileged},
            {"name": "shipper", "image": "public.ecr.aws/x/shipper:2"},
        ],
        "tags": [{"key": "team", "value": "secops"}],
    }


def register(org: Organization, account: str, region: str, params: dict[str, Any]) -> str:
    ecs = org.client("ecs", account, region)
    return str(ecs.register_daemon_task_definition(**params)["daemonTaskDefinitionArn"])


def member_call(
    account: str, region: str, name: str, params: dict[str, Any], response: dict[str, Any] | None
) -> dict[str, Any]:
    """The member's CloudTrail event for a daemon call, with the envelope EventBridge gives it in that member."""
    event = call_event(
        Sandbox(region=region), name, params, response, user_arn=f"arn:aws:sts::{account}:assumed-role/Dev/alice"
    )
    event["account"], event["region"] = account, region
    event["detail"]["recipientAccountId"] = account
    event["detail"]["userIdentity"]["accountId"] = account
    return event


def registration(account: str, region: str, params: dict[str, Any], arn: str) -> dict[str, Any]:
    return member_call(account, region, "RegisterDaemonTaskDefinition", params, {"daemonTaskDefinitionArn": arn})


def deliver(hub: ModuleType, pattern: dict[str, Any], event: dict[str, Any]) -> dict[str, Any] | None:
    """What EventBridge does with the event: invoke the function only when the rule matches."""
    if not matches(pattern, event):
        return None
    result: dict[str, Any] = hub.lambda_handler(event, LambdaContext())
    return result


def state(org: Organization) -> dict[tuple[str, str], list[str]]:
    """Every (account, Region) of the organization, the hub included, with every daemon task definition it holds."""
    found = {}
    for account in [HUB, *org.accounts]:
        for region in REGIONS:
            ecs = org.client("ecs", account, region) if account != HUB else org.hub_client("ecs", region)
            listed = ecs.list_daemon_task_definitions(status="ALL")
            found[(account, region)] = sorted(str(s["arn"]) for s in listed["daemonTaskDefinitions"])
    return found


def only_notice(sandbox: Sandbox) -> Any:
    notes = sandbox.inbox()
    assert len(notes) == 1, [n.subject for n in notes]
    return notes[0]


def test_privileged_daemon_registration_in_a_member_is_fixed_there_and_nowhere_else(
    org: Organization, hub: ModuleType, sandbox: Sandbox, pattern: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    account, region, other = org.accounts[1], "eu-west-1", org.accounts[0]
    source = register(org, account, region, agent())
    assert source == f"arn:aws:ecs:{region}:{account}:daemon-task-definition/agent:1"
    compliant = agent("api", privileged=False)
    compliant_arn = register(org, other, "us-east-1", compliant)
    assert deliver(hub, pattern, registration(other, "us-east-1", compliant, compliant_arn)) is None
    requests = RequestLog(monkeypatch)

    result = deliver(hub, pattern, registration(account, region, agent(), source))
    requests.stop()
    assert result is not None and result["outcome"] == "remediated", result
    assert result["resource_type"] == "daemon task definition"
    assert (result["account"], result["region"]) == (account, region)
    fixed = f"arn:aws:ecs:{region}:{account}:daemon-task-definition/agent:2"
    assert result["new_task_definition_arn"] == fixed

    expected = {(account, region): [source, fixed], (other, "us-east-1"): [compliant_arn]}
    for where, arns in state(org).items():
        assert arns == sorted(expected.get(where, [])), where  # exactly one copy there, none anywhere else
    ecs = org.client("ecs", account, region)
    copy = ecs.describe_daemon_task_definition(daemonTaskDefinition=fixed)["daemonTaskDefinition"]
    assert [c.get("privileged", False) for c in copy["containerDefinitions"]] == [False, False]
    registered_by = f"arn:aws:sts::{account}:assumed-role/{MEMBER_ROLE}/ecs-remediate"
    assert copy["registeredBy"] == registered_by
    assert {t["key"]: t["value"] for t in ecs.list_tags_for_resource(resourceArn=fixed)["tags"]}["team"] == "secops"

    note = only_notice(sandbox)
    assert note.subject.startswith(f"[ECS.4] {account}/{region} daemon task definition agent:1 -> :2 privileged")
    assert note.payload["resourceType"] == "daemon task definition" and note.payload["copyVerified"] is True
    assert (note.payload["account"], note.payload["accountName"], note.payload["region"]) == (
        account,
        "analytics-dev",
        region,
    )
    assert note.attributes["account"] == account and note.attributes["region"] == region
    requests.assert_each_account_used_only_its_own_credentials()
    assert {requests.account_of(r.key) for r in requests.of("ecs")} == {account}

    # Delivered again (at least once): no second copy, no second notice.
    assert deliver(hub, pattern, registration(account, region, agent(), source)) is not None
    assert state(org)[(account, region)] == sorted([source, fixed]) and sandbox.inbox() == []

    # That account's DaemonRemediator trusts its member role as the stack's registrant, and only there.
    runtime = hub.hub_runtime()
    here = hub_daemons.remediator(runtime, account, region).config.trusted_principals
    assert here == (f"arn:aws:iam::{account}:role/{MEMBER_ROLE}",)
    assert is_trusted_principal(registered_by, here)
    elsewhere = hub_daemons.remediator(runtime, other, region).config.trusted_principals
    assert not is_trusted_principal(registered_by, elsewhere)


def test_update_daemon_naming_a_privileged_revision_is_checked_in_the_member(
    org: Organization, hub: ModuleType, sandbox: Sandbox, pattern: dict[str, Any]
) -> None:
    """UpdateDaemon carries no container definitions: every one is delivered, and the hub describes the revision it
    names in the sending member (its first registration was never delivered: CloudTrail is best effort)."""
    account = org.accounts[2]
    source = register(org, account, "us-east-1", agent("collector"))
    daemon = f"arn:aws:ecs:us-east-1:{account}:daemon/agents/collector"
    params = {"daemonArn": daemon, "daemonTaskDefinitionArn": source, "capacityProviderArns": []}
    result = deliver(hub, pattern, member_call(account, "us-east-1", "UpdateDaemon", params, None))
    assert result is not None and result["outcome"] == "remediated" and result["account"] == account
    assert state(org)[(account, "us-east-1")] == sorted([source, source[:-1] + "2"])
    assert only_notice(sandbox).payload["account"] == account


# --- attacks: a member trying to make the hub act in another account or Region ---


def test_registration_event_naming_another_members_daemon_task_definition_is_refused(
    org: Organization, hub: ModuleType, sandbox: Sandbox, pattern: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    attacker, victim = org.accounts[0], org.accounts[1]
    victims = register(org, victim, "us-east-1", agent())
    before = state(org)
    requests = RequestLog(monkeypatch)
    event = registration(attacker, "us-east-1", agent(), victims)  # the attacker's account sends it

    result = deliver(hub, pattern, event)
    assert result is not None and result["refused"] is True and result["outcome"] == "skipped"
    assert result["reason"] == (
        f"foreign account: the daemon task definition is in {victim}, not the sending account {attacker}"
    )
    assert deliver(hub, pattern, event) is not None  # delivered again: refused again, notified once
    requests.stop()
    assert state(org) == before  # nothing written anywhere
    assert requests.of("ecs", "events", "scheduler") == []  # not even a describe, in any account
    assert [r for r in requests.of("sts") if r.operation == "Query"] == []  # no AssumeRole at all
    note = only_notice(sandbox)
    assert note.attributes["outcome"] == "failed" and note.payload["errorCode"] == "Refused"
    assert (note.payload["account"], note.payload["accountName"], note.payload["region"]) == (
        attacker,
        "payments-prod",
        "us-east-1",
    )
    assert note.payload["taskDefinitionArn"] == victims and note.payload["nextCommands"] == []
    assert note.subject.startswith(f"[ECS.4] {attacker}/us-east-1 daemon task definition agent:1 remediation FAILED")


def test_update_daemon_naming_another_members_daemon_is_refused(
    org: Organization, hub: ModuleType, sandbox: Sandbox, pattern: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    attacker, victim = org.accounts[2], org.accounts[1]
    victims = register(org, victim, "eu-west-1", agent())
    before = state(org)
    requests = RequestLog(monkeypatch)
    params = {"daemonArn": f"arn:aws:ecs:eu-west-1:{victim}:daemon/agents/sensor", "capacityProviderArns": []}
    event = member_call(attacker, "eu-west-1", "UpdateDaemon", params, None)

    result = deliver(hub, pattern, event)
    requests.stop()
    assert result is not None and result["refused"] is True
    assert result["reason"] == f"foreign account: the daemon is in {victim}, not the sending account {attacker}"
    assert state(org) == before and victims in before[(victim, "eu-west-1")]
    assert requests.of("ecs") == []
    note = only_notice(sandbox)
    assert note.payload["errorCode"] == "Refused" and note.payload["account"] == attacker
    assert note.payload["resourceType"] == "daemon task definition" and note.attributes["family"] == "-"


def test_envelope_of_another_account_or_region_than_the_call_is_refused(
    org: Organization, hub: ModuleType, sandbox: Sandbox, pattern: dict[str, Any]
) -> None:
    first, second = org.accounts[0], org.accounts[1]
    source = register(org, first, "eu-west-1", agent())
    before = state(org)
    wrong_account = registration(first, "eu-west-1", agent(), source)
    wrong_account["account"] = second  # the record is the first member's; the envelope says the second sent it
    result = deliver(hub, pattern, wrong_account)
    assert result is not None and result["refused"] is True
    assert f"not the sending account {second}" in result["reason"]
    assert only_notice(sandbox).payload["account"] == second

    wrong_region = registration(first, "us-east-1", agent(), source)  # sent from us-east-1, names eu-west-1
    result = deliver(hub, pattern, wrong_region)
    assert result is not None and result["reason"] == (
        "foreign Region: the daemon task definition is in eu-west-1, not the sending Region us-east-1"
    )
    note = only_notice(sandbox)
    assert (note.payload["account"], note.payload["region"]) == (first, "us-east-1")

    for sender in (None, "", "12345678901", f"arn:aws:iam::{first}:root"):
        forged = registration(first, "eu-west-1", agent(), source)
        if sender is None:
            del forged["account"]
        else:
            forged["account"] = sender
        result = deliver(hub, pattern, forged)
        assert result is not None and result["refused"] is True, sender  # never the ARN's account as a fallback
        assert only_notice(sandbox).payload["errorCode"] == "Refused"
    assert state(org) == before


def _deny(account: str) -> Any:
    message = f"User: arn:aws:sts::{HUB}:assumed-role/hub/fn is not authorized to perform: sts:AssumeRole on "
    message += f"resource: arn:aws:iam::{account}:role/{MEMBER_ROLE}"  # what STS says when the role does not exist

    def handler(request: Any, **_: Any) -> Any:
        if f"%3A{account}%3Arole" in str(request.body):
            return error_response(request, 403, "AccessDenied", message, protocol="query")
        return None

    return handler


def test_member_role_missing_gives_a_daemon_failure_notice_and_no_write(
    org: Organization, hub: ModuleType, sandbox: Sandbox, pattern: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    account, healthy = org.accounts[0], org.accounts[2]
    hub.hub_runtime().members.sts.meta.events.register_first(
        "before-send.sts.AssumeRole", _deny(account), unique_id="deny"
    )
    source = register(org, account, "us-east-1", agent())
    before = state(org)
    requests = RequestLog(monkeypatch)

    result = deliver(hub, pattern, registration(account, "us-east-1", agent(), source))  # returns: no retry
    requests.stop()
    assert result is not None and result["outcome"] == "failed" and result["resource_type"] == "daemon task definition"
    assert (result["account"], result["region"], result["task_definition_arn"]) == (account, "us-east-1", source)
    assert "cannot be assumed (AccessDenied)" in result["reason"]
    assert state(org) == before
    assert requests.of("ecs") == []
    note = only_notice(sandbox)
    assert note.payload["errorCode"] == "MemberRoleUnavailable" and note.payload["resourceType"] == (
        "daemon task definition"
    )
    assert (note.payload["account"], note.payload["accountName"], note.payload["region"]) == (
        account,
        "payments-prod",
        "us-east-1",
    )
    assert note.subject.startswith(f"[ECS.4] {account}/us-east-1 daemon task definition agent:1 remediation FAILED")

    # Another account is not affected.
    other = register(org, healthy, "us-east-1", agent())
    delivered = deliver(hub, pattern, registration(healthy, "us-east-1", agent(), other))
    assert delivered is not None and delivered["outcome"] == "remediated"


def test_daemon_rollout_through_the_hub_and_its_rollback_reported_from_the_member_s_outcome_event(
    org: Organization,
    sandbox: Sandbox,
    patterns: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
) -> None:
    """CreateDaemon on a privileged revision in a member: the hub copies it there and moves the daemon onto the copy
    through the member role; ECS rolls back; the member's forwarded outcome event gives one HIGH notice naming the
    account. The same deployment's event sent by another member is refused."""
    module = load_hub(sandbox, monkeypatch, DAEMON_ROLLOUT="true")
    try:
        account, attacker = org.accounts[1], org.accounts[0]
        ecs = org.client("ecs", account, "us-east-1")
        source = register(org, account, "us-east-1", agent("sensor"))
        cluster, provider = cluster_with_provider(ecs)
        params = {
            "daemonName": "sensor",
            "clusterArn": cluster,
            "daemonTaskDefinitionArn": source,
            "capacityProviderArns": [provider],
        }
        created = ecs.create_daemon(**params)
        daemon = str(created["daemonArn"])
        next_deployment(moto_endpoint, daemon, "ROLLBACK_SUCCESSFUL")  # the de-privileged agent fails to start
        event = member_call(account, "us-east-1", "CreateDaemon", params, created)
        result = deliver(module, patterns["ForwardPrivilegedDaemonRule"], event)
        assert result is not None and result["outcome"] == "remediated" and result["account"] == account
        note = only_notice(sandbox)
        [moved] = note.payload["daemonsUpdated"]
        assert moved["daemonArn"] == daemon and note.payload["account"] == account

        outcome = deployment_event(moved["deploymentArn"], daemon, "DAEMON_DEPLOYMENT_ROLLBACK_SUCCESSFUL")
        outcome["account"] = attacker  # another member forwards the victim's deployment: refused
        refused = deliver(module, patterns["ForwardDaemonDeploymentOutcomeRule"], outcome)
        assert refused is not None and refused["refused"] is True
        assert refused["reason"].startswith(f"foreign account: the deployment is in {account}")
        assert only_notice(sandbox).payload["account"] == attacker

        outcome["account"] = account
        followup = deliver(module, patterns["ForwardDaemonDeploymentOutcomeRule"], outcome)
        assert followup is not None and followup["deployment"]["status"] == "ROLLBACK_SUCCESSFUL"
        rolled_back = only_notice(sandbox)
        assert rolled_back.payload["severity"] == "HIGH" and "privileged again" in rolled_back.subject
        assert (rolled_back.payload["account"], rolled_back.payload["accountName"]) == (account, "analytics-dev")
        assert rolled_back.subject.startswith(f"[ECS.4] {account}/us-east-1 daemon agents/sensor")
        assert deliver(module, patterns["ForwardDaemonDeploymentOutcomeRule"], outcome) is not None
        assert sandbox.inbox() == []  # one notice per deployment and status
    finally:
        leave_hub(module)
