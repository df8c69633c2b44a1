"""The members' forwarding failure path in the synthesized templates (infra/member_forwarding.py): every forwarding
rule's target has the Region's dead-letter queue and an explicit retry policy; the queue is encrypted, TLS only, keeps
messages 14 days and admits EventBridge for these rules only; two alarms; the member role may read and drain that
queue, by name, in each target Region, and nothing else of SQS; the hub's sweep item function knows its name. The
delivery and the sweep's report: tests/test_org_forwarding.py."""

from __future__ import annotations

from typing import Any

import pytest
from test_infra_org import ORG_CONTEXT, of_type, synth

from infra.org_settings import OrgSettings

ROLLOUT = {**ORG_CONTEXT, "daemonRollout": "true"}  # three forwarding rules: task definitions, daemons, deployments
QUEUE = "ecs-remediate-member-forwarding-dlq"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any], dict[str, Any], Any]:
    return synth(ROLLOUT, tmp_path_factory.mktemp("cdk-forwarding"))


def test_every_forwarding_rule_dead_letters_to_the_regions_queue_with_an_explicit_retry_policy(
    hub: tuple[Any, ...],
) -> None:
    member = hub[2]
    ((queue_id, queue),) = of_type(member, "AWS::SQS::Queue").items()
    rules = of_type(member, "AWS::Events::Rule")
    assert sorted(rules) and all(rid.startswith("Forward") for rid in rules) and len(rules) == 3
    for rule in rules.values():
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == {"Ref": "HubEventBusArn"}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    props = queue["Properties"]
    assert props == {"MessageRetentionPeriod": 14 * 24 * 3600, "QueueName": QUEUE, "SqsManagedSseEnabled": True}


def test_only_eventbridge_for_these_rules_may_send_to_the_queue_and_only_over_tls(hub: tuple[Any, ...]) -> None:
    member = hub[2]
    ((queue_id, _),) = of_type(member, "AWS::SQS::Queue").items()
    ((_, policy),) = of_type(member, "AWS::SQS::QueuePolicy").items()
    assert policy["Properties"]["Queues"] == [{"Ref": queue_id}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and deny["Action"] == "sqs:*"
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]  # one statement for every rule: the body is capped
    assert allow["Action"] == "sqs:SendMessage" and allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    sources = sorted(arn["Fn::GetAtt"][0] for arn in allow["Condition"]["ArnEquals"]["aws:SourceArn"])
    assert sources == sorted(of_type(member, "AWS::Events::Rule"))  # each forwarding rule, no other source


def test_alarms_on_queued_and_on_lost_events(hub: tuple[Any, ...]) -> None:
    member = hub[2]
    ((queue_id, _),) = of_type(member, "AWS::SQS::Queue").items()
    alarms = {k: v["Properties"] for k, v in of_type(member, "AWS::CloudWatch::Alarm").items()}
    (queued,) = [a for k, a in alarms.items() if k.startswith("ForwardingQueuedAlarm")]
    assert queued["MetricName"] == "ApproximateNumberOfMessagesVisible" and queued["Namespace"] == "AWS/SQS"
    assert queued["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    (lost,) = [a for k, a in alarms.items() if k.startswith("ForwardingLostAlarm")]
    stats = [m["MetricStat"] for m in lost["Metrics"] if "MetricStat" in m]
    assert {s["Metric"]["MetricName"] for s in stats} == {"FailedInvocations"}
    assert sorted(s["Metric"]["Dimensions"][0]["Value"]["Ref"] for s in stats) == sorted(
        of_type(member, "AWS::Events::Rule")
    )
    for alarm in (queued, lost):
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert alarm["TreatMissingData"] == "notBreaching"


def test_the_member_role_may_read_and_drain_that_queue_only(hub: tuple[Any, ...]) -> None:
    member = hub[2]
    policies = {p["PolicyName"]: p for p in member["Resources"]["MemberRole"]["Properties"]["Policies"]}
    (statement,) = policies["EcsRemediateForwardingQueue"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == sorted(
        ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage"]
    )
    # this account's queue by its name; any Region (one ARN instead of one per Region: the role's inline policies are
    # what limits `regions`), the queue exists in the target Regions only
    assert statement["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":sqs:*:", {"Ref": "AWS::AccountId"}, f":{QUEUE}"]]
    }
    remediation = str(policies["EcsRemediateRemediation"])
    assert "sqs:" not in remediation  # the remediation statements stay the single-account function's


def test_the_hubs_sweep_item_knows_the_queue_and_no_hub_role_has_sqs_on_members(hub: tuple[Any, ...]) -> None:
    template = hub[1]
    functions = of_type(template, "AWS::Lambda::Function").values()
    (item,) = [f for f in functions if f["Properties"]["Handler"].endswith("functions.org_sweep.item_handler")]
    assert item["Properties"]["Environment"]["Variables"]["FORWARDING_QUEUE_NAME"] == QUEUE
    for policy in of_type(template, "AWS::IAM::Policy").values():  # it reads the queue through the member role only
        assert QUEUE not in str(policy["Properties"]["PolicyDocument"])


@pytest.mark.parametrize(
    ("role", "queue"),
    [
        ("ecs-remediate-member", QUEUE),
        ("sec.ops_member", "sec-ops_member-forwarding-dlq"),
        ("r" * 64, "r" * 64 + "-forwarding-dlq"),
    ],
)
def test_the_queue_name_is_the_member_roles_in_sqs_characters(role: str, queue: str) -> None:
    org = OrgSettings.from_mapping({**ORG_CONTEXT, "memberRoleName": role}, tag_prefix="ecs-remediate")
    assert org.forwarding_queue_name == queue and len(queue) <= 80
