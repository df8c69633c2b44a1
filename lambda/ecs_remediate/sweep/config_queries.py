"""What AWS Config knows about an account's task definitions: the advanced queries the sweep issues, and the reading
of their answers (an adapter; no verdict is given here).

Task definitions are immutable, so Config's recorded configuration of a revision is as good as a describe of its
content. Two queries, every page (100 results a page, NextToken paging):

- privileged: the revisions with a container whose `configuration.ContainerDefinitions.Privileged` is true;
- inventory: every recorded revision, with its whole `configuration` and its `tags`.

Against an organization aggregator (SelectAggregateResourceConfig, from the hub) both are narrowed to one account and
Region (`accountId`, `awsRegion`); the account's own recorder (SelectResourceConfig) answers for its Region only.

Config's `configuration` for AWS::ECS::TaskDefinition uses CloudFormation's property names (`ContainerDefinitions`,
`Privileged`, `LinuxParameters.Capabilities.Add`, ...): the API's member names with a capital first letter. The
record is read back into the API's shape by walking botocore's ECS model, so the judge reads it exactly as it reads a
describe. A record that does not read cleanly is never guessed at: it carries the problem, and the sweep describes
that revision.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config as BotoConfig
from botocore.model import ListShape, MapShape, Shape, StructureShape

from ..adapters import aws
from ..core.taskdef import TASK_DEFINITION_ARN_RE
from .rates import SELECT, SELECT_AGGREGATE

RESOURCE_TYPE = "AWS::ECS::TaskDefinition"
PAGE_SIZE = 100  # the largest Limit the API takes
MAX_RESULT_CHARS = 1 << 20  # one result string; a task definition's configuration is far below this

_AGGREGATOR_RE = re.compile(r"^[\w\-]{1,256}\Z", re.ASCII)  # the model's pattern and length
_ACCOUNT_RE = re.compile(r"^\d{12}\Z", re.ASCII)
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}\Z", re.ASCII)


class InventoryError(ValueError):
    """A Config source setting is invalid; the message says which."""


class UnreadableAnswer(Exception):
    """Config answered in a form this reader does not know: nothing of that query can be trusted."""


@dataclass(frozen=True)
class ConfigSource:
    """Where the sweep asks: the account's recorder (no aggregator), or an aggregator (in `aggregator_region`, the
    hub's Region by default) narrowed to `account`."""

    aggregator: str | None = None
    account: str | None = None
    aggregator_region: str | None = None

    def __post_init__(self) -> None:
        if self.aggregator is None:
            return
        if not _AGGREGATOR_RE.match(self.aggregator):
            raise InventoryError(f"Config aggregator name: 1-256 letters, digits, _ or -; got {self.aggregator!r}")
        if self.account is None or not _ACCOUNT_RE.match(self.account):
            raise InventoryError(f"a Config aggregator needs the swept account's 12-digit ID, got {self.account!r}")
        if self.aggregator_region is not None and not _REGION_RE.match(self.aggregator_region):
            raise InventoryError(f"Config aggregator Region: got {self.aggregator_region!r}")

    @property
    def operation(self) -> str:
        return SELECT if self.aggregator is None else SELECT_AGGREGATE

    def describe(self) -> str:
        return "the account's recorder" if self.aggregator is None else f"aggregator {self.aggregator}"


def _where(source: ConfigSource, region: str, *conditions: str) -> str:
    parts = [f"resourceType = '{RESOURCE_TYPE}'", *conditions]
    if source.aggregator is not None:
        if not _REGION_RE.match(region):  # it goes into the expression: never anything but a Region name
            raise InventoryError(f"Region: got {region!r}")
        parts += [f"accountId = '{source.account}'", f"awsRegion = '{region}'"]
    return " AND ".join(parts)


def privileged_query(source: ConfigSource, region: str) -> str:
    """The revisions Config records with a privileged container (true in any element of the array)."""
    return f"SELECT arn WHERE {_where(source, region, 'configuration.ContainerDefinitions.Privileged = true')}"


def inventory_query(source: ConfigSource, region: str) -> str:
    """Every revision Config records, with what the judge reads (its configuration) and its tags (the marker)."""
    return f"SELECT arn, configuration, tags WHERE {_where(source, region)}"


@dataclass(frozen=True)
class ConfigRecord:
    """One revision as Config recorded it, read back into DescribeTaskDefinition's shape. `problem` says why the
    record cannot stand in for a describe (then the sweep describes the revision)."""

    arn: str
    task_definition: dict[str, Any] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(default_factory=list)
    problem: str | None = None


def from_config_shape(value: Any, shape: Shape) -> Any:
    """Config's CloudFormation-style names back to the API's (`ContainerDefinitions` -> `containerDefinitions`), by the
    ECS model: structure members only (map keys such as DriverOpts' are data and kept as they are). Members the model
    does not know are dropped; values are kept as Config gave them (the judge is robust to any type)."""
    if isinstance(shape, StructureShape):
        if not isinstance(value, Mapping):
            return value
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            key = name[:1].upper() + name[1:]
            if key in value:
                out[name] = from_config_shape(value[key], member)
            elif name in value:
                out[name] = from_config_shape(value[name], member)
        return out
    if isinstance(shape, ListShape):
        return [from_config_shape(item, shape.member) for item in value] if isinstance(value, list) else value
    if isinstance(shape, MapShape):
        if not isinstance(value, Mapping):
            return value
        return {key: from_config_shape(item, shape.value) for key, item in value.items()}
    return value


