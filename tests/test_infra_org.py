"""The organization hub and its member template, as synthesized (`-c organization=true`).

The member template is the one the StackSet inlines (read back from the hub template's TemplateBody). Its
member role is compared with the single-account function's RemediationPolicy, both synthesized from the same
settings: same statements, on the same account's resources, Region by Region, never broader. The member rule's
pattern goes through LocalStack's EventBridge rule engine. cfn-lint and checkov on these templates:
tests/test_reliability_template.py (its org variants); context and guardrail modes: test_infra_org_context.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match
from synth_cache import synthesized_app
from test_event_pattern import BASE, container, registration

from app import SKIP_BUNDLING, build_app, hub_of, stack_of
from emulators.eventbridge import matches
from infra import event_pattern
from infra.daemon_iam import DAEMON_SIDS
from infra.hub_stack import OPERATION_PREFERENCES

ORG_CONTEXT: dict[str, Any] = {
    "organization": "true",
    "organizationId": "o-abcdefghij",
    "targetOus": "ou-ab12-11111111",
    "regions": "us-east-1,eu-west-1",
}
MEMBER = "210987654321"
REGIONS = ["us-east-1", "eu-west-1"]


def synth(context: dict[str, Any], tmp: Path) -> tuple[Any, dict[str, Any], dict[str, Any], Any]:
    """(hub stack, hub template, member template as inlined, app)."""
    app = synthesized_app(context)  # shared with every module that synthesizes the same context
    hub = hub_of(app)
    template = app.synth().get_stack_by_name(hub.stack_name).template
    return hub, template, json.loads(stack_set(template)["TemplateBody"]), app


def of_type(template: dict[str, Any], type_: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def only(template: dict[str, Any], type_: str) -> tuple[str, dict[str, Any]]:
    found = of_type(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def remediation_function(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The real-time function (the hub also has the organization sweep's two, daily by default)."""
    (found,) = [
        (k, v)
        for k, v in of_type(template, "AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == "ecs_remediate.functions.handler.queue_handler"
    ]
    return found


def stack_set(template: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = only(template, "AWS::CloudFormation::StackSet")[1]["Properties"]
    return props


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any], dict[str, Any], Any]:
    return synth(ORG_CONTEXT, tmp_path_factory.mktemp("cdk-hub"))


# --- the hub ---


def test_bus_policy_admits_the_organization_with_one_statement(hub: tuple[Any, ...]) -> None:
    template = hub[1]
    bus_id, bus = only(template, "AWS::Events::EventBus")
    assert bus["Properties"]["Name"] == "EcsRemediateHub-hub"
    policies = of_type(template, "AWS::Events::EventBusPolicy")
    statements = [p["Properties"]["Statement"] for p in policies.values()]
    assert len(statements) == 1
    (statement,) = statements
    assert statement["Effect"] == "Allow" and statement["Principal"] == {"AWS": "*"}
    assert statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}
    assert not re.search(r"\d{12}", json.dumps(statement))  # no list of accounts
    assert sum(json.dumps(p).count("aws:PrincipalOrgID") for p in policies.values()) == 1
    assert [p["Properties"]["EventBusName"] for p in policies.values()] == [{"Ref": bus_id}]


