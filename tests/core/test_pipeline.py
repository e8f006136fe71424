"""Model tier: the real u2net/u2netp weights through ``remove_background``.

Parity against ``rembg.remove()`` on the same weights, golden images, every
option, the reported provider and timings.
"""

from __future__ import annotations

import dataclasses
import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import (
    Engine,
    ImageTooComplex,
    InvalidOption,
    RemovalOptions,
    Settings,
    load_settings,
    remove_background,
)
from core.providers import resolve
from tests.conftest import (
    GOLDEN,
    PHOTOS,
    PHOTOS_DIR,
    alpha_of,
    mask_agreement,
    photo_bytes,
    save_failure,
)
from tests.core.helpers import png_bytes

pytestmark = pytest.mark.model

MAX_MAD = 0.5
MIN_IOU = 0.999


@pytest.fixture(scope="module")
def rembg_sessions() -> dict[str, object]:
    from rembg import new_session

    return {name: new_session(name) for name in ("u2net", "u2netp")}


@pytest.mark.parametrize("model", ["u2net", "u2netp"])
@pytest.mark.parametrize("photo", PHOTOS)
def test_mask_matches_rembg(engine: Engine, rembg_sessions: dict[str, object], model: str, photo: str) -> None:
    from rembg import remove

    data = photo_bytes(photo)
    result = engine.remove(data, RemovalOptions(model=model, provider="cpu"))
    expected = alpha_of(remove(data, session=rembg_sessions[model]))
    mad, iou = mask_agreement(alpha_of(result.image), expected)
    if mad > MAX_MAD or iou < MIN_IOU:
        save_failure(f"parity-{model}-{photo}", result.image, Image.fromarray(expected.astype(np.uint8)))
    assert mad <= MAX_MAD and iou >= MIN_IOU, (mad, iou)


@pytest.mark.parametrize("model", ["u2net", "u2netp"])
def test_golden_rembg_output(engine: Engine, model: str) -> None:
    """rembg's own committed output for anime-girl-1 (tests/golden)."""
    expected_image = Image.open(GOLDEN / f"anime-girl-1.{model}.png")
    result = engine.remove(photo_bytes("anime-girl-1.jpg"), RemovalOptions(model=model))
    mad, iou = mask_agreement(alpha_of(result.image), alpha_of(expected_image))
    if mad > MAX_MAD or iou < MIN_IOU:
        save_failure(f"golden-{model}", result.image, expected_image)
    assert mad <= MAX_MAD and iou >= MIN_IOU, (mad, iou)


def test_result_fields(engine: Engine) -> None:
    result = engine.remove(photo_bytes("car-1.jpg"))
    assert result.model == "u2net"
    # auto on a machine without an accelerator: the CPU runtime that exact runs on here (tune's choice)
    assert result.provider == resolve(engine.choose(RemovalOptions()).provider)[0] in ("cpu", "openvino")
    assert result.media_type == "image/png"
    assert set(result.timings) == {"decode", "preprocess", "inference", "postprocess", "encode", "total"}
    assert result.timings["total"] >= result.timings["inference"] > 0
    assert result.image.mode == "RGBA" and result.mask.mode == "L"
    assert result.image.size == result.mask.size == (480, 360)
    decoded = Image.open(io.BytesIO(result.data))
    assert decoded.format == "PNG" and decoded.size == (480, 360)
    assert np.array_equal(np.asarray(decoded), np.asarray(result.image))
    report = result.report()
    assert report["provider"] == result.provider and report["width"] == 480


def test_same_session_shared(engine: Engine) -> None:
    a = engine.sessions.get("u2netp", "cpu")
    b = engine.sessions.get("u2netp", "auto")
    assert a is b
    assert a.session.get_providers()[0] == "CPUExecutionProvider"


def test_input_kinds_agree(engine: Engine, tmp_path: Path) -> None:
    """bytes, a path, a PIL image and a numpy array give the same mask."""
    data = photo_bytes("coffee.png")
    path = tmp_path / "no-extension"
    path.write_bytes(data)
    pil = Image.open(io.BytesIO(data))
    opts = RemovalOptions(model="u2netp")
    masks = [np.asarray(engine.remove(source, opts).mask) for source in (data, path, str(path), pil, np.asarray(pil))]
    for mask in masks[1:]:
        assert np.array_equal(mask, masks[0])


