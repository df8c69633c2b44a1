"""Thin adapter for the ECS Managed Daemons calls, in the style of aws.Ecs: each method names the IAM permission it
needs; errors are classified here. botocore has no paginator for any daemon list call, so every list is read to its
last page with a nextToken loop.

DescribeDaemonTaskDefinition returns no tags; they are read with ListTagsForResource, whose documented resource types
do not include daemon task definitions (the Service Authorization Reference lists TagResource and UntagResource for
them, not ListTagsForResource). So a permanent failure there is not an error of the call: `tags_error` says why the
tags could not be read, and the caller says so in its notice.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..core.described import Described
from ..core.taskdef import DAEMON_REGISTER, RegisterModel, daemon_family_and_revision
from .aws import (
    _AMBIGUOUS_NETWORK_ERRORS,
    AMBIGUOUS_REGISTER_ATTEMPTS,
    ClientError,
    RevisionNotFound,
    _AmbiguousRegistration,
    error_code,
    is_transient,
)

# DescribeDaemonRevisions and DescribeDaemonDeployments take up to 20 ARNs a call (the API reference).
DESCRIBE_BATCH = 20
# What a daemon revision carries over into an update besides its task definition and capacity providers.
REVISION_SETTINGS = ("propagateTags", "enableECSManagedTags", "enableExecuteCommand", "critical")
UNSETTLED_DEPLOYMENTS = frozenset({"PENDING", "IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED"})


class DaemonRevisionNotFound(RevisionNotFound):
    """DescribeDaemonTaskDefinition does not know the revision (never existed, or another account's)."""


class DaemonLookupError(Exception):
    """Which daemon task definition a daemon runs could not be established (a revision could not be described).
    Fail closed: never read it as "no daemon uses the revision"."""


class DaemonApiAbsent(Exception):
    """The endpoint has no daemon API (a Region without ECS Managed Daemons, or an emulator without them): there is
    nothing to judge there. Only ever raised for the first page of ListDaemonTaskDefinitions (`raise_when_absent`);
    access denied, throttling and every other answer stay errors (fail-closed)."""


# How an endpoint answers an operation it does not have, on the first attempt (never retried): AWS's JSON protocol
# answers UnknownOperationException (the query protocol InvalidAction); ECS answers UnsupportedFeatureException for a
# feature a Region lacks; a proxy or emulator that routes by operation answers HTTP 404 or 501; moto's server without
# the daemon emulator raises NotImplementedError, which Werkzeug turns into its own HTML 500 page (AWS's endpoints
# answer errors in JSON, never in HTML).
ABSENT_API_CODES = frozenset({"UnknownOperationException", "InvalidAction", "UnsupportedFeatureException"})
ABSENT_API_STATUSES = frozenset({404, 501})


def absent_api_reason(status: int, code: str, content_type: str) -> str | None:
    """Why an answer means the operation does not exist at that endpoint, or None when it is an answer of the API."""
    if code in ABSENT_API_CODES:
        return code
    if status in ABSENT_API_STATUSES:
        return f"HTTP {status}"
    if status == 500 and content_type.split(";", maxsplit=1)[0].strip().lower() == "text/html":
        return "HTTP 500 with an HTML page, not an AWS error"
    return None


class DaemonBusy(Exception):
    """The daemon cannot be moved now (not ACTIVE, or a deployment is still under way); try again later."""


@dataclass(frozen=True)
class DescribedDaemonTaskDefinition(Described):
    """A revision as DescribeDaemonTaskDefinition returned it, with its tags from ListTagsForResource. A `Described`
    (family, revision, status, registeredBy alike), so the remediation path's copy and provenance code takes it."""

    tags_error: str | None = None  # why the tags could not be read (an error code); None when they were

    @property
    def arn(self) -> str:
        return str(self.task_definition.get("daemonTaskDefinitionArn", ""))

    @property
    def tags_read(self) -> bool:
        return self.tags_error is None


@dataclass(frozen=True)
class DaemonRevision:
    """One of a daemon's current revisions: what it runs, where, and with which settings."""

    arn: str
    task_definition_arn: str
    capacity_provider_arns: tuple[str, ...]
    settings: dict[str, Any]  # the REVISION_SETTINGS the revision has


@dataclass(frozen=True)
class Daemon:
    arn: str
    cluster: str  # cluster ARN
    status: str
    deployment_arn: str  # the most recent deployment
    revisions: tuple[DaemonRevision, ...]  # current revisions: more than one while a deployment runs

    @property
    def name(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def cluster_name(self) -> str:
        return self.cluster.rsplit("/", 1)[-1]

    @property
    def task_definition_arns(self) -> list[str]:
        return [r.task_definition_arn for r in self.revisions]


class DaemonEcs:
    """The daemon calls the remediator makes (on the same ECS client as aws.Ecs)."""

    _UNKNOWN_KEY = "EcsRemediateUnknownMembers"

    def __init__(self, ecs_client: Any) -> None:
        self._client = ecs_client
        self.model = RegisterModel.from_service_model(ecs_client.meta.service_model, DAEMON_REGISTER)
        # botocore's parser drops members its model does not know: look at the raw body first (unique ids differ
        # from aws.Ecs's, which may be registered on the same client).
        ecs_client.meta.events.register(
            "before-parse.ecs.DescribeDaemonTaskDefinition", self._note_unknown_members, unique_id="ecs-remediate-dtd"
        )
        ecs_client.meta.events.register(
            "needs-retry.ecs.RegisterDaemonTaskDefinition", _stop_ambiguous_retry, unique_id="ecs-remediate-dtd-reg"
        )

    @property
    def region(self) -> str:
        return str(self._client.meta.region_name)

    def raise_when_absent(self) -> None:
        """From now on, the first page of ListDaemonTaskDefinitions raises DaemonApiAbsent at once (no retries) when
        the endpoint answers that it has no such operation (`absent_api_reason`)."""
        self._client.meta.events.register_first(
            "needs-retry.ecs.ListDaemonTaskDefinitions", _raise_when_absent, unique_id="ecs-remediate-dtd-absent"
        )

    def _note_unknown_members(
        self, response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
    ) -> None:
        if int(response_dict.get("status_code", 0)) >= 300:
            return
        try:
            body = json.loads(response_dict.get("body") or b"{}")
        except ValueError:
            return  # the parser will raise its own error
        member = self.model.describe_member
        if isinstance(body, dict) and isinstance(body.get(member), dict):
            customized_response_dict[self._UNKNOWN_KEY] = self.model.unknown_output_members(body[member])

    # --- daemon task definitions --------------------------------------------------------------------------------

    def describe(self, daemon_task_definition: str) -> DescribedDaemonTaskDefinition:
        """ecs:DescribeDaemonTaskDefinition (resource: daemon-task-definition), then `tags`."""
        try:
            response = self._client.describe_daemon_task_definition(daemonTaskDefinition=daemon_task_definition)
        except ClientError as error:
            if error_code(error) in ("ClientException", "InvalidParameterException") and "nable to describe" in str(
                error
            ):
                raise DaemonRevisionNotFound(daemon_task_definition) from error
            raise
        definition = response["daemonTaskDefinition"]
        tags, tags_error = self.tags(str(definition.get("daemonTaskDefinitionArn", "")))
        unknown = list(response.get(self._UNKNOWN_KEY) or [])
        return DescribedDaemonTaskDefinition(definition, tags, unknown_members=unknown, tags_error=tags_error)

    def tags(self, arn: str) -> tuple[list[dict[str, str]], str | None]:
        """ecs:ListTagsForResource (resource "*": its documented resource types omit daemon task definitions).

        (tags, None) when read; ([], error code) when ECS refuses for good (access denied, resource type not
        supported): the caller must say the copy's tags are unknown. Transient errors are raised (retry)."""
        try:
            response = self._client.list_tags_for_resource(resourceArn=arn)
        except ClientError as error:
            if is_transient(error):
                raise
            return [], error_code(error)
        return [{"key": str(t["key"]), "value": str(t.get("value", ""))} for t in response.get("tags") or []], None

    def register(self, params: dict[str, Any], already_registered: Callable[[], str | None] | None = None) -> str:
        """ecs:RegisterDaemonTaskDefinition (resource: daemon-task-definition), plus ecs:TagResource (tag-on-create)
        when tags are given, plus iam:PassRole (iam:PassedToService ecs-tasks.amazonaws.com) for taskRoleArn and
        executionRoleArn. Returns the new revision's ARN (the response holds nothing else).

        Not idempotent: as aws.Ecs.register, after an ambiguous failure (read timeout, connection closed, 5xx) the
        call is repeated only if `already_registered` finds nothing; without it the ambiguous error is raised."""
        for attempt in range(1, AMBIGUOUS_REGISTER_ATTEMPTS + 1):
            try:
                return str(self._client.register_daemon_task_definition(**params)["daemonTaskDefinitionArn"])
            except _AmbiguousRegistration as ambiguous:
                found = already_registered() if already_registered is not None else None
                if found is not None:
                    return found
                if already_registered is None or attempt == AMBIGUOUS_REGISTER_ATTEMPTS:
                    raise ambiguous.error from None
                time.sleep(random.uniform(0, 0.1 * 2**attempt))  # noqa: S311 - jitter, not cryptography
        raise AssertionError("unreachable")

    def summaries(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """ecs:ListDaemonTaskDefinitions (resource "*") over every page (arn, status, registeredAt, ...).
        `filters`: family (exact), familyPrefix, status (ACTIVE by default, DELETE_IN_PROGRESS, ALL), revision, sort."""
        yield from self._pages("list_daemon_task_definitions", "daemonTaskDefinitions", **filters)

    def revision_arns(self, family: str | None = None, status: str = "ACTIVE") -> Iterator[str]:
        """ecs:ListDaemonTaskDefinitions: every revision ARN with `status` (of the exact `family` when given)."""
        filters: dict[str, Any] = {"status": status, **({"family": family} if family else {})}
        for summary in self.summaries(**filters):
            yield str(summary["arn"])

    def latest_active_arns(self) -> list[str]:
        """The newest ACTIVE revision of each family (computed from every ACTIVE revision: how the API's
        revision=LAST_REGISTERED filter combines with status is not documented)."""
        newest: dict[str, tuple[int, str]] = {}
        for arn in self.revision_arns():
            family, revision = daemon_family_and_revision(arn)
            if revision > newest.get(family, (0, ""))[0]:
                newest[family] = (revision, arn)
        return [arn for _, (_, arn) in sorted(newest.items())]  # by family

    def delete(self, arn: str) -> None:
        """ecs:DeleteDaemonTaskDefinition (resource: daemon-task-definition): DELETE_IN_PROGRESS, then DELETED;
        daemons already running the revision keep running it."""
        self._client.delete_daemon_task_definition(daemonTaskDefinition=arn)

    # --- daemons ------------------------------------------------------------------------------------------------

    def daemons(self) -> list[Daemon]:
        """Every daemon of every cluster with what its current revisions run.
        ecs:ListClusters and ecs:ListDaemons (per cluster; resource "*"), ecs:DescribeDaemon (resource: daemon) and
        ecs:DescribeDaemonRevisions (resources: daemon, daemon-revision; 20 revisions a call). A revision that
        cannot be described raises DaemonLookupError."""
        details: list[dict[str, Any]] = []
        for page in self._client.get_paginator("list_clusters").paginate():
            for cluster in page.get("clusterArns", []):
                try:
                    summaries = list(self._pages("list_daemons", "daemonSummariesList", clusterArn=cluster))
                except ClientError as error:
                    if error_code(error) == "ClusterNotFoundException":  # deleted since it was listed
                        continue
                    raise
                for summary in summaries:
                    try:
                        details.append(self._client.describe_daemon(daemonArn=summary["daemonArn"])["daemon"])
                    except ClientError as error:
                        if error_code(error) != "DaemonNotFoundException":  # deleted since it was listed
                            raise
        return self._with_revisions(details)

    def daemon(self, daemon_arn: str) -> Daemon | None:
        """One daemon as it is now (ecs:DescribeDaemon, ecs:DescribeDaemonRevisions), or None when it is gone.
        DaemonLookupError when a current revision cannot be described."""
        try:
            detail = self._client.describe_daemon(daemonArn=daemon_arn)["daemon"]
        except ClientError as error:
            if error_code(error) == "DaemonNotFoundException":
                return None
            raise
        [daemon] = self._with_revisions([detail])
        return daemon

    def _with_revisions(self, details: list[dict[str, Any]]) -> list[Daemon]:
        revisions = self._revisions([r["arn"] for d in details for r in d.get("currentRevisions", [])])
        return [
            Daemon(
                arn=str(d["daemonArn"]),
                cluster=str(d.get("clusterArn", "")),
                status=str(d.get("status", "")),
                deployment_arn=str(d.get("deploymentArn", "")),
                revisions=tuple(
                    DaemonRevision(
                        arn=str(r["arn"]),
                        task_definition_arn=revisions[r["arn"]]["daemonTaskDefinitionArn"],
                        capacity_provider_arns=tuple(str(p["arn"]) for p in r.get("capacityProviders", [])),
                        settings={k: revisions[r["arn"]][k] for k in REVISION_SETTINGS if k in revisions[r["arn"]]},
                    )
                    for r in d.get("currentRevisions", [])
                ),
            )
            for d in details
        ]

    def daemons_using(self, daemon_task_definition_arn: str) -> list[Daemon]:
        """The daemons whose current revisions run `daemon_task_definition_arn` (see `daemons` for permissions)."""
        return [d for d in self.daemons() if daemon_task_definition_arn in d.task_definition_arns]

    def update_daemon(self, daemon: Daemon, daemon_task_definition_arn: str) -> str:
        """ecs:UpdateDaemon (resource: daemon) onto a new revision, with the daemon's own capacity providers, revision
        settings and deployment configuration carried over; plus iam:PassRole (iam:PassedToService
        ecs-tasks.amazonaws.com) and ecs:DescribeDaemonDeployments (resources: daemon, daemon-deployment). Every
        update drains and replaces the daemon's instances. Returns the new deployment's ARN. DaemonBusy while a
        deployment runs or the daemon is not ACTIVE."""
        if daemon.status != "ACTIVE" or len(daemon.revisions) != 1:
            raise DaemonBusy(f"{daemon.arn}: {daemon.status}, {len(daemon.revisions)} current revisions")
        [current] = daemon.revisions
        if not current.capacity_provider_arns:
            raise DaemonBusy(f"{daemon.arn}: no capacity provider to carry over")
        params: dict[str, Any] = {
            "daemonArn": daemon.arn,
            "daemonTaskDefinitionArn": daemon_task_definition_arn,
            "capacityProviderArns": list(current.capacity_provider_arns),
            **current.settings,
        }
        if daemon.deployment_arn:
            described = self._client.describe_daemon_deployments(daemonDeploymentArns=[daemon.deployment_arn])
            for deployment in described.get("daemonDeployments", []):
                if deployment.get("status") in UNSETTLED_DEPLOYMENTS:
                    raise DaemonBusy(f"{daemon.arn}: deployment {deployment.get('status')}")
                if deployment.get("deploymentConfiguration"):
                    params["deploymentConfiguration"] = deployment["deploymentConfiguration"]
        return str(self._client.update_daemon(**params)["deploymentArn"])

    def deployment(self, deployment_arn: str) -> dict[str, Any] | None:
        """ecs:DescribeDaemonDeployments (resources: daemon, daemon-deployment): the deployment (status, rollback,
        ...), or None."""
        found = self._client.describe_daemon_deployments(daemonDeploymentArns=[deployment_arn])
        return next(iter(found.get("daemonDeployments", [])), None)

    # --- helpers ------------------------------------------------------------------------------------------------

    def _pages(self, method: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        while True:
            response = getattr(self._client, method)(**params)
            yield from response.get(key, [])
            token = response.get("nextToken")
            if not token:
                return
            params["nextToken"] = token

    def _revisions(self, arns: list[str]) -> dict[str, dict[str, Any]]:
        unique = list(dict.fromkeys(arns))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(unique), DESCRIBE_BATCH):
            response = self._client.describe_daemon_revisions(daemonRevisionArns=unique[start : start + DESCRIBE_BATCH])
            found.update({str(r["daemonRevisionArn"]): r for r in response.get("daemonRevisions", [])})
        missing = [arn for arn in unique if arn not in found or "daemonTaskDefinitionArn" not in found[arn]]
        if missing:
            raise DaemonLookupError(f"{len(missing)} daemon revision(s) could not be described, e.g. {missing[0]}")
        return found


def _raise_when_absent(response: tuple[Any, dict[str, Any]] | None, request_dict: dict[str, Any], **_: Any) -> None:
    """`needs-retry` handler of ListDaemonTaskDefinitions (first page only: a later page that fails is an error of
    a listing that had started)."""
    if response is None or b"nextToken" in _body_bytes(request_dict.get("body")):
        return
    http, parsed = response
    metadata = parsed.get("ResponseMetadata", {})
    status = int(metadata.get("HTTPStatusCode", 0) or getattr(http, "status_code", 0) or 0)
    headers = metadata.get("HTTPHeaders", {}) or {}
    code = str(parsed.get("Error", {}).get("Code", ""))
    reason = absent_api_reason(status, code, str(headers.get("content-type", "")))
    if reason is not None:
        raise DaemonApiAbsent(f"ListDaemonTaskDefinitions: {reason}")


def _body_bytes(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    return str(body or "").encode()


def _stop_ambiguous_retry(
    response: tuple[Any, dict[str, Any]] | None, caught_exception: BaseException | None, **_: Any
) -> None:
    """`needs-retry` handler: stops the SDK from repeating a registration that may have happened."""
    if isinstance(caught_exception, _AMBIGUOUS_NETWORK_ERRORS):
        raise _AmbiguousRegistration(caught_exception)
    if response is not None and int(response[1].get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500:
        raise _AmbiguousRegistration(ClientError(response[1], DAEMON_REGISTER))


__all__ = [
    "ABSENT_API_CODES",
    "Daemon",
    "DaemonApiAbsent",
    "DaemonBusy",
    "DaemonEcs",
    "DaemonLookupError",
    "DaemonRevision",
    "DaemonRevisionNotFound",
    "DescribedDaemonTaskDefinition",
    "absent_api_reason",
]
