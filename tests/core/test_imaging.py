"""Unit tier: the pixel work is bit-identical to rembg's where it claims to be."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from base.errors import InvalidOption
from core import imaging
from core.formats import FORMATS
from tests.conftest import PHOTOS_DIR


@pytest.mark.parametrize("size", [(320, 320), (1920, 1080), (999, 37), (5, 4000), (640, 1134), (700, 567)])
def test_striped_resize_is_exact(size: tuple[int, int]) -> None:
    src = Image.open(PHOTOS_DIR / "cloth-1.jpg").convert("RGB")
    expected = np.asarray(src.resize(size, Image.Resampling.LANCZOS))
    assert np.array_equal(np.asarray(imaging.resize(src, size)), expected)


def test_tensor_equals_rembg_normalize() -> None:
    from rembg.sessions.base import BaseSession

    class Input:
        name = "input.1"

    class Inner:
        def get_inputs(self) -> list[Input]:
            return [Input()]

    class Fake:  # only the attribute rembg's normalize reads
        inner_session = Inner()

    im = Image.open(PHOTOS_DIR / "plants-1.jpg")
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    expected = BaseSession.normalize(Fake(), im, mean, std, (320, 320))["input.1"]  # type: ignore[arg-type]
    actual = imaging.to_tensor(im, 320, mean, std)
    assert actual.dtype == np.float32 and actual.shape == (1, 3, 320, 320)
    assert np.array_equal(actual, expected)


def test_flat_prediction_is_empty_mask() -> None:
    mask = imaging.to_mask(np.ones((1, 1, 8, 8), np.float32), (20, 10))
    assert mask.size == (20, 10) and not np.asarray(mask).any()


def test_cutout_multiplies_existing_alpha() -> None:
    im = Image.new("RGBA", (4, 4), (10, 20, 30, 128))
    mask = Image.new("L", (4, 4), 255)
    assert np.asarray(imaging.cutout(im, mask))[0, 0, 3] == 128


def test_subject_box() -> None:
    alpha = Image.new("L", (100, 50), 0)
    alpha.paste(255, (10, 20, 30, 40))
    assert imaging.subject_box(alpha, 0) == (10, 20, 30, 40)
    assert imaging.subject_box(alpha, 15) == (0, 5, 45, 50)
    assert imaging.subject_box(Image.new("L", (5, 5), 3), 0) is None


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "L"])
def test_png_roundtrip(mode: str) -> None:
    arr = np.random.default_rng(1).integers(0, 256, (33, 17, len(mode)), dtype=np.uint8)
    im = Image.fromarray(arr[..., 0] if mode == "L" else arr, mode)
    back = Image.open(io.BytesIO(FORMATS["png"].encode(im, None)))
    assert back.mode == mode and np.array_equal(np.asarray(back), np.asarray(im))


def test_a_forked_child_resizes_with_a_pool_of_its_own() -> None:
    """A fork-started process pool once hung: the child inherited the resize pool without its threads."""
    import multiprocessing

    big = Image.new("RGB", (1600, 1200), (10, 20, 30))
    imaging.resize(big, (800, 600))  # the parent's pool exists now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        size = pool.apply_async(_resized_size, (big,)).get(timeout=60)
    assert size == (800, 600)


def _resized_size(im: Image.Image) -> tuple[int, int]:
    return imaging.resize(im, (800, 600)).size


# --- encode limits, checked before encoding (issue: hardening) -----------------------------------


@pytest.mark.parametrize(("fmt", "side"), [("webp", 16_383), ("jpeg", 65_500)])
def test_each_format_writes_up_to_its_side_limit_and_refuses_past_it(fmt: str, side: int) -> None:
    row = FORMATS[fmt]
    assert row.max_side == side
    mode = "RGB" if fmt == "jpeg" else "RGBA"
    written = Image.open(io.BytesIO(row.write(Image.new(mode, (side, 1)), None)))
    assert written.size == (side, 1)
    with pytest.raises(InvalidOption, match=f"{side:,} pixels per side") as info:
        row.write(Image.new(mode, (side + 1, 1)), None)
    assert info.value.option == "output_format" and "png" in info.value.message


@pytest.mark.parametrize("size", [(65_535, 1), (1, 65_535)])
def test_png_writes_the_longest_strips_the_input_limits_let_through(size: tuple[int, int]) -> None:
    """fpng, the writer before, answered an empty body past 2^24 pixels per side (a 200 with 0 bytes)."""
    im = Image.new("RGBA", size, (1, 2, 3, 4))
    im.putpixel((size[0] - 1, size[1] - 1), (200, 100, 50, 255))
    back = Image.open(io.BytesIO(FORMATS["png"].write(im, None)))
    assert back.size == size and np.array_equal(np.asarray(back), np.asarray(im))


def test_an_encoder_never_hands_back_an_empty_body(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    silent = dataclasses.replace(FORMATS["webp"], encode=lambda im, quality: b"")
    with pytest.raises(InvalidOption, match="wrote nothing"):
        silent.write(Image.new("RGB", (4, 4)), None)

    def refusing(im: Image.Image, quality: int | None) -> bytes:
        raise OSError("encoder error -2 when writing image file")

    with pytest.raises(InvalidOption, match="refused"):
        dataclasses.replace(FORMATS["webp"], encode=refusing).write(Image.new("RGB", (4, 4)), None)


# --- alpha matting, bounded ------------------------------------------------------------------------


def test_matting_size_keeps_the_aspect_within_the_budget() -> None:
    assert imaging.matting_size((800, 600), 1_000_000) == (800, 600)
    w, h = imaging.matting_size((3840, 2160), 1_000_000)
    assert w * h <= 1_000_000 and abs(w / h - 3840 / 2160) < 0.01
    assert imaging.matting_bytes((3840, 2160), 1_000_000) < imaging.matting_bytes((3840, 2160), 10**8)


def test_matting_above_the_budget_runs_downscaled_at_full_size() -> None:
    im = Image.open(PHOTOS_DIR / "car-1.jpg").convert("RGB")  # 480x360
    mask = Image.new("L", im.size, 0)
    mask.paste(255, (120, 90, 360, 270))
    matted = imaging.alpha_matting(im, mask, 240, 10, 10, max_pixels=40_000)
    assert matted is not None and matted.mode == "RGBA" and matted.size == im.size
    alpha = np.asarray(matted.getchannel("A"))
    assert alpha[180, 240] == 255 and alpha[10, 10] == 0  # the sure regions stay sure
    assert ((alpha > 0) & (alpha < 255)).any()  # and the edge between them is matted
    assert not np.asarray(matted)[alpha == 0].any()  # hidden colour is not kept


def test_the_matting_warm_up_runs() -> None:
    """The warm-up runs in a background thread that only logs a failure: a wrong call once went unnoticed.

    A call that raised would fail here; one that made the trimap degenerate would return None having compiled
    nothing, so the warm-up must give back a real matte: soft alpha between the sure regions.
    """
    matted = imaging.warm_alpha_matting()
    assert matted is not None and matted.mode == "RGBA" and matted.size == (48, 48)
    alpha = np.asarray(matted.getchannel("A"))
    assert alpha[24, 24] == 255 and alpha[2, 2] == 0
    assert ((alpha > 0) & (alpha < 255)).any()
