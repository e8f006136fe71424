"""API tier: ``/healthz`` says "degraded" (HTTP 503, with the reason) when the default provider cannot load.

The GPU image defaults to ``cuda``; on a machine where CUDA cannot load, every default
request fails, so probes and the image's HEALTHCHECK must not call the replica healthy.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.providers import provider_info
from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.api


def first_health_answer(url: str, process: subprocess.Popen[str], log: Path, timeout: float = 120) -> httpx.Response:
    """The first HTTP answer of ``/healthz``, whatever its status (``launch_server`` waits for a 200)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"{url}/healthz", timeout=5)
        except httpx.TransportError:
            time.sleep(0.3)
    raise RuntimeError(f"no answer from /healthz in {timeout} s:\n{log.read_text()}")


def test_default_accelerator_that_cannot_load_is_degraded(tmp_path: Path) -> None:
    if provider_info("cuda").available:
        pytest.skip("CUDA loads on this machine")
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), "--default-provider", "cuda"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        response = first_health_answer(f"http://127.0.0.1:{port}", process, log)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "degraded"
    assert any("'cuda'" in p and provider_info("cuda").reason in p for p in body["problems"]), body
