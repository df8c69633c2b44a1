"""Thin AWS adapters: one botocore Config, clients created lazily once per process and region.

Each method names the IAM permission it needs. Errors are classified (transient or permanent) and said without
AWS's text in adapters/aws_errors.py, re-exported here, so the service layer never guesses from strings.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, ReadTimeoutError

from .. import __version__
from ..core.described import Described
from ..core.message import Message
from ..core.services import Service, holders, running
from ..core.taskdef import TASK_DEFINITION_ARN_RE, RegisterModel, privileged_containers
from .aws_errors import error_code, is_transient, safe_detail, safe_error, withhold_messages

# Standard retries: exponential backoff with jitter (up to 20 s) and the SDK's retry quota, 8 retries. Not adaptive:
# its client-side rate limiter is per client, so each Lambda execution environment slows down on its own when the
# account's bucket is shared by many (the AWS SDKs call adaptive mode advanced, for a client of one resource); in a
# burst the environments idled while ECS's bucket refilled unused (bench/burst.py: 1.19x and 1.31x the register
# floor, 1.08x to 1.18x with standard retries). The event path is paced by the queue (functions/delivery.py), the
# sweep by its own buckets (sweep/rates.py).
BOTO_CONFIG = BotoConfig(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra=f"ecs-remediate/{__version__}",
)


class RevisionNotFound(Exception):
    """DescribeTaskDefinition does not know the revision (deleted, or never existed)."""


AMBIGUOUS_REGISTER_ATTEMPTS = 4
_AMBIGUOUS_NETWORK_ERRORS = (ReadTimeoutError, ConnectionClosedError)


class _AmbiguousRegistration(Exception):
    """A RegisterTaskDefinition attempt failed after ECS may have carried it out; `error` is what failed."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(safe_error(error))
        self.error = error


