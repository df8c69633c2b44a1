"""Hypothesis strategies for task definitions and events, and the recorder of the reliability figures.

Task definitions are generated from botocore's own model of RegisterTaskDefinition (the same model the
runtime reads), so every generated one is valid per `ParamValidator`; a few members get hand-made strategies
where the model says too little (names, tags, the values that must stay secret). Environment values, secret
references and repository credentials are distinctive tokens (`SECRET-` + hex) so that a leak into a notice or
a log line is found by a plain substring search.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from ecs_remediate.core.taskdef import RESERVED_TAG_PREFIX, default_register_model

MODEL = default_register_model()
SECRET_PREFIX = "SECRET-"
SECRET_RE = re.compile(r"SECRET-[0-9a-f]{16}")
FIGURES_DIR = Path(__file__).resolve().parent.parent / "build" / "reliability"

# Reproducible in CI: the same examples on every run, no example database, no per-example deadline.
# Shrinking huge task definitions can take minutes: FUZZ_SHRINK=0 skips it while iterating locally.
NO_SHRINK = os.environ.get("FUZZ_SHRINK") == "0"
FUZZ = settings(
    derandomize=True,
    phases=[
        p for p in Phase if p is not Phase.explain and (p is not Phase.shrink or os.environ.get("FUZZ_SHRINK") != "0")
    ],
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
    ],
)


def record(name: str, **figures: Any) -> None:
    """Print a figure set and keep it under build/reliability/ (git-ignored) for the README's tables."""
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    (FIGURES_DIR / f"{name}.json").write_text(json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n")
    print(f"\nFIGURES {name}: {json.dumps(figures, sort_keys=True, default=str)}")


def scaled(examples: int) -> int:
    """`FUZZ_SCALE=0.1` makes a quick local run; CI and the README figures use the full counts."""
    return max(1, int(examples * float(os.environ.get("FUZZ_SCALE", "1"))))


# --- text -----------------------------------------------------------------------------------------------------

# Any Unicode scalar value (no lone surrogates: they cannot be encoded as UTF-8, which the API requires).
UNICODE = st.characters(codec="utf-8")
short_text = st.text(UNICODE, max_size=12)
# Huge, within what one task definition may carry (the API caps the whole JSON at 64 KiB).
huge_text = st.integers(min_value=1_000, max_value=8_000).flatmap(
    lambda n: st.sampled_from(["x", "é", "漢", "🙂", "\u200b"]).map(lambda ch: ch * n)
)
text = st.one_of(short_text, short_text, short_text, short_text, huge_text)
secret = st.binary(min_size=8, max_size=8).map(lambda b: SECRET_PREFIX + b.hex())
NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
name = st.text(NAME_CHARS, min_size=1, max_size=40)
family = st.one_of(name, st.text(NAME_CHARS, min_size=200, max_size=255))

# Tag text per the model's pattern: letters, digits, separators and _ . : / = + - @ (Unicode letters too).
TAG_CHARS = st.one_of(
    st.sampled_from("abcXYZ019 _.:/=+-@"),
    st.characters(categories=["L", "N", "Zs"], codec="utf-8"),
)
tag_key = st.text(TAG_CHARS, min_size=1, max_size=128).filter(lambda k: not k.lower().startswith(RESERVED_TAG_PREFIX))
tag_value = st.text(TAG_CHARS, max_size=256)


@st.composite
def tags(draw: st.DrawFn, max_size: int = 50) -> list[dict[str, str]]:
    keys = draw(st.lists(tag_key, max_size=max_size, unique_by=str.lower))
    return [{"key": k, "value": draw(tag_value)} for k in keys]


# --- values from the model ------------------------------------------------------------------------------------

MAX_OPTIONAL_MEMBERS = 8
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)


def _member_override(member: str, parent: str) -> st.SearchStrategy[Any] | None:
    if parent == "RegisterTaskDefinitionRequest" and member == "family":
        return family
    if parent == "RegisterTaskDefinitionRequest" and member == "tags":
        return tags()
    if parent == "ContainerDefinition" and member == "name":
        return name
    if parent == "ContainerDefinition" and member == "privileged":
        return st.sampled_from([True, True, False])
    if parent == "KeyValuePair" and member == "value":  # environment values
        return secret
    if parent == "Secret" and member == "valueFrom":
        return secret
    if parent == "RepositoryCredentials" and member == "credentialsParameter":
        return secret
    if parent == "ContainerDefinition" and member == "linuxParameters":
        return _shape(MODEL.service_model.shape_for("LinuxParameters"), all_members=True)
    return None


