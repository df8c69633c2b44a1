"""Hub benchmarks (issue 11): the organization hub's function as ratios to the single-account function's, both
measured in the same run, the same way (bench/handler.py's canned answers, over a zero-latency transport:
bench/hub_cold.py).

  python -m bench.hub [--rounds 5] [--events 300] [--cold 15]

(a) per event, warm: the same remediation (largest fixture: describe, register, read back, notify) through the
    single-account handler and through the hub's (a member's event: its Remediator, member-role credentials and
    clients cached, the account's name cached). Worker processes alternate, one per mode per round; the medians of
    the rounds' medians. Whole invocation (CPU time of the calling thread, botocore's work included) and the
    handler's own work (wall time outside the AWS calls, as bench/handler.py reports it).  [target <= 1.1x]
    Also instructions per warm event by valgrind's callgrind when installed (repeatable on a shared machine).
(b) cold start, CPU time of fresh interpreters, interleaved, best of N: through the first event (import, build, one
    remediation: the hub assumes the member role and builds that account's clients then; with the account's name
    already in the hub's table, and for an account never seen) and to handler-ready; instructions by callgrind
    when installed.  [target <= 1.1x]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.handler import instructions, time_fresh
from bench.hub_cold import MODES, environment

ROOT = Path(__file__).resolve().parent.parent
WARM_MODES = ("single", "hub")  # warm, the account's name is in memory either way
PYTHONPATH = {"PYTHONPATH": f"{ROOT / 'lambda'}:{ROOT}"}


def per_event_worker(mode: str, events: int) -> dict[str, float]:
    """In this process: `events` warm invocations of `mode` (after 20 to warm up)."""
    from botocore.client import BaseClient

    from bench.hub_cold import Context, event, install_transport, ready

    install_transport(mode)
    import ecs_remediate.functions.handler as handler

    ready(mode)
    in_aws = [0.0]
    make_api_call = BaseClient._make_api_call

    def timed_api_call(self: Any, operation: str, params: Any) -> Any:
        started = time.perf_counter()
        try:
            return make_api_call(self, operation, params)
        finally:
            in_aws[0] += time.perf_counter() - started

    BaseClient._make_api_call = timed_api_call  # type: ignore[method-assign]
    delivered, context = event(mode), Context()
    devnull, real = open(os.devnull, "w"), sys.stdout  # noqa: SIM115 - Powertools prints EMF to stdout
    cpu, own = [0.0], [0.0]
    for n in range(20 + events):
        in_aws[0] = 0.0
        sys.stdout = devnull
        wall, thread = time.perf_counter(), time.thread_time()
        try:
            out = handler.lambda_handler(delivered, context)  # type: ignore[arg-type]
        finally:
            sys.stdout = real
        thread, wall = time.thread_time() - thread, time.perf_counter() - wall
        assert out["outcome"] == "remediated", out
        if n >= 20:
            cpu.append(thread * 1000)
            own.append((wall - in_aws[0]) * 1000)
    return {"cpu_ms": statistics.median(cpu[1:] or cpu), "own_ms": statistics.median(own[1:] or own)}


def per_event(rounds: int, events: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[dict[str, float]]] = {mode: [] for mode in WARM_MODES}
    for round_ in range(rounds):
        for mode in WARM_MODES if round_ % 2 == 0 else reversed(WARM_MODES):  # alternate who runs first
            env = {**os.environ, **environment(mode), **PYTHONPATH}
            done = subprocess.run(
                [sys.executable, "-m", "bench.hub", "--worker", mode, "--events", str(events)],
                env=env,
                cwd=ROOT,
                check=True,
                capture_output=True,
                text=True,
            )
            samples[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {mode: {key: statistics.median(s[key] for s in runs) for key in runs[0]} for mode, runs in samples.items()}


WARM_EVENTS = "from bench.hub import per_event_worker; per_event_worker({mode!r}, {events})"


def per_event_instructions(events: int) -> dict[str, float]:
    """Instructions per warm event (valgrind's callgrind, repeatable): a worker that handles 20 + `events` events
    minus one that handles the 20 warm-up events only. {} without valgrind."""
    figures: dict[str, float] = {}
    for mode in WARM_MODES:
        env = {**environment(mode), **PYTHONPATH}
        counted = [instructions(WARM_EVENTS.format(mode=mode, events=n), env) for n in (0, events)]
        if counted[0] and counted[1]:
            figures[mode] = (counted[1] - counted[0]) / events
    return figures


FIRST_EVENT = "from bench.hub_cold import first_event; first_event({mode!r})"
READY = "from bench.hub_cold import ready; ready({mode!r})"


def cold(runs: int) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {mode: {} for mode in MODES}
    for name, code, modes in (("first_event", FIRST_EVENT, MODES), ("ready", READY, WARM_MODES)):
        seconds: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(runs):  # interleaved: load from other processes hits every mode alike
            for mode in modes:
                env = {**environment(mode), **PYTHONPATH}
                seconds[mode] += time_fresh(code.format(mode=mode), 1, env)
        for mode in modes:
            figures[mode][f"{name}_ms"] = min(seconds[mode]) * 1000
            counted = instructions(code.format(mode=mode), {**environment(mode), **PYTHONPATH})
            if counted:
                figures[mode][f"{name}_instructions"] = float(counted)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hub", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--cold", type=int, default=15, help="fresh interpreters per mode and measure")
    parser.add_argument(
        "--instruction-events", type=int, default=40, help="warm events counted under valgrind (0: skip)"
    )
    parser.add_argument("--worker", choices=WARM_MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(per_event_worker(args.worker, args.events)))
        return 0
    warm = per_event(args.rounds, args.events)
    counted = per_event_instructions(args.instruction_events) if args.instruction_events else {}
    start = cold(args.cold)
    single, hub = warm["single"], warm["hub"]
    print(f"Hub benchmark (python {sys.version.split()[0]}); single-account function = 1.00x, same run")
    print(
        f"(a) per event, warm, {args.rounds} rounds x {args.events} events: whole invocation (CPU) "
        f"{hub['cpu_ms']:.2f} ms vs {single['cpu_ms']:.2f} ms: {hub['cpu_ms'] / single['cpu_ms']:.3f}x; "
        f"handler's own work {hub['own_ms']:.2f} ms vs {single['own_ms']:.2f} ms: "
        f"{hub['own_ms'] / single['own_ms']:.3f}x  [target <= 1.1x]"
    )
    if len(counted) == len(WARM_MODES):
        print(
            f"    instructions per warm event (valgrind callgrind, repeatable): {counted['hub'] / 1e6:.1f} M vs "
            f"{counted['single'] / 1e6:.1f} M: {counted['hub'] / counted['single']:.3f}x"
        )
    for mode, name, what in (
        ("hub", "first_event", "through the first event (the account's name in the hub's table)"),
        ("hub-new", "first_event", "through the first event (an account never seen: Organizations asked)"),
        ("hub", "ready", "to handler-ready"),
    ):
        h, s = start[mode], start["single"]
        line = (
            f"(b) cold start {what}: {h[f'{name}_ms']:.0f} ms vs {s[f'{name}_ms']:.0f} ms (CPU, best of "
            f"{args.cold}): {h[f'{name}_ms'] / s[f'{name}_ms']:.3f}x"
        )
        if f"{name}_instructions" in h and f"{name}_instructions" in s:
            ratio = h[f"{name}_instructions"] / s[f"{name}_instructions"]
            line += (
                f"; instructions {h[f'{name}_instructions'] / 1e9:.3f} G vs "
                f"{s[f'{name}_instructions'] / 1e9:.3f} G: {ratio:.3f}x"
            )
        print(line + "  [target <= 1.1x]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
