"""Where moto 5.2.5's ECS differs from ECS in a way the project's guarantees depend on, made faithful; and one place
where its SQS is slower than a queue can be (the burst benchmarks' queues hold thousands of messages).

- ECS records who registered a task definition and when (`registeredBy`, `registeredAt` in every describe);
  moto records neither. The stack proves its own copies partly by `registeredBy` (remediation/provenance.py) and finds
  the revision of an event without `responseElements` by `registeredAt`, so both are set here: `registeredBy` is the
  calling principal as moto's own STS resolves it from the access key (an assumed-role session ARN, an IAM user, or
  moto's placeholder `arn:aws:sts::<account>:user/moto` for a key it did not issue), `registeredAt` the registration
  time.

- ECS's RegisterTaskDefinition response carries the tags it applied (`tags`, beside `taskDefinition`: the API
  reference's response elements); moto's carries none. The function reads its fresh copy back from that response
  (remediation/remediator.py), so the tags are added here as given.

- ECS keeps a service's `deployments` in step with UpdateService: a new task definition starts a new PRIMARY
  deployment, and the previous one stays ACTIVE until its tasks are replaced (retire must wait for it); moto 5.2.5
  keeps the deployment the service was created with, on its first task definition, forever (and stores the task
  definition as given, `web:2`, where ECS names the ARN). Here UpdateService starts a PRIMARY deployment on the new
  revision's ARN that completes at once (the previous one is gone), unless a test holds the service's deployments
  (`hold_deployments`): then it is IN_PROGRESS and the previous ones stay ACTIVE until `complete_deployments()`. Task
  sets (CreateTaskSet, `taskSets` in DescribeServices) are moto's own; moto lets a test create one on a CODE_DEPLOY
  service, where AWS has CodeDeploy create them.

- ECS never reuses a revision number: once a family's revisions are deleted, the next registration still gets the
  next number ("the revision is incremented the next time you create a task definition with that name"); moto
  numbers from the highest revision it still holds, so a deleted :2 would come back as :2. The stack's ledger is keyed
  by revision ARN, so the highest revision ever registered is remembered per family here.

- moto's SQS ReceiveMessage checks each message it hands out against the queue's retention period by computing every
  attribute of the queue, several of them a pass over all its messages: a receive on a queue of n messages costs
  about n x n checks (2,000 messages: seconds of CPU a call, which made the hub's burst benchmark measure moto). The
  retention period is read from the queue directly here, with the same answer. Two more passes of moto's are made
  cheaper, with the same answers: the queue's visible messages (asked by every ReceiveMessage and every long poll's
  wake-up) read the clock once, not twice a message; DeleteMessage walks the messages once, not twice, and compares
  receipt handles without building a list per message; SendMessage (and each entry of SendMessageBatch) reads the
  one queue attribute it asks for (ContentBasedDeduplication, a FIFO queue's) instead of computing them all, three
  passes over the messages a send (43% of the emulator's time in the hub's burst benchmark, by py-spy). Nothing else
  of moto's SQS changes.

`apply()` patches moto in this process (in-process `mock_aws` and ThreadedMotoServer alike); it is idempotent.

Where it may differ from AWS:
- `registeredAt` is when moto stored the revision; `registeredBy` is what moto's STS makes of the access key, so a
  key moto did not issue (the tests' `testing`) registers as `arn:aws:sts::<account>:user/moto`, a principal AWS
  never reports; the response's `tags` are the request's, as sent;
- UpdateService starts a deployment only when it names another task definition and the controller is ECS
  (`forceNewDeployment` alone is moto's: the current deployment gets a new id, nothing is replaced); the deployment
  completes within the call, with moto's task counts, and what it replaced is dropped at once, unless the service is
  held; no task is started or stopped, and circuit breakers and alarms are not modelled;
- the highest revision ever registered is remembered per family in this process (reset forgets it with moto's
  state);
- only these four behaviours of ECS are patched: anywhere else moto's ECS is moto's (the listing pages are
  throttle_proxy.py's; what moto 5.2.5 gets wrong beyond them is not listed here).
"""

from __future__ import annotations

import contextvars
from datetime import UTC, datetime
from typing import Any

_principal: contextvars.ContextVar[str] = contextvars.ContextVar("registering_principal", default="")
_applied = False
_held: set[str] = set()  # service ARNs whose deployments stay IN_PROGRESS until complete_deployments()


def hold_deployments(service_arn: str) -> None:
    """The service's next deployments stay IN_PROGRESS (the ones they replace ACTIVE) until `complete_deployments`."""
    _held.add(service_arn)


def complete_deployments() -> None:
    """Every held deployment finishes: its PRIMARY COMPLETED, the deployments it replaced gone."""
    from moto.ecs.models import ecs_backends

    for account in list(ecs_backends):
        for backend in ecs_backends[account].values():
            for service in backend.services.values():
                if service.arn in _held:
                    service.deployments = [_completed(d) for d in service.deployments if d["status"] == "PRIMARY"]
    _held.clear()


def _completed(deployment: dict[str, Any]) -> dict[str, Any]:
    return {
        **deployment,
        "rolloutState": "COMPLETED",
        "rolloutStateReason": f"ECS deployment {deployment['id']} completed.",
    }


