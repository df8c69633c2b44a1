# ruff: noqa: E501 - the tables of requests read best one request per line
"""The trust boundaries of the synthesized hub and member templates, evaluated with a real IAM policy evaluator.

principalmapper's full local evaluation (identity policy, resource policy, same- and cross-account rules, the
condition operators) on the policies as synthesized, with only the template's own references filled in as
CloudFormation would (the parameter the StackSet passes, the partition, the accounts):
  * the member role's trust policy: only the hub's function role, and only while it is in the organization;
  * the hub function's AssumeRole policy: only roles of that name, only in accounts of the organization;
  * the hub bus policy: PutEvents from the organization's accounts only;
  * the forwarder role: PutEvents on the hub bus only.
moto stores these policies without enforcing them, so they are evaluated here rather than in the emulator.
"""

from __future__ import annotations

import collections
import collections.abc
import json
from typing import Any

import pytest

collections.Mapping = collections.abc.Mapping  # type: ignore[attr-defined]  # principalmapper on Python >= 3.10
collections.MutableMapping = collections.abc.MutableMapping  # type: ignore[attr-defined]

from principalmapper.common import Node, Policy  # noqa: E402
from principalmapper.querying.query_interface import local_check_authorization_full  # noqa: E402
from test_infra_org import ORG_CONTEXT, of_type, only, remediation_function, synth  # noqa: E402

HUB, MEMBER, OUTSIDER = "123456789012", "210987654321", "999988887777"
ORG, OTHER_ORG = "o-abcdefghij", "o-zyxwvutsrq"
FUNCTION_ROLE = f"arn:aws:iam::{HUB}:role/EcsRemediateHub-RemediatorFunctionRoleC2BE4706-AbCdEf"
BUS = f"arn:aws:events:us-east-1:{HUB}:event-bus/EcsRemediateHub-hub"
MEMBER_ROLE = f"arn:aws:iam::{MEMBER}:role/ecs-remediate-member"
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def resolve(value: Any, refs: dict[str, Any]) -> Any:
    """CloudFormation's Ref, Fn::GetAtt (as given) and Fn::Join, on a synthesized fragment."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return refs[value["Ref"]]
        if set(value) == {"Fn::GetAtt"}:
            return refs["/".join(value["Fn::GetAtt"])]
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return str(separator).join(str(resolve(p, refs)) for p in parts)
        return {k: resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    return value


def node(arn: str, *policies: dict[str, Any]) -> Node:
    account = arn.split(":")[4]
    attached = [Policy(f"arn:aws:iam::{account}:policy/p{i}", f"p{i}", doc) for i, doc in enumerate(policies)]
    return Node(
        arn,
        "AROAEXAMPLEID",
        attached,
        [],
        {"Version": "2012-10-17", "Statement": []},
        None,
        0,
        False,
        False,
        None,
        False,
        {},
    )


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    _, hub, member, _ = synth(ORG_CONTEXT, tmp_path_factory.mktemp("hub"))
    refs = {"AWS::Partition": "aws", "AWS::AccountId": HUB, "AWS::Region": "us-east-1"}
    bus_id, _ = only(hub, "AWS::Events::EventBus")
    refs[f"{bus_id}/Arn"] = BUS
    _, function = remediation_function(hub)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    (assume,) = [
        p["Properties"]["PolicyDocument"]
        for pid, p in of_type(hub, "AWS::IAM::Policy").items()
        if pid.startswith("MemberAccessPolicy")
    ]
    (bus_policy,) = [p["Properties"]["Statement"] for p in of_type(hub, "AWS::Events::EventBusPolicy").values()]
    assert {"Ref": role_id} in next(
        p for pid, p in of_type(hub, "AWS::IAM::Policy").items() if pid.startswith("MemberAccessPolicy")
    )["Properties"]["Roles"]
    member_refs = {
        "AWS::Partition": "aws",
        "AWS::AccountId": MEMBER,
        "AWS::Region": "us-east-1",
        "HubFunctionRoleArns": [FUNCTION_ROLE],  # what the StackSet passes: the hub's function role ARN
        "HubEventBusArn": BUS,
    }
    resources = member["Resources"]
    forwarder_policy = next(r for r in resources.values() if r["Type"] == "AWS::IAM::Policy")["Properties"][
        "PolicyDocument"
    ]
    return {
        "assume": resolve(assume, refs),
        "bus": {"Version": "2012-10-17", "Statement": [resolve(bus_policy, refs)]},
        "trust": resolve(resources["MemberRole"]["Properties"]["AssumeRolePolicyDocument"], member_refs),
        "forwarder": resolve(forwarder_policy, member_refs),
    }


# (case, principal ARN, identity policy (None: the hub function's AssumeRole policy), org of the principal, org of the role, allowed?)
ASSUME_TABLE = [
    ("the hub function role", FUNCTION_ROLE, None, ORG, ORG, True),
    ("another role of the hub account", f"arn:aws:iam::{HUB}:role/someone-else", ALLOW_ALL, ORG, ORG, False),
    ("a role of the member account itself", f"arn:aws:iam::{MEMBER}:role/developer", ALLOW_ALL, ORG, ORG, False),
    (
        "an account outside the organization",
        f"arn:aws:iam::{OUTSIDER}:role/EcsRemediateHub-RemediatorFunctionRoleC2BE4706-AbCdEf",
        ALLOW_ALL,
        OTHER_ORG,
        ORG,
        False,
    ),
    ("the function role once out of the organization", FUNCTION_ROLE, None, OTHER_ORG, ORG, False),
]


@pytest.mark.parametrize(
    ("case", "principal", "identity", "principal_org", "role_org", "allowed"),
    ASSUME_TABLE,
    ids=[r[0] for r in ASSUME_TABLE],
)
def test_who_can_assume_the_member_role(
    policies: dict[str, Any],
    case: str,
    principal: str,
    identity: dict[str, Any] | None,
    principal_org: str,
    role_org: str,
    allowed: bool,
) -> None:
    caller = node(principal, identity or policies["assume"])
    keys = {"aws:PrincipalOrgID": principal_org, "aws:ResourceOrgID": role_org}
    result = local_check_authorization_full(
        caller, "sts:AssumeRole", MEMBER_ROLE, keys, policies["trust"], MEMBER, None, None
    )
    assert result is allowed, case


@pytest.mark.parametrize(
    ("case", "role", "role_org", "allowed"),
    [
        ("the member role of an organization account", MEMBER_ROLE, ORG, True),
        (
            "the member role's name in an account outside the organization",
            f"arn:aws:iam::{OUTSIDER}:role/ecs-remediate-member",
            OTHER_ORG,
            False,
        ),
        ("another role of a member account", f"arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole", ORG, False),
        ("a role whose name only starts like it", f"arn:aws:iam::{MEMBER}:role/ecs-remediate-member-admin", ORG, False),
    ],
)
def test_what_the_hub_function_may_assume(
    policies: dict[str, Any], case: str, role: str, role_org: str, allowed: bool
) -> None:
    """The identity side alone (a trust policy that admits the hub function, wherever the role is)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": FUNCTION_ROLE}, "Action": "sts:AssumeRole"}],
    }
    caller = node(FUNCTION_ROLE, policies["assume"])
    keys = {"aws:PrincipalOrgID": ORG, "aws:ResourceOrgID": role_org}
    owner = role.split(":")[4]
    assert local_check_authorization_full(caller, "sts:AssumeRole", role, keys, trust, owner, None, None) is allowed, (
        case
    )


