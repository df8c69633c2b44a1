"""A member's forwarding failure, end to end: the synthesized member StackSet deployed by moto's CloudFormation into an
emulated organization, a member's privileged registration forwarded by its rules as deployed (emulators/forwarding.py:
LocalStack's rule engine on the rules moto holds; the hub's bus policy judged, the failed event put in the target's
dead-letter queue as EventBridge does, since moto does neither), then the next organization sweep (the hub's
synthesized state machine executed by moto, its tasks our handlers) through the member roles.

Read back: the member's queue (SQS, as the member), the sweep's report.json in S3 and its notice from the queue
subscribed to the hub's topic, the member's revisions. The sweep judges every revision of the account and Region
anyway, so the event is "re-judged" there; once that account and Region were judged entirely (active scope, no
ERROR row) the sweep removes the queued events it covered, recorded before it began
(organization/forwarding_queue.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import test_org_sweep_sfn as sweep_sfn
from moto.sqs.models import sqs_backends
from org_support import privileged
from strategies import error_response
from test_infra_org import stack_set
from test_member_role_region import pinned_region
from test_org_sweep_sfn import REGIONS, World, revisions, summary_notes

from demo.org_sandbox import Organization
from demo.sandbox import ACCOUNT
from ecs_remediate.adapters import aws
from ecs_remediate.organization.member_accounts import MemberAccounts
from emulators.forwarding import NO_PERMISSIONS, NO_RESOURCE, forward

# The organization sweep's emulated hub and organization (tests/test_org_sweep_sfn.py), as fixtures here too.
synthesized = sweep_sfn.synthesized
world = sweep_sfn.world
QUEUE = "ecs-remediate-member-forwarding-dlq"
HUB_BUS = "EcsRemediateHub-hub"
HUB_ROLE = f"arn:aws:iam::{ACCOUNT}:role/EcsRemediateHub-OrgSweepItemRole-EXAMPLE"


def deploy(world: World, members: int, *, admitted: bool = False) -> tuple[Organization, str]:
    """The organization, the hub's bus with its synthesized policy (naming the synth's organization id, o-abcdefghij:
    not the emulated organization's, so members are refused) or one admitting this organization, and the member
    StackSet deployed to the target OU in every Region."""
    org = world.organization(members)
    events = world.sandbox.client("events")
    bus_arn = events.create_event_bus(Name=HUB_BUS)["EventBusArn"]
    organization = org.hub_client("organizations").describe_organization()["Organization"]["Id"]
    allowed = organization if admitted else "o-abcdefghij"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OrganizationPutEvents",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Resource": bus_arn,
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": allowed}},
            }
        ],
    }
    events.put_permission(EventBusName=HUB_BUS, Policy=json.dumps(policy))
    props = stack_set(world.synthesized.template)
    parameters = {
        "HubEventBusArn": bus_arn,
        "HubFunctionRoleArns": HUB_ROLE,
        "MemberRoleRegion": pinned_region(world.synthesized.template, REGIONS[0]),
    }
    cloudformation = world.sandbox.client("cloudformation")
    cloudformation.create_stack_set(
        StackSetName="EcsRemediateHub-member",
        TemplateBody=props["TemplateBody"],
        PermissionModel=props["PermissionModel"],
        AutoDeployment=props["AutoDeployment"],
        Capabilities=props["Capabilities"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    cloudformation.create_stack_instances(
        StackSetName="EcsRemediateHub-member", DeploymentTargets={"OrganizationalUnitIds": [world.ou]}, Regions=REGIONS
    )
    return org, bus_arn


def registered(org: Organization, account: str, region: str, *, minutes_ago: float = 30) -> tuple[str, dict[str, Any]]:
    """A privileged registration in the member, and its CloudTrail event as the member's default bus gets it,
    recorded `minutes_ago`."""
    params = privileged()
    response = org.register(account, region, params)
    event = org.event_for(account, region, params, response)
    when = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event["time"] = event["detail"]["eventTime"] = when
    return str(response["taskDefinition"]["taskDefinitionArn"]), event


def queued(org: Organization, account: str, region: str) -> list[dict[str, Any]]:
    """The member's forwarding dead-letter queue as the member sees it (messages left visible)."""
    sqs = org.client("sqs", account, region)
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
    ).get("Messages", [])
    return [
        {"body": json.loads(m["Body"]), **{k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}}
        for m in messages
    ]


