"""The hub's organization-sweep state machine, as synthesized, run by moto's Step Functions (ASL executed) with
the Lambda tasks calling our real handlers in this process. Used by tests/test_org_sweep_sfn.py and
bench/org_sweep.py.

  * `SynthesizedSweep.build()` synthesizes the hub stack with sweepSchedule (CDK, once) and keeps the state machine's
    DefinitionString and the two functions' handler and environment from the template.
  * `machine.definition(names)` / `machine.environment(names)` resolve the template's Ref / Fn::GetAtt / Fn::Join with
    the emulator's names (table, topic, bucket, function ARNs). One textual change, stated: moto 5.2.5's ASL grammar
    reads ToleratedFailurePercentage only as a decimal (`100` is a parse error, `100.0` is the same number), and
    moto ignores that field anyway ("no effect on the program evaluation"); the Catch is what keeps items from failing.
  * `patch_lambda(handlers)` makes moto's Docker-free Lambda backend call `handlers[function name](event, context)`
    and answer as Lambda does: the JSON result, or FunctionError "Unhandled" with {"errorType", "errorMessage"}.
  * `run(sfn, arn, name)` starts an execution with an explicit name and waits for its end.

Tasks reach AWS as moto's default account (123456789012): the hub is that account here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from demo.sandbox import ACCOUNT, REGION, LambdaContext

ITEM_FUNCTION = "ecs-remediate-org-sweep-item"
CONTROL_FUNCTION = "ecs-remediate-org-sweep-control"
ITEM_HANDLER = "ecs_remediate.functions.org_sweep.item_handler"
CONTROL_HANDLER = "ecs_remediate.functions.org_sweep.control_handler"
PLACEHOLDER_OU = "ou-ab12-11111111"
HUB_CONTEXT: dict[str, Any] = {
    "organization": "true",
    "organizationId": "o-abcdefghij",
    "targetOus": PLACEHOLDER_OU,
    "regions": "us-east-1,eu-west-1",
    "sweepSchedule": "rate(1 day)",
    "notificationEmails": "secops@example.com",  # keeps synth's "nobody will be notified" warning out of the output
}

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


@dataclass
class Names:
    """The emulator's names for the template's resources."""

    bucket: str
    table: str
    exemptions_table: str
    topic_arn: str


@dataclass
class SynthesizedSweep:
    template: dict[str, Any]
    machine_id: str
    functions: dict[str, dict[str, Any]]  # handler -> the function's Properties

    @classmethod
    def build(cls, context: Mapping[str, Any] | None = None, outdir: str | None = None) -> SynthesizedSweep:
        from app import SKIP_BUNDLING, build_app, hub_of

        app = build_app({**SKIP_BUNDLING, **HUB_CONTEXT, **(context or {})}, outdir=outdir)
        template = app.synth().get_stack_by_name(hub_of(app).stack_name).template
        resources = template["Resources"]
        (machine_id,) = [k for k, v in resources.items() if v["Type"] == "AWS::StepFunctions::StateMachine"]
        functions = {
            v["Properties"]["Handler"]: v["Properties"]
            for v in resources.values()
            if v["Type"] == "AWS::Lambda::Function"
            and v["Properties"].get("Handler") in (ITEM_HANDLER, CONTROL_HANDLER)
        }
        return cls(template, machine_id, functions)

    def _refs(self, names: Names) -> dict[str, str]:
        refs = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        for logical_id, resource in self.template["Resources"].items():
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind == "AWS::S3::Bucket":
                refs[logical_id] = names.bucket
            elif kind == "AWS::SNS::Topic":
                refs[logical_id] = names.topic_arn
            elif kind == "AWS::IAM::Role":
                refs[logical_id] = f"arn:aws:iam::{ACCOUNT}:role/{logical_id}"
            elif kind == "AWS::DynamoDB::Table":
                key = props["KeySchema"][0]["AttributeName"]
                refs[logical_id] = names.table if key == "id" else names.exemptions_table
            elif kind == "AWS::SQS::Queue":  # the function's event queue (QUEUE_URL); Ref is the URL, Arn the ARN
                refs[logical_id] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{logical_id}"
                refs[f"{logical_id}.Arn"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical_id}"
            elif kind == "AWS::Lambda::Function" and props.get("Handler") == ITEM_HANDLER:
                refs[logical_id] = function_arn(ITEM_FUNCTION)
            elif kind == "AWS::Lambda::Function" and props.get("Handler") == CONTROL_HANDLER:
                refs[logical_id] = function_arn(CONTROL_FUNCTION)
        return refs

    def resolve(self, value: Any, names: Names) -> Any:
        refs = self._refs(names)

        def walk(node: Any) -> Any:
            if isinstance(node, dict) and len(node) == 1:
                ((key, arg),) = node.items()
                if key == "Ref":
                    return refs[arg]
                if key == "Fn::GetAtt":
                    return refs.get(f"{arg[0]}.{arg[1]}", refs[arg[0]])
                if key == "Fn::Join":
                    return arg[0].join(str(walk(part)) for part in arg[1])
            if isinstance(node, dict):
                return {k: walk(v) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(v) for v in node]
            return node

        return walk(value)

    def definition(self, names: Names) -> str:
        text = str(self.resolve(self.template["Resources"][self.machine_id]["Properties"]["DefinitionString"], names))
        assert '"ToleratedFailurePercentage":100,' in text
        return text.replace('"ToleratedFailurePercentage":100,', '"ToleratedFailurePercentage":100.0,')

    def environment(self, handler: str, names: Names) -> dict[str, str]:
        variables = self.functions[handler]["Environment"]["Variables"]
        return {k: str(v) for k, v in self.resolve(variables, names).items()}

    def definition_json(self, names: Names) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.definition(names))
        return parsed


def patch_lambda(monkeypatch: Any, handlers: Mapping[str, Handler]) -> list[tuple[str, dict[str, Any]]]:
    """moto's Docker-free Lambda calls our handlers in this process; returns the (function, event) calls made."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(_backend: Any, function_name: str, _qualifier: Any, body: Any, _headers: Any, response: Any) -> bytes:
        name = function_name.rsplit(":", 1)[-1]
        event = json.loads(body or "{}")
        calls.append((name, event))
        try:
            result = handlers[name](event, LambdaContext())
        except Exception as error:  # noqa: BLE001 - as Lambda's Python runtime reports any unhandled error
            response["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
        return json.dumps(result).encode()

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    return calls


def run(sfn: Any, machine_arn: str, name: str, timeout: float = 1800.0) -> dict[str, Any]:
    """Start an execution named `name` and wait for it to end; its describe_execution."""
    execution = sfn.start_execution(stateMachineArn=machine_arn, name=name, input="{}")["executionArn"]
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.2)


__all__ = [
    "CONTROL_FUNCTION",
    "CONTROL_HANDLER",
    "HUB_CONTEXT",
    "ITEM_FUNCTION",
    "ITEM_HANDLER",
    "Names",
    "SynthesizedSweep",
    "function_arn",
    "patch_lambda",
    "run",
]
