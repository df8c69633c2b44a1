"""The daemon emulator's state: one `RegionState` per account and Region, plain records, no behaviour beyond
rendering each record as the API's output shape.

Where it may differ from AWS:
- a daemon task definition is described with the members it was registered with, as sent: no defaults are filled
  in (ECS fills some in a task definition, a container's `essential` or empty lists; which it fills in a daemon task
  definition is unverified);
- there are no instances: every running, without-daemon and draining count is 0, and a deployment's circuit
  breaker shows a threshold of 3 with no failures (docs/daemons-emulator.md, item 8);
- `registeredBy` is the caller as moto's STS resolves it, an assumed-role ARN or else the account root, never an IAM
  user (item 11);
- the state lives in this process only and is gone on `/moto-api/reset`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

ACTIVE, DELETE_IN_PROGRESS, DELETED = "ACTIVE", "DELETE_IN_PROGRESS", "DELETED"


@dataclass
class TaskDefinitionRecord:
    arn: str
    family: str
    revision: int
    params: JSON  # the RegisterDaemonTaskDefinition input, tags excluded
    tags: list[JSON]
    registered_at: float
    registered_by: str
    status: str = ACTIVE
    delete_requested_at: float | None = None

    def describe(self, output_members: frozenset[str]) -> JSON:
        body: JSON = {k: copy.deepcopy(v) for k, v in self.params.items() if k in output_members}
        body.update(
            daemonTaskDefinitionArn=self.arn,
            family=self.family,
            revision=self.revision,
            status=self.status,
            registeredAt=self.registered_at,
            registeredBy=self.registered_by,
        )
        if self.delete_requested_at is not None:
            body["deleteRequestedAt"] = self.delete_requested_at
        return body

    def summary(self) -> JSON:
        body: JSON = {
            "arn": self.arn,
            "registeredAt": self.registered_at,
            "registeredBy": self.registered_by,
            "status": self.status,
        }
        if self.delete_requested_at is not None:
            body["deleteRequestedAt"] = self.delete_requested_at
        return body


@dataclass
class ManagedInstancesProvider:
    """A Managed Instances capacity provider (moto cannot create these; the emulator keeps what makes them one)."""

    arn: str
    name: str
    cluster_arn: str


@dataclass
class RevisionRecord:
    """A daemon revision: the daemon's configuration when a deployment started (immutable)."""

    arn: str
    daemon_arn: str
    cluster_arn: str
    task_definition_arn: str
    capacity_provider_arns: list[str]
    container_images: list[JSON]
    settings: JSON  # propagateTags, enableECSManagedTags, enableExecuteCommand, critical
    created_at: float

    def describe(self) -> JSON:
        return {
            "daemonRevisionArn": self.arn,
            "clusterArn": self.cluster_arn,
            "daemonArn": self.daemon_arn,
            "daemonTaskDefinitionArn": self.task_definition_arn,
            "createdAt": self.created_at,
            "containerImages": copy.deepcopy(self.container_images),
            **copy.deepcopy(self.settings),
        }

    def detail(self) -> JSON:
        """DaemonRevisionDetail: the emulator runs no instances, so every count is 0."""
        return {
            "arn": self.arn,
            "capacityProviders": [
                {"arn": arn, "runningCount": 0, "withoutDaemonCount": 0} for arn in self.capacity_provider_arns
            ],
            "totalRunningCount": 0,
            "totalWithoutDaemonCount": 0,
        }

    def deployment_detail(self) -> JSON:
        return {
            "arn": self.arn,
            "capacityProviders": [
                {"arn": arn, "runningInstanceCount": 0, "withoutDaemonInstanceCount": 0, "drainingInstanceCount": 0}
                for arn in self.capacity_provider_arns
            ],
            "totalRunningInstanceCount": 0,
            "totalWithoutDaemonInstanceCount": 0,
            "totalDrainingInstanceCount": 0,
        }


@dataclass
class DeploymentRecord:
    arn: str
    daemon_arn: str
    cluster_arn: str
    target_revision_arn: str
    source_revision_arns: list[str]
    configuration: JSON
    created_at: float
    status: str = "PENDING"
    status_reason: str = ""
    finished_at: float | None = None
    stopped_at: float | None = None
    rollback: JSON | None = None
    circuit_breaker: JSON = field(default_factory=lambda: {"status": "MONITORING", "failureCount": 0, "threshold": 3})


@dataclass
class DaemonRecord:
    arn: str
    name: str
    cluster_arn: str
    created_at: float
    updated_at: float
    tags: list[JSON]
    configuration: JSON  # the deployment configuration in force
    settings: JSON
    current_revision_arns: list[str] = field(default_factory=list)
    deployment_arn: str = ""
    status: str = ACTIVE


@dataclass
class RegionState:
    task_definitions: dict[str, dict[int, TaskDefinitionRecord]] = field(default_factory=dict)
    last_revision: dict[str, int] = field(default_factory=dict)  # revisions are never reused, even after delete
    daemons: dict[str, DaemonRecord] = field(default_factory=dict)
    revisions: dict[str, RevisionRecord] = field(default_factory=dict)
    deployments: dict[str, DeploymentRecord] = field(default_factory=dict)
    capacity_providers: dict[str, ManagedInstancesProvider] = field(default_factory=dict)  # by name
    client_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # token -> (request digest, daemon ARN)
    next_outcome: dict[str, str] = field(default_factory=dict)  # daemon ARN -> outcome of its next deployment

    def all_task_definitions(self) -> list[TaskDefinitionRecord]:
        return [record for revisions in self.task_definitions.values() for record in revisions.values()]

    def revisions_in_use(self) -> set[str]:
        """Daemon task definition ARNs a daemon runs now (current revisions, deployments under way included)."""
        return {
            self.revisions[arn].task_definition_arn
            for daemon in self.daemons.values()
            for arn in daemon.current_revision_arns
        }
