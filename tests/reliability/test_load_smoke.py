"""Reliability tier: the load and soak scripts with tiny bounds, so CI runs them on every change.

Two clients for ten seconds, and thirty sequential requests: zero errors, zero
mix-ups, the server alive with no traceback in its log, and temporary files
bounded (no stray file; results at most one per Gradio request; Gradio's cache
content-addressed, so at most the photos and their cutouts). No timing assertions.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PHOTOS
from tests.reliability import load, soak

pytestmark = [pytest.mark.reliability, pytest.mark.api, pytest.mark.model]
#: Gradio's cache: each photo uploaded once and its cutout, plus the UI's cached examples.
CACHE_BOUND = 2 * len(PHOTOS) + 8


def assert_bounded(summary: dict[str, Any], temp_files: dict[str, int]) -> None:
    assert temp_files["stray"] == 0, temp_files
    assert temp_files["outputs"] <= summary["by_path"]["gradio"]["ok"], temp_files
    assert temp_files["gradio_cache"] <= CACHE_BOUND, temp_files
    assert temp_files["other"] <= 2, temp_files


def test_load_smoke() -> None:
    summary = load.run(seconds=10, clients=2)
    print(load.report(summary))
    assert summary["ok"] > 0
    assert summary["error"] == 0 and summary["mixup"] == 0, summary["errors_seen"]
    assert summary["server_alive"] and not summary["traceback_in_log"]
    assert_bounded(summary, summary["temp_files"])
    assert load.passed(summary)


def test_soak_smoke() -> None:
    summary = soak.run(requests=30, baseline=10)
    print(soak.report(summary))
    assert summary["ok"] == 30
    assert summary["error"] == 0 and summary["mixup"] == 0, summary["errors_seen"]
    assert summary["server_alive"] and not summary["traceback_in_log"]
    assert_bounded(summary, summary["end"]["temp_files"])
    # between request 10 and 30 only results are added; the caches are already full
    base, end = summary["baseline"]["temp_files"], summary["end"]["temp_files"]
    assert end["gradio_cache"] <= CACHE_BOUND and end["stray"] == base["stray"] == 0
    assert soak.passed(summary)
