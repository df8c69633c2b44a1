"""Where a CloudFormation template's task definitions come from, and what in it may make some that cannot be read.

CLI only. The task definitions are the resources of `Resources` (through YAML merge keys and `Fn::ForEach` loops:
a loop's fragment is read once, since every item of its collection gets the same content except where the
identifier is substituted, and what depends on the identifier is unresolved). Everything else that may produce a
task definition at deploy time is reported as unresolved with its line and what it depends on, never counted as
clean: a macro in `Transform`, a snippet inserted by `Fn::Transform` (AWS::Include or a macro), a nested stack, a
stack set, a SAM application, a Service Catalog product, a custom resource, a registry extension or module, an
Elastic Beanstalk environment on its ECS platform, and any resource whose Type or keys cannot be read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from . import template_values as tv
from . import yaml_tree as yt
from .template_report import TASK_DEFINITION_TYPES, UNRESOLVED, Finding

Loops = tuple[tuple[str, str], ...]  # (Fn::ForEach::Name, identifier), outermost first

LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
SAM = "AWS::Serverless-2016-10-31"
# Transforms whose output is known: the language extensions' loops are read here (their other functions are values,
# unresolved where they decide Privileged); SAM makes task definitions only through AWS::Serverless::Application.
KNOWN_TRANSFORMS = frozenset({LANGUAGE_EXTENSIONS, SAM})
PROCESSED = "check the processed template (aws cloudformation get-template --template-stage Processed)"
RUN_ON_IT = "its template is not read here; run `ecs-remediate fix --check` on it"
# AWS resource types that deploy a template of their own: (the properties that name it, in order; why).
PRODUCERS: dict[str, tuple[tuple[str, ...], str]] = {
    "AWS::CloudFormation::Stack": (("TemplateURL",), f"a nested stack: {RUN_ON_IT}"),
    "AWS::CloudFormation::StackSet": (
        ("TemplateURL", "TemplateBody"),
        f"a stack set deploys its template to accounts and Regions: {RUN_ON_IT}",
    ),
    "AWS::Serverless::Application": (("Location",), f"a SAM application is a nested stack: {RUN_ON_IT}"),
    "AWS::ServiceCatalog::CloudFormationProvisionedProduct": (
        ("ProductName", "ProductId"),
        "provisions a Service Catalog product, whose template is not read here",
    ),
    "AWS::CloudFormation::CustomResource": (("ServiceToken",), ""),
}
CUSTOM = "a custom resource runs its provider's code at deploy time, which may register task definitions"
REGISTRY = "a CloudFormation registry extension runs its handler at deploy time, which may register task definitions"
MODULE = "a CloudFormation module expands into resources at deploy time; check the module's template"
BEANSTALK = "Elastic Beanstalk's ECS platform registers task definitions from the source bundle's Dockerrun.aws.json"


@dataclass(frozen=True)
class Site:
    """A task definition the template declares."""

    logical_id: str
    resource_type: str
    resource: yt.Mapping
    loops: Loops

    @property
    def within(self) -> str:
        return within(self.loops)


def within(loops: Loops) -> str:
    return "/".join(tv.short(loop) for loop, _ in loops)


def walk(root: yt.Node) -> tuple[list[Site], list[Finding]]:
    """The template's task definitions, and what may produce others that cannot be read."""
    found = _Walk(list(_transforms(root)))
    for key, section in yt.values(root, "Resources"):  # duplicates included: CloudFormation's choice is undefined
        resources = yt.resolve(section)
        if tv.intrinsic(resources) or not isinstance(resources, yt.Mapping | None):
            name = tv.function(resources)
            detail = f"given by {name}; {PROCESSED}" if name else "not a mapping of resources"
            found.findings.append(_unresolved(key, "Resources", resources, detail))
        elif resources is not None:
            found.resources(resources, ())
    return found.sites, found.findings


def _transforms(root: yt.Node) -> Iterator[Finding]:
    for key, section in yt.values(root, "Transform"):
        node = yt.resolve(section)
        entries = node.items if isinstance(node, yt.Sequence) and not node.tag else [node]
        for entry in entries:
            item = yt.resolve(entry)
            name = yt.scalar_text(item)
            if name in KNOWN_TRANSFORMS:
                continue
            at = item if item is not None else key
            if isinstance(item, yt.Mapping) and not tv.intrinsic(item):
                name = yt.scalar_text(yt.value(item, "Name"))
            if name == "AWS::Include":
                detail = f"inserts {_location(item)} at deploy time; {PROCESSED}"
            elif name is not None:
                detail = f"a macro: it rewrites the whole template at deploy time; {PROCESSED}"
            else:
                detail = f"a transform that is not a name; {PROCESSED}"
            yield _unresolved(at, "Transform", tv.short(name) if name else item, detail)


