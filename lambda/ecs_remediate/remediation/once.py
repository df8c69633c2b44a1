"""Once per source revision, once per notice: the two Powertools Idempotency guards of the remediation path (one
DynamoDB table, shared by the function, the sweep and the hub) and how their records are read.

- The copy's guard (COPY_KEY_PREFIX, keyed on the source revision ARN) spans the whole remediation of the invocation
  that makes the copy: register, ledger, restore, read-back, history, follow-up and the notice. Its completed record
  says which notice that invocation sent (`notified`), so its notice needs no guard of its own: the record that
  stops a second copy stops a second notice too (docs/performance.md, "Calls per event").
- The notice's guard (NOTICE_KEY_PREFIX, keyed on `notice_key`) covers every other notice: the other outcomes, and a
  remediated notice sent by an attempt that found the copy already made, unless the copy's record names it sent.
"""

from __future__ import annotations

import copy as copy_module
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord

COPY_KEY_PREFIX = "ecs-remediate-copy"  # shared by the function and the sweep: one copy per source revision
NOTICE_KEY_PREFIX = "ecs-remediate-notice"  # one notice per revision, outcome, copy and exemption
COPY_KEY = "sourceArn"
NOTICE_KEY = "key"
NOTIFIED = "notified"  # in the copy's stored outcome: the notice_key of the notice its invocation sent
COMPLETED = STATUS_CONSTANTS["COMPLETED"]
INPROGRESS = STATUS_CONSTANTS["INPROGRESS"]


def guard(
    persistence: BasePersistenceLayer,
    function: Callable[..., dict[str, Any]],
    key: str,
    prefix: str,
    ttl_seconds: int,
) -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    """`function` run once per `request[key]` (its `request` keyword argument), and its IdempotencyConfig (for the
    Lambda context). Each guard needs a persistence object of its own: Powertools configures one per object."""
    config = IdempotencyConfig(
        event_key_jmespath=key, raise_on_no_idempotency_key=True, expires_after_seconds=ttl_seconds
    )
    guarded: Callable[..., dict[str, Any]] = idempotent_function(
        data_keyword_argument="request", persistence_store=persistence, config=config, key_prefix=prefix
    )(function)
    return guarded, config


def sibling(persistence: BasePersistenceLayer) -> BasePersistenceLayer:
    """A second persistence object on the same table (Powertools keeps one configuration per object)."""
    if isinstance(persistence, DynamoDBPersistenceLayer):
        return DynamoDBPersistenceLayer(table_name=persistence.table_name, boto3_client=persistence.client)
    other = copy_module.copy(persistence)
    other.configured = False
    return other


class Records:
    """A guard's records, read with Powertools' own key derivation (one consistent GetItem each; not cached)."""

    def __init__(self, persistence: BasePersistenceLayer, key: str, prefix: str) -> None:
        self._persistence = persistence
        self._key = key
        self._persistence.configure(IdempotencyConfig(event_key_jmespath=key), key_prefix=prefix)

    @classmethod
    def copies(cls, persistence: BasePersistenceLayer) -> Records:
        return cls(sibling(persistence), COPY_KEY, COPY_KEY_PREFIX)

    @classmethod
    def notices(cls, persistence: BasePersistenceLayer) -> Records:
        return cls(sibling(persistence), NOTICE_KEY, NOTICE_KEY_PREFIX)

    def get(self, value: str) -> DataRecord | None:
        """The record of `value`, or None when there is none (never written, deleted after a failure, expired)."""
        try:
            return self._persistence.get_record({self._key: value})
        except IdempotencyItemNotFoundError:
            return None


def in_progress(record: DataRecord | None) -> bool:
    """Another invocation holds the guard now: INPROGRESS and not past its invocation's end (a record left by an
    invocation that ended mid-way, a crash or a timeout, is past it)."""
    if record is None or record.status != INPROGRESS:
        return False
    until = record.in_progress_expiry_timestamp
    return until is None or until >= int(time.time() * 1000)


def notified(record: DataRecord | None, key: str) -> bool:
    """The copy's completed record says its invocation sent the notice `key`."""
    if record is None or record.status != COMPLETED:
        return False
    return str((record.response_json_as_dict() or {}).get(NOTIFIED) or "") == key
