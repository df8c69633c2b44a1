"""Issue 15 through the real handlers against a moto server: the notice names where a revision came from and what
to change there (the CloudFormation-tagged fixture, CloudFormation's invokedBy, the Terraform AWS provider's and the
CDK CLI's user agents, the CDK's bootstrap role, a hand registration); a family re-registered privileged again and
again gets a copy each time and an escalated notice from the 3rd; a CloudFormation-managed service is not moved by
rollout unless rolloutManaged. Every assertion reads the emulator's state or the inbox queue back."""

from __future__ import annotations

import copy
import json
import re
import time
from types import ModuleType
from typing import Any

import pytest
from test_handler import invoke

from conftest import LOCAL_FIXTURES, load_handler, load_json
from demo.sandbox import ACCOUNT, Note, Sandbox, response_body
from ecs_remediate.core.notice import build_message
from ecs_remediate.core.outcomes import Result
from ecs_remediate.core.taskdef import privileged_containers

STACK_ARN = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/app-stack/6f1c5b8e-0000-4000-8000-000000000001"
CFN_EXEC_ROLE = f"arn:aws:sts::{ACCOUNT}:assumed-role/cfn-exec-role/AWSCloudFormation"
CDK_ROLE_NAME = f"cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-us-east-1"


def cfn_tags(logical_id: str) -> list[dict[str, str]]:
    """What CloudFormation puts on every resource it creates (only AWS can set `aws:` tags; moto lets a test)."""
    return [
        {"key": "aws:cloudformation:stack-name", "value": "app-stack"},
        {"key": "aws:cloudformation:logical-id", "value": logical_id},
        {"key": "aws:cloudformation:stack-id", "value": STACK_ARN},
    ]


TERRAFORM_AGENT = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.0 (+https://www.terraform.io) terraform-provider-aws/5.32.1 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.24.1 os/linux lang/go#1.20.12 "
    "md/GOOS#linux md/GOARCH#amd64 api/ecs#1.38.1"
)
CDK_CLI_AGENT = "aws-sdk-nodejs/2.1586.0 linux/v20.15.1 aws-cdk/2.135.0 promise"
PRIVILEGED = {
    "family": "web",
    "containerDefinitions": [{"name": "app", "image": "nginx:1", "memory": 64, "privileged": True}],
}


def snake(payload: Any) -> Any:
    if not isinstance(payload, dict):
        return payload
    return {re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), k): snake(v) for k, v in payload.items()}


def email(note: Note) -> str:
    """The email text, rendered from the JSON the subscription received (the same builder the function uses)."""
    return build_message(Result.from_dict(snake(note.payload))).text


def event(sandbox: Sandbox, params: dict[str, Any], response: dict[str, Any], **kw: Any) -> dict[str, Any]:
    user_agent = kw.pop("user_agent", None)
    built = sandbox.event_for(params, response, **kw)
    if user_agent is not None:
        built["detail"]["userAgent"] = user_agent
    return built


def test_the_cloudformation_fixture_names_stack_and_logical_id_and_gives_the_template_snippet(
    sandbox: Sandbox, handler: ModuleType
) -> None:
    fixture = load_json(
        LOCAL_FIXTURES / "events" / "cloudformation__RegisterTaskDefinition_privileged-last-container.json"
    )
    params = copy.deepcopy(fixture["detail"]["requestParameters"])
    params["tags"] = cfn_tags("AgentTaskDefinition")  # the fixture shows the first of the three
    response = sandbox.register(params)
    fixture["detail"]["responseElements"] = json.loads(json.dumps(response_body(response), default=str))
    fixture["detail"]["requestParameters"] = params

    assert invoke(handler, fixture)["outcome"] == "remediated"

    [note] = sandbox.inbox()
    source = note.payload["attribution"]
    assert (source["tool"], source["stackName"], source["logicalId"], source["stackArn"]) == (
        "CloudFormation",
        "app-stack",
        "AgentTaskDefinition",
        STACK_ARN,
    )
    text = email(note)
    assert "Source:          CloudFormation stack app-stack, resource AgentTaskDefinition" in text
    assert "CloudTrail invokedBy cloudformation.amazonaws.com" in text
    assert f"Stack:           {STACK_ARN}" in text
    assert "in the template of stack app-stack, resource AgentTaskDefinition" in text
    assert "      - Name: agent\n        Privileged: false" in text  # under the named container only
    assert "Name: app\n" not in text and "Name: log-router" not in text
    assert "The next stack update registers the privileged definition again until the source is fixed." in text
    assert note.payload["severity"] == "MEDIUM" and note.payload["escalation"] == ""


