"""The function's asset: the `ecs_remediate` package plus its pinned runtime dependencies, built locally.

No Docker: `pip install --platform manylinux2014_aarch64 --only-binary=:all:` fetches the wheels for the
function's runtime and architecture, whatever the build machine is. The installed dependencies are cached
under `build/lambda-deps/<hash>` (git-ignored), keyed by requirements.txt, the Python version and the
platform, so repeated synths only copy files. The asset hash is computed from the same inputs plus the
package's source files, so it changes exactly when the deployed code would.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SOURCE = PROJECT_ROOT / "lambda"
PACKAGE = "ecs_remediate"
REQUIREMENTS = PROJECT_ROOT / "requirements.txt"
CACHE_ROOT = PROJECT_ROOT / "build" / "lambda-deps"
PIP_PLATFORM = "manylinux2014_aarch64"
_COMPLETE = ".complete"  # marks a finished pip target in the cache
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
# What only the CLI runs (the `ecs-remediate` command, infrastructure-as-code fixing): not shipped in the function.
# The import contracts in pyproject.toml keep every function entry point from reaching them.
CLI_ONLY = ("cli", "iac", "__main__.py")


def _without_cli(folder: str, names: list[str]) -> set[str]:
    ignored = set(_IGNORED(folder, names))
    if Path(folder) == LAMBDA_SOURCE / PACKAGE:
        ignored |= set(CLI_ONLY) & set(names)
    return ignored


def python_version(runtime: lambda_.Runtime) -> str:
    """'python3.14' -> '3.14'."""
    name = runtime.name
    if not name.startswith("python"):
        raise ValueError(f"not a Python runtime: {name}")
    return name.removeprefix("python")


def _source_files() -> list[Path]:
    package = LAMBDA_SOURCE / PACKAGE
    return sorted(
        p
        for p in package.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix not in (".pyc", ".pyo")
        and p.relative_to(package).parts[0] not in CLI_ONLY
    )


def _dependencies_key(version: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"{PIP_PLATFORM}\0cp{version}\0".encode())
    digest.update(REQUIREMENTS.read_bytes())
    return digest.hexdigest()[:16]


def asset_hash(version: str) -> str:
    """Hash of everything that ends up in the asset: dependencies' inputs and the package's files."""
    digest = hashlib.sha256(_dependencies_key(version).encode())
    for path in _source_files():
        digest.update(str(path.relative_to(LAMBDA_SOURCE)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class LocalPythonBundling:
    """Builds the asset on this machine; raises (never falls back to Docker) when pip fails."""

    def __init__(self, version: str) -> None:
        self.version = version

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        output = Path(output_dir)
        shutil.copytree(self.dependencies(), output, ignore=shutil.ignore_patterns(_COMPLETE), dirs_exist_ok=True)
        shutil.copytree(LAMBDA_SOURCE / PACKAGE, output / PACKAGE, ignore=_without_cli, dirs_exist_ok=True)
        return True

    def dependencies(self) -> Path:
        """The pip target directory for requirements.txt, built once per key."""
        target = CACHE_ROOT / _dependencies_key(self.version)
        if (target / _COMPLETE).exists():
            return target
        CACHE_ROOT.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="deps-", dir=CACHE_ROOT))
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "-r",
            str(REQUIREMENTS),
            "--platform",
            PIP_PLATFORM,
            "--only-binary=:all:",
            "--python-version",
            self.version,
            "--implementation",
            "cp",
            "--target",
            str(staging),
        ]
        # Fixed argument list (this interpreter, our requirements file), no shell.
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(
                f"bundling the function's dependencies failed (pip exit {result.returncode}):\n"
                f"{' '.join(command)}\n{result.stderr.strip()}"
            )
        shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts: useless in the function
        (staging / _COMPLETE).touch()
        try:
            os.replace(staging, target)
        except OSError:  # another process finished first: use its copy
            shutil.rmtree(staging, ignore_errors=True)
        return target


def function_code(runtime: lambda_.Runtime) -> lambda_.Code:
    """The asset for every function of this project (they share one package and its dependencies)."""
    version = python_version(runtime)
    return lambda_.Code.from_asset(
        str(LAMBDA_SOURCE),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_hash(version),
        exclude=["**/__pycache__", "**/*.pyc"],
        bundling=BundlingOptions(
            # Only named because CDK requires an image; local bundling always succeeds or raises.
            image=runtime.bundling_image,
            local=LocalPythonBundling(version),
        ),
    )
