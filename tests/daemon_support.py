"""Helpers for the daemon tests: Managed Instances capacity providers, raw requests, and a check of every raw
response body against the output shape of its operation."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import boto3
from botocore.validate import ParamValidator

from emulators.daemon_api import beyond_param_validator, service_model, target_prefix

ROLE = "arn:aws:iam::{account}:role/{name}"


def ecs_client(endpoint: str, region: str = "us-east-1", **credentials: str) -> Any:
    return boto3.client("ecs", region_name=region, endpoint_url=endpoint, **credentials)


def managed_instances_provider(ecs: Any, cluster: str, name: str, account: str = "123456789012") -> str:
    """A Managed Instances capacity provider in `cluster` (created through the emulator; moto cannot)."""
    provider = ecs.create_capacity_provider(
        name=name,
        cluster=cluster,
        managedInstancesProvider={
            "infrastructureRoleArn": ROLE.format(account=account, name="ecsInfrastructure"),
            "instanceLaunchTemplate": {
                "ec2InstanceProfileArn": f"arn:aws:iam::{account}:instance-profile/ecsInstance",
                "networkConfiguration": {"subnets": ["subnet-0123456789abcdef0"]},
            },
        },
    )
    return str(provider["capacityProvider"]["capacityProviderArn"])


def cluster_with_provider(ecs: Any, cluster: str = "agents", provider: str = "mi-agents") -> tuple[str, str]:
    cluster_arn = ecs.create_cluster(clusterName=cluster)["cluster"]["clusterArn"]
    return str(cluster_arn), managed_instances_provider(ecs, cluster, provider)


def daemon_task_definition(family: str = "agent", privileged: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "family": family,
        "containerDefinitions": [{"name": "agent", "image": "public.ecr.aws/x/agent:1", "privileged": privileged}],
        **extra,
    }


def raw_call(
    endpoint: str,
    operation: str,
    body: Any,
    *,
    access_key: str = "AKIAIOSFODNN7EXAMPLE",
    region: str = "us-east-1",
    text: bytes | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST a request as botocore would, but with any body at all (botocore's own validation is bypassed)."""
    data = text if text is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        endpoint + "/",
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"{target_prefix()}.{operation}",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/20260101/{region}/ecs/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class OutputChecker:
    """Checks the raw body of every successful response of `client` against its operation's output shape (before
    botocore's parser, which would drop unknown members silently)."""

    def __init__(self, client: Any) -> None:
        self.checked: list[str] = []
        self.problems: list[str] = []
        client.meta.events.register("before-parse.ecs.*", self._check, unique_id=f"output-checker-{id(self)}")

    def _check(self, operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        if int(response_dict.get("status_code", 0)) >= 300:
            return
        body = json.loads(response_dict.get("body") or b"{}")
        shape = service_model().operation_model(operation_model.name).output_shape
        report = ParamValidator().validate(body, shape)
        if report.has_errors():
            self.problems.append(f"{operation_model.name}: {report.generate_report()}")
        self.problems += [f"{operation_model.name}: {p}" for p in beyond_param_validator(body, shape, "")]
        self.checked.append(operation_model.name)
