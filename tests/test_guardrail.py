# ruff: noqa: E501 - the table of requests reads best one request per line
"""The guardrail SCP's meaning, proved offline with a real IAM policy evaluator, and linted.

The evaluator is principalmapper's local authorization check (full evaluation: explicit Deny in any policy, SCP
levels that each need an Allow, the service-linked-role exception, the condition operators). Each principal is an
administrator in its own account (Allow * on *), so whatever is refused below is refused by the SCP. The SCP
levels are those of an account in a target OU: the root's FullAWSAccess, then the OU's FullAWSAccess and the
guardrail. parliament lints the document; its one kind of finding is explained where it is asserted.
"""

from __future__ import annotations

import collections
import collections.abc
import io
import json
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

# principalmapper 1.1.5 imports collections.Mapping, which Python 3.10 removed (test-only dependency, AGPL).
collections.Mapping = collections.abc.Mapping  # type: ignore[attr-defined]
collections.MutableMapping = collections.abc.MutableMapping  # type: ignore[attr-defined]

from parliament import analyze_policy_string  # noqa: E402
from principalmapper.common import Node, Policy  # noqa: E402
from principalmapper.querying.query_interface import local_check_authorization_full  # noqa: E402

from ecs_remediate.cli.main import main  # noqa: E402
from ecs_remediate.core.config import Config  # noqa: E402
from ecs_remediate.core.exemptions.evaluate import evaluate_exemption  # noqa: E402
from ecs_remediate.organization.guardrail import (  # noqa: E402
    SCP_SIZE_LIMIT,
    GuardrailError,
    build_guardrail,
    member_role_pattern,
    render,
)

MEMBER = "111122223333"
BREAK_GLASS = "arn:aws:iam::*:role/BreakGlass*"
APPROVER = f"arn:aws:iam::{MEMBER}:role/security/ExemptionApprover"
MEMBER_ROLE = "ecs-remediate-member"
TASK_DEFINITION = f"arn:aws:ecs:us-east-1:{MEMBER}:task-definition/web:7"
DAEMON_TASK_DEFINITION = f"arn:aws:ecs:us-east-1:{MEMBER}:daemon-task-definition/agent:1"
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def role(path_and_name: str, account: str = MEMBER) -> Node:
    admin = Policy(f"arn:aws:iam::{account}:policy/admin", "admin", ALLOW_ALL)
    trust = {"Version": "2012-10-17", "Statement": []}
    arn = f"arn:aws:iam::{account}:role/{path_and_name}"
    return Node(arn, "AROAEXAMPLEID", [admin], [], trust, None, 0, False, True, None, False, {})


DEVELOPER = role("developer")
BREAK_GLASS_ADMIN = role("BreakGlassAdmin")
APPROVER_ROLE = role("security/ExemptionApprover")
MEMBER_ROLE_NODE = role(MEMBER_ROLE)
OTHER_ACCOUNTS_APPROVER = role("security/ExemptionApprover", account="444455556666")
SERVICE_LINKED = role("aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS")


def scp_levels(document: dict[str, Any]) -> list[list[Policy]]:
    full = Policy(
        "arn:aws:organizations::aws:policy/service_control_policy/p-FullAWSAccess", "FullAWSAccess", ALLOW_ALL
    )
    guard = Policy("arn:aws:organizations::1:policy/o-x/service_control_policy/p-guard", "guardrail", document)
    return [[full], [full, guard]]


GUARDRAIL = build_guardrail(
    break_glass=[BREAK_GLASS], approvers=[APPROVER], remediation_roles=[member_role_pattern(MEMBER_ROLE)]
)
EXEMPT_REASON, EXEMPT_UNTIL = "ecs-remediate:exempt-reason", "ecs-remediate:exempt-until"

