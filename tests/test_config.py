from __future__ import annotations

import pytest

from ecs_remediate.core.config import Config, ConfigError


def test_defaults() -> None:
    config = Config.from_env({})
    assert config.mode == "remediate"
    # every exemption and every privileged revision left as it is are notified by default
    assert config.notify_on == {"remediated", "reported", "failed", "exempt", "superseded", "unresolved"}
    assert config.marker_tag_key == "ecs-remediate:source-revision"
    assert (config.rollout, config.retire, config.topic_arn) == (False, False, None)
    assert (config.exemption_max_days, config.tag_exemptions, config.trusted_principals) == (90, False, ())


def test_values_are_parsed() -> None:
    config = Config.from_env(
        {
            "MODE": "REPORT",
            "EXEMPT_FAMILIES": " gpu-*, csi ,",
            "EXEMPT_FAMILIES_ACKNOWLEDGED": "true",
            "TRUSTED_PRINCIPALS": "arn:aws:iam::123456789012:role/fn,arn:aws:iam::123456789012:role/sweep",
            "EXEMPTION_MAX_DAYS": "30",
            "NOTIFY_ON": "failed,exempt",
            "TAG_PREFIX": "sec",
            "ROLLOUT": "yes",
            "IDEMPOTENCY_TTL_SECONDS": "3600",
            "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t",
        }
    )
    assert config.mode == "report"
    assert config.exempt_families == ("gpu-*", "csi")
    assert config.notify_on == {"failed", "exempt"}
    assert config.exempt_reason_tag_key == "sec:exempt-reason"
    assert config.rollout and config.idempotency_ttl_seconds == 3600
    assert config.trusted_principals == ("arn:aws:iam::123456789012:role/fn", "arn:aws:iam::123456789012:role/sweep")
    assert config.exemption_max_days == 30


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MODE": "fix-everything"}, "MODE"),
        ({"NOTIFY_ON": "remediated,sometimes"}, "NOTIFY_ON"),
        ({"TAG_PREFIX": "aws:mine"}, "TAG_PREFIX"),
        ({"TAG_PREFIX": "bad\nprefix"}, "TAG_PREFIX"),
        ({"IDEMPOTENCY_TTL_SECONDS": "soon"}, "IDEMPOTENCY_TTL_SECONDS"),
        ({"IDEMPOTENCY_TTL_SECONDS": "5"}, "IDEMPOTENCY_TTL_SECONDS"),
        ({"RETIRE": "maybe"}, "RETIRE"),
        ({"TOPIC_ARN": "my-topic"}, "TOPIC_ARN"),
        # a family glob exempts families created later, by anyone: only with the acknowledgement
        ({"EXEMPT_FAMILIES": "legacy-*"}, "EXEMPT_FAMILIES"),
        ({"EXEMPT_FAMILIES": "legacy-*", "EXEMPT_FAMILIES_ACKNOWLEDGED": "no"}, "EXEMPT_FAMILIES"),
        ({"EXEMPTION_MAX_DAYS": "0"}, "EXEMPTION_MAX_DAYS"),
        ({"EXEMPTION_MAX_DAYS": "forever"}, "EXEMPTION_MAX_DAYS"),
        ({"TRUSTED_PRINCIPALS": "fn-role"}, "TRUSTED_PRINCIPALS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as error:
        Config.from_env(env)
    assert str(error.value).startswith(f"{named}:")


def test_handler_refuses_to_start_with_a_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import ecs_remediate.functions.handler as handler

    monkeypatch.setenv("MODE", "sometimes")
    with pytest.raises(ConfigError, match=r"^MODE:"):
        importlib.reload(handler)
    monkeypatch.delenv("MODE")
    importlib.reload(handler)
