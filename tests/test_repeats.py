"""The family's remediation history in the stack's ledger (one item per family in the idempotency table, against
moto's DynamoDB): the window, a retry not counted twice, the cap, two concurrent writers both counted, the TTL;
the escalation threshold; ESCALATE_*/ROLLOUT_MANAGED/SECURITY_HUB parsing; a Result with its attribution survives
the notice's JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ecs_remediate.adapters.ledger import COMPACT_AFTER, HISTORY_PREFIX, DynamoLedger, MemoryLedger
from ecs_remediate.core.attribution import Tool, attribute
from ecs_remediate.core.config import Config, ConfigError
from ecs_remediate.core.history import MAX_HISTORY, Remediation
from ecs_remediate.core.notice import _camel
from ecs_remediate.core.outcomes import REMEDIATED, Result
from ecs_remediate.remediation.repeats import escalation_text

TABLE = "ecs-remediate-idempotency"
FAMILY = "arn:aws:ecs:us-east-1:123456789012:task-definition/web"
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def entry(revision: int, at: datetime, by: str = "arn:aws:iam::123456789012:user/alice") -> Remediation:
    return Remediation(f"{FAMILY}:{revision}", f"{FAMILY}:{revision + 1}", by, "Terraform", at)


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield dynamodb


def stored(client: Any) -> dict[str, Any]:
    item: dict[str, Any] = client.get_item(TableName=TABLE, Key={"id": {"S": HISTORY_PREFIX + FAMILY}})["Item"]
    return item


@pytest.mark.parametrize("kind", ["dynamodb", "memory"])
def test_the_window_drops_old_entries_and_a_retry_is_not_counted_twice(client: Any, kind: str) -> None:
    ledger = DynamoLedger(client, TABLE) if kind == "dynamodb" else MemoryLedger()
    assert [e.source_arn for e in ledger.record_remediation(entry(1, T0), DAY)] == [f"{FAMILY}:1"]
    assert len(ledger.record_remediation(entry(3, T0 + timedelta(hours=2)), DAY)) == 2
    assert len(ledger.record_remediation(entry(3, T0 + timedelta(hours=3)), DAY)) == 2  # the same revision again
    later = ledger.record_remediation(entry(5, T0 + timedelta(hours=25)), DAY)  # web:1 is 25 h old by now
    assert [(e.source_arn.rsplit(":", 1)[1], e.at.hour) for e in later] == [("3", 13), ("5", 11)]


def test_the_item_is_capped_expires_with_the_window_and_holds_names_only(client: Any) -> None:
    """One UpdateItem a remediation (an atomic append); past COMPACT_AFTER stored entries the item is rewritten to the
    window's newest MAX_HISTORY, so it stays bounded."""
    ledger = DynamoLedger(client, TABLE)
    calls: list[str] = []
    client.meta.events.register("before-call.dynamodb.*", lambda event_name, **_: calls.append(event_name))
    writes = COMPACT_AFTER + 5
    for n in range(writes):
        history = ledger.record_remediation(entry(2 * n + 1, T0 + timedelta(minutes=n)), DAY)
    assert len(history) == MAX_HISTORY and history[-1].source_arn == f"{FAMILY}:{2 * (writes - 1) + 1}"
    assert calls.count("before-call.dynamodb.UpdateItem") == writes and "before-call.dynamodb.GetItem" not in calls
    item = stored(client)
    assert MAX_HISTORY <= len(item["entries"]["L"]) <= COMPACT_AFTER  # compacted once, then appended to
    assert calls.count("before-call.dynamodb.PutItem") == 1
    newest = T0 + timedelta(minutes=writes - 1)
    assert int(item["expiration"]["N"]) == int((newest + DAY).timestamp())  # the table's TTL attribute
    assert set(item["entries"]["L"][0]["M"]) == {"sourceArn", "copyArn", "registeredBy", "source", "at"}


def test_two_concurrent_remediations_of_a_family_both_count(client: Any) -> None:
    ledger = DynamoLedger(client, TABLE)
    ledger.record_remediation(entry(1, T0), DAY)
    other = DynamoLedger(boto3.client("dynamodb", region_name="us-east-1"), TABLE)  # another invocation
    raced: list[int] = []

    def meanwhile(**_: Any) -> None:
        if not raced:  # just before this writer's append, the other one appends
            raced.append(1)
            other.record_remediation(entry(3, T0 + timedelta(minutes=1)), DAY)

    client.meta.events.register("before-call.dynamodb.UpdateItem", meanwhile)
    mine = ledger.record_remediation(entry(5, T0 + timedelta(minutes=2)), DAY)
    assert [e.source_arn.rsplit(":", 1)[1] for e in mine] == ["1", "3", "5"]
    assert len(stored(client)["entries"]["L"]) == 3


