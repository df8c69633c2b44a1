"""Verdicts and exemptions (pure): only what the policed cannot write exempts a privileged revision."""

from __future__ import annotations

from datetime import date

import pytest

from ecs_remediate.config import Config
from ecs_remediate.exemptions import ExemptionRecord, ExemptionRules, evaluate_exemption, image_digest
from ecs_remediate.policy import assess

TODAY = date(2026, 11, 29)
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/csi:4"
DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "b" * 64
APPROVER = "arn:aws:iam::123456789012:role/SecurityApprover"
PRIVILEGED = {"family": "csi", "containerDefinitions": [{"name": "a", "privileged": True}, {"name": "b"}]}
PINNED = {
    "family": "csi",
    "containerDefinitions": [
        {"name": "a", "image": f"example.com/csi@{DIGEST}", "privileged": True},
        {"name": "b", "image": "example.com/sidecar:latest"},
    ],
}
RULES = ExemptionRules("ecs-remediate", family_globs=("gpu-*",))


def tags(reason: str | None = None, until: str | None = None) -> list[dict[str, str]]:
    out = []
    if reason is not None:
        out.append({"key": "ecs-remediate:exempt-reason", "value": reason})
    if until is not None:
        out.append({"key": "ecs-remediate:exempt-until", "value": until})
    return out


def record(target: str = ARN, reason: str = "CSI node plugin", until: str = "2026-12-31", approver: str = APPROVER):
    return ExemptionRecord(target, reason, approver, until)


def judge(task_definition=PRIVILEGED, tag_list=None, records=(), approval=None, rules=RULES, family="csi"):
    return evaluate_exemption(
        family=family,
        arn=ARN,
        task_definition=task_definition,
        tags=tag_list,
        records=list(records),
        tag_approval=approval,
        rules=rules,
        today=TODAY,
    )


@pytest.mark.parametrize(
    ("records", "valid", "why"),
    [
        ([record()], True, "exempt until 2026-12-31: CSI node plugin (approved by arn:aws:iam::123456789012:role"),
        ([record(until="2026-11-29")], True, "exempt until 2026-11-29"),
        ([record(until="2026-11-28")], False, "expired on 2026-11-28"),
        ([record(until="2027-02-28")], False, "beyond the 90-day maximum"),
        ([record(until="9999-12-31")], False, "beyond the 90-day maximum"),
        ([record(reason="  ")], False, "has no reason"),
        ([record(approver="")], False, "names no approver"),
        ([record(until="31/12/2026")], False, "no valid expiry date"),
    ],
)
def test_registry_exemptions_of_a_revision(records: list[ExemptionRecord], valid: bool, why: str) -> None:
    exemption = judge(records=records)
    assert exemption is not None
    assert exemption.valid is valid
    assert why in exemption.why
    assert exemption.source == "registry"


def test_an_image_digest_exemption_holds_only_when_every_privileged_container_runs_it() -> None:
    exempt = judge(PINNED, records=[record(DIGEST)])
    assert exempt is not None and exempt.valid and "image digest" in exempt.why
    two = {
        "family": "csi",
        "containerDefinitions": [
            *PINNED["containerDefinitions"],
            {"name": "c", "image": f"example.com/other@{OTHER_DIGEST}", "privileged": True},
        ],
    }
    partial = judge(two, records=[record(DIGEST)])
    assert partial is not None and not partial.valid and "'c' does not run an exempt image digest" in partial.why
    # a tag is not a digest: the same image by tag is not exempt
    by_tag = {
        "family": "csi",
        "containerDefinitions": [{"name": "a", "image": "example.com/csi:1", "privileged": True}],
    }
    assert judge(by_tag, records=[record(DIGEST)]) is None


def test_image_digest_is_read_only_from_a_pinned_reference() -> None:
    assert image_digest(f"repo@{DIGEST}") == DIGEST
    assert image_digest("repo:latest") is None
    assert image_digest(f"repo@{DIGEST}x") is None
    assert image_digest(None) is None


def test_a_family_glob_from_the_configuration_exempts() -> None:
    exemption = judge(family="gpu-worker")
    assert exemption is not None and exemption.valid and exemption.by_family_glob == "gpu-*"


@pytest.mark.parametrize(
    "tag_list", [tags("block devices", "9999-12-31"), tags("block devices", "2026-12-31"), tags("x")]
)
def test_tags_set_by_the_registrant_never_exempt_by_default(tag_list: list[dict[str, str]]) -> None:
    exemption = judge(tag_list=tag_list)
    assert exemption is not None and not exemption.valid
    assert "not honoured" in exemption.why


def test_tag_mode_needs_the_approval_recorded_for_these_values() -> None:
    rules = ExemptionRules("ecs-remediate", tag_exemptions=True)
    tag_list = tags("block devices", "2026-12-31")
    unapproved = judge(tag_list=tag_list, rules=rules)
    assert unapproved is not None and not unapproved.valid and "not applied by an approver" in unapproved.why
    approval = ExemptionRecord(ARN, "block devices", APPROVER, "2026-12-31")
    approved = judge(tag_list=tag_list, rules=rules, approval=approval)
    assert approved is not None and approved.valid and approved.approver == APPROVER
    # the registrant moves the expiry after the approval: the approval no longer matches
    moved = judge(tag_list=tags("block devices", "2027-02-01"), rules=rules, approval=approval)
    assert moved is not None and not moved.valid


def test_no_claim_is_no_exemption() -> None:
    assert judge(tag_list=[{"key": "team", "value": "x"}]) is None


def test_expiring_soon() -> None:
    soon = judge(records=[record(until="2026-12-05")])
    later = judge(records=[record(until="2027-01-05")])
    assert soon is not None and soon.expires_within(TODAY)
    assert later is not None and not later.expires_within(TODAY)


def test_verdicts() -> None:
    config = Config()
    plain = {"containerDefinitions": [{"name": "a"}]}
    assert assess(plain, arn=ARN, tags=None, config=config, today=TODAY).verdict == "PASS"
    assert assess(PRIVILEGED, arn=ARN, tags=None, config=config, today=TODAY).verdict == "FAIL"
    exempt = assess(PRIVILEGED, arn=ARN, tags=None, config=config, today=TODAY, records=[record()])
    assert exempt.verdict == "EXEMPT"
    tagged = assess(PRIVILEGED, arn=ARN, tags=tags("r", "2026-12-01"), config=config, today=TODAY)
    assert tagged.verdict == "FAIL" and tagged.exemption is not None and not tagged.exemption.valid
    assert tagged.privileged == ["a"]
