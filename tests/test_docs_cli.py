"""README.md and docs/*.md against what they describe, so they cannot drift:

- every flag of an `ecs-remediate <command>` line (a fenced block or inline code, a synopsis's `[--flag ...]` and
  continuation lines included) exists in that command's real argparse parser; every flag named alone in inline code
  (`--remediate`) exists in one of them, or is another tool's (FOREIGN_FLAGS);
- every context key a `-c key=value` names (in a `cdk` or `make` line, or alone) is one the synth accepts
  (infra.settings.KNOWN_KEYS, the CDK CLI's own);
- every shell block marked runnable (`<!-- runnable ... -->` on the line before the fence) runs against the project's
  emulator (`python -m demo.emulator`, what `make emulator` runs), freshly started for it: each line on its own, from
  the repository root, must exit as its trailing comment says (`# exit N`; 0 when it says nothing) and leave no file
  behind. A line cannot set a variable for the next one.

The checkers take a root directory, so the tests below run them on planted bad docs too.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ecs_remediate.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^\s*(```|~~~)\s*([\w-]*)")
RUNNABLE = re.compile(r"^\s*<!--\s*runnable\b")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
COMMAND = re.compile(r"(?:^|[\s(`|;&$])(?:[\w./-]*/)?(?:ecs-remediate|python3? -m ecs_remediate)(?=\s|$)(?P<rest>.*)")
SHELL_END = re.compile(r"\s#|\s\|\s|\|\||&&|[;<>`]")  # a pipe has spaces around it; a synopsis's a|b does not
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
CONTEXT_KEY = re.compile(r"(?:^|[\s'\"])(?:-c|--context)[\s=]+['\"]?(?P<key>[^\s='\"]+)=")
REFUSED_KEY = re.compile(r"(\w+): not a context key")  # the synth's own message (infra/settings.py)
EXPECTED_EXIT = re.compile(r"#.*?\bexit (\d+)")
# Flags of other tools that the docs name alone in inline code.
FOREIGN_FLAGS = {
    "--cli-input-json",  # the AWS CLI's (cli.md, daemons-core.md)
    "-deploy-role-",  # not a flag: part of a CDK bootstrap role name (iac.md)
}
PLACEHOLDER_KEYS = {"key"}  # `-c key=value`, the syntax


@dataclass
class Block:
    path: str
    line: int  # 1-based line of the opening fence
    info: str
    lines: list[str] = field(default_factory=list)
    runnable: bool = False


def doc_files(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def read(root: Path) -> Iterator[tuple[str, list[Block], list[str]]]:
    """(page, its fenced blocks, its inline code spans) for every page."""
    for path in doc_files(root):
        blocks: list[Block] = []
        spans: list[str] = []
        current: Block | None = None
        previous = ""
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = FENCE.match(line)
            if match and current is None:
                current = Block(
                    str(path.relative_to(root)), number, match.group(2), runnable=bool(RUNNABLE.match(previous))
                )
            elif match:
                blocks.append(current)  # type: ignore[arg-type]
                current = None
            elif current is not None:
                current.lines.append(line)
            else:
                spans += [m.group(2).strip() for m in INLINE_CODE.finditer(line)]
            if line.strip():
                previous = line
        yield str(path.relative_to(root)), blocks, spans


def logical_lines(lines: list[str]) -> list[str]:
    """Backslash continuations joined; a synopsis's indented `[...` continuation joined to its command line."""
    joined: list[str] = []
    pending = ""
    for raw in lines:
        line = f"{pending} {raw.strip()}" if pending else raw
        pending = ""
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1]
            continue
        if joined and re.match(r"^\s+\[", line) and COMMAND.search(joined[-1]):
            joined[-1] += " " + line.strip()
        else:
            joined.append(line)
    if pending:
        joined.append(pending)
    return joined


def parsers() -> dict[str, set[str]]:
    """Command (and `exempt` action) -> its option strings; "" for the top level."""
    top = build_parser()
    options = {"": {o for a in top._actions for o in a.option_strings}}
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in commands.choices.items():
        options[name] = {o for a in parser._actions for o in a.option_strings}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, subparser in action.choices.items():
                    options[f"{name} {sub}"] = {o for a in subparser._actions for o in a.option_strings}
    return options