@st.composite
def _some_members(draw: st.DrawFn, fixed: st.SearchStrategy[dict[str, Any]], optional: dict[str, Any]) -> Any:
    value = draw(fixed)
    for key in draw(st.lists(st.sampled_from(sorted(optional)), max_size=MAX_OPTIONAL_MEMBERS, unique=True)):
        value[key] = draw(optional[key])
    return value


@functools.cache
def _shape(shape: Shape, *, all_members: bool = False, list_max: int = 3) -> st.SearchStrategy[Any]:
    if isinstance(shape, StructureShape):
        required = set(shape.required_members)
        members = {}
        for member, member_shape in shape.members.items():
            strategy = _member_override(member, shape.name)
            members[member] = strategy if strategy is not None else _shape(member_shape, list_max=list_max)
        if shape.metadata.get("union"):  # exactly one member set
            return st.one_of([st.fixed_dictionaries({k: v}) for k, v in members.items()])
        if all_members:
            return st.fixed_dictionaries(members)
        fixed = {k: v for k, v in members.items() if k in required}
        optional = {k: v for k, v in members.items() if k not in required}
        if len(optional) <= MAX_OPTIONAL_MEMBERS:
            return st.fixed_dictionaries(fixed, optional=optional)
        # A container has some 50 optional members: draw a few of them (every one is covered over a run)
        # rather than about half of them, which makes each example a hundred times dearer to generate.
        return _some_members(st.fixed_dictionaries(fixed), optional)
    if isinstance(shape, ListShape):
        return st.lists(
            _shape(shape.member, list_max=list_max), min_size=int(shape.metadata.get("min", 0)), max_size=list_max
        )
    if isinstance(shape, MapShape):
        return st.dictionaries(short_text, _shape(shape.value), max_size=3)
    if shape.type_name == "string":
        if shape.enum:
            return st.sampled_from(shape.enum)
        minimum = int(shape.metadata.get("min", 0))
        return text.filter(lambda s: len(s) >= minimum) if minimum else text
    if shape.type_name in ("integer", "long"):
        return st.integers(
            min_value=int(shape.metadata.get("min", -(2**31))), max_value=int(shape.metadata.get("max", 2**31 - 1))
        )
    if shape.type_name == "boolean":
        return st.booleans()
    if shape.type_name in ("double", "float"):
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    raise NotImplementedError(shape.type_name)


