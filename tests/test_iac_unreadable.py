"""Issue 19, class 3: a check must not pass what it cannot read. The policed developer writes the template: they
hide a privileged container where `ecs-remediate fix --check` does not look (an `Fn::ForEach` loop, a nested stack,
a macro or an included snippet, a custom resource, a registry extension, a value given by a function or a
parameter). Each attack runs through the CLI on the template in YAML and in JSON: what cannot be read is listed
as unresolved at its line with its logical id and what it depends on, the exit code is 1 with and without
`--check`, and `fix` still fixes the privileged container it can read (a decoy beside the attack) and nothing else.
The loop that is read is checked against cfn-lint's own expansion of AWS::LanguageExtensions.
"""

from __future__ import annotations

import difflib
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str
from cfnlint.template import Template
from cfnlint.template.transforms._language_extensions import language_extension
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from strategies import FUZZ, scaled

from ecs_remediate.cli import main as cli
from ecs_remediate.iac import templates

HEAD = """AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::LanguageExtensions
Parameters:
  Flag: {Type: String, Default: 'true'}
  Late: {Type: String}
Mappings:
  Flags: {prod: {on: true}}
Conditions:
  IsProd: {Fn::Equals: [{Ref: 'AWS::AccountId'}, '123456789012']}
Resources:
  Decoy:
    Type: AWS::ECS::TaskDefinition
    Properties:
      ContainerDefinitions:
        - Name: decoy
          Image: busybox
          Privileged: true
"""