def test_the_function_listens_on_the_hub_bus_with_the_same_pattern(hub: tuple[Any, ...]) -> None:
    template = hub[1]
    bus_id, _ = only(template, "AWS::Events::EventBus")
    function_id, function = remediation_function(template)
    # the remediation rule and the daemon rule, all on the hub's bus (the sweep's schedule is on the default bus)
    rules = {k: v for k, v in of_type(template, "AWS::Events::Rule").items() if "EventPattern" in v["Properties"]}
    assert all(r["Properties"].get("EventBusName") == {"Ref": bus_id} for r in rules.values())
    (rule,) = [r for rid, r in rules.items() if rid.startswith("RemediatorPrivilegedRegistrationRule")]
    props = rule["Properties"]
    assert props["EventBusName"] == {"Ref": bus_id}
    assert props["EventPattern"] == {
        "source": event_pattern.SOURCES,
        "detail-type": event_pattern.DETAIL_TYPES,
        "detail": event_pattern.remediation_detail(),
    }
    # the hub's event queue, which the function drains at a bounded concurrency (functions/delivery.py)
    [events_id] = [k for k in of_type(template, "AWS::SQS::Queue") if k.startswith("RemediatorEventQueue")]
    assert props["Targets"][0]["Arn"] == {"Fn::GetAtt": [events_id, "Arn"]}
    assert "DeadLetterConfig" in props["Targets"][0]
    [mapping] = of_type(template, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionName"] == {"Ref": function_id}
    # large batches for a second, and 4 at once: each member has its own ECS rates (docs/performance.md#hub-fairness)
    assert mapping["Properties"]["BatchSize"] == 1000
    assert mapping["Properties"]["MaximumBatchingWindowInSeconds"] == 1
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 4}
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["MEMBER_ROLE_NAME"] == "ecs-remediate-member"
    assert variables["MODE"] == "remediate"
    types = {r["Type"] for r in template["Resources"].values()}
    assert {"AWS::DynamoDB::Table", "AWS::SNS::Topic", "AWS::SQS::Queue", "AWS::CloudWatch::Alarm"} <= types
    assert len(of_type(template, "AWS::CloudWatch::Alarm")) == 4  # errors, throttles, backlog age, DLQ depth


def test_the_hub_function_has_no_ecs_permission_and_assumes_only_member_roles(hub: tuple[Any, ...]) -> None:
    template = hub[1]
    _, function = remediation_function(template)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for policy in of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith(("ecs:", "iam:"))}
    assert {"sts:AssumeRole", "sns:Publish", "dynamodb:PutItem", "logs:PutLogEvents"} <= actions
    (assume,) = [s for s in statements if "sts:AssumeRole" in as_list(s["Action"])]
    assert assume["Action"] == "sts:AssumeRole"
    assert assume["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::*:role/ecs-remediate-member"]]
    }
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "o-abcdefghij"}}
    policies = {
        pid for pid, p in of_type(template, "AWS::IAM::Policy").items() if {"Ref": role_id} in p["Properties"]["Roles"]
    }
    assert policies <= set(function["DependsOn"])  # the function is deployed after its permissions


# --- the StackSet ---


def test_stack_set_service_managed_auto_deployed_to_the_target_ous(hub: tuple[Any, ...]) -> None:
    template = hub[1]
    props = stack_set(template)
    bus_id, _ = only(template, "AWS::Events::EventBus")
    _, function = remediation_function(template)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    operator = next(rid for rid in of_type(template, "AWS::IAM::Role") if rid.startswith("OperatorRole"))
    item = next(rid for rid in of_type(template, "AWS::IAM::Role") if rid.startswith("OrgSweepItemRole"))
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert props["CallAs"] == "SELF"
    assert props["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert props["OperationPreferences"] == OPERATION_PREFERENCES
    assert props["OperationPreferences"]["ConcurrencyMode"] == "SOFT_FAILURE_TOLERANCE"
    assert props["OperationPreferences"]["RegionConcurrencyType"] == "PARALLEL"
    assert props["StackInstancesGroup"] == [
        {"DeploymentTargets": {"OrganizationalUnitIds": ["ou-ab12-11111111"]}, "Regions": REGIONS}
    ]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in props["Parameters"]} == {
        "HubEventBusArn": {"Fn::GetAtt": [bus_id, "Arn"]},
        # the roles the member role trusts: the function's, the operators' (scan --accounts) and the daily
        # organization sweep's item function's
        "HubFunctionRoleArns": {
            "Fn::Join": [
                ",",
                [{"Fn::GetAtt": [role_id, "Arn"]}, {"Fn::GetAtt": [operator, "Arn"]}, {"Fn::GetAtt": [item, "Arn"]}],
            ]
        },
        # the one Region whose stack instance creates the member role (tests/test_member_role_region.py)
        "MemberRoleRegion": {"Fn::If": ["HubRegionIsTargeted", {"Ref": "AWS::Region"}, "us-east-1"]},
    }
    assert len(props["TemplateBody"]) < 51_200  # CloudFormation's limit for an inline template body


