"""The member role is created by one pinned Region's stack instance (IAM is global, its name fixed): memberRoleRegion,
else the hub's own Region when it is among `regions` (CloudFormation resolves it when the hub deploys; a stack never
changes Region), else the first listed. Synthesized with `regions` reordered, extended and shrunk, the Region whose
instance creates the role and the role's logical id stay the same, so a StackSet update never deletes the role under
running stacks (the instance that held it would otherwise drop it while another creates it, by the same name).

The hub's parameter expression is evaluated here as CloudFormation would (Fn::If, Fn::Or, Fn::Equals on AWS::Region),
then the member template's condition with that value in every Region of the stack instances. The deployed behaviour
in moto's StackSets: tests/test_org_stackset.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match
from test_infra_org import ORG_CONTEXT, stack_set, synth

from app import SKIP_BUNDLING, build_app
from infra.settings import ContextError


def evaluate(value: Any, refs: dict[str, str], conditions: dict[str, Any]) -> Any:
    """A template value as CloudFormation resolves it: Ref, Fn::If, Fn::Or, Fn::And, Fn::Equals, Condition."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return refs[arg]
        if key == "Condition":
            return evaluate(conditions[arg], refs, conditions)
        if key == "Fn::Equals":
            return evaluate(arg[0], refs, conditions) == evaluate(arg[1], refs, conditions)
        if key == "Fn::Or":
            return any(evaluate(item, refs, conditions) for item in arg)
        if key == "Fn::If":
            chosen = evaluate(conditions[arg[0]], refs, conditions)
            return evaluate(arg[1] if chosen else arg[2], refs, conditions)
    return value


def pinned_region(hub_template: dict[str, Any], hub_region: str) -> str:
    """The MemberRoleRegion the hub passes to its StackSet when deployed in `hub_region`."""
    (value,) = [
        p["ParameterValue"] for p in stack_set(hub_template)["Parameters"] if p["ParameterKey"] == "MemberRoleRegion"
    ]
    resolved = evaluate(value, {"AWS::Region": hub_region}, hub_template.get("Conditions", {}))
    assert isinstance(resolved, str)
    return resolved


def role_created_in(hub_template: dict[str, Any], member: dict[str, Any], hub_region: str) -> list[str]:
    """The Regions whose member stack instance creates the member role (in every target account)."""
    (group,) = stack_set(hub_template)["StackInstancesGroup"]
    condition = member["Resources"]["MemberRole"]["Condition"]
    pinned = pinned_region(hub_template, hub_region)
    return [
        region
        for region in group["Regions"]
        if evaluate(
            member["Conditions"][condition], {"AWS::Region": region, "MemberRoleRegion": pinned}, member["Conditions"]
        )
    ]


def the_role(member: dict[str, Any]) -> tuple[str, str, Any]:
    """(logical id, role name, condition) of the member role, the template's conditional IAM role besides the verify
    role, which is created with it (the same condition: one per account, in the pinned Region)."""
    conditional = {k: v for k, v in member["Resources"].items() if v["Type"] == "AWS::IAM::Role" and "Condition" in v}
    assert set(conditional) == {"MemberRole", "VerifyRole"}
    assert conditional["VerifyRole"]["Condition"] == conditional["MemberRole"]["Condition"]
    role = conditional["MemberRole"]
    return "MemberRole", role["Properties"]["RoleName"], member["Conditions"][role["Condition"]]


ORDERS = {
    "as first deployed": "us-east-1,eu-west-1",
    "reordered": "eu-west-1,us-east-1",
    "extended in front and behind": "ap-southeast-2,us-east-1,eu-west-1,sa-east-1",
    "shrunk to the hub's Region": "eu-west-1",
}