@pytest.mark.parametrize(
    ("case", "principal", "keys", "allowed"),
    [
        (
            "a member's forwarder role",
            f"arn:aws:iam::{MEMBER}:role/StackSet-member-ForwarderRole-X",
            {"aws:PrincipalOrgID": ORG},
            True,
        ),
        (
            "an account of another organization",
            f"arn:aws:iam::{OUTSIDER}:role/attacker",
            {"aws:PrincipalOrgID": OTHER_ORG},
            False,
        ),
        ("an account in no organization", f"arn:aws:iam::{OUTSIDER}:role/attacker", {}, False),
    ],
)
def test_who_can_put_events_on_the_hub_bus(
    policies: dict[str, Any], case: str, principal: str, keys: dict[str, str], allowed: bool
) -> None:
    caller = node(principal, ALLOW_ALL)
    assert (
        local_check_authorization_full(caller, "events:PutEvents", BUS, keys, policies["bus"], HUB, None, None)
        is allowed
    ), case


def test_the_forwarder_role_can_only_put_events_on_the_hub_bus(policies: dict[str, Any]) -> None:
    forwarder = node(f"arn:aws:iam::{MEMBER}:role/StackSet-member-ForwarderRole-X", policies["forwarder"])
    other_bus = f"arn:aws:events:us-east-1:{OUTSIDER}:event-bus/elsewhere"
    open_bus = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "events:PutEvents", "Resource": other_bus}],
    }
    keys = {"aws:PrincipalOrgID": ORG}
    assert local_check_authorization_full(forwarder, "events:PutEvents", BUS, keys, policies["bus"], HUB, None, None)
    assert not local_check_authorization_full(
        forwarder, "events:PutEvents", other_bus, keys, open_bus, OUTSIDER, None, None
    )
    assert not local_check_authorization_full(
        forwarder,
        "ecs:RegisterTaskDefinition",
        f"arn:aws:ecs:us-east-1:{MEMBER}:task-definition/x:1",
        keys,
        None,
        None,
        None,
        None,
    )


def test_the_policies_evaluated_are_the_synthesized_ones(policies: dict[str, Any]) -> None:
    assert policies["trust"]["Statement"][0]["Principal"] == {"AWS": [FUNCTION_ROLE]}
    assert policies["assume"]["Statement"][0]["Resource"] == "arn:aws:iam::*:role/ecs-remediate-member"
    assert json.dumps(policies["bus"]).count("aws:PrincipalOrgID") == 1
