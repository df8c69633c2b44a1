"""The exemption registry table (DynamoDB), as the stack reads it and approvers write it. Which items exempt what is
decided in core/exemptions.py; this is the I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..core.exemptions.evaluate import RegistryUnavailable, StaticRegistry
from ..core.exemptions.records import REGISTRY_KEY
from .aws import ClientError, error_code, is_transient

if TYPE_CHECKING:
    from ..core.exemptions.records import RegistryItem


class ExemptionRegistry:
    """The registry table: dynamodb:BatchGetItem (the function, per privileged revision) or dynamodb:Scan (the
    sweep, once per run: `snapshot`). The stack only reads it; approvers write it (`get`, `put`, `delete`,
    `update`: the CLI's `exempt`, cli/exempt_registry.py)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._client = dynamodb_client
        self.table_name = table_name

    def lookup(self, targets: Sequence[str]) -> list[RegistryItem]:
        from ..core.exemptions.records import from_dynamodb, parse_item  # noqa: PLC0415

        keys = [{REGISTRY_KEY: {"S": t}} for t in dict.fromkeys(targets)][:100]
        if not keys:
            return []
        found: list[RegistryItem] = []
        request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
        for _ in range(8):  # unprocessed keys come back under load; botocore already retried throttling
            response = self._call("batch_get_item", RequestItems=request)
            found += [parse_item(from_dynamodb(i)) for i in response.get("Responses", {}).get(self.table_name, [])]
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
        raise RegistryUnavailable(f"{self.table_name}: keys left unprocessed after 8 attempts")

    def snapshot(self) -> StaticRegistry:
        from ..core.exemptions.records import from_dynamodb, parse_item  # noqa: PLC0415

        records: list[RegistryItem] = []
        kwargs: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        while True:
            response = self._call("scan", **kwargs)
            records += [parse_item(from_dynamodb(item)) for item in response.get("Items", [])]
            if not response.get("LastEvaluatedKey"):
                return StaticRegistry(records)
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get(self, target: str) -> RegistryItem | None:
        from ..core.exemptions.records import from_dynamodb, parse_item  # noqa: PLC0415

        key = {REGISTRY_KEY: {"S": target}}
        item = self._call("get_item", TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        return parse_item(from_dynamodb(item)) if item else None

    def put(self, item: Mapping[str, Any], **condition: Any) -> None:
        """`item` typed; `condition`: ConditionExpression and its names and values (ConditionalCheckFailedException
        raises as the ClientError it is, for the caller to read again)."""
        self._call("put_item", TableName=self.table_name, Item=dict(item), **condition)

    def update(self, target: str, **expression: Any) -> None:
        self._call("update_item", TableName=self.table_name, Key={REGISTRY_KEY: {"S": target}}, **expression)

    def delete(self, target: str, **condition: Any) -> None:
        self._call("delete_item", TableName=self.table_name, Key={REGISTRY_KEY: {"S": target}}, **condition)

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, operation)(**kwargs)
        except ClientError as error:
            if is_transient(error) or error_code(error) == "ConditionalCheckFailedException":
                raise
            raise RegistryUnavailable(f"{self.table_name}: {operation} failed: {error_code(error)}") from error
