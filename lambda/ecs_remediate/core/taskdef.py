"""Pure core: find privileged containers and build the RegisterTaskDefinition input of a fixed copy (or, for a
daemon task definition of ECS Managed Daemons, the RegisterDaemonTaskDefinition input).

No AWS calls and no Powertools here. What the API accepts is read from botocore's service model at run
time (never a hand-kept list), so a newer SDK brings newer fields along, and a field the model does not
know is refused rather than silently dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from botocore.model import ListShape, MapShape, ServiceModel, Shape, StructureShape
from botocore.validate import ParamValidator

REGISTER = "RegisterTaskDefinition"
DAEMON_REGISTER = "RegisterDaemonTaskDefinition"
# Where each family's Describe call puts the definition: (operation, member of its output).
_DESCRIBE = {
    REGISTER: ("DescribeTaskDefinition", "taskDefinition"),
    DAEMON_REGISTER: ("DescribeDaemonTaskDefinition", "daemonTaskDefinition"),
}
# Tag keys starting with "aws:" are reserved for AWS; the API refuses them on register.
RESERVED_TAG_PREFIX = "aws:"
_TAG_EXTRA_CHARS = frozenset("_.:/=+-@")
# Any revision number, any partition; family: letters, digits, hyphens, underscores (up to 255).
TASK_DEFINITION_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):ecs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"task-definition/(?P<family>[A-Za-z0-9_-]{1,255}):(?P<revision>[1-9]\d*)\Z",
    re.ASCII,  # \d is 0-9 only (not other scripts' digits); \Z, unlike $, refuses a trailing newline
)
DAEMON_TASK_DEFINITION_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):ecs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"daemon-task-definition/(?P<family>[A-Za-z0-9_-]{1,255}):(?P<revision>[1-9]\d*)\Z",
    re.ASCII,
)

JSON = dict[str, Any]


class TaskDefinitionError(ValueError):
    """The input is not a task definition the API would accept; `field` names the offending member."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RegisterModel:
    """What RegisterTaskDefinition accepts and what DescribeTaskDefinition returns, per the SDK model; or, built with
    `operation=DAEMON_REGISTER`, RegisterDaemonTaskDefinition and DescribeDaemonTaskDefinition."""

    service_model: ServiceModel
    input_shape: StructureShape
    output_shape: StructureShape
    tag_limits: TagLimits
    operation: str = REGISTER

    @classmethod
    def from_service_model(cls, service_model: ServiceModel, operation: str = REGISTER) -> RegisterModel:
        input_shape = service_model.operation_model(operation).input_shape
        describe, member = _DESCRIBE[operation]
        describe_output = service_model.operation_model(describe).output_shape
        assert isinstance(describe_output, StructureShape)
        output_shape = describe_output.members[member]
        assert isinstance(input_shape, StructureShape) and isinstance(output_shape, StructureShape)
        tags = input_shape.members["tags"]
        assert isinstance(tags, ListShape) and isinstance(tags.member, StructureShape)
        key, value = tags.member.members["key"], tags.member.members["value"]
        limits = TagLimits(
            max_count=int(tags.metadata.get("max", 50)),
            max_key_length=int(key.metadata.get("max", 128)),
            max_value_length=int(value.metadata.get("max", 256)),
        )
        return cls(service_model, input_shape, output_shape, limits, operation)

    @property
    def is_daemon(self) -> bool:
        return self.operation == DAEMON_REGISTER

    @property
    def label(self) -> str:
        """What the documents of this model are called in messages."""
        return "daemon task definition" if self.is_daemon else "task definition"

    @property
    def describe_member(self) -> str:
        """The member of the Describe response that holds the definition (taskDefinition, daemonTaskDefinition)."""
        return _DESCRIBE[self.operation][1]

    @property
    def arn_member(self) -> str:
        """The output-only member that holds the revision's ARN (taskDefinitionArn, daemonTaskDefinitionArn)."""
        return self.describe_member + "Arn"

    @property
    def input_members(self) -> frozenset[str]:
        return frozenset(self.input_shape.members)

    @property
    def output_only_members(self) -> frozenset[str]:
        """Members Describe returns that Register does not take (ARN, revision, status, ...)."""
        return frozenset(self.output_shape.members) - self.input_members

    def validate(self, params: Mapping[str, Any]) -> None:
        """Check a request against the model offline: unknown keys, types, required members, lengths."""
        report = ParamValidator().validate(params, self.input_shape)
        if report.has_errors():
            text = report.generate_report()
            # First clause of each line only: later clauses echo the offending value (maybe a secret).
            problems = [line.split(", ")[0] for line in text.splitlines() if line.strip()]
            raise TaskDefinitionError(
                f"not a valid {self.operation} input: " + "; ".join(problems[:3]), _field_from_report(text)
            )

    def unknown_output_members(self, task_definition: Mapping[str, Any]) -> list[str]:
        """Paths of members in a raw Describe body that this SDK's model does not know.

        botocore's parser drops such members silently; a copy built without them would lose them.
        """
        return _unknown_members(task_definition, self.output_shape, "")