def parse_arn(text: str) -> str | None:
    """The ARN of a privileged-query result, or None when the result is not one."""
    try:
        result = json.loads(text) if isinstance(text, str) and len(text) <= MAX_RESULT_CHARS else None
    except ValueError:
        return None
    arn = result.get("arn") if isinstance(result, dict) else None
    return arn if isinstance(arn, str) and TASK_DEFINITION_ARN_RE.match(arn) else None


def parse_record(text: Any, task_definition_shape: StructureShape) -> ConfigRecord | None:
    """One inventory result; None when it names no task definition ARN (the revision then counts as unknown to
    Config and is described)."""
    try:
        result = json.loads(text) if isinstance(text, str) and len(text) <= MAX_RESULT_CHARS else None
    except ValueError:
        result = None
    arn = result.get("arn") if isinstance(result, dict) else None
    match = TASK_DEFINITION_ARN_RE.match(arn) if isinstance(arn, str) else None
    if result is None or match is None:
        return None
    arn = match.string
    configuration = result.get("configuration")
    if not isinstance(configuration, Mapping):
        return ConfigRecord(arn, problem="no configuration in Config's record")
    recorded_arn = configuration.get("TaskDefinitionArn", configuration.get("taskDefinitionArn"))
    if recorded_arn != arn:
        return ConfigRecord(arn, problem="Config's configuration is not that of this ARN")
    task_definition = from_config_shape(configuration, task_definition_shape)
    if task_definition.get("family") != match["family"]:
        return ConfigRecord(arn, problem="Config's configuration names another family")
    containers = task_definition.get("containerDefinitions")
    if not isinstance(containers, list) or not containers or not all(isinstance(c, dict) for c in containers):
        return ConfigRecord(arn, problem="Config's record has no readable container definitions")
    if any(not isinstance(c.get("privileged", False), bool | None) for c in containers):
        return ConfigRecord(arn, problem="Config's record has a privileged flag that is not a boolean")
    tags = _tags(result.get("tags", []))
    if tags is None:
        return ConfigRecord(arn, problem="Config's record has tags in an unknown form")
    return ConfigRecord(arn, task_definition, tags)


def _tags(value: Any) -> list[dict[str, str]] | None:
    """Config gives tags as [{"key", "value"}] (a map in some record forms); anything else is unreadable."""
    if isinstance(value, Mapping):
        value = [{"key": key, "value": item} for key, item in value.items()]
    if not isinstance(value, list):
        return None
    tags = []
    for item in value:
        if not isinstance(item, Mapping):
            return None
        key, text = item.get("key"), item.get("value")
        if not isinstance(key, str) or not isinstance(text, str | None):
            return None
        tags.append({"key": key, "value": text or ""})
    return tags


class ConfigInventory:
    """The two queries for one account and Region, every page. config:SelectResourceConfig (resource "*": the action
    supports no narrower resource), or config:SelectAggregateResourceConfig on the aggregator's ARN."""

    def __init__(self, client: Any, source: ConfigSource, region: str, task_definition_shape: StructureShape) -> None:
        self._client, self.source, self.region = client, source, region
        self._shape = task_definition_shape

    def _pages(self, expression: str) -> Iterator[list[Any]]:
        kwargs: dict[str, Any] = {"Expression": expression, "PaginationConfig": {"PageSize": PAGE_SIZE}}
        if self.source.aggregator is not None:
            kwargs["ConfigurationAggregatorName"] = self.source.aggregator
        name = "select_resource_config" if self.source.aggregator is None else "select_aggregate_resource_config"
        paginator = self._client.get_paginator(name)
        for page in paginator.paginate(**kwargs):
            results = page.get("Results") or []
            yield list(results) if isinstance(results, list) else []

    def privileged_arns(self) -> set[str]:
        """Every page of the privileged query; raises ClientError/BotoCoreError as the client does, and
        UnreadableAnswer for a result that names no task definition (a privileged revision must never go unseen)."""
        found: set[str] = set()
        for page in self._pages(privileged_query(self.source, self.region)):
            for text in page:
                arn = parse_arn(text)
                if arn is None:
                    raise UnreadableAnswer("a result of the privileged query names no task definition ARN")
                found.add(arn)
        return found

    def record_pages(self) -> Iterator[list[ConfigRecord]]:
        """The inventory, a page at a time (results that name no task definition ARN are left out)."""
        for page in self._pages(inventory_query(self.source, self.region)):
            yield [record for record in (parse_record(text, self._shape) for text in page) if record is not None]


def config_client(region: str | None, *, max_attempts: int, pool: int = 4) -> Any:
    """A fresh Config client for one sweep: the function's botocore Config with standard retries (the rate adapts in
    sweep.rates.RateLimiter). Endpoint and credentials from the standard chain."""
    config = aws.BOTO_CONFIG.merge(
        BotoConfig(retries={"mode": "standard", "total_max_attempts": max_attempts}, max_pool_connections=pool)
    )
    return aws.new_session().client("config", region_name=region, config=config)
