"""Do the engine's CPU stages run on every core? ``python -m benchmark scaling``.

The network is replaced by a stand-in whose inference costs almost nothing (a
tiny ONNX graph with U²-Net's input and output: the channel mean, squashed), so
that what is measured is everything around it: decode, preprocessing,
postprocessing and encoding. ``N`` threads call ``Engine.remove`` on the same
1080p JPEG for a fixed time; if the stages serialised (on the GIL, on a lock) the
throughput would stay flat as callers are added. Target: at 2 callers on 2 cores
at least 1.8x the 1-caller throughput, and at N callers on N cores at least 0.8·N.
Each row also says how many cores the process kept busy (its CPU time over the wall
time) and its CPU time per image: one caller already spreads its resizes over the
cores, so where it keeps more than one core busy the speed-up is bounded by
cores ÷ (cores busy at 1 caller), while CPU time per image shows whether adding
callers costs anything.

    python -m benchmark scaling [--seconds 8] [--callers 1,2,4] [--format png] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper

from base.cpu import cpu_info
from benchmark.concurrency import callers as run_callers
from benchmark.photos import test_jpeg
from core import Engine, RemovalOptions, load_settings
from models.registry import MODELS

STAND_IN = "stand-in"


def stand_in_model(path: Path, size: int = 320) -> Path:
    """U²-Net's interface (Nx3xSxS in, Nx1xSxS out) at almost no cost."""
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, size, size])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["n", 1, size, size])
    nodes = [
        helper.make_node("ReduceMean", ["input", "channels"], ["mean"], keepdims=1),
        helper.make_node("Sigmoid", ["mean"], ["mask"]),
    ]
    axes = helper.make_tensor("channels", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(nodes, STAND_IN, [image], [mask], [axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def stand_in_engine(folder: Path) -> Engine:
    """An engine whose ``stand-in`` model is the stand-in, fed and read like u2netp."""
    engine = Engine(load_settings([]))
    spec = dataclasses.replace(MODELS["u2netp"], name=STAND_IN, filename="stand-in.onnx", md5=None, sources=())
    engine.sessions.register(spec, stand_in_model(folder / spec.filename))
    return engine


def measure(engine: Engine, data: bytes, options: RemovalOptions, callers: int, seconds: float) -> dict[str, Any]:
    """``callers`` threads removing backgrounds for ``seconds``; images per second, the cores the
    process kept busy (its CPU time over the wall time) and stage medians."""
    before = os.times()
    timings, elapsed = run_callers(lambda: engine.remove(data, options).timings, callers, seconds=seconds)
    after = os.times()
    cpu_s = (after.user - before.user) + (after.system - before.system)
    return {
        "callers": callers,
        "images": len(timings),
        "images_per_second": round(len(timings) / elapsed, 2),
        "cores_busy": round(cpu_s / elapsed, 2),
        "cpu_ms_per_image": round(cpu_s * 1000 / len(timings), 1),
        "stages_ms": {k: round(statistics.median(t[k] for t in timings), 1) for k in timings[0]},
    }


def run(seconds: float, callers: list[int], fmt: str, size: str = "1080p") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stand-in-") as folder:
        engine = stand_in_engine(Path(folder))
        data = test_jpeg(size)
        options = RemovalOptions(model=STAND_IN, provider="cpu", output_format=fmt)
        engine.remove(data, options)  # loaded and warm
        rows = [measure(engine, data, options, n, seconds) for n in callers]
    base = rows[0]["images_per_second"]
    cores = cpu_info().physical_cores
    for row in rows:
        row["speedup"] = round(row["images_per_second"] / base, 2)
        n = row["callers"]
        # Where there are fewer cores than callers, the cores are the bound.
        row["target"] = 1.8 if min(n, cores) == 2 else round(0.8 * min(n, cores), 2) if n > 1 else 1.0
        row["met"] = row["speedup"] >= row["target"]
    return {
        "machine": {"cpu": cpu_info().model, "physical_cores": cores},
        "size": size,
        "format": fmt,
        "seconds_per_row": seconds,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="time per row (default 8)")
    parser.add_argument("--callers", help="comma-separated caller counts (default: 1, 2 and the physical cores)")
    parser.add_argument("--format", default="png", help="output format (default png)")
    parser.add_argument("--size", default="1080p", help="720p, 1080p or 4K (default 1080p)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    cores = cpu_info().physical_cores
    callers = [int(c) for c in args.callers.split(",")] if args.callers else sorted({1, 2, cores})
    report = run(args.seconds, callers, args.format, args.size)
    print(f"{report['size']} JPEG -> {report['format']}, stand-in model, {cores} physical cores")
    print("| callers | images/s | speed-up | target | cores busy | CPU ms/image | stages (median ms) |")
    print("|---|---|---|---|---|---|---|")
    for row in report["rows"]:
        stages = ", ".join(f"{k} {v}" for k, v in row["stages_ms"].items())
        mark = "met" if row["met"] else "NOT met"
        cells = [
            row["callers"],
            row["images_per_second"],
            f"{row['speedup']}x",
            f"{row['target']}x {mark}",
            row["cores_busy"],
            row["cpu_ms_per_image"],
            stages,
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
