"""The synthesized member StackSet deployed by moto's CloudFormation into an emulated organization.

What the hub template says (template body, permission model, capabilities, auto-deployment, OU targets,
Regions, parameters) is passed as it is to CreateStackSet / CreateStackInstances; the emulator creates the
resources in each member account and Region (moto expands an OU to its direct child accounts, and does not
exclude the management account as AWS does: none is in the OU here). Read back from each member: the member role
exists once (no name clash between Regions), created by the stack of the pinned Region (the hub's, here listed second),
its ARN is the one `MemberAccounts` assumes, it trusts exactly the hub's function role, and its statements name that
account in the target Regions; every Region has the forwarding rule on its default bus, targeting the hub's bus
through a role of that Region's stack, failures to that Region's forwarding dead-letter queue (encrypted, 14 days).
moto's CloudFormation skips the queue's policy and the alarms (AWS::SQS::QueuePolicy, AWS::CloudWatch::Alarm: warned,
not created); tests/test_infra_org_forwarding.py checks them in the template.
"""

from __future__ import annotations

import ast
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.models import cloudformation_backends
from test_infra_org import ORG_CONTEXT, stack_set, synth
from test_member_role_region import pinned_region

from ecs_remediate.organization.member_accounts import MemberAccounts

HUB = "123456789012"
HUB_FUNCTION_ROLE = f"arn:aws:iam::{HUB}:role/EcsRemediateHub-RemediatorFunctionRole-EXAMPLE"
HUB_REGION = "eu-west-1"  # where the hub is deployed: one of the target Regions, not the first listed


