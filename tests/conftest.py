"""Shared test fixtures: the photos, one engine with the real weights, the launched server, failure artefacts."""

from __future__ import annotations

import io
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
