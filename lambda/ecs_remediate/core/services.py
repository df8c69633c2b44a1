"""The ECS services that run a task definition revision: as their own task definition, in a deployment that still
has tasks, or in a task set. Rollout moves only the first kind; retire waits for all of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .attribution import CloudFormationStack, cloudformation_stack_of


@dataclass(frozen=True)
class Service:
    cluster: str  # cluster ARN
    name: str
    controller: str  # ECS | CODE_DEPLOY | EXTERNAL
    stack: CloudFormationStack | None = None  # the CloudFormation stack that manages it (from its aws: tags)
    # "" when the revision is the service's own task definition; otherwise the deployments or task sets that still
    # run it ("deployment ecs-svc/1 (ACTIVE)"): the service is not moved onto a copy, and the revision not retired
    held_by: str = ""

    @property
    def cluster_name(self) -> str:
        return self.cluster.rsplit("/", 1)[-1]


# A deployment with this status has no tasks left (replaced completely); every other one may still run tasks.
FINISHED_DEPLOYMENT = "INACTIVE"


def holders(service: dict[str, Any], task_definition_arn: str) -> str | None:
    """How a described service runs `task_definition_arn`: "" as its own task definition, else the deployments
    (status other than INACTIVE) and task sets (any status: DRAINING ones still have tasks) that do; None when
    nothing of it does."""
    if service.get("taskDefinition") == task_definition_arn:
        return ""
    held = [
        f"deployment {d.get('id', '?')} ({d.get('status', '?')})"
        for d in service.get("deployments") or []
        if d.get("taskDefinition") == task_definition_arn and d.get("status") != FINISHED_DEPLOYMENT
    ]
    held += [
        f"task set {t.get('id', '?')} ({t.get('status', '?')})"
        for t in service.get("taskSets") or []
        if t.get("taskDefinition") == task_definition_arn
    ]
    return ", ".join(held)[:500] if held else None


def running(client: Any, task_definition_arn: str) -> list[Service]:
    """Services in every cluster that run `task_definition_arn`: as their own task definition, in a deployment that
    still has tasks (PRIMARY or ACTIVE: a rolling deployment under way, either direction), or in a task set
    (CODE_DEPLOY and EXTERNAL controllers), each with the CloudFormation stack it belongs to (its
    `aws:cloudformation:*` tags, which only AWS can set; rollout leaves those alone by default).
    ecs:ListClusters, ecs:ListServices, ecs:DescribeServices (all pages, 10 services per describe)."""
    found: list[Service] = []
    for cluster_page in client.get_paginator("list_clusters").paginate():
        for cluster in cluster_page.get("clusterArns", []):
            for page in client.get_paginator("list_services").paginate(cluster=cluster):
                arns = page.get("serviceArns", [])
                for start in range(0, len(arns), 10):
                    described = client.describe_services(
                        cluster=cluster, services=arns[start : start + 10], include=["TAGS"]
                    )
                    for svc in described.get("services", []):
                        held = holders(svc, task_definition_arn)
                        if held is not None:
                            found.append(
                                Service(
                                    cluster=cluster,
                                    name=str(svc["serviceName"]),
                                    controller=str((svc.get("deploymentController") or {}).get("type", "ECS")),
                                    stack=cloudformation_stack_of(svc.get("tags")),
                                    held_by=held,
                                )
                            )
    return found
