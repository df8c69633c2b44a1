"""Pure: the router (ecs_remediate.core.routing), the one classification of an event at the function's entry, for the
single-account function (OWN context) and the organization hub (MEMBER context). Every kind, every malformed shape
with its one reason (the reason the function gave such an event before it was routed), and the hostile inputs a
policed developer or a member account's admin can write: claims in `detail`, ARNs of other accounts and Regions,
truncated records, unknown detail-types."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conftest import SYNTHETIC_EVENT as SYNTHETIC
from conftest import event_variant as variant
from ecs_remediate.core.events import Skip, Unidentified, parse_registration_event
from ecs_remediate.core.routing import (
    DAEMON,
    DAEMON_DEPLOYMENT,
    DAEMON_KINDS,
    DAEMON_TASK_DEFINITION,
    EXEMPTION_TAGS,
    MEMBER,
    OWN,
    TASK_DEFINITION,
    UNROUTABLE,
    Route,
    route,
)

ACCOUNT, OTHER, REGION = "123456789012", "210987654321", "us-east-1"
TD = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/priv-app:1"
DTD = f"arn:aws:ecs:{REGION}:{ACCOUNT}:daemon-task-definition/agent:3"
DAEMON_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:daemon/agents/agent"
DEPLOYMENT = f"arn:aws:ecs:{REGION}:{ACCOUNT}:daemon-deployment/agents/agent/0EYSiB0qap8xf0N76FsbE"


def own(event: Any) -> Route:
    return route(event, member=False, account=ACCOUNT, region=REGION)


def member(event: Any) -> Route:
    return route(event, member=True, account="999999999999", region="eu-central-1")  # the hub's own: not used


def call(name: str, request: dict[str, Any] | None = None, response: dict[str, Any] | None = None) -> dict[str, Any]:
    """A CloudTrail call event as EventBridge delivers it (the synthetic registration with another call in it)."""
    event = copy.deepcopy(SYNTHETIC)
    event["detail"].update(eventName=name, requestParameters=request, responseElements=response)
    return event


def deployment(arn: str = DEPLOYMENT, name: str = "DAEMON_DEPLOYMENT_SUCCESSFUL") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "d1",
        "detail-type": "ECS Daemon Deployment State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "region": REGION,
        "detail": {"eventName": name, "daemonArn": DAEMON_ARN, "daemonDeploymentArn": arn},
    }


KINDS = [
    ("task definition", copy.deepcopy(SYNTHETIC), TASK_DEFINITION, TD, (TD,)),
    (
        "daemon task definition",
        call("RegisterDaemonTaskDefinition", {"family": "agent"}, {"daemonTaskDefinitionArn": DTD}),
        DAEMON_TASK_DEFINITION,
        DTD,
        (DTD,),
    ),
    (
        "create daemon",
        call("CreateDaemon", {"daemonTaskDefinitionArn": DTD, "daemonName": "agent"}, {"daemonArn": DAEMON_ARN}),
        DAEMON,
        DTD,
        (DAEMON_ARN, DTD),
    ),
    ("update daemon", call("UpdateDaemon", {"daemonArn": DAEMON_ARN}), DAEMON, "", (DAEMON_ARN,)),
    ("deployment outcome", deployment(), DAEMON_DEPLOYMENT, DEPLOYMENT, (DEPLOYMENT, DAEMON_ARN)),
    ("exemption tags", call("TagResource", {"resourceArn": TD, "tags": []}), EXEMPTION_TAGS, TD, (TD,)),
]


@pytest.mark.parametrize(("event", "kind", "arn", "pointers"), [k[1:] for k in KINDS], ids=[k[0] for k in KINDS])
def test_every_kind_is_told_with_what_it_is_about_and_where(
    event: dict[str, Any], kind: str, arn: str, pointers: tuple[str, ...]
) -> None:
    before = copy.deepcopy(event)
    routed = own(event)
    assert (routed.kind, routed.arn, routed.pointers, routed.reason) == (kind, arn, pointers, "")
    assert (routed.context, routed.account, routed.region) == (OWN, ACCOUNT, REGION)
    assert member(event).envelope_valid and not routed.envelope_valid  # the hub's to check; OWN acts in its own
    assert routed.event_name == event["detail"]["eventName"]
    assert (routed.kind in DAEMON_KINDS) == kind.startswith("daemon")
    assert event == before  # routing reads, never writes
    with pytest.raises(AttributeError):  # immutable: no path can re-route it
        routed.kind = TASK_DEFINITION  # type: ignore[misc]


def test_the_hub_routes_the_same_kinds_in_the_sending_account_but_records_no_exemption_tags() -> None:
    for _, event, kind, arn, _pointers in KINDS:
        sent = {**copy.deepcopy(event), "account": OTHER, "region": "eu-west-1"}
        routed = member(sent)
        assert (routed.context, routed.account, routed.region) == (MEMBER, OTHER, "eu-west-1")
        if kind == EXEMPTION_TAGS:  # only the single-account function records approvals: as before, a skip
            assert routed.kind == UNROUTABLE
            assert routed.reason == "not a RegisterTaskDefinition call ('ecs.amazonaws.com' 'TagResource')"
        else:
            assert (routed.kind, routed.arn) == (kind, arn)


MALFORMED = [
    ("list", [SYNTHETIC], "malformed event: expected a JSON object, got list"),
    ("string", "RegisterTaskDefinition", "malformed event: expected a JSON object, got str"),
    ("null", None, "malformed event: expected a JSON object, got NoneType"),
    ("empty", {}, "not an ECS API call event (source=None, detail-type=None)"),
    ("another service", variant(source="aws.s3"), "not an ECS API call event (source='aws.s3'"),
    ("no detail-type", variant(**{"detail-type": KeyError}), "not an ECS API call event (source='aws.ecs', detail-"),
    ("unknown detail-type", variant(**{"detail-type": "ECS Task State Change"}), "not an ECS API call event"),
    ("detail a list", variant(detail=[SYNTHETIC["detail"]]), "malformed event: 'detail' is not an object"),
    ("detail a string", variant(detail="{}"), "malformed event: 'detail' is not an object"),
    ("no eventName", variant(detail__eventName=KeyError), "not a RegisterTaskDefinition call ('ecs.amazonaws.com' No"),
    ("unknown call", variant(detail__eventName="DeregisterTaskDefinition"), "not a RegisterTaskDefinition call"),
    ("name in lower case", variant(detail__eventName="registertaskdefinition"), "not a RegisterTaskDefinition call"),
    ("name not text", variant(detail__eventName=["RegisterTaskDefinition"]), "not a RegisterTaskDefinition call"),
    ("name padded", variant(detail__eventName="RegisterTaskDefinition "), "not a RegisterTaskDefinition call"),
]


@pytest.mark.parametrize(("event", "reason"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
@pytest.mark.parametrize("router", [own, member], ids=["own", "member"])
def test_what_cannot_be_routed_says_why_in_one_line_as_the_function_did(event: Any, reason: str, router: Any) -> None:
    routed = router(event)
    assert routed.kind == UNROUTABLE and routed.reason.startswith(reason), routed.reason
    assert "\n" not in routed.reason and len(routed.reason) < 250
    # What the function logged, counted and returned for such an event before it was routed: the same reason.
    skipped = parse_registration_event(event, REGION, ACCOUNT)
    assert isinstance(skipped, Skip) and skipped.reason == routed.reason


def test_a_daemon_call_name_under_another_detail_type_is_not_a_daemon_event() -> None:
    for detail_type in ("ECS Task State Change", "AWS Service Event via CloudTrail", "ECS Daemon Deployment"):
        event = call("RegisterDaemonTaskDefinition", {}, {"daemonTaskDefinitionArn": DTD})
        event["detail-type"] = detail_type
        assert own(event).kind == UNROUTABLE and own(event).reason.startswith("not an ECS API call event")
    wrong_source = {**deployment(), "source": "aws.partner/ecs"}
    assert own(wrong_source).kind == UNROUTABLE


@pytest.mark.parametrize(
    "event",
    [
        variant(detail__responseElements=None),  # a successful call whose event names no revision
        variant(detail__responseElements={"omitted": True}),  # the response cut by CloudTrail
        variant(detail__requestParameters={"omitted": True}, detail__responseElements={"omitted": True}),
        variant(detail__requestParameters={"family": "priv-app", "omitted": True}, detail__responseElements=None),
        variant(detail__responseElements__taskDefinition={"taskDefinitionArn": ["not", "text"]}),
    ],
    ids=["response-null", "response-cut", "all-cut", "family-kept", "arn-not-text"],
)
def test_a_truncated_or_emptied_registration_is_still_a_registration_to_find(event: dict[str, Any]) -> None:
    """Privileged-looking but naming no revision: never unroutable, so its path finds it from the family, the time and
    the registrant, or says in a notice that it could not (Remediator.identify)."""
    routed = own(event)
    assert (routed.kind, routed.arn, routed.pointers) == (TASK_DEFINITION, "", ())
    assert isinstance(parse_registration_event(event, REGION, ACCOUNT), Unidentified)


def test_a_truncated_daemon_registration_is_still_a_daemon_registration() -> None:
    event = call("RegisterDaemonTaskDefinition", {"omitted": True}, {"omitted": True})
    assert (own(event).kind, own(event).arn) == (DAEMON_TASK_DEFINITION, "")
    kept = call("RegisterDaemonTaskDefinition", {"family": "agent", "omitted": True}, {"daemonTaskDefinitionArn": DTD})
    assert (own(kept).kind, own(kept).arn) == (DAEMON_TASK_DEFINITION, DTD)


def test_a_registration_of_a_malformed_or_foreign_revision_is_routed_for_its_path_to_refuse() -> None:
    """Routing decides the kind, not the verdict: a privileged-looking registration whose ARN is broken or of another
    account still goes down its path, which skips it with its reason (single account) or refuses and notifies it
    (the hub), as before."""
    for arn, reason in (
        ("arn:aws:ecs:us-east-1:123456789012:task-definition/priv-app", "malformed task definition ARN"),
        (TD.replace(ACCOUNT, OTHER), "foreign account: the revision is in 210987654321"),
        (TD.replace(REGION, "eu-west-1"), "revision is in eu-west-1"),
    ):
        event = variant(detail__responseElements__taskDefinition={"taskDefinitionArn": arn})
        assert (own(event).kind, own(event).arn, own(event).foreign) == (TASK_DEFINITION, arn, "")
        parsed = parse_registration_event(event, REGION, ACCOUNT)
        assert isinstance(parsed, Skip) and parsed.reason.startswith(reason)


# -- the hub's boundary: the sending account and Region, from the envelope only -------------------------------


def test_claims_in_detail_do_not_move_the_context() -> None:
    """A member's event whose detail claims another account (recipientAccountId, userIdentity, awsRegion) is handled
    in the account that sent it, and its revision, in that account, is not refused."""
    event = copy.deepcopy(SYNTHETIC)
    event["detail"]["recipientAccountId"] = OTHER
    event["detail"]["userIdentity"]["accountId"] = OTHER
    event["detail"]["awsRegion"] = "eu-west-1"
    routed = member(event)
    assert (routed.account, routed.region, routed.foreign) == (ACCOUNT, REGION, "")


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            variant(detail__responseElements__taskDefinition={"taskDefinitionArn": TD.replace(ACCOUNT, OTHER)}),
            f"foreign account: the revision is in {OTHER}, not the sending account {ACCOUNT}",
        ),
        (
            variant(detail__responseElements__taskDefinition={"taskDefinitionArn": TD.replace(REGION, "eu-west-1")}),
            f"foreign Region: the revision is in eu-west-1, not the sending Region {REGION}",
        ),
        (
            call("RegisterDaemonTaskDefinition", {}, {"daemonTaskDefinitionArn": DTD.replace(ACCOUNT, OTHER)}),
            f"foreign account: the daemon task definition is in {OTHER}",
        ),
        (
            call("UpdateDaemon", {"daemonArn": DAEMON_ARN, "daemonTaskDefinitionArn": DTD.replace(ACCOUNT, OTHER)}),
            f"foreign account: the daemon task definition is in {OTHER}",
        ),
        (
            call("CreateDaemon", {"daemonTaskDefinitionArn": DTD}, {"daemonArn": DAEMON_ARN.replace(ACCOUNT, OTHER)}),
            f"foreign account: the daemon is in {OTHER}",
        ),
        (deployment(DEPLOYMENT.replace(REGION, "eu-west-1")), "foreign Region: the deployment is in eu-west-1"),
        (
            variant(
                detail__responseElements__taskDefinition={
                    "taskDefinitionArn": f"arn:aws:ecs:{REGION}:{OTHER}{'9' * 500}:task-definition/x:1"
                }
            ),
            f"foreign account: the revision is in {OTHER[:12]}, not",  # the claim cut to an account's length
        ),
    ],
    ids=["revision-account", "revision-region", "daemon-td-account", "update-gives-foreign", "create-foreign-daemon",
         "deployment-region", "long-account"],
)  # fmt: skip
def test_an_arn_of_another_account_or_region_is_refused_by_the_hub(event: dict[str, Any], reason: str) -> None:
    routed = member(event)
    assert routed.kind != UNROUTABLE and routed.foreign.startswith(reason), routed.foreign
    assert len(routed.foreign) < 200
    assert own(event).foreign == ""  # the single-account function's parsers check its own account and Region


def test_a_malformed_pointer_is_left_to_the_parser_and_non_text_pointers_are_ignored() -> None:
    event = call("UpdateDaemon", {"daemonArn": "agents/agent", "daemonTaskDefinitionArn": {"arn": DTD}}, [DAEMON_ARN])
    routed = member(event)
    assert (routed.kind, routed.pointers, routed.foreign) == (DAEMON, ("agents/agent",), "")


@pytest.mark.parametrize(
    ("envelope", "valid", "where"),
    [
        ({"account": ACCOUNT, "region": REGION}, True, (ACCOUNT, REGION)),
        ({"account": "12345", "region": REGION}, False, ("12345", REGION)),
        ({"account": ACCOUNT + "0", "region": REGION}, False, (ACCOUNT, REGION)),  # 13 digits, cut to 12: not valid
        ({"account": "١٢٣٤٥٦٧٨٩٠١٢", "region": REGION}, False, ("١٢٣٤٥٦٧٨٩٠١٢", REGION)),  # digits, not ASCII ones
        ({"account": 123456789012, "region": REGION}, False, ("", REGION)),
        ({"account": ACCOUNT, "region": "US-EAST-1"}, False, (ACCOUNT, "US-EAST-1")),
        ({"account": ACCOUNT, "region": "us-" + "a" * 40 + "-1"}, False, (ACCOUNT, ("us-" + "a" * 40)[:32])),
        ({"account": ACCOUNT, "region": None}, False, (ACCOUNT, "")),
    ],
)
def test_the_envelope_is_the_context_and_only_a_well_formed_one_is_valid(
    envelope: dict[str, Any], valid: bool, where: tuple[str, str]
) -> None:
    event = {**copy.deepcopy(SYNTHETIC), **envelope}
    routed = member(event)
    assert (routed.kind, routed.envelope_valid, (routed.account, routed.region)) == (TASK_DEFINITION, valid, where)


def test_an_own_context_ignores_the_envelope_for_where_it_acts() -> None:
    """The single-account function acts in its own account and Region; a sender of another account is the parser's
    to refuse ("foreign account: the event came from ...")."""
    event = {**copy.deepcopy(SYNTHETIC), "account": OTHER}
    routed = own(event)
    assert (routed.context, routed.account, routed.region, routed.kind) == (OWN, ACCOUNT, REGION, TASK_DEFINITION)
    parsed = parse_registration_event(event, routed.region, routed.account)
    assert isinstance(parsed, Skip) and parsed.reason.startswith("foreign account: the event came from '210987654321'")
    unknown = route(event, member=False)  # a function whose own account and Region are not known
    assert (unknown.account, unknown.region) == ("", "")


def test_a_huge_event_name_is_cut_and_unroutable() -> None:
    routed = own(variant(detail__eventName="RegisterTaskDefinition" * 1000))
    assert routed.kind == UNROUTABLE and len(routed.event_name) == 64 and len(routed.reason) < 250