@pytest.mark.parametrize(
    ("user_agent", "invoked_by", "summary", "snippet", "next_deploy"),
    [
        (
            TERRAFORM_AGENT,
            None,
            "Terraform (terraform-provider-aws/5.32.1)",
            '{ name = "app", /* ... */ privileged = false }',
            "terraform apply",
        ),
        (
            CDK_CLI_AGENT,
            None,
            "CDK",
            "taskDefinition.addContainer('app', { /* ... */ privileged: false });",
            "cdk deploy",
        ),
        (
            "cloudformation.amazonaws.com",
            "cloudformation.amazonaws.com",
            "CloudFormation",
            "    - Name: app\n        Privileged: false",
            "stack update",
        ),
    ],
    ids=["terraform-provider-aws", "cdk-cli", "cloudformation-invokedBy"],
)
def test_the_source_from_the_user_agent_or_invoked_by(
    sandbox: Sandbox,
    handler: ModuleType,
    user_agent: str,
    invoked_by: str | None,
    summary: str,
    snippet: str,
    next_deploy: str,
) -> None:
    response = sandbox.register(PRIVILEGED)
    invoke(handler, event(sandbox, PRIVILEGED, response, invoked_by=invoked_by, user_agent=user_agent))
    [note] = sandbox.inbox()
    text = email(note)
    assert f"Source:          {summary} (a hint" in text
    assert snippet in text
    assert f"The next {next_deploy} registers the privileged definition again until the source is fixed." in text
    assert user_agent not in text or user_agent == "cloudformation.amazonaws.com"  # only the product token


def test_a_stack_deployed_through_the_cdk_bootstrap_role_is_the_cdk_app_with_its_stack(
    sandbox: Sandbox, handler: ModuleType
) -> None:
    cdk = sandbox.as_principal(CDK_ROLE_NAME, "AWSCloudFormation")  # registeredBy: that role's session
    params = {**PRIVILEGED, "tags": cfn_tags("AgentTaskDefinition51789D54")}
    response = cdk.register(params)
    role_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{CDK_ROLE_NAME}/AWSCloudFormation"
    invoke(
        handler,
        event(
            sandbox,
            params,
            response,
            user_arn=role_arn,
            invoked_by="cloudformation.amazonaws.com",
            user_agent="cloudformation.amazonaws.com",
        ),
    )
    [note] = sandbox.inbox()
    assert note.payload["attribution"]["tool"] == "CDK"
    assert note.payload["registeredBy"] == role_arn
    text = email(note)
    assert "Source:          CDK stack app-stack, resource AgentTaskDefinition51789D54" in text
    assert "the CDK app that deploys stack app-stack (resource AgentTaskDefinition51789D54 of its template)" in text
    assert "taskDefinition.addContainer('app', { /* ... */ privileged: false });" in text


def test_a_hand_registered_revision_says_so(sandbox: Sandbox, handler: ModuleType) -> None:
    response = sandbox.register(PRIVILEGED)
    invoke(handler, sandbox.event_for(PRIVILEGED, response))  # userAgent aws-cli/2.15.0
    [note] = sandbox.inbox()
    text = email(note)
    assert "Source:          registered by hand (AWS CLI)" in text
    assert "Registered by hand (AWS CLI): register the next revision without privileged" in text
    assert "registers the privileged definition again" not in text  # nothing re-registers it on its own
    assert note.payload["attribution"]["evidence"] == ["user agent aws-cli/2.15.0"]


def history_item(sandbox: Sandbox, family: str) -> dict[str, Any]:
    key = f"ecs-remediate#history#arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/{family}"
    item: dict[str, Any] = sandbox.client("dynamodb").get_item(
        TableName=sandbox.table_name, Key={"id": {"S": key}}, ConsistentRead=True
    )["Item"]
    return item


def test_a_family_re_registered_privileged_three_times_gets_three_copies_and_an_escalated_third_notice(
    sandbox: Sandbox, handler: ModuleType
) -> None:
    registrants = [f"arn:aws:sts::{ACCOUNT}:assumed-role/Deploy/run-{n}" for n in (1, 2, 3)]
    for registrant in registrants:  # a pipeline that still sets privileged: true deploys three times
        response = sandbox.register(PRIVILEGED)
        invoke(handler, event(sandbox, PRIVILEGED, response, user_arn=registrant, user_agent=TERRAFORM_AGENT))

    revisions = [sandbox.describe(arn)["taskDefinition"] for arn in sandbox.active_revisions("web")]
    assert [r["revision"] for r in revisions] == [1, 2, 3, 4, 5, 6]
    assert [bool(privileged_containers(r)) for r in revisions] == [True, False] * 3  # three copies
    notes = sandbox.inbox()
    assert len(notes) == 3
    first, second, third = notes
    for note in (first, second):
        assert note.payload["escalation"] == "" and note.payload["severity"] == "MEDIUM"
        assert "AGAIN" not in note.subject and "ESCALATED" not in email(note)
    assert [len(n.payload["repeats"]) for n in notes] == [1, 2, 3]
    assert third.subject == "[ECS.4] web:5 -> :6 privileged AGAIN (3x): fix the source (app)"
    assert third.payload["severity"] == "HIGH" and third.attributes["severity"] == "HIGH"
    assert "remediated 3 times within 24 hours" in third.payload["escalation"]
    assert [(r["revision"], r["copy"], r["registeredBy"]) for r in third.payload["repeats"]] == [
        ("web:1", "web:2", registrants[0]),
        ("web:3", "web:4", registrants[1]),
        ("web:5", "web:6", registrants[2]),
    ]
    text = email(third)
    assert "the source still sets privileged: true" in text
    for n, registrant in enumerate(registrants):
        assert f"web:{2 * n + 1} -> web:{2 * n + 2}\n    registered by {registrant} [Terraform" in text
    assert '{ name = "app", /* ... */ privileged = false }' in text  # what to change at the source

    # The history is the stack's ledger item, expired by the table's TTL one window after the last entry.
    item = history_item(sandbox, "web")
    assert [e["M"]["sourceArn"]["S"].rsplit("/", 1)[1] for e in item["entries"]["L"]] == ["web:1", "web:3", "web:5"]
    assert abs(int(item["expiration"]["N"]) - (time.time() + 24 * 3600)) < 120


