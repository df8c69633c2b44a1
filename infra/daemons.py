"""ECS Managed Daemons: the rules that send daemon events to the remediation function (its IAM statements are in
infra/daemon_iam.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_events as events
from constructs import Construct

from . import event_pattern
from .remediator import Remediator
from .settings import StackSettings


@dataclass(frozen=True)
class DaemonRule:
    """One daemon rule: where it is built (`construct_id`), what it matches, and its description on the function's
    bus and on a member's default bus (which forwards it to the hub's bus, infra/member_stack.py)."""

    construct_id: str
    detail: dict[str, Any]
    detail_type: tuple[str, ...]
    description: str
    forwarded: str


def daemon_rules(settings: StackSettings) -> list[DaemonRule]:
    """The daemon rule and, with daemon rollout in remediate mode, the deployment-outcome rule: one definition for the
    single-account stack, the hub's bus and the members' forwarding rules."""
    rules = [
        DaemonRule(
            "PrivilegedDaemonRule",
            event_pattern.daemon_detail(),
            tuple(event_pattern.DETAIL_TYPES),
            description="RegisterDaemonTaskDefinition calls (CloudTrail) with a privileged container, without "
            "request parameters or truncated by CloudTrail, and CreateDaemon/UpdateDaemon calls, invoke the "
            "ecs-remediate function",
            forwarded="RegisterDaemonTaskDefinition calls (CloudTrail) with a privileged container, without "
            "request parameters or truncated by CloudTrail, and CreateDaemon/UpdateDaemon calls, go to the "
            "ecs-remediate hub",
        )
    ]
    if settings.remediates and settings.daemon_rollout:
        rules.append(
            DaemonRule(
                "DaemonDeploymentOutcomeRule",
                event_pattern.daemon_deployment_detail(),
                tuple(event_pattern.DAEMON_DEPLOYMENT_DETAIL_TYPES),
                description="ECS Daemon Deployment State Change outcomes (succeeded, stopped, rolled back) invoke the "
                "ecs-remediate function, which reports those of the deployments it started",
                forwarded="ECS Daemon Deployment State Change outcomes (succeeded, stopped, rolled back) go to the "
                "ecs-remediate hub, which reports those of the deployments it started",
            )
        )
    return rules


class DaemonRules(Construct):
    """The daemon rules (`daemon_rules`); both invoke the remediation function, failures to its dead-letter queue.
    `on_bus=False` (the single-account stack): this account's default bus, this account's events only; `on_bus=True`
    (the hub): the hub's bus, where the members' forwarding rules put their daemon events."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        remediator: Remediator,
        settings: StackSettings,
        on_bus: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        built = [
            remediator.add_rule(
                self,
                rule.construct_id,
                description=rule.description,
                detail=rule.detail,
                detail_type=rule.detail_type,
                on_bus=on_bus,
            )
            for rule in daemon_rules(settings)
        ]
        self.rule: events.Rule = built[0]
        self.deployment_rule: events.Rule | None = built[1] if len(built) > 1 else None
