from __future__ import annotations

from typing import Any

import pytest

from conftest import SYNTHETIC_EVENT as SYNTHETIC
from conftest import event_variant as variant
from ecs_remediate.core.events import Registration, Skip, Unidentified, parse_registration_event


def test_registration_is_read_from_the_cloudtrail_event() -> None:
    parsed = parse_registration_event(SYNTHETIC, expected_region="us-east-1")
    assert parsed == Registration(
        task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/priv-app:1",
        event_id="6f1c5b8e-0000-4000-8000-000000000001",
        account="123456789012",
        region="us-east-1",
        event_time="2024-05-01T12:00:00Z",
        user_arn="arn:aws:sts::123456789012:assumed-role/Dev/dev",
        invoked_by="",
        source_ip="203.0.113.10",
        user_agent="aws-cli/2.15.0",
    )


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (variant(detail__errorCode="AccessDenied", detail__responseElements=None), "the call failed ('AccessDenied')"),
        (variant(source="aws.s3"), "not an ECS API call event"),
        (variant(**{"detail-type": "ECS Task State Change"}), "not an ECS API call event"),
        (variant(detail__eventName="DeregisterTaskDefinition"), "not a RegisterTaskDefinition call"),
        (variant(detail__eventSource="ec2.amazonaws.com"), "not a RegisterTaskDefinition call"),
        (variant(detail__responseElements__taskDefinition__taskDefinitionArn="arn:aws:ecs:x"), "malformed task"),
        (
            variant(
                detail__responseElements__taskDefinition__taskDefinitionArn="arn:aws:ecs:eu-west-1:123456789012:task-definition/priv-app:1"
            ),
            "revision is in eu-west-1",
        ),
        (variant(detail=[]), "'detail' is not an object"),
        ([], "expected a JSON object"),
    ],
)
def test_skips_say_why(event: Any, reason: str) -> None:
    parsed = parse_registration_event(event, expected_region="us-east-1")
    assert isinstance(parsed, Skip)
    assert reason in parsed.reason


def test_userIdentity_of_the_wrong_type_is_tolerated() -> None:
    parsed = parse_registration_event(variant(detail__userIdentity="weird"))
    assert isinstance(parsed, Registration) and parsed.user_arn == ""


@pytest.mark.parametrize(
    "response", [None, {}, KeyError, {"taskDefinition": {}}, {"taskDefinition": {"taskDefinitionArn": 7}}]
)
def test_an_event_naming_no_revision_is_unidentified_not_dropped(response: Any) -> None:
    """responseElements null (or empty, or missing, or without an ARN): the registration succeeded, so it is kept to
    be identified from the family, the time and the registrant (or notified), never dropped."""
    parsed = parse_registration_event(variant(detail__responseElements=response), expected_region="us-east-1")
    assert isinstance(parsed, Unidentified)
    registration = parsed.registration
    assert (registration.family, registration.task_definition_arn) == ("priv-app", "")
    assert registration.user_arn == "arn:aws:sts::123456789012:assumed-role/Dev/dev"
    assert registration.event_time == "2024-05-01T12:00:00Z"


def test_an_unidentified_event_with_a_hostile_family_keeps_no_family() -> None:
    parsed = parse_registration_event(
        variant(detail__responseElements=None, detail__requestParameters__family="x\ny" * 200)
    )
    assert isinstance(parsed, Unidentified) and parsed.registration.family == ""


FOREIGN = "arn:aws:ecs:us-east-1:999999999999:task-definition/priv-app:1"


@pytest.mark.parametrize(
    ("event", "expected_account", "reason"),
    [
        # the revision is in another account than the one that sent the event
        (variant(detail__responseElements__taskDefinition__taskDefinitionArn=FOREIGN), None, "not the sending"),
        # the revision is in another account than the function's
        (
            variant(detail__responseElements__taskDefinition__taskDefinitionArn=FOREIGN, account="999999999999"),
            "123456789012",
            "foreign account",
        ),
        # the event came from another account
        (variant(account="999999999999"), "123456789012", "the event came from '999999999999'"),
    ],
)
def test_other_accounts_are_refused(event: Any, expected_account: str | None, reason: str) -> None:
    parsed = parse_registration_event(event, expected_region="us-east-1", expected_account=expected_account)
    assert isinstance(parsed, Skip), parsed
    assert parsed.reason.startswith("foreign account") and reason in parsed.reason
