"""`ecs-remediate fix [--check]` on CloudFormation templates: only the Privileged values change, byte for byte.

Every fixture goes through the console script: the diff against the original touches only the reported
Privileged lines; cfn-lint (an independent parser and the CloudFormation schemas) reads the result as the
same template with those containers non-privileged and finds nothing it did not find in the original.
"""

from __future__ import annotations

import difflib
import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.decode import decode_str
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import FUZZ, scaled

from conftest import LOCAL_FIXTURES, ROOT, SHARED_FIXTURES
from ecs_remediate.cli import main as cli
from ecs_remediate.iac import templates

SCRIPT = Path(sys.executable).parent / "ecs-remediate"
CFN = LOCAL_FIXTURES / "cloudformation"
PROWLER = SHARED_FIXTURES / "cloudformation" / "prowler-check-page__task-definition-nonprivileged.yaml"

# What each fixture holds, read off the files by hand: (resource, container, line) fixed; (container, line) left.
FIXTURES: dict[str, tuple[list[tuple[str, str, int]], list[tuple[str, int]]]] = {
    str(PROWLER): ([], []),
    "two-task-definitions_comments-anchors-short-forms.yaml": (
        [
            ("WebTaskDefinition", "log-router", 51),
            ("MonitoringTaskDefinition", "agent", 65),
            ("MonitoringTaskDefinition", "debug-shell", 76),
        ],
        [],
    ),
    "daemon-task-definition.yaml": (
        [("SensorDaemonTaskDefinition", "init-container", 17), ("SensorDaemonTaskDefinition", "sensor", 21)],
        [],
    ),
    "parameter-and-condition.yaml": (
        [("AppTaskDefinition", "web", 39)],
        [("app", 22), ("debug", 26), ("agent", 30), ("sidecar", 34)],
    ),
    "two-task-definitions_tabs.json": (
        [("WebTaskDefinition", "log-router", 15), ("AgentTaskDefinition", "agent", 28)],
        [("exporter", 34)],
    ),
    "cdk.out/MonitoringStack.template.json": (
        [("AgentTaskDefinition51789D54", "agent", 35), ("SensorDaemon", "sensor", 59)],
        [],
    ),
}


def path_of(name: str) -> Path:
    return Path(name) if name.startswith("/") else CFN / name


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60)


def lint_findings(text: str) -> list[tuple[str, int]]:
    return sorted((m.rule.id, m.linenumber) for m in lint(text, config=ManualArgs(regions=["us-east-1"])))


