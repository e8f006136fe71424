"""The GPU script runs on a CPU too, says no GPU figure was taken, and feeds the cost model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import cost
from benchmark.server import ROOT

pytestmark = pytest.mark.model


def test_gpu_script_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmark", "gpu", "--model", "u2netp", "--clients", "1,2", "--seconds", "1",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["provider"] == "cpu" and report["targets"] is None
    assert any("no GPU figure" in note for note in report["notes"])
    vias = {(r["via"], r["clients"]) for r in report["throughput"]}
    assert {("engine", 1), ("engine", 2), ("rest", 1), ("rest", 2)} <= vias
    assert all(r["images_per_second"] > 0 for r in report["throughput"])
    assert report["comparisons"]["batching_on"]["images_per_second"] > 0  # the CPU's batching measurement
    assert set(report["one_request_ms"]) == {"1080p", "4K"} and report["pipeline_efficiency"] > 0
    options = cost.options_from_report(report, cpu_price=300, gpu_price=1800, measured_here=False)
    assert options and all(o.price_per_month == 300 for o in options)  # a CPU machine's rows
