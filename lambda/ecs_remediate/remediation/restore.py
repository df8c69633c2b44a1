"""Keeping a family's latest revision: whatever the stack registers, the content that a deploy by family name gets
(RunTask, CreateService, UpdateService with a family, the console's "create new revision") must stay the newest
deploy's, never older.

The stack's registrations can land above a newer deploy: the function's fixed copy of revision :N when a pipeline
registered :N+1 between the latest-revision check and the copy, and the sweep's copy of an older revision (`--scope
active --rollout`) by design. ECS has no conditional register, so after each registration of the stack's the
RegisterTaskDefinition response's revision number says whether anything came in between (`expected`: one above the
newest revision the stack knew of). When something did, the newest ACTIVE deploy in between (a revision the stack
cannot prove it registered itself) is registered again above it (its fixed copy: the same content when it is
compliant), and that registration is checked the same way. At most MAX_RESTORES registrations; a race that is not won
by then, or a deploy that may not be copied (privileged and exempt, unreadable exemptions, fields this SDK does not
know), ends in a note that names the family's latest, the newer deploy below it and the command that makes it the
latest again. Used by the function and the sweep (remediate.Remediator, superseded.finish_superseded,
superseded.restore_if_rolled_back), for task definitions and daemon task definitions alike.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.idempotency.exceptions import BaseError as IdempotencyError

from ..adapters.aws import BotoCoreError, ClientError, Ecs, RevisionNotFound, error_code
from ..adapters.ledger import Ledger
from ..core.config import Config
from ..core.described import Described
from ..core.exemptions.evaluate import RegistryUnavailable
from ..core.policy import EXEMPT, Judge
from ..core.taskdef import privileged_containers, tag_value
from .provenance import proven_without_source
from .rollout import marker_revision, short_ref

MAX_RESTORES = 3  # registrations after the stack's own, each checked against its response
MAX_DESCRIBED = 25  # revisions registered in between that are described, newest first


class RegisterFailed(Exception):
    """A fixed copy could not be built or registered for a permanent reason (`code`: what to name in a notice)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# Registers the fixed copy of a revision so that it lands above the stack's registration `above` (a revision
# number); returns the ARN of the revision that holds it.
Register = Callable[[Described, int], str]


@dataclass
class Restoration:
    """What the stack's registration did to the family's latest, and what was done about it."""

    registered: str  # the stack's last registration in the family (ARN)
    steps: list[str] = field(default_factory=list)  # what happened, in order
    restored: str | None = None  # the last registration made here (ARN), None when none was made
    restored_from: str | None = None  # the revision whose content `restored` holds
    failure: str = ""  # the race was not won: why
    buried: str | None = None  # not won: the newest deploy left below `registered` (ARN; None when unknown)
    step: str = ""  # not won: the command that makes `buried`'s content the latest again (or that shows the family)
    raced: bool = False  # something was registered between the stack's registrations

    @property
    def lost(self) -> bool:
        return bool(self.failure)

    @property
    def note(self) -> str:
        return "; ".join(self.steps)[:1500]

    def to_outcome(self) -> dict[str, Any]:
        """For the idempotency record of the function's write (JSON)."""
        outcome: dict[str, Any] = {}
        if self.restored:
            outcome.update(restoredArn=self.restored, restoredFrom=self.restored_from)
        if self.raced or self.lost:
            outcome["raceNote"] = self.note
        if self.lost:
            outcome.update(raceLost=True, buriedArn=self.buried, raceStep=self.step)
        return outcome