def emails() -> list[str]:
    """The e-mail text of every notice the sweep publishes from now on (SNS's `email` member, as sent)."""
    sent: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params.get("MessageStructure") == "json":
            sent.append(str(json.loads(params["Message"])["email"]))

    aws.client("sns").meta.events.register("provide-client-params.sns.Publish", record)
    return sent


def bodies_left(account: str, region: str) -> list[str]:
    """Every message still in the member's queue, visible or in flight (moto's state)."""
    return sorted(message.body for message in sqs_backends[account][region].queues[QUEUE]._messages)


def refuse_sqs(monkeypatch: pytest.MonkeyPatch, account: str) -> None:
    """The member's queue policy denies the member role (moto does not evaluate queue policies): every SQS call of
    the member role in `account` is refused as SQS refuses it."""
    client = MemberAccounts.client

    def refuse(request: Any, **_: Any) -> Any:
        return error_response(request, 403, "AccessDenied", "denied by the queue's policy")

    def refusing(self: MemberAccounts, service: str, acct: str, region: str) -> Any:
        found = client(self, service, acct, region)
        if service == "sqs" and acct == account:
            found.meta.events.register_first("before-send.sqs", refuse, unique_id="refuse-sqs")
        return found

    monkeypatch.setattr(MemberAccounts, "client", refusing)


def place(report: dict[str, Any], account: str, region: str) -> dict[str, Any]:
    (found,) = [p for p in report["places"] if (p["account"], p["region"]) == (account, region)]
    return dict(found)


# --- the acceptance: a refused forward ends in the member's queue and the next sweep reports it ---


@pytest.mark.parametrize("failure", ["bus policy refuses", "bus missing"])
def test_a_forwarding_failure_is_dead_lettered_in_the_member_and_reported_by_the_next_sweep(
    world: World, failure: str
) -> None:
    org, _ = deploy(world, 2)
    if failure == "bus missing":
        world.sandbox.client("events").delete_event_bus(Name=HUB_BUS)
    member, other = org.accounts
    region = REGIONS[1]
    arn, event = registered(org, member, region)

    deliveries = forward(org, member, region, event)

    code = NO_PERMISSIONS if failure == "bus policy refuses" else NO_RESOURCE
    assert [(d.outcome, d.error_code) for d in deliveries] == [("dead-lettered", code)]  # one rule matched
    [message] = queued(org, member, region)
    assert message["body"] == event and message["ERROR_CODE"] == code
    assert message["RULE_ARN"].startswith(f"arn:aws:events:{region}:{member}:rule/")
    assert message["TARGET_ARN"] == f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/{HUB_BUS}"
    assert revisions(org, member, region) == [arn]  # nothing reached the hub: nothing was fixed

    world.machine("remediate")
    sent = emails()
    report = world.run("nightly-1")

    # The sweep judged the revision (re-judged: it is in the report, fixed by the member role) ...
    (row,) = [r for r in report["rows"] if r["taskDefinitionArn"] == arn]
    assert row["status"] == "FAIL" and row["action"].startswith("remediated")
    assert len(revisions(org, member, region)) == 2
    # ... reported the queued event where it was, with EventBridge's reason, and removed it from the queue.
    expected = {"status": "ok", "queued": 1, "drained": 1, "kept": 0, "reasons": {code: 1}}
    assert place(report, member, region)["forwarding"] == expected
    assert report["forwarding"] == {
        "queued": 1,
        "drained": 1,
        "unread": 0,
        "places": [{"account": member, "region": region, **expected}],
    }
    assert all(
        p["forwarding"]["queued"] == 0 for p in report["places"] if (p["account"], p["region"]) != (member, region)
    )
    assert queued(org, member, region) == [] and queued(org, other, region) == []
    (note,) = summary_notes(world.sandbox)
    assert note.payload["forwarding"]["places"] == [{"account": member, "region": region, **expected}]
    assert note.payload["forwarding"]["queued"] == 1 and note.payload["forwarding"]["drained"] == 1
    assert "1 queued; 1 re-judged by this sweep and removed" in sent[0]
    assert f"{member}  {region}  1 queued, 1 removed, 0 left ({code} 1)" in sent[0]

    # The next sweep: nothing queued any more, nothing to say about it.
    report = world.run("nightly-2")
    assert report["forwarding"] == {"queued": 0, "drained": 0, "unread": 0, "places": []}