def test_malformed_entries_are_skipped_not_trusted(client: Any) -> None:
    client.put_item(
        TableName=TABLE,
        Item={
            "id": {"S": HISTORY_PREFIX + FAMILY},
            "version": {"N": "1"},
            "entries": {"L": [{"M": {"at": {"S": "yesterday"}}}, {"S": "x"}, {"M": {"sourceArn": {"S": "a"}}}]},
        },
    )
    assert len(DynamoLedger(client, TABLE).record_remediation(entry(1, T0), DAY)) == 1


def test_escalation_from_the_threshold() -> None:
    config = Config(escalate_after=3, escalate_window_hours=24)
    assert escalation_text(2, config, "web") == ""
    assert escalation_text(3, config, "web") == (
        "family web was remediated 3 times within 24 hours (escalation from 3): the source still sets privileged: true"
    )


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"ESCALATE_AFTER": "1"}, "ESCALATE_AFTER: expected whole remediations from 2 to 100, got '1'"),
        ({"ESCALATE_AFTER": "three"}, "ESCALATE_AFTER: expected whole remediations from 2 to 100"),
        ({"ESCALATE_WINDOW_HOURS": "0"}, "ESCALATE_WINDOW_HOURS: expected whole hours from 1 to 720, got '0'"),
        ({"ESCALATE_WINDOW_HOURS": "721"}, "ESCALATE_WINDOW_HOURS: expected whole hours from 1 to 720"),
        ({"ROLLOUT_MANAGED": "maybe"}, "ROLLOUT_MANAGED: expected true or false"),
        ({"SECURITY_HUB": "2"}, "SECURITY_HUB: expected true or false"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], error: str) -> None:
    with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace(")", r"\)")):
        Config.from_env(env)


def test_defaults_and_values() -> None:
    default = Config.from_env({})
    assert (default.escalate_after, default.escalate_window_hours, default.rollout_managed, default.security_hub) == (
        3,
        24,
        False,
        False,
    )
    env = {"ESCALATE_AFTER": "5", "ESCALATE_WINDOW_HOURS": "72", "ROLLOUT_MANAGED": "true", "SECURITY_HUB": "true"}
    parsed = Config.from_env(env)
    assert (parsed.escalate_after, parsed.escalate_window_hours, parsed.rollout_managed, parsed.security_hub) == (
        5,
        72,
        True,
        True,
    )


def test_a_result_with_its_attribution_survives_the_notice_json() -> None:
    tags = [{"key": "aws:cloudformation:stack-name", "value": "app-stack"}]
    result = Result(REMEDIATED, f"{FAMILY}:1", "web", 1, attribution=attribute(tags, None, ""))
    result.repeats = [entry(1, T0).to_json()]
    payload = json.loads(json.dumps(_camel(result.to_dict()), default=str))  # what the topic carries (camelCase)
    top = {re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), k): v for k, v in payload.items()}  # as demo/run.py
    back = Result.from_dict(top)  # the attribution's own keys stay camelCase: read too
    assert back.attribution == result.attribution and back.attribution.tool is Tool.CLOUDFORMATION
    assert back.repeats == result.repeats


def test_result_to_dict_is_what_asdict_gives_and_shares_no_mutable_part() -> None:
    """to_dict is built per notice without dataclasses.asdict's deep copies: the same value, nothing shared."""
    from dataclasses import asdict

    tags = [{"key": "aws:cloudformation:stack-name", "value": "app-stack"}]
    result = Result(REMEDIATED, f"{FAMILY}:1", "web", 1, ["app"], attribution=attribute(tags, None, ""))
    result.repeats = [entry(1, T0).to_json()]
    plain = result.to_dict()
    assert plain == asdict(result)
    plain["privileged"].append("x")
    plain["repeats"][0]["scribbled"] = "x"
    assert result.privileged == ["app"] and "scribbled" not in result.repeats[0]
