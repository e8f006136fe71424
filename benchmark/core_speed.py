"""Core speed benchmark: ``remove_background`` against ``rembg.remove()`` + Pillow PNG save.

Both paths run side by side in one process on the same weights and the same
1080p JPEG, alternating, after a warm-up; the table shows per-stage medians and
the ratio (and the median of each round's ratio, which a busy moment costs less).
``png-fast`` is ``precision=fast``: what ``python -m models tune`` chose here (the
``ran`` column says which runtime and precision). Timings on a shared machine are
noisy: compare ratios from one run.

    python -m benchmark core [--runs 5] [--image PATH] [--json OUT]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from base.cpu import cpu_info
from base.timing import Clock
from benchmark.photos import test_jpeg
from core import Engine, RemovalOptions, load_settings


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def run(runs: int, data: bytes, model: str) -> dict[str, Any]:
    from rembg import new_session, remove

    engine = Engine(load_settings([]))
    rembg_session = new_session(model, providers=["CPUExecutionProvider"])
    formats = {
        "png": RemovalOptions(model=model, provider="cpu"),
        "webp-lossless": RemovalOptions(model=model, provider="cpu", output_format="webp"),
        "png-fast": RemovalOptions(model=model, precision="fast"),
    }
    ran: dict[str, str] = {}
    ours: dict[str, list[dict[str, float]]] = {name: [] for name in formats}
    baseline: list[float] = []
    baseline_alpha = None
    for i in range(runs + 1):  # the first round warms both paths up and is dropped
        clock = Clock()
        out = remove(data, session=rembg_session)  # bytes in: decodes, and saves PNG with Pillow's defaults
        elapsed = clock.elapsed_ms()
        results = {name: engine.remove(data, opts) for name, opts in formats.items()}
        ran = {name: f"{r.backend} {r.precision}" for name, r in results.items()}
        if i == 0:
            baseline_alpha = np.asarray(Image.open(io.BytesIO(out)).getchannel("A")).astype(float)
            png_alpha = np.asarray(results["png"].image.getchannel("A")).astype(float)
            continue
        baseline.append(elapsed)
        for name, result in results.items():
            ours[name].append(result.timings)
    assert baseline_alpha is not None
    a, b = png_alpha > 127, baseline_alpha > 127
    report: dict[str, Any] = {
        "machine": {
            "cpu": cpu_info().model,
            "physical_cores": cpu_info().physical_cores,
            "python": platform.python_version(),
            "onnxruntime": __import__("onnxruntime").__version__,
        },
        "model": model,
        "runs": runs,
        "rembg_remove_plus_png_ms": median(baseline),
        "mask_vs_rembg": {
            "mean_abs_diff": round(float(np.abs(png_alpha - baseline_alpha).mean()), 4),
            "iou": round(float((a & b).sum() / max((a | b).sum(), 1)), 5),
        },
        "ours": {},
    }
    for name, timings in ours.items():
        stages = {k: median([t[k] for t in timings]) for k in timings[0]}
        other = stages["total"] - stages["inference"]
        report["ours"][name] = {
            "ran": ran[name],
            "stages_ms": stages,
            "speedup_vs_rembg": round(report["rembg_remove_plus_png_ms"] / stages["total"], 2),
            "paired_speedup_vs_rembg": round(
                statistics.median(b / t["total"] for b, t in zip(baseline, timings, strict=True)), 2
            ),
            "non_inference_share_of_inference": round(other / stages["inference"], 3),
        }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark core", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed rounds after one warm-up (default 5)")
    parser.add_argument("--image", type=Path, help="a JPEG to use instead of the 1080p test image")
    parser.add_argument("--model", default="u2net")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    data = args.image.read_bytes() if args.image else test_jpeg("1080p")
    report = run(args.runs, data, args.model)
    print(f"rembg.remove() + PNG save: {report['rembg_remove_plus_png_ms']} ms (median of {args.runs})")
    print(f"mask vs rembg: {report['mask_vs_rembg']}")
    header = ["output", "ran", *report["ours"]["png"]["stages_ms"], "speedup", "paired", "other/inference"]
    print(" | ".join(f"{h:>11}" for h in header))
    for name, row in report["ours"].items():
        cells = [
            name,
            row["ran"],
            *row["stages_ms"].values(),
            f"{row['speedup_vs_rembg']}x",
            f"{row['paired_speedup_vs_rembg']}x",
            f"{row['non_inference_share_of_inference']:.1%}",
        ]
        print(" | ".join(f"{c!s:>11}" for c in cells))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