def test_stack_set_targets_excluded_accounts_and_delegated_admin(tmp_path: Path) -> None:
    context = {
        **ORG_CONTEXT,
        "targetOus": '["ou-ab12-11111111", "ou-ab12-22222222", "r-ab12"]',
        "regions": "eu-central-1",
        "excludedAccounts": "111111111111,222222222222",
        "stackSetCallAs": "delegated_admin",
    }
    _, template, member, _ = synth(context, tmp_path)
    props = stack_set(template)
    assert props["CallAs"] == "DELEGATED_ADMIN"
    assert props["StackInstancesGroup"] == [
        {
            "DeploymentTargets": {
                "OrganizationalUnitIds": ["ou-ab12-11111111", "ou-ab12-22222222", "r-ab12"],
                "Accounts": ["111111111111", "222222222222"],
                "AccountFilterType": "DIFFERENCE",
            },
            "Regions": ["eu-central-1"],
        }
    ]
    assert member["Conditions"]["CreatesMemberRole"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "MemberRoleRegion"}]
    }
    (region,) = [p["ParameterValue"] for p in props["Parameters"] if p["ParameterKey"] == "MemberRoleRegion"]
    assert region == {"Fn::If": ["HubRegionIsTargeted", {"Ref": "AWS::Region"}, "eu-central-1"]}


# --- the member template ---


def test_member_template_is_asset_free(hub: tuple[Any, ...]) -> None:
    member = hub[2]
    text = json.dumps(member)
    assert not {"AWS::Lambda::Function", "AWS::CDK::Metadata", "AWS::S3::Bucket"} & {
        r["Type"] for r in member["Resources"].values()
    }
    for marker in ("cdk-hnb659fds", "BootstrapVersion", "AssetParameters", "S3Bucket", "aws:asset:path"):
        assert marker not in text, marker
    assert set(member["Parameters"]) == {"HubEventBusArn", "HubFunctionRoleArns", "MemberRoleRegion"}
    assert "Rules" not in member  # no bootstrap-version rule: member accounts are not CDK-bootstrapped
    assert hub[0].member_template.asset_count == 0


def test_member_role_trusts_only_the_hub_function_roles_of_the_organization(hub: tuple[Any, ...]) -> None:
    member = hub[2]
    role = member["Resources"]["MemberRole"]
    assert role["Condition"] == "CreatesMemberRole"
    assert member["Conditions"]["CreatesMemberRole"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "MemberRoleRegion"}]
    }
    props = role["Properties"]
    assert props["RoleName"] == "ecs-remediate-member"
    assert props["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Sid": "HubFunctionRolesOfTheOrganizationOnly",
            "Effect": "Allow",
            "Principal": {"AWS": {"Ref": "HubFunctionRoleArns"}},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}},
        }
    ]
    assert "ManagedPolicyArns" not in props and "PermissionsBoundary" not in props
    # ... and the hub fills the parameter with exactly its function roles (test_stack_set_service_managed...).


def member_rule(member: dict[str, Any], prefix: str = "ForwardPrivilegedRegistrations") -> dict[str, Any]:
    (rule,) = [r for rid, r in of_type(member, "AWS::Events::Rule").items() if rid.startswith(prefix)]
    return rule