def test_decodes_by_content_not_name(engine: Engine) -> None:
    result = engine.remove(PHOTOS_DIR / "plants-1.jpg", RemovalOptions(model="u2netp"))  # a PNG in disguise
    assert result.image.size == (987, 1481)


def test_exif_orientation_applied(engine: Engine) -> None:
    upright = Image.open(PHOTOS_DIR / "car-1.jpg")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera stores for orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif)
    result = engine.remove(buf.getvalue(), RemovalOptions(model="u2netp"))
    assert result.image.size == upright.size
    plain = engine.remove(upright, RemovalOptions(model="u2netp"))
    _, iou = mask_agreement(alpha_of(result.mask), alpha_of(plain.mask))
    assert iou > 0.97  # re-encoded JPEG, so not identical, but the same subject the same way up


def test_transparent_pixels_cleared(engine: Engine) -> None:
    arr = np.asarray(engine.remove(photo_bytes("car-1.jpg")).image)
    hidden = arr[..., 3] == 0
    assert hidden.any()
    assert not arr[hidden][:, :3].any()
    visible = arr[..., 3] == 255
    original = np.asarray(Image.open(PHOTOS_DIR / "car-1.jpg"))
    assert np.array_equal(arr[visible][:, :3], original[visible])  # straight alpha: colours kept


def test_png_webp_jpeg_outputs(engine: Engine) -> None:
    data = photo_bytes("chelsea.png")
    png = engine.remove(data, RemovalOptions(model="u2netp"))
    lossless = engine.remove(data, RemovalOptions(model="u2netp", output_format="webp"))
    decoded = Image.open(io.BytesIO(lossless.data))
    assert lossless.media_type == "image/webp" and decoded.format == "WEBP"
    # lossless WebP keeps every visible pixel and the alpha exactly
    a, b = np.asarray(decoded.convert("RGBA")), np.asarray(png.image)
    assert np.array_equal(a[..., 3], b[..., 3])
    assert np.array_equal(a[b[..., 3] > 0], b[b[..., 3] > 0])
    lossy = engine.remove(data, RemovalOptions(model="u2netp", output_format="webp", quality=60))
    assert len(lossy.data) < len(lossless.data)
    assert Image.open(io.BytesIO(lossy.data)).mode == "RGBA"
    jpeg = engine.remove(data, RemovalOptions(model="u2netp", output_format="jpg"))
    im = Image.open(io.BytesIO(jpeg.data))
    assert jpeg.media_type == "image/jpeg" and im.format == "JPEG" and im.mode == "RGB"
    background = png.mask.point(lambda v: 255 if v == 0 else 0)
    pixels = np.asarray(im)[np.asarray(background) > 0]
    assert pixels.mean() > 245  # composited on white


def test_mask_only(engine: Engine) -> None:
    result = engine.remove(photo_bytes("car-1.jpg"), RemovalOptions(only_mask=True))
    decoded = Image.open(io.BytesIO(result.data))
    assert decoded.mode == "L"
    assert np.array_equal(np.asarray(decoded), np.asarray(result.mask))
    plain = engine.remove(photo_bytes("car-1.jpg"))
    assert np.array_equal(np.asarray(result.mask), alpha_of(plain.image).astype(np.uint8))


def test_background_colour(engine: Engine) -> None:
    result = engine.remove(photo_bytes("car-1.jpg"), RemovalOptions(bgcolor=(0, 0, 255, 255)))
    arr = np.asarray(result.image)
    background = np.asarray(result.mask) == 0
    assert (arr[background] == [0, 0, 255, 255]).all()
    assert (arr[..., 3] == 255).all()


def test_background_image(engine: Engine) -> None:
    backdrop = Image.new("RGB", (64, 32), (10, 200, 30))
    result = engine.remove(photo_bytes("car-1.jpg"), RemovalOptions(background_image=backdrop))
    arr = np.asarray(result.image)
    background = np.asarray(result.mask) == 0
    assert result.image.size == (480, 360)
    assert (np.abs(arr[background][:, :3].astype(int) - [10, 200, 30]) <= 1).all()