def command_flags(text: str, options: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(command, flag) for every flag of an `ecs-remediate` command in `text` that its parser does not have."""
    problems = []
    for match in COMMAND.finditer(text):
        rest = SHELL_END.split(match.group("rest"), maxsplit=1)[0]
        tokens = rest.split()
        command = ""
        if tokens and not tokens[0].startswith("-"):
            if tokens[0] not in options:
                continue  # prose or another word: "the ecs-remediate console script"
            command, tokens = tokens[0], tokens[1:]
        known = options[command]
        if command and tokens and not tokens[0].startswith("-") and f"{command} {tokens[0].split('|')[0]}" in options:
            actions = tokens.pop(0).split("|")
            known = set().union(*(options.get(f"{command} {a}", set()) for a in actions)) or known
        problems += [(f"ecs-remediate {command}".strip(), f) for t in tokens for f in FLAG.findall(t) if f not in known]
    return problems


def unknown_flags(root: Path) -> list[str]:
    options = parsers()
    everywhere = set().union(*options.values())
    problems = []
    for page, blocks, spans in read(root):
        texts = [line for block in blocks for line in logical_lines(block.lines)] + spans
        problems += [f"{page}: {cmd} {flag}" for text in texts for cmd, flag in command_flags(text, options)]
        for span in spans:
            bare = re.match(r"^(--?[A-Za-z][\w-]*)(?:[\s=]|$)", span)
            if bare and not span.startswith("-c ") and bare.group(1) not in everywhere | FOREIGN_FLAGS:
                problems.append(f"{page}: {bare.group(1)} (no command has it)")
    return sorted(set(problems))


def known_context_keys() -> set[str]:
    """The keys the synth accepts (infra.settings: ecs-remediate's, and the CDK CLI's own plain ones)."""
    from infra.settings import CDK_CONTEXT_KEYS, KNOWN_KEYS

    return {*KNOWN_KEYS, *CDK_CONTEXT_KEYS}


def unknown_context_keys(root: Path, known: set[str]) -> list[str]:
    """Keys the synth would refuse; a block that shows the synth refusing a key (its `KEY: not a context key` line)
    documents the refusal, and that key is not a drift there."""
    problems = []
    for page, blocks, spans in read(root):
        groups = [logical_lines(block.lines) for block in blocks] + [[span] for span in spans if "-c " in span]
        for lines in groups:
            refused = set(REFUSED_KEY.findall("\n".join(lines)))
            for text in (t for t in lines if re.search(r"\bcdk\b|\bmake\b|CONTEXT|^-c ", t)):
                for match in CONTEXT_KEY.finditer(text):
                    key = match.group("key")
                    cdk_feature_flag = ":" in key  # @aws-cdk/core:..., as the synth's own check lets them through
                    if key not in known | PLACEHOLDER_KEYS | refused and not cdk_feature_flag:
                        problems.append(f"{page}: -c {key}")
    return sorted(set(problems))


def runnable_blocks(root: Path) -> list[Block]:
    return [block for _, blocks, _ in read(root) for block in blocks if block.runnable]


# --- the checks on the real docs ------------------------------------------------------------------------------------


def test_every_cli_flag_the_docs_name_exists() -> None:
    assert unknown_flags(ROOT) == []


def test_every_context_key_the_docs_name_exists() -> None:
    known = known_context_keys()
    assert {"mode", "notificationEmails", "sweepSchedule", "organization", "targetOus"} <= known
    assert unknown_context_keys(ROOT, known) == []


def test_the_runnable_blocks_are_found() -> None:
    blocks = runnable_blocks(ROOT)
    assert {block.path for block in blocks} >= {"README.md", "docs/cli.md"}
    assert all(block.info == "sh" for block in blocks), [(b.path, b.line, b.info) for b in blocks]


@pytest.mark.slow
@pytest.mark.parametrize("block", runnable_blocks(ROOT), ids=lambda b: f"{b.path}:{b.line}")
def test_every_runnable_block_runs_against_the_emulator(block: Block) -> None:
    with emulator() as env:
        before = set(os.listdir(ROOT))
        for line in logical_lines(block.lines):
            command = line.strip()
            if not command or command.startswith("#"):
                continue
            expected = int(m.group(1)) if (m := EXPECTED_EXIT.search(command)) else 0
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", command],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == expected, f"{block.path}:{block.line}: {command}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr, done.stderr
        assert set(os.listdir(ROOT)) == before, "a runnable block left files behind"


# --- the emulator, as `make emulator` runs it -------------------------------------------------------------------------


class Emulator:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "demo.emulator"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        )
        self.lines: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("# ready"):
                break
        assert self.lines and self.lines[-1].startswith("# ready"), (self.lines, self.stop())

    def environment(self) -> dict[str, str]:
        """A user's shell after pasting the printed lines and `source .venv/bin/activate` (the function's own variables
        and any profile cleared)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "AWS_"))}
        for name in ("MODE", "EXEMPT_FAMILIES", "SWEEP_RATES", "ROLLOUT", "RETIRE", "DAEMON_ROLLOUT"):
            env.pop(name, None)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        for line in self.lines:
            words = line.split()
            if words[:1] == ["export"]:
                env.update(word.split("=", 1) for word in words[1:])  # type: ignore[arg-type]
            elif words[:1] == ["unset"]:
                for name in words[1:]:
                    env.pop(name, None)
        return env

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=30)
        return out + err