def test_member_forwarding_rule_and_its_role(hub: tuple[Any, ...]) -> None:
    member = hub[2]
    rule = member_rule(member)
    assert "Condition" not in rule and "EventBusName" not in rule["Properties"]  # every Region, default bus
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "HubEventBusArn"}
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    forwarder = member["Resources"][role_id]["Properties"]
    assert forwarder["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
        }
    ]
    policies = [r["Properties"] for r in member["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    assert [p["PolicyDocument"]["Statement"] for p in policies] == [
        [{"Action": "events:PutEvents", "Effect": "Allow", "Resource": {"Ref": "HubEventBusArn"}}]
    ]
    assert [p["Roles"] for p in policies] == [[{"Ref": role_id}]]


def test_member_rule_pattern_matches_privileged_member_registrations_only(hub: tuple[Any, ...]) -> None:
    """LocalStack's rule engine on the synthesized member rule: a member's privileged registration is forwarded,
    its compliant one (and the hub's own fixed copy registered there) is not."""
    pattern = member_rule(hub[2])["Properties"]["EventPattern"]
    privileged = registration([container("sidecar"), container("agent", privileged=True)])
    compliant = registration([container("sidecar"), container("agent", privileged=False)])
    for event in (privileged, compliant):
        event["account"], event["region"] = MEMBER, "eu-west-1"
        event["detail"]["recipientAccountId"] = MEMBER
    assert matches(pattern, privileged)
    assert not matches(pattern, compliant)
    assert not matches(pattern, {**BASE, "detail": {**BASE["detail"], "errorCode": "AccessDenied"}})
    # The hub's rule has the same pattern: what a member forwards, the hub function receives.
    (hub_rule,) = [r for rid, r in of_type(hub[1], "AWS::Events::Rule").items() if rid.startswith("Remediator")]
    assert hub_rule["Properties"]["EventPattern"] == pattern


# --- no member statement broader than the single-account function's ---


def _flat(value: Any) -> str:
    """A resource as text, Refs as ${Name} (Fn::Join parts concatenated)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    separator, parts = value["Fn::Join"]
    return str(separator).join(_flat(part) for part in parts)


def _normalized(statement: dict[str, Any], regions: list[str] | None) -> tuple[Any, ...]:
    """(Sid, actions, condition, resources); a single-account resource is expanded to each of `regions`."""
    resources: set[str] = set()
    for resource in as_list(statement["Resource"]):
        text = _flat(resource)
        if regions is None or "${AWS::Region}" not in text:
            resources.add(text)
        else:
            resources |= {text.replace("${AWS::Region}", region) for region in regions}
    condition = json.dumps(statement.get("Condition"), sort_keys=True)
    return statement["Sid"], tuple(sorted(as_list(statement["Action"]))), condition, frozenset(resources)


VARIANTS = {
    "remediate": {},
    "report": {"mode": "report", "rollout": "true", "retire": "true"},
    "rollout": {"rollout": "true"},
    "retire": {"retire": "true"},
    "rollout-and-retire": {"rollout": "true", "retire": "true"},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_member_role_statements_are_exactly_the_single_account_functions(variant: str, tmp_path: Path) -> None:
    context = VARIANTS[variant]
    single = stack_of(build_app({**SKIP_BUNDLING, **context, "sweepSchedule": "off"}, outdir=str(tmp_path / "one")))
    single_template = single.node.root.synth().get_stack_by_name(single.stack_name).template
    (remediation,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for pid, p in of_type(single_template, "AWS::IAM::Policy").items()
        if pid.startswith("RemediatorRemediationPolicy")
    ]
    _, _, member, _ = synth({**ORG_CONTEXT, **context}, tmp_path / "hub")
    # the remediation policy (the forwarding queue's is the other one: tests/test_infra_org_forwarding.py)
    policies = member["Resources"]["MemberRole"]["Properties"]["Policies"]
    (policy,) = [p for p in policies if p["PolicyName"] == "EcsRemediateRemediation"]
    member_statements = policy["PolicyDocument"]["Statement"]

    expected = {_normalized(s, REGIONS) for s in remediation}
    actual = {_normalized(s, None) for s in member_statements}
    assert actual == expected  # same Sids, actions, conditions; same resources Region by Region, nothing more
    assert len(member_statements) == len(remediation)
    actions = {a for s in member_statements for a in as_list(s["Action"])}
    assert not any("*" in a for a in actions)
    if context.get("mode") == "report":  # besides the daemon reads (tests/test_daemon_infra.py)
        task_definitions = {
            a for s in member_statements if s.get("Sid") not in DAEMON_SIDS for a in as_list(s["Action"])
        }
        assert task_definitions == {"ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"}
    else:
        (pass_role,) = [s for s in member_statements if s["Action"] == "iam:PassRole"]
        assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert ("ecs:UpdateService" in actions) == (variant in ("rollout", "rollout-and-retire"))
    assert ("ecs:DeregisterTaskDefinition" in actions) == (variant in ("retire", "rollout-and-retire"))


# --- the guardrail (its modes: tests/test_infra_org_context.py) ---


def test_guardrail_off_by_default(hub: tuple[Any, ...]) -> None:
    assert of_type(hub[1], "AWS::Organizations::Policy") == {}


# --- cdk-nag ---


def test_cdk_nag_clean_on_hub_and_member(hub: tuple[Any, ...]) -> None:
    stack, template, member, _ = hub
    annotations = Annotations.from_stack(stack)  # the member template's findings are reported on the hub too
    assert [e.entry.data for e in annotations.find_error("*", Match.any_value())] == []
    assert [w.entry.data for w in annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))] == []
    assert [w.entry.data for w in annotations.find_warning("*", Match.string_like_regexp("member template.*"))] == []
    for source in (template, member):
        for logical_id, resource in source["Resources"].items():
            for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                named = rule["reason"].split(":", 1)[0].split(" ", 1)[0]
                assert named in logical_id and len(rule["reason"]) >= 60, (logical_id, rule)
                if rule["id"] == "AwsSolutions-IAM5":
                    assert rule.get("applies_to")


def test_the_hub_function_may_name_member_accounts_of_its_organization_only(hub: tuple[Any, ...]) -> None:
    template = hub[1]
    _, function = remediation_function(template)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for policy in of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (describe,) = [s for s in statements if "organizations:DescribeAccount" in as_list(s["Action"])]
    assert describe["Action"] == "organizations:DescribeAccount"  # read one account, nothing else of Organizations
    assert describe["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":organizations::*:account/o-abcdefghij/*"]]
    }
    assert not [a for s in statements for a in as_list(s["Action"]) if a.startswith("organizations:")][1:]


def test_operator_role_is_assumable_in_the_hub_only_and_can_do_no_more_than_reach_members(
    hub: tuple[Any, ...],
) -> None:
    """`scan --accounts` from the hub: operators assume OperatorRole (the member roles trust it), which may only
    assume the organization's member roles, name accounts and list them; no ECS, no table, nothing else."""
    template = hub[1]
    (operator_id, operator), *others = [
        (rid, r) for rid, r in of_type(template, "AWS::IAM::Role").items() if rid.startswith("OperatorRole")
    ]
    assert not others
    assert operator["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {
                "AWS": {
                    "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]
                }
            },
        }
    ]
    statements = [
        statement
        for policy in of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": operator_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = sorted(
        a for st in statements for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    )
    assert actions == [
        # ecs-remediate verify --accounts reads the stack, its rule, its ledger and notice records, its DLQ's depth
        "cloudformation:DescribeStacks",
        "dynamodb:GetItem",
        "events:DescribeRule",
        "events:ListTargetsByRule",
        "organizations:DescribeAccount",
        "organizations:ListAccounts",
        "sqs:GetQueueAttributes",
        "sts:AssumeRole",  # the member roles (scan --accounts)
        "sts:AssumeRole",  # the members' verify roles (verify --accounts)
    ]
    verify_assume = next(st for st in statements if st.get("Sid") == "AssumeVerifyRolesOfTheOrganization")
    assert verify_assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "o-abcdefghij"}}
    assert verify_assume["Resource"]["Fn::Join"][1][-1] == ":iam::*:role/ecs-remediate-member-verify"
    assume = next(st for st in statements if st.get("Sid") == "AssumeMemberRolesOfTheOrganization")
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "o-abcdefghij"}}
    assert "OperatorRoleArn" in template["Outputs"]
