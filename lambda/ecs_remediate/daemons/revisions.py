"""Daemon task definitions behind the interface the remediation path works on (`aws.Ecs`).

The Remediator, the copy search (remediation/copies.py), provenance and the sweep's judging phase describe, register
and list revisions through an `Ecs`; `DaemonRevisions` answers those calls with the daemon API
(adapters.daemon_api.DaemonEcs), so the same code copies a daemon task definition once, records it in the ledger,
reads it back and proves it. What is specific to task definitions (services, DeregisterTaskDefinition) is refused
here: daemons have rollout and retire of their own (daemons/rollout.py), and a call that reaches a task-definition-
only method is a bug that must fail closed, never touch a service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from ..adapters.aws import Ecs, RevisionNotFound
from ..adapters.daemon_api import DaemonEcs, DescribedDaemonTaskDefinition
from ..core.described import Described
from ..core.services import Service
from ..core.taskdef import DAEMON_TASK_DEFINITION_ARN_RE, daemon_family_and_revision


class NotForDaemons(TypeError):
    """A task-definition-only call (services, deregister) was made on daemon task definitions."""


class DaemonRevisions(Ecs):
    """Daemon task definitions as an `Ecs`: describe (tags from ListTagsForResource), latest ACTIVE, family revisions,
    register (with the ambiguous-failure check), list. `api` is the daemon adapter itself (daemons, UpdateDaemon,
    DeleteDaemonTaskDefinition)."""

    def __init__(self, ecs_client: Any, api: DaemonEcs | None = None) -> None:
        super().__init__(ecs_client)  # the task-definition hooks on the shared client: registered once, harmless
        self.api = api or DaemonEcs(ecs_client)
        self.model = self.api.model

    def describe(self, task_definition: str) -> DescribedDaemonTaskDefinition:
        """ecs:DescribeDaemonTaskDefinition (+ ListTagsForResource). A family name gives its newest ACTIVE revision;
        RevisionNotFound (DaemonRevisionNotFound) when there is none."""
        if ":" not in task_definition:
            latest = self.latest_active(task_definition)
            if latest is None:
                raise RevisionNotFound(task_definition)
            return latest
        return self.api.describe(task_definition)

    def latest_active(self, family: str) -> DescribedDaemonTaskDefinition | None:
        """The newest ACTIVE revision of `family`: Describe with the family name, checked against the listing when
        the answer is not an ACTIVE revision of exactly that family."""
        try:
            described: DescribedDaemonTaskDefinition | None = self.api.describe(family)
        except RevisionNotFound:
            described = None
        if described is not None and described.status == "ACTIVE" and described.family == family:
            return described
        revisions = self.family_revisions(family)
        if not revisions:
            return None
        try:
            newest = self.api.describe(f"{family}:{revisions[-1]}")
        except RevisionNotFound:
            return None
        return newest if newest.status == "ACTIVE" else None

    def family_revisions(self, family: str) -> list[int]:
        """The ACTIVE revision numbers of exactly `family`, ascending (ecs:ListDaemonTaskDefinitions, every page)."""
        found = []
        for arn in self.api.revision_arns(family):
            match = DAEMON_TASK_DEFINITION_ARN_RE.match(arn)
            if match and match["family"] == family:
                found.append(int(match["revision"]))
        return sorted(found)

    def revision_arns(self, family: str | None = None) -> Iterator[str]:
        """Every ACTIVE daemon task definition ARN (of exactly `family` when given), every page."""
        yield from self.api.revision_arns(family)

    def families(self) -> Iterator[str]:
        """The families with an ACTIVE revision (from one listing of every ACTIVE revision: the API has no family
        listing for daemon task definitions)."""
        seen: dict[str, None] = {}
        for arn in self.api.revision_arns():
            match = DAEMON_TASK_DEFINITION_ARN_RE.match(arn)
            if match and match["family"] not in seen:
                seen[match["family"]] = None
                yield match["family"]

    def register(
        self, params: dict[str, Any], already_registered: Callable[[], Described | None] | None = None
    ) -> Described:
        """ecs:RegisterDaemonTaskDefinition (+ TagResource on create, PassRole). The response names only the ARN:
        the revision it returns carries ARN, family and revision, nothing else (the caller describes it)."""
        check: Callable[[], str | None] | None = None
        if already_registered is not None:
            ask = already_registered

            def check() -> str | None:
                found = ask()
                return found.arn if found is not None else None

        arn = self.api.register(params, check)
        family, revision = daemon_family_and_revision(arn)
        return DescribedDaemonTaskDefinition(
            {"daemonTaskDefinitionArn": arn, "family": family, "revision": revision}, tags=[]
        )

    # Task definitions only: daemons are moved and retired by daemons/rollout.py.

    def services_using(self, task_definition_arn: str) -> NoReturn:
        raise NotForDaemons("services never run daemon task definitions")

    def service_task_definition(self, service: Service) -> NoReturn:
        raise NotForDaemons("services never run daemon task definitions")

    def update_service(self, service: Service, task_definition_arn: str, replaced: str) -> NoReturn:
        raise NotForDaemons("rollout for daemons is UpdateDaemon (daemons/rollout.py), never UpdateService")

    def deregister(self, task_definition_arn: str) -> NoReturn:
        raise NotForDaemons("daemon task definitions are deleted (daemons/rollout.py), not deregistered")
