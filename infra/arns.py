"""ARNs of ECS resources in each of a stack's Regions (its own account)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Stack


def ecs_arns(stack: Stack, regions: Sequence[str], resource: str, name: str) -> list[str]:
    """`arn:<partition>:ecs:<region>:<account>:<resource>/<name>` for each of `regions`."""
    return [
        stack.format_arn(
            service="ecs",
            region=region,
            resource=resource,
            resource_name=name,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        for region in regions
    ]
