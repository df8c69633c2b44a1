"""Fuzzing the pure core and `ecs-remediate fix`: thousands of generated task definitions, valid and hostile.

Properties:
- every copy is valid per botocore's ParamValidator and identical to the input but for `privileged`, tags kept;
- a member the SDK model does not know is refused, naming it (never silently dropped);
- `fix` never raises: it exits 0 with a valid copy, or 1 (--check), or 2 with one line on stderr and nothing
  on stdout; no environment value, secret reference or repository credential is ever echoed on stderr.
"""

from __future__ import annotations

import copy
import io
import json
import sys
from typing import Any

import pytest
from botocore.validate import ParamValidator
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import (
    FUZZ,
    MODEL,
    collect_secrets,
    documents,
    json_values,
    leaked_secrets,
    mutated,
    record,
    register_inputs,
    scaled,
    seeded_register_inputs,
)

from ecs_remediate.cli import common as cli_common
from ecs_remediate.cli import main as cli
from ecs_remediate.core.taskdef import (
    Document,
    TaskDefinitionError,
    build_fixed_copy,
    drop_nulls,
    parse_document,
    privileged_containers,
)

MARKER = ("ecs-remediate:source-revision", "web:7")
COUNTS: dict[str, int] = {}


def count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def figures() -> Any:
    yield
    record("fuzz_taskdef", **COUNTS)


def expected_copy(params: dict[str, Any], with_marker: bool) -> dict[str, Any]:
    """What the copy must be: the input, every privileged: true turned false, tags kept, the marker added."""
    expected = copy.deepcopy({k: v for k, v in params.items() if k != "tags"})
    for container in expected["containerDefinitions"]:
        if container.get("privileged") is True:
            container["privileged"] = False
    kept = list(params.get("tags", []))
    if with_marker:
        kept = [t for t in kept if t["key"] != MARKER[0]]
        if len(kept) < 50:
            kept.append({"key": MARKER[0], "value": MARKER[1]})
    if kept:
        expected["tags"] = kept
    return expected


@pytest.mark.slow
@settings(FUZZ, max_examples=scaled(5000))
@given(case=documents(seeded_register_inputs()), with_marker=st.booleans())
def test_copy_is_valid_and_identical_but_for_privileged(
    case: tuple[str, Any, dict[str, Any]], with_marker: bool
) -> None:
    check_copy(case, with_marker, "pure_core_documents_seeded")


@pytest.mark.slow
@settings(FUZZ, max_examples=scaled(500))
@given(case=documents(register_inputs()), with_marker=st.booleans())
def test_copy_of_hypothesis_shaped_documents(case: tuple[str, Any, dict[str, Any]], with_marker: bool) -> None:
    """Every value drawn by hypothesis itself (its edge cases: empty strings, bounds, odd code points)."""
    check_copy(case, with_marker, "pure_core_documents_hypothesis")


def check_copy(case: tuple[str, Any, dict[str, Any]], with_marker: bool, counter: str) -> None:
    kind, raw, params = case
    count(counter)
    document = parse_document(raw)
    assert document.kind == kind
    fix = build_fixed_copy(document, MODEL, MARKER if with_marker else None)

    if kind == "container-definitions":
        expected = expected_copy(params, False)["containerDefinitions"]
        assert fix.register_input["containerDefinitions"] == expected
        return
    assert not ParamValidator().validate(fix.register_input, MODEL.input_shape).has_errors()
    assert fix.register_input == expected_copy(params, with_marker)
    assert fix.privileged == privileged_containers(params)
    assert privileged_containers(fix.register_input) == []
    reserved = [t["key"] for t in drop_nulls(raw)["tags"] if t["key"].lower().startswith("aws:")]
    assert sorted(fix.dropped_tags) == sorted(reserved)
    if fix.privileged:
        count("pure_core_privileged")
    if len(params["containerDefinitions"]) == 10:
        count("pure_core_10_containers")
    if len(params.get("tags", [])) == 50:
        count("pure_core_50_tags")


