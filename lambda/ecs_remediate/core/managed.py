"""Pure: rollout and services that belong to a CloudFormation stack (issue 15).

UpdateService on a stack's service puts it out of step with its template (drift): the stack still names the
privileged revision, and its next update moves the service back. So rollout leaves such a service alone by default
and says why and what to change; `rolloutManaged=true` (ROLLOUT_MANAGED) moves it anyway, and the notice says the
stack now has drift. A service is stack-managed when its `aws:cloudformation:*` tags say so: only AWS sets `aws:`
tags, so a developer cannot make a service look managed (nor unmanaged).
"""

from __future__ import annotations

import shlex

from .attribution import CloudFormationStack
from .services import Service


def moves(service: Service, rollout_managed: bool) -> bool:
    """Whether rollout may move `service` (an ECS-controlled one) onto the fixed copy."""
    return service.stack is None or rollout_managed


def _stack(stack: CloudFormationStack) -> str:
    resource = f", resource {stack.logical_id}" if stack.logical_id else ""
    return f"CloudFormation stack {stack.name}{resource}"


def not_moved_note(stack: CloudFormationStack, rollout: bool) -> str:
    """Why a stack's service stays on the privileged revision, and the drift moving it would create."""
    why = "not moved: it belongs to " + _stack(stack)
    drift = (
        "; UpdateService would give the stack drift (its template still names the privileged revision, and the "
        "next stack update moves the service back); fix Privileged in the template and update the stack"
    )
    anyway = ", or deploy with rolloutManaged=true to move it anyway" if rollout else ""
    return why + drift + anyway


def moved_note(stack: CloudFormationStack) -> str:
    """For a stack's service that rollout moved (rolloutManaged=true)."""
    return (
        f"moved although it belongs to {_stack(stack)} (rolloutManaged=true): the stack now has drift; its next "
        "update moves the service back to the template's task definition until Privileged is fixed in the template"
    )


def stack_step(stack: CloudFormationStack, region: str) -> str:
    """The person's step for a stack's service: update the stack from its fixed template (a runnable line)."""
    region_flag = f" --region {region}" if region else ""
    return (
        f"aws cloudformation deploy --stack-name {shlex.quote(stack.name)} --template-file fixed.yaml{region_flag}"
        "  # after: ecs-remediate fix TEMPLATE > fixed.yaml"
    )