@dataclass(frozen=True)
class TagLimits:
    max_count: int
    max_key_length: int
    max_value_length: int


@lru_cache(maxsize=1)
def _bundled_ecs_model() -> ServiceModel:
    import botocore.session  # noqa: PLC0415 - imported on first use only: clients bring their own model

    return botocore.session.get_session().get_service_model("ecs")


@lru_cache(maxsize=1)
def default_register_model() -> RegisterModel:
    """The bundled botocore's ECS model, loaded without creating a client (for offline use)."""
    return RegisterModel.from_service_model(_bundled_ecs_model())


@lru_cache(maxsize=1)
def default_daemon_register_model() -> RegisterModel:
    """The same for daemon task definitions (RegisterDaemonTaskDefinition, DescribeDaemonTaskDefinition)."""
    return RegisterModel.from_service_model(_bundled_ecs_model(), DAEMON_REGISTER)


DAEMON_KINDS = frozenset({"daemon-describe-response", "daemon-task-definition"})


@dataclass(frozen=True)
class Document:
    """A task definition (or daemon task definition) as found in a file or an API response, normalised."""

    # "describe-response" | "task-definition" | "container-definitions" for task definitions;
    # "daemon-describe-response" | "daemon-task-definition" for daemon task definitions
    kind: str
    task_definition: JSON  # nulls dropped; output-only members still present
    tags: list[dict[str, str]] | None  # None when the document carries no tags at all

    @property
    def is_daemon(self) -> bool:
        return self.kind in DAEMON_KINDS


@dataclass(frozen=True)
class Fix:
    """The result of fixing one task definition."""

    privileged: list[str]  # names of the containers that were privileged, in order
    register_input: JSON  # RegisterTaskDefinition parameters of the copy (valid per the model)
    dropped_tags: list[str] = field(default_factory=list)  # reserved keys the API will not take
    marker_added: bool = False


