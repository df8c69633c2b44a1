"""An emulator of the ECS Managed Daemons API subset this project uses (moto 5.2.5 implements none of it).

`DaemonEmulator.dispatch(operation, params, caller)` answers one request: it is validated against botocore's model
(daemon_api.validate_request), carried out on the state of the caller's account and Region (daemon_state), and the
answer is checked against the output shape. The daemon task definition operations, tags and Managed Instances
capacity providers (which moto cannot create) are here; daemons, revisions and deployments are in
daemon_deployments.py. server.py puts it in front of moto's server.

Where it may differ from AWS:
- a missing revision is `ClientException: Unable to describe daemon task definition.`, modelled on the task
  definition's message (AWS's code and text for daemons are not documented);
- `ListTagsForResource` answers for daemon task definitions, which the Service Authorization Reference does not list
  for that action: AWS may refuse it;
- a deleted revision stays DELETE_IN_PROGRESS while a daemon's current revision runs it and is DELETED from the next
  request after that (AWS gives no timing); DELETED revisions stay describable and listed with `status=ALL`;
- `revision=LAST_REGISTERED` is the newest revision of each family among those matching `status` (how AWS combines
  the two filters is not documented);
- Managed Instances capacity providers are created here (moto cannot) and stored in moto as Auto Scaling group
  providers, so moto's DescribeCapacityProviders shows no `managedInstancesProvider`; `cluster` is required;
- the full list, with the reasons: docs/daemons-emulator.md, items 1, 4-6 and 10.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from emulators.daemon_api import (
    DAEMON_ARN_RE,
    DAEMON_TASK_DEFINITION_ARN_RE,
    FAMILY_RE,
    JSON,
    ApiError,
    Caller,
    check_tags,
    client_error,
    invalid,
    paginate,
    service_model,
    validate_request,
    validate_response,
)
from emulators.daemon_deployments import DaemonOperations, moto_ecs
from emulators.daemon_state import (
    ACTIVE,
    DELETE_IN_PROGRESS,
    DELETED,
    ManagedInstancesProvider,
    RegionState,
    TaskDefinitionRecord,
)

NOT_FOUND = "Unable to describe daemon task definition."
_FAMILY_REVISION_RE = re.compile(r"^(?P<family>[A-Za-z0-9_-]{1,255}):(?P<revision>[1-9]\d*)\Z", re.ASCII)
# Tag calls for these resource types are answered here; every other resource stays with moto.
_OWN_RESOURCE_RE = re.compile(r"^arn:[^:]*:ecs:[^:]*:[^:]*:(daemon|daemon-task-definition)/")
OUTCOMES = ("SUCCESSFUL", "ROLLBACK_SUCCESSFUL", "IN_PROGRESS")
_RESERVED_PROVIDER_PREFIXES = ("aws", "ecs", "fargate")


class DaemonEmulator(DaemonOperations):
    OPERATIONS = frozenset(
        {
            "RegisterDaemonTaskDefinition",
            "DescribeDaemonTaskDefinition",
            "ListDaemonTaskDefinitions",
            "DeleteDaemonTaskDefinition",
            "CreateDaemon",
            "UpdateDaemon",
            "DeleteDaemon",
            "DescribeDaemon",
            "ListDaemons",
            "DescribeDaemonRevisions",
            "ListDaemonDeployments",
            "DescribeDaemonDeployments",
            "TagResource",
            "UntagResource",
            "ListTagsForResource",
            "CreateCapacityProvider",
        }
    )

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._regions: dict[tuple[str, str], RegionState] = {}
        self._last_time = 0.0
        output = service_model().shape_for("DaemonTaskDefinition")
        self._output_members = frozenset(output.members)  # type: ignore[attr-defined]

    # --- plumbing ---------------------------------------------------------------------------------------------

    def handles(self, operation: str, params: Any) -> bool:
        """Whether this request is ours; tag calls and CreateCapacityProvider are shared with moto."""
        if operation not in self.OPERATIONS:
            return False
        if operation in ("TagResource", "UntagResource", "ListTagsForResource"):
            arn = params.get("resourceArn") if isinstance(params, dict) else None
            return isinstance(arn, str) and bool(_OWN_RESOURCE_RE.match(arn))
        if operation == "CreateCapacityProvider":  # moto crashes on Managed Instances providers; they are ours
            return isinstance(params, dict) and "managedInstancesProvider" in params
        return True

    def dispatch(self, operation: str, params: Any, caller: Caller) -> JSON:
        params = validate_request(operation, params)
        handler: Callable[[RegionState, JSON, Caller], JSON] = getattr(self, "_" + _snake(operation))
        with self._lock:
            state = self._state(caller.account, caller.region)
            self._settle(state)
            body = handler(state, copy.deepcopy(params), caller)
        return validate_response(operation, body)

    def reset(self) -> None:
        with self._lock:
            self._regions.clear()

    def _state(self, account: str, region: str) -> RegionState:
        return self._regions.setdefault((account, region), RegionState())

    def now(self) -> float:
        """Epoch seconds, strictly increasing (orderings by time are then total)."""
        with self._lock:
            self._last_time = max(round(time.time(), 3), round(self._last_time + 0.001, 3))
            return self._last_time

    def _settle(self, state: RegionState) -> None:
        """A deleted revision stays DELETE_IN_PROGRESS while a daemon runs it, and is DELETED after."""
        in_use = state.revisions_in_use()
        for record in state.all_task_definitions():
            if record.status == DELETE_IN_PROGRESS and record.arn not in in_use:
                record.status = DELETED

    # --- test hooks ---------------------------------------------------------------------------------------------

    def set_next_deployment_outcome(self, daemon_arn: str, outcome: str) -> None:
        """How the next deployment of `daemon_arn` ends: SUCCESSFUL (the default), ROLLBACK_SUCCESSFUL (the circuit
        breaker trips and the daemon stays on its previous revision) or IN_PROGRESS (until `finish_deployment`)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        state = self._state_of_daemon(daemon_arn)
        with self._lock:
            state.next_outcome[daemon_arn] = outcome

    def finish_deployment(self, daemon_arn: str, outcome: str = "SUCCESSFUL") -> None:
        """Ends the daemon's IN_PROGRESS deployment as SUCCESSFUL or ROLLBACK_SUCCESSFUL."""
        state = self._state_of_daemon(daemon_arn)
        with self._lock:
            self.finish(state, state.daemons[daemon_arn], outcome)

    def finish_delete(self, daemon_arn: str) -> None:
        """Ends a DeleteDaemon: the daemon is gone (its revisions and deployments stay describable)."""
        state = self._state_of_daemon(daemon_arn)
        with self._lock:
            if state.daemons[daemon_arn].status != DELETE_IN_PROGRESS:
                raise ValueError(f"{daemon_arn} is not being deleted")
            del state.daemons[daemon_arn]

    def _state_of_daemon(self, daemon_arn: str) -> RegionState:
        match = DAEMON_ARN_RE.match(daemon_arn)
        state = self._regions.get((match["account"], match["region"])) if match else None
        if state is None or daemon_arn not in state.daemons:
            raise KeyError(f"no daemon {daemon_arn}")
        return state

    # --- daemon task definitions --------------------------------------------------------------------------------

    def _register_daemon_task_definition(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        family = params["family"]
        if not FAMILY_RE.match(family):
            raise invalid("family: up to 255 letters (uppercase and lowercase), numbers, underscores and hyphens")
        check_containers(params)
        tags = check_tags(params.pop("tags", []))
        revision = state.last_revision.get(family, 0) + 1
        state.last_revision[family] = revision
        arn = f"{caller.arn_prefix()}:daemon-task-definition/{family}:{revision}"
        record = TaskDefinitionRecord(arn, family, revision, params, tags, self.now(), caller.arn)
        state.task_definitions.setdefault(family, {})[revision] = record
        return {"daemonTaskDefinitionArn": arn}

    def _describe_daemon_task_definition(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        record = self.find_task_definition(state, caller, params["daemonTaskDefinition"], family_alone=True)
        return {"daemonTaskDefinition": record.describe(self._output_members)}

    def _list_daemon_task_definitions(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        status = params.get("status", ACTIVE)
        records = [
            r
            for r in state.all_task_definitions()
            if status in ("ALL", r.status)
            and r.family == params.get("family", r.family)
            and r.family.startswith(params.get("familyPrefix", ""))
        ]
        if params.get("revision") == "LAST_REGISTERED":
            newest: dict[str, TaskDefinitionRecord] = {}
            for record in records:
                if record.family not in newest or record.revision > newest[record.family].revision:
                    newest[record.family] = record
            records = list(newest.values())
        descending = params.get("sort") == "DESC"
        records.sort(key=lambda r: (r.family, r.revision), reverse=descending)
        filters = {k: params.get(k) for k in ("family", "familyPrefix", "status", "revision", "sort")}
        page, token = paginate(
            records,
            lambda r: (r.family, r.revision),
            params,
            "ListDaemonTaskDefinitions",
            filters,
            descending=descending,
        )
        body: JSON = {"daemonTaskDefinitions": [r.summary() for r in page]}
        if token:
            body["nextToken"] = token
        return body

    def _delete_daemon_task_definition(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        record = self.find_task_definition(state, caller, params["daemonTaskDefinition"], family_alone=False)
        if record.status != ACTIVE:
            raise client_error("The daemon task definition is not ACTIVE: only an ACTIVE one can be deleted.")
        record.status, record.delete_requested_at = DELETE_IN_PROGRESS, self.now()
        return {"daemonTaskDefinitionArn": record.arn}

    def find_task_definition(
        self, state: RegionState, caller: Caller, identifier: str, *, family_alone: bool
    ) -> TaskDefinitionRecord:
        """family (its newest ACTIVE revision), family:revision, or a full ARN (of the caller's account and Region)."""
        match = DAEMON_TASK_DEFINITION_ARN_RE.match(identifier) or _FAMILY_REVISION_RE.match(identifier)
        if match:
            if "account" in match.groupdict() and (match["account"], match["region"]) != (
                caller.account,
                caller.region,
            ):
                raise client_error(NOT_FOUND)
            record = state.task_definitions.get(match["family"], {}).get(int(match["revision"]))
        elif family_alone and FAMILY_RE.match(identifier):
            active = [r for r in state.task_definitions.get(identifier, {}).values() if r.status == ACTIVE]
            record = max(active, key=lambda r: r.revision) if active else None
        else:
            expected = "a family, family:revision or" if family_alone else "family:revision or"
            raise invalid(f"daemonTaskDefinition must be {expected} a daemon task definition ARN")
        if record is None:
            raise client_error(NOT_FOUND)
        return record

    # --- Managed Instances capacity providers -------------------------------------------------------------------

    def _create_capacity_provider(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        name = params["name"]
        if not FAMILY_RE.match(name) or name.lower().startswith(_RESERVED_PROVIDER_PREFIXES):
            raise invalid("name: letters, numbers, underscores and hyphens, not prefixed with aws, ecs or fargate")
        if "autoScalingGroupProvider" in params:
            raise invalid("a capacity provider takes autoScalingGroupProvider or managedInstancesProvider, not both")
        if "cluster" not in params:
            raise invalid("cluster: a Managed Instances capacity provider belongs to one cluster")
        cluster = self.cluster(caller, params["cluster"])
        backend = moto_ecs(caller)
        if name in backend.capacity_providers:
            raise client_error(f"The capacity provider {name} already exists.")
        tags = check_tags(params.get("tags", []))
        provider = backend.create_capacity_provider(name, {}, tags or None)
        if cluster.capacity_providers is None:
            cluster.capacity_providers = []
        cluster.capacity_providers.append(name)
        state.capacity_providers[name] = ManagedInstancesProvider(provider.capacity_provider_arn, name, cluster.arn)
        body: JSON = {
            "capacityProviderArn": provider.capacity_provider_arn,
            "name": name,
            "cluster": cluster.name,
            "status": "ACTIVE",
            "type": "MANAGED_INSTANCES",
            "managedInstancesProvider": params["managedInstancesProvider"],
        }
        if tags:
            body["tags"] = tags
        return {"capacityProvider": body}

    # --- tags (daemon task definitions and daemons; moto keeps every other resource's) --------------------------

    def _tag_resource(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        resource = self._tagged(state, caller, params["resourceArn"])
        resource.tags = check_tags(params["tags"], resource.tags)
        return {}

    def _untag_resource(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        resource = self._tagged(state, caller, params["resourceArn"])
        resource.tags = [t for t in resource.tags if t["key"] not in set(params["tagKeys"])]
        return {}

    def _list_tags_for_resource(self, state: RegionState, params: JSON, caller: Caller) -> JSON:
        return {"tags": copy.deepcopy(self._tagged(state, caller, params["resourceArn"]).tags)}

    def _tagged(self, state: RegionState, caller: Caller, arn: str) -> Any:
        match = DAEMON_TASK_DEFINITION_ARN_RE.match(arn)
        if match:
            if (match["account"], match["region"]) == (caller.account, caller.region):
                record = state.task_definitions.get(match["family"], {}).get(int(match["revision"]))
                if record is not None and record.status != DELETED:
                    return record
            raise client_error("The specified resource could not be found.")
        if DAEMON_ARN_RE.match(arn) and arn in state.daemons:
            return state.daemons[arn]
        if DAEMON_ARN_RE.match(arn):
            raise client_error("The specified resource could not be found.")
        raise invalid("resourceArn is not a valid daemon or daemon task definition ARN")


def check_containers(params: JSON) -> None:
    """Checks ECS makes on a daemon task definition beyond the model (as for task definitions)."""
    containers = params["containerDefinitions"]
    if not containers:
        raise invalid("containerDefinitions: at least one container definition is required")
    names: list[str] = []
    for index, container in enumerate(containers):
        name = container.get("name")
        if not isinstance(name, str) or not FAMILY_RE.match(name):
            raise invalid(f"containerDefinitions[{index}].name: up to 255 letters, numbers, underscores and hyphens")
        if not container["image"]:
            raise invalid(f"containerDefinitions[{index}].image must not be empty")
        names.append(name)
    if len(set(names)) != len(names):
        raise invalid("container names must be unique within a daemon task definition")
    volumes = [v.get("name") for v in params.get("volumes", [])]
    if any(not isinstance(v, str) or not FAMILY_RE.match(v) for v in volumes) or len(set(volumes)) != len(volumes):
        raise invalid("volumes: every volume needs a unique name of letters, numbers, underscores and hyphens")
    for container in containers:
        for mount in container.get("mountPoints", []):
            if mount.get("sourceVolume") not in volumes:
                raise invalid(f"container {container['name']!r}: mount point source volume is not a declared volume")
        for dependency in container.get("dependsOn", []):
            if dependency["containerName"] not in names or dependency["containerName"] == container["name"]:
                raise invalid(f"container {container['name']!r}: dependsOn names no other container of this task")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


__all__ = ["OUTCOMES", "ApiError", "Caller", "DaemonEmulator"]