class Restorer:
    """The one restore routine (see the module docstring). `register`: how the caller registers a fixed copy (the
    Remediator's idempotent write, keyed on the revision it copies, recorded in the ledger)."""

    def __init__(self, ecs: Ecs, config: Config, judge: Judge, ledger: Ledger, register: Register) -> None:
        self.ecs, self.config, self.judge, self.ledger = ecs, config, judge, ledger
        self.register = register

    def keep_latest(self, registered: str, expected: int, want: Described | None = None) -> Restoration:
        """After the stack registered `registered`, which lands at revision `expected` when nothing came in between:
        make the family's latest hold the newest deploy's content. `want`: a revision whose content must be the
        latest although `registered` is not its copy (the sweep's copy of an older revision: the family's latest as
        it was read); None when `registered` already holds the content that belongs on top.

        No call at all when nothing came in between and nothing is wanted; otherwise one describe per revision looked
        at (newest first, until a deploy) and one registration per restore."""
        restoration = Restoration(registered)
        restores = 0
        while True:
            revision = _revision(registered)
            try:
                newer, unseen = self._newest_deploy(registered, expected)
            except (ClientError, BotoCoreError) as error:
                return self._lost(restoration, None, f"what was registered below it could not be read ({_code(error)})")
            if newer is not None:
                restoration.raced = True
                restoration.steps.append(
                    f"{short_ref(newer.arn)} was registered meanwhile, so the stack's {short_ref(registered)} landed "
                    "above it"
                    + (f" (newest of {revision - expected} revisions in between)" if revision - expected > 1 else "")
                )
                want = newer
            elif unseen:
                return self._lost(
                    restoration,
                    None,
                    f"more than {MAX_DESCRIBED} revisions were registered below it and none of the newest "
                    f"{MAX_DESCRIBED} is a deploy: not restored",
                )
            if want is None:
                if restoration.raced:
                    restoration.steps.append(
                        f"nothing was registered in between: the family's latest, {short_ref(registered)}, holds "
                        f"{_content_of(restoration)}"
                    )
                return restoration
            refused = self._refusal(want)
            if refused:
                return self._lost(restoration, want, refused, copyable=False)
            if restores == MAX_RESTORES:
                return self._lost(restoration, want, f"still losing the race after {MAX_RESTORES} restores")
            try:
                landed = self.register(want, revision)
            except (ClientError, BotoCoreError, IdempotencyError, RegisterFailed) as error:
                return self._lost(restoration, want, f"registering its copy failed ({_code(error)})")
            if _revision(landed) <= revision:  # never expected: a copy that did not land on top is no restore
                return self._lost(restoration, want, f"its copy {short_ref(landed)} did not land above")
            restores += 1
            privileged = bool(privileged_containers(want.task_definition))
            restoration.steps.append(
                f"{short_ref(landed)} was registered as {short_ref(want.arn)}'s "
                + ("fixed copy (privileged removed)" if privileged else "copy (the same content)")
            )
            restoration.restored, restoration.restored_from = landed, want.arn
            registered, expected, want = landed, revision + 1, None
            restoration.registered = registered

    # -----------------------------------------------------------------------------------------------------------

    def _newest_deploy(self, registered: str, expected: int) -> tuple[Described | None, bool]:
        """The newest ACTIVE revision between `expected` and `registered` that the stack cannot prove it registered
        itself (its copies hold the content of revisions at or below what it knew of), and whether revisions were
        left unseen (more than MAX_DESCRIBED and no deploy among the newest)."""
        revision = _revision(registered)
        between = range(revision - 1, expected - 1, -1)
        prefix = registered.rsplit(":", 1)[0]
        for number in list(between)[:MAX_DESCRIBED]:
            try:
                described = self.ecs.describe(f"{prefix}:{number}")
            except RevisionNotFound:
                continue
            if described.status == "ACTIVE" and not self._is_stack_copy(described):
                return described, False
        return None, len(between) > MAX_DESCRIBED

    def _is_stack_copy(self, described: Described) -> bool:
        """A fixed copy the stack registered (ledger or registeredBy; its marker names the revision it copies). A
        marker alone is a claim: a pipeline that clones the latest revision's tags carries one too."""
        named = marker_revision(tag_value(described.tags, self.config.marker_tag_key))
        if named is None or named >= described.revision:
            return False
        source = f"{described.arn.rsplit(':', 1)[0]}:{named}"
        proof = proven_without_source(
            described, source, ledger=self.ledger, trusted_principals=self.config.trusted_principals
        )
        return proof is not None and proof.verified

    def _refusal(self, revision: Described) -> str:
        """Why the fixed copy of `revision` may not be registered ("" when it may)."""
        if revision.unknown_members:
            fields = ", ".join(revision.unknown_members[:10])
            return f"the API returned field(s) this SDK's model does not know ({fields}): a copy would lose them"
        if not privileged_containers(revision.task_definition):
            return ""
        try:
            assessment = self.judge.assess(revision.arn, revision.task_definition, revision.tags)
        except RegistryUnavailable:
            return "it is privileged and its exemption could not be read: no copy of it was made"
        if assessment.verdict == EXEMPT:
            return "it is privileged and exempt: a fixed copy would change what was approved, so none was made"
        return ""

    def _lost(self, restoration: Restoration, newer: Described | None, why: str, copyable: bool = True) -> Restoration:
        """The race is not won: the note names the family's latest (the stack's last registration), the newer deploy
        below it, and the command that makes that deploy the latest again."""
        top = short_ref(restoration.registered)
        restoration.failure = why
        if newer is None:
            restoration.step = self._list_newest(top.rsplit(":", 1)[0])
            restoration.steps.append(f"{why}; the family's latest is {top}: check it ({restoration.step})")
            return restoration
        ref = short_ref(newer.arn)
        restoration.buried, restoration.step = newer.arn, self._reregister(newer) if copyable else ""
        how = restoration.step or f"re-run the deploy that registered {ref} (a fixed copy would change it)"
        restoration.steps.append(
            f"{ref} was not restored: {why}. The family's latest is {top}, older content than {ref}; to make {ref}'s "
            f"content the latest again: {how}"
        )
        return restoration

    def _reregister(self, revision: Described) -> str:
        """The command a person runs to register `revision`'s content again: its fixed copy, as `ecs-remediate fix`
        writes it (a compliant revision unchanged)."""
        ref = short_ref(revision.arn)
        region = self._region_flag()
        name = shlex.quote(ref.replace(":", "-"))
        if self.ecs.model.is_daemon:
            describe = f"aws ecs describe-daemon-task-definition --daemon-task-definition {shlex.quote(ref)}{region}"
            register = "register-daemon-task-definition"
        else:
            describe = f"aws ecs describe-task-definition --task-definition {shlex.quote(ref)} --include TAGS{region}"
            register = "register-task-definition"
        return (
            f"{describe} > {name}.json && ecs-remediate fix {name}.json > {name}.input.json && "
            f"aws ecs {register} --cli-input-json file://{name}.input.json{region}"
        )

    def _region_flag(self) -> str:
        return f" --region {shlex.quote(self.ecs.region)}" if self.ecs.region else ""

    def _list_newest(self, family: str) -> str:
        if self.ecs.model.is_daemon:
            return f"aws ecs list-daemon-task-definitions --family {shlex.quote(family)}{self._region_flag()}"
        return (
            f"aws ecs list-task-definitions --family-prefix {shlex.quote(family)} --status ACTIVE --sort DESC"
            f"{self._region_flag()}"
        )


def _revision(arn: str) -> int:
    tail = arn.rsplit(":", 1)[-1]
    return int(tail) if tail.isascii() and tail.isdigit() else 0


def _code(error: BaseException) -> str:
    """The error's code only: AWS error messages can echo request content."""
    return error.code if isinstance(error, RegisterFailed) else error_code(error)


def _content_of(restoration: Restoration) -> str:
    if restoration.restored_from:
        return f"{short_ref(restoration.restored_from)}'s content"
    return "the content the stack copied"
