"""onnxruntime's CPU memory arena, three ways: resident memory and CPU time per inference.

    python -m benchmark arena [--models u2net u2netp] [--runs 8] [--rounds 2]

Each way runs in its own fresh process, the ways interleaved round after round so that a
busy machine slows them alike. A process loads every model of ``--models`` (as a server
serving them all does), runs each ``--runs`` times on one 320x320 image and then once on
a batch of 6 where a model takes batches, and reports its RSS after loading, after the
single runs and after the batch, and the median CPU time and page faults of a run. The
ways (``core.sessions.CPU_ARENA``): ``shared``, one arena for the process that gives back
what a larger run took; ``session``, onnxruntime's default arena per session; ``off``.
CPU time rather than wall time: it is what a run costs the machine, and less noisy where
other work shares the cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

_CHILD = """
import json, resource, sys
import numpy as np, onnxruntime as ort
from base.settings import load_settings
from core import sessions
from models.fetch import ensure_model
from models.registry import get_spec

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

mode, runs, models = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
sessions.CPU_ARENA = mode
settings = load_settings([])
before = rss()
loaded = {}
for model in models:
    path = ensure_model(get_spec(model), settings.model_home, fetch_missing=False, progress=False)
    loaded[model] = ort.InferenceSession(str(path), sess_options=sessions.session_options(settings),
                                         providers=["CPUExecutionProvider"])
after_load = rss()
x = np.random.default_rng(0).random((1, 3, 320, 320), dtype=np.float32)
cpu, faults = {m: [] for m in models}, {m: [] for m in models}
for _ in range(runs):
    for model, session in loaded.items():
        feed, out = {session.get_inputs()[0].name: x}, [session.get_outputs()[0].name]
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        session.run(out, feed)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu[model].append((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000)
        faults[model].append(r1.ru_minflt - r0.ru_minflt)
after_runs = rss()
for model, session in loaded.items():
    if not isinstance(session.get_inputs()[0].shape[0], int):
        batch = np.concatenate([x] * 6)
        options = sessions._shrink_after() if mode == "shared" else None  # as ModelSession.run does
        session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: batch}, options)
print(json.dumps({"load_mib": after_load - before, "after_runs_mib": after_runs, "after_batch_mib": rss(),
                  "cpu_ms": cpu, "faults": faults}))
"""
MODES = ("shared", "session", "off")


def measure(mode: str, runs: int, models: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(runs), *models], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark arena", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["u2net", "u2netp", "u2net-dynamic"])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            results[mode].append(measure(mode, args.runs, args.models))
    header = " | ".join(f"{m} CPU ms/run" for m in args.models)
    print(f"| arena | RSS after loading {', '.join(args.models)} | after the runs | after a batch of 6 | {header} |")
    print("|---|---|---|---|" + "---|" * len(args.models))
    for mode, rounds in results.items():
        cpu = " | ".join(
            f"{statistics.median(t for r in rounds for t in r['cpu_ms'][m]):.0f} "
            f"({statistics.median(f for r in rounds for f in r['faults'][m]):.0f} faults)"
            for m in args.models
        )
        print(
            f"| {mode} | +{max(r['load_mib'] for r in rounds)} MiB | {max(r['after_runs_mib'] for r in rounds)} MiB | "
            f"{max(r['after_batch_mib'] for r in rounds)} MiB | {cpu} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
