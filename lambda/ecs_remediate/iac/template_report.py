"""What `ecs-remediate fix` found in a CloudFormation template: findings, the byte edits that fix them, the report."""

from __future__ import annotations

from dataclasses import dataclass

TASK_DEFINITION_TYPES = ("AWS::ECS::TaskDefinition", "AWS::ECS::DaemonTaskDefinition")
PRIVILEGED = "privileged"
UNRESOLVED = "unresolved"
COMPLIANT = "compliant"


class TemplateError(ValueError):
    """Not a template this tool can read; one line, no template content beyond names."""


@dataclass(frozen=True)
class Finding:
    resource: str  # logical id ("" for the template's own Transform section)
    resource_type: str
    container: str  # its Name, or "#<index>" without one; "" when the finding is not about one container
    line: int  # 1-based line of the key that holds `value`
    status: str  # PRIVILEGED (changed by `fix`) | UNRESOLVED (reported, left alone)
    value: str  # the value as written, shortened: "true", "!Ref EnablePrivileged", "Fn::If"
    detail: str = ""  # why it is unresolved and what it depends on, e.g. "parameter X defaults to 'true'"
    fixed_to: str = ""  # what `fix` writes instead of `value` (same quoting and case), for PRIVILEGED
    key: str = "Privileged"  # what holds the value: Privileged, ContainerDefinitions, Transform, TemplateURL...
    within: str = ""  # the Fn::ForEach loop(s) the resource is declared in, outermost first

    def where(self) -> str:
        """`resource (type) in loop container 'name'`, as much of it as applies."""
        parts = []
        if self.resource:
            parts.append(f"{self.resource} ({self.resource_type})" if self.resource_type else self.resource)
        if self.within:
            parts.append(f"in {self.within}")
        if self.container:
            parts.append(f"container {self.container!r}")
        return " ".join(parts)


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]
    edits: tuple[Edit, ...]
    task_definitions: int

    @property
    def privileged(self) -> list[Finding]:
        return [f for f in self.findings if f.status == PRIVILEGED]

    @property
    def unresolved(self) -> list[Finding]:
        return [f for f in self.findings if f.status == UNRESOLVED]

    def apply(self, text: str) -> str:
        out, position = [], 0
        for edit in sorted(set(self.edits), key=lambda e: e.start):
            if edit.start < position:
                raise TemplateError("two changes overlap; nothing written")
            out.append(text[position : edit.start])
            out.append(edit.text)
            position = edit.end
        out.append(text[position:])
        return "".join(out)