@dataclass
class _Walk:
    findings: list[Finding]
    sites: list[Site] = field(default_factory=list)

    def resources(self, mapping: yt.Mapping, loops: Loops) -> None:
        for key_node, value in yt.items(mapping):
            key = yt.scalar_text(key_node)
            if key is None:
                self.findings.append(_unresolved(key_node, "Resources", key_node, "a key that is not a name", loops))
            elif key.startswith(tv.FOR_EACH):
                self.loop(key_node, key, value, loops)
            elif key == tv.TRANSFORM:
                detail = f"inserts resources at deploy time; {PROCESSED}"
                self.findings.append(_unresolved(key_node, key, transform_name(value), detail, loops))
            else:
                self.resource(key_node, tv.short(key), value, loops)

    def loop(self, key_node: yt.Node, key: str, value: yt.Node, loops: Loops) -> None:
        arguments = yt.resolve(value)
        if not isinstance(arguments, yt.Sequence) or arguments.tag or len(arguments.items) != 3:
            detail = "not [identifier, collection, fragment]: nothing of it can be read"
            self.findings.append(_unresolved(key_node, key, value, detail, loops))
            return
        identifier = yt.scalar_text(arguments.items[0])
        fragment = yt.resolve(arguments.items[2])
        if identifier is None or not isinstance(fragment, yt.Mapping) or tv.intrinsic(fragment):
            detail = "its identifier or its fragment cannot be read"
            self.findings.append(_unresolved(key_node, key, value, detail, loops))
            return
        self.resources(fragment, (*loops, (key, identifier)))

    def resource(self, key_node: yt.Node, name: str, value: yt.Node, loops: Loops) -> None:
        resource = yt.resolve(value)
        if not isinstance(resource, yt.Mapping) or (resource.tag and tv.intrinsic(resource)):
            detail = "given by a function" if tv.intrinsic(resource) else "not a resource (a mapping with a Type)"
            self.findings.append(_unresolved(key_node, "Resource", resource, detail, loops, resource=name))
            return
        generated = list(generated_keys(resource, loops))
        self.findings.extend(
            _unresolved(node, key, shown, f"{why}: it may set the Type and Properties", loops, resource=name)
            for node, key, shown, why in generated
        )
        types = [(type_key, yt.resolve(type_value)) for type_key, type_value in yt.values(resource, "Type")]
        if not types and not generated:
            self.findings.append(_unresolved(key_node, "Type", None, "no Type", loops, resource=name))
        for type_key, type_node in types:
            self.typed(name, resource, type_key, type_node, loops)

    def typed(
        self, name: str, resource: yt.Mapping, type_key: yt.Node, type_node: yt.Node | None, loops: Loops
    ) -> None:
        resource_type = yt.scalar_text(type_node)
        if resource_type is not None and resource_type in TASK_DEFINITION_TYPES:
            self.sites.append(Site(name, resource_type, resource, loops))
            return
        at: yt.Node = type_key
        key, detail = "Type", "not a resource type name"
        shown: yt.Node | str | None = type_node
        if resource_type is not None:
            if (loop := tv.substituted(resource_type, loops)) is not None:
                detail = f"substituted from the collection of {tv.short(loop)}"
            elif (found := _producer(resource, resource_type)) is not None:
                given_at, key, given, detail = found
                at = given_at or type_key
                shown = given if given is not None else tv.short(resource_type) if key == "Type" else "(none)"
            else:
                return
        shown_type = tv.short(resource_type or "")
        self.findings.append(_unresolved(at, key, shown, detail, loops, resource=name, resource_type=shown_type))


def _producer(resource: yt.Mapping, resource_type: str) -> tuple[yt.Node | None, str, yt.Node | None, str] | None:
    """(where, key, value, why) when a resource of this type may make task definitions that are not read here."""
    properties = yt.value(resource, "Properties")
    if resource_type in PRODUCERS or resource_type.startswith("Custom::"):
        keys, detail = PRODUCERS.get(resource_type, (("ServiceToken",), ""))
        for key in keys:
            for at, given in yt.values(properties, key):
                return at, key, given, detail or CUSTOM
        return None, keys[0], None, detail or CUSTOM
    if resource_type == "AWS::ElasticBeanstalk::Environment":
        for key in ("SolutionStackName", "PlatformArn"):
            for at, given in yt.values(properties, key):
                text = (yt.scalar_text(given) or "ecs").lower()  # not a literal: it may name the ECS platform
                if "ecs" in text or "multi" in text:
                    return at, key, given, BEANSTALK
        return None
    if resource_type.startswith(("AWS::", "Alexa::")):
        return None
    return None, "Type", None, MODULE if resource_type.endswith("::MODULE") else REGISTRY


def generated_keys(mapping: yt.Node | None, loops: Loops) -> Iterator[tuple[yt.Node, str, str, str]]:
    """(key node, key, its value shown, why) for each key of `mapping` that stands for keys made at deploy time: a
    loop, an inserted snippet, or (in a loop's fragment) a key the loop's identifier is substituted into."""
    for key_node, value in yt.items(mapping):
        key = yt.scalar_text(key_node)
        if key is None:
            continue
        if key.startswith(tv.FOR_EACH):
            yield key_node, tv.short(key), "(a loop)", "it makes keys here at deploy time"
        elif key == tv.TRANSFORM:
            yield key_node, key, transform_name(value), "it inserts keys here at deploy time"
        elif (loop := tv.substituted(key, loops)) is not None:
            why = f"a key substituted from the collection of {tv.short(loop)}"
            yield key_node, tv.short(key), tv.display(value), why


def transform_name(value: yt.Node | None) -> str:
    """`AWS::Include of 's3://...'`, or the macro's name, for an `Fn::Transform` value."""
    name = yt.scalar_text(yt.value(value, "Name"))
    if name == "AWS::Include":
        return f"AWS::Include of {_location(value)}"
    return tv.short(name) if name else tv.display(value)


def _location(transform: yt.Node | None) -> str:
    return tv.display(yt.value(yt.value(transform, "Parameters"), "Location"))


def _unresolved(
    at: yt.Node,
    key: str,
    value: yt.Node | str | None,
    detail: str,
    loops: Loops = (),
    *,
    resource: str = "",
    resource_type: str = "",
) -> Finding:
    line = tv.line_of(at)
    shown = value if isinstance(value, str) else tv.display(value) if value is not None else "(none)"
    return Finding(resource, resource_type, "", line, UNRESOLVED, shown, detail, key=key, within=within(loops))
