"""The EventBridge pattern that invokes the remediation function.

Only successful RegisterTaskDefinition calls reach the function, and of those only the ones that need it:
  * a container with `privileged: true`. EventBridge matches a field inside an array of objects when any
    element matches, so this fires whether the privileged container is the first, a middle or the last.
    A compliant registration, the function's own fixed copy included, never invokes it: the copy cannot
    trigger a loop (the function would also find it compliant, and it carries the marker tag);
  * or an event that carries no request parameters (CloudTrail may omit them), detected through the
    `family` leaf, which every RegisterTaskDefinition request has. `exists: false` is applied to a leaf on
    purpose: EventBridge evaluates `exists` on leaves only, so `{"requestParameters": [{"exists": false}]}`
    would also match every event whose `requestParameters` is an object. Such an event is never silently
    lost: the function describes the revision (or logs and counts a skip), and the sweep re-checks it;
  * or a truncated one: CloudTrail cuts a field over its maximum size (`requestParameters`: 100 KB) and marks
    the record with `omitted: true` (CloudTrail record contents). A large task definition can then lose its
    container list, and no privileged flag is left to match. Matched three ways, since where the marker sits is
    not documented: the container list has no `name` leaf (ECS refuses a container without one), or `omitted`
    is true in `requestParameters` or in the record. The function describes the revision, as for any event.
    The function's own copy of such a task definition is as large, so its registration is truncated too: it
    invokes the function once, which finds it compliant and writes nothing (no loop).
Failed calls (`errorCode` present) are dropped by the pattern: nothing was registered.
"""

from __future__ import annotations

from typing import Any

from ecs_remediate.core.events import DETAIL_TYPE, EVENT_NAME, EVENT_SOURCE, SOURCE
from ecs_remediate.daemons import events as daemon_events

PRIVILEGED_CONTAINER: dict[str, Any] = {"requestParameters": {"containerDefinitions": {"privileged": [True]}}}
NO_REQUEST_PARAMETERS: dict[str, Any] = {"requestParameters": {"family": [{"exists": False}]}}
TRUNCATED_REQUEST: tuple[dict[str, Any], ...] = (
    {"requestParameters": {"containerDefinitions": {"name": [{"exists": False}]}}},
    {"requestParameters": {"omitted": [True]}},
    {"omitted": [True]},
)


def remediation_detail() -> dict[str, Any]:
    """The `detail` part of the pattern (source and detail-type are set on the rule beside it)."""
    return {
        "eventSource": [EVENT_SOURCE],
        "eventName": [EVENT_NAME],
        "errorCode": [{"exists": False}],
        "$or": [PRIVILEGED_CONTAINER, NO_REQUEST_PARAMETERS, *TRUNCATED_REQUEST],
    }


SOURCES = [SOURCE]
DETAIL_TYPES = [DETAIL_TYPE]


def exemption_tags_detail(tag_prefix: str) -> dict[str, Any]:
    """The `detail` of the TagResource calls that set an exemption tag (only with tagExemptions): the function
    records an approver's (remediation/tag_approvals.py). EventBridge matches `key` inside the array of tag objects."""
    return {
        "eventSource": [EVENT_SOURCE],
        "eventName": ["TagResource"],
        "errorCode": [{"exists": False}],
        "requestParameters": {"tags": {"key": [{"prefix": f"{tag_prefix}:exempt-"}]}},
    }


# --- ECS Managed Daemons (daemons/events.py, docs/daemons.md) -------------------------------------------------------
#
# A second rule, so the task-definition rule's pattern above stays as it is. It matches successful
#   * RegisterDaemonTaskDefinition calls with a privileged container (the same array semantics), without request
#     parameters (the `family` leaf, as above), or truncated by CloudTrail (as above): a compliant daemon task
#     definition, the function's own fixed copy included, never invokes the function (unless truncated: once);
#   * CreateDaemon and UpdateDaemon calls. Their events name a daemon task definition but carry none of its content,
#     so no pattern can tell a privileged one: each invokes the function, which describes the revision and does
#     nothing for a compliant one (no write, no notice). The stack's own UpdateDaemon (daemon rollout) points at a
#     verified, compliant copy, so it ends there: one no-op invocation, never a loop.
# The deployment rule matches ECS's own `ECS Daemon Deployment State Change` outcomes; the function reports only on
# the deployments its ledger recorded starting.

DAEMON_PRIVILEGED_REGISTRATION: dict[str, Any] = {
    "eventName": [daemon_events.REGISTER_DAEMON_TASK_DEFINITION],
    **PRIVILEGED_CONTAINER,
}
DAEMON_REGISTRATION_WITHOUT_REQUEST: dict[str, Any] = {
    "eventName": [daemon_events.REGISTER_DAEMON_TASK_DEFINITION],
    **NO_REQUEST_PARAMETERS,
}
DAEMON_TRUNCATED_REGISTRATIONS: tuple[dict[str, Any], ...] = tuple(
    {"eventName": [daemon_events.REGISTER_DAEMON_TASK_DEFINITION], **truncated} for truncated in TRUNCATED_REQUEST
)
DAEMON_ASSIGNMENTS: dict[str, Any] = {"eventName": [daemon_events.CREATE_DAEMON, daemon_events.UPDATE_DAEMON]}


def daemon_detail() -> dict[str, Any]:
    """The `detail` of the daemon rule (source and detail-type as the task-definition rule's)."""
    return {
        "eventSource": [EVENT_SOURCE],
        "errorCode": [{"exists": False}],
        "$or": [
            DAEMON_PRIVILEGED_REGISTRATION,
            DAEMON_REGISTRATION_WITHOUT_REQUEST,
            *DAEMON_TRUNCATED_REGISTRATIONS,
            DAEMON_ASSIGNMENTS,
        ],
    }


DAEMON_DEPLOYMENT_DETAIL_TYPES = [daemon_events.DEPLOYMENT_DETAIL_TYPE]


def daemon_deployment_detail() -> dict[str, Any]:
    """The `detail` of the deployment-outcome rule: finished, stopped, or rolling back."""
    return {"eventName": list(daemon_events.DEPLOYMENT_OUTCOME_EVENTS)}