def containers(template: Any) -> list[dict[str, Any]]:
    """Every container mapping of every ECS task definition in a decoded template, through Fn::If branches."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict) and list(node) == ["Fn::If"]:
            for branch in node["Fn::If"][1:]:
                walk(branch)
        elif isinstance(node, dict) and "Name" in node:
            found.append(node)

    for resource in template["Resources"].values():
        if resource["Type"] in templates.TASK_DEFINITION_TYPES:
            walk(resource["Properties"]["ContainerDefinitions"])
    return found


@pytest.mark.parametrize("name", list(FIXTURES), ids=lambda n: Path(n).name)
def test_fix_changes_only_the_privileged_values(name: str) -> None:
    path = path_of(name)
    original = path.read_text(encoding="utf-8")
    fixed_expected, left_expected = FIXTURES[name]

    done = run("fix", str(path))
    assert done.returncode == (1 if left_expected else 0), done.stderr
    fixed = done.stdout

    # The diff: one changed line per fixed container, at the reported line, the value swapped in place.
    diff = list(difflib.ndiff(original.splitlines(keepends=True), fixed.splitlines(keepends=True)))
    removed = [line[2:] for line in diff if line.startswith("- ")]
    added = [line[2:] for line in diff if line.startswith("+ ")]
    assert len(removed) == len(added) == len(fixed_expected)
    lines = original.splitlines(keepends=True)
    assert removed == [lines[n - 1] for _, _, n in fixed_expected]
    for before, after in zip(removed, added, strict=True):
        assert "Privileged" in before
        swapped = re.sub(r"\b(true|True|TRUE|yes)\b", lambda m: FALSE.get(m[1], "false"), before, count=1)
        assert after == swapped
    unchanged = [line for line in diff if line.startswith("  ")]
    assert len(unchanged) == len(lines) - len(fixed_expected)
    if not fixed_expected:
        assert fixed == original

    # What it said on stderr: one line per change and per unresolved value, with file, resource and line.
    reported = [line for line in done.stderr.splitlines() if "->" in line]
    assert reported == [
        f"{path}:{n}: {resource} ({type_of(original, resource)}) container {container!r}: "
        f"Privileged: {value_at(original, n)} -> {value_at(fixed, n)}"
        for resource, container, n in fixed_expected
    ]
    left = [line for line in done.stderr.splitlines() if "unresolved (" in line]
    assert [(re.search(r"container '([^']+)'", line)[1], int(line.split(":")[1])) for line in left] == left_expected  # type: ignore[index]

    # An independent reader: cfn-lint decodes the same template, those containers now false, nothing else.
    before, problems_before = decode_str(original)
    after, problems_after = decode_str(fixed)
    assert problems_before == problems_after == []
    names = {container for _, container, _ in fixed_expected}
    for container in containers(after):
        if container["Name"] in names:
            assert container.pop("Privileged") in (False, "false")
    for container in containers(before):
        if container["Name"] in names:
            assert container.pop("Privileged") in (True, "true")
    assert after == before

    # Still a valid template for cfn-lint, with exactly the findings the original had (aliases: W1101).
    assert lint_findings(fixed) == lint_findings(original)
    assert not [rule for rule, _ in lint_findings(fixed) if rule.startswith("E")]

    # And checking the result finds nothing left to change.
    again = run("fix", "--check", "-", stdin=fixed)
    assert again.returncode == (1 if left_expected else 0)
    assert [line for line in again.stdout.splitlines() if "unresolved" not in line] == []


def type_of(text: str, resource: str) -> str:
    decoded, _ = decode_str(text)
    return str(decoded["Resources"][resource]["Type"])


def value_at(text: str, line: int) -> str:
    match = re.search(r"Privileged\"?\s*:\s*([^\s,}#]+)", text.splitlines()[line - 1])
    assert match
    return match[1]


@pytest.mark.parametrize("name", list(FIXTURES), ids=lambda n: Path(n).name)
def test_check_lists_file_line_resource_and_container(name: str) -> None:
    path = path_of(name)
    fixed_expected, left_expected = FIXTURES[name]
    done = run("fix", "--check", str(path))
    assert done.returncode == (1 if fixed_expected or left_expected else 0)
    listed = done.stdout.splitlines()
    privileged = [line for line in listed if "unresolved" not in line]
    assert privileged == [
        f"{path}:{n}: {resource} ({type_of(path.read_text(), resource)}) container {container!r}: "
        f"Privileged: {value_at(path.read_text(), n)}"
        for resource, container, n in fixed_expected
    ]
    assert len(listed) == len(fixed_expected) + len(left_expected)
    assert done.stderr.strip().endswith("task definition(s)")


def test_check_reports_parameters_and_conditions_and_never_guesses() -> None:
    done = run("fix", "--check", str(CFN / "parameter-and-condition.yaml"))
    out = done.stdout
    assert (
        "container 'app': Privileged: !Ref EnablePrivileged: unresolved (parameter EnablePrivileged defaults to 'true')"
        in out
    )
    assert (
        "container 'debug': Privileged: !Ref DebugPrivileged: unresolved (parameter DebugPrivileged has no default"
        in out
    )
    assert "container 'agent': Privileged: !If: unresolved (given by Fn::If" in out
    assert "container 'sidecar': Privileged: Fn::If: unresolved (given by Fn::If" in out
    tabs = run("fix", "--check", str(CFN / "two-task-definitions_tabs.json")).stdout
    assert (
        "container 'exporter': Privileged: Ref EnablePrivileged: unresolved "
        "(parameter EnablePrivileged defaults to 'false')" in tabs
    )


def fix_text(text: str, *args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        code = cli.main(["fix", *args, "-"], stdout=stdout, stderr=stderr)
    finally:
        sys.stdin = old
    return code, stdout.getvalue(), stderr.getvalue()


FALSE = {"true": "false", "True": "False", "TRUE": "FALSE"}
HEAD = "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  Task:\n    Type: AWS::ECS::TaskDefinition\n"


def containers_yaml(*lines: str) -> str:
    return HEAD + "    Properties:\n      ContainerDefinitions:\n" + "".join(f"{line}\n" for line in lines)


@pytest.mark.parametrize(
    ("value", "fixed"),
    [
        ("true", "false"),
        ("True", "False"),
        ("TRUE", "FALSE"),
        ('"true"', '"false"'),
        ("'True'", "'false'"),  # a string: the one CloudFormation surely reads as false
        ("yes", "false"),  # YAML 1.1, which CloudFormation and cfn-lint read: a Boolean
        ("On", "false"),
        ("!!bool true", "!!bool false"),
        ("!!str true", "!!str false"),
    ],
)
def test_every_spelling_of_true_is_fixed_in_place(value: str, fixed: str) -> None:
    text = containers_yaml("        - Name: a", "          Image: x", f"          Privileged: {value}  # keep me")
    code, out, err = fix_text(text)
    assert code == 0, err
    assert out == text.replace(f"Privileged: {value}  # keep me", f"Privileged: {fixed}  # keep me")
    decoded, _ = decode_str(out)
    assert decoded["Resources"]["Task"]["Properties"]["ContainerDefinitions"][0]["Privileged"] in (False, "false")


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("false", None),
        ("'false'", None),
        ("no", None),
        ("", None),
        ("~", None),
        ("null", None),
        ("y", "YAML 1.1 may read it as a Boolean"),
        ('"yes"', "not a Boolean"),
        ("1", "not a Boolean"),
        ("[true]", "not a Boolean"),
        ("|\n            true", "written in a form this tool does not rewrite"),
        ("!Sub 'true'", "given by Fn::Sub"),
        ("!GetAtt Other.Privileged", "given by Fn::GetAtt"),
        ("{Ref: Missing}", "Ref Missing is not a parameter of this template"),
    ],
)
def test_what_is_not_plainly_true_is_left_alone(value: str, status: str | None) -> None:
    text = containers_yaml("        - Name: a", "          Image: x", f"          Privileged: {value}")
    code, out, err = fix_text(text)
    assert out == text  # never changed
    if status is None:
        assert code == 0 and "not changed" not in err
    else:
        assert code == 1 and status in err and "not changed" in err
        check_code, listed, _ = fix_text(text, "--check")
        assert check_code == 1 and status in listed


def test_an_anchor_also_used_elsewhere_is_not_rewritten() -> None:
    text = containers_yaml(
        "        - Name: a",
        "          Image: x",
        "          Essential: &on true",
        "          Privileged: *on",  # an alias at Privileged: only this occurrence changes
        "        - Name: b",
        "          Image: x",
        "          Privileged: &flag true",  # its anchor is also Essential elsewhere: left to a human
        "        - Name: c",
        "          Image: x",
        "          Essential: *flag",
    )
    code, out, err = fix_text(text)
    assert code == 1
    assert out == text.replace("Privileged: *on", "Privileged: false")
    assert "container 'b'" in err and "its anchor &flag is also used at line 16" in err


def test_an_anchor_used_only_at_privileged_lines_is_fixed_once() -> None:
    text = containers_yaml(
        "        - Name: a",
        "          Image: x",
        "          Privileged: &priv true",
        "        - Name: b",
        "          Image: x",
        "          Privileged: *priv",
    )
    code, out, _ = fix_text(text)
    assert code == 0
    assert out == text.replace("&priv true", "&priv false").replace("Privileged: *priv", "Privileged: false")


def test_merge_keys_and_duplicate_keys_are_followed() -> None:
    text = (
        "AWSTemplateFormatVersion: '2010-09-09'\n"
        "Metadata:\n"
        "  Base: &base\n"
        "    Image: x\n"
        "    Privileged: true\n"
        "Resources:\n"
        "  Task:\n"
        "    Type: AWS::ECS::TaskDefinition\n"
        "    Properties:\n"
        "      ContainerDefinitions:\n"
        "        - <<: *base\n"
        "          Name: merged\n"
        "        - Name: duplicated\n"
        "          Image: x\n"
        "          Privileged: false\n"
        "          Privileged: true\n"
    )
    code, listed, _ = fix_text(text, "--check")
    assert code == 1
    assert listed.splitlines() == [
        "-:5: Task (AWS::ECS::TaskDefinition) container 'merged': Privileged: true",
        "-:16: Task (AWS::ECS::TaskDefinition) container 'duplicated': Privileged: true",
    ]
    code, out, _ = fix_text(text)
    assert code == 0
    assert out.count("Privileged: true") == 0 and out.count("Privileged: false") == 3


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_endings_byte_order_mark_and_last_line_are_kept(newline: str, tmp_path: Path) -> None:
    text = "\ufeff" + containers_yaml("        - Name: a", "          Image: x", "          Privileged: true").replace(
        "\n", newline
    ).rstrip(newline)
    path = tmp_path / "template.yaml"
    path.write_bytes(text.encode("utf-8"))
    done = subprocess.run([str(SCRIPT), "fix", str(path)], capture_output=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == text.replace("Privileged: true", "Privileged: false").encode("utf-8")


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ("Resources:\n  Task: [unclosed\n", ".yaml", "not valid YAML ("),
        ("Resources:\n  - a\n", ".yaml", "not a CloudFormation template"),
        ("key: value\n", ".yml", "not a CloudFormation template"),
        ("Resources: {}\n---\nResources: {}\n", ".yaml", "more than one YAML document"),
        ("Resources:\n  T: *nowhere\n", ".yaml", "has no anchor before it"),
        ("Resources: " + "[" * 500 + "]" * 500 + "\n", ".yaml", "nested more than 100 levels deep"),
        ('{"Resources": {"T": {"Type": "AWS::ECS::TaskDefinition"', ".json", "not JSON (Expecting"),
        ("AWSTemplateFormatVersion: x\n\x00\n", ".yaml", "not valid YAML"),
    ],
    ids=[
        "bad-yaml",
        "not-a-template",
        "yaml-not-a-template",
        "two-documents",
        "undefined-alias",
        "deep",
        "broken-json",
        "nul",
    ],
)
def test_unreadable_templates_exit_2_with_one_line_and_nothing_on_stdout(
    text: str, suffix: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / f"template{suffix}"
    path.write_text(text, encoding="utf-8")
    for args in (["fix", str(path)], ["fix", "--check", str(path)]):
        done = run(*args)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert message in done.stderr


def test_ecs_json_is_still_read_as_before() -> None:
    # A task definition that happens to be called Resources is not a template (no typed members).
    done = run("fix", "--check", "-", stdin='[{"name": "Resources", "image": "x", "privileged": true}]')
    assert (done.returncode, done.stdout) == (1, "")
    assert "container 'Resources': privileged true -> false" in done.stderr


def test_cfn_lint_knows_the_daemon_task_definition_schema() -> None:
    """cfn-lint 1.58 validates AWS::ECS::DaemonTaskDefinition against its schema (so "valid for cfn-lint"
    means something for daemons too): a misspelt container property and a bad PidMode are errors."""
    text = (CFN / "daemon-task-definition.yaml").read_text()
    assert lint_findings(text) == []
    broken = text.replace("Privileged: yes", "Privilegd: yes").replace("PidMode: shared", "PidMode: host")
    assert lint_findings(broken) == [("E3002", 21), ("E3030", 12)]


TRUE_SPELLINGS = ["true", "True", "TRUE", '"true"', "'True'", "yes", "on", "!!bool true"]
OTHER_SPELLINGS = ["false", "False", "'false'", "no", "", "~", "!Ref Flag", "!If [IsProd, false, true]", "y"]


@st.composite
def generated_templates(draw: st.DrawFn) -> tuple[str, set[tuple[int, int]]]:
    """A YAML template with random containers; returns it and the (resource, container) indexes that are
    privileged. Other keys hold the word true too (Essential, a command, a comment): they must not change."""
    lines = [
        "# generated for ecs-remediate's tests",
        "AWSTemplateFormatVersion: '2010-09-09'",
        "Parameters:",
        "  Flag: {Type: String, Default: 'true'}",
        "Conditions:",
        "  IsProd: !Equals [!Ref 'AWS::AccountId', '123456789012']",
        "Resources:",
    ]
    privileged: set[tuple[int, int]] = set()
    for r in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(templates.TASK_DEFINITION_TYPES))
        lines += [f"  Task{r}:", f"    Type: {kind}", "    Properties:", "      ContainerDefinitions:"]
        for c in range(draw(st.integers(1, 4))):
            spelling = draw(st.sampled_from([*TRUE_SPELLINGS, *OTHER_SPELLINGS, None]))
            comment = draw(st.sampled_from(["", "  # true: set by ops", "  #true"]))
            lines += [f"        - Name: c{r}x{c}", "          Image: 'busybox:true'"]
            lines.append(f"          Essential: {draw(st.sampled_from(['true', 'True', 'yes']))}")
            if draw(st.booleans()):
                lines.append("          Command: [sh, -c, 'true && echo true']")
            if spelling is not None:
                lines.append(f"          Privileged: {spelling}{comment}".rstrip())
            if spelling in TRUE_SPELLINGS:
                privileged.add((r, c))
    return "\n".join(lines) + "\n", privileged


@settings(FUZZ, max_examples=scaled(150))
@given(case=generated_templates())
def test_generated_templates_change_only_privileged_values(case: tuple[str, set[tuple[int, int]]]) -> None:
    text, privileged = case
    fixed, report = templates.fix(text)
    assert len(report.privileged) == len(privileged)
    changed = [(a, b) for a, b in zip(text.splitlines(), fixed.splitlines(), strict=True) if a != b]
    assert len(changed) == len(privileged)
    assert all(a.lstrip().startswith("Privileged:") and b.lstrip().startswith("Privileged:") for a, b in changed)
    before, _ = decode_str(text)
    after, _ = decode_str(fixed)
    for r, resource in enumerate(before["Resources"].values()):
        for c, container in enumerate(resource["Properties"]["ContainerDefinitions"]):
            fixed_container = after["Resources"][f"Task{r}"]["Properties"]["ContainerDefinitions"][c]
            if (r, c) in privileged:
                assert fixed_container.pop("Privileged") in (False, "false")
                container.pop("Privileged")
    assert after == before
