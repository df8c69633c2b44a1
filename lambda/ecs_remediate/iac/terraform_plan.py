"""Terraform plans (`terraform show -json`): which ECS task definitions it would create with privileged containers.

CLI only, read-only: a plan is not a source file, so the answer is the resource address, the container and
the `privileged = false` to set in the configuration. Format: Terraform's JSON output format (`resource_changes`
with `change.after`/`after_unknown`; without them `planned_values`, or `values` for `terraform show -json` on
state), modules and count/for_each instances included (each has its own address).
Resource shapes (Terraform AWS provider): `aws_ecs_task_definition.container_definitions` is a JSON-encoded
string; `aws_ecs_daemon_task_definition` has repeatable `container_definition` blocks (a list of objects).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

TASK_DEFINITION = "aws_ecs_task_definition"
DAEMON_TASK_DEFINITION = "aws_ecs_daemon_task_definition"
TYPES = (TASK_DEFINITION, DAEMON_TASK_DEFINITION)
PRIVILEGED = "privileged"
UNRESOLVED = "unresolved"
_NAME_LIMIT = 120


@dataclass(frozen=True)
class PlanFinding:
    address: str  # e.g. module.monitoring.aws_ecs_task_definition.agent["eu"]
    resource_type: str
    container: str  # its name, or "#<index>" without one, or "*" when the containers cannot be read
    status: str  # PRIVILEGED | UNRESOLVED
    detail: str = ""

    @property
    def fix(self) -> str:
        """What to change in the configuration."""
        if self.status != PRIVILEGED:
            return "check this resource's containers by hand"
        if self.resource_type == DAEMON_TASK_DEFINITION:
            return f"privileged = false in its container_definition block (name = {_quoted(self.container)})"
        return (
            f"privileged = false in the {_quoted(self.container)} entry of container_definitions "
            '(in jsonencode; "privileged": false in a JSON file)'
        )


@dataclass(frozen=True)
class PlanReport:
    findings: tuple[PlanFinding, ...]
    task_definitions: int

    @property
    def privileged(self) -> list[PlanFinding]:
        return [f for f in self.findings if f.status == PRIVILEGED]

    @property
    def unresolved(self) -> list[PlanFinding]:
        return [f for f in self.findings if f.status == UNRESOLVED]


def is_plan(data: Any) -> bool:
    """`terraform show -json` output, by shape (a plan, or state in the same format)."""
    if not isinstance(data, Mapping):
        return False
    if isinstance(data.get("resource_changes"), list) or isinstance(data.get("planned_values"), Mapping):
        return True
    values = data.get("values")
    return "format_version" in data and isinstance(values, Mapping) and "root_module" in values


def check_plan(data: Mapping[str, Any]) -> PlanReport:
    findings: list[PlanFinding] = []
    count = 0
    for address, resource_type, values, unknown in _instances(data):
        count += 1
        if resource_type == TASK_DEFINITION:
            findings.extend(_task_definition(address, values, unknown))
        else:
            findings.extend(_daemon_task_definition(address, values, unknown))
    return PlanReport(tuple(findings), count)


def _instances(data: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any], Any]]:
    """(address, type, planned values, after_unknown) of each task definition the plan leaves in place."""
    changes = data.get("resource_changes")
    if isinstance(changes, list):
        for change in changes:
            if not isinstance(change, Mapping) or change.get("mode") != "managed" or change.get("type") not in TYPES:
                continue
            body = change.get("change")
            after = body.get("after") if isinstance(body, Mapping) else None
            if not isinstance(after, Mapping):
                continue  # deleted (or malformed): nothing of it remains after apply
            unknown = body.get("after_unknown") if isinstance(body, Mapping) else None
            yield _address(change), str(change["type"]), after, unknown
        return
    for key in ("planned_values", "values"):
        section = data.get(key)
        if isinstance(section, Mapping) and isinstance(section.get("root_module"), Mapping):
            yield from _module_resources(section["root_module"])
            return


def _module_resources(root: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any], Any]]:
    pending: list[Any] = [root]
    seen = 0
    while pending and seen < 100_000:  # a hostile plan cannot make this loop forever
        module = pending.pop()
        seen += 1
        if not isinstance(module, Mapping):
            continue
        resources = module.get("resources")
        for resource in resources if isinstance(resources, list) else []:
            if (
                isinstance(resource, Mapping)
                and resource.get("mode") == "managed"
                and resource.get("type") in TYPES
                and isinstance(resource.get("values"), Mapping)
            ):
                yield _address(resource), str(resource["type"]), resource["values"], None
        children = module.get("child_modules")
        if isinstance(children, list):
            pending.extend(reversed(children))


def _task_definition(address: str, values: Mapping[str, Any], unknown: Any) -> Iterator[PlanFinding]:
    def unresolved(detail: str, container: str = "*") -> PlanFinding:
        return PlanFinding(address, TASK_DEFINITION, container, UNRESOLVED, detail)

    encoded = values.get("container_definitions")
    if not isinstance(encoded, str):
        if _unknown(unknown, "container_definitions"):
            yield unresolved("container_definitions is known only after apply")
        else:
            yield unresolved("no container_definitions in the plan")
        return
    try:
        containers = json.loads(encoded)
    except (ValueError, RecursionError):
        yield unresolved("container_definitions is not JSON")
        return
    if not isinstance(containers, list):
        yield unresolved("container_definitions is not a JSON array")
        return
    for index, container in enumerate(containers):
        name = _name(container, index)
        if not isinstance(container, Mapping):
            yield unresolved("a container definition is not an object", name)
            continue
        yield from _judge(address, TASK_DEFINITION, name, container.get("privileged"), False)


def _daemon_task_definition(address: str, values: Mapping[str, Any], unknown: Any) -> Iterator[PlanFinding]:
    blocks = values.get("container_definition")
    if not isinstance(blocks, list):
        detail = "container_definition is known only after apply" if _unknown(unknown, "container_definition") else ""
        yield PlanFinding(
            address, DAEMON_TASK_DEFINITION, "*", UNRESOLVED, detail or "no container_definition blocks in the plan"
        )
        return
    unknown_blocks = unknown.get("container_definition") if isinstance(unknown, Mapping) else None
    for index, block in enumerate(blocks):
        name = _name(block, index)
        if not isinstance(block, Mapping):
            yield PlanFinding(address, DAEMON_TASK_DEFINITION, name, UNRESOLVED, "a block is not an object")
            continue
        block_unknown = (
            unknown_blocks[index] if isinstance(unknown_blocks, list) and index < len(unknown_blocks) else {}
        )
        later = unknown_blocks is True or _unknown(block_unknown, "privileged")
        yield from _judge(address, DAEMON_TASK_DEFINITION, name, block.get("privileged"), later)


def _judge(address: str, resource_type: str, name: str, value: Any, unknown: bool) -> Iterator[PlanFinding]:
    if value is True:
        yield PlanFinding(address, resource_type, name, PRIVILEGED)
    elif unknown and value is None:
        yield PlanFinding(address, resource_type, name, UNRESOLVED, "privileged is known only after apply")
    elif value is not None and value is not False:
        yield PlanFinding(
            address, resource_type, name, UNRESOLVED, f"privileged is a {_json_type(value)}, not a Boolean"
        )


def _unknown(unknown: Any, key: str) -> bool:
    return unknown is True or (isinstance(unknown, Mapping) and unknown.get(key) is True)


def _address(resource: Mapping[str, Any]) -> str:
    address = resource.get("address")
    if isinstance(address, str) and address:
        return _clean(address, 300)
    return _clean(f"{resource.get('type')}.{resource.get('name')}", 300)


def _name(container: Any, index: int) -> str:
    name = container.get("name") if isinstance(container, Mapping) else None
    return _clean(name, _NAME_LIMIT) if isinstance(name, str) and name.strip() else f"#{index}"


def _clean(text: str, limit: int) -> str:
    text = "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quoted(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _json_type(value: Any) -> str:
    return {str: "string", int: "number", float: "number", list: "list", dict: "object"}.get(type(value), "value")