@functools.cache
def _containers(max_size: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    container = _shape(MODEL.service_model.shape_for("ContainerDefinition"))
    return st.lists(
        container.filter(lambda c: "name" in c), min_size=1, max_size=max_size, unique_by=lambda c: c["name"]
    )


@functools.cache
def _request(max_containers: int) -> st.SearchStrategy[dict[str, Any]]:
    top = {k: v for k, v in MODEL.input_shape.members.items() if k not in ("family", "containerDefinitions", "tags")}
    return st.fixed_dictionaries(
        {"family": family, "containerDefinitions": _containers(max_containers)},
        optional={**{k: _shape(v) for k, v in top.items()}, "tags": tags()},
    )


@st.composite
def register_inputs(draw: st.DrawFn, max_containers: int = 10) -> dict[str, Any]:
    """A RegisterTaskDefinition input, valid per the model: 1-10 containers, 0-50 tags, unicode, huge strings."""
    params: dict[str, Any] = draw(_request(max_containers))
    if draw(st.booleans()):  # make sure a good share of the cases carry something to remediate
        params["containerDefinitions"][draw(st.integers(0, len(params["containerDefinitions"]) - 1))]["privileged"] = (
            True
        )
    return params


# --- the same from a seed (fast) ---------------------------------------------------------------------------------
# Hypothesis spends about 20 us per choice; a rich task definition is ~1,000 choices. For the bulk of the fuzz
# cases hypothesis draws the seed and the shape knobs, and a seeded generator walks the same model.

_HUGE_CHARS = "xé漢🙂\u200b"


def random_text(rng: random.Random, minimum: int = 0) -> str:
    roll = rng.random()
    if roll < 0.05:
        return rng.choice(_HUGE_CHARS) * rng.randint(1_000, 8_000)
    size = rng.randint(minimum, max(minimum, 12))
    if roll < 0.5:
        return "".join(rng.choice(NAME_CHARS + " ./:=@") for _ in range(size))
    chars = []
    while len(chars) < size:
        code = rng.choice((rng.randint(0, 0x7F), rng.randint(0x80, 0xFFFF), rng.randint(0x10000, 0x10FFFF)))
        if not 0xD800 <= code <= 0xDFFF:
            chars.append(chr(code))
    return "".join(chars)


def random_name(rng: random.Random, max_size: int = 40) -> str:
    return "".join(rng.choice(NAME_CHARS) for _ in range(rng.randint(1, max_size)))


def random_value(shape: Shape, rng: random.Random, parent: str = "", member: str = "", depth: int = 0) -> Any:
    """A value valid per the model for `shape`, with the same overrides as the hypothesis strategy."""
    if parent == "ContainerDefinition" and member == "name":
        return random_name(rng)
    if parent == "ContainerDefinition" and member == "privileged":
        return rng.random() < 0.6
    if (parent, member) in (
        ("KeyValuePair", "value"),
        ("Secret", "valueFrom"),
        ("RepositoryCredentials", "credentialsParameter"),
    ):
        return SECRET_PREFIX + rng.randbytes(8).hex()
    if isinstance(shape, StructureShape):
        members = dict(shape.members)
        if shape.metadata.get("union"):
            key = rng.choice(sorted(members))
            return {key: random_value(members[key], rng, shape.name, key, depth + 1)}
        keys = set(shape.required_members)
        optional = sorted(set(members) - keys)
        full = shape.name == "LinuxParameters"  # deep linuxParameters: every member
        keys |= set(optional) if full else set(rng.sample(optional, rng.randint(0, min(len(optional), 12))))
        return {k: random_value(members[k], rng, shape.name, k, depth + 1) for k in sorted(keys)}
    if isinstance(shape, ListShape):
        size = rng.randint(int(shape.metadata.get("min", 0)), 3)
        return [random_value(shape.member, rng, parent, member, depth + 1) for _ in range(size)]
    if isinstance(shape, MapShape):
        return {random_text(rng): random_value(shape.value, rng, depth=depth + 1) for _ in range(rng.randint(0, 3))}
    if shape.type_name == "string":
        return rng.choice(shape.enum) if shape.enum else random_text(rng, int(shape.metadata.get("min", 0)))
    if shape.type_name in ("integer", "long"):
        low, high = int(shape.metadata.get("min", -(2**31))), int(shape.metadata.get("max", 2**31 - 1))
        return rng.choice((low, high, rng.randint(low, high), rng.randint(max(low, 0), min(high, 4096))))
    if shape.type_name == "boolean":
        return rng.random() < 0.5
    if shape.type_name in ("double", "float"):
        return rng.uniform(-1e6, 1e6)
    raise NotImplementedError(shape.type_name)


def random_tags(rng: random.Random, count: int) -> list[dict[str, str]]:
    tag_chars = "abcXYZ019 _.:/=+-@éß漢字Ωж"
    found: dict[str, dict[str, str]] = {}
    while len(found) < count:
        key = "".join(rng.choice(tag_chars) for _ in range(rng.choice((1, 8, 20, 128))))
        if not key.lower().startswith(RESERVED_TAG_PREFIX):
            found.setdefault(
                key.lower(),
                {"key": key, "value": "".join(rng.choice(tag_chars) for _ in range(rng.choice((0, 5, 256))))},
            )
    return list(found.values())


@st.composite
def seeded_register_inputs(draw: st.DrawFn, max_containers: int = 10, max_tags: int = 50) -> dict[str, Any]:
    """Like `register_inputs`, with hypothesis choosing the seed, the number of containers and tags and which
    containers are privileged, and a seeded walk of the model filling in the rest."""
    rng = random.Random(draw(st.integers(0, 2**64)))
    containers = draw(st.integers(1, max_containers))
    privileged = draw(st.lists(st.booleans(), min_size=containers, max_size=containers))
    request = MODEL.input_shape
    params: dict[str, Any] = {"family": draw(family)}
    for key in rng.sample(sorted(set(request.members) - {"family", "containerDefinitions", "tags"}), rng.randint(0, 8)):
        params[key] = random_value(request.members[key], rng, request.name, key)
    container_shape = MODEL.service_model.shape_for("ContainerDefinition")
    params["containerDefinitions"] = []
    for index, is_privileged in enumerate(privileged):
        container = random_value(container_shape, rng)
        container["name"] = f"c{index}-{random_name(rng, 30)}"
        if is_privileged or rng.random() < 0.5:
            container["privileged"] = is_privileged
        params["containerDefinitions"].append(container)
    tag_count = draw(st.sampled_from([0, 0, 1, 3, 10, 49, 50])) if max_tags >= 50 else draw(st.integers(0, max_tags))
    if tag_count:
        params["tags"] = random_tags(rng, tag_count)
    return params


OUTPUT_ONLY = {
    "taskDefinitionArn": None,  # filled from family and revision
    "revision": None,
    "status": st.sampled_from(["ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"]),
    "requiresAttributes": st.lists(st.fixed_dictionaries({"name": short_text}), max_size=3),
    "compatibilities": st.lists(st.sampled_from(["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"]), max_size=3),
    "registeredAt": st.sampled_from(["2026-01-02T03:04:05.678000+00:00", "2026-11-29T05:12:11Z"]),
    "registeredBy": st.just("arn:aws:iam::123456789012:user/alice"),
    "deregisteredAt": st.just("2026-11-30T00:00:00Z"),
    "deleteRequestedAt": st.just("2026-12-01T00:00:00Z"),
}


def sprinkle_nulls(value: Any, rng: random.Random, rate: float = 0.05) -> Any:
    """JSON nulls as console and Terraform exports carry them: extra null members and null list items."""
    if isinstance(value, dict):
        out = {k: sprinkle_nulls(v, rng, rate) for k, v in value.items()}
        extra = rng.choice(["proxyConfiguration", "ipcMode", "pidMode", "cpu", "memory", "hostname"])
        if extra not in out and rng.random() < rate:
            out[extra] = None
        return out
    if isinstance(value, list):
        out_list = [sprinkle_nulls(v, rng, rate) for v in value]
        if out_list and rng.random() < rate:
            out_list.insert(rng.randrange(len(out_list) + 1), None)
        return out_list
    return value


@st.composite
def documents(
    draw: st.DrawFn, inputs: st.SearchStrategy[dict[str, Any]] | None = None
) -> tuple[str, Any, dict[str, Any]]:
    """(kind, raw JSON document as a user or the API would give it, the RegisterTaskDefinition input behind it).

    kind: describe-response (with output-only members and top-level tags), task-definition (console export,
    tags inline) or container-definitions (a bare array). Nulls are sprinkled at any depth.
    """
    params = draw(inputs if inputs is not None else register_inputs())
    kind = draw(st.sampled_from(["describe-response", "describe-response", "task-definition", "container-definitions"]))
    rng = random.Random(draw(st.integers(0, 2**32)))
    if kind == "container-definitions":
        params = {"containerDefinitions": params["containerDefinitions"]}
        return kind, sprinkle_nulls(copy.deepcopy(params["containerDefinitions"]), rng), params
    task_definition = {k: v for k, v in params.items() if k != "tags"}
    revision = draw(st.integers(1, 10**6))
    extra = {k: draw(v) for k, v in OUTPUT_ONLY.items() if v is not None and draw(st.booleans())}
    task_definition.update(
        taskDefinitionArn=f"arn:aws:ecs:us-east-1:123456789012:task-definition/{params['family']}:{revision}",
        revision=revision,
        **extra,
    )
    reserved = draw(
        st.lists(st.sampled_from(["aws:cloudformation:stack-name", "AWS:created-by"]), max_size=2, unique=True)
    )
    all_tags = params.get("tags", []) + [{"key": k, "value": "x"} for k in reserved]
    raw: dict[str, Any]
    if kind == "describe-response":
        raw = {"taskDefinition": task_definition, "tags": all_tags, "ResponseMetadata": {"HTTPStatusCode": 200}}
    else:
        raw = {**task_definition, "tags": all_tags}
    return kind, sprinkle_nulls(copy.deepcopy(raw), rng), params


# --- hostile JSON ---------------------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), INT32, st.floats(allow_nan=False, allow_infinity=False), text)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(short_text, children, max_size=4)),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (dict keys and list indexes) inside a JSON value, the root included."""
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += paths(v, (*prefix, i))
    return found


def set_path(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    value[path[0]] = set_path(value[path[0]], path[1:], new)
    return value


def delete_path(value: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return None
    parent = value
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    return value


@st.composite
def mutated(draw: st.DrawFn, base: Any, mutations: int = 3) -> tuple[Any, list[tuple[Any, ...]]]:
    """`base` with 1-`mutations` random edits: a value replaced by any JSON (wrong types anywhere), a member
    deleted, a huge string. Returns the document and the paths it touched."""
    value = copy.deepcopy(base)
    touched: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, mutations))):
        candidates = paths(value)
        path = draw(st.sampled_from(candidates))
        action = draw(st.sampled_from(["replace", "replace", "delete", "huge"]))
        if action == "delete" and path:
            value = delete_path(value, path)
        elif action == "huge":
            value = set_path(value, path, draw(huge_text))
        else:
            value = set_path(value, path, draw(json_values))
        touched.append(path)
    return value, touched


