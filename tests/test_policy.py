from __future__ import annotations

from datetime import date

import pytest

from ecs_remediate.config import Config
from ecs_remediate.policy import assess, evaluate_exemption

TODAY = date(2026, 11, 29)
CONFIG = Config(exempt_families=("gpu-*",))
PRIVILEGED = {"family": "csi", "containerDefinitions": [{"name": "a", "privileged": True}, {"name": "b"}]}


def tags(reason: str | None = None, until: str | None = None) -> list[dict[str, str]]:
    out = []
    if reason is not None:
        out.append({"key": "ecs-remediate:exempt-reason", "value": reason})
    if until is not None:
        out.append({"key": "ecs-remediate:exempt-until", "value": until})
    return out


@pytest.mark.parametrize(
    ("family", "tag_list", "valid", "why"),
    [
        ("csi", tags("block devices", "2026-12-31"), True, "exempt until 2026-12-31: block devices"),
        ("csi", tags("block devices", "2026-11-29"), True, "exempt until 2026-11-29"),
        ("csi", tags(None, "2026-12-31"), False, "needs a reason"),
        ("csi", tags("  ", "2026-12-31"), False, "needs a reason"),
        ("csi", tags("block devices"), False, "needs an expiry date"),
        ("csi", tags("block devices", "2026-11-28"), False, "expired on 2026-11-28"),
        ("csi", tags("block devices", "31/12/2026"), False, "not a YYYY-MM-DD date"),
        ("gpu-worker", [], True, "matches the configured exemption 'gpu-*'"),
    ],
)
def test_exemptions(family: str, tag_list: list[dict[str, str]], valid: bool, why: str) -> None:
    exemption = evaluate_exemption(family, tag_list, CONFIG, TODAY)
    assert exemption is not None
    assert exemption.valid is valid
    assert why in exemption.why


def test_no_claim_is_no_exemption() -> None:
    assert evaluate_exemption("csi", [{"key": "team", "value": "x"}], CONFIG, TODAY) is None


def test_expiring_soon() -> None:
    soon = evaluate_exemption("csi", tags("r", "2026-12-05"), CONFIG, TODAY)
    later = evaluate_exemption("csi", tags("r", "2027-01-05"), CONFIG, TODAY)
    assert soon is not None and soon.expires_within(TODAY)
    assert later is not None and not later.expires_within(TODAY)


def test_verdicts() -> None:
    assert assess({"containerDefinitions": [{"name": "a"}]}, None, CONFIG, TODAY).verdict == "PASS"
    assert assess(PRIVILEGED, None, CONFIG, TODAY).verdict == "FAIL"
    assert assess(PRIVILEGED, tags("r", "2027-01-01"), CONFIG, TODAY).verdict == "EXEMPT"
    expired = assess(PRIVILEGED, tags("r", "2020-01-01"), CONFIG, TODAY)
    assert expired.verdict == "FAIL" and expired.exemption is not None and not expired.exemption.valid
    assert expired.privileged == ["a"]
