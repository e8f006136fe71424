"""The CPU benchmark scripts run and report what they claim: ``scaling``, ``png`` and ``models``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from base.settings import load_settings
from benchmark import png
from benchmark.server import ROOT
from core.catalog import model_facts
from models import measured
from ui.readout import model_words

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


def test_models_measures_the_servers_own_model_and_the_menu_says_what_it_costs(tmp_path: Path) -> None:
    """A ``--custom-model`` is measured like a registry model, and the catalogue and the menu's words read it."""
    real = load_settings([]).model_home
    home = tmp_path / "u2net"
    home.mkdir()
    for name in ("u2net.onnx", "u2netp.onnx"):
        (home / name).symlink_to(real / name)
    # u2netp's weights under a name of the operator's: its masks are u2netp's, not u2net's.
    flags = ["--model-home", str(home), "--custom-model", f"mine=u2net:{real / 'u2netp.onnx'}"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmark", "models", "--runs", "1", "--only", "mine", *flags],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    kept = measured.read(home)["cpu"]
    assert set(kept) == {"u2net", "mine"}, kept
    assert kept["u2net"]["alpha_mae"] == 0 and kept["u2net"]["iou"] == 1
    assert kept["mine"]["alpha_mae"] > 1 and kept["mine"]["iou"] < 0.99 and kept["mine"]["inference_ms"] > 0
    assert kept["mine"]["source"] == "python -m benchmark models"
    assert "| mine | u2net | 320² |" in done.stdout
    facts = model_facts(load_settings(flags))
    [mine] = [f for f in facts if f["name"] == "mine"]
    assert mine["measured"]["inference_ms"] == kept["mine"]["inference_ms"]
    assert mine["summary"] != measured.describe(None)
    assert model_words(facts)["mine"] != mine["description"].split(" (")[0]  # words from the figures