def leaked_secrets(texts: list[str], secrets: set[str]) -> list[str]:
    """Every secret token found in any text (the tokens are unique; a hit is a leak)."""
    joined = "\n".join(texts)
    return sorted(s for s in secrets if s in joined)


def collect_secrets(value: Any) -> set[str]:
    return set(SECRET_RE.findall(json.dumps(value, ensure_ascii=False)))


Check = Callable[[Any], None]


# --- the harness around a moto server ---------------------------------------------------------------------------
# Faults are injected with botocore `before-send` handlers on our own cached clients: a handler that returns a
# response short-circuits the HTTP call to the moto server, and one that raises looks like a network failure.
# botocore's retry logic sees them as it would see the real thing.


class RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


def error_response(request: Any, status: int, code: str, message: str, *, protocol: str = "json") -> Any:
    from botocore.awsrequest import AWSResponse

    if protocol == "query":  # SNS
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>fault</RequestId></ErrorResponse>"
        ).encode()
        return AWSResponse(request.url, status, {"content-type": "text/xml"}, RawBody(body))
    body = json.dumps({"__type": code, "message": message}).encode()
    return AWSResponse(
        request.url, status, {"x-amzn-errortype": code, "content-type": "application/x-amz-json-1.1"}, RawBody(body)
    )


