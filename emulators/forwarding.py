"""EventBridge delivering a member's event through its forwarding rules, as deployed, to the hub's bus; or, when it
cannot, to the target's dead-letter queue as EventBridge does. moto delivers to another account's bus but neither
enforces that bus's policy nor uses a target's DeadLetterConfig (a missing bus makes the sender's own PutEvents fail
instead), so this module plays that part on moto's state. Used by tests/test_org_forwarding.py.

`forward(org, account, region, event)` reads the member's rules on its default bus and their targets from moto
(list_rules, list_targets_by_rule: what the StackSet deployed), matches the event with LocalStack's rule engine
(emulators/eventbridge.py), and for each event-bus target:
  * the bus does not exist in its account and Region: ERROR_CODE NO_RESOURCE;
  * its policy does not admit the sender: ERROR_CODE NO_PERMISSIONS. Admitted means an Allow of events:PutEvents
    whose principal is `*` with an `aws:PrincipalOrgID` StringEquals naming the sender's organization, or whose
    principal is the sender's account, and no Deny of events:PutEvents for the same; nothing else is evaluated;
  * otherwise the event is put on that bus (PutEvents from the bus's account).
A refused event goes, at once (EventBridge does not retry missing permissions or a missing target), to the queue the
target's DeadLetterConfig names, in the member's account and Region: the event as the body, EventBridge's attributes
RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, RETRY_ATTEMPTS (0). Without a DeadLetterConfig it is dropped.

Where it may differ from AWS:
- the bus policy is judged by the rules above, not by IAM's evaluation: a statement's Resource and every condition
  but `aws:PrincipalOrgID` StringEquals are not read;
- which ERROR_CODE AWS gives a refused cross-account delivery is not documented (its list has NO_PERMISSIONS,
  NO_RESOURCE and CROSS_ACCOUNT_INGESTION_FAILED);
- retried failures (throttling, an outage) and EXHAUSTED_RETRY_CONDITION are not played; the dead-letter queue's own
  policy is not checked (moto does not enforce it);
- a delivered event is put again by moto's PutEvents in the bus's account (source, detail-type and detail kept),
  so its `id`, `time`, `resources` and `account` are the new put's, where EventBridge hands the hub the member's
  event as it was; every target is taken for an event bus.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from emulators.eventbridge import matches

NO_RESOURCE = "NO_RESOURCE"
NO_PERMISSIONS = "NO_PERMISSIONS"


class Organization(Protocol):
    """Clients in the organization's accounts (demo/org_sandbox.py's `Organization` is one)."""

    def hub_client(self, service: str, region: str | None = None) -> Any: ...

    def client(self, service: str, account: str, region: str) -> Any: ...


@dataclass(frozen=True)
class Delivery:
    rule: str  # the rule's ARN
    target: str  # the target bus's ARN
    outcome: str  # delivered | dead-lettered | dropped
    error_code: str = ""


def forward(org: Organization, account: str, region: str, event: dict[str, Any]) -> list[Delivery]:
    """What the member's forwarding rules in `region` do with `event` (delivered where the member's CloudTrail put
    it: its default bus)."""
    events = org.client("events", account, region)
    deliveries = []
    for rule in events.list_rules()["Rules"]:
        if rule.get("State") != "ENABLED" or "EventPattern" not in rule:
            continue
        if not matches(json.loads(rule["EventPattern"]), event):
            continue
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            deliveries.append(_deliver(org, account, region, rule=rule["Arn"], target=target, event=event))
    return deliveries


def _deliver(
    org: Organization, account: str, region: str, *, rule: str, target: dict[str, Any], event: dict[str, Any]
) -> Delivery:
    rule_arn, bus_arn = rule, str(target["Arn"])
    _, _, _, bus_region, bus_account, resource = bus_arn.split(":", 5)
    bus_name = resource.split("/", 1)[1]
    bus_events = _events_in(org, bus_account, bus_region)
    code, message = "", ""
    try:
        described = bus_events.describe_event_bus(Name=bus_name)
    except ClientError as error:
        code, message = NO_RESOURCE, str(error.response.get("Error", {}).get("Message", ""))
    else:
        if not admits(described.get("Policy"), account, organization_id(org)):
            code, message = NO_PERMISSIONS, f"the event bus {bus_arn} does not allow events:PutEvents from {account}"
    if not code:
        bus_events.put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "EventBusName": bus_name,
                }
            ]
        )
        return Delivery(rule_arn, bus_arn, "delivered")
    queue = target.get("DeadLetterConfig", {}).get("Arn")
    if not queue:
        return Delivery(rule_arn, bus_arn, "dropped", code)
    sqs = org.client("sqs", account, region)
    url = sqs.get_queue_url(QueueName=queue.rsplit(":", 1)[1])["QueueUrl"]
    attributes = {
        "RULE_ARN": rule_arn,
        "TARGET_ARN": bus_arn,
        "ERROR_CODE": code,
        "ERROR_MESSAGE": message[:1000] or code,
        "RETRY_ATTEMPTS": "0",
    }
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(event),
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )
    return Delivery(rule_arn, bus_arn, "dead-lettered", code)


def admits(policy: Any, account: str, organization: str) -> bool:
    """The bus policy admits `account` (of `organization`) to put events, by the statement shapes in the module's
    docstring."""
    try:
        statements = json.loads(policy)["Statement"] if policy else []
    except (ValueError, KeyError, TypeError):
        return False
    applies = [s for s in statements if isinstance(s, dict) and _puts(s) and _names(s, account, organization)]
    return any(s.get("Effect") == "Allow" for s in applies) and not any(s.get("Effect") == "Deny" for s in applies)


def _puts(statement: dict[str, Any]) -> bool:
    actions = statement.get("Action", [])
    return bool({"events:PutEvents", "events:*", "*"} & set([actions] if isinstance(actions, str) else actions))


def _names(statement: dict[str, Any], account: str, organization: str) -> bool:
    principal = statement.get("Principal")
    if principal in ("*", {"AWS": "*"}):
        orgs = statement.get("Condition", {}).get("StringEquals", {}).get("aws:PrincipalOrgID")
        return orgs is None or organization in ([orgs] if isinstance(orgs, str) else orgs)
    listed = principal.get("AWS") if isinstance(principal, dict) else principal
    names = [listed] if isinstance(listed, str) else (listed or [])
    return any(name in (account, f"arn:aws:iam::{account}:root") for name in names)


def _events_in(org: Organization, account: str, region: str) -> Any:
    """EventBridge in `account` (the hub's own credentials for the hub, a member's through its admin role)."""
    hub = str(org.hub_client("sts").get_caller_identity()["Account"])
    return org.hub_client("events", region) if account == hub else org.client("events", account, region)


def organization_id(org: Organization) -> str:
    return str(org.hub_client("organizations").describe_organization()["Organization"]["Id"])


__all__ = ["NO_PERMISSIONS", "NO_RESOURCE", "Delivery", "admits", "forward"]
