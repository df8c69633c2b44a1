"""The deployed stack, stood in for in the emulator: what `ecs-remediate verify` proves against in the tests and the
demo, built from the synthesized template rather than by hand.

`deploy` turns the template into one that moto's CloudFormation can create, and creates it: the DynamoDB tables, the
SNS topic, the SQS queues, the event buses and the rules with their synthesized patterns, states and targets are moto's
own, and the stack's outputs are the template's own outputs, resolved by moto. What moto cannot run is left out and
named by the literal a deployed stack would give it: the Lambda functions (their ARN is the rules' target), the roles,
the log group, the alarms, the KMS key and the policies. The function's environment is the template's, resolved
against what moto created, so the real handler runs with the configuration the stack would give it.

`start` is the stack's delivery: a thread that takes each registration from the CloudTrail stand-in
(emulators/trail.py), builds the event CloudTrail would deliver, reads each of the stack's rules from EventBridge as it
is now (its state and pattern: a disabled rule delivers nothing), matches with LocalStack's rule engine
(emulators/eventbridge.py) and hands a matched event to the real handler, as the rule's target: the function itself
(`lambda_handler`), or an SQS queue drained as Lambda's event source mapping would (`queue_handler`). Where it differs
from AWS: CloudTrail's minutes are `delay` seconds here; Lambda's retries and the dead-letter queue are not played (an
exception is kept in `failures`); in an organization the members' forwarding rules (the StackSet's) are not deployed: a
member's call is put on the hub's bus as a forwarding rule with the same pattern would put it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3

from demo.sandbox import ACCOUNT, REGION, LambdaContext, Sandbox
from emulators.eventbridge import matches
from emulators.trail import Call, Trail

# Properties moto's CloudFormation is given, per kept resource type (encryption, policies and PITR left out).
KEPT: dict[str, tuple[str, ...]] = {
    "AWS::DynamoDB::Table": ("KeySchema", "AttributeDefinitions", "BillingMode"),
    "AWS::SNS::Topic": ("DisplayName",),
    "AWS::SQS::Queue": ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy", "DelaySeconds"),
    "AWS::Events::EventBus": ("Name",),
    "AWS::Events::Rule": ("EventPattern", "State", "Description", "EventBusName", "Targets"),
}


@dataclass
class StandIn:
    """The stack `name` from `template`, in the emulator at `endpoint_url` (moto's default account)."""

    template: dict[str, Any]
    endpoint_url: str | None = None
    name: str = "EcsRemediate"
    region: str = REGION
    account: str = ACCOUNT
    delay: float = 0.0  # seconds between a registration and its delivery (CloudTrail's minutes, shortened)
    environment: dict[str, str] = field(default_factory=dict)  # the remediation function's, resolved
    function_arn: str = ""
    failures: list[str] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)  # the events handed to the function
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _trail: Trail | None = None

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)

    # --- deploy ---------------------------------------------------------------------------------------------------

    def deploy(self) -> StandIn:
        resources = self.template["Resources"]
        literals = {logical: self._literal(logical, r["Type"]) for logical, r in resources.items() if not _kept(r)}
        kept = {
            logical: {
                "Type": r["Type"],
                "Properties": {k: v for k, v in (r.get("Properties") or {}).items() if k in KEPT[r["Type"]]},
            }
            for logical, r in resources.items()
            if _kept(r)
        }
        for resource in kept.values():
            if resource["Type"] == "AWS::Events::Rule":
                properties = resource["Properties"]
                properties["Targets"] = [{"Id": t["Id"], "Arn": t["Arn"]} for t in properties.get("Targets", [])]
                bus = properties.get("EventBusName")
                if isinstance(bus, dict) and set(bus) == {"Ref"}:  # moto 5.2.5's Ref of a bus is not its name
                    properties["EventBusName"] = resources[bus["Ref"]]["Properties"]["Name"]
                    resource["DependsOn"] = [bus["Ref"]]
        body = {"Resources": _substitute(kept, literals), "Outputs": _substitute(self.template["Outputs"], literals)}
        self.client("cloudformation").create_stack(StackName=self.name, TemplateBody=json.dumps(body))
        physical = self._physical()
        function = self._remediation_function(resources)
        self.function_arn = str(literals[function]["Fn::GetAtt"]["Arn"])
        variables = resources[function]["Properties"].get("Environment", {}).get("Variables", {})
        self.environment = {k: self._resolve(v, literals, physical) for k, v in variables.items()}
        return self

    def _literal(self, logical: str, kind: str) -> dict[str, Any]:
        """What a deployed stack would name a resource moto does not create, for Ref and Fn::GetAtt."""
        name = f"{self.name}-{logical}"[:64]
        arns = {
            "AWS::Lambda::Function": f"arn:aws:lambda:{self.region}:{self.account}:function:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{self.account}:role/{name}",
        }
        ref = f"/aws/lambda/{name}" if kind == "AWS::Logs::LogGroup" else name
        return {"Ref": ref, "Fn::GetAtt": {"Arn": arns.get(kind, f"arn:aws:cloudformation:::stand-in/{logical}")}}

    def _remediation_function(self, resources: dict[str, Any]) -> str:
        """The function the remediation rule's target names (directly, or through the queue it drains)."""
        for logical, resource in resources.items():
            if (
                resource["Type"] == "AWS::Lambda::Function"
                and str(resource["Properties"].get("Handler", "")).startswith("ecs_remediate.functions.handler.")
                and "sweep" not in str(resource["Properties"].get("Handler"))
            ):
                return logical
        raise AssertionError("the template has no remediation function")

    def _resolve(self, value: Any, literals: dict[str, Any], physical: dict[str, str]) -> str:
        if isinstance(value, str):
            return value
        if "Ref" in value:
            ref = value["Ref"]
            pseudo = {"AWS::AccountId": self.account, "AWS::Region": self.region, "AWS::Partition": "aws"}
            if ref in pseudo:
                return pseudo[ref]
            return str(literals[ref]["Ref"]) if ref in literals else physical[ref]
        if "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            if logical in literals:
                return str(literals[logical]["Fn::GetAtt"][attribute])
            if attribute == "Arn" and physical[logical].startswith("https://"):  # a queue URL
                return str(
                    self.client("sqs").get_queue_attributes(QueueUrl=physical[logical], AttributeNames=["QueueArn"])[
                        "Attributes"
                    ]["QueueArn"]
                )
            if attribute == "Arn" and physical[logical].startswith("arn:"):
                return physical[logical]
            raise AssertionError(f"Fn::GetAtt {logical}.{attribute} is not resolved by the stand-in")
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(self._resolve(part, literals, physical) for part in parts)
        raise AssertionError(f"an intrinsic the stand-in does not resolve: {json.dumps(value)[:200]}")

    # --- what an operator might change after deploying ------------------------------------------------------------

    def rules(self) -> list[dict[str, Any]]:
        """The stack's rules as EventBridge holds them now (name, bus, state, pattern)."""
        events = self.client("events")
        found = []
        for resource in self.client("cloudformation").describe_stack_resources(StackName=self.name)["StackResources"]:
            if resource["ResourceType"] != "AWS::Events::Rule":
                continue
            logical = resource["LogicalResourceId"]
            bus = self.template["Resources"][logical]["Properties"].get("EventBusName")
            if isinstance(bus, dict) and set(bus) == {"Ref"}:
                bus = self.template["Resources"][bus["Ref"]]["Properties"]["Name"]
            bus_name = self._bus_name(bus)
            rule = events.describe_rule(
                Name=resource["PhysicalResourceId"], **({"EventBusName": bus_name} if bus_name else {})
            )
            found.append(rule)
        return found

    def _bus_name(self, bus: Any) -> str | None:
        if bus is None:
            return None
        return str(bus)

    def _physical(self) -> dict[str, str]:
        resources = self.client("cloudformation").describe_stack_resources(StackName=self.name)["StackResources"]
        return {r["LogicalResourceId"]: str(r.get("PhysicalResourceId", "")) for r in resources}

    def set_rule_state(self, rule_name: str, state: str) -> None:
        """What `aws events disable-rule` / `enable-rule` does to a deployed stack's rule."""
        events = self.client("events")
        for rule in self.rules():
            if rule["Name"] == rule_name:
                bus = {"EventBusName": rule["EventBusName"]} if rule.get("EventBusName", "default") != "default" else {}
                (events.disable_rule if state == "DISABLED" else events.enable_rule)(Name=rule_name, **bus)
                return
        raise AssertionError(f"no rule {rule_name} in the stand-in")

    # --- delivery -------------------------------------------------------------------------------------------------

    def start(self, handler: ModuleType) -> StandIn:
        """Deliver what the rules match to `handler` (the real ecs_remediate.functions.handler, loaded with
        `environment`)."""
        self._trail = Trail()
        self._stop.clear()
        self._thread = threading.Thread(target=self._deliver, args=(handler,), name="stand-in-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._trail is not None:
            self._trail.close()

    def __enter__(self) -> StandIn:
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    def _deliver(self, handler: ModuleType) -> None:
        assert self._trail is not None
        while not self._stop.is_set():
            try:
                call = self._trail.calls.get(timeout=0.05)
            except Exception:  # noqa: BLE001 - queue.Empty: look at the stop flag again
                continue
            if self.delay:
                self._stop.wait(self.delay)
            try:
                self._one(handler, call)
            except Exception as error:  # noqa: BLE001 - kept for the test to see; the loop goes on
                self.failures.append(f"{type(error).__name__}: {error}")

    def _one(self, handler: ModuleType, call: Call) -> None:
        event = Sandbox(region=call.region).event_for(
            call.params, call.response, user_arn=call.principal, account=call.account
        )
        for rule in self.rules():
            if rule.get("State") != "ENABLED" or "EventPattern" not in rule:
                continue
            if not matches(json.loads(rule["EventPattern"]), event):
                continue
            bus = {"EventBusName": rule["EventBusName"]} if rule.get("EventBusName", "default") != "default" else {}
            for target in self.client("events").list_targets_by_rule(Rule=rule["Name"], **bus)["Targets"]:
                self._invoke(handler, target["Arn"], event)

    def _invoke(self, handler: ModuleType, arn: str, event: dict[str, Any]) -> None:
        self.delivered.append(event)
        with contextlib.redirect_stdout(io.StringIO()):  # Powertools' EMF metric lines
            if arn == self.function_arn:
                handler.lambda_handler(event, LambdaContext())
            elif arn.startswith("arn:aws:sqs:"):  # the queue in front of the function, drained as Lambda would
                self._through_queue(handler, arn, event)
            else:
                raise AssertionError(f"a rule target the stand-in does not deliver to: {arn}")

    def _through_queue(self, handler: ModuleType, arn: str, event: dict[str, Any]) -> None:
        from emulators.event_queue import (
            EventQueue,  # the delivery queue's event source mapping (issue 20's burst work)
        )

        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        queue = EventQueue(sqs, queue_url=url, queue_arn=arn, region=self.region)
        queue.put(event)
        queue.drain(handler.queue_handler, LambdaContext())


def with_mode(template: dict[str, Any], mode: str) -> dict[str, Any]:
    """The template as `-c mode=MODE` would give it for what verify reads and the function runs with: the functions'
    MODE variable (infra/remediator.py) and the Mode output (infra/outputs.py), both settings.mode. (Not the IAM: the
    stand-in has none.)"""
    changed = copy.deepcopy(template)
    for resource in changed["Resources"].values():
        variables = (resource.get("Properties") or {}).get("Environment", {}).get("Variables", {})
        if "MODE" in variables:
            variables["MODE"] = mode
    changed["Outputs"]["Mode"]["Value"] = mode
    return changed


def _kept(resource: dict[str, Any]) -> bool:
    if resource["Type"] not in KEPT:
        return False
    return resource["Type"] != "AWS::Events::Rule" or "EventPattern" in (resource.get("Properties") or {})


def _substitute(value: Any, literals: dict[str, Any]) -> Any:
    """Ref and Fn::GetAtt of the resources left out, replaced by their literals; the rest left to moto."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in literals:
            return literals[value["Ref"]]["Ref"]
        if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][0] in literals:
            return literals[value["Fn::GetAtt"][0]]["Fn::GetAtt"].get(value["Fn::GetAtt"][1], "stand-in")
        return {k: _substitute(v, literals) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, literals) for v in value]
    return value


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll `condition` until true or `timeout` seconds; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


__all__ = ["StandIn", "wait_for", "with_mode"]
