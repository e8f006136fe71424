"""onnxruntime's CPU memory arena on and off: resident memory and inference time per model.

    python -m benchmark arena [--models u2net u2netp] [--runs 20] [--rounds 2]

Each (model, arena) pair runs in its own fresh process, the pairs interleaved round
after round so that a busy machine slows both alike: the process's RSS after loading
the session, after the first run and after ``--runs`` runs on a 320x320 input, its
peak, and the median time per run. ``core.sessions`` keeps the setting that wins
(``CPU_MEM_ARENA``); rerun this on a quiet machine before changing it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

_CHILD = """
import json, sys, time
import numpy as np, onnxruntime as ort
from base.settings import load_settings
from core.sessions import session_options
from models.fetch import ensure_model
from models.registry import get_spec

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) // 1024

model, arena, runs = sys.argv[1], sys.argv[2] == "on", int(sys.argv[3])
settings = load_settings([])
path = ensure_model(get_spec(model), settings.model_home, fetch_missing=False, progress=False)
before = status("VmRSS:")
options = session_options(settings)
options.enable_cpu_mem_arena = arena
session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
loaded = status("VmRSS:")
shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
x = np.random.default_rng(0).random(shape, dtype=np.float32)
feed, out = {session.get_inputs()[0].name: x}, [session.get_outputs()[0].name]
session.run(out, feed)
first = status("VmRSS:")
times = []
for _ in range(runs):
    t = time.perf_counter()
    session.run(out, feed)
    times.append((time.perf_counter() - t) * 1000)
print(json.dumps({"load_mib": loaded - before, "after_first_mib": first, "after_runs_mib": status("VmRSS:"),
                  "peak_mib": status("VmHWM:"), "times_ms": times}))
"""


def measure(model: str, arena: bool, runs: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, model, "on" if arena else "off", str(runs)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark arena", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["u2net", "u2netp"])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    results: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for _ in range(args.rounds):
        for model in args.models:
            for arena in (True, False):
                results.setdefault((model, arena), []).append(measure(model, arena, args.runs))
    print("| model | arena | RSS after load | after 1st run | after runs | peak | median ms/run |")
    print("|---|---|---|---|---|---|---|")
    for (model, arena), rounds in results.items():
        times = [t for r in rounds for t in r["times_ms"]]

        def mib(key: str, rounds: list[dict[str, Any]] = rounds) -> str:
            return f"{max(r[key] for r in rounds)} MiB"

        print(
            f"| {model} | {'on' if arena else 'off'} | +{max(r['load_mib'] for r in rounds)} MiB | "
            f"{mib('after_first_mib')} | {mib('after_runs_mib')} | {mib('peak_mib')} | "
            f"{statistics.median(times):.0f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