def test_crop_to_subject(engine: Engine) -> None:
    full = engine.remove(photo_bytes("car-1.jpg"))
    box = full.mask.point(lambda v: 255 if v > 10 else 0).getbbox()
    assert box is not None
    cropped = engine.remove(photo_bytes("car-1.jpg"), RemovalOptions(crop=True))
    assert cropped.image.size == (box[2] - box[0], box[3] - box[1])
    margin = engine.remove(photo_bytes("car-1.jpg"), RemovalOptions(crop=True, crop_margin=5))
    expected_w = min(480, box[2] + 5) - max(0, box[0] - 5)
    assert margin.image.width == expected_w
    assert cropped.mask.size == cropped.image.size


def test_post_process_mask_matches_rembg(engine: Engine, rembg_sessions: dict[str, object]) -> None:
    from rembg import remove

    data = photo_bytes("anime-girl-1.jpg")
    result = engine.remove(data, RemovalOptions(post_process_mask=True))
    expected = alpha_of(remove(data, session=rembg_sessions["u2net"], post_process_mask=True))
    assert set(np.unique(np.asarray(result.mask))) <= {0, 255}
    mad, iou = mask_agreement(alpha_of(result.image), expected)
    assert mad <= MAX_MAD and iou >= MIN_IOU


def test_alpha_matting_matches_rembg(engine: Engine, rembg_sessions: dict[str, object]) -> None:
    from rembg import remove

    data = photo_bytes("car-1.jpg")
    opts = RemovalOptions(alpha_matting=True, alpha_matting_erode_size=15)
    result = engine.remove(data, opts)
    expected = alpha_of(remove(data, session=rembg_sessions["u2net"], alpha_matting=True, alpha_matting_erode_size=15))
    mad, iou = mask_agreement(alpha_of(result.image), expected)
    assert mad <= MAX_MAD and iou >= MIN_IOU
    plain = engine.remove(data)
    assert not np.array_equal(np.asarray(result.mask), np.asarray(plain.mask))
    assert np.array_equal(np.asarray(result.mask), alpha_of(result.image).astype(np.uint8))


def test_concurrent_requests_share_one_session(engine: Engine) -> None:
    photos = ["car-1.jpg", "chelsea.png", "coffee.png", "rocket.jpg"]
    expected = {p: np.asarray(engine.remove(photo_bytes(p), RemovalOptions(model="u2netp")).mask) for p in photos}
    got: dict[str, np.ndarray] = {}

    def work(photo: str) -> None:
        got[photo] = np.asarray(engine.remove(photo_bytes(photo), RemovalOptions(model="u2netp")).mask)

    threads = [threading.Thread(target=work, args=(p,)) for p in photos]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for photo in photos:
        assert np.array_equal(got[photo], expected[photo]), photo


def test_module_level_function_uses_default_engine() -> None:
    result = remove_background(photo_bytes("car-1.jpg"), RemovalOptions(model="u2netp", provider="cpu"))
    assert result.provider == "cpu" and result.model == "u2netp"


def test_io_binding_path_equals_plain_run(engine: Engine) -> None:
    """The GPU path's IO binding, exercised on the CPU device: same mask as a plain run."""
    from core.imaging import to_tensor
    from core.sessions import run_bound

    session = engine.sessions.get("u2netp", "cpu")
    spec = session.spec
    tensor = to_tensor(Image.open(PHOTOS_DIR / "car-1.jpg"), spec.input_size, spec.mean, spec.std)
    plain = session.session.run(None, {session.input_name: tensor})[0]
    assert np.array_equal(run_bound(session.session, tensor, device="cpu"), plain)
    assert np.array_equal(session.run(tensor), plain)


# --- bounded work (issue: hardening) -----------------------------------------------------------


def _settings(**changes: object) -> Settings:
    return dataclasses.replace(load_settings([], environ={}), **changes)  # type: ignore[arg-type]


