"""Daemon surroundings for the demo and the tests: a cluster with a Managed Instances capacity provider (created
through the daemon emulator), and the events EventBridge would deliver for daemon calls (CloudTrail) and daemon
deployments (ECS's own `ECS Daemon Deployment State Change`, in the developer guide's shape)."""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from demo.sandbox import ACCOUNT, DEFAULT_USER, Sandbox


def cluster_with_provider(sandbox: Sandbox, cluster: str = "agents", provider: str = "mi-agents") -> tuple[str, str]:
    """(cluster ARN, Managed Instances capacity provider ARN)."""
    ecs = sandbox.client("ecs")
    cluster_arn = str(ecs.create_cluster(clusterName=cluster)["cluster"]["clusterArn"])
    created = ecs.create_capacity_provider(
        name=provider,
        cluster=cluster,
        managedInstancesProvider={
            "infrastructureRoleArn": f"arn:aws:iam::{ACCOUNT}:role/ecsInfrastructure",
            "instanceLaunchTemplate": {
                "ec2InstanceProfileArn": f"arn:aws:iam::{ACCOUNT}:instance-profile/ecsInstance",
                "networkConfiguration": {"subnets": ["subnet-0123456789abcdef0"]},
            },
        },
    )
    return cluster_arn, str(created["capacityProvider"]["capacityProviderArn"])


def call_event(
    sandbox: Sandbox,
    event_name: str,
    params: dict[str, Any],
    response: dict[str, Any] | None,
    *,
    user_arn: str = DEFAULT_USER,
    error_code: str | None = None,
) -> dict[str, Any]:
    """The EventBridge event CloudTrail would deliver for a daemon call (RegisterDaemonTaskDefinition, CreateDaemon,
    UpdateDaemon): the request as sent, and of the response only the ARN (nothing more is relied on)."""
    event = sandbox.event_for(params, None, user_arn=user_arn, error_code=error_code)
    detail = event["detail"]
    detail["eventName"] = event_name
    detail["requestParameters"] = json.loads(json.dumps(params, default=str))
    if response is not None and not error_code:
        keep = ("daemonTaskDefinitionArn", "daemonArn")
        detail["responseElements"] = {k: v for k, v in response.items() if k in keep}
    return event


def deployment_event(
    deployment_arn: str, daemon_arn: str, event_name: str = "DAEMON_DEPLOYMENT_SUCCESSFUL", *, region: str = "us-east-1"
) -> dict[str, Any]:
    """`ECS Daemon Deployment State Change` as the ECS developer guide shows it."""
    now = datetime.now(UTC)
    cluster = daemon_arn.split(":daemon/", 1)[-1].split("/", 1)[0]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Daemon Deployment State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [daemon_arn],
        "detail": {
            "eventType": "ERROR" if event_name.endswith("ROLLBACK_FAILED") else "INFO",
            "eventName": event_name,
            "clusterArn": f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{cluster}",
            "daemonArn": daemon_arn,
            "daemonDeploymentArn": deployment_arn,
            "targetDaemonRevisionArn": deployment_arn.replace(":daemon-deployment/", ":daemon-revision/"),
            "updatedAt": now.isoformat().replace("+00:00", "Z"),
        },
    }


def next_deployment(endpoint: str, daemon_arn: str, outcome: str) -> None:
    """The emulator's hook: the next deployment of `daemon_arn` ends as `outcome` (ROLLBACK_SUCCESSFUL: the circuit
    breaker trips and the daemon stays on its previous revision)."""
    body = json.dumps({"daemonArn": daemon_arn, "outcome": outcome}).encode()
    request = urllib.request.Request(f"{endpoint}/moto-api/ecs-daemons/next-deployment", data=body, method="POST")
    urllib.request.urlopen(request, timeout=30).read()
