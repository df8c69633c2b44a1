"""The stack as synthesized: its template and the event patterns of its rules, read from the CDK app in-process
(asset bundling skipped) and resolved as CloudFormation would resolve them when deployed, so callers test what would
be deployed, not a copy of it. Matching an event against a pattern is emulators/eventbridge.py."""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The demo's inbox is an SQS queue on the topic; an address in the synthesized stack only keeps synth's "nobody will
# be notified" warning out of the demo's output.
SYNTH_RECIPIENT = {"notificationEmails": "secops@example.com"}


def synthesized_template() -> dict[str, Any]:
    """The stack's CloudFormation template, default context, bundling skipped (a fresh copy)."""
    return copy.deepcopy(_synthesized()[0])


def synthesized_rule_pattern(account: str = "123456789012") -> dict[str, Any]:
    """The EventPattern of the rule that invokes the remediation function, as synthesized and as CloudFormation
    resolves it when deployed in `account` (the pattern names the stack's own account)."""
    template, rule_id, _ = _synthesized()
    pattern = template["Resources"][rule_id]["Properties"]["EventPattern"]
    return resolve_pseudo_parameters(
        copy.deepcopy(json.loads(pattern) if isinstance(pattern, str) else pattern), account
    )


def resolve_pseudo_parameters(value: Any, account: str) -> Any:
    """{"Ref": "AWS::AccountId"} replaced by `account`, at any depth (what CloudFormation does at deploy)."""
    if value == {"Ref": "AWS::AccountId"}:
        return account
    if isinstance(value, dict):
        return {k: resolve_pseudo_parameters(v, account) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_pseudo_parameters(v, account) for v in value]
    return value


def synthesized_daemon_rule_pattern(account: str = "123456789012") -> dict[str, Any]:
    """The daemon rule's EventPattern (infra/daemons.py) from the same default synthesis."""
    template, _, rule_id = _synthesized()
    pattern = template["Resources"][rule_id]["Properties"]["EventPattern"]
    return resolve_pseudo_parameters(
        copy.deepcopy(json.loads(pattern) if isinstance(pattern, str) else pattern), account
    )


@cache
def _synthesized() -> tuple[dict[str, Any], str, str]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from app import SKIP_BUNDLING, build_app, stack_of

    with tempfile.TemporaryDirectory(prefix="ecs-remediate-synth-") as outdir:
        app = build_app({**SKIP_BUNDLING, **SYNTH_RECIPIENT}, outdir=outdir)
        stack = stack_of(app)
        rule_id = stack.resolve(stack.remediator.rule.node.default_child.logical_id)  # type: ignore[union-attr]
        daemon_rule_id = stack.resolve(stack.daemons.rule.node.default_child.logical_id)  # type: ignore[union-attr]
        template = app.synth().get_stack_by_name(stack.stack_name).template
    return template, str(rule_id), str(daemon_rule_id)


def synthesized_daemon_rule_patterns(account: str = "123456789012") -> tuple[dict[str, Any], dict[str, Any]]:
    """(the daemon rule's pattern, the daemon deployment-outcome rule's pattern), as synthesized with daemon rollout
    on (the second rule exists only then) and resolved for `account`."""
    template, rule_ids = _synthesized_daemon_rules()
    patterns = []
    for rule_id in rule_ids:
        pattern = template["Resources"][rule_id]["Properties"]["EventPattern"]
        patterns.append(
            resolve_pseudo_parameters(
                copy.deepcopy(json.loads(pattern) if isinstance(pattern, str) else pattern), account
            )
        )
    return patterns[0], patterns[1]


@cache
def _synthesized_daemon_rules() -> tuple[dict[str, Any], tuple[str, str]]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from app import SKIP_BUNDLING, build_app, stack_of

    with tempfile.TemporaryDirectory(prefix="ecs-remediate-synth-") as outdir:
        app = build_app({**SKIP_BUNDLING, **SYNTH_RECIPIENT, "daemonRollout": "true"}, outdir=outdir)
        stack = stack_of(app)
        rules = (stack.daemons.rule, stack.daemons.deployment_rule)
        ids = tuple(str(stack.resolve(rule.node.default_child.logical_id)) for rule in rules if rule is not None)  # type: ignore[union-attr]
        template = app.synth().get_stack_by_name(stack.stack_name).template
    assert len(ids) == 2
    return template, (ids[0], ids[1])
