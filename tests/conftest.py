"""Shared test fixtures: the test images, one engine with the real weights, failure artefacts."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import Engine, load_settings
from models.variants import EVAL_PHOTOS

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
ARTIFACTS = Path(__file__).parent / "_artifacts"
#: Real photos (input, alpha-bearing or not) used for parity checks. They are also the
#: built variants' quality gate, so the list lives in models/ (which never imports tests/).
PHOTOS = EVAL_PHOTOS


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def alpha_of(image: Image.Image | bytes) -> np.ndarray:
    im = Image.open(io.BytesIO(image)) if isinstance(image, bytes) else image
    channel = im if im.mode == "L" else im.getchannel("A")
    return np.asarray(channel).astype(np.float64)


def mask_agreement(actual: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """(mean absolute difference on 0..255, IoU of alpha > 127)."""
    mad = float(np.abs(actual - expected).mean())
    a, b = actual > 127, expected > 127
    union = (a | b).sum()
    return mad, float((a & b).sum() / union) if union else 1.0


def save_failure(name: str, actual: Image.Image, expected: Image.Image) -> Path:
    """Write actual and expected images side by side in tests/_artifacts for a look."""
    ARTIFACTS.mkdir(exist_ok=True)
    actual.save(ARTIFACTS / f"{name}.actual.png")
    expected.save(ARTIFACTS / f"{name}.expected.png")
    return ARTIFACTS


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """One engine with the real weights from $U2NET_HOME, shared like the app shares it."""
    yield Engine(load_settings([]))


@dataclass
class Server:
    """A real ``python app.py`` process on a free loopback port."""

    url: str
    process: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_server(tmp: Path, *flags: str, env: dict[str, str] | None = None, timeout: float = 120) -> Server:
    """Start the app with ``flags`` and wait until ``/healthz`` answers (or the process dies)."""
    port = free_port()
    log_path = tmp / f"server-{port}.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), *flags],
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return Server(url, process, log_path)
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"server did not answer /healthz in {timeout} s:\n{log_path.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app, launched once for the API and browser tests, like gradio's own ``connect`` fixture."""
    running = launch_server(tmp_path_factory.mktemp("server"))
    yield running
    stop_server(running)