@pytest.fixture(scope="module")
def by_order(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    out = {}
    for name, regions in ORDERS.items():
        _, template, member, _ = synth({**ORG_CONTEXT, "regions": regions}, tmp_path_factory.mktemp("order"))
        out[name] = (template, member)
    return out


def test_the_hubs_region_pins_the_role_whatever_the_order(
    by_order: dict[str, tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    """A hub deployed in eu-west-1 (listed second at first): the role stays in eu-west-1's instance, same logical id,
    same name, same condition, whatever is done to `regions`; its policy follows the Regions listed."""
    roles = set()
    for name, (template, member) in by_order.items():
        assert role_created_in(template, member, "eu-west-1") == ["eu-west-1"], name
        role_id, role_name, condition = the_role(member)
        roles.add((role_id, role_name, repr(condition)))
        policy = member["Resources"][role_id]["Properties"]["Policies"][0]
        (register,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "RegisterFixedCopies"]
        assert len(register["Resource"]) == len(ORDERS[name].split(","))
    assert roles == {
        (
            "MemberRole",
            "ecs-remediate-member",
            repr({"Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "MemberRoleRegion"}]}),
        )
    }
    # A hub in a Region it does not target: the first listed (the documented fallback; pin it with memberRoleRegion).
    assert [role_created_in(t, m, "us-west-2") for t, m in by_order.values()] == [
        ["us-east-1"],
        ["eu-west-1"],
        ["ap-southeast-2"],
        ["eu-west-1"],
    ]


@pytest.mark.parametrize("regions", list(ORDERS.values())[:3], ids=list(ORDERS)[:3])
def test_member_role_region_pins_it_explicitly(regions: str, tmp_path: Path) -> None:
    """memberRoleRegion=eu-west-1: wherever the hub is and however `regions` is ordered, eu-west-1's instance."""
    hub, template, member, _ = synth({**ORG_CONTEXT, "regions": regions, "memberRoleRegion": " eu-west-1 "}, tmp_path)
    for hub_region in ("us-east-1", "eu-west-1", "us-west-2"):
        assert role_created_in(template, member, hub_region) == ["eu-west-1"]
    assert pinned_region(template, "us-west-2") == "eu-west-1"
    assert "HubRegionIsTargeted" not in template.get("Conditions", {})
    assert the_role(member)[0] == "MemberRole"
    assert not Annotations.from_stack(hub).find_info("*", Match.string_like_regexp("memberRoleRegion not set.*"))


def test_without_the_key_the_synth_says_where_the_role_goes(tmp_path: Path) -> None:
    hub, _, _, _ = synth(ORG_CONTEXT, tmp_path)
    infos = Annotations.from_stack(hub).find_info("*", Match.string_like_regexp("memberRoleRegion not set.*"))
    assert len(infos) == 1 and "else in us-east-1 (the first listed)" in str(infos[0].entry.data)


def test_a_hub_in_the_twelfth_region_of_twelve(tmp_path: Path) -> None:
    """Fn::Or takes 10 conditions at most: 12 Regions are two nested groups, the hub's Region still found."""
    regions = [f"{area}-{i}" for area in ("us-east", "eu-west", "ap-south") for i in (1, 2, 3, 4)]
    _, template, member, _ = synth({**ORG_CONTEXT, "regions": ",".join(regions)}, tmp_path)
    for region in regions:
        assert role_created_in(template, member, region) == [region]
    assert role_created_in(template, member, "sa-east-1") == [regions[0]]


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (
            {"memberRoleRegion": "ap-southeast-2"},
            "memberRoleRegion: expected one of the regions (us-east-1, eu-west-1)",
        ),
        ({"memberRoleRegion": "us-east-1", "regions": "eu-west-1"}, "memberRoleRegion: expected one of the regions"),
        ({"memberRoleRegion": ["us-east-1"]}, "memberRoleRegion: expected one of the regions"),
    ],
    ids=["not-targeted", "dropped-from-regions", "not-a-string"],
)
def test_a_pinned_region_outside_regions_fails_synth_naming_the_key(
    context: dict[str, Any], expected: str, tmp_path: Path
) -> None:
    """Dropping the pinned Region from `regions` would delete its stack instance and the role with it: refused."""
    with pytest.raises(ContextError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        build_app({**SKIP_BUNDLING, **ORG_CONTEXT, **context}, outdir=str(tmp_path))