def drop_nulls(value: Any) -> Any:
    """Remove JSON nulls at every depth: console and Terraform exports carry them, botocore rejects them."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value if v is not None]
    return value


def parse_document(raw: Any) -> Document:
    """Recognise a DescribeTaskDefinition/RegisterTaskDefinition response, a bare task definition
    (console export, `--query taskDefinition`, `--cli-input-json`) or a bare containerDefinitions array; and a
    DescribeDaemonTaskDefinition response or a bare daemon task definition (Describe output or Register input),
    told apart from task definitions by their shape (see `looks_like_daemon`)."""
    raw = drop_nulls(raw)
    if isinstance(raw, list):
        if not raw or not all(isinstance(c, dict) for c in raw):
            raise TaskDefinitionError("a JSON array must be a non-empty list of container definitions")
        return Document("container-definitions", {"containerDefinitions": raw}, None)
    if not isinstance(raw, dict):
        raise TaskDefinitionError("expected a JSON object (a task definition) or an array of containers")
    daemon_member = default_daemon_register_model().describe_member
    if isinstance(raw.get("taskDefinition"), dict) and isinstance(raw.get(daemon_member), dict):
        raise TaskDefinitionError(f"both a 'taskDefinition' and a {daemon_member!r} object: which one?", daemon_member)
    if isinstance(raw.get("taskDefinition"), dict):
        tags = _tag_list(raw["tags"], "tags") if "tags" in raw else None
        return Document("describe-response", raw["taskDefinition"], tags)
    if isinstance(raw.get(daemon_member), dict):
        tags = _tag_list(raw["tags"], "tags") if "tags" in raw else None
        return Document("daemon-describe-response", raw[daemon_member], tags)
    if "containerDefinitions" in raw:
        task_definition = {k: v for k, v in raw.items() if k != "tags"}
        tags = _tag_list(raw["tags"], "tags") if "tags" in raw else None
        kind = "daemon-task-definition" if looks_like_daemon(task_definition) else "task-definition"
        return Document(kind, task_definition, tags)
    raise TaskDefinitionError(
        "not a task definition: expected 'containerDefinitions', a 'taskDefinition' or "
        f"{daemon_member!r} object, or an array",
        "containerDefinitions",
    )


def looks_like_daemon(definition: Mapping[str, Any]) -> bool:
    """Whether a bare definition is a daemon task definition, by its shape: a daemon task definition ARN member, or
    a member or value only the daemon model knows at any depth (pidMode/ipcMode "shared", pidMode "none",
    volumes[].logDriverVolumeConfiguration in botocore 1.44), read from the two models. A definition that fits both
    models alike is a task definition (its copy is then valid for both APIs)."""
    task, daemon = default_register_model(), default_daemon_register_model()
    if task.arn_member in definition and daemon.arn_member in definition:
        raise TaskDefinitionError(
            f"both {task.arn_member!r} and {daemon.arn_member!r}: a task definition or a daemon task definition?",
            daemon.arn_member,
        )
    if task.arn_member in definition:
        return False
    return daemon.arn_member in definition or _daemon_only(definition, daemon.output_shape, task.output_shape)


def _daemon_only(value: Any, daemon: Shape, task: Shape) -> bool:
    if isinstance(daemon, StructureShape) and isinstance(task, StructureShape) and isinstance(value, dict):
        return any(
            key in daemon.members
            and (key not in task.members or _daemon_only(item, daemon.members[key], task.members[key]))
            for key, item in value.items()
        )
    if isinstance(daemon, ListShape) and isinstance(task, ListShape) and isinstance(value, list):
        return any(_daemon_only(item, daemon.member, task.member) for item in value)
    daemon_values, task_values = getattr(daemon, "enum", None) or (), getattr(task, "enum", None) or ()
    return isinstance(value, str) and value in daemon_values and value not in task_values


def model_for(document: Document) -> RegisterModel:
    """The bundled model for the document's kind (task definition or daemon task definition)."""
    return default_daemon_register_model() if document.is_daemon else default_register_model()


def privileged_containers(task_definition: Mapping[str, Any]) -> list[str]:
    """Names of the containers with privileged: true, in definition order."""
    containers = task_definition.get("containerDefinitions")
    if not isinstance(containers, list):
        raise TaskDefinitionError("containerDefinitions must be a list", "containerDefinitions")
    return [
        str(c.get("name", f"#{i}"))
        for i, c in enumerate(containers)
        if isinstance(c, dict) and c.get("privileged") is True
    ]


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON document (dicts, lists, immutable leaves): what copy.deepcopy gives for it, at a
    fraction of the cost (no memo: a JSON document has no shared or cyclic parts)."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def unprivileged_containers(containers: Sequence[Mapping[str, Any]]) -> list[JSON]:
    """Deep copies of the containers with every privileged: true set to false; nothing else touched."""
    fixed: list[JSON] = [copy_json(dict(c)) for c in containers]
    for container in fixed:
        if container.get("privileged") is True:
            container["privileged"] = False
    return fixed


def build_fixed_copy(
    document: Document,
    model: RegisterModel,
    marker: tuple[str, str] | None = None,
    *,
    validate: bool = True,
) -> Fix:
    """The RegisterTaskDefinition input of a copy with every privileged container unprivileged.

    Every member the API accepts is kept (allow-list from the model); output-only members are dropped;
    a member the model does not know is an error (copying without it would lose it). Tags are kept within
    the API's rules; `marker` (key, value) is added when there is room.
    """
    if document.is_daemon != model.is_daemon:
        raise TaskDefinitionError(f"a {model_for(document).label} cannot be copied with the {model.operation} model")
    task_definition = document.task_definition
    unknown = sorted(set(task_definition) - model.input_members - model.output_only_members)
    if unknown:
        raise TaskDefinitionError(
            f"unknown {model.label} field {unknown[0]!r}: not in this SDK's {model.operation} model",
            unknown[0],
        )
    privileged = privileged_containers(task_definition)
    for index, container in enumerate(task_definition["containerDefinitions"]):
        if not isinstance(container, dict):
            where = f"containerDefinitions[{index}]"
            raise TaskDefinitionError(f"{where} must be an object (a container definition)", where)
    params: JSON = {
        k: copy_json(v)
        for k, v in task_definition.items()
        if k in model.input_members and k not in ("tags", "containerDefinitions")
    }
    params["containerDefinitions"] = unprivileged_containers(task_definition["containerDefinitions"])

    tags, dropped = copyable_tags(document.tags or [], model.tag_limits)
    marker_added = False
    if marker is not None:
        tags = [t for t in tags if t["key"] != marker[0]]
        if len(tags) < model.tag_limits.max_count:
            tags.append({"key": marker[0], "value": marker[1][: model.tag_limits.max_value_length]})
            marker_added = True
    if tags:
        params["tags"] = tags

    # A bare containers array has no family; validate it inside a stand-in request.
    if validate:  # off only to compare with a revision ECS already accepted (provenance.content_matches)
        model.validate({"family": "placeholder", **params} if document.kind == "container-definitions" else params)
    return Fix(privileged, params, dropped, marker_added)