@st.composite
def with_unknown_member(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    params = draw(seeded_register_inputs(max_containers=3))
    member = draw(st.sampled_from(["gpuSharingPolicy", "futureField", "enableFaultInjectionV2"]))
    value = draw(json_values.filter(lambda v: v is not None))
    where = draw(st.sampled_from(["top", "container", "linuxParameters"]))
    if where == "top":
        params[member] = value
        return params, member
    index = draw(st.integers(0, len(params["containerDefinitions"]) - 1))
    container = params["containerDefinitions"][index]
    if where == "container":
        container[member] = value
        return params, f"containerDefinitions[{index}].{member}"
    container.setdefault("linuxParameters", {})[member] = value
    return params, f"containerDefinitions[{index}].linuxParameters.{member}"


@settings(FUZZ, max_examples=scaled(500))
@given(case=with_unknown_member())
def test_member_unknown_to_the_model_is_refused_by_name(case: tuple[dict[str, Any], str]) -> None:
    params, path = case
    count("unknown_member_documents")
    with pytest.raises(TaskDefinitionError) as error:
        build_fixed_copy(Document("task-definition", drop_nulls(params), params.get("tags")), MODEL)
    assert error.value.field is not None
    assert error.value.field == path or error.value.field.endswith(path.rsplit(".", 1)[-1]), (error.value.field, path)


@st.composite
def hostile_documents(draw: st.DrawFn) -> Any:
    choice = draw(st.sampled_from(["mutated-describe", "mutated-export", "mutated-array", "any-json"]))
    if choice == "any-json":
        return draw(json_values)
    _, raw, _ = draw(documents(seeded_register_inputs(max_containers=3)))
    if choice == "mutated-export" and isinstance(raw, dict) and "taskDefinition" in raw:
        raw = {**raw["taskDefinition"], "tags": raw.get("tags")}
    if choice == "mutated-array" and isinstance(raw, dict):
        raw = (raw.get("taskDefinition") or raw).get("containerDefinitions")
    return draw(mutated(raw))[0]


def run_fix(document: Any, *args: str, text: str | None = None) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(text if text is not None else json.dumps(document, ensure_ascii=False))
    try:
        code = cli.main(["fix", *args, "-"], stdout=stdout, stderr=stderr)
    finally:
        sys.stdin = old
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.mark.slow
@settings(FUZZ, max_examples=scaled(2000))
@given(document=hostile_documents(), check=st.booleans())
def test_fix_never_raises_and_never_echoes_secrets(document: Any, check: bool) -> None:
    count("fix_cli_hostile_documents")
    code, out, err = run_fix(document, *(["--check"] if check else []))
    secrets = collect_secrets(document)
    assert leaked_secrets([err], secrets) == []
    if code == cli_common.EXIT_USAGE:
        count("fix_cli_refused")
        assert out == "" and err.startswith("error: ") and err.count("\n") == 1
        return
    assert code in (cli_common.EXIT_OK, cli_common.EXIT_FINDINGS)
    if check:
        assert out == ""
        return
    fixed = json.loads(out)
    count("fix_cli_copies")
    containers = fixed if isinstance(fixed, list) else fixed["containerDefinitions"]
    assert privileged_containers({"containerDefinitions": containers}) == []
    if isinstance(fixed, dict) and "family" in fixed:
        assert not ParamValidator().validate(fixed, MODEL.input_shape).has_errors()


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        '{"a":' * 100_000,
        "[" * 900 + "]" * 900,
        "\ud800",
        "",
        "nul\x00l",
        '{"containerDefinitions": 1e999}',
    ],
    ids=["deep-array", "deep-object", "deep-but-closed", "lone-surrogate", "empty", "nul-byte", "huge-float"],
)
def test_fix_refuses_pathological_json_with_a_usage_error(text: str) -> None:
    count("fix_cli_pathological")
    code, out, err = run_fix(None, text=text)
    assert code == cli_common.EXIT_USAGE and out == "" and err.startswith("error: "), (code, err[:300])
