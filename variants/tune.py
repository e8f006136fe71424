"""``python -m models tune``: measure every runtime and precision of each installed model, gate them, record it.

For each model the service may be asked for (a downloaded registry model whose weights
are here), the candidates are onnxruntime fp32 (the reference: rembg's own runtime),
onnxruntime on the model's int8 build (u2net-int8, where built), and on OpenVINO f32,
bf16 (only where the CPU has AMX or AVX512_BF16: the flags decide what is *tried*, never
what is chosen) and the int8 build. Each candidate's masks are made as ``Engine.remove``
makes them (``to_tensor``, output 0, ``to_mask``) on the evaluation photos and compared
with the reference's; the candidates are timed alternately on one input, and the medians
kept. The record (``models.tuned``) says which passed the exact gate (masks equal to
rembg's) and the quality gate (``variants.gate``'s thresholds), and ``core.precision``
chooses from it.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from base.assets import EVAL_PHOTOS, photo
from base.cpu import cpu_info
from base.errors import RemovalError
from base.settings import Settings, quiet_openvino
from core.decode import Limits, decode
from core.imaging import to_mask, to_tensor
from core.precision import choose
from core.providers import provider_info
from core.quality import Agreement, agreement
from core.sessions import ModelSession, create_session
from models import tuned
from models.fetch import status
from models.registry import MODELS, ModelSpec
from variants.gate import GATE_TIMING_PHOTO, MAX_MEAN_MAE, MAX_PHOTO_MAE

#: Timed runs per candidate, after one warm-up each; alternated, medians compared.
TUNE_RUNS = 5
#: Pause before each timed run: without it, the candidate run right after an onnxruntime session
#: shares the cores with onnxruntime's spinning threads (OpenVINO bf16 measured 0.8x instead of 1.7x).
SETTLE_S = 0.05
#: The model a u2net build must be closer to u2net than (the quality gate's third check).
FAST_MODEL = "u2netp"


@dataclass(frozen=True)
class Candidate:
    provider: str  # cpu (onnxruntime) or openvino
    precision: str  # fp32, bf16, int8
    weights: ModelSpec

    @property
    def label(self) -> str:
        runtime = "onnxruntime" if self.provider == "cpu" else "OpenVINO"
        return f"{runtime} {self.precision}"


@dataclass
class Measured:
    candidate: Candidate
    photos: dict[str, Agreement] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)
    #: Closer to the base than u2netp on every photo (by MAE and IoU); None where not checked.
    closer_than_fast: bool | None = None
    error: str = ""

    @property
    def ms(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    @property
    def mean_mae(self) -> float:
        return statistics.fmean(a.mae for a in self.photos.values()) if self.photos else float("inf")

    @property
    def max_mae(self) -> float:
        return max((a.mae for a in self.photos.values()), default=float("inf"))

    @property
    def min_iou(self) -> float:
        return min((a.iou for a in self.photos.values()), default=0.0)

    @property
    def exact(self) -> bool:
        return not self.error and self.max_mae <= tuned.EXACT_MAX_MAE and self.min_iou >= tuned.EXACT_MIN_IOU

    @property
    def fast(self) -> bool:
        gate = self.mean_mae <= MAX_MEAN_MAE and self.max_mae <= MAX_PHOTO_MAE and self.closer_than_fast is not False
        return not self.error and (self.exact or gate)

    def row(self, reference_ms: float | None) -> dict[str, Any]:
        c = self.candidate
        ms = self.ms
        return {
            "provider": c.provider,
            "runtime": "onnxruntime" if c.provider == "cpu" else "openvino",
            "precision": c.precision,
            "weights": c.weights.name,
            "inference_ms": None if ms is None else round(ms, 1),
            "speedup": None if ms is None or reference_ms is None else round(reference_ms / ms, 3),
            "mean_mae": round(self.mean_mae, 3) if self.photos else None,
            "max_mae": round(self.max_mae, 3) if self.photos else None,
            "min_iou": round(self.min_iou, 5) if self.photos else None,
            "closer_than_fast": self.closer_than_fast,
            "exact": self.exact,
            "fast": self.fast,
            "error": self.error or None,
            "photos": {n: {"mae": round(a.mae, 3), "iou": round(a.iou, 5)} for n, a in self.photos.items()},
        }


def tunable(home: Path) -> list[ModelSpec]:
    """The models a request may name whose weights are here and verified (built variants are
    candidates of their base, not models of their own)."""
    return [s for s in MODELS.values() if s.build is None and s.family == "u2net" and status(s, home).verified]


def candidates(spec: ModelSpec, home: Path) -> list[Candidate]:
    """What is tried for ``spec`` on this machine, the reference (onnxruntime fp32) first."""
    int8 = [
        s
        for s in MODELS.values()
        if s.build is not None
        and s.build.base == spec.name
        and s.build.recipe.startswith("int8")
        and status(s, home).verified
    ]
    out = [Candidate("cpu", "fp32", spec), *(Candidate("cpu", "int8", s) for s in int8)]
    if provider_info("openvino").available:
        out.append(Candidate("openvino", "fp32", spec))
        if cpu_info().bf16:
            out.append(Candidate("openvino", "bf16", spec))
        out += [Candidate("openvino", "int8", s) for s in int8]
    return out


def _masks(session: ModelSession, tensors: dict[str, np.ndarray], sizes: dict[str, tuple[int, int]]) -> dict[str, Any]:
    return {name: np.asarray(to_mask(session.run(t), sizes[name])) for name, t in tensors.items()}


def tune_model(
    spec: ModelSpec, settings: Settings, *, runs: int = TUNE_RUNS, progress: bool = False
) -> tuple[list[Measured], dict[str, Any] | None]:
    """Every candidate of ``spec`` measured against onnxruntime fp32; the reference's masks are u2net's own."""
    settings = dataclasses.replace(settings, processing="exact", batching="off", inference_concurrency=1)
    home = settings.model_home
    limits = Limits(settings.max_upload_bytes, settings.max_pixels)
    images = {name: decode(photo(name), limits) for name in EVAL_PHOTOS if photo(name).is_file()}
    tensors = {name: to_tensor(im, spec.input_size, spec.mean, spec.std) for name, im in images.items()}
    sizes = {name: im.size for name, im in images.items()}
    tried = candidates(spec, home)
    fast_spec = MODELS[FAST_MODEL]
    compare_fast = spec.name == "u2net" and status(fast_spec, home).verified
    steps = len(tried) * (len(tensors) + runs + 1) + (len(tensors) if compare_fast else 0)
    results = [Measured(c) for c in tried]
    sessions: dict[int, ModelSession] = {}
    with tqdm(total=steps, desc=f"{spec.name} tune", unit="run", disable=not progress) as bar:
        reference: dict[str, Any] = {}
        fast_photos: dict[str, Agreement] = {}
        for i, m in enumerate(results):
            c = m.candidate
            try:
                session = create_session(c.weights, home / c.weights.filename, c.provider, settings, c.precision)
            except RemovalError as exc:  # a candidate that cannot load is recorded as such, never chosen
                m.error = exc.message
                if i == 0:
                    raise
                bar.update(len(tensors) + runs + 1)
                continue
            sessions[i] = session
            masks = _masks(session, tensors, sizes)
            bar.update(len(tensors))
            if i == 0:
                reference = masks
            m.photos = {name: agreement(masks[name], reference[name]) for name in masks}
        if compare_fast:
            fast_session = create_session(fast_spec, home / fast_spec.filename, "cpu", settings)
            fast_masks = _masks(fast_session, tensors, sizes)
            bar.update(len(tensors))
            fast_photos = {name: agreement(fast_masks[name], reference[name]) for name in fast_masks}
            for m in results:
                if m.photos:
                    m.closer_than_fast = all(
                        a.mae <= fast_photos[n].mae and a.iou >= fast_photos[n].iou for n, a in m.photos.items()
                    )
        timing = tensors.get(GATE_TIMING_PHOTO, next(iter(tensors.values())))
        for session in sessions.values():
            session.run(timing)  # warm-up
            bar.update(1)
        for _ in range(runs):  # alternately, so that a busy moment costs every candidate alike
            for i, session in sessions.items():
                # onnxruntime's threads spin-wait after a run; the pause keeps them off the next candidate's cores.
                time.sleep(SETTLE_S)
                started = time.perf_counter()
                session.run(timing)
                results[i].times.append((time.perf_counter() - started) * 1000)
                bar.update(1)
    fast_summary = None
    if fast_photos:
        fast_summary = {
            "model": FAST_MODEL,
            "mean_mae": round(statistics.fmean(a.mae for a in fast_photos.values()), 3),
            "max_mae": round(max(a.mae for a in fast_photos.values()), 3),
        }
    return results, fast_summary


def tune(
    settings: Settings,
    names: list[str] | None = None,
    *,
    runs: int = TUNE_RUNS,
    progress: bool = False,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Tune ``names`` (default: every tunable model here), print each table through ``say``, write the record."""
    import onnxruntime

    home = settings.model_home
    specs = [MODELS[n] for n in names] if names else tunable(home)
    cpu = cpu_info()
    record: dict[str, Any] = tuned.read(home) or {}
    models: dict[str, Any] = dict(record.get("models", {}))
    for spec in specs:
        results, fast_summary = tune_model(spec, settings, runs=runs, progress=progress)
        reference_ms = results[0].ms
        rows = [m.row(reference_ms) for m in results]
        models[spec.name] = {"reference": "onnxruntime fp32", "candidates": rows, "u2netp": fast_summary}
        say(table(spec.name, rows))
    try:
        quiet_openvino()
        import openvino

        ov_version: str | None = openvino.__version__.split("-")[0]
    except ImportError:
        ov_version = None
    out = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu.model,
        "flags": cpu.reported_flags(),
        "cores": cpu.physical_cores,
        "runtimes": {"onnxruntime": onnxruntime.__version__, "openvino": ov_version},
        "runs": runs,
        "models": models,
    }
    tuned.write(home, out)
    return out


def table(model: str, rows: list[dict[str, Any]]) -> str:
    """The candidates of ``model`` as a Markdown table, with what ``exact`` and ``fast`` now choose."""
    lines = [
        f"{model}:",
        "| runtime | precision | weights | inference ms | vs onnxruntime fp32 | mean / worst alpha MAE | worst IoU "
        "| exact | fast |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["error"]:
            lines.append(f"| {r['runtime']} | {r['precision']} | {r['weights']} | did not load: {r['error']} |")
            continue
        lines.append(
            f"| {r['runtime']} | {r['precision']} | {r['weights']} | {r['inference_ms']:.0f} | {r['speedup']:.2f}x "
            f"| {r['mean_mae']:.2f} / {r['max_mae']:.2f} | {r['min_iou']:.4f} | {'yes' if r['exact'] else 'no'} "
            f"| {'yes' if r['fast'] else 'no'} |"
        )
    for word in ("exact", "fast"):
        c = choose(model, "auto", word, rows)
        where = "onnxruntime" if c.provider in ("cpu", "auto") else c.provider
        lines.append(f"{word}: {where} {c.precision} ({c.weights}){' - ' + c.note if c.note else ''}")
    return "\n".join(lines)
