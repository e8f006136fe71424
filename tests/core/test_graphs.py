"""Pre- and post-processing as ONNX graphs (``processing = graph``) against the exact path.

The graphs run on the CPU here exactly as they would on a GPU (same graphs, same IO
binding, another device name); the masks must equal the exact path's, which equals
``rembg.remove()``'s (``tests/core/test_pipeline.py::test_mask_matches_rembg``): alpha MAE <= 0.5/255 and
IoU >= 0.999.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from base.settings import load_settings
from core import Engine, RemovalOptions
from core.graphs import lanczos_matrix
from tests.conftest import PHOTOS, PHOTOS_DIR, alpha_of, mask_agreement, photo_bytes

MAX_MAD = 0.5
MIN_IOU = 0.999


def pillow_like_resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Two passes of ``lanczos_matrix`` with Pillow's rounding, in numpy (horizontal first)."""
    out = arr.astype(np.float32)
    out = np.clip(np.floor(np.einsum("hwc,Ww->hWc", out, lanczos_matrix(arr.shape[1], width)) + 0.5), 0, 255)
    out = np.clip(np.floor(np.einsum("hwc,Hh->Hwc", out, lanczos_matrix(arr.shape[0], height)) + 0.5), 0, 255)
    return out.astype(np.uint8)


@pytest.mark.parametrize(
    ("name", "size"), [("car-1.jpg", (320, 320)), ("rocket.jpg", (320, 320)), ("car-1.jpg", (1000, 700))]
)
def test_the_matrices_are_pillows_lanczos(name: str, size: tuple[int, int]) -> None:
    im = Image.open(PHOTOS_DIR / name).convert("RGB")
    expected = np.asarray(im.resize(size, Image.Resampling.LANCZOS)).astype(int)
    actual = pillow_like_resize(np.asarray(im), *size).astype(int)
    difference = np.abs(actual - expected)
    # float32 products flip a rounding at a handful of samples, by one level
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3


def test_matrix_rows_sum_to_one_and_are_cached() -> None:
    matrix = lanczos_matrix(1920, 320)
    assert matrix.shape == (320, 1920) and np.allclose(matrix.sum(axis=1), 1.0, atol=1e-5)
    assert lanczos_matrix(1920, 320) is matrix and not matrix.flags.writeable


@pytest.fixture(scope="module")
def graph_engine() -> Engine:
    return Engine(dataclasses.replace(load_settings([]), processing="graph"))


@pytest.mark.model
@pytest.mark.parametrize("model", ["u2netp", "u2net"])
def test_graph_masks_equal_the_exact_path(engine: Engine, graph_engine: Engine, model: str) -> None:
    assert graph_engine.sessions.get(model, "cpu").graphs is not None
    assert engine.sessions.get(model, "cpu").graphs is None  # auto: exact on the CPU
    for name in PHOTOS:
        options = RemovalOptions(model=model, provider="cpu")
        exact = engine.remove(photo_bytes(name), options)
        graph = graph_engine.remove(photo_bytes(name), options)
        mad, iou = mask_agreement(alpha_of(graph.mask), alpha_of(exact.mask))
        assert mad <= MAX_MAD and iou >= MIN_IOU, (name, mad, iou)


@pytest.mark.model
def test_graph_path_with_every_option(graph_engine: Engine) -> None:
    """RGBA input, crop, a colour, JPEG and the mask only all go through the graph path."""
    data = photo_bytes("plants-1.jpg")  # an RGBA PNG
    for options in (
        RemovalOptions(model="u2netp", crop=True, crop_margin=5),
        RemovalOptions(model="u2netp", bgcolor="#00ff00", output_format="jpeg"),
        RemovalOptions(model="u2netp", only_mask=True, output_format="webp"),
    ):
        result = graph_engine.remove(data, options)
        assert result.image.size[0] > 0 and result.data


@pytest.mark.model
def test_flat_prediction_means_no_subject(graph_engine: Engine) -> None:
    session = graph_engine.sessions.get("u2netp", "cpu")
    assert session.graphs is not None
    mask = session.graphs.finish(np.full((1, 1, 320, 320), 0.3, np.float32), (64, 48))
    assert mask.shape == (48, 64) and mask.dtype == np.uint8 and not mask.any()


@pytest.mark.model
def test_graph_cutout_equals_the_exact_cutout(engine: Engine, graph_engine: Engine) -> None:
    """The cutout composed on the provider: the exact path's pixels where the masks agree."""
    options = RemovalOptions(model="u2netp", provider="cpu")
    for name in ("car-1.jpg", "chelsea.png"):
        exact = np.asarray(engine.remove(photo_bytes(name), options).image).astype(int)
        graph = np.asarray(graph_engine.remove(photo_bytes(name), options).image).astype(int)
        assert graph.shape == exact.shape and graph.shape[2] == 4
        assert not graph[graph[..., 3] == 0].any()  # hidden colour cleared
        both = (graph[..., 3] > 0) & (exact[..., 3] > 0)
        assert (graph[..., :3][both] == exact[..., :3][both]).all()  # colour kept, straight alpha
