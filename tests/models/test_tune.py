"""``python -m models tune``: every candidate measured on the real weights, gated, recorded, listed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from base.cpu import cpu_info
from benchmark.server import ROOT
from core import load_settings
from core.providers import provider_info
from models import tuned

pytestmark = pytest.mark.model


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "models", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "U2NET_HOME": str(home)},
    )


def test_tune_records_gated_candidates_and_list_shows_the_choice(tmp_path: Path) -> None:
    (tmp_path / "u2netp.onnx").symlink_to(load_settings([]).model_home / "u2netp.onnx")
    done = run(tmp_path, "tune", "u2netp", "--runs", "1", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| onnxruntime | fp32 | u2netp |" in done.stdout and "recorded in" in done.stdout
    rows = {(r["provider"], r["precision"]): r for r in tuned.candidates(tmp_path, "u2netp")}
    reference = rows[("cpu", "fp32")]
    assert reference["exact"] and reference["fast"] and reference["mean_mae"] == 0.0
    assert reference["inference_ms"] > 0 and len(reference["photos"]) == 8
    if provider_info("openvino").available:
        assert rows[("openvino", "fp32")]["exact"] is True  # the same masks, on the other runtime
        assert (("openvino", "bf16") in rows) == cpu_info().bf16  # flags decide what is tried
    listed = run(tmp_path, "list")
    assert listed.returncode == 0 and "u2netp exact:" in listed.stdout and "u2netp fast:" in listed.stdout


def test_tune_refuses_a_build(tmp_path: Path) -> None:
    done = run(tmp_path, "tune", "u2net-int8")
    assert done.returncode == 2 and "candidates of their base model" in done.stderr
