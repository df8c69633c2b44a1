"""Template security: cdk-nag, cfn-lint and checkov on the synthesized templates, every variant of the stack.

Variants: the default context; report mode with every context key set; the scheduled sweep on; the organization
hub (default, and with rollout, retire, exclusions and the guardrail attached), each with its member template
(the StackSet's inlined body, a template of its own here). Zero unsuppressed
findings from each tool, and every suppression carries its reason (cdk-nag: in the constructs; checkov:
infra/checkov.py). checkov runs from its own virtualenv (.venv-checkov, installed by `make test-all`), offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match
from strategies import record
from test_infra import REPORT_CONTEXT

from app import ROOT, SKIP_BUNDLING, build_app, hub_of, stack_of

pytestmark = pytest.mark.external  # checkov, from .venv-checkov

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_OPTIONS = ("--framework", "cloudformation", "--skip-download", "--compact", "-o", "json")
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "report-all-keys": REPORT_CONTEXT,
    "sweep-on": {"sweepSchedule": "rate(1 day)", "notificationEmails": '["sec@example.com"]'},
    # daemons: UpdateDaemon, DeleteDaemonTaskDefinition and the deployment-outcome rule (infra/daemons.py)
    "daemons-all-on": {"daemonRollout": "true", "rollout": "true", "retire": "true"},
}
ORG = {
    "organization": "true",
    "organizationId": "o-abcdefghij",
    "targetOus": "ou-ab12-11111111",
    "regions": "us-east-1",
}
ORG_VARIANTS: dict[str, dict[str, Any]] = {
    "org-hub": ORG,
    "org-all-on": {
        **ORG,
        "daemonRollout": "true",
        "regions": "us-east-1,eu-west-1,ap-southeast-2",
        "rollout": "true",
        "retire": "true",
        "excludedAccounts": "111111111111",
        "guardrail": "attach",
        "breakGlassPrincipals": "arn:aws:iam::*:role/BreakGlass*",
        "sweepSchedule": "rate(1 day)",  # the organization sweep (infra/org_sweep.py)
    },
}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    out: dict[str, tuple[Any, Path]] = {}
    for name, context in {**VARIANTS, **ORG_VARIANTS}.items():
        tmp = tmp_path_factory.mktemp(f"cdk-{name}")
        app = build_app({**SKIP_BUNDLING, **context}, outdir=str(tmp / "cdk.out"))
        stack = hub_of(app) if name in ORG_VARIANTS else stack_of(app)
        template = app.synth().get_stack_by_name(stack.stack_name).template
        path = tmp / f"{name}.template.json"
        path.write_text(json.dumps(template))
        out[name] = (stack, path)
        if name in ORG_VARIANTS:  # the member template's cdk-nag findings are reported on the hub stack
            member = tmp / f"{name}-member.template.json"
            member.write_text(json.dumps(stack.member_template.template))
            out[f"{name}-member"] = (stack, member)
    return out


def test_cdk_nag_cfn_lint_and_checkov_find_nothing_unsuppressed(synthesized: dict[str, tuple[Any, Path]]) -> None:
    if not CHECKOV.exists():
        message = f"checkov is not installed at {CHECKOV}: run `make install`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    figures: dict[str, Any] = {"variants": sorted(synthesized)}

    # cdk-nag (AwsSolutions): errors and warnings left after the suppressions
    nag_open, nag_suppressed = [], 0
    for name, (stack, path) in synthesized.items():
        annotations = Annotations.from_stack(stack)
        for finding in [
            *annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")),
            *annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*")),
        ]:
            nag_open.append((name, finding.entry.data))
        for resource in json.loads(path.read_text())["Resources"].values():
            rules = resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
            nag_suppressed += len(rules)
            assert all(len(rule.get("reason", "")) >= 40 for rule in rules), rules
    figures["cdk_nag"] = {"unsuppressed": len(nag_open), "suppressions": nag_suppressed}

    # cfn-lint: W3005 (DependsOn besides a GetAtt) is how CDK orders a function after its role's policies.
    paths = [str(path) for _, path in synthesized.values()]
    lint = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "parseable", *paths], capture_output=True, text=True, check=False
    )
    lint_findings = [line for line in lint.stdout.splitlines() if line.strip()]
    lint_open = [f for f in lint_findings if ":W3005:" not in f]
    figures["cfn_lint"] = {"unsuppressed": len(lint_open), "W3005_by_design": len(lint_findings) - len(lint_open)}

    # checkov: offline (--skip-download: no guideline fetch), JSON report
    scan = subprocess.run(
        [str(CHECKOV), *[a for p in paths for a in ("-f", p)], *CHECKOV_OPTIONS],
        capture_output=True,
        text=True,
        check=False,
        cwd=str(Path(paths[0]).parent),
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    report = json.loads(scan.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = {k: sum(r["summary"][k] for r in reports) for k in ("passed", "failed", "skipped", "parsing_errors")}
    failed = [(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]]
    skipped = [c for r in reports for c in r["results"].get("skipped_checks", [])]
    comments = {
        (c["file_path"], c["check_id"], c["resource"]): c["check_result"].get("suppress_comment", "") for c in skipped
    }
    figures["checkov"] = {**summary, "suppressed_check_ids": sorted({check for _, check, _ in comments})}
    record("template_security", **figures)

    assert nag_open == []
    assert lint.returncode & 2 == 0 and lint_open == [], lint.stdout + lint.stderr
    assert summary["parsing_errors"] == 0 and summary["passed"] > 0
    assert failed == [], failed
    assert len(comments) == summary["skipped"]
    assert all(len(comment) >= 60 for comment in comments.values()), comments
