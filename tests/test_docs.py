"""README.md and docs/*.md: every relative link and #anchor resolves, every `make X` exists, every path named exists.

Anchors follow GitHub's heading slugs (github-slugger): the heading's rendered text, lower-cased, every
character that is not a letter, a digit, `-`, `_` or a space removed, each space turned into `-`; a repeated
slug gets `-1`, `-2`, ... in order.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
MAKE_CALL = re.compile(r"(?<![\w/.$-])make\s+(?!-)([A-Za-z0-9_][\w.-]*)")
MAKE_RULE = re.compile(r"^([^\s#=:][^:=]*?)\s*::?(?!=)")
REPO_PATH = re.compile(r"^(?:lambda|infra|tests|bench|demo|docs|\.ci)/[\w./-]+$")
EXTERNAL = ("http://", "https://", "mailto:")


def doc_files(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def split_prose_and_code(text: str) -> tuple[list[str], list[str]]:
    """Prose lines (fenced blocks left out, inline code blanked) and code: fenced lines and inline spans."""
    prose: list[str] = []
    code: list[str] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            code.append(line)
            continue
        code.extend(m.group(2).strip() for m in INLINE_CODE.finditer(line))
        prose.append(INLINE_CODE.sub(lambda m: m.group(2), line) if HEADING.match(line) else INLINE_CODE.sub("", line))
    return prose, code


def github_slug(heading: str) -> str:
    text = LINK.sub(lambda m: m.group(1), heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"(\*\*|__|\*)", "", text)
    text = "".join(ch for ch in text.lower() if ch.isalnum() or ch in "-_ ")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    prose, _ = split_prose_and_code(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose:
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(root: Path) -> list[str]:
    problems: list[str] = []
    for doc in doc_files(root):
        prose, _ = split_prose_and_code(doc.read_text(encoding="utf-8"))
        for line in prose:
            for match in LINK.finditer(line):
                target = match.group(2)
                if not target or target.startswith(EXTERNAL):
                    continue
                file_part, _, anchor = target.partition("#")
                linked = (doc.parent / file_part).resolve() if file_part else doc
                where = f"{doc.relative_to(root)}: {target}"
                if not linked.exists():
                    problems.append(f"{where}: no such file")
                elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
                    problems.append(f"{where}: no heading with slug #{anchor}")
    return problems


def makefile_targets(root: Path) -> set[str]:
    targets: set[str] = set()
    for line in (root / "Makefile").read_text(encoding="utf-8").splitlines():
        match = MAKE_RULE.match(line)
        if match:
            targets.update(match.group(1).split())
    return targets


def unknown_make_targets(root: Path) -> list[str]:
    targets = makefile_targets(root)
    problems: list[str] = []
    for doc in doc_files(root):
        _, code = split_prose_and_code(doc.read_text(encoding="utf-8"))
        for snippet in code:
            problems.extend(
                f"{doc.relative_to(root)}: make {name}" for name in MAKE_CALL.findall(snippet) if name not in targets
            )
    return problems


def missing_repo_paths(root: Path) -> list[str]:
    problems: list[str] = []
    for doc in doc_files(root):
        _, code = split_prose_and_code(doc.read_text(encoding="utf-8"))
        for snippet in code:
            if REPO_PATH.match(snippet) and not any(ch in snippet for ch in "*?[") and not (root / snippet).exists():
                problems.append(f"{doc.relative_to(root)}: {snippet}")
    return problems


def test_docs_pages_exist() -> None:
    assert (ROOT / "README.md").is_file()
    assert len(doc_files(ROOT)) > 5, "docs/ holds the detail the README links to"


def test_every_relative_link_and_anchor_resolves() -> None:
    assert broken_links(ROOT) == []


def test_every_make_target_named_exists() -> None:
    assert unknown_make_targets(ROOT) == []


def test_every_repository_path_named_exists() -> None:
    assert missing_repo_paths(ROOT) == []


def test_readme_quick_start_keeps_both_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text and "make test-all" in text  # and names both tiers


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Finishing the job: rollout, retire, exemptions", "finishing-the-job-rollout-retire-exemptions"),
        ("`ecs-remediate fix`", "ecs-remediate-fix"),
        ("See it work (safely)", "see-it-work-safely"),
        ("What a fixed copy keeps", "what-a-fixed-copy-keeps"),
        ("Output: OCSF / ASFF & HTML", "output-ocsf--asff--html"),
        ("snake_case and **bold** [a link](x.md)", "snake_case-and-bold-a-link"),
    ],
)
def test_github_slug_rules(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_checker_finds_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "Makefile").write_text("demo: install\n\techo\ninstall:\nVAR := x\n")
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## Same\n\n## Same\n")
    (tmp_path / "README.md").write_text(
        "# Title\n\n"
        "[ok](docs/page.md#same-1) [self](#title) [web](https://example.com/x#y)\n"
        "[gone](docs/missing.md) [bad anchor](docs/page.md#same-2) [bad self](#nothing)\n"
        "`[not a link](nowhere.md)` and `make demo`, `make VAR`, `tests/none.py`\n\n"
        "```\nmake install\nmake deploy CONTEXT=x\n[code](nowhere.md)\n```\n"
    )
    assert broken_links(tmp_path) == [
        "README.md: docs/missing.md: no such file",
        "README.md: docs/page.md#same-2: no heading with slug #same-2",
        "README.md: #nothing: no heading with slug #nothing",
    ]
    assert unknown_make_targets(tmp_path) == ["README.md: make VAR", "README.md: make deploy"]
    assert missing_repo_paths(tmp_path) == ["README.md: tests/none.py"]
