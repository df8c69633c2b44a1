"""CloudTrail, stood in for: every RegisterTaskDefinition the emulator answers, recorded as CloudTrail records the call.

moto has no CloudTrail that records API calls. Here moto's ECS response handler is wrapped (in this process: a
ThreadedMotoServer or the demo's emulator answers requests from any process, `ecs-remediate verify` run as a
subprocess included): each successful registration is kept with its request parameters, its response, the calling
principal (as moto's STS resolves the access key, an assumed-role session ARN in a member account), the account and
the Region. `Trail.subscribe()` hands them to one reader from then on. The EventBridge event built from a call is
the caller's (demo/sandbox.py's `event_for`), not this module's.

Where it may differ from AWS:
- delivery is immediate, in order, and never lost, duplicated or truncated (CloudTrail's is best effort, usually
  within minutes, and it cuts a field over its maximum size, 100 KB for `requestParameters`, marking it
  `omitted: true`: docs/reliability.md);
- only successful RegisterTaskDefinition calls are recorded: failed calls (which the stack's rule drops, `errorCode`
  exists), daemon task definitions, TagResource and every other action are not;
- `responseElements` holds the request's members with the ARN, revision and status ECS adds, not every output-only
  member; `principal` is moto's reading of the access key (a key moto did not issue is moto's placeholder user), with
  no session context, MFA or source identity.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from typing import Any

_subscribers: list[queue.Queue[Call]] = []
_lock = threading.Lock()
_applied = False


@dataclass(frozen=True)
class Call:
    params: dict[str, Any]
    response: dict[str, Any]
    principal: str  # the caller's ARN
    account: str
    region: str


def apply() -> None:
    """Wrap moto's RegisterTaskDefinition response (once per process; after emulators.moto_fidelity.apply)."""
    global _applied  # noqa: PLW0603 - patch once per process
    if _applied:
        return
    from moto.ecs import responses
    from moto.sts.models import sts_backends

    register = responses.EC2ContainerServiceResponse.register_task_definition

    def recorded(self: Any) -> Any:
        answer = register(self)
        with _lock:
            readers = list(_subscribers)
        if not readers:
            return answer
        try:
            _, principal, _ = sts_backends[self.current_account]["global"].get_caller_identity(
                self.get_access_key(), self.region
            )
        except Exception:  # noqa: BLE001 - an unknown key: moto's own default principal (the root)
            principal = f"arn:aws:iam::{self.current_account}:root"
        params = json.loads(self.body or "{}")
        call = Call(params, _response(params, answer), str(principal), self.current_account, self.region)
        for reader in readers:
            reader.put(call)
        return answer

    responses.EC2ContainerServiceResponse.register_task_definition = recorded
    _applied = True


def _response(params: dict[str, Any], answer: Any) -> dict[str, Any]:
    """The call's responseElements: the request's members with what ECS adds (ARN, revision, status); moto's answer is
    serialized later, so they are taken from its model object."""
    registered = getattr(answer, "result", {}).get("taskDefinition")
    body = {k: v for k, v in params.items() if k != "tags"}
    body.update(
        taskDefinitionArn=str(getattr(registered, "arn", "")),
        revision=int(getattr(registered, "revision", 0)),
        status="ACTIVE",
    )
    return {"taskDefinition": body, "tags": list(params.get("tags") or [])}


class Trail:
    """One reader of the recorded calls, from `subscribe()` until `close()`."""

    def __init__(self) -> None:
        apply()
        self.calls: queue.Queue[Call] = queue.Queue()
        with _lock:
            _subscribers.append(self.calls)

    def close(self) -> None:
        with _lock:
            if self.calls in _subscribers:
                _subscribers.remove(self.calls)


__all__ = ["Call", "Trail", "apply"]
