"""Shared test fixtures: the photos, one engine with the real weights, the launched server, failure artefacts."""

from __future__ import annotations

import atexit
import io
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from base.assets import EVAL_PHOTOS, PHOTOS_DIR
from benchmark.server import ROOT, Server, free_port, launch_server, stop_server
from core import Engine, load_settings

#: rembg's own outputs, the golden references (the photos themselves are the product's, in assets/).
GOLDEN = Path(__file__).parent / "golden"
ARTIFACTS = Path(__file__).parent / "_artifacts"
#: Real photos (input, alpha-bearing or not) used for parity checks: the variants' evaluation photos.
PHOTOS = EVAL_PHOTOS
__all__ = ["PHOTOS_DIR", "ROOT", "Server", "free_port", "launch_server", "stop_server"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Once the run is reported, the test process ends without Python's finalization, with pytest's exit status.

    One CI run of the slow tier passed every test, printed its summary, and then died of a segmentation fault in
    finalization (exit 139). This process has hosted native runtimes that no product process combines: Ray's driver
    started and shut down once per Ray test module (which Ray does not support in one process: ray-project/ray#31145),
    OpenVINO, onnxruntime and numba, with their threads. The product's own processes (the server, ``app.py batch``,
    ``serve run``) are tested as subprocesses, with their exit codes, so nothing of theirs is skipped here.
    """
    atexit.register(_end_now, int(exitstatus))


def _end_now(status: int) -> None:
    """Registered last, so it runs first at exit: after every test fixture and pytest's own cleanup."""
    if "ray" in sys.modules:  # a Ray a test left running: its processes go with us, as Ray's own exit hook would do
        import ray

        if ray.is_initialized():
            ray.shutdown()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def photo_bytes(name: str) -> bytes:
    return (PHOTOS_DIR / name).read_bytes()


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


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app, launched once for the API and browser tests, like gradio's own ``connect`` fixture."""
    running = launch_server(tmp_path_factory.mktemp("server"))
    yield running
    stop_server(running)