# id -> (resources appended to HEAD, [(anchor, key, subject, detail)]): each is reported at the first line at or after
# the line holding `anchor` that holds `key`, and the line names `subject` and says `detail`.
Expectation = tuple[str, str, str, str]
ATTACKS: dict[str, tuple[str, list[Expectation]]] = {
    "foreach-depends-on-the-identifier": (
        """  Fn::ForEach::Agents:
    - Mode
    - ['true', 'false']
    - Agent${Mode}:
        Type: AWS::ECS::TaskDefinition
        Properties:
          ContainerDefinitions:
            - Name: by-ref
              Image: busybox
              Privileged: {Ref: Mode}
            - Name: by-substitution
              Image: busybox
              Privileged: ${Mode}
            - Name: by-key
              Image: busybox
              ${Mode}: true
            - Name: by-inner-loop
              Image: busybox
              Fn::ForEach::Keys: [Key, [Privileged], {'${Key}': true}]
      Kind${Mode}:
        Type: AWS::ECS::${Mode}
""",
        [
            ("by-ref", "Privileged", "Agent${Mode} (AWS::ECS::TaskDefinition) in Fn::ForEach::Agents", "identifier"),
            ("by-substitution", "Privileged", "container 'by-substitution'", "substituted from the collection"),
            ("by-key", "${Mode}", "container 'by-key': ${Mode}: true", "it may set Privileged"),
            ("by-inner-loop", "Fn::ForEach::Keys", "container 'by-inner-loop': Fn::ForEach::Keys", "makes keys"),
            ("Kind${Mode}", "Type", "Kind${Mode}", "substituted from the collection of Fn::ForEach::Agents"),
        ],
    ),
    "nested-stacks": (
        """  Child:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: https://s3.amazonaws.com/templates/child.yaml
  Everywhere:
    Type: AWS::CloudFormation::StackSet
    Properties:
      StackSetName: agents
      PermissionModel: SERVICE_MANAGED
      TemplateBody: '{"Resources": {}}'
  Sar:
    Type: AWS::Serverless::Application
    Properties:
      Location: https://s3.amazonaws.com/templates/app.yaml
  Product:
    Type: AWS::ServiceCatalog::CloudFormationProvisionedProduct
    Properties:
      ProductName: ecs-agents
""",
        [
            ("Child", "TemplateURL", "Child (AWS::CloudFormation::Stack): TemplateURL: ", "nested stack"),
            ("Everywhere", "TemplateBody", "Everywhere (AWS::CloudFormation::StackSet): TemplateBody", "stack set"),
            ("Sar", "Location", "Sar (AWS::Serverless::Application): Location", "SAM application"),
            ("Product", "ProductName", "(AWS::ServiceCatalog::CloudFormationProvisionedProduct)", "Catalog"),
        ],
    ),
    "macros-and-included-snippets": (
        """  Fn::Transform:
    Name: AWS::Include
    Parameters: {Location: 's3://snippets/agents.yaml'}
  Mixed:
    Type: AWS::ECS::DaemonTaskDefinition
    Properties:
      Fn::Transform: {Name: Acme::AddContainers}
      ContainerDefinitions:
        - Name: mixed
          Image: busybox
          Fn::Transform: {Name: AWS::Include, Parameters: {Location: 's3://snippets/flags.yaml'}}
  Whole:
    Fn::Transform: {Name: Acme::TaskDefinition}
""",
        [
            ("Resources", "Fn::Transform", "Fn::Transform: AWS::Include of ", "inserts resources"),
            (
                "Mixed",
                "Fn::Transform",
                "Mixed (AWS::ECS::DaemonTaskDefinition): Fn::Transform: Acme::",
                "ContainerDefinitions",
            ),
            ("mixed", "Fn::Transform", "container 'mixed': Fn::Transform: AWS::Include", "may set Privileged"),
            ("Whole", "Fn::Transform", "Whole: Fn::Transform: Acme::TaskDefinition", "may set the Type"),
        ],
    ),
    "values-given-by-functions-and-parameters": (
        """  Functions:
    Type: AWS::ECS::TaskDefinition
    Properties:
      ContainerDefinitions:
        - Name: by-if
          Image: busybox
          Privileged: {Fn::If: [IsProd, false, true]}
        - Name: by-default
          Image: busybox
          Privileged: {Ref: Flag}
        - Name: at-deploy
          Image: busybox
          Privileged: {Ref: Late}
        - Name: by-map
          Image: busybox
          Privileged: {Fn::FindInMap: [Flags, prod, 'on']}
        - Name: by-import
          Image: busybox
          Privileged: {Fn::ImportValue: platform-privileged}
        - Name: by-sub
          Image: busybox
          Privileged: {Fn::Sub: '${Flag}'}
  WholeList:
    Type: AWS::ECS::DaemonTaskDefinition
    Properties:
      ContainerDefinitions: {Fn::If: [IsProd, {Ref: 'AWS::NoValue'}, {Fn::Split: [',', {Ref: Flag}]}]}
""",
        [
            ("by-if", "Privileged", "container 'by-if': Privileged: Fn::If", "given by Fn::If"),
            ("by-default", "Privileged", "container 'by-default': Privileged: Ref Flag", "Flag defaults to 'true'"),
            ("at-deploy", "Privileged", "container 'at-deploy': Privileged: Ref Late", "Late has no default"),
            ("by-map", "Privileged", "container 'by-map': Privileged: Fn::FindInMap", "given by Fn::FindInMap"),
            ("by-import", "Privileged", "Privileged: Fn::ImportValue platform-privileged", "given by Fn::ImportValue"),
            ("by-sub", "Privileged", "container 'by-sub': Privileged: Fn::Sub", "given by Fn::Sub"),
            (
                "WholeList",
                "Fn::Split",
                "WholeList (AWS::ECS::DaemonTaskDefinition): ContainerDefinitions: Fn::Split",
                "given by Fn::Split",
            ),
        ],
    ),
    "code-that-runs-at-deploy-time": (
        """  Registrar:
    Type: Custom::TaskDefinitionRegistrar
    Properties:
      ServiceToken: arn:aws:lambda:us-east-1:123456789012:function:register
  AwsSdkCall:
    Type: AWS::CloudFormation::CustomResource
    Properties:
      ServiceToken: {Fn::GetAtt: [Provider, Arn]}
  Plugin:
    Type: Acme::ECS::Agent
  Module:
    Type: Acme::ECS::Agents::MODULE
  Beanstalk:
    Type: AWS::ElasticBeanstalk::Environment
    Properties:
      ApplicationName: agents
      SolutionStackName: 64bit Amazon Linux 2 v3.6.0 running ECS
""",
        [
            ("Registrar", "ServiceToken", "Registrar (Custom::TaskDefinitionRegistrar): ServiceToken", "custom"),
            ("AwsSdkCall", "ServiceToken", "AwsSdkCall (AWS::CloudFormation::CustomResource)", "custom resource"),
            ("Plugin", "Type", "Plugin (Acme::ECS::Agent): Type: Acme::ECS::Agent", "registry extension"),
            ("Module", "Type", "Module (Acme::ECS::Agents::MODULE)", "a CloudFormation module"),
            ("Beanstalk", "SolutionStackName", "Beanstalk (AWS::ElasticBeanstalk::Environment)", "ECS platform"),
        ],
    ),
    "a-macro-for-the-whole-template": (
        "",
        [("Transform", "Acme::Everything", "Transform: Acme::Everything", "a macro: it rewrites the whole template")],
    ),
}