def test_an_admitted_forward_reaches_the_hub_and_leaves_the_queue_empty(world: World) -> None:
    org, _ = deploy(world, 1, admitted=True)
    (member,) = org.accounts
    _, event = registered(org, member, REGIONS[0])
    assert [d.outcome for d in forward(org, member, REGIONS[0], event)] == ["delivered"]
    assert queued(org, member, REGIONS[0]) == []
    world.machine("report")
    sent = emails()
    report = world.run("nightly-1")
    assert report["forwarding"] == {"queued": 0, "drained": 0, "unread": 0, "places": []}
    (note,) = summary_notes(world.sandbox)
    assert "forwarding" in note.payload and "Forwarding dead-letter queues" not in sent[0]


def test_what_the_sweep_did_not_cover_stays_queued_and_is_reported_every_time(world: World) -> None:
    """Kept: an event recorded after the sweep began (less the margin), a daemon deployment outcome (no sweep replays
    it), a body that is no event (the member's own message). Removed: the covered event recorded before."""
    org, _ = deploy(world, 1)
    (member,) = org.accounts
    region = REGIONS[0]
    _, old = registered(org, member, region, minutes_ago=30)
    _, recent = registered(org, member, region, minutes_ago=1)
    for event in (old, recent):
        forward(org, member, region, event)
    sqs = org.client("sqs", member, region)
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    outcome = {"source": "aws.ecs", "detail-type": "ECS Daemon Deployment State Change", "time": old["time"]}
    for body in (json.dumps({**outcome, "detail": {"eventName": "DAEMON_DEPLOYMENT_ROLLBACK_FAILED"}}), "not an event"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    world.machine("remediate")
    sent = emails()

    report = world.run("nightly-1")

    forwarding = place(report, member, region)["forwarding"]
    assert (forwarding["queued"], forwarding["drained"], forwarding["kept"]) == (4, 1, 3)
    assert forwarding["reasons"] == {NO_PERMISSIONS: 2, "OTHER": 2}  # the member's messages carry no EventBridge code
    left = bodies_left(member, region)
    assert len(left) == 3 and json.dumps(old) not in left and json.dumps(recent) in left and "not an event" in left
    (note,) = summary_notes(world.sandbox)
    assert note.attributes["outcome"] == "open"
    assert f"{member}  {region}  4 queued, 1 removed, 3 left ({NO_PERMISSIONS} 2, OTHER 2)" in sent[0]
    # The next sweep reports them again (received ones stay hidden two minutes: counted, not received twice).
    again = place(world.run("nightly-2"), member, region)["forwarding"]
    assert (again["queued"], again["drained"]) == (3, 0)


def test_a_sweep_that_could_not_judge_everything_drains_nothing(world: World) -> None:
    """An account whose member role cannot be assumed is ERROR rows and its queue is not even read; with the latest
    scope the sweep judges one revision per family, so the queue is reported, never drained."""
    org, _ = deploy(world, 2)
    unreachable, latest = org.accounts
    for account in org.accounts:
        forward(org, account, REGIONS[0], registered(org, account, REGIONS[0])[1])
    world.machine("remediate", SWEEP_SCOPE="latest")
    world.deny({unreachable})

    report = world.run("nightly-1")

    assert "forwarding" not in place(report, unreachable, REGIONS[0])  # the item failed: nothing read
    assert place(report, latest, REGIONS[0])["forwarding"]["drained"] == 0
    assert len(queued(org, unreachable, REGIONS[0])) == 1 and len(queued(org, latest, REGIONS[0])) == 1


# --- attacks: a member's administrator owns the queue ---


@pytest.mark.parametrize("tamper", ["queue deleted", "queue policy denies the member role"])
def test_a_member_that_removes_or_locks_its_queue_is_reported_and_still_swept(
    world: World, tamper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queue is evidence the member controls: a missing or unreadable one is said in the report and the notice;
    the sweep's verdicts never depend on it (the privileged revision is still found and fixed)."""
    org, _ = deploy(world, 1)
    (member,) = org.accounts
    region = REGIONS[2]
    arn, event = registered(org, member, region)
    forward(org, member, region, event)
    sqs = org.client("sqs", member, region)
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    if tamper == "queue deleted":
        sqs.delete_queue(QueueUrl=url)
    world.machine("remediate")
    sent = emails()
    if tamper != "queue deleted":  # moto does not evaluate queue policies: refused as SQS would refuse them
        refuse_sqs(monkeypatch, member)

    report = world.run("nightly-1")

    forwarding = place(report, member, region)["forwarding"]
    assert forwarding["status"] == ("missing" if tamper == "queue deleted" else "unreadable")
    assert report["forwarding"]["unread"] == (1 if tamper == "queue deleted" else len(REGIONS))
    (row,) = [r for r in report["rows"] if r["taskDefinitionArn"] == arn]
    assert row["action"].startswith("remediated")
    (note,) = summary_notes(world.sandbox)
    assert note.attributes["outcome"] == "open" and note.payload["forwarding"]["unread"] >= 1
    assert f"{member}  {region}  queue {forwarding['status']}" in sent[0]


def test_forged_messages_are_counted_never_followed(world: World) -> None:
    """The member's administrator writes to its own queue: bodies naming another account's revision, huge or hostile
    error codes, old times. The sweep counts them, deletes only what looks covered (their own messages), never
    describes or touches what they name, and no member-written text reaches the notice."""
    org, _ = deploy(world, 2)
    member, victim = org.accounts
    region = REGIONS[0]
    victim_arn, _ = registered(org, victim, region)
    sqs = org.client("sqs", member, region)
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    forged = org.event_for(victim, region, privileged(), {"taskDefinition": {"taskDefinitionArn": victim_arn}})
    forged["time"] = forged["detail"]["eventTime"] = "2020-01-01T00:00:00Z"
    hostile = "<script>alert(1)</script>\u202e" + "x" * 300
    for code in ("NO_PERMISSIONS", hostile, "lower_case"):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(forged),
            MessageAttributes={"ERROR_CODE": {"DataType": "String", "StringValue": code}},
        )
    before = revisions(org, victim, region)
    world.machine("report")
    sent = emails()

    report = world.run("nightly-1")

    forwarding = place(report, member, region)["forwarding"]
    assert (forwarding["queued"], forwarding["drained"]) == (3, 3)
    assert forwarding["reasons"] == {"NO_PERMISSIONS": 1, "OTHER": 2}
    assert revisions(org, victim, region) == before  # report mode, and nothing done for a queued message anyway
    (note,) = summary_notes(world.sandbox)
    assert "script" not in sent[0] and "\u202e" not in sent[0] and "lower_case" not in json.dumps(note.payload)
    assert not [r for r in report["rows"] if r["account"] == member]  # the forged events' revision is not the member's
