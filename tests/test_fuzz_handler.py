"""Fuzzing the Lambda handler against a moto server: hostile events, and generated privileged registrations.

- Malformed events (any JSON, and a real event with 1-3 members replaced by anything, deleted or made huge):
  the handler never raises, and an event that is not a well-formed successful RegisterTaskDefinition call of an
  existing revision causes zero ECS writes and zero notices (counted at the transport, per event).
- Generated task definitions (1-10 containers, 0-50 tags, unicode, huge strings, deep linuxParameters, secrets)
  registered in the emulator and delivered as events: exactly one copy each, valid per botocore, identical to
  the source but for `privileged`, tags kept plus the marker; the same copy as `ecs-remediate fix` writes.
- In every case: no environment value, secret reference or repository credential in any notice or log line.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.validate import ParamValidator
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from strategies import (
    FUZZ,
    MODEL,
    Calls,
    collect_secrets,
    json_values,
    leaked_secrets,
    mutated,
    record,
    scaled,
    seeded_register_inputs,
)

from demo.sandbox import ACCOUNT, LambdaContext, Sandbox
from ecs_remediate.adapters import aws
from ecs_remediate.cli import main as cli
from ecs_remediate.core.events import DETAIL_TYPE, EVENT_NAME, EVENT_SOURCE, SOURCE
from ecs_remediate.core.taskdef import privileged_containers

pytestmark = pytest.mark.slow  # hypothesis at full example counts through the handler: 5 minutes

MARKER = "ecs-remediate:source-revision"
BASE = {
    "family": "web",
    "taskRoleArn": "arn:aws:iam::123456789012:role/app",
    "containerDefinitions": [
        {
            "name": "app",
            "image": "nginx",
            "memory": 128,
            "privileged": True,
            "environment": [{"name": "DB_PASSWORD", "value": "SECRET-0123456789abcdef"}],
            "secrets": [{"name": "API_KEY", "valueFrom": "SECRET-fedcba9876543210"}],
            "repositoryCredentials": {"credentialsParameter": "SECRET-00aa11bb22cc33dd"},
        }
    ],
}
COUNTS: dict[str, int] = {}


def count(name: str, by: int = 1) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + by


@pytest.fixture(scope="module", autouse=True)
def figures() -> Iterator[None]:
    yield
    record("fuzz_handler", **COUNTS)


IDENTIFIED, UNIDENTIFIED, MALFORMED = "identified", "unidentified", "malformed"


def classify(event: Any, arn: str) -> str:
    """The independent oracle: a successful RegisterTaskDefinition call in this account that names `arn`
    (identified), that names no revision at all (unidentified: found from the family and time, or notified), or
    anything else (malformed: skipped, nothing written)."""
    if not isinstance(event, dict) or event.get("detail-type") != DETAIL_TYPE or event.get("source") != SOURCE:
        return MALFORMED
    detail = event.get("detail")
    if not isinstance(detail, dict) or detail.get("errorCode"):
        return MALFORMED
    if detail.get("eventSource") != EVENT_SOURCE or detail.get("eventName") != EVENT_NAME:
        return MALFORMED
    account = event.get("account")
    if isinstance(account, str) and account and account != ACCOUNT:
        return MALFORMED  # another account's event
    response = detail.get("responseElements")
    task_definition = response.get("taskDefinition") if isinstance(response, dict) else None
    named = task_definition.get("taskDefinitionArn") if isinstance(task_definition, dict) else None
    if not isinstance(named, str):
        return UNIDENTIFIED
    return IDENTIFIED if named == arn else MALFORMED


def well_formed(event: Any, arn: str) -> bool:
    return classify(event, arn) == IDENTIFIED


ESSENTIAL = [
    ("detail-type",),
    ("source",),
    ("detail",),
    ("detail", "eventSource"),
    ("detail", "eventName"),
    ("detail", "errorCode"),
    ("detail", "responseElements"),
    ("detail", "responseElements", "taskDefinition"),
    ("detail", "responseElements", "taskDefinition", "taskDefinitionArn"),
]


def arn_variants(arn: str) -> st.SearchStrategy[str]:
    """Near misses of a revision ARN: another region, revision 0 or huge, no revision, spaces, other digits."""
    head, revision = arn.rsplit(":", 1)
    return st.sampled_from(
        [
            arn.replace("us-east-1", "eu-west-1"),
            f"{head}:0",
            f"{head}:{10**30}",
            f"{head}:{int(revision) + 1000}",  # well-formed, no such revision: described, then skipped
            head,
            f" {arn}",
            f"{arn}\n",
            f"{head}:\u0661",  # ARABIC-INDIC DIGIT ONE
            f"{head}:{revision}\u0661",
            arn.replace("task-definition/", "task-definition/../"),
            arn.replace("123456789012", "12345678901"),
            arn.upper(),
            f"{head}:{revision}:{revision}",
        ]
    )


@st.composite
def broken_essentials(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """The real event with 1-3 of the members that make it a registration replaced, deleted or made huge."""
    event = copy.deepcopy(base)
    arn = base["detail"]["responseElements"]["taskDefinition"]["taskDefinitionArn"]
    for path in draw(st.lists(st.sampled_from(ESSENTIAL), min_size=1, max_size=3, unique=True)):
        parent = event
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        action = draw(st.sampled_from(["replace", "delete", "arn", "error"]))
        if action == "delete":
            parent.pop(path[-1], None)
        elif action == "arn" and path[-1] == "taskDefinitionArn":
            parent[path[-1]] = draw(arn_variants(arn))
        elif action == "error" and path == ("detail", "errorCode"):
            parent[path[-1]] = draw(st.sampled_from(["AccessDenied", "ClientException", "x", "0"]))
        else:
            parent[path[-1]] = draw(json_values)
    return event


def with_arn(base: dict[str, Any], arn: str) -> dict[str, Any]:
    event = copy.deepcopy(base)
    event["detail"]["responseElements"]["taskDefinition"]["taskDefinitionArn"] = arn
    return event


@st.composite
def hostile_events(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """An even mix of: any JSON; the real event with a near-miss ARN; with its essential members broken; with
    1-3 members anywhere replaced, deleted or made huge (often still well-formed: then it must remediate)."""
    arn = base["detail"]["responseElements"]["taskDefinition"]["taskDefinitionArn"]
    kind = draw(st.sampled_from(["json", "arn", "essentials", "anywhere", "detail"]))
    if kind == "json":
        return draw(json_values)
    if kind == "arn":
        return with_arn(base, draw(arn_variants(arn)))
    if kind == "essentials":
        return draw(broken_essentials(base))
    if kind == "anywhere":
        return draw(mutated(base))[0]
    return {**base, "detail": draw(mutated(base["detail"], mutations=2))[0]}


def test_malformed_events_never_raise_and_write_nothing(
    sandbox: Sandbox, handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    response = sandbox.register(BASE)
    arn = response["taskDefinition"]["taskDefinitionArn"]
    base = sandbox.event_for(BASE, response)
    ecs, sns = Calls(aws.client("ecs")), Calls(aws.client("sns"))
    secrets = collect_secrets(BASE)
    capsys.readouterr()
    unresolved: list[int] = []  # notices sent for each event whose revision could not be identified

    @settings(FUZZ, max_examples=scaled(2500))
    @given(event=hostile_events(base))
    def run(event: Any) -> None:
        writes, publishes = len(ecs.writes), len(sns.writes)
        result = handler.lambda_handler(copy.deepcopy(event), LambdaContext())
        kind = classify(event, arn)
        count("handler_events_total")
        count(f"handler_events_{kind}")
        if kind == MALFORMED:
            assert result["outcome"] == "skipped", result
            assert len(ecs.writes) == writes and len(sns.writes) == publishes, (event, result)
            reason = str(result.get("reason", ""))
            count("skip_reason: " + " ".join(reason.replace("(", " ").split()[:3]))
        elif kind == UNIDENTIFIED:  # found by family, time and registrant, or notified; never silent
            assert result["outcome"] in ("remediated", "unresolved"), result
            if result["outcome"] == "unresolved":
                unresolved.append(len(sns.writes) - publishes)
        else:
            assert result["outcome"] == "remediated", result
        out, err = capsys.readouterr()
        assert leaked_secrets([out, err], secrets) == []

    run()
    assert ecs.count("RegisterTaskDefinition") <= 1
    copies = [a for a in sandbox.active_revisions("web") if not a.endswith(":1")]
    assert len(copies) == ecs.count("RegisterTaskDefinition")
    notices = sandbox.inbox()
    assert all(n <= 1 for n in unresolved)  # one notice each (repeats of the same event are deduplicated)
    assert len(notices) == len(copies) + sum(unresolved)
    assert leaked_secrets([json.dumps(n.payload) + n.subject for n in notices], secrets) == []
    count("handler_malformed_ecs_writes", len(ecs.writes) - len(copies))
    count("handler_fuzz_copies", len(copies))


def describe_params(described: dict[str, Any]) -> dict[str, Any]:
    """RegisterTaskDefinition input of a described revision (what a copy of it registers)."""
    params = {k: v for k, v in described["taskDefinition"].items() if k in MODEL.input_members}
    if described.get("tags"):
        params["tags"] = described["tags"]
    return params


def test_generated_privileged_registrations_end_to_end(
    sandbox: Sandbox, handler: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ecs = Calls(aws.client("ecs"))
    families = itertools.count(1)
    capsys.readouterr()

    @settings(FUZZ, max_examples=scaled(250))
    @given(params=seeded_register_inputs(max_containers=10, max_tags=49))
    def run(params: dict[str, Any]) -> None:
        params = {**params, "family": f"{params['family'][:240]}-{next(families)}"}
        params["containerDefinitions"][0]["privileged"] = True
        for container in params["containerDefinitions"]:  # what ECS (and the emulator) require of a container
            container["image"] = container.get("image") or "nginx"
            if "memory" not in container and "memoryReservation" not in container:
                container["memory"] = 128
        secrets = collect_secrets(params)
        try:
            response = sandbox.register(params)
        except aws.ClientError:  # the emulator refuses a few shapes the model allows
            count("e2e_refused_by_moto")
            reject()
        source = sandbox.describe(response["taskDefinition"]["taskDefinitionArn"])
        registers = ecs.count("RegisterTaskDefinition")
        result = handler.lambda_handler(sandbox.event_for(params, response), LambdaContext())
        count("e2e_registrations")

        assert result["outcome"] == "remediated", result
        assert ecs.count("RegisterTaskDefinition") == registers + 1
        fixed = sandbox.describe(result["new_task_definition_arn"])
        original, copied = source["taskDefinition"], fixed["taskDefinition"]
        assert copied["revision"] == original["revision"] + 1
        assert privileged_containers(copied) == []
        expected = copy.deepcopy(original["containerDefinitions"])
        for container in expected:
            if container.get("privileged") is True:
                container["privileged"] = False
        assert copied["containerDefinitions"] == expected
        for member in MODEL.input_members - {"containerDefinitions", "tags", "family"}:
            assert copied.get(member) == original.get(member), member
        tags = {t["key"]: t["value"] for t in fixed["tags"]}
        assert {t["key"]: t["value"] for t in source["tags"]}.items() <= tags.items()
        assert tags[MARKER] == f"{original['family']}:{original['revision']}"
        copy_input = describe_params(fixed)
        assert not ParamValidator().validate(copy_input, MODEL.input_shape).has_errors()

        # `ecs-remediate fix` on the same describe response writes the same copy, less the marker tag
        stdout, stderr = io.StringIO(), io.StringIO()
        path = tmp_path / "source.json"
        path.write_text(json.dumps(source, default=str, ensure_ascii=False), encoding="utf-8")
        assert cli.main(["fix", str(path)], stdout=stdout, stderr=stderr) == 0
        offline = json.loads(stdout.getvalue())
        assert {**offline, "tags": offline.get("tags", [])} == {
            **copy_input,
            "tags": [t for t in copy_input["tags"] if t["key"] != MARKER],
        }

        [note] = sandbox.inbox()
        assert note.attributes["outcome"] == "remediated"
        out, err = capsys.readouterr()
        texts = [json.dumps(note.payload, ensure_ascii=False), note.subject, out, err, stderr.getvalue()]
        assert leaked_secrets(texts, secrets) == []
        count("e2e_secrets_checked", len(secrets))
        if len(params["containerDefinitions"]) == 10:
            count("e2e_10_containers")

    run()