def test_a_format_that_cannot_hold_the_image_is_refused_before_inference(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 16384-pixel-wide panorama asked as WebP (16383 at most): a typed error, no inference run."""
    panorama = png_bytes(Image.new("RGB", (16_384, 8), (90, 120, 30)))
    session = engine.sessions.get("u2netp", "cpu")
    runs: list[int] = []
    real_run = session.run
    monkeypatch.setattr(session, "run", lambda batch: runs.append(1) or real_run(batch))
    with pytest.raises(InvalidOption, match="16,383 pixels per side") as info:
        engine.remove(panorama, RemovalOptions(model="u2netp", provider="cpu", output_format="webp"))
    assert info.value.option == "output_format" and runs == []
    assert engine.remove(panorama, RemovalOptions(model="u2netp", provider="cpu")).image.size == (16_384, 8)


def test_every_result_is_a_whole_image_of_the_right_size(engine: Engine) -> None:
    for fmt in ("png", "webp", "jpeg"):
        result = engine.remove(photo_bytes("car-1.jpg"), RemovalOptions(model="u2netp", output_format=fmt))
        im = Image.open(io.BytesIO(result.data))
        im.load()
        assert result.data and im.size == (480, 360), fmt


def test_alpha_matting_above_its_pixel_budget_runs_downscaled() -> None:
    engine = Engine(_settings(matting_max_pixels=40_000))
    data = photo_bytes("car-1.jpg")  # 172,800 pixels: matted at 40,000, then upsampled
    matted = engine.remove(data, RemovalOptions(model="u2netp", provider="cpu", alpha_matting=True))
    plain = engine.remove(data, RemovalOptions(model="u2netp", provider="cpu"))
    assert matted.image.size == (480, 360)
    assert not np.array_equal(np.asarray(matted.mask), np.asarray(plain.mask))
    _, iou = mask_agreement(alpha_of(matted.image), alpha_of(plain.image))
    assert iou > 0.9, "matting refines the edges, it does not replace the subject"


def test_alpha_matting_is_refused_when_its_memory_estimate_does_not_fit(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core import pipeline

    monkeypatch.setattr(pipeline, "available_bytes", lambda: 50 * 2**20)
    with pytest.raises(ImageTooComplex, match="MiB are free"):
        engine.remove(photo_bytes("car-1.jpg"), RemovalOptions(model="u2netp", alpha_matting=True))
    assert engine.remove(photo_bytes("car-1.jpg"), RemovalOptions(model="u2netp")).image.size == (480, 360)


def test_erode_size_is_capped() -> None:
    with pytest.raises(InvalidOption, match="0 to 20"):
        RemovalOptions(alpha_matting=True, alpha_matting_erode_size=21).validated()


def test_sessions_stay_within_their_memory_budget() -> None:
    """u2net (counted over 400 MiB) and u2netp (about 40) do not both fit in 300 MiB: the older goes."""
    engine = Engine(_settings(session_memory_mb=300))
    engine.sessions.get("u2net", "cpu")
    engine.sessions.get("u2netp", "cpu")
    assert engine.sessions.keys() == [("u2netp", "cpu")]
    engine.sessions.get("u2net", "cpu")
    assert engine.sessions.keys() == [("u2net", "cpu")]
    unlimited = Engine(_settings(session_memory_mb=0))
    unlimited.sessions.get("u2net", "cpu")
    unlimited.sessions.get("u2netp", "cpu")
    assert sorted(unlimited.sessions.keys()) == [("u2net", "cpu"), ("u2netp", "cpu")]


def test_health_says_why_the_default_model_cannot_load(tmp_path: Path) -> None:
    engine = Engine(_settings(model_home=tmp_path, fetch_missing=False, default_provider="cpu"))
    assert engine.health() == []  # nothing tried yet
    engine.warm()
    reasons = engine.health()
    assert len(reasons) == 1 and "u2net" in reasons[0] and "python -m models fetch u2net" in reasons[0]
    assert Engine(_settings(default_provider="cpu")).health() == []


def test_health_says_when_the_default_accelerator_cannot_run() -> None:
    from core import available_providers

    cuda = {p.name: p for p in available_providers()}["cuda"]
    if cuda.available:
        pytest.skip("CUDA can run here")
    reasons = Engine(_settings(default_provider="cuda")).health()
    assert any("cuda" in r and cuda.reason in r for r in reasons), reasons
