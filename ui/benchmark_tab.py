"""The Benchmark tab: the quick benchmark with progress, and the cost model with its chart.

Answers "CPU or GPU, how fast, and what does one image cost" on the machine the
app runs on. It shares the app's sessions, so it competes with live requests
while it runs (a note in the tab says so).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from benchmark import chart, cost, matrix
from core import Engine
from ui.errors import user_errors

MAX_REPORT_BYTES = 5_000_000


class BenchmarkHandlers:
    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine = engine
        self.folder = folder

    def run_quick(self, progress: gr.Progress = gr.Progress()) -> tuple[str, str, dict[str, Any]]:  # noqa: B008
        """Run the quick matrix; return the table, the chart and the report."""
        report = matrix.run(matrix.QUICK, self.engine, lambda fraction, what: progress(fraction, desc=what))
        folder = Path(tempfile.mkdtemp(dir=self.folder))
        path = chart.latency_throughput(report, folder / "benchmark.png")
        notes = "\n".join(f"- {n}" for n in report["notes"])
        return matrix.table(report) + ("\n\n" + notes if notes else ""), str(path), report

    def costs(
        self, report: dict[str, Any] | None, gpu_file: str | None, cpu_price: float, gpu_price: float,
        gpu_ips: float, gpu_p95: float, currency: str, hours: float, volume: float, target_ms: float,
    ) -> tuple[str, str]:  # fmt: skip
        """The cost table, the recommendation with its formula, and the cost-per-1,000 chart."""
        if not report:
            raise gr.Error("Run the benchmark first: the cost model needs this machine's throughput.")
        options = cost.options_from_report(report, cpu_price, gpu_price)
        if gpu_file:
            if Path(gpu_file).stat().st_size > MAX_REPORT_BYTES:
                raise gr.Error("That file is too large to be a benchmark report.")
            try:
                gpu_report = json.loads(Path(gpu_file).read_text())
                options += cost.options_from_report(gpu_report, cpu_price, gpu_price, measured_here=False)
            except (ValueError, KeyError, TypeError):
                raise gr.Error("That file is not a benchmark JSON written by python -m benchmark.") from None
        if gpu_ips and gpu_ips > 0:
            options.append(cost.Option("gpu (entered)", gpu_ips, gpu_p95, gpu_price, False, "entered, not measured"))
        try:
            result = cost.compare(options, volume, hours, target_ms)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        folder = Path(tempfile.mkdtemp(dir=self.folder))
        path = chart.cost_curve(cost.curve(options, hours), currency, folder / "cost.png")
        return cost.markdown(result, currency), str(path)


def benchmark_tab(engine: Engine, folder: Path) -> None:
    """Lay out and wire the tab; call inside ``gr.Tabs()``."""
    handlers = BenchmarkHandlers(engine, folder)
    with gr.Tab("Benchmark", id="benchmark", elem_id="tab-benchmark"):
        gr.Markdown(
            "Measures this machine: every provider that can run, u2net, u2netp and u2net-int8 on a 1080p photo, "
            "against rembg in the same run. It takes a few minutes and competes with live requests while it runs."
        )
        run = gr.Button("Run quick benchmark", variant="primary", elem_id="benchmark-run")
        table = gr.Markdown(elem_id="benchmark-table")
        image = gr.Image(type="filepath", label="Latency and throughput", interactive=False)
        report = gr.State(None)
        gr.Markdown("### What one image costs")
        with gr.Row():
            cpu_price = gr.Number(300, label="CPU machine per month")
            gpu_price = gr.Number(1800, label="GPU machine per month")
            currency = gr.Textbox("$", label="Currency", max_length=4)
            hours = gr.Number(8, label="Hours per day", minimum=1, maximum=24)
            volume = gr.Number(10000, label="Images per day", minimum=1)
            target = gr.Number(3000, label="p95 latency target (ms)", minimum=1)
        with gr.Row():
            gpu_file = gr.File(label="GPU benchmark JSON (from a GPU machine)", file_types=[".json"])
            gpu_ips = gr.Number(0, label="or GPU images/s (entered, not measured)")
            gpu_p95 = gr.Number(300, label="GPU p95 ms (entered)")
        compute = gr.Button("Compute cost", elem_id="cost-run")
        cost_table = gr.Markdown(elem_id="cost-table")
        cost_chart = gr.Image(type="filepath", label="Cost per 1,000 images against daily volume", interactive=False)

    run.click(
        user_errors(handlers.run_quick), None, [table, image, report], api_visibility="private",
        concurrency_id="inference",
    )  # fmt: skip
    compute.click(
        user_errors(handlers.costs),
        [report, gpu_file, cpu_price, gpu_price, gpu_ips, gpu_p95, currency, hours, volume, target],
        [cost_table, cost_chart],
        api_visibility="private",
    )
