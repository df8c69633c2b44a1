"""What the daemon emulator knows about the API: botocore's ECS model, request and response checks, errors, ARNs
and page tokens. Nothing here holds state (that is daemon_emulator.py) or speaks HTTP (server.py).

Every request is checked against the operation's input shape with botocore's ParamValidator, and then for what
ParamValidator leaves out (enum values, number ranges, list maxima), so a malformed request is refused as ECS would
refuse it: HTTP 400 with an error code from the operation's model. Every response is checked against the output
shape before it leaves, so an emulator bug shows as a 500, never as a silently wrong answer.

Where it may differ from AWS:
- the error codes are chosen here (InvalidParameterException for a bad parameter, ClientException for an unknown or
  unusable identifier, SerializationException for a body that is not a JSON object): AWS does not document its
  codes for daemon requests, and the messages are this module's wording;
- every member the model does not have is refused, where AWS may ignore some;
- names (family, container, daemon: letters, digits, `_`, `-`, up to 255) and tags (50 per resource, unique keys, no
  `aws:` prefix, the Tag shape's lengths and characters) are checked as the API reference states them; IAM, quotas,
  the task definition's size, `cpu`/`memory` values and throttling are not checked at all;
- page sizes are read from the model's `maxResults` documentation; page tokens are this emulator's own (opaque,
  bound to the request's filters, never expiring), not ECS's;
- the full list, with the reasons: docs/daemons-emulator.md, items 1-3 and 7.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape
from botocore.validate import ParamValidator

JSON = dict[str, Any]
T = TypeVar("T")

FAMILY_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}\Z")  # family, container and daemon names (the API reference's rule)
DAEMON_TASK_DEFINITION_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):ecs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"daemon-task-definition/(?P<family>[A-Za-z0-9_-]{1,255}):(?P<revision>[1-9]\d*)\Z",
    re.ASCII,
)
DAEMON_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):ecs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"daemon/(?P<cluster>[A-Za-z0-9_-]{1,255})/(?P<name>[A-Za-z0-9_-]{1,255})\Z",
    re.ASCII,
)
RESERVED_TAG_PREFIX = "aws:"
_TAG_CHARS = frozenset("_.:/=+-@")


class ApiError(Exception):
    """An error ECS would answer: `code` is an error shape of the ECS model, sent with HTTP `status`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterException", message)


def client_error(message: str) -> ApiError:
    return ApiError("ClientException", message)


@cache
def service_model() -> ServiceModel:
    import botocore.session

    return botocore.session.get_session().get_service_model("ecs")


def target_prefix() -> str:
    """X-Amz-Target is `<targetPrefix>.<Operation>` for this JSON protocol."""
    return str(service_model().metadata["targetPrefix"])


def operation(name: str) -> OperationModel:
    return service_model().operation_model(name)


@cache
def page_size(operation_name: str) -> int:
    """The default page size the API reference gives in the `maxResults` documentation ("returns up to N")."""
    shape = operation(operation_name).input_shape
    assert shape is not None
    match = re.search(r"returns up to (\d+) results", shape.members["maxResults"].documentation or "")
    assert match, operation_name
    return int(match[1])


@cache
def batch_limit(operation_name: str, member: str) -> int:
    """`You can specify up to N ARNs` from the member's documentation (DescribeDaemonRevisions: 20)."""
    shape = operation(operation_name).input_shape
    assert shape is not None
    match = re.search(r"up to (\d+) ARNs", shape.members[member].documentation or "")
    assert match, (operation_name, member)
    return int(match[1])


def validate_request(operation_name: str, params: Any) -> JSON:
    """The request body, checked against the input shape; InvalidParameterException naming the first problem."""
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "the request body must be a JSON object")
    shape = operation(operation_name).input_shape
    assert shape is not None
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        # First clause of the first problem only: later clauses echo the value sent.
        first = next((line for line in report.generate_report().splitlines() if line.strip()), "invalid request")
        raise invalid(first.split(", ")[0].strip())
    problems = beyond_param_validator(params, shape, "")
    if problems:
        raise invalid(problems[0])
    return params


def validate_response(operation_name: str, body: JSON) -> JSON:
    """Our own answer, checked against the output shape: a failure is an emulator bug (AssertionError)."""
    shape = operation(operation_name).output_shape
    assert shape is not None
    report = ParamValidator().validate(body, shape)
    problems = beyond_param_validator(body, shape, "")
    assert not report.has_errors() and not problems, (operation_name, report.generate_report(), problems)
    return body