# (case, principal, action, resource, condition keys of the request, allowed?)
TABLE: list[tuple[str, Node, str, str, dict[str, Any], bool]] = [
    ("privileged registration", DEVELOPER, "ecs:RegisterTaskDefinition", TASK_DEFINITION, {"ecs:privileged": "true"}, False),
    ("compliant registration", DEVELOPER, "ecs:RegisterTaskDefinition", TASK_DEFINITION, {"ecs:privileged": "false"}, True),
    ("registration without the key", DEVELOPER, "ecs:RegisterTaskDefinition", TASK_DEFINITION, {}, True),
    ("privileged daemon", DEVELOPER, "ecs:RegisterDaemonTaskDefinition", DAEMON_TASK_DEFINITION, {"ecs:privileged": "true"}, False),
    ("compliant daemon", DEVELOPER, "ecs:RegisterDaemonTaskDefinition", DAEMON_TASK_DEFINITION, {"ecs:privileged": "false"}, True),
    ("break-glass privileged", BREAK_GLASS_ADMIN, "ecs:RegisterTaskDefinition", TASK_DEFINITION, {"ecs:privileged": "true"}, True),
    ("break-glass privileged daemon", BREAK_GLASS_ADMIN, "ecs:RegisterDaemonTaskDefinition", DAEMON_TASK_DEFINITION, {"ecs:privileged": "true"}, True),
    ("approver is no break-glass", APPROVER_ROLE, "ecs:RegisterTaskDefinition", TASK_DEFINITION, {"ecs:privileged": "true"}, False),
    ("member role registers no privileged", MEMBER_ROLE_NODE, "ecs:RegisterTaskDefinition", TASK_DEFINITION, {"ecs:privileged": "true"}, False),
    ("set exemption tag", DEVELOPER, "ecs:TagResource", TASK_DEFINITION, {"aws:TagKeys": [EXEMPT_REASON]}, False),
    ("set it among other tags", DEVELOPER, "ecs:TagResource", TASK_DEFINITION, {"aws:TagKeys": ["team", EXEMPT_UNTIL]}, False),
    ("remove exemption tag", DEVELOPER, "ecs:UntagResource", TASK_DEFINITION, {"aws:TagKeys": [EXEMPT_UNTIL]}, False),
    ("exemption tag on create", DEVELOPER, "ecs:RegisterTaskDefinition", TASK_DEFINITION, {"ecs:privileged": "false", "aws:TagKeys": [EXEMPT_REASON, EXEMPT_UNTIL]}, False),
    ("exemption tag on create (tagging half)", DEVELOPER, "ecs:TagResource", TASK_DEFINITION, {"ecs:CreateAction": "RegisterTaskDefinition", "aws:TagKeys": [EXEMPT_REASON]}, False),
    ("exemption tag on a daemon", DEVELOPER, "ecs:RegisterDaemonTaskDefinition", DAEMON_TASK_DEFINITION, {"aws:TagKeys": [EXEMPT_REASON]}, False),
    ("other tags", DEVELOPER, "ecs:TagResource", TASK_DEFINITION, {"aws:TagKeys": ["team", "cost-center"]}, True),
    ("remove other tags", DEVELOPER, "ecs:UntagResource", TASK_DEFINITION, {"aws:TagKeys": ["team"]}, True),
    ("the marker tag is no exemption", DEVELOPER, "ecs:TagResource", TASK_DEFINITION, {"aws:TagKeys": ["ecs-remediate:source-revision"]}, True),
    ("approver sets exemption", APPROVER_ROLE, "ecs:TagResource", TASK_DEFINITION, {"aws:TagKeys": [EXEMPT_REASON, EXEMPT_UNTIL]}, True),
    ("approver removes exemption", APPROVER_ROLE, "ecs:UntagResource", TASK_DEFINITION, {"aws:TagKeys": [EXEMPT_UNTIL]}, True),
    ("approver of another account", OTHER_ACCOUNTS_APPROVER, "ecs:TagResource", TASK_DEFINITION, {"aws:TagKeys": [EXEMPT_REASON]}, False),
    ("break-glass is no approver", BREAK_GLASS_ADMIN, "ecs:TagResource", TASK_DEFINITION, {"aws:TagKeys": [EXEMPT_REASON]}, False),
    ("member role's copy keeps the tags", MEMBER_ROLE_NODE, "ecs:RegisterTaskDefinition", TASK_DEFINITION, {"ecs:privileged": "false", "aws:TagKeys": [EXEMPT_REASON, "team"]}, True),
    ("member role tags on create", MEMBER_ROLE_NODE, "ecs:TagResource", TASK_DEFINITION, {"ecs:CreateAction": "RegisterTaskDefinition", "aws:TagKeys": [EXEMPT_REASON]}, True),
    # What SCPs cannot cover (the detection path stays on for it): service-linked roles are not subject to SCPs.
    ("service-linked role", SERVICE_LINKED, "ecs:RegisterTaskDefinition", TASK_DEFINITION, {"ecs:privileged": "true"}, True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "principal", "action", "resource", "keys", "allowed"), TABLE, ids=[r[0] for r in TABLE]
)
def test_what_the_scp_allows_and_denies(
    case: str, principal: Node, action: str, resource: str, keys: dict[str, Any], allowed: bool
) -> None:
    result = local_check_authorization_full(principal, action, resource, keys, None, None, scp_levels(GUARDRAIL), None)
    assert result is allowed, case
    # Without the guardrail every row is allowed: the SCP, nothing else, makes the difference.
    assert local_check_authorization_full(principal, action, resource, keys, None, None, [[scp_levels({})[0][0]]], None)