def test_the_threshold_and_window_come_from_the_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = load_handler(sandbox, monkeypatch, ESCALATE_AFTER="2", ESCALATE_WINDOW_HOURS="1")
    for _ in range(2):
        response = sandbox.register(PRIVILEGED)
        invoke(handler, sandbox.event_for(PRIVILEGED, response))
    first, second = sandbox.inbox()
    assert first.payload["escalation"] == ""
    assert "remediated 2 times within 1 hours (escalation from 2)" in second.payload["escalation"]
    assert abs(int(history_item(sandbox, "web")["expiration"]["N"]) - (time.time() + 3600)) < 120


def test_a_retry_of_the_same_event_is_not_counted_twice(sandbox: Sandbox, handler: ModuleType) -> None:
    response = sandbox.register(PRIVILEGED)
    delivered = sandbox.event_for(PRIVILEGED, response)
    for _ in range(3):  # EventBridge delivers at least once
        invoke(handler, delivered)
    # each delivery appends (one UpdateItem), the revision counts once
    entries = history_item(sandbox, "web")["entries"]["L"]
    assert {e["M"]["sourceArn"]["S"] for e in entries} == {response["taskDefinition"]["taskDefinitionArn"]}
    assert len(sandbox.active_revisions("web")) == 2
    [note] = sandbox.inbox()
    assert note.payload["escalation"] == ""


# Rollout and services that belong to a CloudFormation stack -------------------------------------------------


def services(sandbox: Sandbox, privileged_arn: str) -> None:
    ecs = sandbox.client("ecs")
    ecs.create_cluster(clusterName="blue")
    ecs.create_service(
        cluster="blue",
        serviceName="web-stack",
        taskDefinition=privileged_arn,
        desiredCount=1,
        tags=cfn_tags("WebService"),
    )
    ecs.create_service(cluster="blue", serviceName="web-plain", taskDefinition=privileged_arn, desiredCount=1)


def on(sandbox: Sandbox, service: str) -> str:
    [svc] = sandbox.client("ecs").describe_services(cluster="blue", services=[service])["services"]
    return str(svc["taskDefinition"]).rsplit("/", 1)[1]


def test_a_cloudformation_managed_service_is_not_moved_by_default(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, ROLLOUT="true")
    response = sandbox.register(PRIVILEGED)
    services(sandbox, response["taskDefinition"]["taskDefinitionArn"])
    assert invoke(handler, sandbox.event_for(PRIVILEGED, response))["outcome"] == "remediated"

    assert (on(sandbox, "web-plain"), on(sandbox, "web-stack")) == ("web:2", "web:1")
    [note] = sandbox.inbox()
    [left] = note.payload["servicesManual"]
    assert (left["service"], left["step"].split("  #")[0]) == (
        "web-stack",
        "aws cloudformation deploy --stack-name app-stack --template-file fixed.yaml --region us-east-1",
    )
    assert "not moved: it belongs to CloudFormation stack app-stack, resource WebService" in left["note"]
    assert "drift" in left["note"] and "rolloutManaged=true" in left["note"]
    assert [s["service"] for s in note.payload["servicesUpdated"]] == ["web-plain"]
    assert "aws cloudformation deploy --stack-name app-stack" in " ".join(note.payload["nextCommands"])


def test_rollout_managed_moves_it_and_the_notice_says_the_stack_now_has_drift(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_handler(sandbox, monkeypatch, ROLLOUT="true", ROLLOUT_MANAGED="true")
    response = sandbox.register(PRIVILEGED)
    services(sandbox, response["taskDefinition"]["taskDefinitionArn"])
    invoke(handler, sandbox.event_for(PRIVILEGED, response))

    assert (on(sandbox, "web-plain"), on(sandbox, "web-stack")) == ("web:2", "web:2")
    [note] = sandbox.inbox()
    assert note.payload["servicesManual"] == []
    moved = {s["service"]: s for s in note.payload["servicesUpdated"]}
    assert "note" not in moved["web-plain"]
    assert "the stack now has drift" in moved["web-stack"]["note"]
    assert "blue/web-stack: deployment" in email(note) and "the stack now has drift" in email(note)
