#!/usr/bin/env python3
"""CDK entry point: reads the context once, validates it into typed settings, builds the stack.

`cdk synth` / `cdk deploy` run this file (see cdk.json). Tests and the demo call `build_app(context)`
to synthesize in-process; the context given there is layered over cdk.json's (the feature flags), as the
CLI would do.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import Annotations
from cdk_nag import AwsSolutionsChecks

from infra import limits
from infra.checkov import CheckovSuppressions
from infra.hub_stack import MEMBER_STACK_SET_ID, HubStack, write_guardrail
from infra.member_stack import MEMBER_STACK_ID, MemberStack, synthesize_member_template
from infra.org_settings import OrgSettings, organization_selected
from infra.settings import (
    NO_RECIPIENTS_WARNING,
    NO_RECIPIENTS_WARNING_ID,
    ContextError,
    StackSettings,
    check_context_keys,
)
from infra.stack import EcsRemediateStack
from infra.sweep_schedule import SweepSettings

ROOT = Path(__file__).resolve().parent
STACK_ID = "EcsRemediate"
HUB_STACK_ID = "EcsRemediateHub"
# Context that makes CDK skip asset bundling (for tests that do not look at the asset's content).
SKIP_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def build_app(context: Mapping[str, Any] | None = None, *, outdir: str | None = None) -> cdk.App:
    """The app with its one stack and the cdk-nag AwsSolutions checks.

    `context=None` reads only what the CDK CLI passes (cdk.json and `-c`); a mapping is layered over
    cdk.json's context for in-process synthesis. Raises ContextError for a bad context value.
    """
    if context is None:
        app = cdk.App(outdir=outdir)
    else:
        app = cdk.App(context={**cdk_json_context(), **context}, outdir=outdir)
    check_context_keys(app.node.get_all_context())  # a typo fails here, naming the nearest key
    settings = StackSettings.from_context(app.node.try_get_context)
    if organization_selected(app.node.try_get_context):
        stack: cdk.Stack = _organization(app, settings)
    else:
        sweep = SweepSettings.from_context(app.node.try_get_context)
        stack = EcsRemediateStack(
            app,
            STACK_ID,
            settings=settings,
            sweep=sweep,
            description="ecs-remediate: registers non-privileged copies of privileged ECS task definitions",
        )
    if not settings.notification_emails:
        Annotations.of(stack).add_warning_v2(NO_RECIPIENTS_WARNING_ID, NO_RECIPIENTS_WARNING)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    cdk.Aspects.of(app).add(CheckovSuppressions())  # each with its reason, in infra/checkov.py
    _refuse_what_aws_would(app, settings)
    return app


def _refuse_what_aws_would(app: cdk.App, settings: StackSettings) -> None:
    """Synthesize now and measure the templates against AWS's size limits (infra/limits.py): a figure over its limit
    raises ContextError naming the key behind it. The assembly is cached, so the caller's app.synth() costs nothing."""
    assembly = app.synth()
    inventory = SweepSettings.from_context(app.node.try_get_context).inventory
    figures = limits.measure_stacks(
        ((stack.stack_name, stack.template) for stack in assembly.stacks),
        enabled=limits.role_options(settings, inventory),
        tag_prefix=settings.tag_prefix,
        member_stacks=(MEMBER_STACK_ID,),
    )
    try:
        limits.check(figures)
    except ContextError:
        # Nothing deployable is left behind (`cdk deploy --app cdk.out` would otherwise take the refused templates).
        for stack in assembly.stacks:
            Path(stack.template_full_path).unlink(missing_ok=True)
        (Path(assembly.directory) / "manifest.json").unlink(missing_ok=True)
        raise


def _organization(app: cdk.App, settings: StackSettings) -> HubStack:
    """`organization=true`: the hub stack (its member StackSet inlined), and with memberTemplate=true the member
    template as a plain stack too (for the management account, where StackSets never deploy)."""
    if settings.security_hub:
        # The default product takes findings only from the account they belong to: each member would import its
        # own through its member role, which is not wired yet (docs/security-hub.md).
        raise ContextError("securityHub: supported by the single-account stack only, not with organization=true yet")
    if settings.tag_exemptions:
        # Members forward registrations and daemon calls, not TagResource: an approver's exemption tags would never
        # reach the hub, and the exemptions would silently not hold. The exemption registry does (ecs-remediate
        # exempt, in the hub account).
        raise ContextError(
            "tagExemptions: supported by the single-account stack only, not with organization=true "
            "(use the exemption registry: ecs-remediate exempt add)"
        )
    org = OrgSettings.from_context(app.node.try_get_context, tag_prefix=settings.tag_prefix)
    member = synthesize_member_template(settings, org, context=app.node.get_all_context())
    # Measured before the hub is built: CDK's own validation of the hub would refuse a body over CloudFormation's
    # limit without naming the key behind it (the other figures are measured after synthesis, _refuse_what_aws_would).
    limits.check([limits.stack_set_body(f"{HUB_STACK_ID}/{MEMBER_STACK_SET_ID}", member.body)])
    hub = HubStack(
        app,
        HUB_STACK_ID,
        settings=settings,
        org=org,
        member_template=member,
        description="ecs-remediate hub: remediates privileged ECS task definitions across an AWS Organization",
    )
    if org.member_template:
        MemberStack(app, MEMBER_STACK_ID, settings=settings, org=org)
    if org.guardrail == "print":
        path = write_guardrail(org, settings.tag_prefix, app.outdir)
        print(f"ecs-remediate: guardrail SCP written to {path}", file=sys.stderr)
    return hub


def hub_of(app: cdk.App) -> HubStack:
    stack = app.node.find_child(HUB_STACK_ID)
    assert isinstance(stack, HubStack)
    return stack


def stack_of(app: cdk.App) -> EcsRemediateStack:
    stack = app.node.find_child(STACK_ID)
    assert isinstance(stack, EcsRemediateStack)
    return stack


def main() -> int:
    try:
        app = build_app()
    except ContextError as error:
        print(f"ecs-remediate: invalid CDK context: {error}", file=sys.stderr)
        return 2
    app.synth()  # prints the stacks' warnings (cdk.json: annotationsInValidationReport), the missing emails included
    return 0


if __name__ == "__main__":
    sys.exit(main())
