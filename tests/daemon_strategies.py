"""Hypothesis strategies for daemon task definitions (ECS Managed Daemons), generated from botocore's model of
RegisterDaemonTaskDefinition as tests/strategies.py does for task definitions: hypothesis draws the seed and the
shape knobs (1-10 containers, which are privileged, pidMode/ipcMode, host volumes, 0-50 tags) and a seeded walk of the
model fills in every other member. Every `linuxParameters` member is set. Names, volume references and dependencies
are kept consistent so the emulator accepts the documents too; values that must stay secret are `SECRET-` tokens.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from botocore.model import StructureShape
from hypothesis import strategies as st
from strategies import family, random_name, random_tags, random_text, random_value, sprinkle_nulls

from ecs_remediate.core.taskdef import default_daemon_register_model

DAEMON_MODEL = default_daemon_register_model()
_SHAPES = DAEMON_MODEL.service_model
CONTAINER = _SHAPES.shape_for("DaemonContainerDefinition")
LINUX_PARAMETERS = _SHAPES.shape_for("DaemonLinuxParameters")
# Members with a strategy of their own below; every other top-level member is drawn from the model.
_OWN = {"family", "containerDefinitions", "tags", "volumes", "pidMode", "ipcMode"}


def _container(rng: random.Random, index: int, privileged: bool | None, volumes: list[str]) -> dict[str, Any]:
    assert isinstance(CONTAINER, StructureShape) and isinstance(LINUX_PARAMETERS, StructureShape)
    container: dict[str, Any] = random_value(CONTAINER, rng)
    container["name"] = f"c{index}-{random_name(rng, 30)}"
    container["image"] = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{random_name(rng, 20).lower()}:{index}"
    container["linuxParameters"] = {
        member: random_value(shape, rng, LINUX_PARAMETERS.name, member)
        for member, shape in LINUX_PARAMETERS.members.items()
    }
    if volumes and rng.random() < 0.7:
        container["mountPoints"] = [
            {"sourceVolume": rng.choice(volumes), "containerPath": "/host/" + random_name(rng, 12), "readOnly": True}
        ]
    else:
        container.pop("mountPoints", None)
    container.pop("dependsOn", None)  # set once every container has its name
    container.pop("privileged", None)
    if privileged is not None:
        container["privileged"] = privileged
    return container


@st.composite
def daemon_register_inputs(draw: st.DrawFn, max_containers: int = 10, max_tags: int = 50) -> dict[str, Any]:
    """A RegisterDaemonTaskDefinition input, valid per the model and the emulator's checks."""
    rng = random.Random(draw(st.integers(0, 2**64)))
    count = draw(st.integers(1, max_containers))
    privileged = draw(st.lists(st.sampled_from([True, True, False, None]), min_size=count, max_size=count))
    request = DAEMON_MODEL.input_shape
    params: dict[str, Any] = {"family": draw(family)}
    for key in rng.sample(sorted(set(request.members) - _OWN), rng.randint(0, len(set(request.members) - _OWN))):
        params[key] = random_value(request.members[key], rng, request.name, key)
    for mode in ("pidMode", "ipcMode"):
        value = draw(st.sampled_from(["shared", "shared", "none", None]))
        if value is not None:
            params[mode] = value
    volumes = [f"v{i}-{random_name(rng, 12)}" for i in range(draw(st.integers(0, 4)))]
    if volumes:
        params["volumes"] = [{"name": name, "host": {"sourcePath": "/" + random_text(rng, 1)}} for name in volumes]
        if draw(st.booleans()):
            params["volumes"][0]["logDriverVolumeConfiguration"] = {"driver": "awslogs"}
    params["containerDefinitions"] = [_container(rng, i, p, volumes) for i, p in enumerate(privileged)]
    names = [c["name"] for c in params["containerDefinitions"]]
    for index, container in enumerate(params["containerDefinitions"][1:], start=1):
        if rng.random() < 0.5:
            container["dependsOn"] = [{"containerName": rng.choice(names[:index]), "condition": "COMPLETE"}]
    tag_count = draw(st.sampled_from([0, 0, 1, 3, 10, 49, 50])) if max_tags >= 50 else draw(st.integers(0, max_tags))
    if tag_count:
        params["tags"] = random_tags(rng, tag_count)
    return params


OUTPUT_ONLY: dict[str, st.SearchStrategy[Any]] = {
    "status": st.sampled_from(["ACTIVE", "DELETE_IN_PROGRESS", "DELETED"]),
    "registeredAt": st.sampled_from(["2026-04-02T03:04:05.678000+00:00", "2026-09-14T08:12:44Z"]),
    "registeredBy": st.just("arn:aws:sts::123456789012:assumed-role/platform-deployer/pipeline"),
    "deleteRequestedAt": st.just("2026-12-01T00:00:00Z"),
}


@st.composite
def daemon_documents(draw: st.DrawFn, inputs: st.SearchStrategy[dict[str, Any]] | None = None) -> Any:
    """(kind, raw JSON document, the RegisterDaemonTaskDefinition input behind it, the tags the document carries).

    daemon-describe-response: `{"daemonTaskDefinition": ...}` with output-only members and no tags (the API returns
    none); daemon-task-definition: the bare Describe output, or the Register input with its tags (given a daemon-only
    value so that its shape tells it from a task definition). Nulls are sprinkled at any depth."""
    params = draw(inputs if inputs is not None else daemon_register_inputs())
    form = draw(st.sampled_from(["describe-response", "describe-output", "register-input"]))
    rng = random.Random(draw(st.integers(0, 2**32)))
    if form == "register-input":
        params.setdefault("pidMode", "shared")
        return "daemon-task-definition", sprinkle_nulls(copy.deepcopy(params), rng), params, params.get("tags")
    definition = {k: v for k, v in params.items() if k != "tags"}
    revision = draw(st.integers(1, 10**6))
    definition.update(
        daemonTaskDefinitionArn=f"arn:aws:ecs:us-east-1:123456789012:daemon-task-definition/{params['family']}:{revision}",
        revision=revision,
        **{k: draw(v) for k, v in OUTPUT_ONLY.items() if draw(st.booleans())},
    )
    params = {k: v for k, v in params.items() if k != "tags"}  # Describe carries none: the copy has none
    if form == "describe-response":
        raw = {"daemonTaskDefinition": definition, "ResponseMetadata": {"HTTPStatusCode": 200}}
        return "daemon-describe-response", sprinkle_nulls(copy.deepcopy(raw), rng), params, None
    return "daemon-task-definition", sprinkle_nulls(copy.deepcopy(definition), rng), params, None