def beyond_param_validator(value: Any, shape: Shape, path: str) -> list[str]:
    """What ParamValidator does not check: enum values, number ranges and list maxima from the model."""
    found: list[str] = []
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for key, item in value.items():
            if key in shape.members:
                found += beyond_param_validator(item, shape.members[key], f"{path}.{key}" if path else key)
    elif isinstance(shape, ListShape) and isinstance(value, list):
        maximum = shape.metadata.get("max")
        if maximum is not None and len(value) > int(maximum):
            found.append(f"{path}: at most {maximum} items")
        for index, item in enumerate(value):
            found += beyond_param_validator(item, shape.member, f"{path}[{index}]")
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        for key, item in value.items():
            found += beyond_param_validator(item, shape.value, f"{path}.{key}")
    elif shape.type_name == "string" and shape.enum and isinstance(value, str) and value not in shape.enum:
        found.append(f"{path}: {value[:50]!r} is not one of {', '.join(shape.enum)}")
    elif shape.type_name in ("double", "float", "integer", "long") and isinstance(value, int | float):
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            found.append(f"{path}: {value} is outside {low}..{high}")
    return found


def check_tags(tags: Sequence[JSON], existing: Sequence[JSON] = ()) -> list[JSON]:
    """ECS's tag rules (the API reference's list): at most 50 per resource, unique keys, no `aws:` prefix, lengths
    and characters per the Tag shape. Returns the merged list (new values replace old ones)."""
    tag_shape = service_model().shape_for("Tag")
    assert isinstance(tag_shape, StructureShape)
    key_max = int(tag_shape.members["key"].metadata["max"])
    value_max = int(tag_shape.members["value"].metadata["max"])
    merged = {str(t["key"]): t for t in existing}
    seen: set[str] = set()
    for tag in tags:
        key, value = tag.get("key"), tag.get("value", "")
        if not isinstance(key, str) or not 1 <= len(key) <= key_max or not _tag_text(key):
            raise invalid("tag keys must be 1-128 letters, digits, spaces or _ . : / = + - @")
        if not isinstance(value, str) or len(value) > value_max or not _tag_text(value):
            raise invalid(f"the value of tag {key!r} breaks the tag rules")
        if key.lower().startswith(RESERVED_TAG_PREFIX):
            raise invalid("tag keys beginning with 'aws:' are reserved")
        if key in seen:
            raise invalid(f"duplicate tag key {key!r}")
        seen.add(key)
        merged[key] = {"key": key, "value": value}
    if len(merged) > 50:
        raise invalid("a resource can have at most 50 tags")
    return list(merged.values())


def _tag_text(text: str) -> bool:
    return all(ch in _TAG_CHARS or unicodedata.category(ch)[0] in "LNZ" for ch in text)


@dataclass(frozen=True)
class Caller:
    """Who sent a request, resolved as moto resolves it (MOTO_ACCOUNT_ID, x-moto-account-id, access key)."""

    account: str
    region: str
    arn: str  # registeredBy
    partition: str = "aws"

    def arn_prefix(self) -> str:
        return f"arn:{self.partition}:ecs:{self.region}:{self.account}"


def paginate(
    items: Sequence[T],
    key: Callable[[T], Any],
    params: JSON,
    operation_name: str,
    fingerprint: Any,
    *,
    descending: bool = False,
) -> tuple[list[T], str | None]:
    """One page of `items` (already in order) and the next token, or None after the last page.

    The token holds the key of the last item returned and a digest of the filters, so a page never repeats or skips
    an item when others are added meanwhile, and a token is refused with other filters."""
    size = params.get("maxResults", page_size(operation_name))
    if not 1 <= size <= 100:
        raise invalid("maxResults must be between 1 and 100")
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:16]
    start = 0
    if params.get("nextToken"):
        try:
            token = json.loads(base64.urlsafe_b64decode(params["nextToken"].encode()))
            last, token_digest = token["after"], token["filters"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise invalid("the nextToken is not valid") from None
        if token_digest != digest:
            raise invalid("the nextToken does not match the request's filters")
        last = tuple(last) if isinstance(last, list) else last
        start = next(
            (i for i, item in enumerate(items) if (key(item) < last if descending else key(item) > last)), len(items)
        )
    page = list(items[start : start + size])
    if start + size >= len(items):
        return page, None
    after = key(page[-1])
    token_text = json.dumps({"after": list(after) if isinstance(after, tuple) else after, "filters": digest})
    return page, base64.urlsafe_b64encode(token_text.encode()).decode()