def as_json(text: str) -> str:
    return json.dumps(YAML(typ="safe", pure=True).load(text), indent=2) + "\n"


def template(attack: str, form: str) -> str:
    resources, _ = ATTACKS[attack]
    text = HEAD + resources
    if attack == "a-macro-for-the-whole-template":
        macro = "Transform: [AWS::LanguageExtensions, Acme::Everything]"
        text = text.replace("Transform: AWS::LanguageExtensions", macro)
    return as_json(text) if form == "json" else text


def line_of(text: str, anchor: str, key: str) -> int:
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if anchor in line)
    return next(n for n in range(start, len(lines)) if key in lines[n]) + 1


def fix(path: Path, *args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = cli.main(["fix", *args, str(path)], stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.mark.parametrize("form", ["yaml", "json"])
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_what_cannot_be_read_is_unresolved_at_its_line_and_the_rest_is_fixed(
    attack: str, form: str, tmp_path: Path
) -> None:
    text = template(attack, form)
    path = tmp_path / f"template.{form}"
    path.write_text(text, encoding="utf-8")
    expected = ATTACKS[attack][1]

    code, listed, _ = fix(path, "--check")
    assert code == 1
    unresolved = [line for line in listed.splitlines() if ": unresolved (" in line]
    assert len(unresolved) == len(expected), listed
    for anchor, key, subject, detail in expected:
        at = f"{path}:{line_of(text, anchor, key)}: "
        [line] = [line for line in unresolved if line.startswith(at)]
        assert subject in line and detail in line.split(": unresolved (", 1)[1], line
    decoy = f"{path}:{line_of(text, 'decoy', 'Privileged')}: Decoy (AWS::ECS::TaskDefinition) container 'decoy': "
    assert [line for line in listed.splitlines() if ": unresolved (" not in line] == [f"{decoy}Privileged: true"]

    code, fixed, report = fix(path)
    assert code == 1  # what is left unresolved is never counted as clean
    assert f"{decoy}Privileged: true -> false" in report
    assert len([line for line in report.splitlines() if line.endswith(", not changed")]) == len(expected)
    changed = [d for d in difflib.ndiff(text.splitlines(), fixed.splitlines()) if d[:1] in "+-"]
    assert [d[2:].strip() for d in changed] == (
        ["Privileged: true", "Privileged: false"] if form == "yaml" else ['"Privileged": true', '"Privileged": false']
    )
    assert fix_again(fixed, tmp_path, form) == (1, len(expected))


def fix_again(text: str, tmp_path: Path, form: str) -> tuple[int, int]:
    path = tmp_path / f"fixed.{form}"
    path.write_text(text, encoding="utf-8")
    code, listed, _ = fix(path, "--check")
    assert "unresolved" in listed and all(": unresolved (" in line for line in listed.splitlines())
    return code, len(listed.splitlines())


LOOP = """AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::LanguageExtensions
Resources:
  Fn::ForEach::Agents:
    - Region
    - [Ireland, Frankfurt]
    - Agent${Region}:
        Type: AWS::ECS::TaskDefinition
        Properties:
          Family: {Fn::Sub: 'agent-${Region}'}
          ContainerDefinitions:
            - Name: agent
              Image: public.ecr.aws/acme/agent:1
              Essential: true
              Privileged: true   # the attack of issue 19: fix --check said 0
      Fn::ForEach::Sidecars:
        - Sidecar
        - [logs, metrics]
        - Sidecar${Region}${Sidecar}:
            Type: AWS::ECS::DaemonTaskDefinition
            Properties:
              ContainerDefinitions:
                - Name: {Fn::Sub: '${Sidecar}'}
                  Image: busybox
                  Privileged: 'TRUE'
"""


def expanded_containers(text: str) -> dict[str, list[dict[str, Any]]]:
    """cfn-lint's own expansion of AWS::LanguageExtensions: each generated task definition's containers."""
    decoded, problems = decode_str(text)
    assert problems == []
    matches, result = language_extension(Template("template", decoded, ["us-east-1"]))
    assert matches == []
    return {
        name: resource["Properties"]["ContainerDefinitions"]
        for name, resource in result["Resources"].items()
        if resource["Type"].startswith("AWS::ECS::")
    }


@pytest.mark.parametrize("form", ["yaml", "json"])
def test_a_loop_of_privileged_task_definitions_is_listed_and_fixed_in_its_fragment(form: str, tmp_path: Path) -> None:
    text = as_json(LOOP) if form == "json" else LOOP
    path = tmp_path / f"loop.{form}"
    path.write_text(text, encoding="utf-8")
    before = expanded_containers(text)
    assert sorted(before) == [
        "AgentFrankfurt",
        "AgentIreland",
        "SidecarFrankfurtlogs",
        "SidecarFrankfurtmetrics",
        "SidecarIrelandlogs",
        "SidecarIrelandmetrics",
    ]
    assert all(c["Privileged"] in (True, "TRUE") for containers in before.values() for c in containers)

    code, listed, _ = fix(path, "--check")
    assert code == 1
    assert listed.splitlines() == [
        f"{path}:{line_of(text, 'agent:1', 'Privileged')}: Agent${{Region}} (AWS::ECS::TaskDefinition) "
        "in Fn::ForEach::Agents container 'agent': Privileged: true",
        f"{path}:{line_of(text, 'busybox', 'Privileged')}: Sidecar${{Region}}${{Sidecar}} "
        "(AWS::ECS::DaemonTaskDefinition) in Fn::ForEach::Agents/Fn::ForEach::Sidecars container 'Fn::Sub ${Sidecar}': "
        + ("Privileged: 'TRUE'" if form == "yaml" else 'Privileged: "TRUE"'),
    ]

    code, fixed, _ = fix(path)
    assert code == 0
    after = expanded_containers(fixed)
    assert sorted(after) == sorted(before)
    for name, containers in after.items():
        for container, original in zip(containers, before[name], strict=True):
            assert container.pop("Privileged") in (False, "false")
            original.pop("Privileged")
            assert container == original
    again = tmp_path / f"fixed.{form}"
    again.write_text(fixed, encoding="utf-8")
    assert fix(again, "--check") == (0, "", f"{again}: 0 privileged, 0 unresolved, in 2 task definition(s)\n")


YAML_ONLY = {
    "merge-key-in-resources": (
        """AWSTemplateFormatVersion: '2010-09-09'
Metadata:
  Shared: &shared
    Hidden:
      Type: AWS::ECS::TaskDefinition
      Properties:
        ContainerDefinitions:
          - {Name: hidden, Image: busybox, Privileged: true}
Resources:
  <<: *shared
  Bucket:
    Type: AWS::S3::Bucket
""",
        1,
        0,
    ),
    "short-form-transform-for-resources": (
        "AWSTemplateFormatVersion: '2010-09-09'\nResources: !Transform {Name: Acme::Everything}\n",
        0,
        1,
    ),
    "short-form-transform-in-a-container": (
        """AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Task:
    Type: AWS::ECS::TaskDefinition
    Properties:
      ContainerDefinitions:
        - !Transform {Name: AWS::Include, Parameters: {Location: 's3://snippets/c.yaml'}}
        - !If [IsProd, !Transform {Name: Acme::Container}, {Name: x, Image: busybox}]
""",
        0,
        2,
    ),
}


@pytest.mark.parametrize("case", list(YAML_ONLY))
def test_yaml_only_hiding_places(case: str, tmp_path: Path) -> None:
    text, privileged, unresolved = YAML_ONLY[case]
    path = tmp_path / "template.yaml"
    path.write_text(text, encoding="utf-8")
    code, listed, _ = fix(path, "--check")
    assert code == 1
    lines = listed.splitlines()
    assert len([line for line in lines if ": unresolved (" in line]) == unresolved, listed
    assert len([line for line in lines if ": unresolved (" not in line]) == privileged, listed


def test_what_makes_no_task_definition_is_not_reported() -> None:
    """The guarantee does not turn every template red: known transforms and ordinary resources are clean."""
    text = """AWSTemplateFormatVersion: '2010-09-09'
Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]
Resources:
  Fn::ForEach::Buckets:
    - Name
    - [a, b]
    - Bucket${Name}:
        Type: AWS::S3::Bucket
        Properties:
          Fn::ForEach::Tags: [T, [x], {'${T}': y}]
  Function:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.12, Handler: index.handler, InlineCode: 'def handler(e, c): pass'}
  Service:
    Type: AWS::ECS::Service
    Properties: {TaskDefinition: {Ref: Task}}
  Task:
    Type: AWS::ECS::TaskDefinition
    Properties:
      ContainerDefinitions:
        - {Name: app, Image: busybox, Privileged: false}
  Environment:
    Type: AWS::ElasticBeanstalk::Environment
    Properties: {ApplicationName: web, SolutionStackName: 64bit Amazon Linux 2023 v4.3.0 running Python 3.12}
"""
    stdout, stderr = io.StringIO(), io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        code = cli.main(["fix", "--check", "-"], stdout=stdout, stderr=stderr)
    finally:
        sys.stdin = old
    assert (code, stdout.getvalue()) == (0, ""), stdout.getvalue()
    assert "0 privileged, 0 unresolved, in 1 task definition(s)" in stderr.getvalue()


FIXTURE = Path(__file__).parent / "fixtures" / "cloudformation" / "loop-nested-stack-macro-custom.yaml"


def test_the_documented_example_lists_what_it_read_and_what_it_could_not() -> None:
    """docs/iac.md shows this output."""
    code, listed, summary = fix(FIXTURE, "--check")
    assert code == 1
    at = f"{FIXTURE}:"
    assert [line.removeprefix(at).split(" (", 1)[0] for line in listed.splitlines()] == [
        "6: Transform: Acme::Sidecars: unresolved",
        "19: Agent${Region}",
        "23: Platform",
        "27: Registrar",
        "35: Web",
    ]
    assert "in Fn::ForEach::Agents container 'agent': Privileged: true" in listed
    assert "1 privileged, 4 unresolved, in 2 task definition(s)" in summary
    code, fixed, _ = fix(FIXTURE)
    assert code == 1
    original = FIXTURE.read_text()
    assert fixed == original.replace("Privileged: true   # every", "Privileged: false   # every")


KEYS = ["Type", "Properties", "ContainerDefinitions", "Privileged", "Name", "Fn::Transform", "Fn::ForEach::L", "${Id}"]
LEAVES = ["AWS::ECS::TaskDefinition", "AWS::CloudFormation::Stack", "Custom::X", "Acme::X::Y", "true", "Id", "${Id}"]
trees = st.recursive(
    st.sampled_from([*LEAVES, None, True, 1]),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from([*KEYS, "Ref", "Fn::If", "Fn::Sub"]), inner, max_size=4),
    ),
    max_leaves=30,
)


@settings(FUZZ, max_examples=scaled(200))
@given(resources=st.dictionaries(st.sampled_from(["Task", "Fn::ForEach::Loop", "Fn::Transform", "Other"]), trees))
def test_any_resources_section_is_judged_without_raising_and_unreadable_parts_are_never_clean(
    resources: dict[str, Any],
) -> None:
    text = json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}, indent=1)
    report = templates.analyse(text)
    fixed, _ = templates.fix(text)
    again = templates.analyse(fixed)
    assert not again.privileged and len(again.unresolved) == len(report.unresolved)
    assert (fixed != text) == bool(report.privileged)
    loop = resources.get("Fn::ForEach::Loop", [None, None, {}])
    unreadable_loop = not isinstance(loop, list) or len(loop) != 3 or not isinstance(loop[2], dict)
    if "Fn::Transform" in resources or unreadable_loop:
        assert any(f.key in ("Fn::Transform", "Fn::ForEach::Loop", "Resources") for f in report.unresolved)