def _stop_ambiguous_retry(
    response: tuple[Any, dict[str, Any]] | None, caught_exception: BaseException | None, **_: Any
) -> None:
    """`needs-retry` handler: stops the SDK from repeating a registration that may have happened."""
    if isinstance(caught_exception, _AMBIGUOUS_NETWORK_ERRORS):
        raise _AmbiguousRegistration(caught_exception)
    if response is not None and int(response[1].get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500:
        raise _AmbiguousRegistration(ClientError(response[1], "RegisterTaskDefinition"))


_clients: dict[tuple[str, str | None], Any] = {}
_clients_lock = threading.Lock()
_session: boto3.session.Session | None = None


def client(service: str, region: str | None = None) -> Any:
    """One client per service and region per process (Lambda reuses them across invocations).

    All come from one session, so botocore loads its endpoint data once; creation is serialised
    because sessions are not thread-safe (the clients themselves are)."""
    global _session  # noqa: PLW0603 - the process-wide session is the point
    key = (service, region)
    with _clients_lock:
        if key not in _clients:
            _session = _session or new_session()
            _clients[key] = _session.client(service, region_name=region, config=BOTO_CONFIG)
        return _clients[key]


def new_client(service: str, region: str | None = None) -> Any:
    """A client of its own (not cached: for a caller that registers handlers on it) from the process session."""
    global _session  # noqa: PLW0603
    with _clients_lock:
        _session = _session or new_session()
        return _session.client(service, region_name=region, config=BOTO_CONFIG)


def data_loader() -> Any:
    """The botocore data loader of the process session: a session of other credentials (a member account's) that
    uses it too parses no service model or endpoint data again (about 50 ms for ECS, 30 for the endpoints)."""
    global _session  # noqa: PLW0603
    with _clients_lock:
        _session = _session or new_session()
        return _session._session.get_component("data_loader")


def new_session(profile_name: str | None = None) -> boto3.session.Session:
    """The process session; its clients never hold AWS's error messages (adapters.aws_errors.withhold_message)."""
    session = boto3.session.Session(profile_name=profile_name)
    withhold_messages(session.events)
    return session


def reset_clients() -> None:
    """Forget cached clients and the session (tests switch endpoints between cases)."""
    global _session  # noqa: PLW0603
    with _clients_lock:
        _clients.clear()
        _session = None


# How many revisions' "has a privileged container" an Ecs adapter remembers before it forgets them all.
KNOWN_CONTENT_LIMIT = 20_000


class Ecs:
    """ECS calls the remediator makes."""

    _UNKNOWN_KEY = "EcsRemediateUnknownMembers"

    def __init__(self, ecs_client: Any) -> None:
        self._client = ecs_client
        # Whether a revision has a privileged container, by ARN, from what this adapter described or registered: a
        # revision's content never changes and ECS never reuses a revision number, so it stays true. Tags and status
        # do change and are never answered from here (`known_privileged`).
        self._privileged: dict[str, bool] = {}
        self.model = RegisterModel.from_service_model(ecs_client.meta.service_model)
        # botocore's parser drops members its model does not know; look at the raw body first so a
        # newer API field is noticed instead of silently lost from the copy.
        ecs_client.meta.events.register(
            "before-parse.ecs.DescribeTaskDefinition", self._note_unknown_members, unique_id="ecs-remediate"
        )
        # RegisterTaskDefinition is not idempotent: the SDK must not repeat an attempt that may have been
        # carried out (see `register`).
        ecs_client.meta.events.register(
            "needs-retry.ecs.RegisterTaskDefinition", _stop_ambiguous_retry, unique_id="ecs-remediate-register"
        )

    @property
    def region(self) -> str:
        return str(self._client.meta.region_name)

    def _note_unknown_members(
        self, response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
    ) -> None:
        if int(response_dict.get("status_code", 0)) >= 300:
            return
        try:
            body = json.loads(response_dict.get("body") or b"{}")
        except ValueError:
            return  # the parser will raise its own error
        if isinstance(body, dict) and isinstance(body.get("taskDefinition"), dict):
            customized_response_dict[self._UNKNOWN_KEY] = self.model.unknown_output_members(body["taskDefinition"])

    def describe(self, task_definition: str) -> Described:
        """ecs:DescribeTaskDefinition (resource "*": the action supports no narrower resource). A family name
        gives its newest ACTIVE revision (see `latest_active`); RevisionNotFound when there is none."""
        if ":" not in task_definition:
            latest = self.latest_active(task_definition)
            if latest is None:
                raise RevisionNotFound(task_definition)
            return latest
        return self._describe(task_definition)

    def _describe(self, task_definition: str) -> Described:
        try:
            response = self._client.describe_task_definition(taskDefinition=task_definition, include=["TAGS"])
        except ClientError as error:
            if error_code(error) in (
                "ClientException",
                "InvalidParameterException",
            ) and "nable to describe" in str(error):
                raise RevisionNotFound(task_definition) from error
            raise
        return self._remember(
            Described(
                task_definition=response["taskDefinition"],
                tags=list(response.get("tags") or []),
                unknown_members=list(response.get(self._UNKNOWN_KEY) or []),
            )
        )

    def _remember(self, described: Described) -> Described:
        if len(self._privileged) >= KNOWN_CONTENT_LIMIT:
            self._privileged.clear()
        if described.arn:
            self._privileged[described.arn] = bool(privileged_containers(described.task_definition))
        return described

    def known_privileged(self, arn: str) -> bool | None:
        """Whether revision `arn` has a privileged container, as this adapter saw it (None: not seen). Content only:
        the revision may have been deregistered or retagged since."""
        return self._privileged.get(arn)

    def latest_active(self, family: str) -> Described | None:
        """The newest ACTIVE revision of `family`, described with tags; None when it has none.

        DescribeTaskDefinition(taskDefinition=family) gives exactly that on ECS, but moto (5.2.5) gives the highest
        revision even when it is INACTIVE. When the answer is not an ACTIVE revision of that family, the family's
        ACTIVE revisions are listed and the newest is described."""
        try:
            described: Described | None = self._describe(family)
        except RevisionNotFound:
            described = None
        if described is not None and described.status == "ACTIVE" and described.family == family:
            return described
        revisions = self.family_revisions(family)
        if not revisions:
            return None
        prefix = described.arn.rsplit(":", 1)[0] if described is not None and described.family == family else family
        try:
            described = self._describe(f"{prefix}:{revisions[-1]}")
        except RevisionNotFound:
            return None
        return described if described.status == "ACTIVE" else None

    def family_revisions(self, family: str) -> list[int]:
        """The ACTIVE revision numbers of exactly `family`, ascending (familyPrefix is only a prefix match)."""
        found = []
        for arn in self.revision_arns(family):
            match = TASK_DEFINITION_ARN_RE.match(arn)
            if match and match["family"] == family:
                found.append(int(match["revision"]))
        return sorted(found)

    def register(
        self, params: dict[str, Any], already_registered: Callable[[], Described | None] | None = None
    ) -> Described:
        """ecs:RegisterTaskDefinition, plus ecs:TagResource (tag-on-create) when tags are given,
        plus iam:PassRole for taskRoleArn/executionRoleArn.

        The call is not idempotent. Throttling and connection failures are retried by the SDK (nothing was
        registered); after an ambiguous failure (read timeout, connection closed, 5xx: ECS may have
        registered the copy) `already_registered` is asked, and the call is repeated only if it finds
        nothing. Without it, the ambiguous error is raised (the caller's retry re-checks)."""
        for attempt in range(1, AMBIGUOUS_REGISTER_ATTEMPTS + 1):
            try:
                response = self._client.register_task_definition(**params)
            except _AmbiguousRegistration as ambiguous:
                found = already_registered() if already_registered is not None else None
                if found is not None:
                    return found
                if already_registered is None or attempt == AMBIGUOUS_REGISTER_ATTEMPTS:
                    raise ambiguous.error from None
                time.sleep(random.uniform(0, 0.1 * 2**attempt))  # noqa: S311 - jitter, not cryptography
                continue
            return self._remember(
                Described(task_definition=response["taskDefinition"], tags=list(response.get("tags") or []))
            )
        raise AssertionError("unreachable")

    def families(self) -> Iterator[str]:
        """ecs:ListTaskDefinitionFamilies over every page, ACTIVE families only."""
        paginator = self._client.get_paginator("list_task_definition_families")
        for page in paginator.paginate(status="ACTIVE"):
            yield from page.get("families", [])

    def revision_arns(self, family: str | None = None) -> Iterator[str]:
        """ecs:ListTaskDefinitions over every page, ACTIVE revisions only (familyPrefix is a prefix match)."""
        paginator = self._client.get_paginator("list_task_definitions")
        kwargs: dict[str, Any] = {"status": "ACTIVE"}
        if family:
            kwargs["familyPrefix"] = family
        for page in paginator.paginate(**kwargs):
            yield from page.get("taskDefinitionArns", [])

    # Rollout and retire (only called when those options are on; the stack grants these then).

    def services_using(self, task_definition_arn: str) -> list[Service]:
        """Every service that runs `task_definition_arn` (services.running: as its task definition, in a deployment
        or in a task set). ecs:ListClusters, ecs:ListServices, ecs:DescribeServices."""
        return running(self._client, task_definition_arn)

    def service_task_definition(self, service: Service) -> str | None:
        """ecs:DescribeServices for one service: its task definition now (None when the service is gone)."""
        described = self._client.describe_services(cluster=service.cluster, services=[service.name])
        for svc in described.get("services", []):
            if svc.get("serviceName") == service.name and svc.get("status") != "INACTIVE":
                return str(svc.get("taskDefinition", ""))
        return None

    def update_service(self, service: Service, task_definition_arn: str, replaced: str) -> tuple[str, str]:
        """ecs:UpdateService to a new revision only: a rolling deployment with the service's own
        deployment configuration (circuit breaker included) left as it is. Returns the deployment ID, and what of the
        service still runs `replaced` as the response describes it (its previous deployment, ACTIVE until its tasks
        are replaced; "" when nothing does)."""
        updated = self._client.update_service(
            cluster=service.cluster, service=service.name, taskDefinition=task_definition_arn
        )["service"]
        deployments = updated.get("deployments", [])
        primary = [d for d in deployments if d.get("status") == "PRIMARY"]
        newest = [d for d in primary if d.get("taskDefinition") == task_definition_arn] or primary or deployments
        return (str(newest[0]["id"]) if newest else ""), holders(updated, replaced) or ""

    def deregister(self, task_definition_arn: str) -> None:
        """ecs:DeregisterTaskDefinition: the revision becomes INACTIVE; running tasks are not affected."""
        self._client.deregister_task_definition(taskDefinition=task_definition_arn)


class Topic:
    """sns:Publish on the configured topic."""

    def __init__(self, sns_client: Any, topic_arn: str) -> None:
        self._client = sns_client
        self.topic_arn = topic_arn

    def publish(self, message: Message) -> str:
        # MessageStructure=json: email gets the text, machine subscriptions (sqs, lambda, https) the JSON.
        machine = json.dumps(message.payload, sort_keys=True, default=str)
        body = {"default": machine, "email": message.text, "email-json": machine}
        for protocol in ("sqs", "lambda", "http", "https", "firehose"):
            body[protocol] = machine
        response = self._client.publish(
            TopicArn=self.topic_arn,
            Subject=message.subject,
            Message=json.dumps(body),
            MessageStructure="json",
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value} for name, value in message.attributes.items()
            },
        )
        return str(response["MessageId"])


__all__ = [
    "BOTO_CONFIG",
    "BotoCoreError",
    "ClientError",
    "Ecs",
    "RevisionNotFound",
    "Topic",
    "client",
    "error_code",
    "is_transient",
    "new_session",
    "safe_detail",
    "safe_error",
]
