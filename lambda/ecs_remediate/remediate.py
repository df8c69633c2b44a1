"""The remediation path shared by the Lambda and the sweep: describe, decide, register, notify.

Duplicate work is stopped twice: Powertools Idempotency (DynamoDB) keyed on the source revision ARN and
the mode, and a durable check that only the latest ACTIVE revision of a family is ever copied (a copy becomes the
latest, so a second attempt finds it and stops). The copy itself has no privileged container, so its
own registration event is filtered out by the rule and judged compliant if it arrives anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any, NoReturn

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from . import policy, rollout
from .aws import ClientError, Described, Ecs, RevisionNotFound, Topic, error_code, is_transient
from .config import Config
from .events import Registration
from .notice import build_message
from .outcomes import COMPLIANT, EXEMPT, FAILED, REMEDIATED, REPORTED, SKIPPED, Result
from .rollout import marker_value
from .taskdef import Document, TaskDefinitionError, build_fixed_copy, family_and_revision, tag_value

IDEMPOTENCY_KEY_PREFIX = "ecs-remediate"  # shared by the Lambda and the sweep, so they dedupe each other


class RemediationFailed(Exception):
    """A privileged revision could not be fixed for a permanent reason; the failure notice was sent."""

    def __init__(self, result: Result) -> None:
        super().__init__(f"{result.task_definition_arn}: {result.error_code}: {result.error_message}")
        self.result = result


def today_utc() -> date:
    return datetime.now(UTC).date()


class Remediator:
    def __init__(
        self,
        config: Config,
        ecs: Ecs,
        topic: Topic | None = None,
        persistence: BasePersistenceLayer | None = None,
        today: Callable[[], date] = today_utc,
    ) -> None:
        self.config = config
        self.ecs = ecs
        self.topic = topic
        self._today = today
        self._process_request: Callable[..., dict[str, Any]] = self._process_uncached
        self._idempotency: IdempotencyConfig | None = None
        if persistence is not None:
            self._idempotency = idempotency = IdempotencyConfig(
                # The revision and the mode: a report-mode result must not answer a remediate-mode caller
                # (the function and `scan --remediate` share the table).
                event_key_jmespath="[taskDefinitionArn, mode]",
                raise_on_no_idempotency_key=True,
                expires_after_seconds=config.idempotency_ttl_seconds,
            )
            self._process_request = idempotent_function(
                data_keyword_argument="request",
                persistence_store=persistence,
                config=idempotency,
                key_prefix=IDEMPOTENCY_KEY_PREFIX,
            )(self._process_uncached)
        self._lock = threading.Lock()

    @property
    def shares_idempotency(self) -> bool:
        """True when duplicates are stopped through the DynamoDB table (shared with other processes)."""
        return self._idempotency is not None

    def register_lambda_context(self, context: Any) -> None:
        """Lets Idempotency expire an in-progress record when the invocation times out."""
        if self._idempotency is not None:
            self._idempotency.register_lambda_context(context)

    def process(self, registration: Registration) -> Result:
        """Check one revision and act on it. Raises RemediationFailed (after notifying) on permanent
        failures and the AWS error itself on transient ones, so the caller retries."""
        request = {
            "taskDefinitionArn": registration.task_definition_arn,
            "mode": self.config.mode,
            "registration": asdict(registration),
        }
        return Result.from_dict(self._process_request(request=request))

    def _process_uncached(self, request: dict[str, Any]) -> dict[str, Any]:
        registration = Registration(**request["registration"])
        return self._process(registration).to_dict()

    def _process(self, registration: Registration) -> Result:
        arn = registration.task_definition_arn
        family, revision = family_and_revision(arn)
        result = Result(SKIPPED, arn, family, revision, registration=registration)
        try:
            described = self._describe(result, arn)
        except RevisionNotFound:
            result.reason = "the revision no longer exists"
            return result
        if described.status != "ACTIVE":
            result.reason = f"the revision is {described.status or 'not ACTIVE'}"
            return result

        if described.unknown_members:
            fields = ", ".join(described.unknown_members[:10])
            return self._fail(
                result,
                "UnknownField",
                f"the API returned field(s) this function's SDK model does not know ({fields}); a copy "
                "would lose them, so none was registered. Update the bundled boto3 and redeploy.",
            )
        assessment = policy.assess(described.task_definition, described.tags, self.config, self._today())
        result.privileged = assessment.privileged
        if assessment.exemption is not None:
            result.exemption = assessment.exemption.why
            result.exemption_until = assessment.exemption.until.isoformat() if assessment.exemption.until else None
        if not assessment.privileged:
            result.outcome, result.reason = COMPLIANT, "no container is privileged"
            return result
        if assessment.verdict == policy.EXEMPT:
            result.outcome = EXEMPT
            return self._notify(result)
        if self.config.mode == "report":
            result.outcome, result.reason = REPORTED, "report-only mode: nothing was changed"
            return self._notify(result)
        return self._remediate(result, described)

    def _remediate(self, result: Result, described: Described) -> Result:
        marker = (self.config.marker_tag_key, marker_value(result.family, result.revision))
        # Serialise within this process: two threads must not both find "no copy yet" and both register.
        with self._lock:
            try:
                latest = self._describe(result, result.family)
            except RevisionNotFound:  # deregistered since the first describe: nothing ACTIVE to copy
                result.reason = "the family has no ACTIVE revision any more"
                return result
            if latest.revision != result.revision:
                if tag_value(latest.tags, marker[0]) == marker[1]:
                    result.outcome, result.new_task_definition_arn = REMEDIATED, latest.arn
                    result.reason = "the fixed copy was registered by an earlier attempt"
                    return self._notify(self._follow_up(result))
                result.reason = (
                    f"superseded: the latest ACTIVE revision is :{latest.revision}, which is judged on its own; "
                    "copying an older revision would roll the family back"
                )
                return result
            try:
                fix = build_fixed_copy(
                    Document("describe-response", described.task_definition, described.tags),
                    self.ecs.model,
                    marker,
                )
            except TaskDefinitionError as error:
                return self._fail(result, "InvalidTaskDefinition", str(error))
            try:
                registered = self.ecs.register(
                    fix.register_input,
                    (lambda: self._copy_if_registered(result.family, marker)) if fix.marker_added else None,
                )
            except ClientError as error:
                if is_transient(error):
                    raise
                return self._fail(result, error_code(error), str(error))
        result.outcome, result.new_task_definition_arn = REMEDIATED, registered.arn
        result.dropped_tags, result.marker_added = fix.dropped_tags, fix.marker_added
        result.reason = "registered a copy with privileged: false"
        return self._notify(self._follow_up(result))

    def _follow_up(self, result: Result) -> Result:
        """Rollout, retire, and the count of privileged revisions left (rollout.py)."""
        assert result.new_task_definition_arn is not None
        followup = rollout.finish(self.ecs, self.config, result.task_definition_arn, result.new_task_definition_arn)
        for name, value in vars(followup).items():
            setattr(result, name, value)
        return result

    def _copy_if_registered(self, family: str, marker: tuple[str, str]) -> Described | None:
        """The latest revision if it is our copy (it carries the marker): an ambiguous failure did register."""
        latest = self.ecs.describe(family)
        return latest if tag_value(latest.tags, marker[0]) == marker[1] else None

    def _describe(self, result: Result, ref: str) -> Described:
        """DescribeTaskDefinition; a permanent error (AccessDenied, say) is a failure with a notice, since
        nothing will change on a retry; transient errors and RevisionNotFound go to the caller."""
        try:
            return self.ecs.describe(ref)
        except ClientError as error:
            if is_transient(error):
                raise
            self._fail(result, error_code(error), f"DescribeTaskDefinition failed: {error}")

    def _fail(self, result: Result, code: str, message: str) -> NoReturn:
        result.outcome, result.error_code, result.error_message = FAILED, code, message[:1000]
        self._notify(result)
        raise RemediationFailed(result)

    def _notify(self, result: Result) -> Result:
        if self.topic is not None and result.outcome in self.config.notify_on:
            self.topic.publish(build_message(result, region=self.ecs.region))
        return result


__all__ = [
    "COMPLIANT",
    "EXEMPT",
    "FAILED",
    "REMEDIATED",
    "REPORTED",
    "SKIPPED",
    "RemediationFailed",
    "Remediator",
    "marker_value",
]
