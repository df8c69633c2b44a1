"""`ecs-remediate fix [--check] [--write] FILE.tf|FILE.tf.json|DIR`: Terraform at the source. CLI only.

A file: its fixed text on stdout (with --write, changed in place). A directory is read as Terraform reads a
module (its own `*.tf` and `*.tf.json`; subdirectories, `.terraform/` among them, are not): a unified diff on
stdout (with --write, the files changed in place). Report lines on stderr (stdout with --check): `FILE:LINE:
address container 'name': privileged: value -> false`, or `: unresolved (what it depends on)`; then what each
fixed definition still has of host access. Before anything is written the result is read again by tree-sitter
(nothing privileged left, the same unresolved) and by python-hcl2, a second HCL parser: the files must differ
only in the `privileged` tokens. Exit 0: nothing left; 1: privileged (--check) or unresolved left; 2 (a
UsageError raised to the caller): unreadable.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from pathlib import Path
from typing import TextIO

from ..core import hostroot
from ..core.hostroot_model import UNCHANGED, explained
from . import hcl_tree as ht
from . import terraform_source as ts
from . import terraform_tfjson as tfjson
from . import terraform_verify as verify

EXIT_OK, EXIT_FINDINGS = 0, 1
SUFFIXES = (".tf", ".tf.json")
MAX_FILES = 1000


class TerraformUsageError(ValueError):
    """One line for stderr; the caller exits 2."""


def is_terraform(path: str) -> bool:
    return path.endswith(SUFFIXES) or (path != "-" and Path(path).is_dir())


def run(target: str, *, check: bool, write: bool, stdout: TextIO, stderr: TextIO) -> int:
    directory = Path(target).is_dir()
    paths = _module_files(Path(target)) if directory else [Path(target)]
    try:
        module = analyse(paths)
        changed = apply(module) if module.edits else {}
        if changed and not check:
            verify.fixed_module(module, changed, analyse(paths, overrides=changed))
    except (ts.TerraformError, verify.VerifyError) as error:
        raise TerraformUsageError(_one_line(str(error))) from None
    report = stdout if check else stderr
    for finding in module.findings:
        print(_line(finding, check), file=report)
    kept = False
    for definition in module.definitions:
        where = f"{definition.path}:{definition.line}: {definition.address}"
        for line in explained(hostroot.host_equivalents(definition.value)):  # by level, with why (core/hostroot.py)
            print(f"{where}: {line}", file=stderr)
            kept = True
    if kept:
        print(UNCHANGED, file=stderr)
    left = module.unresolved if not check else module.findings
    if not check:
        shown = _write(changed, stderr) if write else _show(target, directory, module, changed, (stdout, stderr))
        left = left + shown
    count = len(module.definitions)
    print(
        f"{target}: {len(module.privileged)} privileged, {len(module.unresolved)} unresolved, "
        f"in {count} task definition(s)",
        file=stderr,
    )
    return EXIT_FINDINGS if left else EXIT_OK


def analyse(paths: list[Path], overrides: dict[str, bytes] | None = None) -> ts.Module:
    """The module made of `paths`; `overrides` replaces what files hold (the fixed bytes, to read them again)."""
    texts: dict[str, bytes] = dict(overrides or {})
    for path in paths:
        if str(path) in texts:
            continue
        try:
            with path.open("rb") as handle:
                data = handle.read(ht.MAX_BYTES + 1)
        except OSError as error:
            raise ts.TerraformError(f"cannot read {path}: {error.strerror or error}") from None
        if len(data) > ht.MAX_BYTES:
            raise ts.TerraformError(f"{path}: larger than {ht.MAX_BYTES // (1024 * 1024)} MiB; not read")
        texts[str(path)] = data
    hcl = [path for path in paths if not str(path).endswith(".tf.json")]
    module, sources = ts.read_module(hcl, texts)
    scope = ts.scope_of(sources)
    for path in paths:
        if str(path).endswith(".tf.json"):
            tfjson.check(module, str(path), texts[str(path)])
        else:
            ts.check_file(module, str(path), sources[str(path)], scope)
    module.findings.sort(key=lambda f: (f.path, f.line))
    return module


def apply(module: ts.Module) -> dict[str, bytes]:
    """The fixed bytes of each file an edit touches."""
    out: dict[str, bytes] = {}
    by_file: dict[str, list[ts.Edit]] = {}
    for edit in set(module.edits):
        by_file.setdefault(edit.path, []).append(edit)
    for path, edits in by_file.items():
        data, pieces, position = module.files[path], [], 0
        for edit in sorted(edits, key=lambda e: e.start):
            if edit.start < position:
                raise ts.TerraformError(f"{path}: two changes overlap; nothing written")
            pieces += [data[position : edit.start], edit.text.encode()]
            position = edit.end
        out[path] = b"".join([*pieces, data[position:]])
    return out


def _module_files(directory: Path) -> list[Path]:
    try:
        found = sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIXES) and p.is_file())
    except OSError as error:
        raise TerraformUsageError(f"cannot read {directory}: {error.strerror or error}") from None
    if len(found) > MAX_FILES:
        raise TerraformUsageError(f"{directory}: more than {MAX_FILES} Terraform files; not read")
    return found


def _write(changed: dict[str, bytes], stderr: TextIO) -> list[ts.Finding]:
    for path, data in changed.items():
        _replace(Path(path), data)
        print(f"{path}: written", file=stderr)
    return []


def _show(
    target: str, directory: bool, module: ts.Module, changed: dict[str, bytes], streams: tuple[TextIO, TextIO]
) -> list[ts.Finding]:
    """The fixed files on stdout: a directory's as a diff, a file's whole text. What this leaves privileged: the
    changes to other files (a JSON file read with file()) that a file's text cannot show."""
    stdout, stderr = streams
    if directory:
        for path, data in sorted(changed.items()):
            before = module.files[path].decode("utf-8").splitlines(keepends=True)
            after = data.decode("utf-8").splitlines(keepends=True)
            stdout.writelines(difflib.unified_diff(before, after, path, path))
        return []
    key = str(Path(target))
    stdout.write(changed.get(key, module.files[key]).decode("utf-8"))
    others = [path for path in changed if path != key]
    for path in others:
        print(f"{path}: changed by this fix but not written: run with --write, or on the directory", file=stderr)
    return [f for f in module.privileged if f.path in others]


def _replace(path: Path, data: bytes) -> None:
    """Write `data` over `path` atomically, keeping its permissions."""
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise TerraformUsageError(f"cannot write {path}: {error.strerror or error}") from None


def _line(finding: ts.Finding, check: bool) -> str:
    container = f" container {finding.container!r}" if finding.container else ""
    where = f"{finding.path}:{finding.line}: {finding.address}{container}: {finding.key}: {finding.value}"
    if finding.status == ts.UNRESOLVED:
        return f"{where}: unresolved ({finding.detail})" + ("" if check else ", not changed")
    return where if check else f"{where} -> {finding.fixed_to}"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]
