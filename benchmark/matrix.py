"""The benchmark matrix: providers x models x sizes x formats, throughput, memory, cold start.

Everything is measured in this process through the same ``Engine`` (and so the
same serialised sessions) the app uses, with the rembg path measured in the same
run as the baseline every row is compared against. Pure functions returning
JSON-ready dicts: the CLI (``python -m benchmark``) and the WebUI's Benchmark tab
both call ``run``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from base.assets import EVAL_PHOTOS, photo
from base.cpu import cpu_info
from base.providers import PROVIDERS
from base.timing import STAGES, Clock, percentiles
from benchmark.concurrency import callers, timed
from benchmark.photos import SIZES, test_jpeg
from core import Engine, RemovalError, RemovalOptions, available_providers
from core.quality import agreement
from models import measured
from models.registry import MODELS

ROOT = Path(__file__).resolve().parent.parent
#: The engine's stages and their sum, as a result's timings hold them.
TIMED = (*STAGES, "total")
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Plan:
    models: tuple[str, ...]
    sizes: tuple[str, ...]
    formats: tuple[str, ...]
    runs: int
    warmup: int = 1
    concurrency: tuple[int, ...] = (1, 2, 4)
    throughput_requests: int = 8
    cold_start: bool = True
    baseline: bool = True
    #: Each model's masks against u2net's on the evaluation photos (the speed/quality table).
    quality: bool = True
    providers: tuple[str, ...] = field(default_factory=tuple)  # empty: every provider that can run


QUICK = Plan(
    models=("u2net", "u2netp", "u2net-int8"),
    sizes=("1080p",),
    formats=("png",),
    runs=3,
    concurrency=(1, 2),
    throughput_requests=4,
)
FULL = Plan(models=("u2net", "u2netp", "u2net-int8"), sizes=tuple(SIZES), formats=("png", "webp", "jpeg"), runs=5)


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = cpu_info()
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        mem_gb = None
    return {
        "cpu": cpu.model,
        "physical_cores": cpu.physical_cores,
        "logical_cpus": os.cpu_count(),
        "instruction_sets": cpu.reported_flags(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "onnxruntime": ort.__version__,
        "onnxruntime_device": ort.get_device(),
        "providers": [p.to_dict() for p in available_providers()],
        "gpu": _gpu_name(),
    }


def _gpu_name() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


#: Measured on GPU providers only: fp16 and batching pay off on a GPU, not on a CPU.
GPU_MODELS = ("u2net-fp16", "u2net-dynamic")
#: Providers whose precision=fast gets rows of its own (what ``python -m models tune`` chose there).
CPU_RUNTIMES = ("cpu", "openvino")


def _runnable_models(names: tuple[str, ...], engine: Engine, notes: list[str]) -> list[str]:
    from models.fetch import status

    runnable = []
    for name in names:
        spec = MODELS.get(name)
        if spec is None:
            notes.append(f"{name}: not in the registry here")
        elif not status(spec, engine.settings.model_home).verified:
            notes.append(f"{name}: not present (python -m models {'build' if spec.build else 'fetch'} {name})")
        else:
            runnable.append(name)
    return runnable


def _add_vs_rembg(rows: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> None:
    """Give each row rembg's p50 for its size over its own: a variant is compared with its base's baseline."""
    by_key = {(b["model"], b["size"]): b["total_ms"]["p50"] for b in baseline}
    for row in rows:
        base = MODELS[row["model"]].build
        ref = by_key.get((base.base if base else row["model"], row["size"]))
        row["vs_rembg"] = round(ref / row["stages_ms"]["total"]["p50"], 2) if ref else None


def _gpu_models(providers: list[str], engine: Engine, notes: list[str]) -> list[str]:
    """The GPU variants to time where a GPU provider runs, else none (and ``notes`` say so)."""
    if any(PROVIDERS[p].gpu for p in providers):
        return _runnable_models(GPU_MODELS, engine, notes)
    notes.append("no GPU here: GPU rows come from a saved benchmark JSON (python -m benchmark cost --gpu-json)")
    notes.append(f"{', '.join(GPU_MODELS)}: GPU variants, measured only where a GPU provider runs (none here)")
    return []


def _cells(plan: Plan, per_provider: dict[str, list[str]]) -> list[tuple[str, str, str, str, str]]:
    """(provider, model, size, format, precision) of every timed row."""
    cells = [
        (p, m, s, f, "exact") for p, ms in per_provider.items() for m in ms for s in plan.sizes for f in plan.formats
    ]
    # precision=fast on each CPU runtime: a row where tune chose another build or precision there.
    cells += [
        (p, m, s, f, "fast")
        for p, ms in per_provider.items()
        if p in CPU_RUNTIMES
        for m in ms
        if MODELS[m].build is None
        for s in plan.sizes
        for f in plan.formats
    ]
    return cells


def run(plan: Plan, engine: Engine, progress: Progress | None = None) -> dict[str, Any]:
    """Measure the plan; returns the JSON-ready report."""
    report_progress = progress or (lambda fraction, what: None)
    notes: list[str] = []
    providers = list(plan.providers) or [p.name for p in available_providers() if p.available]
    models = _runnable_models(plan.models, engine, notes)
    gpu_models = _gpu_models(providers, engine, notes)
    images = {size: test_jpeg(size) for size in plan.sizes}
    per_provider = {p: models + (gpu_models if PROVIDERS[p].gpu else []) for p in providers}
    cells = _cells(plan, per_provider)
    baseline_models = [m for m in models if m in ("u2net", "u2netp")] if plan.baseline else []
    steps = (
        len(cells)
        + len(baseline_models) * len(plan.sizes)
        + sum(len(ms) for ms in per_provider.values())
        + (len(models) if plan.cold_start else 0)
        + (len(providers) if plan.quality else 0)
    )
    done = 0

    def step(what: str) -> None:
        nonlocal done
        done += 1
        report_progress(done / max(steps, 1), what)

    rows: list[dict[str, Any]] = []
    for provider, model, size, fmt, word in cells:
        opts = RemovalOptions(model=model, provider=provider, output_format=fmt, precision=word)
        if word == "fast" and engine.choose(opts).note:
            step(f"{provider} {model} {size} {fmt} fast: runs exact here")  # the exact row has it
            continue
        try:
            results = [engine.remove(images[size], opts) for _ in range(plan.warmup + plan.runs)]
        except RemovalError as exc:
            notes.append(f"{provider}/{model}: {exc.message}")
            step(f"{provider} {model} {size} {fmt}: skipped")
            continue
        measured = [r.timings for r in results[plan.warmup :]]
        rows.append(
            {
                "provider": provider, "model": model, "size": size, "format": fmt,
                "asked": word, "backend": results[-1].backend, "precision": results[-1].precision,
                "weights": results[-1].model,
                "stages_ms": {stage: percentiles([t[stage] for t in measured]) for stage in TIMED},
            }
        )  # fmt: skip
        step(f"{provider} {model} {size} {fmt} {word}")

    baseline: list[dict[str, Any]] = []
    for model in baseline_models:
        for size in plan.sizes:
            baseline.append({"model": model, "size": size, "total_ms": _rembg_baseline(model, images[size], plan)})
            step(f"rembg {model} {size}")
    _add_vs_rembg(rows, baseline)

    throughput = []
    size = "1080p" if "1080p" in images else plan.sizes[0]
    for provider in providers:
        for model in per_provider[provider]:
            for word in _precisions(engine, provider, model):
                for clients in plan.concurrency:
                    throughput.append(
                        _throughput(engine, images[size], model, provider, clients, plan.throughput_requests, word)
                    )
            step(f"throughput {provider} {model}")

    cold = []
    if plan.cold_start:
        for model in models:
            cold.append(cold_start(model, providers[0], engine.settings.model_home))
            step(f"cold start {model}")

    quality = []
    if plan.quality:
        for provider in providers:
            quality += speed_and_quality(engine, provider, per_provider[provider], rows)
            step(f"quality {provider}")

    return {
        "machine": machine_info(),
        "plan": asdict(plan),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "rows": rows,
        "rembg_baseline": baseline,
        "throughput": throughput,
        "cold_start": cold,
        "quality": quality,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "notes": notes,
    }


def speed_and_quality(
    engine: Engine, provider: str, models: list[str], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each model's alpha MAE and IoU against u2net on the evaluation photos, beside its inference time.

    The masks come from the engine on ``provider``, as a request gets them. The figures
    are also kept beside the weights (``models.measured``) for the model menu,
    ``python -m models list`` and ``/healthz``.
    """
    if "u2net" not in models:
        return []
    photos = {name: photo(name).read_bytes() for name in EVAL_PHOTOS}
    reference = {
        n: np.asarray(engine.remove(d, RemovalOptions(model="u2net", provider=provider)).mask)
        for n, d in photos.items()
    }
    inference = {
        r["model"]: r["stages_ms"]["inference"]["p50"]
        for r in rows
        if r["provider"] == provider and r["size"] == "1080p" and r.get("asked", "exact") == "exact"
    }
    out: list[dict[str, Any]] = []
    for model in models:
        if model == "u2net-dynamic":
            continue  # u2net's weights, batched: the same masks
        agreements = []
        for name, data in photos.items():
            mask = np.asarray(engine.remove(data, RemovalOptions(model=model, provider=provider)).mask)
            agreements.append((name, agreement(mask, reference[name])))
        worst = min(agreements, key=lambda item: item[1].iou)
        out.append(
            {
                "provider": provider,
                "model": model,
                "inference_ms": inference.get(model),
                "alpha_mae": round(statistics.fmean(a.mae for _, a in agreements), 3),
                "iou": round(statistics.fmean(a.iou for _, a in agreements), 4),
                "worst_iou": round(worst[1].iou, 4),
                "worst_photo": worst[0],
            }
        )
    measured.record(
        engine.settings.model_home,
        provider,
        {q["model"]: {"inference_ms": q["inference_ms"], "alpha_mae": q["alpha_mae"], "iou": q["iou"]} for q in out},
        source="python -m benchmark",
    )
    return out


