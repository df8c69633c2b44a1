"""AWS Config's advanced query (SelectResourceConfig, SelectAggregateResourceConfig), emulated for exactly the queries
ecs-remediate issues and answered from moto's own state in this process: its ECS task definitions (ACTIVE and
INACTIVE: Config remembers a deregistered revision), its Config recorders and aggregators, its organization.

moto 5.2.5 has no query engine (its SelectResourceConfig returns canned results, one page). Here, as AWS documents:

- every request is checked against botocore's `config` model (ParamValidator; Limit and MaxResults 0-100 give
  InvalidLimitException, other problems ValidationException); a query of another form is refused with
  InvalidExpressionException; an unknown aggregator with NoSuchConfigurationAggregatorException;
- Results are JSON strings holding the selected fields (dotted paths nest: `configuration.TaskDefinitionArn` is
  {"configuration": {"TaskDefinitionArn": ...}}), QueryInfo.SelectFields names them, NextToken pages at Limit (or
  MaxResults), 25 when neither is given; a query's pages come from one snapshot taken at its first page;
- `configuration` is the revision in CloudFormation's property names (the API's member names with a capital first
  letter, by the ECS model; map keys untouched), limited to the properties Config's resource schema lists;
- records exist only where a recorder is recording AWS::ECS::TaskDefinition (the account's own for
  SelectResourceConfig; each source account and Region of the aggregator, account sources authorized, for
  SelectAggregateResourceConfig); no recorder means no records, not an error.

Test hooks (`fail`, `forget`, `reset`, here and over HTTP under /moto-api/config-queries/) make Config fail or miss
revisions.

Where it may differ from AWS:
- only the two query forms are answered; any other expression, which AWS would answer, is InvalidExpressionException;
- 25 results a page without Limit or MaxResults is documented for SelectAggregateResourceConfig and assumed for
  SelectResourceConfig; results come in registration order (AWS states none); tokens are kept for the last 64
  queries and never expire by time;
- recording is immediate and complete (AWS records within minutes: `forget` plays the lag); a deleted revision
  disappears (AWS keeps a ResourceDeleted item); there is no ResourceNotRecorded item and no aggregation delay;
- `configuration` holds moto's defaults as given and only the schema's top-level properties; a real record may hold
  more or fewer, or render empty values otherwise; `tags` is a list of {"key", "value"}, inferred from an example
  that shows only `"tags":[]`;
- IAM is not enforced (AccessDeniedException only from the `fail` hook) and the emulator never throttles
  (throttle_proxy.py does); the validation messages are botocore's, not AWS's;
- the full list, with the reasons: docs/sweep-config.md#emulator.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from botocore.model import ListShape, MapShape, ServiceModel, Shape, StructureShape
from botocore.validate import ParamValidator

from emulators.daemon_api import ApiError, Caller

JSON = dict[str, Any]
RESOURCE_TYPE = "AWS::ECS::TaskDefinition"
SELECT, SELECT_AGGREGATE = "SelectResourceConfig", "SelectAggregateResourceConfig"
OPERATIONS = frozenset({SELECT, SELECT_AGGREGATE})
HOOK_PREFIX = "/moto-api/config-queries/"
DEFAULT_PAGE_SIZE = 25  # the API reference: a non-aggregation query without Limit or MaxResults
MAX_SNAPSHOTS = 64
# The top-level properties Config's resource schema lists for AWS::ECS::TaskDefinition (configuration.<name>...).
CONFIGURATION_PROPERTIES = frozenset(
    {
        "ContainerDefinitions",
        "Cpu",
        "ExecutionRoleArn",
        "Family",
        "InferenceAccelerators",
        "IpcMode",
        "Memory",
        "NetworkMode",
        "PidMode",
        "PlacementConstraints",
        "ProxyConfiguration",
        "RequiresCompatibilities",
        "Status",
        "TaskDefinitionArn",
        "TaskRoleArn",
        "Volumes",
    }
)
# The fields the project selects; any other is refused.
FIELDS = ("arn", "resourceId", "resourceType", "accountId", "awsRegion", "configuration", "tags")
_SELECT_RE = re.compile(r"^\s*SELECT\s+(?P<fields>.+?)\s+WHERE\s+(?P<where>.+?)\s*$", re.IGNORECASE | re.DOTALL)
_CONDITIONS = {
    "type": re.compile(r"^resourceType\s*=\s*'(?P<value>AWS::ECS::TaskDefinition)'$"),
    "privileged": re.compile(r"^configuration\.ContainerDefinitions\.Privileged\s*=\s*(?P<value>true)$", re.I),
    "account": re.compile(r"^accountId\s*=\s*'(?P<value>\d{12})'$"),
    "region": re.compile(r"^awsRegion\s*=\s*'(?P<value>[a-z]{2}(-[a-z]+)+-\d{1,2})'$"),
}


@cache
def service_model() -> ServiceModel:
    import botocore.session

    return botocore.session.get_session().get_service_model("config")


@cache
def ecs_task_definition_shape() -> StructureShape:
    import botocore.session

    ecs = botocore.session.get_session().get_service_model("ecs")
    output = ecs.operation_model("DescribeTaskDefinition").output_shape
    assert isinstance(output, StructureShape)
    shape = output.members["taskDefinition"]
    assert isinstance(shape, StructureShape)
    return shape


def target_prefix() -> str:
    return str(service_model().metadata["targetPrefix"])  # StarlingDoveService


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    privileged_only: bool
    account: str | None
    region: str | None


def invalid_expression(message: str) -> ApiError:
    return ApiError("InvalidExpressionException", message)


def parse_query(expression: str, *, aggregate: bool) -> Query:
    """The two forms the project issues (docs/sweep-config.md#queries); anything else is InvalidExpressionException.
    SelectAggregateResourceConfig must be narrowed to one account and Region, SelectResourceConfig must not be."""
    match = _SELECT_RE.match(expression)
    if match is None:
        raise invalid_expression("expected SELECT <fields> WHERE <conditions>")
    fields = tuple(part.strip() for part in match["fields"].split(","))
    for name in fields:
        if name not in FIELDS:
            raise invalid_expression(f"this emulator answers only the fields {', '.join(FIELDS)}; got {name[:80]!r}")
    if len(set(fields)) != len(fields):
        raise invalid_expression("a field is selected twice")
    found: dict[str, str] = {}
    for condition in re.split(r"\s+AND\s+", match["where"].strip(), flags=re.IGNORECASE):
        kind = next((k for k, pattern in _CONDITIONS.items() if pattern.match(condition.strip())), None)
        if kind is None or kind in found:
            raise invalid_expression(f"condition not supported by this emulator: {condition.strip()[:120]!r}")
        found[kind] = _CONDITIONS[kind].match(condition.strip())["value"]  # type: ignore[index]
    if "type" not in found:
        raise invalid_expression(f"the query must name resourceType = '{RESOURCE_TYPE}'")
    narrowed = "account" in found and "region" in found
    if aggregate != narrowed or ("account" in found) != ("region" in found):
        which = "needs" if aggregate else "takes no"
        raise invalid_expression(f"{SELECT_AGGREGATE if aggregate else SELECT} {which} accountId and awsRegion here")
    return Query(fields, "privileged" in found, found.get("account"), found.get("region"))


def to_config_shape(value: Any, shape: Shape) -> Any:
    """An API-shaped value in CloudFormation's names (structure members capitalised; map keys are data)."""
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        return {
            name[:1].upper() + name[1:]: to_config_shape(item, shape.members[name])
            for name, item in value.items()
            if name in shape.members and item is not None
        }
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [to_config_shape(item, shape.member) for item in value]
    if isinstance(shape, MapShape) and isinstance(value, Mapping):
        return {key: to_config_shape(item, shape.value) for key, item in value.items()}
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def api_shape(task_definition: Any) -> JSON:
    """moto's TaskDefinition object as DescribeTaskDefinition's taskDefinition (attributes by member name)."""
    shape = ecs_task_definition_shape()
    out: JSON = {}
    for name in shape.members:
        value = task_definition.arn if name == "taskDefinitionArn" else getattr(task_definition, _snake(name), None)
        if value is not None and not callable(value):
            out[name] = value
    return out


@dataclass
class Failure:
    operation: str  # an operation name, or "*"
    code: str
    message: str
    status: int
    remaining: int | None  # None: every matching call
    after_pages: int  # calls answered normally before the first failure


class ConfigQueries:
    """The emulated advanced query: `dispatch(operation, params, caller)`; hooks `fail`, `forget`, `reset`."""

    OPERATIONS = OPERATIONS

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[str, tuple[tuple[Any, ...], list[str]]] = OrderedDict()
        self._ids = itertools.count(1)
        self.failures: list[Failure] = []
        self.forgotten: set[str] = set()
        self.calls: dict[str, int] = {}

    # -- hooks -----------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self._snapshots.clear()
            self.failures.clear()
            self.forgotten.clear()
            self.calls.clear()

    def fail(
        self,
        operation: str = "*",
        code: str = "AccessDeniedException",
        message: str = "User is not authorized to perform this action",
        *,
        status: int = 400,
        times: int | None = None,
        after_pages: int = 0,
    ) -> None:
        """Answer matching calls with this error (after `after_pages` normal answers; `times` at most)."""
        with self._lock:
            self.failures.append(Failure(operation, code, message, status, times, after_pages))

    def forget(self, arns: list[str]) -> None:
        """Config has no record of these revisions (not recorded yet: Config records within minutes)."""
        with self._lock:
            self.forgotten.update(arns)

    def hook(self, name: str, request: JSON) -> JSON:
        if name == "fail":
            self.fail(
                str(request.get("operation", "*")),
                str(request.get("code", "AccessDeniedException")),
                str(request.get("message", "User is not authorized to perform this action")),
                status=int(request.get("status", 400)),
                times=None if request.get("times") is None else int(request["times"]),
                after_pages=int(request.get("afterPages", 0)),
            )
        elif name == "forget":
            self.forget([str(arn) for arn in request["arns"]])
        elif name == "reset":
            self.reset()
        else:
            raise KeyError(name)
        return {"ok": True}

    # -- the API ---------------------------------------------------------------------------------------------------
    def dispatch(self, operation: str, params: Any, caller: Caller) -> JSON:
        with self._lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1
            self._injected(operation)
        params = validate_request(operation, params)
        aggregate = operation == SELECT_AGGREGATE
        query = parse_query(params["Expression"], aggregate=aggregate)
        page_size = int(params.get("Limit") or params.get("MaxResults") or DEFAULT_PAGE_SIZE)
        aggregator = str(params.get("ConfigurationAggregatorName", ""))
        fingerprint = (operation, params["Expression"], aggregator, caller.account, caller.region)
        token = params.get("NextToken")
        if token:
            results, offset = self._snapshot(str(token), fingerprint)
        else:
            if aggregate:
                account, region = str(query.account), str(query.region)
                covered = self._aggregated(caller, aggregator, account, region)
            else:
                account, region, covered = caller.account, caller.region, True
            records = self._records(account, region) if covered and _recording(account, region) else []
            results = [json.dumps(_select(record, query.fields)) for record in records if _matches(record, query)]
            offset = 0
        answer: JSON = {
            "Results": results[offset : offset + page_size],
            "QueryInfo": {"SelectFields": [{"Name": name} for name in query.fields]},
        }
        if offset + page_size < len(results):
            answer["NextToken"] = self._keep(fingerprint, results, offset + page_size)
        return validate_response(operation, answer)

    def _injected(self, operation: str) -> None:
        for failure in self.failures:
            if failure.operation not in ("*", operation):
                continue
            if failure.after_pages > 0:
                failure.after_pages -= 1
                continue
            if failure.remaining is None or failure.remaining > 0:
                if failure.remaining is not None:
                    failure.remaining -= 1
                raise ApiError(failure.code, failure.message, failure.status)

    def _keep(self, fingerprint: tuple[Any, ...], results: list[str], offset: int) -> str:
        with self._lock:
            snapshot = next((sid for sid, (_, kept) in self._snapshots.items() if kept is results), None)
            if snapshot is None:
                snapshot = str(next(self._ids))
                self._snapshots[snapshot] = (fingerprint, results)
                while len(self._snapshots) > MAX_SNAPSHOTS:
                    self._snapshots.popitem(last=False)
        return f"{snapshot}:{offset}"

    def _snapshot(self, token: str, fingerprint: tuple[Any, ...]) -> tuple[list[str], int]:
        snapshot, _, offset = token.partition(":")
        with self._lock:
            kept = self._snapshots.get(snapshot)
        if kept is None or kept[0] != fingerprint or not offset.isdigit() or int(offset) > len(kept[1]):
            raise ApiError("InvalidNextTokenException", "The specified next token is invalid.")
        return kept[1], int(offset)

    def _records(self, account: str, region: str) -> list[JSON]:
        """Every task definition moto holds in that account and Region (ACTIVE and INACTIVE), as Config records it."""
        from moto.ecs.models import ecs_backends

        backend = ecs_backends[account][region]
        with self._lock:
            forgotten = set(self.forgotten)
        records = []
        for revisions in list(backend.task_definitions.values()):
            for task_definition in list(revisions.values()):
                if task_definition.arn in forgotten:
                    continue
                api = api_shape(task_definition)
                configuration = to_config_shape(api, ecs_task_definition_shape())
                records.append(
                    {
                        "arn": task_definition.arn,
                        "resourceId": task_definition.arn,
                        "resourceType": RESOURCE_TYPE,
                        "accountId": account,
                        "awsRegion": region,
                        "configuration": {k: v for k, v in configuration.items() if k in CONFIGURATION_PROPERTIES},
                        "tags": [{"key": t["key"], "value": t.get("value", "")} for t in task_definition.tags],
                        "privileged": any(
                            isinstance(c, dict) and c.get("privileged") is True
                            for c in api.get("containerDefinitions", [])
                        ),
                    }
                )
        return records

    def _aggregated(self, caller: Caller, name: str, account: str, region: str) -> bool:
        """Whether the caller's aggregator `name` covers that account and Region (NoSuchConfigurationAggregator...)."""
        from moto.config.models import config_backends

        aggregator = config_backends[caller.account][caller.region].config_aggregators.get(name)
        if aggregator is None:
            raise ApiError(
                "NoSuchConfigurationAggregatorException", f"The configuration aggregator {name} does not exist."
            )
        if aggregator.organization_aggregation_source is not None:
            source = aggregator.organization_aggregation_source
            return _in_regions(region, source.aws_regions, source.all_aws_regions) and account in _organization(
                caller.account
            )
        for source in aggregator.account_aggregation_sources or []:
            if account in source.account_ids and _in_regions(region, source.aws_regions, source.all_aws_regions):
                authorizations = config_backends[account][region].aggregation_authorizations
                return account == caller.account or f"{caller.account}/{caller.region}" in authorizations
        return False


def _in_regions(region: str, regions: list[str] | None, every: bool | None) -> bool:
    return bool(every) or region in (regions or [])


def _organization(account: str) -> set[str]:
    from moto.organizations.models import organizations_backends

    master, partition = organizations_backends.master_accounts.get(account, (account, "aws"))
    backend = organizations_backends[master][partition]
    return ({master} | {a.id for a in backend.accounts}) if backend.org is not None else set()


def _recording(account: str, region: str) -> bool:
    """A recorder that is recording AWS::ECS::TaskDefinition in that account and Region."""
    from moto.config.models import config_backends

    for recorder in list(config_backends[account][region].recorders.values()):
        group = recorder.recording_group
        strategy = (group.recording_strategy or {}).get("useOnly")
        excluded = (group.exclusion_by_resource_types or {}).get("resourceTypes") or []
        if recorder.status.recording and (
            group.all_supported
            or RESOURCE_TYPE in (group.resource_types or [])
            or (strategy == "EXCLUSION_BY_RESOURCE_TYPES" and RESOURCE_TYPE not in excluded)
        ):
            return True
    return False


def _matches(record: JSON, query: Query) -> bool:
    return bool(record["privileged"]) or not query.privileged_only


def _select(record: JSON, fields: tuple[str, ...]) -> JSON:
    return {name: record[name] for name in fields}


def validate_request(operation: str, params: Any) -> JSON:
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "the request body must be a JSON object")
    shape = service_model().operation_model(operation).input_shape
    assert shape is not None
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        first = next((line for line in report.generate_report().splitlines() if line.strip()), "invalid request")
        raise ApiError("ValidationException", first.split(", ")[0].strip())
    for name in ("Limit", "MaxResults"):
        member = shape.members.get(name)
        value = params.get(name)
        if member is not None and value is not None:
            low, high = member.metadata.get("min", 0), member.metadata.get("max", 100)
            if not low <= int(value) <= high:
                raise ApiError("InvalidLimitException", f"{name} must be between {low} and {high}.")
    for name, member in shape.members.items():  # ParamValidator leaves out patterns ([\w\-]+ for the aggregator)
        pattern, value = member.metadata.get("pattern"), params.get(name)
        if pattern and isinstance(value, str) and re.fullmatch(pattern, value) is None:
            raise ApiError("ValidationException", f"{name} must satisfy the pattern {pattern}")
    expression = params.get("Expression", "")
    maximum = shape.members["Expression"].metadata.get("max", 4096)
    if len(expression) > maximum:
        raise ApiError("ValidationException", f"Expression must be at most {maximum} characters long")
    return params


def validate_response(operation: str, body: JSON) -> JSON:
    """Our own answer against the output shape: a failure is an emulator bug (AssertionError, a 500)."""
    shape = service_model().operation_model(operation).output_shape
    assert shape is not None
    report = ParamValidator().validate(body, shape)
    assert not report.has_errors(), (operation, report.generate_report())
    return body


def start_recorder(
    config: Any, s3: Any, bucket: str = "config-delivery", resource_types: list[str] | None = None
) -> None:
    """What an account that records its task definitions has: a recorder (every supported type, or `resource_types`),
    a delivery channel (moto requires one to start), recording. `config` and `s3` are boto3 clients."""
    s3.create_bucket(Bucket=bucket)
    group = {"allSupported": False, "resourceTypes": resource_types} if resource_types else {"allSupported": True}
    config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": "arn:aws:iam::123456789012:role/config",
            "recordingGroup": group,
        }
    )
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": bucket})
    config.start_configuration_recorder(ConfigurationRecorderName="default")
