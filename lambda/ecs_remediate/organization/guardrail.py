"""The preventive guardrail: a service control policy (SCP) that refuses a privileged task definition before it
exists, and keeps the exemption tags out of the policed's hands. Pure: builds the policy document, calls nothing.

Two Deny statements (an SCP only limits; the organization's FullAWSAccess, or its own allow-list, still grants):
  * `ecs:RegisterTaskDefinition` and `ecs:RegisterDaemonTaskDefinition` when `ecs:privileged` is "true". The
    condition key is a String (Service Authorization Reference), so StringEquals, not Bool; a request without
    the key is not denied by it. Break-glass principals (ARN patterns) are excepted.
  * setting or removing a tag key `<prefix>:exempt-*` (what makes a revision exempt for the remediator):
    ecs:TagResource, ecs:UntagResource, and the register calls' tag-on-create, matched on `aws:TagKeys` with
    ForAnyValue:StringLike. Exemption approvers (ARN patterns) are excepted, and so is the remediator's own role,
    whose fixed copy keeps the tags of the revision it replaces.

SCPs do not apply to the management account nor to service-linked roles: the detection path stays on there.
The same document comes out of `ecs-remediate guardrail` and the hub stack (`guardrail=print|attach`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ..core.config import DEFAULT_TAG_PREFIX, ENV_TAG_PREFIX, Config, ConfigError

# Organizations' limit on an SCP document, in characters (counted on the compact JSON we submit).
SCP_SIZE_LIMIT = 5120
REGISTER_ACTIONS = ("ecs:RegisterTaskDefinition", "ecs:RegisterDaemonTaskDefinition")
TAG_ACTIONS = ("ecs:TagResource", "ecs:UntagResource")
PRIVILEGED_KEY = "ecs:privileged"
DENY_PRIVILEGED_SID = "DenyPrivilegedTaskDefinitions"
DENY_EXEMPTION_TAGS_SID = "DenyExemptionTagChanges"
# A principal ARN pattern as ArnNotLike takes it: IAM or STS, an account id or *, then the resource part with
# the wildcards * and ?. No spaces, quotes or commas (a typo there would silently except nobody, or everybody).
_PRINCIPAL_PATTERN_RE = re.compile(r"^arn:(\*|aws[a-z-]*):(iam|sts)::(\d{12}|\*):[\w+=.@/*?-]{1,400}$", re.ASCII)


class GuardrailError(ValueError):
    """A bad input (principal pattern, tag prefix) or a policy over the SCP size limit; nothing is built."""


def member_role_pattern(role_name: str) -> str:
    """The member role in every account of the organization (any partition), as an ARN pattern."""
    return f"arn:*:iam::*:role/{role_name}"


def exemption_tag_pattern(tag_prefix: str) -> str:
    return f"{tag_prefix}:exempt-*"


def build_guardrail(
    *,
    tag_prefix: str = DEFAULT_TAG_PREFIX,
    break_glass: Sequence[str] = (),
    approvers: Sequence[str] = (),
    remediation_roles: Sequence[str] = (),
) -> dict[str, Any]:
    """The SCP document. `break_glass`: principal ARN patterns that may register privileged task definitions;
    `approvers`: patterns that may set or remove exemption tags; `remediation_roles`: the remediator's roles
    (their copies keep the original's tags), excepted from the tag statement only."""
    prefix = _tag_prefix(tag_prefix)
    break_glass = _patterns("break-glass principal", break_glass)
    tag_exceptions = _patterns("exemption approver", [*approvers, *remediation_roles])
    privileged: dict[str, Any] = {"StringEquals": {PRIVILEGED_KEY: "true"}}
    if break_glass:
        privileged["ArnNotLike"] = {"aws:PrincipalArn": break_glass}
    exemption: dict[str, Any] = {"ForAnyValue:StringLike": {"aws:TagKeys": [exemption_tag_pattern(prefix)]}}
    if tag_exceptions:
        exemption["ArnNotLike"] = {"aws:PrincipalArn": tag_exceptions}
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": DENY_PRIVILEGED_SID,
                "Effect": "Deny",
                "Action": list(REGISTER_ACTIONS),
                "Resource": "*",
                "Condition": privileged,
            },
            {
                "Sid": DENY_EXEMPTION_TAGS_SID,
                "Effect": "Deny",
                "Action": [*TAG_ACTIONS, *REGISTER_ACTIONS],
                "Resource": "*",
                "Condition": exemption,
            },
        ],
    }
    size = len(render(policy))
    if size > SCP_SIZE_LIMIT:
        raise GuardrailError(
            f"the guardrail SCP would be {size} characters, over the {SCP_SIZE_LIMIT} limit of Organizations: "
            "use fewer or broader principal patterns (for example one role-name pattern with *)"
        )
    return policy


def render(policy: dict[str, Any]) -> str:
    """The compact JSON that is submitted and counted against the size limit."""
    return json.dumps(policy, separators=(",", ":"))


def _tag_prefix(value: str) -> str:
    try:  # the function's own rule, so the SCP protects exactly the keys the function reads
        return Config.from_env({ENV_TAG_PREFIX: value}).tag_prefix
    except ConfigError as error:
        raise GuardrailError(f"tag prefix: {str(error).removeprefix(f'{ENV_TAG_PREFIX}: ')}") from None


def _patterns(what: str, values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        if not isinstance(value, str) or not _PRINCIPAL_PATTERN_RE.match(value):
            raise GuardrailError(
                f"{what}: {value!r} is not a principal ARN pattern "
                "(arn:<partition or *>:iam::<account id or *>:role/NAME, wildcards * and ?)"
            )
        out.append(value)
    return list(dict.fromkeys(out))
