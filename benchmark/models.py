"""Every model that runs here, how long it takes and how close it comes to u2net: ``python -m benchmark models``.

The matrix (``python -m benchmark``) times u2net and its builds at every size and format;
this times every other model once it is here: the registry's models whose weights are
present, and the server's own (``--custom-model NAME=FAMILY:PATH``, as the app takes it).
Each gets its inference time on the 1080p benchmark photo (median of ``--runs`` after a
warm-up) and its mask's mean alpha difference and IoU against u2net's on the evaluation
photos. The figures are kept beside the weights (``models.measured``), where the model menu,
``python -m models list`` and ``/healthz`` read them; so the 1024-pixel families say in the
menu how slow they are on this machine.

    python -m benchmark models [--runs 3] [--provider cpu] [--only NAME ...] [--custom-model ...]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import numpy as np

from base.assets import EVAL_PHOTOS, photo
from base.settings import Settings, load_settings
from benchmark.photos import test_jpeg
from core import Engine, RemovalOptions, custom
from core.catalog import model_facts
from core.quality import agreement
from models import measured
from models.registry import MODELS

SIZE = "1080p"


def runnable(settings: Settings, provider: str) -> list[dict[str, Any]]:
    """The catalogue's facts of every model that runs on ``provider`` here (weights present, family run)."""
    return [f for f in model_facts(settings, provider) if f["ready"] and f["offered"]]


def measure(engine: Engine, names: list[str], provider: str, runs: int) -> list[dict[str, Any]]:
    """Per model: its inference and whole-request medians at 1080p, and its agreement with u2net's masks."""
    data = test_jpeg(SIZE)
    photos = {name: photo(name).read_bytes() for name in EVAL_PHOTOS}

    def masks(model: str) -> dict[str, np.ndarray]:
        opts = RemovalOptions(model=model, provider=provider)
        return {n: np.asarray(engine.remove(d, opts).mask) for n, d in photos.items()}

    reference = masks(measured.REFERENCE) if measured.REFERENCE in names else None
    rows = []
    for model in names:
        opts = RemovalOptions(model=model, provider=provider)
        engine.remove(data, opts)  # the session's load and first run are not what a request waits for
        timings = [engine.remove(data, opts).timings for _ in range(runs)]
        row: dict[str, Any] = {
            "model": model,
            "inference_ms": round(statistics.median(t["inference"] for t in timings), 1),
            "total_ms": round(statistics.median(t["total"] for t in timings), 1),
            "alpha_mae": None,
            "iou": None,
        }
        if reference is not None:
            ours = masks(model) if model != measured.REFERENCE else reference
            found = [agreement(ours[n], reference[n]) for n in photos]
            row["alpha_mae"] = round(statistics.fmean(a.mae for a in found), 3)
            row["iou"] = round(statistics.fmean(a.iou for a in found), 4)
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]], facts: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"| model | family | input | inference at {SIZE}, ms | whole request, ms | alpha MAE vs u2net | IoU vs u2net |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f = facts[r["model"]]
        mae = "-" if r["alpha_mae"] is None else f"{r['alpha_mae']:.2f}"
        iou = "-" if r["iou"] is None else f"{r['iou']:.4f}"
        lines.append(
            f"| {r['model']} | {f['family']} | {f['input_size']}² | {r['inference_ms']:.0f} | "
            f"{r['total_ms']:.0f} | {mae} | {iou} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per model after the warm-up (3)")
    parser.add_argument("--provider", default="cpu", help="where to run them (cpu)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these models (and u2net, the reference)")
    args, rest = parser.parse_known_args(argv)
    settings = load_settings(rest)  # the app's own flags and environment: --model-home, --custom-model ...
    engine = Engine(settings)
    facts = {f["name"]: f for f in runnable(settings, args.provider)}
    names = list(facts)
    if args.only:
        unknown = sorted(set(args.only) - set(facts))
        if unknown:
            parser.error(f"not runnable here: {', '.join(unknown)} (python -m models list says why)")
        names = [n for n in names if n in args.only or n == measured.REFERENCE]
    sizes = {
        spec.name: spec.input_size for spec in [*MODELS.values(), *(custom.parse(e)[0] for e in settings.custom_model)]
    }
    for name in names:
        facts[name]["input_size"] = sizes[name]
    rows = measure(engine, names, args.provider, args.runs)
    measured.record(
        settings.model_home,
        args.provider,
        {r["model"]: {k: r[k] for k in measured.FIELDS} for r in rows},
        source="python -m benchmark models",
    )
    print(table(rows, facts))
    print(f"kept in {settings.model_home / measured.FILENAME} for the model menu, python -m models list and /healthz")
