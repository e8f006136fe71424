"""How much of the accelerator the service uses: ``python -m benchmark gpu``.

One script for a GPU machine (it finishes in a few minutes) that also runs on a CPU,
where it measures the CPU provider and says that no GPU figure could be taken:

* one request's stages, 1080p and 4K JPEG -> PNG;
* the network alone, at batch 1 and at the session's largest batch (images/s), the
  ceiling the pipeline is measured against;
* throughput through ``Engine.remove`` at 1-32 concurrent callers, with the mean
  batch, latency p50/p95 and the accelerator's busy fraction (``nvidia-smi``
  utilisation, sampled every 100 ms);
* the same through REST (the real server, HTTP clients);
* pipeline efficiency: the best end-to-end images/s divided by the batched network's;
* batching off against on, TF32 against FP32 and u2net-fp16 against u2net at the
  most callers (where each applies);
* GPU memory per batch size and at the end.

    python -m benchmark gpu [--model u2net] [--seconds 5] [--clients 1,2,4,8,16,32] [--json OUT]

The report's ``throughput`` rows feed ``python -m benchmark cost --gpu-json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from base.providers import PROVIDERS
from base.settings import Settings, load_settings
from base.timing import Clock, percentiles
from benchmark.concurrency import callers, timed
from benchmark.matrix import machine_info
from benchmark.photos import test_jpeg
from benchmark.server import launch_server, stop_server
from core import Engine, RemovalOptions
from core.providers import resolve
from core.sessions import gpu_memory_mb
from models.fetch import status
from models.registry import MODELS

DEFAULT_CLIENTS = (1, 2, 4, 8, 16, 32)
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
#: What the GPU pipeline was built to reach on one H200 with 16 cores, 1080p JPEG -> PNG; ``targets`` says
#: which a run met.
TARGETS = {"engine_ips": 150.0, "rest_ips": 100.0, "one_request_ms": 40.0, "4k_ms": 120.0, "gpu_busy": 0.5}


class BusySampler:
    """The GPU's utilisation (percent of time a kernel ran), sampled by ``nvidia-smi`` while in use."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BusySampler:
        try:
            self._process = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "100"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        except OSError:
            return self
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            try:
                self.samples.append(float(line.split(",")[0]) / 100)
            except ValueError:
                continue

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=5)

    @property
    def busy(self) -> float | None:
        return round(statistics.fmean(self.samples), 3) if self.samples else None


def load_engine(settings: Settings, model: str, provider: str) -> tuple[Engine, float]:
    """An engine with ``model`` loaded (batch sizes warmed) on ``provider``, and the load time (s)."""
    engine = Engine(settings)
    clock = Clock()
    engine.sessions.get(model, provider)
    return engine, clock.elapsed_s()


def stages(engine: Engine, data: bytes, options: RemovalOptions, runs: int) -> dict[str, float]:
    for _ in range(2):
        engine.remove(data, options)
    timings = [engine.remove(data, options).timings for _ in range(runs)]
    return {k: round(statistics.median(t[k] for t in timings), 1) for k in timings[0]}


def raw_network(engine: Engine, model: str, provider: str, runs: int) -> dict[str, Any]:
    """The network alone at batch 1 and at the largest batch the session runs."""
    session = engine.sessions.get(model, provider)
    largest = session.batcher.largest if session.batcher else (8 if session.batched else 1)
    out: dict[str, Any] = {}
    for size in sorted({1, largest}):
        batch = np.zeros((size, 3, session.spec.input_size, session.spec.input_size), np.float32)
        session.run(batch)
        times = []
        for _ in range(runs):
            clock = Clock()
            session.run(batch)
            times.append(clock.elapsed_s())
        ms = statistics.median(times) * 1000
        out[f"batch_{size}"] = {"ms": round(ms, 2), "images_per_second": round(size / ms * 1000, 1)}
    return out


