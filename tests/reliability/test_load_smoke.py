"""Reliability tier: the load and soak scripts with tiny bounds, so CI runs them on every change.

Two clients for ten seconds, and thirty sequential requests (REST, the Gradio client
API, and the WebUI's alpha matting and Gallery as the page sends them; the Benchmark
tab's run is left to the long soak, it takes minutes): zero errors, zero mix-ups, the
server alive with no traceback in its log, and temporary files bounded (no stray
file; results at most one per Gradio request and five per Gallery run; Gradio's cache
content-addressed, so at most the photos, their cutouts and the Gallery's zips). No
timing assertions.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PHOTOS
from tests.reliability import load, soak
from tests.reliability.common import GALLERY_FILES

pytestmark = [pytest.mark.reliability, pytest.mark.api, pytest.mark.model]
#: Gradio's cache is content-addressed: each photo's upload, its cutout, its matted cutout, the
#: Upload tab's "before" and touch-up pictures of it (the same bytes every time), and the UI's
#: cached examples. It does not grow with the number of requests.
CACHE_BOUND = 5 * len(PHOTOS) + 8


#: What one Upload-tab run writes to the results folder at most: the cutout, the slider's "before"
#: and (for a tiny result, scaled up) "after" pictures, and the touch-up editor's picture.
UI_RUN_FILES = 4


def assert_bounded(summary: dict[str, Any], temp_files: dict[str, int]) -> None:
    paths = summary["by_path"]
    ok = {path: paths[path]["ok"] if path in paths else 0 for path in ("gradio", "matting", "gallery")}
    assert temp_files["stray"] == 0, temp_files
    bound = ok["gradio"] + ok["matting"] * UI_RUN_FILES + ok["gallery"] * (GALLERY_FILES + 1)
    assert temp_files["outputs"] <= bound, temp_files
    assert temp_files["gradio_cache"] <= CACHE_BOUND + ok["gallery"], temp_files  # a zip per Gallery run
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
    summary = soak.run(requests=30, baseline=10, matting_every=10, gallery_every=25)
    print(soak.report(summary))
    assert summary["ok"] == 30
    assert summary["by_path"]["matting"]["ok"] == 3 and summary["by_path"]["gallery"]["ok"] == 1
    assert summary["error"] == 0 and summary["mixup"] == 0, summary["errors_seen"]
    assert summary["server_alive"] and not summary["traceback_in_log"]
    assert_bounded(summary, summary["end"]["temp_files"])
    # between request 10 and 30 only results are added; the caches are already full
    base, end = summary["baseline"]["temp_files"], summary["end"]["temp_files"]
    assert end["gradio_cache"] <= CACHE_BOUND + 1 and end["stray"] == base["stray"] == 0
    assert soak.passed(summary)
