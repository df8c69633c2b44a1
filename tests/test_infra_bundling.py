"""The one test that really bundles the function's asset (local pip, no Docker).

The first run on a machine fetches the pinned wheels for manylinux2014_aarch64 from the package index into
build/lambda-deps/ (git-ignored); later runs only copy them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from app import build_app, stack_of
from infra.bundling import CLI_ONLY, LAMBDA_SOURCE, PACKAGE, REQUIREMENTS


def _pins() -> dict[str, str]:
    pins = {}
    for raw in REQUIREMENTS.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("-", "_")] = version.strip()
    return pins


@pytest.mark.slow
def test_asset_holds_the_package_and_its_pinned_dependencies(tmp_path: Path) -> None:
    started = time.perf_counter()
    app = build_app({}, outdir=str(tmp_path))
    stack = stack_of(app)
    assembly = app.synth()
    elapsed = time.perf_counter() - started

    template = assembly.get_stack_by_name(stack.stack_name).template
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    # The remediation function and the scheduled sweep share one asset.
    assert {f["Properties"]["Handler"] for f in functions} == {
        "ecs_remediate.functions.handler.queue_handler",
        "ecs_remediate.functions.handler.sweep_handler",
    }
    assert len({json.dumps(f["Properties"]["Code"], sort_keys=True) for f in functions}) == 1
    function = functions[0]
    # CDK derives the asset's name from our custom hash (requirements, runtime, package sources).
    asset = tmp_path / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    assert asset.is_dir()

    # The package, as in the source tree, without bytecode, and without what only the CLI needs (cli/, iac/).
    assert (asset / PACKAGE / "functions" / "handler.py").is_file()
    sources = {p.relative_to(LAMBDA_SOURCE) for p in (LAMBDA_SOURCE / PACKAGE).rglob("*.py")}
    cli_only = {p for p in sources if p.parts[1] in CLI_ONLY}
    assert cli_only and not any((asset / p).exists() for p in cli_only)
    assert sources - cli_only == {p.relative_to(asset) for p in (asset / PACKAGE).rglob("*.py")}
    assert not list(asset.rglob("__pycache__"))
    assert not (asset / "bin").exists() and not (asset / ".complete").exists()
    # Nothing of the project beside the package: the emulators, the demo, the benchmarks and the tests stay home.
    assert not {"emulators", "demo", "bench", "tests", "infra"} & {p.name for p in asset.iterdir()}

    # Its own pinned boto3 (not the runtime's), and the other runtime dependencies, for the right platform.
    assert (asset / "boto3" / "__init__.py").is_file()
    installed = {
        p.name.split("-")[0].lower(): p.name.removesuffix(".dist-info").split("-")[1] for p in asset.glob("*.dist-info")
    }
    for name, version in _pins().items():
        assert installed.get(name) == version, (name, installed.get(name), version)
    wrapt_wheel = json.dumps(sorted(p.name for p in (asset / "wrapt").glob("*.so")))
    assert "aarch64" in wrapt_wheel or wrapt_wheel == "[]", wrapt_wheel
    print(f"synth with bundling: {elapsed:.1f}s")