def test_without_exceptions_nobody_registers_privileged_nor_touches_exemptions() -> None:
    strict = build_guardrail()
    for principal in (DEVELOPER, BREAK_GLASS_ADMIN, APPROVER_ROLE, MEMBER_ROLE_NODE):
        levels = scp_levels(strict)
        keys = {"ecs:privileged": "true"}
        assert not local_check_authorization_full(
            principal, "ecs:RegisterTaskDefinition", TASK_DEFINITION, keys, None, None, levels, None
        )
        keys = {"aws:TagKeys": [EXEMPT_REASON]}
        assert not local_check_authorization_full(
            principal, "ecs:TagResource", TASK_DEFINITION, keys, None, None, levels, None
        )
    assert "ArnNotLike" not in json.dumps(strict)


def test_custom_tag_prefix_protects_exactly_the_keys_the_function_reads() -> None:
    policy = build_guardrail(tag_prefix="acme-sec")
    config = Config(tag_prefix="acme-sec")
    levels = scp_levels(policy)
    for key in (config.exempt_reason_tag_key, config.exempt_until_tag_key):
        keys = {"aws:TagKeys": [key]}
        assert not local_check_authorization_full(
            DEVELOPER, "ecs:TagResource", TASK_DEFINITION, keys, None, None, levels, None
        )
    keys = {"aws:TagKeys": [EXEMPT_REASON]}  # the default prefix's keys mean nothing to this deployment
    assert local_check_authorization_full(DEVELOPER, "ecs:TagResource", TASK_DEFINITION, keys, None, None, levels, None)


def test_a_key_the_scp_lets_through_is_no_exemption_to_the_function() -> None:
    """Tag keys are case-sensitive on both sides: a look-alike key passes the SCP, and the function ignores it."""
    look_alike = {"ECS-REMEDIATE:exempt-reason": "trust me", "ECS-REMEDIATE:exempt-until": "2099-01-01"}
    keys = {"aws:TagKeys": list(look_alike)}
    levels = scp_levels(GUARDRAIL)
    assert local_check_authorization_full(DEVELOPER, "ecs:TagResource", TASK_DEFINITION, keys, None, None, levels, None)
    tags = [{"key": k, "value": v} for k, v in look_alike.items()]
    privileged = {"containerDefinitions": [{"name": "a", "privileged": True}]}
    for rules in (Config().exemption_rules, replace(Config(), tag_exemptions=True).exemption_rules):
        exemption = evaluate_exemption(
            family="web",
            arn=TASK_DEFINITION,
            task_definition=privileged,
            tags=tags,
            records=[],
            tag_approval=None,
            rules=rules,
            today=date(2026, 1, 1),
        )
        assert exemption is None