def _rembg_baseline(model: str, data: bytes, plan: Plan) -> dict[str, float]:
    """``rembg.remove()`` on bytes (decode, its pipeline, Pillow's default PNG save)."""
    from rembg import new_session, remove

    session = new_session(model, providers=["CPUExecutionProvider"])
    times = []
    for i in range(plan.warmup + plan.runs):
        clock = Clock()
        remove(data, session=session)
        if i >= plan.warmup:
            times.append(clock.elapsed_ms())
    return percentiles(times)


def _precisions(engine: Engine, provider: str, model: str) -> list[str]:
    """``exact``, and ``fast`` where tune chose another build or precision for it on this CPU runtime."""
    if provider not in CPU_RUNTIMES or MODELS[model].build is not None:
        return ["exact"]
    fast = engine.choose(RemovalOptions(model=model, provider=provider, precision="fast"))
    return ["exact"] if fast.note else ["exact", "fast"]


def _throughput(
    engine: Engine, data: bytes, model: str, provider: str, clients: int, requests: int, precision: str = "exact"
) -> dict[str, Any]:
    """``clients`` threads sharing the app's sessions, ``requests`` images each, at ``precision``."""
    opts = RemovalOptions(model=model, provider=provider, precision=precision)
    engine.remove(data, opts)  # loaded and warm
    latencies, elapsed = callers(timed(lambda: engine.remove(data, opts)), clients, requests=requests)
    return {
        "provider": provider, "model": model, "clients": clients, "precision": precision,
        "images_per_second": round(len(latencies) / elapsed, 3),
        "latency_ms": percentiles(latencies),
    }  # fmt: skip


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec.
# GPU memory: what nvidia-smi says this process holds after the first result; onnxruntime's
# arena keeps what it allocated, so that is the session's footprint.
COLD_START_SCRIPT = """
import json, os, subprocess, sys
from core import Engine, RemovalOptions, load_settings
engine = Engine(load_settings(["--model-home", sys.argv[3]]))
engine.remove(sys.argv[4], RemovalOptions(model=sys.argv[1], provider=sys.argv[2]))
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
out = {"peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024}
if sys.argv[2] != "cpu":
    try:
        apps = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10,
        ).stdout
        used = [float(m) for p, m in (line.split(",") for line in apps.splitlines() if "," in line)
                if int(p) == os.getpid()]
        if used:
            out["gpu_memory_mb"] = sum(used)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
print(json.dumps(out))
"""


