"""Verdicts and exemptions (pure): only what the policed cannot write exempts a privileged revision."""

from __future__ import annotations

from datetime import date

import pytest

from ecs_remediate.core.config import Config
from ecs_remediate.core.exemptions.evaluate import evaluate_exemption
from ecs_remediate.core.exemptions.judgement import Exemption, ExemptionRules
from ecs_remediate.core.exemptions.records import (
    Approval,
    ExemptionRecord,
    ImageIndex,
    RegistryItem,
    Scope,
    ScopeItem,
    image_digest,
)
from ecs_remediate.core.exemptions.scope import fingerprint
from ecs_remediate.core.policy import assess

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
VOLUMES = [
    {"name": "kubelet", "host": {"sourcePath": "/var/lib/kubelet"}},
    {"name": "root", "host": {"sourcePath": "/"}},
]


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


def approved(task_definition=PINNED, families=("csi",), until="2026-12-31", source=ARN) -> list[RegistryItem]:
    """What `exempt add` writes for `source`: the approval in each family's scope item, and the image index."""
    approval = Approval(
        "CSI node plugin", APPROVER, until, "2026-11-01", source, tuple(families), fingerprint(task_definition)
    )
    scopes = [Scope("123456789012", "task-definition", family) for family in families]
    digests = {p.digest for p in approval.fingerprint.containers}
    return [ScopeItem(scope, (approval,)) for scope in scopes] + [
        ImageIndex(digest, frozenset(scope.name for scope in scopes)) for digest in digests
    ]


def variant(**changes: object) -> dict[str, object]:
    """PINNED with its privileged container changed (None removes a member)."""
    container = {**PINNED["containerDefinitions"][0], **changes}
    container = {k: v for k, v in container.items() if v is not None}
    return {**PINNED, "containerDefinitions": [container, PINNED["containerDefinitions"][1]]}


def judge_as(task_definition, records, arn=ARN):
    return evaluate_exemption(
        family=str(task_definition.get("family", "")),
        arn=arn,
        task_definition=task_definition,
        tags=None,
        records=records,
        tag_approval=None,
        rules=RULES,
        today=TODAY,
    )


def test_a_scoped_approval_covers_its_account_family_and_content_only() -> None:
    records = approved()
    same = judge_as(PINNED, records, arn=ARN.replace(":4", ":9"))  # a later revision, same content
    assert same is not None and same.valid and "family csi in account 123456789012, as approved" in same.why
    env = variant(environment=[{"name": "LEVEL", "value": "debug"}])  # not part of the fingerprint
    assert (judge_as(env, records) or EXPIRED).valid
    fewer = {**PINNED, "volumes": []}  # less host access than approved is still covered
    assert (judge_as(fewer, records) or EXPIRED).valid


EXPIRED = Exemption(False, "none")


@pytest.mark.parametrize(
    ("task_definition", "arn", "part", "says"),
    [
        (PINNED, ARN.replace("csi:4", "miner:1"), "other family", "exempt for family csi only, not for family miner"),
        (PINNED, ARN.replace("123456789012", "210987654321"), "other account", "exempt in another account only"),
        (variant(image="example.com/csi@" + OTHER_DIGEST), ARN, "other digest", "runs sha256:bbbbbbbbbbbb..."),
        (variant(image="example.com/csi:1"), ARN, "other digest", "runs an image not pinned by digest"),
        (variant(command=["sh", "-c", "curl x | sh"]), ARN, "other command", "runs another command than approved"),
        (variant(entryPoint=["/bin/sh"]), ARN, "other command", "runs another entryPoint than approved"),
        (variant(user="0"), ARN, "other command", "runs another user than approved"),
        (variant(workingDir="/tmp"), ARN, "other command", "runs another workingDir than approved"),
        (
            {**PINNED, "pidMode": "host"},
            ARN,
            "more host access",
            "more host access: (task): pid-mode host not approved",
        ),
        (
            variant(linuxParameters={"capabilities": {"add": ["SYS_ADMIN", "SYS_MODULE"]}}),
            ARN,
            "more host access",
            "a: capability SYS_MODULE not approved",
        ),
        (
            variant(
                mountPoints=[
                    {"sourceVolume": "kubelet", "containerPath": "/k"},
                    {"sourceVolume": "root", "containerPath": "/h"},
                ]
            ),
            ARN,
            "more host access",
            "a: host-path /, a: host-path /var/lib/kubelet not approved",  # every host path is host access
        ),
    ],
)
def test_a_revision_that_differs_in_any_part_is_not_exempt_and_the_part_is_named(
    task_definition: dict, arn: str, part: str, says: str
) -> None:
    exemption = judge_as({**task_definition, "volumes": VOLUMES}, approved())
    if arn != ARN:
        exemption = judge_as({**task_definition, "volumes": VOLUMES}, approved(), arn=arn)
    assert exemption is not None and not exemption.valid
    assert part in exemption.mismatch.split(", ") and exemption.why.startswith(part), exemption.why
    assert says in exemption.why, exemption.why
    assert "curl" not in exemption.why and "/bin/sh" not in exemption.why  # names the member, never its value


