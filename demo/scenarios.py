"""The demo's registrations: a privileged web app, a compliant API, and a pipeline whose middle container is
privileged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Scenario:
    title: str
    params: dict[str, Any]

    @property
    def family(self) -> str:
        return str(self.params["family"])

    @property
    def privileged(self) -> list[str]:
        return [c["name"] for c in self.params["containerDefinitions"] if c.get("privileged") is True]


SCENARIOS = [
    Scenario(
        "a web server with a privileged container",
        {
            "family": "web-app",
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": "nginx:latest",
                    "essential": True,
                    "memory": 512,
                    "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                    "privileged": True,
                }
            ],
            "tags": [{"key": "team", "value": "web"}],
        },
    ),
    Scenario(
        "a compliant service (privileged: false)",
        {
            "family": "billing-api",
            "requiresCompatibilities": ["EC2"],
            "containerDefinitions": [
                {
                    "name": "api",
                    "image": "public.ecr.aws/docker/library/python:3.12-slim",
                    "essential": True,
                    "memory": 256,
                    "portMappings": [{"containerPort": 8000, "protocol": "tcp"}],
                    "readonlyRootFilesystem": True,
                    "privileged": False,
                }
            ],
            "tags": [{"key": "team", "value": "billing"}],
        },
    ),
    Scenario(
        "three containers, only the middle one privileged",
        {
            "family": "ingest-pipeline",
            "networkMode": "bridge",
            "requiresCompatibilities": ["EC2"],
            "volumes": [{"name": "spool", "host": {"sourcePath": "/var/spool/ingest"}}],
            "containerDefinitions": [
                {
                    "name": "log-router",
                    "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
                    "essential": True,
                    "memory": 128,
                    "firelensConfiguration": {"type": "fluentbit"},
                },
                {
                    "name": "collector",
                    "image": "public.ecr.aws/docker/library/busybox:1.36",
                    "essential": False,
                    "memory": 64,
                    "command": ["sh", "-c", "while true; do sleep 60; done"],
                    "mountPoints": [{"sourceVolume": "spool", "containerPath": "/spool"}],
                    "privileged": True,
                },
                {
                    "name": "worker",
                    "image": "public.ecr.aws/docker/library/python:3.12-slim",
                    "essential": True,
                    "memory": 256,
                    "environment": [{"name": "SPOOL_DIR", "value": "/spool"}],
                    "mountPoints": [{"sourceVolume": "spool", "containerPath": "/spool", "readOnly": True}],
                    "dependsOn": [{"containerName": "log-router", "condition": "START"}],
                },
            ],
            "tags": [{"key": "team", "value": "data"}, {"key": "cost-center", "value": "4711"}],
        },
    ),
]
