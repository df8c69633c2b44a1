"""The demo's organization scene: a hub and two member accounts in two Regions, in the same emulator.

The hub is the demo's account (the management account of an organization created here); the members are created
through Organizations and reached through moto's STS (MOTO_ACCOUNT_ID is never set). The real `lambda_handler`
runs in hub mode (MEMBER_ROLE_NAME set, as the hub stack sets it) and is invoked only when the hub rule's pattern
(infra/event_pattern.py, the same pattern as every member's forwarding rule) matches the member's event, as
EventBridge delivers it (the member's own `account` and `region`). Shown: a member's privileged registration fixed
in that member and Region, a compliant one not delivered, a member naming another member's revision refused, every
account and Region read back before and after, and the notices from the hub's inbox.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from demo.org_sandbox import HUB, MEMBER_ROLE, Organization

REGIONS = ("us-east-1", "eu-west-1")
CHECKOUT = {
    "family": "checkout",
    "containerDefinitions": [
        {"name": "app", "image": "nginx:1.27", "memory": 256, "privileged": True},
        {"name": "metrics", "image": "prom/statsd-exporter", "memory": 64},
    ],
    "tags": [{"key": "team", "value": "payments"}],
}
REPORTS = {"family": "reports", "containerDefinitions": [{"name": "api", "image": "python:3.12", "memory": 128}]}
Matches = Callable[[dict[str, Any], dict[str, Any]], bool]


def run_org_scene(p: Any, endpoint: str, sandbox: Any, matches: Matches) -> list[str]:
    """Play the scene on `p` (demo.printing.Printer) against the emulator at `endpoint`, the hub's resources in
    `sandbox`; returns the problems found (none when it behaves)."""
    started = time.monotonic()
    scene = OrgScene(p, Organization(endpoint_url=endpoint).create(["payments-prod", "analytics-dev"]), matches)
    os.environ["MEMBER_ROLE_NAME"] = MEMBER_ROLE
    import ecs_remediate.functions.handler as module

    try:
        scene.play(importlib.reload(module))  # the handler as the hub stack starts it
    finally:
        del os.environ["MEMBER_ROLE_NAME"]
        importlib.reload(module)
    scene.read_back(sandbox)
    verdict = p.s.bad(f"{len(scene.problems)} problem(s)") if scene.problems else p.s.good("OK")
    p.line(f"  {verdict}: fixed in payments-prod eu-west-1 only; the forged event refused; nothing else changed")
    p.line(p.s.dim(f"  organization scene: {time.monotonic() - started:.1f} s"))
    return scene.problems


class OrgScene:
    def __init__(self, p: Any, org: Organization, matches: Matches) -> None:
        from infra import event_pattern

        self.p, self.org, self.matches = p, org, matches
        self.pattern = {
            "source": event_pattern.SOURCES,
            "detail-type": event_pattern.DETAIL_TYPES,
            "detail": event_pattern.remediation_detail(),
        }
        self.payments, self.analytics = org.accounts
        self.label = {HUB: "hub", self.payments: "payments-prod", self.analytics: "analytics-dev"}
        self.before = {(a, r): set(org.task_definitions(a, r)) for a in self.label for r in REGIONS}
        self.expected = dict(self.before)
        self.assumed: list[str] = []
        self.problems: list[str] = []
        p.field(
            "organization",
            f"hub {HUB} (management); members {self.payments} payments-prod, "
            f"{self.analytics} analytics-dev; Regions {', '.join(REGIONS)}",
        )

    def play(self, handler: ModuleType) -> None:
        org, payments, analytics = self.org, self.payments, self.analytics
        handler.hub_runtime().members.sts.meta.events.register(
            "provide-client-params.sts.AssumeRole", lambda params, **_: self.assumed.append(params["RoleArn"])
        )
        response = org.register(payments, "eu-west-1", CHECKOUT)
        source = response["taskDefinition"]["taskDefinitionArn"]
        fixed = f"{source[:-1]}2"
        self.expected[(payments, "eu-west-1")] = {source, fixed}
        title = "payments-prod, eu-west-1: checkout:1, container app privileged"
        result = self.deliver(handler, title, org.event_for(payments, "eu-west-1", CHECKOUT, response))
        if result is None or result["outcome"] != "remediated" or result.get("new_task_definition_arn") != fixed:
            self.problems.append(f"the member's privileged registration was not fixed in that member: {result}")
        else:
            copy = org.client("ecs", payments, "eu-west-1").describe_task_definition(taskDefinition=fixed)
            self.p.field("new revision", f"{fixed}\nregistered by {copy['taskDefinition']['registeredBy']}")

        response = org.register(analytics, "us-east-1", REPORTS)
        self.expected[(analytics, "us-east-1")] = {response["taskDefinition"]["taskDefinitionArn"]}
        title = "analytics-dev, us-east-1: reports:1, compliant"
        if self.deliver(handler, title, org.event_for(analytics, "us-east-1", REPORTS, response)) is not None:
            self.problems.append("a compliant registration invoked the function")

        named = {"taskDefinition": {"taskDefinitionArn": source}}
        title = "analytics-dev sends an event naming payments-prod's checkout:1"
        result = self.deliver(handler, title, org.event_for(analytics, "eu-west-1", CHECKOUT, named))
        if result is None or not result.get("refused"):
            self.problems.append(f"an event naming another account's revision was not refused: {result}")

    def deliver(self, handler: ModuleType, title: str, event: dict[str, Any]) -> dict[str, Any] | None:
        from demo.sandbox import LambdaContext

        p, s = self.p, self.p.s
        p.line()
        p.line(s.accent(f"-- {title} ").ljust(100, "-"))
        if not self.matches(self.pattern, event):
            p.field("EventBridge", s.good("not matched") + ": the member's rule forwards nothing; no invocation")
            return None
        p.field(
            "EventBridge",
            s.note("MATCHED") + f": forwarded to the hub's bus as sent (account {event['account']}, region "
            f"{event['region']}) -> lambda_handler",
        )
        with contextlib.redirect_stdout(io.StringIO()):  # Powertools' EMF metric lines
            result: dict[str, Any] = handler.lambda_handler(event, LambdaContext())
        p.field("outcome", f"{str(result['outcome']).upper()}: {result.get('reason', '')}"[:300])
        return result

    def read_back(self, sandbox: Any) -> None:
        p = self.p
        p.line()
        accounts = ", ".join(a.split(":")[4] for a in self.assumed) or "none"
        p.field("AssumeRole", f"{len(self.assumed)} call(s): {accounts} (one per account per credential lifetime)")
        p.field("read back", "ACTIVE revisions of every account and Region, against before the scene:")
        for (account, region), was in self.before.items():
            now = set(self.org.task_definitions(account, region))
            added = sorted(arn.rsplit("/", 1)[1] for arn in now - was)
            p.line(
                f"      {self.label[account]:<14} {region:<10} " + ("+ " + ", ".join(added) if added else "unchanged")
            )
            if now != self.expected[(account, region)]:
                self.problems.append(f"{self.label[account]} {region}: {sorted(now)}")
        notes = sandbox.inbox()
        for note in notes:
            p.field("notice", note.subject)
        subjects = sorted(note.subject for note in notes)
        # Subjects name the account by its id (a member's administrator writes its name).
        wanted = sorted(
            (
                f"[ECS.4] {self.analytics}/eu-west-1 checkout:1 remediation FAILED",
                f"[ECS.4] {self.payments}/eu-west-1 checkout:1 -> :2 privileged removed",
            )
        )
        if len(subjects) != len(wanted) or not all(s.startswith(w) for s, w in zip(subjects, wanted, strict=True)):
            self.problems.append(f"expected the fix's and the refusal's notices, got {subjects}")
