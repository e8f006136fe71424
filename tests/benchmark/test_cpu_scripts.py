"""The CPU benchmark scripts run and report what they claim: ``scaling`` and ``png``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import png
from benchmark.server import ROOT

pytestmark = pytest.mark.model


def test_scaling_reports_throughput_cores_and_cpu_time(tmp_path: Path) -> None:
    out = tmp_path / "scaling.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmark", "scaling", "--seconds", "1", "--callers", "1,2", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["callers"] for r in rows] == [1, 2] and rows[0]["speedup"] == 1.0
    for row in rows:
        assert row["images"] > 0 and row["cores_busy"] > 0 and row["cpu_ms_per_image"] > 0
        assert {"decode", "preprocess", "inference", "postprocess", "encode"} <= set(row["stages_ms"])
    assert "cores busy" in done.stdout


def test_png_writers_write_the_cutout_exactly() -> None:
    rows = png.measure(runs=1)
    assert {size for size, *_ in rows} == {"1080p", "4K"}
    ours = [r for r in rows if r[1].startswith("ours")]
    assert len(ours) == 2 and all(size_bytes > 0 and ms > 0 for _, _, ms, size_bytes in ours)
