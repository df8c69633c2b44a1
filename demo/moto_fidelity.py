"""Where moto 5.2.5's ECS differs from ECS in a way the project's guarantees depend on, made faithful.

- ECS records who registered a task definition and when (`registeredBy`, `registeredAt` in every describe);
  moto records neither. The stack proves its own copies partly by `registeredBy` (provenance.py) and finds the
  revision of an event without `responseElements` by `registeredAt`, so both are set here: `registeredBy` is the
  calling principal as moto's own STS resolves it from the access key (an assumed-role session ARN, an IAM
  user, or the account root), `registeredAt` the registration time.

`apply()` patches moto in this process (in-process `mock_aws` and ThreadedMotoServer alike); it is idempotent.
"""

from __future__ import annotations

import contextvars
from datetime import UTC, datetime
from typing import Any

_principal: contextvars.ContextVar[str] = contextvars.ContextVar("registering_principal", default="")
_applied = False


def apply() -> None:
    global _applied  # noqa: PLW0603 - patch once per process
    if _applied:
        return
    from moto.ecs import models, responses
    from moto.sts.models import sts_backends

    register_backend = models.EC2ContainerServiceBackend.register_task_definition
    register_response = responses.EC2ContainerServiceResponse.register_task_definition

    def backend(self: Any, *args: Any, **kwargs: Any) -> Any:
        task_definition = register_backend(self, *args, **kwargs)
        task_definition.registered_at = datetime.now(UTC)
        task_definition.registered_by = _principal.get() or f"arn:aws:iam::{self.account_id}:root"
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
            return register_response(self)
        finally:
            _principal.reset(token)

    models.EC2ContainerServiceBackend.register_task_definition = backend
    responses.EC2ContainerServiceResponse.register_task_definition = response
    _applied = True
