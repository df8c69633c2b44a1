"""The demo's daemon scene (ECS Managed Daemons): a security agent whose vendor template asks for privileged mode.

  * its daemon task definition (the shared fixture: two privileged containers, pidMode/ipcMode shared, host volume)
    is registered; the CloudTrail event goes through the synthesized daemon rule and the real handler: a faithful
    non-privileged copy, read back, one notice naming the images and the documented alternative;
  * the copy's own registration is fed back: the rule does not match it (no loop);
  * a pipeline points a daemon at the privileged revision (CreateDaemon): with daemon rollout on, the function moves
    the daemon onto the copy, its capacity provider kept; the deployment's outcome event brings the follow-up notice.

Every fact shown is read back from the emulator or the inbox; a problem is counted and fails the demo.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from demo.checks import container_changes
from demo.daemon_sandbox import call_event, cluster_with_provider, deployment_event
from demo.printing import WIDTH
from demo.stage import Demo

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "daemons"
SENSOR_FILE = FIXTURE / "crafted__security-sensor_privileged_register-input.json"
MARKER = "ecs-remediate:source-revision"


def sensor_params() -> dict[str, Any]:
    """The shared fixture when this checkout has it; otherwise the same agent, inline."""
    if SENSOR_FILE.exists():
        params: dict[str, Any] = json.loads(SENSOR_FILE.read_text(encoding="utf-8"))
        return params
    return {
        "family": "security-sensor",
        "pidMode": "shared",
        "ipcMode": "shared",
        "volumes": [{"name": "host-opt", "host": {"sourcePath": "/opt"}}],
        "containerDefinitions": [
            {
                "name": "sensor",
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sensor:7.2",
                "privileged": True,
                "mountPoints": [{"sourceVolume": "host-opt", "containerPath": "/host_opt", "readOnly": True}],
            }
        ],
        "tags": [{"key": "team", "value": "secops"}],
    }


def run_scene(demo: Demo, pattern: dict[str, Any]) -> None:
    s, p, box = demo.p.s, demo.p, demo.sandbox
    ecs = box.client("ecs")
    p.line()
    p.line(s.accent("-- daemons: a security agent asks for privileged mode (ECS Managed Daemons) ").ljust(WIDTH, "-"))
    params = sensor_params()
    arn = str(ecs.register_daemon_task_definition(**params)["daemonTaskDefinitionArn"])
    names = ", ".join(c["name"] for c in params["containerDefinitions"])
    privileged = ", ".join(c["name"] for c in params["containerDefinitions"] if c.get("privileged"))
    p.field("registered", f"{arn}\ncontainers: {names}; privileged: {privileged}")
    event = call_event(box, "RegisterDaemonTaskDefinition", params, {"daemonTaskDefinitionArn": arn})
    if not demo.matches(pattern, event):
        demo.fail("the daemon rule did not match a privileged daemon task definition")
        return
    p.field(
        "EventBridge", s.note("MATCHED") + ": the daemon rule delivers the event to the queue -> queue_handler's batch"
    )
    result = demo.invoke(event)
    if result is None or result.get("outcome") != "remediated":
        demo.fail(f"daemon task definition: expected remediated, got {result}")
        return
    copy_arn = str(result["new_task_definition_arn"])
    p.field("outcome", s.good("REMEDIATED") + f": {result.get('reason', '')}")
    p.field("new revision", s.bold(copy_arn))
    _show_copy(demo, arn, copy_arn)
    _own_registration(demo, pattern, copy_arn)
    _notices(demo, "the registration")

    cluster, provider = cluster_with_provider(box)
    request = {
        "daemonName": "security-sensor",
        "clusterArn": cluster,
        "daemonTaskDefinitionArn": arn,
        "capacityProviderArns": [provider],
    }
    created = ecs.create_daemon(**request)
    daemon_arn = str(created["daemonArn"])
    p.field("CreateDaemon", f"a pipeline deploys the privileged revision: {daemon_arn}")
    result = demo.invoke(call_event(box, "CreateDaemon", request, created))
    running, providers = _daemon(demo, daemon_arn)
    if running != [copy_arn] or providers != [provider]:
        demo.fail(f"the daemon runs {running} on {providers}, expected the copy on {provider}")
        return
    p.field(
        "daemon now",
        s.good("runs " + copy_arn.rsplit("/", 1)[-1]) + f" on its own capacity provider {provider.rsplit('/', 1)[-1]}",
    )
    notes = _notices(demo, "the daemon")
    deployment = next((d["deploymentArn"] for n in notes for d in n.payload.get("daemonsUpdated", [])), None)
    if deployment is None:
        demo.fail("the notice names no daemon deployment")
        return
    demo.invoke(deployment_event(deployment, daemon_arn, "DAEMON_DEPLOYMENT_SUCCESSFUL"))
    _notices(demo, "the deployment's outcome")
    p.line(s.good("  daemon scene OK") + ": copied once, no loop, the daemon moved, three notices")


def _show_copy(demo: Demo, arn: str, copy_arn: str) -> None:
    from ecs_remediate.core.taskdef import default_daemon_register_model

    s, p, ecs = demo.p.s, demo.p, demo.sandbox.client("ecs")
    before = ecs.describe_daemon_task_definition(daemonTaskDefinition=arn)["daemonTaskDefinition"]
    after = ecs.describe_daemon_task_definition(daemonTaskDefinition=copy_arn)["daemonTaskDefinition"]
    changes = container_changes(before["containerDefinitions"], after["containerDefinitions"])
    for i, (name, diffs) in enumerate(changes.items()):
        text = f"container {s.bold(name)}: " + "; ".join(d.replace("-> false", "-> " + s.good("false")) for d in diffs)
        p.field("before/after" if i == 0 else "", text)
    unexpected = [d for diffs in changes.values() for d in diffs if not d.startswith("privileged: true -> false")]
    members = default_daemon_register_model().input_members - {"containerDefinitions", "tags"}
    different = [m for m in sorted(members) if before.get(m) != after.get(m)]
    source_tags = ecs.list_tags_for_resource(resourceArn=arn)["tags"]
    copy_tags = [t for t in ecs.list_tags_for_resource(resourceArn=copy_arn)["tags"] if t["key"] != MARKER]
    if unexpected or different or source_tags != copy_tags or not changes:
        demo.fail(f"not a faithful copy: {unexpected or different or 'tags differ'}")
        return
    compared = sum(1 for m in members if m in before)
    p.field("", f"everything else identical: {compared} other fields and {len(source_tags)} tag(s) compared")


def _own_registration(demo: Demo, pattern: dict[str, Any], copy_arn: str) -> None:
    from ecs_remediate.core.taskdef import default_daemon_register_model

    s, p, ecs = demo.p.s, demo.p, demo.sandbox.client("ecs")
    described = ecs.describe_daemon_task_definition(daemonTaskDefinition=copy_arn)["daemonTaskDefinition"]
    own = {k: v for k, v in described.items() if k in default_daemon_register_model().input_members}
    own["tags"] = ecs.list_tags_for_resource(resourceArn=copy_arn)["tags"]
    event = call_event(demo.sandbox, "RegisterDaemonTaskDefinition", own, {"daemonTaskDefinitionArn": copy_arn})
    if demo.matches(pattern, event):
        demo.fail("the daemon rule matches the remediation's own registration")
        return
    p.field("own event", s.good("not matched") + ": the copy's own registration does not invoke the function")


def _daemon(demo: Demo, daemon_arn: str) -> tuple[list[str], list[str]]:
    ecs = demo.sandbox.client("ecs")
    detail = ecs.describe_daemon(daemonArn=daemon_arn)["daemon"]
    revisions = ecs.describe_daemon_revisions(daemonRevisionArns=[r["arn"] for r in detail["currentRevisions"]])
    providers = [p["arn"] for r in detail["currentRevisions"] for p in r["capacityProviders"]]
    return [r["daemonTaskDefinitionArn"] for r in revisions["daemonRevisions"]], providers


def _notices(demo: Demo, what: str) -> list[Any]:
    """Each notice from the inbox, as the email subscriber reads it (the text the function published)."""
    p = demo.p
    notes = demo.sandbox.inbox()
    if len(notes) != 1:
        demo.fail(f"{what}: expected one notice in the inbox, found {len(notes)}")
    for note in notes:
        p.field("notice", f"for {what}: SNS -> inbox (SQS), outcome={note.attributes.get('outcome')}; the email reads:")
        text = demo.emails.get(note.subject)
        if text is None:
            demo.fail(f"no email text was published for {note.subject!r}")
            continue
        p.email(note.subject, text)
    return notes