@pytest.fixture
def started() -> Iterator[Emulator]:
    running = Emulator()
    try:
        yield running
    finally:
        running.stop()


class emulator:
    def __enter__(self) -> dict[str, str]:
        self.running = Emulator()
        return self.running.environment()

    def __exit__(self, *_: object) -> None:
        self.running.stop()


@pytest.mark.slow
def test_make_emulator_prints_the_exports_serves_until_ctrl_c_and_stops(started: Emulator) -> None:
    dry_run = subprocess.run(
        ["make", "-s", "-n", "--no-print-directory", "emulator"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "python -m demo.emulator" in dry_run.stdout.splitlines()[-1]  # what make runs is what this starts
    env = started.environment()
    endpoint = env["AWS_ENDPOINT_URL"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", endpoint)
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_REGION"] == "us-east-1" and "AWS_PROFILE" not in env
    done = subprocess.run(
        ["ecs-remediate", "scan", "-o", "json"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert sorted(
        r["taskDefinitionArn"].split(":", 5)[-1] for r in eval_json(done.stdout) if r["status"] == "FAIL"
    ) == [
        "daemon-task-definition/node-monitor:1",
        "task-definition/web-app:1",
    ]
    started.process.send_signal(signal.SIGINT)
    started.process.wait(timeout=30)
    assert started.process.returncode == 0
    time.sleep(0.2)
    refused = subprocess.run(
        ["ecs-remediate", "scan"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert refused.returncode == 3 and "cannot reach AWS" in refused.stderr  # the port is closed: nothing left running


def eval_json(text: str) -> list[dict[str, str]]:
    import json

    rows: list[dict[str, str]] = json.loads(text)
    return rows


# --- the checkers find what is wrong --------------------------------------------------------------------------------


def planted(tmp_path: Path, page: str) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Title\n")
    (tmp_path / "docs" / "page.md").write_text(page)
    return tmp_path


def test_the_flag_check_finds_a_flag_that_does_not_exist(tmp_path: Path) -> None:
    root = planted(
        tmp_path,
        "# Page\n\n"
        "Run `ecs-remediate scan --scope latest --kind task-definitions` or `--remediate` or `--wet-run`.\n\n"
        "```\n"
        "ecs-remediate scan [--region R ...] [--scope latest|active]\n"
        "                   [--output table|json] [--colour]\n"
        "ecs-remediate fix --check td.json --inplace > fixed.json   # --not-checked: a comment\n"
        "EXEMPTIONS_TABLE=x ecs-remediate exempt add arn \\\n"
        "  --reason why --until 2030-01-01 --approver me\n"
        "ecs-remediate exempt add|list|remove --table t --profile p\n"
        "aws ecs register-task-definition --cli-input-json file://fixed.json --bogus-aws-flag\n"
        "ecs-remediate --versions\n"
        "the ecs-remediate console script --anything\n"
        "```\n",
    )
    assert unknown_flags(root) == [
        "docs/page.md: --wet-run (no command has it)",
        "docs/page.md: ecs-remediate --versions",
        "docs/page.md: ecs-remediate exempt --approver",
        "docs/page.md: ecs-remediate fix --inplace",
        "docs/page.md: ecs-remediate scan --colour",
        "docs/page.md: ecs-remediate scan --kind",
    ]


def test_the_key_check_finds_a_context_key_that_does_not_exist(tmp_path: Path) -> None:
    root = planted(
        tmp_path,
        "# Page\n\nSet `-c mdoe=report` or `-c key=value`.\n\n"
        "```\n"
        "make deploy CONTEXT='-c mode=report -c notificationEmail=secops@example.com'\n"
        "npx cdk synth -c @aws-cdk/core:newStyleStackSynthesis=true -c sweepSchedule=off -c sweepSchedul=off\n"
        "sh -c 'x=1'\n"
        "```\n\n"
        "```\n"
        "$ make synth CONTEXT='-c mdoe=report'\n"
        "ecs-remediate: invalid CDK context: mdoe: not a context key of ecs-remediate (did you mean mode?)\n"
        "```\n",
    )
    assert unknown_context_keys(root, known_context_keys()) == [
        "docs/page.md: -c mdoe",
        "docs/page.md: -c notificationEmail",
        "docs/page.md: -c sweepSchedul",
    ]


def test_a_runnable_block_is_told_apart_from_the_others(tmp_path: Path) -> None:
    root = planted(
        tmp_path,
        "# Page\n\n<!-- runnable: against make emulator -->\n```sh\necs-remediate scan   # exit 1\n```\n\n"
        "```sh\nmake deploy\n```\n",
    )
    (block,) = runnable_blocks(root)
    assert (block.path, block.line, block.lines) == ("docs/page.md", 4, ["ecs-remediate scan   # exit 1"])