def copyable_tags(tags: Iterable[Mapping[str, Any]], limits: TagLimits) -> tuple[list[dict[str, str]], list[str]]:
    """Tags a copy can carry, and the reserved keys it cannot (AWS-owned "aws:" tags)."""
    kept: list[dict[str, str]] = []
    dropped: list[str] = []
    for tag in tags:
        key, value = str(tag["key"]), str(tag.get("value", ""))
        if key.lower().startswith(RESERVED_TAG_PREFIX):
            dropped.append(key)
            continue
        _check_tag(key, value, limits)
        kept.append({"key": key, "value": value})
    if len(kept) > limits.max_count:
        raise TaskDefinitionError(f"{len(kept)} tags; the API allows at most {limits.max_count}", "tags")
    return kept, dropped


def tag_value(tags: Iterable[Mapping[str, str]] | None, key: str) -> str | None:
    for tag in tags or ():
        if tag.get("key") == key:
            return tag.get("value", "")
    return None


def is_valid_tag_text(text: str) -> bool:
    """ECS tag text: Unicode letters, digits, separators and _ . : / = + - @ (the model's pattern)."""
    return all(ch in _TAG_EXTRA_CHARS or unicodedata.category(ch)[0] in "LNZ" for ch in text)


def family_and_revision(arn: str) -> tuple[str, int]:
    match = TASK_DEFINITION_ARN_RE.match(arn)
    if not match:
        raise TaskDefinitionError(f"not a task definition revision ARN: {arn[:300]!r}", "taskDefinitionArn")
    return match["family"], int(match["revision"])


def daemon_family_and_revision(arn: str) -> tuple[str, int]:
    match = DAEMON_TASK_DEFINITION_ARN_RE.match(arn)
    if not match:
        raise TaskDefinitionError(
            f"not a daemon task definition revision ARN: {arn[:300]!r}", "daemonTaskDefinitionArn"
        )
    return match["family"], int(match["revision"])


def _check_tag(key: str, value: str, limits: TagLimits) -> None:
    if not 1 <= len(key) <= limits.max_key_length or not is_valid_tag_text(key):
        raise TaskDefinitionError(f"tag key {key[:200]!r} breaks the API's tag rules", "tags")
    if len(value) > limits.max_value_length or not is_valid_tag_text(value):
        raise TaskDefinitionError(f"tag value of {key[:200]!r} breaks the API's tag rules", "tags")


def _tag_list(tags: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(tags, list) or not all(isinstance(t, dict) and "key" in t for t in tags):
        raise TaskDefinitionError(f"{where} must be a list of {{'key': ..., 'value': ...}} objects", where)
    return [{"key": str(t["key"]), "value": str(t.get("value", ""))} for t in tags]


def _unknown_members(value: Any, shape: Shape, path: str) -> list[str]:
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        found: list[str] = []
        for key, item in value.items():
            member = shape.members.get(key)
            where = f"{path}.{key}" if path else key
            found += [where] if member is None else _unknown_members(item, member, where)
        return found
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _unknown_members(item, shape.member, f"{path}[{i}]")]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return [p for k, item in value.items() for p in _unknown_members(item, shape.value, f"{path}.{k}")]
    return []


_REPORT_FIELD_RE = re.compile(
    r"(?:Unknown parameter in |Invalid type for parameter |Missing required parameter in |"
    r"Invalid length for parameter )"
    r'([^,:\s]+)(?:: "([^"]+)")?'
)


def _field_from_report(report: str) -> str | None:
    match = _REPORT_FIELD_RE.search(report)
    if not match:
        return None
    if not match[2]:
        return match[1]
    return match[2] if match[1] == "input" else f"{match[1]}.{match[2]}"