FAULTS = (
    "throttle",
    "500",
    "read-timeout",
    "connect-timeout",
    "access-denied",
    "pass-role-denied",
    "gone",
    "lost-response",
)


class Fault:
    """Make the next `times` attempts of `service`.`operation` fail with `kind` (times=None: every attempt).

    lost-response: the request reaches the emulator and is carried out, then the response is lost (a read
    timeout after the server acted): the ambiguous failure that makes a blind retry of a non-idempotent
    call do the work twice."""

    def __init__(self, client: Any, operation: str, kind: str, times: int | None, body: str | None = None) -> None:
        self.client, self.operation, self.kind, self.times, self.body = client, operation, kind, times, body
        self.attempts = 0
        self.injected = 0
        self.protocol = client.meta.service_model.protocol
        self.event = f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}"
        client.meta.events.register_first(self.event, self, unique_id=f"fault-{id(self)}")

    def remove(self) -> None:
        self.client.meta.events.unregister(self.event, unique_id=f"fault-{id(self)}")

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

        if self.body is not None and self.body.encode() not in (request.body or b""):
            return None
        self.attempts += 1
        if self.times is not None and self.injected >= self.times:
            return None
        self.injected += 1
        if self.kind == "throttle":
            code = {"sns": "Throttling", "dynamodb": "ProvisionedThroughputExceededException"}.get(
                self.client.meta.service_model.endpoint_prefix, "ThrottlingException"
            )
            return error_response(request, 400, code, "Rate exceeded", protocol=self.protocol)
        if self.kind == "500":
            code = "InternalFailure" if self.protocol == "query" else "ServerException"
            return error_response(request, 500, code, "internal error", protocol=self.protocol)
        if self.kind == "read-timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if self.kind == "connect-timeout":
            raise ConnectTimeoutError(endpoint_url=request.url)
        if self.kind == "access-denied":
            code = "AuthorizationError" if self.protocol == "query" else "AccessDeniedException"
            return error_response(
                request, 403, code, f"not authorized to perform {self.operation}", protocol=self.protocol
            )
        if self.kind == "pass-role-denied":
            message = (
                "User: arn:aws:sts::123456789012:assumed-role/fn/ecs-remediate is not authorized to perform: "
                "iam:PassRole on resource: arn:aws:iam::123456789012:role/app"
            )
            return error_response(request, 400, "AccessDeniedException", message, protocol=self.protocol)
        if self.kind == "gone":  # what ECS answers for a revision deleted after the event
            message = "Unable to describe task definition."
            return error_response(request, 400, "ClientException", message, protocol=self.protocol)
        if self.kind in ("lost-response", "carried-out-500"):
            import urllib3

            http = urllib3.PoolManager()
            http.request(request.method, request.url, body=request.body, headers=dict(request.headers.items()))
            if self.kind == "carried-out-500":
                return error_response(request, 500, "ServerException", "internal error", protocol=self.protocol)
            raise ReadTimeoutError(endpoint_url=request.url)
        raise ValueError(self.kind)


class Calls:
    """Every API call (operation names, once per call, not per attempt) our client for `service` makes."""

    def __init__(self, client: Any) -> None:
        self.names: list[str] = []
        client.meta.events.register("before-call", self._seen, unique_id=f"calls-{id(self)}")

    def _seen(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)

    def count(self, *names: str) -> int:
        return sum(1 for n in self.names if n in names)

    @property
    def writes(self) -> list[str]:
        return [n for n in self.names if not n.startswith(("Describe", "List", "Get"))]
