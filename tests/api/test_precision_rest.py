"""The precision option on every edge of a server whose weights folder holds a tune record.

The record (written here, over the real u2netp weights) says OpenVINO bf16 passed the
gate for u2netp; the answers must say that it ran, and ``exact`` must still run
onnxruntime fp32. Where the CPU has no bf16 the record is still honoured: what is
chosen comes from measurement, and here the "measurement" is the test's.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmark.server import ROOT, Server, launch_server, stop_server
from core.providers import provider_info
from tests.conftest import PHOTOS_DIR, photo_bytes
from tests.core.test_precision import OV_BF16, REFERENCE, tuned_home

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not provider_info("openvino").available, reason="openvino is not installed"),
]
ROWS = [dict(REFERENCE, weights="u2netp"), dict(OV_BF16, weights="u2netp")]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tuned_home(tmp_path_factory.mktemp("home"), ROWS)


@pytest.fixture(scope="module")
def server(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = launch_server(
        tmp_path_factory.mktemp("server"), "--default-model", "u2netp", env={"U2NET_HOME": str(home)}
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def post(http: httpx.Client, **form: str) -> httpx.Response:
    return http.post("/api/remove", files={"file": ("car-1.jpg", photo_bytes("car-1.jpg"))}, data=form)


def test_rest_precision_fast_runs_and_names_openvino_bf16(http: httpx.Client) -> None:
    fast = post(http, precision="fast")
    assert fast.status_code == 200, fast.text
    assert (fast.headers["X-Backend"], fast.headers["X-Precision"], fast.headers["X-Precision-Ran"]) == (
        "openvino-cpu",
        "bf16",
        "fast",
    )
    assert fast.headers["X-Provider"] == "openvino" and "X-Precision-Note" not in fast.headers
    exact = post(http)  # the default precision: exact
    assert (exact.headers["X-Backend"], exact.headers["X-Precision"]) == ("onnxruntime-cpu", "fp32")


def test_healthz_shows_the_choice_and_both_sessions(http: httpx.Client) -> None:
    post(http, precision="fast")
    health = http.get("/healthz").json()
    u2netp = next(m for m in health["models"] if m["name"] == "u2netp")
    assert u2netp["precision"]["tuned"] is True
    assert (u2netp["precision"]["fast"]["provider"], u2netp["precision"]["fast"]["precision"]) == ("openvino", "bf16")
    assert u2netp["precision"]["exact"]["precision"] == "fp32"
    loaded = {(m["model"], m["runtime"], m["precision"]) for m in health["models_loaded"]}
    assert ("u2netp", "openvino", "bf16") in loaded
    assert health["settings"]["default_precision"] == "exact"


def test_cli_precision_flag(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    done = subprocess.run(
        [sys.executable, "app.py", "remove", PHOTOS_DIR / "car-1.jpg", out, "--model", "u2netp", "--precision", "fast"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"U2NET_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "openvino-cpu bf16 (precision fast)" in done.stderr
    assert out.stat().st_size > 0