def cold_start(model: str, provider: str, model_home: Path) -> dict[str, Any]:
    """A new process: start to first result, and its peak RSS."""
    clock = Clock()
    out = subprocess.run(
        [sys.executable, "-c", COLD_START_SCRIPT, model, provider, str(model_home), str(photo("car-1.jpg"))],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    elapsed = clock.elapsed_ms()
    if out.returncode != 0:
        return {"model": model, "provider": provider, "error": out.stderr.strip().splitlines()[-1:]}
    memory = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "model": model,
        "provider": provider,
        "first_result_ms": round(elapsed),
        **{key: round(value, 1) for key, value in memory.items()},
    }


def table(report: dict[str, Any]) -> str:
    """The report as a plain-text table (terminal, README)."""
    lines = [
        "| provider | model | precision | size | format | decode | pre | inference | post | encode | total p50 "
        "| total p95 | vs rembg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        s = r["stages_ms"]
        ran = f"{r.get('asked', 'exact')}: {r.get('backend', r['provider'])} {r.get('precision', '')}".strip()
        if r.get("weights", r["model"]) != r["model"]:
            ran += f" ({r['weights']})"
        lines.append(
            f"| {r['provider']} | {r['model']} | {ran} | {r['size']} | {r['format']} | {s['decode']['p50']} | "
            f"{s['preprocess']['p50']} | {s['inference']['p50']} | {s['postprocess']['p50']} | {s['encode']['p50']} | "
            f"{s['total']['p50']} | {s['total']['p95']} | {r['vs_rembg'] or '-'}x |"
        )
    if report["rembg_baseline"]:
        lines += ["", "| rembg.remove() + PNG | size | p50 ms | p95 ms |", "|---|---|---|---|"]
        lines += [
            f"| {b['model']} | {b['size']} | {b['total_ms']['p50']} | {b['total_ms']['p95']} |"
            for b in report["rembg_baseline"]
        ]
    lines += ["", "| throughput | model | clients | images/s | p50 ms | p95 ms |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {t['provider']} | {t['model']} | {t['clients']} | {t['images_per_second']} | "
        f"{t['latency_ms']['p50']} | {t['latency_ms']['p95']} |"
        for t in report["throughput"]
    ]
    if report.get("quality"):
        lines += [
            "",
            "| speed and quality | model | inference ms (1080p) | alpha MAE vs u2net (0-255) | mean IoU | worst IoU |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {q['provider']} | {q['model']} | {q['inference_ms'] or '-'} | {q['alpha_mae']} | {q['iou']} | "
            f"{q['worst_iou']} ({q['worst_photo']}) |"
            for q in report["quality"]
        ]
    if report["cold_start"]:
        lines += ["", "| cold start | model | first result ms | peak RSS MB | GPU memory MB |", "|---|---|---|---|---|"]
        lines += [
            f"| {c['provider']} | {c['model']} | {c.get('first_result_ms', '-')} | {c.get('peak_rss_mb', '-')} "
            f"| {c.get('gpu_memory_mb', '-')} |"
            for c in report["cold_start"]
        ]
    return "\n".join(lines)
