"""The result of checking one daemon task definition: a `Result` plus what only daemons have (the daemons that run
it, the daemon updates, the tags ListTagsForResource could not read, the images of its privileged containers), and
the follow-up on a deployment the stack started."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..core.events import REGISTER_DAEMON_TASK_DEFINITION, Registration
from ..core.outcomes import Result

RESOURCE_TYPE = "daemon task definition"
# The follow-up notice on a daemon deployment the stack started (ECS Daemon Deployment State Change).
DEPLOYMENT = "daemon-deployment"
ROLLED_BACK = frozenset({"ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"})


@dataclass(frozen=True)
class DaemonCall(Registration):
    """A daemon call as CloudTrail recorded it: who, when, and for CreateDaemon/UpdateDaemon the daemon's ARN."""

    event_name: str = REGISTER_DAEMON_TASK_DEFINITION
    daemon_arn: str = ""


@dataclass
class DaemonResult(Result):
    resource_type: str = RESOURCE_TYPE
    images: list[dict[str, str]] = field(default_factory=list)  # container, image: the privileged containers
    tags_error: str | None = None  # ListTagsForResource failed for good: the copy's tags are unknown
    # The daemons that run the revision (looked up with every notice): cluster, daemon, daemonArn, revisions.
    daemons_checked: bool = False
    daemons_error: str = ""  # the lookup failed: nobody knows which daemons run it (nothing moved or deleted)
    daemons: list[dict[str, Any]] = field(default_factory=list)
    daemons_updated: list[dict[str, str]] = field(default_factory=list)  # cluster, daemon, daemonArn, deploymentArn
    daemons_manual: list[dict[str, str]] = field(default_factory=list)  # cluster, daemon, step[, note]
    deployment: dict[str, Any] = field(default_factory=dict)  # DEPLOYMENT: what DescribeDaemonDeployments says

    @property
    def severity(self) -> str:
        if self.outcome == DEPLOYMENT:
            return "HIGH" if str(self.deployment.get("status")) in ROLLED_BACK | {"STOPPED"} else "INFO"
        return super().severity

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DaemonResult:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("registration"), dict):
            call = {f.name for f in fields(DaemonCall)}
            values["registration"] = DaemonCall(**{k: v for k, v in values["registration"].items() if k in call})
        return cls(**values)
