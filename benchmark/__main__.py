"""``python -m benchmark``: CPU or GPU, how fast, and what one image costs, on this machine.

python -m benchmark [--quick] [--runs N] [--out DIR]    the matrix, a table, JSON and a chart
python -m benchmark cost --json FILE [prices ...]       the cost model over a saved benchmark
python -m benchmark core                                remove_background vs rembg, side by side
python -m benchmark roundtrip                           /remove_background vs the obvious Gradio app
python -m benchmark scaling                             do the CPU stages use every core? (stand-in model)
python -m benchmark gpu                                 how much of the accelerator is used (runs on a CPU too)
python -m benchmark arena                               onnxruntime's CPU arena on and off: memory and time
python -m benchmark png                                 the PNG writer against Pillow's (and fpng's)
python -m benchmark rest [--rembg-python PY]            REST throughput at each precision against rembg s
python -m benchmark serve                               REST through Ray Serve vs python app.py, 4 clients
python -m benchmark models [--custom-model ...]         every model here: speed, and closeness to u2net
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
#: The GPU machine the cost model compares with unless told another: an H200 with 16 cores,
#: measured 2026-11-30 (docs/benchmark/h200/README.md says how).
SHIPPED_GPU_JSON = Path(__file__).resolve().parent.parent / "docs" / "benchmark" / "h200" / "benchmark-quick.json"


def matrix_main(argv: list[str]) -> None:
    from tqdm import tqdm

    from benchmark import chart, matrix
    from core import Engine, load_settings

    parser = argparse.ArgumentParser(prog="python -m benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the reduced matrix (minutes on 2 cores)")
    parser.add_argument("--runs", type=int, help="timed runs per cell after the warm-up")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for JSON and chart ({DEFAULT_OUT})")
    args = parser.parse_args(argv)
    plan = matrix.QUICK if args.quick else matrix.FULL
    if args.runs:
        plan = dataclasses.replace(plan, runs=args.runs)
    engine = Engine(load_settings([]))
    with tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {elapsed} {postfix}") as bar:

        def progress(fraction: float, what: str) -> None:
            bar.n = round(fraction * 100)
            bar.set_postfix_str(what)
            bar.refresh()

        report = matrix.run(plan, engine, progress)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "benchmark-quick" if args.quick else "benchmark"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2))
    chart.latency_throughput(report, args.out / f"{name}.png")
    print(matrix.table(report))
    for note in report["notes"]:
        print(f"note: {note}")
    print(f"\nwrote {args.out / (name + '.json')} and {args.out / (name + '.png')}")


def cost_main(argv: list[str]) -> None:
    from benchmark import chart, cost

    parser = argparse.ArgumentParser(prog="python -m benchmark cost", description=cost.__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=DEFAULT_OUT / "benchmark.json", help="a saved benchmark")
    parser.add_argument(
        "--gpu-json",
        type=Path,
        default=SHIPPED_GPU_JSON,
        help="a benchmark saved on a GPU machine (python -m benchmark gpu, or the matrix there); default: the "
        "shipped H200 measurement. Its rows are labelled with that machine and priced at --gpu-price",
    )
    parser.add_argument("--no-gpu-json", dest="gpu_json", action="store_const", const=None, help="no GPU file")
    parser.add_argument("--cpu-price", type=float, default=300.0, help="CPU machine per month (default 300)")
    parser.add_argument("--gpu-price", type=float, default=1800.0, help="GPU machine per month (default 1800)")
    parser.add_argument("--gpu-ips", type=float, help="GPU images/s entered by hand (not measured here)")
    parser.add_argument("--gpu-p95-ms", type=float, default=300.0, help="p95 latency for --gpu-ips")
    parser.add_argument("--currency", default="¥")
    parser.add_argument("--hours", type=float, default=8.0, help="hours per day the service runs (default 8)")
    parser.add_argument("--volume", type=float, default=10_000, help="images per day (default 10000)")
    parser.add_argument("--latency-target-ms", type=float, default=3000.0, help="p95 target (default 3000)")
    parser.add_argument("--chart", type=Path, help="write the cost-per-1000 chart here")
    args = parser.parse_args(argv)
    if not args.json.exists():
        parser.error(f"{args.json} does not exist: run python -m benchmark first (or pass --json)")
    options = cost.options_from_report(json.loads(args.json.read_text()), args.cpu_price, args.gpu_price)
    if args.gpu_json:
        gpu_report = json.loads(args.gpu_json.read_text())
        options += cost.options_from_report(gpu_report, args.cpu_price, args.gpu_price, measured_here=False)
    if args.gpu_ips:
        options.append(
            cost.Option("gpu (entered)", args.gpu_ips, args.gpu_p95_ms, args.gpu_price, False, "entered, not measured")
        )
    result = cost.compare(options, args.volume, args.hours, args.latency_target_ms)
    print(cost.markdown(result, args.currency))
    if args.chart:
        chart.cost_curve(cost.curve(options, args.hours), args.currency, args.chart)
        print(f"wrote {args.chart}")


#: The other commands: each module's ``main(argv)``, imported only when asked for (some need Ray or a GPU).
COMMANDS = {
    "core": "core_speed",
    "roundtrip": "roundtrip",
    "scaling": "scaling",
    "gpu": "gpu",
    "arena": "arena",
    "png": "png",
    "rest": "rest",
    "serve": "serve_hop",
    "models": "models",
}


def main() -> None:
    argv = sys.argv[1:]
    command = argv[0] if argv and not argv[0].startswith("-") else "matrix"
    rest = argv[1:] if command != "matrix" else argv
    if command == "matrix":
        matrix_main(rest)
    elif command == "cost":
        cost_main(rest)
    elif command in COMMANDS:
        importlib.import_module(f"benchmark.{COMMANDS[command]}").main(rest)
    else:
        sys.exit(f"python -m benchmark: unknown command {command!r} ({', '.join(['matrix', 'cost', *COMMANDS])})")


if __name__ == "__main__":
    main()