def test_several_parts_are_all_named() -> None:
    changed = {**variant(command=["./other"], user="root"), "pidMode": "host", "volumes": VOLUMES}
    exemption = judge_as(changed, approved())
    assert exemption is not None and not exemption.valid
    assert exemption.mismatch == "other command, more host access"
    assert "runs another command, user than approved" in exemption.why


def test_every_privileged_container_must_be_covered_by_one_approval() -> None:
    two = {
        **PINNED,
        "containerDefinitions": [
            *PINNED["containerDefinitions"],
            {"name": "c", "image": f"example.com/other@{OTHER_DIGEST}", "privileged": True},
        ],
    }
    exemption = judge_as(two, approved())
    assert exemption is not None and not exemption.valid and "container 'c' runs sha256:bbbbbbbbbbbb" in exemption.why
    assert (judge_as(two, approved(two)) or EXPIRED).valid  # approving the two-container revision covers it


def test_an_approval_that_covers_still_needs_a_valid_expiry() -> None:
    expired = judge_as(PINNED, approved(until="2026-11-28"))
    assert expired is not None and not expired.valid and "expired on 2026-11-28" in expired.why
    beyond = judge_as(PINNED, approved(until="2027-06-01"))
    assert beyond is not None and not beyond.valid and "beyond the 90-day maximum" in beyond.why


def test_an_approval_for_several_families_covers_each_of_them() -> None:
    records = approved(families=("csi", "csi-canary"))
    canary = judge_as(PINNED, records, arn=ARN.replace("csi:4", "csi-canary:2"))
    assert canary is not None and canary.valid
    other = judge_as(PINNED, records, arn=ARN.replace("csi:4", "csi-old:2"))
    assert other is not None and not other.valid and other.mismatch == "other family"
    assert "exempt for family csi, family csi-canary only" in other.why


def test_a_daemon_family_of_the_same_name_is_another_family() -> None:
    daemon_arn = ARN.replace("task-definition/", "daemon-task-definition/")
    exemption = judge_as(PINNED, approved(), arn=daemon_arn)
    assert exemption is not None and not exemption.valid and exemption.mismatch == "other family"


def test_an_image_digest_item_of_earlier_versions_is_too_broad_and_exempts_nothing() -> None:
    exemption = judge(PINNED, records=[record(DIGEST)])
    assert exemption is not None and not exemption.valid and exemption.mismatch == "too broad"
    assert "no longer exempts" in exemption.why and f"ecs-remediate exempt add {ARN}" in exemption.why
    # a tag is not a digest: the same image by tag relates to no item
    by_tag = {
        "family": "csi",
        "containerDefinitions": [{"name": "a", "image": "example.com/csi:1", "privileged": True}],
    }
    assert judge(by_tag, records=[record(DIGEST)]) is None


def test_a_revision_item_checks_the_content_it_recorded() -> None:
    seen = fingerprint({**PINNED, "volumes": VOLUMES})
    recorded = ExemptionRecord(ARN, "CSI node plugin", APPROVER, "2026-12-31", fingerprint=seen)
    assert (judge_as({**PINNED, "volumes": VOLUMES}, [recorded]) or EXPIRED).valid
    # the same ARN with other content (ECS never reuses a revision number; a wrong item must still not hold)
    other = judge_as({**PINNED, "volumes": VOLUMES, "pidMode": "host"}, [recorded])
    assert other is not None and not other.valid and other.mismatch == "more host access"
    unreadable = ExemptionRecord(ARN, "CSI node plugin", APPROVER, "2026-12-31", malformed=True)
    assert not (judge_as(PINNED, [unreadable]) or EXPIRED).valid


def test_unreadable_approvals_never_match() -> None:
    item = ScopeItem.from_plain(Scope("123456789012", "task-definition", "csi"), {"approvals": {"x": {"families": []}}})
    assert item.approvals == () and item.malformed == 1
    assert judge_as(PINNED, [item]) is None


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