def concurrent(call: Callable[[], float], clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads calling ``call`` (which returns its latency, ms) for ``seconds``."""
    with BusySampler() as sampler:
        latencies, elapsed = callers(call, clients, seconds=seconds)
    return {
        "clients": clients,
        "images": len(latencies),
        "images_per_second": round(len(latencies) / elapsed, 2),
        "latency_ms": percentiles(latencies),
        "gpu_busy": sampler.busy,
    }


def engine_throughput(
    engine: Engine, data: bytes, options: RemovalOptions, clients: list[int], seconds: float
) -> list[dict[str, Any]]:
    session = engine.sessions.get(options.model or "", options.provider or "")
    rows = []
    for n in clients:
        before = dataclasses.replace(session.batcher.stats) if session.batcher else None

        row = concurrent(timed(lambda: engine.remove(data, options)), n, seconds)
        if session.batcher and before is not None:
            calls = session.batcher.stats.calls - before.calls
            row["mean_batch"] = round((session.batcher.stats.images - before.images) / calls, 2) if calls else None
        rows.append({"via": "engine", "provider": session.provider, "model": session.spec.name, **row})
    return rows


def rest_throughput(
    data: bytes, model: str, provider: str, clients: list[int], seconds: float, flags: list[str]
) -> list[dict[str, Any]]:
    """The real server on a free port, ``n`` HTTP clients posting the image."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as folder:
        server = launch_server(Path(folder), "--default-model", model, "--default-provider", provider, *flags)
        try:
            with httpx.Client(base_url=server.url, timeout=120) as warm:
                warm.post("/api/remove", files={"file": ("a.jpg", data)}).raise_for_status()
            local = threading.local()

            def post() -> None:
                http = getattr(local, "http", None)
                if http is None:
                    http = local.http = httpx.Client(base_url=server.url, timeout=120)
                http.post("/api/remove", files={"file": ("a.jpg", data)}).raise_for_status()

            for n in clients:
                rows.append(
                    {"via": "rest", "provider": provider, "model": model, **concurrent(timed(post), n, seconds)}
                )
        finally:
            stop_server(server)
    return rows


@contextmanager
def _section(name: str, log: list[str]) -> Iterator[None]:
    clock = Clock()
    print(f"... {name}", flush=True)
    yield
    log.append(f"{name}: {clock.elapsed_s():.1f} s")


def run(model: str, clients: list[int], seconds: float, rest: bool, provider: str = "auto") -> dict[str, Any]:
    chosen = resolve(provider)[0]
    gpu = PROVIDERS[chosen].gpu
    settings = load_settings([])
    notes: list[str] = []
    durations: list[str] = []
    if not gpu:
        notes.append(f"no GPU provider can run here: measured on {chosen}; no GPU figure could be taken")
    report: dict[str, Any] = {
        "machine": machine_info(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "provider": chosen,
        "model": model,
        "settings": {k: getattr(settings, k) for k in ("processing", "batching", "batch_window_ms", "max_batch",
                                                        "gpu_memory_mb", "gpu_precision")},
        "notes": notes,
    }  # fmt: skip
    options = RemovalOptions(model=model, provider=chosen)
    images = {size: test_jpeg(size) for size in ("1080p", "4K")}
    with _section("load", durations):
        engine, load_s = load_engine(settings, model, chosen)
    session = engine.sessions.get(model, chosen)
    report["session"] = session.describe() | {"load_s": round(load_s, 1)}
    with _section("one request", durations):
        report["one_request_ms"] = {size: stages(engine, data, options, 10) for size, data in images.items()}
    with _section("network alone", durations):
        report["raw_network"] = raw_network(engine, model, chosen, 20)
    with _section("engine throughput", durations):
        throughput = engine_throughput(engine, images["1080p"], options, clients, seconds)
    most = max(clients)
    comparisons: dict[str, Any] = {}
    # Batching against none: on a GPU it is on by default, so the other way is "off"; on a CPU
    # it is off by default, and this row is the measurement that keeps it so.
    other = "off" if session.batcher is not None else "on"
    with _section(f"batching {other}", durations):
        flipped, _ = load_engine(dataclasses.replace(settings, batching=other), model, chosen)
        comparisons[f"batching_{other}"] = engine_throughput(flipped, images["1080p"], options, [most], seconds)[0]
        del flipped
    if gpu:
        with _section("tf32", durations):
            tf32, _ = load_engine(dataclasses.replace(settings, gpu_precision="tf32"), model, chosen)
            comparisons["tf32"] = engine_throughput(tf32, images["1080p"], options, [most], seconds)[0]
            del tf32
        if model == "u2net" and status(MODELS["u2net-fp16"], settings.model_home).verified:
            with _section("u2net-fp16", durations):
                fp16, _ = load_engine(settings, "u2net-fp16", chosen)
                fp16_options = dataclasses.replace(options, model="u2net-fp16")
                comparisons["u2net-fp16"] = engine_throughput(fp16, images["1080p"], fp16_options, [most], seconds)[0]
                del fp16
    report["comparisons"] = comparisons
    if rest:
        with _section("REST throughput", durations):
            rest_clients = sorted({1, min(8, most), most})
            throughput += rest_throughput(images["1080p"], model, chosen, rest_clients, seconds, [])
    report["throughput"] = throughput
    best_engine = max(r["images_per_second"] for r in throughput if r["via"] == "engine")
    ceiling = max(v["images_per_second"] for v in report["raw_network"].values())
    report["pipeline_efficiency"] = round(best_engine / ceiling, 3)
    report["gpu_memory_mb_at_end"] = gpu_memory_mb()
    report["durations"] = durations
    report["targets"] = targets(report) if gpu else None
    return report


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """The H200 targets (``TARGETS``) against what was measured."""
    engine = max((r for r in report["throughput"] if r["via"] == "engine"), key=lambda r: r["images_per_second"])
    rest = [r["images_per_second"] for r in report["throughput"] if r["via"] == "rest"]
    got = {
        "engine_ips": engine["images_per_second"],
        "rest_ips": max(rest) if rest else None,
        "one_request_ms": report["one_request_ms"]["1080p"]["total"],
        "4k_ms": report["one_request_ms"]["4K"]["total"],
        "gpu_busy": engine["gpu_busy"],
    }
    higher = {"engine_ips", "rest_ips", "gpu_busy"}
    return {
        name: {
            "target": goal,
            "measured": got[name],
            "met": None if got[name] is None else (got[name] >= goal if name in higher else got[name] <= goal),
        }
        for name, goal in TARGETS.items()
    }


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def table(report: dict[str, Any]) -> str:
    lines = [f"{report['model']} on {report['provider']} ({report['machine'].get('gpu') or report['machine']['cpu']})"]
    for size, t in report["one_request_ms"].items():
        lines.append(f"one request {size}: " + ", ".join(f"{k} {v}" for k, v in t.items()))
    for size, r in report["raw_network"].items():
        lines.append(f"network alone {size}: {r['ms']} ms, {r['images_per_second']} img/s")
    lines += [
        "",
        "| via | clients | images/s | p50 ms | p95 ms | mean batch | GPU busy |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["throughput"]:
        lines.append(
            f"| {r['via']} | {r['clients']} | {r['images_per_second']} | {r['latency_ms']['p50']} | "
            f"{r['latency_ms']['p95']} | {r.get('mean_batch', '-')} | {_or_dash(r['gpu_busy'])} |"
        )
    for name, r in report["comparisons"].items():
        lines.append(f"{name}: {r['images_per_second']} img/s at {r['clients']} clients")
    lines.append(f"pipeline efficiency: {report['pipeline_efficiency']} (best end-to-end / batched network alone)")
    lines.append(
        f"GPU memory: {report['session'].get('gpu_memory_mb_by_batch', '-')} by batch size; "
        f"at the end {_or_dash(report['gpu_memory_mb_at_end'])}"
    )
    if report["targets"]:
        lines += [
            f"target {k}: {v['measured']} vs {v['target']} -> {'met' if v['met'] else 'NOT met'}"
            for k, v in report["targets"].items()
        ]
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="u2net")
    parser.add_argument("--provider", default="auto", help="auto (the best that runs), cuda, cpu ...")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per throughput row (default 5)")
    parser.add_argument("--clients", help="comma-separated caller counts (default 1,2,4,8,16,32)")
    parser.add_argument("--no-rest", dest="rest", action="store_false", help="skip the REST rows")
    parser.add_argument("--json", type=Path, help=f"where to write the report (default {DEFAULT_OUT}/gpu.json)")
    args = parser.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")] if args.clients else list(DEFAULT_CLIENTS)
    report = run(args.model, clients, args.seconds, args.rest, args.provider)
    out = args.json or DEFAULT_OUT / "gpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