def test_condition_operators_are_the_ones_for_the_key_types() -> None:
    deny_privileged, deny_tags = GUARDRAIL["Statement"]
    assert deny_privileged["Condition"]["StringEquals"] == {"ecs:privileged": "true"}  # a String key: not Bool
    assert "Bool" not in deny_privileged["Condition"]
    assert deny_tags["Condition"]["ForAnyValue:StringLike"] == {"aws:TagKeys": ["ecs-remediate:exempt-*"]}
    assert deny_privileged["Condition"]["ArnNotLike"] == {"aws:PrincipalArn": [BREAK_GLASS]}
    assert deny_tags["Condition"]["ArnNotLike"] == {
        "aws:PrincipalArn": [APPROVER, "arn:*:iam::*:role/ecs-remediate-member"]
    }


def test_parliament_finds_nothing_but_the_action_its_database_predates() -> None:
    findings = analyze_policy_string(render(GUARDRAIL)).findings
    # parliament 1.6.4's IAM database (April 2025) predates the ECS daemon API; RegisterDaemonTaskDefinition and
    # its ecs:privileged key are in the Service Authorization Reference (../shared/DAEMONS.md). Nothing else.
    assert {(f.issue, f.detail) for f in findings} == {
        ("UNKNOWN_ACTION", "Unknown action ecs:RegisterDaemonTaskDefinition")
    }
    without_daemons = json.loads(render(GUARDRAIL).replace(',"ecs:RegisterDaemonTaskDefinition"', ""))
    assert analyze_policy_string(json.dumps(without_daemons)).findings == []


def test_size_limit() -> None:
    assert len(render(GUARDRAIL)) < SCP_SIZE_LIMIT
    many = [f"arn:aws:iam::{100000000000 + i}:role/team-{i:03d}-break-glass" for i in range(100)]
    with pytest.raises(GuardrailError, match=r"characters, over the 5120 limit"):
        build_guardrail(break_glass=many)
    fits = many[: (SCP_SIZE_LIMIT - len(render(build_guardrail()))) // 60]
    assert len(render(build_guardrail(break_glass=fits))) <= SCP_SIZE_LIMIT


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"break_glass": ["arn:aws:iam::*:role/Break Glass"]},
            "break-glass principal: 'arn:aws:iam::*:role/Break Glass'",
        ),
        ({"break_glass": ["*"]}, "break-glass principal: '*' is not a principal ARN pattern"),
        ({"approvers": ["arn:aws:s3:::bucket"]}, "exemption approver: 'arn:aws:s3:::bucket'"),
        ({"approvers": ['arn:aws:iam::*:role/x"']}, "exemption approver:"),
        ({"approvers": ["arn:aws:iam::12345:role/x"]}, "exemption approver:"),
        ({"tag_prefix": "aws:mine"}, "tag prefix:"),
        ({"tag_prefix": "bad*prefix"}, "tag prefix:"),
    ],
)
def test_bad_inputs_build_nothing(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(GuardrailError) as error:
        build_guardrail(**kwargs)
    assert str(error.value).startswith(message)


def test_cli_prints_the_same_policy() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["guardrail", "--break-glass", BREAK_GLASS, "--approver", APPROVER], stdout=out, stderr=err)
    assert code == 0 and err.getvalue() == ""
    assert json.loads(out.getvalue()) == GUARDRAIL
    assert out.getvalue() == render(GUARDRAIL) + "\n"
    out = io.StringIO()
    assert main(["guardrail", "--tag-prefix", "acme-sec", "--member-role", ""], stdout=out) == 0
    assert json.loads(out.getvalue()) == build_guardrail(tag_prefix="acme-sec")


def test_cli_bad_pattern_is_a_usage_error_with_nothing_on_stdout() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["guardrail", "--approver", "someone"], stdout=out, stderr=err) == 2
    assert out.getvalue() == "" and "exemption approver: 'someone'" in err.getvalue()
