"""What the demo checks on what the emulator returns: Prowler's rule, the differences between a revision and its
copy, Powertools' metric records."""

from __future__ import annotations

import json
import re
from typing import Any


def prowler_failed_containers(task_definition: dict[str, Any]) -> list[str]:
    """Prowler's ecs_task_definitions_no_privileged_containers rule: FAIL naming every container whose
    `privileged` is set (prowler/providers/aws/services/ecs/ecs_task_definitions_no_privileged_containers)."""
    return [str(c["name"]) for c in task_definition.get("containerDefinitions", []) if c.get("privileged", False)]


def container_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per container name, every field that differs between two revisions: `field: before -> after`."""
    changes: dict[str, list[str]] = {}
    after_by_name = {c["name"]: c for c in after}
    for container in before:
        other = after_by_name.get(container["name"])
        if other is None:
            changes[container["name"]] = ["missing from the new revision"]
            continue
        diffs = [
            f"{key}: {_js(container.get(key))} -> {_js(other.get(key))}"
            for key in sorted(set(container) | set(other))
            if container.get(key) != other.get(key)
        ]
        if diffs:
            changes[container["name"]] = diffs
    for name in after_by_name.keys() - {c["name"] for c in before}:
        changes[name] = ["added in the new revision"]
    return changes


def copy_differences(
    before: dict[str, Any], after: dict[str, Any], input_members: frozenset[str], marker_key: str
) -> tuple[list[str], int, int]:
    """What differs between a source revision and its copy beyond privileged true -> false and the marker
    tag (should be nothing); also how many task-definition fields and tags were compared."""
    source, copy_ = before["taskDefinition"], after["taskDefinition"]
    problems: list[str] = []
    compared = 0
    for member in sorted(input_members - {"tags"}):
        if member not in source and member not in copy_:
            continue
        compared += 1
        expected = source.get(member)
        if member == "containerDefinitions":
            expected = [{**c, "privileged": False} if c.get("privileged") is True else c for c in expected]
        if copy_.get(member) != expected:
            problems.append(f"{member} differs")
    source_tags = [t for t in before.get("tags", []) if not t["key"].lower().startswith("aws:")]
    copy_tags = [t for t in after.get("tags", []) if t["key"] != marker_key]
    if sorted(map(json.dumps, source_tags)) != sorted(map(json.dumps, copy_tags)):
        problems.append("tags differ")
    return problems, compared, len(source_tags)


def is_emf(line: str) -> bool:
    """A CloudWatch embedded-metric-format record (what Powertools Metrics prints)."""
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "_aws" in record


def _js(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
