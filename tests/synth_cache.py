"""Each synth configuration built once per test process and shared by every test module that asks for it.

A synth is most of an infrastructure test's time, and several modules synthesize the same context (the default stack,
the hub, the hub with daemon rollout). Asset bundling is skipped (tests/test_infra_bundling.py bundles). The app is
shared: read it, never add to it. Templates taken from it (`app.synth().get_stack_by_name(...).template`,
`Template.from_stack(...).to_json()`) are fresh copies each time, so a test may change its own. A test of what a
synth writes or prints builds its own app (app.build_app into its tmp_path): the shared one did that once, elsewhere.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk

from app import SKIP_BUNDLING, build_app


def synthesized_app(context: Mapping[str, Any]) -> cdk.App:
    """The app built (and synthesized) for `context` layered over cdk.json's, bundling skipped; once per process."""
    return _app(json.dumps({**SKIP_BUNDLING, **context}, sort_keys=True))


@functools.cache
def _app(context: str) -> cdk.App:
    outdir = tempfile.mkdtemp(prefix="ecs-remediate-test-synth-")
    atexit.register(shutil.rmtree, outdir, ignore_errors=True)
    return build_app(json.loads(context), outdir=outdir)