@pytest.fixture(scope="module")
def stack_set_props(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    _, template, _, _ = synth(
        {**ORG_CONTEXT, "regions": "us-east-1,eu-west-1,ap-southeast-2"}, tmp_path_factory.mktemp("hub")
    )
    return {**stack_set(template), "pinned": pinned_region(template, HUB_REGION)}


def session_in(account: str) -> boto3.session.Session:
    issued = boto3.client("sts", "us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="inspect"
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=issued["AccessKeyId"],
        aws_secret_access_key=issued["SecretAccessKey"],
        aws_session_token=issued["SessionToken"],
    )


def role_policy(iam: Any, name: str) -> dict[str, Any]:
    document = iam.get_role_policy(RoleName="ecs-remediate-member", PolicyName=name)["PolicyDocument"]
    if isinstance(document, str):  # moto stores a CloudFormation inline policy as the dict's repr
        document = ast.literal_eval(document)
    return dict(document)


def test_member_stack_set_deploys_once_per_account_and_in_every_region(stack_set_props: dict[str, Any]) -> None:
    props = stack_set_props
    (group,) = props["StackInstancesGroup"]
    regions = group["Regions"]
    with mock_aws():
        organizations = boto3.client("organizations", "us-east-1")
        organizations.create_organization(FeatureSet="ALL")
        root = organizations.list_roots()["Roots"][0]["Id"]
        ou = organizations.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
        members = []
        for i in range(3):
            status = organizations.create_account(AccountName=f"member-{i}", Email=f"member-{i}@example.com")
            account = status["CreateAccountStatus"]["AccountId"]
            organizations.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
            members.append(account)
        bus_arn = boto3.client("events", "us-east-1").create_event_bus(Name="EcsRemediateHub-hub")["EventBusArn"]
        # the GetAtts and the Fn::If as CloudFormation resolves them in the hub's Region
        resolved = {
            "HubEventBusArn": bus_arn,
            "HubFunctionRoleArns": HUB_FUNCTION_ROLE,
            "MemberRoleRegion": props["pinned"],
        }
        assert props["pinned"] == HUB_REGION
        assert {p["ParameterKey"] for p in props["Parameters"]} == set(resolved)

        cloudformation = boto3.client("cloudformation", "us-east-1")
        cloudformation.create_stack_set(
            StackSetName="EcsRemediateHub-member",
            TemplateBody=props["TemplateBody"],
            PermissionModel=props["PermissionModel"],
            AutoDeployment=props["AutoDeployment"],
            Capabilities=props["Capabilities"],
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in resolved.items()],
        )
        cloudformation.create_stack_instances(
            StackSetName="EcsRemediateHub-member",
            DeploymentTargets={"OrganizationalUnitIds": [ou]},
            Regions=regions,
            OperationPreferences=props["OperationPreferences"],
        )
        instances = cloudformation.list_stack_instances(StackSetName="EcsRemediateHub-member")["Summaries"]
        assert sorted((i["Account"], i["Region"]) for i in instances) == sorted(
            (a, r) for a in members for r in regions
        )
        assert {i["StackInstanceStatus"]["DetailedStatus"] for i in instances} == {"SUCCEEDED"}

        # The pinned Region's stack holds the role, the others skipped it (read from moto's stack instances: a
        # service-managed instance's stack is not listed in the member account, as in AWS).
        stack_set_state = cloudformation_backends[HUB]["us-east-1"].describe_stack_set("EcsRemediateHub-member")
        holders = {
            (i.account_id, i.region_name)
            for i in stack_set_state.instances.stack_instances
            if i.stack.resource_map["MemberRole"] is not None
        }
        assert holders == {(account, HUB_REGION) for account in members}
        verify_holders = {
            (i.account_id, i.region_name)
            for i in stack_set_state.instances.stack_instances
            if i.stack.resource_map["VerifyRole"] is not None
        }
        assert verify_holders == holders

        accounts = MemberAccounts("ecs-remediate-member", sts=boto3.client("sts", "us-east-1"))
        for account in members:
            session = session_in(account)
            iam = session.client("iam")
            names = [r["RoleName"] for r in iam.list_roles()["Roles"]]
            assert names.count("ecs-remediate-member") == 1
            assert names.count("ecs-remediate-member-verify") == 1  # verify --accounts' role, created with it
            forwarders = [n for n in names if "ForwarderRole" in n]
            assert len(forwarders) == len(regions)  # one per Region's stack, generated names: no clash
            role = iam.get_role(RoleName="ecs-remediate-member")["Role"]
            assert role["Arn"] == accounts.role_arn(account)
            trust = role["AssumeRolePolicyDocument"]
            trust = json.loads(trust) if isinstance(trust, str) else trust
            assert trust["Statement"] == [
                {
                    "Sid": "HubFunctionRolesOfTheOrganizationOnly",
                    "Effect": "Allow",
                    "Principal": {"AWS": [HUB_FUNCTION_ROLE]},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}},
                }
            ]
            policies = iam.list_role_policies(RoleName="ecs-remediate-member")["PolicyNames"]
            assert sorted(policies) == ["EcsRemediateForwardingQueue", "EcsRemediateRemediation"]
            document = role_policy(iam, "EcsRemediateRemediation")
            (register,) = [s for s in document["Statement"] if s["Sid"] == "RegisterFixedCopies"]
            assert sorted(register["Resource"]) == sorted(
                f"arn:aws:ecs:{region}:{account}:task-definition/*" for region in regions
            )
            # The forwarding dead-letter queue of this account, by name, and nothing else of SQS.
            (queue_statement,) = role_policy(iam, "EcsRemediateForwardingQueue")["Statement"]
            assert queue_statement["Resource"] == f"arn:aws:sqs:*:{account}:ecs-remediate-member-forwarding-dlq"
            for region in regions:
                sqs = session.client("sqs", region)
                url = sqs.get_queue_url(QueueName="ecs-remediate-member-forwarding-dlq")["QueueUrl"]
                queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                queue_arn = f"arn:aws:sqs:{region}:{account}:ecs-remediate-member-forwarding-dlq"
                assert queue["QueueArn"] == queue_arn
                assert (queue["SqsManagedSseEnabled"], queue["MessageRetentionPeriod"]) == ("true", "1209600")
                events = session.client("events", region)
                rules = events.list_rules()["Rules"]
                # the task-definition rule and the daemon rule (tests/test_infra_org_daemons.py), one forwarder role
                assert len(rules) == 2
                roles = set()
                for rule in rules:
                    assert rule.get("EventBusName", "default") == "default" and rule["State"] == "ENABLED"
                    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
                    assert target["Arn"] == bus_arn
                    # what EventBridge cannot deliver goes to this Region's forwarding dead-letter queue
                    assert target["DeadLetterConfig"] == {"Arn": queue_arn}
                    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
                    assert target["RoleArn"].split(":")[4] == account
                    assert target["RoleArn"].split("/")[-1] in forwarders
                    roles.add(target["RoleArn"])
                assert len(roles) == 1