def apply() -> None:
    global _applied  # noqa: PLW0603 - patch once per process
    if _applied:
        return
    from moto.core.responses import ActionResult
    from moto.ecs import models, responses
    from moto.sts.models import sts_backends

    register_backend = models.EC2ContainerServiceBackend.register_task_definition
    last_revision = models.EC2ContainerServiceBackend._get_last_task_definition_revision_id

    def highest_ever(self: Any, family: str) -> int | None:
        ever: dict[str, int] = self.__dict__.setdefault("_ecs_remediate_revisions_ever", {})
        return max(last_revision(self, family) or 0, ever.get(family, 0)) or None

    register_response = responses.EC2ContainerServiceResponse.register_task_definition

    def backend(self: Any, *args: Any, **kwargs: Any) -> Any:
        task_definition = register_backend(self, *args, **kwargs)
        task_definition.registered_at = datetime.now(UTC)
        task_definition.registered_by = _principal.get() or f"arn:aws:iam::{self.account_id}:root"
        ever: dict[str, int] = self.__dict__.setdefault("_ecs_remediate_revisions_ever", {})
        ever[task_definition.family] = max(ever.get(task_definition.family, 0), task_definition.revision)
        return task_definition

    def response(self: Any) -> Any:
        try:
            _, arn, _ = sts_backends[self.current_account]["global"].get_caller_identity(
                self.get_access_key(), self.region
            )
        except Exception:  # noqa: BLE001 - an unknown key: moto's own default principal (the root) applies
            arn = ""
        token = _principal.set(str(arn))
        try:
            answer = register_response(self)
        finally:
            _principal.reset(token)
        tags = self._get_param("tags")
        if tags and isinstance(answer, ActionResult) and isinstance(answer.result, dict):
            return ActionResult({**answer.result, "tags": tags})
        return answer

    models.EC2ContainerServiceBackend.register_task_definition = backend
    models.EC2ContainerServiceBackend._get_last_task_definition_revision_id = highest_ever
    responses.EC2ContainerServiceResponse.register_task_definition = response
    models.EC2ContainerServiceBackend.update_service = _deploying(models.EC2ContainerServiceBackend.update_service)
    _retention_read_once()
    _applied = True


def _retention_read_once() -> None:
    """moto's SQS retention check, without computing every queue attribute per message (see the module docstring)."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def retained(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = retained
    _queue_walks_once()
    _send_reads_one_attribute()


def _send_reads_one_attribute() -> None:
    """moto's SendMessage reads `queue.attributes` only for ContentBasedDeduplication (see the module docstring)."""
    import threading

    from moto.sqs.models import Queue, SQSBackend

    every_attribute = Queue.attributes.fget
    sending = threading.local()

    def attributes(self: Any) -> dict[str, Any]:
        if getattr(sending, "depth", 0):
            if not self.fifo_queue:
                return {}
            value = self.content_based_deduplication
            return {"ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value}
        return dict(every_attribute(self))

    send_message = SQSBackend.send_message

    def sending_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        sending.depth = getattr(sending, "depth", 0) + 1
        try:
            return send_message(self, *args, **kwargs)
        finally:
            sending.depth -= 1

    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]
    SQSBackend.send_message = sending_message  # type: ignore[method-assign]


def _queue_walks_once() -> None:
    """moto's Queue.messages and Queue.delete_message, each one pass over the messages (see the module docstring)."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.exceptions import ReceiptHandleIsInvalid
    from moto.sqs.models import Queue

    def messages(self: Any) -> list[Any]:
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def delete_message(self: Any, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return  # deleted already: moto (and SQS) accept it again
        kept, found = [], False
        for message in self._messages:
            if message.receipt_handle == receipt_handle or receipt_handle in message._old_receipt_handles:
                found = True
                self.pending_messages.discard(message)
                self.deleted_messages.update(message.all_receipt_handles)
                continue
            kept.append(message)
        if not found:
            raise ReceiptHandleIsInvalid()
        self._messages = kept

    Queue.messages = property(messages)  # type: ignore[method-assign,assignment]
    Queue.delete_message = delete_message  # type: ignore[method-assign]


def _deploying(update_service: Any) -> Any:
    """UpdateService that starts a deployment on a new task definition, as ECS does (see the module docstring)."""
    from moto.core.utils import utcnow
    from moto.ecs.models import mock_random

    def update(self: Any, properties: dict[str, Any]) -> Any:
        requested = properties.get("task_definition")
        service = update_service(self, properties)
        if not requested or service.deployment_controller.get("type", "ECS") != "ECS":
            return service
        arn = self.describe_task_definition(requested).arn
        service.task_definition = arn
        if service.deployments and service.deployments[0].get("taskDefinition") == arn:
            return service  # the same revision again: no new deployment
        held = service.arn in _held
        now = utcnow()
        primary = {
            **(service.deployments[0] if service.deployments else {}),
            "id": f"ecs-svc/{mock_random.randint(0, 32**12)}",
            "status": "PRIMARY",
            "taskDefinition": arn,
            "createdAt": now,
            "updatedAt": now,
        }
        primary = primary if held else _completed(primary)
        if held:
            primary["rolloutState"], primary["rolloutStateReason"] = "IN_PROGRESS", "ECS deployment in progress."
        replaced = (
            [{**d, "status": "ACTIVE"} for d in service.deployments if d.get("status") != "INACTIVE"] if held else []
        )
        service.deployments = [primary, *replaced]
        return service

    return update
