"""API tier: the Gradio client API of a real ``python app.py`` through ``gradio_client``.

``/remove_background`` with its defaults and every option group, typed errors
surfacing as ``AppError`` with the engine's own message, ``/remove_background_batch``
with a bad file among good ones, and the queue being the only way in.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from core import Engine, RemovalError, RemovalOptions
from core.providers import resolve
from tests.conftest import PHOTOS_DIR, ROOT, Server, alpha_of, mask_agreement, photo_bytes

pytestmark = pytest.mark.api

MAX_MAD = 0.5
MIN_IOU = 0.999
PHOTO = "car-1.jpg"
PHOTO_SIZE = (480, 360)
STAGES = {"decode", "preprocess", "inference", "postprocess", "encode", "total"}
REPORT_KEYS = {"model", "provider", "width", "height", "format", "bytes", "timings_ms", "batch", "backend", "precision"}
REPORT_KEYS |= {"precision_requested", "precision_ran", "precision_note"}
REMOVE_PARAMETERS = [
    "image", "model", "provider", "output_format", "quality", "only_mask", "bgcolor", "background_image",
    "crop", "crop_margin", "alpha_matting", "alpha_matting_foreground_threshold",
    "alpha_matting_background_threshold", "alpha_matting_erode_size", "post_process_mask",
    # appended after the first release: existing positional callers keep working
    "mask_edit", "blur_background", "shadow", "shadow_offset_x", "shadow_offset_y", "shadow_blur", "shadow_opacity",
    "precision",
    "extras",
]  # fmt: skip
BATCH_PARAMETERS = ["files", "model", "provider", "output_format"]
BATCHED_PARAMETERS = ["image", "model", "provider", "output_format"]
NOT_AN_IMAGE = ROOT / "README.md"
#: A raw call's data: no image, then every option's value in order.
RAW_DATA = [None, "u2netp", "cpu", "png", 0, False, "", None, False, 0, False, 240, 10, 10, False, None, 0, False]
RAW_DATA += [15, 15, 20, 50, "", ""]  # ..., precision, extras


@pytest.fixture(scope="module")
def client(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    yield Client(
        server.url, verbose=False, download_files=tmp_path_factory.mktemp("downloads"), analytics_enabled=False
    )


def remove(client: Client, image: Path = PHOTOS_DIR / PHOTO, **options: Any) -> tuple[Path, dict[str, Any]]:
    path, report = client.predict(handle_file(str(image)), api_name="/remove_background", **options)
    return Path(path), report


def opened(path: Path) -> Image.Image:
    im = Image.open(path)
    im.load()
    return im


def assert_parity(actual: np.ndarray, expected: np.ndarray) -> None:
    mad, iou = mask_agreement(actual, expected)
    assert mad <= MAX_MAD and iou >= MIN_IOU, (mad, iou)


def assert_serving(server: Server) -> None:
    assert server.process.poll() is None
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def ran_on(engine: Engine, **options: Any) -> str:
    """The provider a request with ``options`` runs on here: with auto and exact, onnxruntime's CPU, or
    OpenVINO where ``python -m models tune`` measured it faster at rembg's masks (``core.precision``)."""
    return resolve(engine.choose(RemovalOptions(**options)).provider)[0]


@pytest.fixture(scope="module")
def library_u2netp(engine: Engine) -> np.ndarray:
    return alpha_of(engine.remove(photo_bytes(PHOTO), RemovalOptions(model="u2netp", provider="cpu")).image)


# --- the endpoints as documented ---------------------------------------------------------


def test_named_endpoints_and_parameters(client: Client) -> None:
    """Exactly the two documented endpoints, with the documented parameter names; the UI events stay private."""
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {
        "/remove_background",
        "/remove_background_batch",
        "/remove_background_batched",
    }
    assert not api["unnamed_endpoints"]
    remove_endpoint = api["named_endpoints"]["/remove_background"]
    assert [p["parameter_name"] for p in remove_endpoint["parameters"]] == REMOVE_PARAMETERS
    assert len(remove_endpoint["returns"]) == 2
    batch = api["named_endpoints"]["/remove_background_batch"]
    assert [p["parameter_name"] for p in batch["parameters"]] == BATCH_PARAMETERS
    batched = api["named_endpoints"]["/remove_background_batched"]
    assert [p["parameter_name"] for p in batched["parameters"]] == BATCHED_PARAMETERS


def test_defaults_match_the_library(client: Client, engine: Engine) -> None:
    path, report = remove(client)
    assert path.is_file() and path.name == "car-1-cutout.png"
    im = opened(path)
    assert (im.format, im.mode, im.size) == ("PNG", "RGBA", PHOTO_SIZE)

    assert set(report) == REPORT_KEYS
    assert report["provider"] == ran_on(engine)
    assert report["model"] == engine.settings.default_model == "u2net"
    assert (report["width"], report["height"]) == PHOTO_SIZE
    assert report["format"] == "png"
    assert report["bytes"] == path.stat().st_size
    assert set(report["timings_ms"]) == STAGES
    assert 0 < report["timings_ms"]["inference"] <= report["timings_ms"]["total"]

    expected = engine.remove(photo_bytes(PHOTO), RemovalOptions(provider="cpu"))
    assert_parity(alpha_of(im), alpha_of(expected.image))


# --- option groups (u2netp: ~10x cheaper on a CPU) ---------------------------------------------


def test_model_u2netp(client: Client, engine: Engine, library_u2netp: np.ndarray) -> None:
    path, report = remove(client, model="u2netp")
    assert report["model"] == "u2netp" and report["provider"] == ran_on(engine, model="u2netp")
    assert_parity(alpha_of(opened(path)), library_u2netp)


def test_precision_option(client: Client, engine: Engine) -> None:
    _, report = remove(client, model="u2netp", precision="fast")
    choice = engine.choose(RemovalOptions(model="u2netp", precision="fast"))  # from this machine's tune record
    assert (report["precision"], report["precision_ran"], report["precision_note"]) == (
        choice.precision,
        choice.ran,
        choice.note,
    )
    _, exact = remove(client, model="u2netp", precision="exact")
    assert (exact["precision"], exact["precision_ran"]) == ("fp32", "exact")


def test_webp_with_quality(client: Client) -> None:
    path, report = remove(client, model="u2netp", output_format="webp", quality=80)
    assert path.suffix == ".webp" and report["format"] == "webp"
    data = path.read_bytes()
    assert report["bytes"] == len(data)
    assert b"VP8L" not in data and b"VP8 " in data  # lossy
    im = opened(path)
    assert (im.format, im.mode, im.size) == ("WEBP", "RGBA", PHOTO_SIZE)


def test_jpeg(client: Client) -> None:
    path, report = remove(client, model="u2netp", output_format="jpeg")
    assert path.suffix == ".jpg" and report["format"] == "jpeg"
    im = opened(path)
    assert (im.format, im.mode, im.size) == ("JPEG", "RGB", PHOTO_SIZE)


def test_only_mask(client: Client, library_u2netp: np.ndarray) -> None:
    path, report = remove(client, model="u2netp", only_mask=True)
    assert path.name == "car-1-mask.png" and report["format"] == "png"
    im = opened(path)
    assert (im.format, im.mode, im.size) == ("PNG", "L", PHOTO_SIZE)
    assert_parity(alpha_of(im), library_u2netp)


def test_background_colour(client: Client, library_u2netp: np.ndarray) -> None:
    path, _ = remove(client, model="u2netp", bgcolor="#0000ff")
    pixels = np.asarray(opened(path).convert("RGBA"))
    assert (pixels[..., 3] == 255).all()
    background = pixels[library_u2netp == 0]
    assert len(background) > 1000
    assert (background == (0, 0, 255, 255)).all()


def test_background_image(client: Client, library_u2netp: np.ndarray, tmp_path: Path) -> None:
    backdrop = tmp_path / "backdrop.png"
    Image.new("RGB", (64, 48), (255, 0, 0)).save(backdrop)
    path, _ = remove(client, model="u2netp", background_image=handle_file(str(backdrop)))
    pixels = np.asarray(opened(path).convert("RGBA"))
    assert pixels.shape[:2] == PHOTO_SIZE[::-1]
    assert (pixels[..., 3] == 255).all()
    background = pixels[library_u2netp == 0]
    assert len(background) > 1000
    assert (background == (255, 0, 0, 255)).all()


def test_crop_with_margin(client: Client, engine: Engine) -> None:
    path, report = remove(client, model="u2netp", crop=True, crop_margin=5)
    im = opened(path)
    assert (report["width"], report["height"]) == im.size
    assert im.width <= PHOTO_SIZE[0] and im.height <= PHOTO_SIZE[1]
    assert im.width * im.height < PHOTO_SIZE[0] * PHOTO_SIZE[1]
    options = RemovalOptions(model="u2netp", provider="cpu", crop=True, crop_margin=5)
    assert im.size == engine.remove(photo_bytes(PHOTO), options).image.size
    no_margin = RemovalOptions(model="u2netp", provider="cpu", crop=True)
    assert im.size != engine.remove(photo_bytes(PHOTO), no_margin).image.size


def test_post_process_mask(client: Client) -> None:
    path, _ = remove(client, model="u2netp", post_process_mask=True)
    assert set(np.unique(alpha_of(opened(path))).tolist()) == {0.0, 255.0}


def test_alpha_matting(client: Client, library_u2netp: np.ndarray) -> None:
    path, report = remove(
        client,
        model="u2netp",
        alpha_matting=True,
        alpha_matting_foreground_threshold=240,
        alpha_matting_background_threshold=10,
        alpha_matting_erode_size=10,
    )
    im = opened(path)
    assert (im.mode, im.size) == ("RGBA", PHOTO_SIZE)
    assert report["model"] == "u2netp" and report["bytes"] == path.stat().st_size
    mad, iou = mask_agreement(alpha_of(im), library_u2netp)
    assert mad > 0 and iou > 0.9, (mad, iou)


def test_touch_up_blur_and_shadow(client: Client, library_u2netp: np.ndarray, tmp_path: Path) -> None:
    """The options added for the WebUI's touch-up, blur and shadow, as keyword parameters of the same endpoint."""
    strokes = tmp_path / "strokes.png"
    edit = Image.new("RGBA", (48, 36), (0, 0, 0, 0))
    edit.paste((0, 0, 0, 255), (0, 0, 24, 36))  # remove the left half
    edit.save(strokes)
    path, _ = remove(client, model="u2netp", mask_edit=handle_file(str(strokes)))
    alpha = alpha_of(opened(path))
    assert (alpha[:, :230] == 0).all()
    assert np.abs(alpha[:, 250:] - library_u2netp[:, 250:]).mean() <= MAX_MAD, "the right half as the model made it"

    path, _ = remove(client, model="u2netp", blur_background=30)
    assert (np.asarray(opened(path).convert("RGBA"))[..., 3] == 255).all()

    path, _ = remove(client, model="u2netp", shadow=True, bgcolor="#ffffff", shadow_opacity=80)
    pixels = np.asarray(opened(path).convert("RGB"))
    assert (pixels[library_u2netp == 0] < 200).any(), "a shadow darkens part of the white background"


def test_start_up_log_names_this_apps_share_flag(server: Server) -> None:
    log = server.log()
    assert "add --share for a public link" in log
    assert "share=True" not in log and "launch()" not in log


def test_alpha_matting_warms_up_at_start(server: Server) -> None:
    deadline = time.monotonic() + 600  # a cold numba cache compiles for minutes on a small CPU
    while "alpha matting is ready" not in server.log() and time.monotonic() < deadline:
        time.sleep(1)
    assert "alpha matting is ready" in server.log()


# --- errors ------------------------------------------------------------------------------


def library_error(engine: Engine, image: Path, **options: Any) -> str:
    """The message the engine itself raises for the same request."""
    with pytest.raises(RemovalError) as caught:
        engine.remove(image, RemovalOptions(**options))
    return caught.value.message


@pytest.mark.parametrize(
    ("image", "options", "names"),
    [
        (NOT_AN_IMAGE, {}, None),
        (PHOTOS_DIR / PHOTO, {"model": "u2netp", "output_format": "exe"}, "'output_format'"),
        (PHOTOS_DIR / PHOTO, {"model": "../../etc/passwd"}, "'model'"),
        (PHOTOS_DIR / PHOTO, {"model": "u2netp", "provider": "bogus"}, "'provider'"),
        (PHOTOS_DIR / PHOTO, {"model": "u2netp", "quality": 101, "output_format": "webp"}, "'quality'"),
        (PHOTOS_DIR / PHOTO, {"model": "u2netp", "bgcolor": "#zzzzzz"}, "'bgcolor'"),
    ],
    ids=["readme-as-image", "output-format-exe", "model-path", "provider-bogus", "quality-101", "bgcolor-bad"],
)
def test_errors_are_app_errors_with_the_engines_message(
    client: Client, server: Server, engine: Engine, image: Path, options: dict[str, Any], names: str | None
) -> None:
    with pytest.raises(AppError) as caught:
        remove(client, image, **options)
    message = str(caught.value)
    assert message == library_error(engine, image, **options)
    assert "Traceback" not in message
    if names is None:
        assert message == "the input is not a recognisable image"
    else:
        assert names in message
    assert_serving(server)


def test_serving_after_errors(client: Client, server: Server, engine: Engine) -> None:
    with pytest.raises(AppError):
        remove(client, NOT_AN_IMAGE)
    path, report = remove(client, model="u2netp")
    assert opened(path).size == PHOTO_SIZE and report["provider"] == ran_on(engine, model="u2netp")
    assert_serving(server)


# --- batch ------------------------------------------------------------------------------


def test_batch_with_a_bad_file(client: Client, engine: Engine) -> None:
    files = [PHOTOS_DIR / PHOTO, NOT_AN_IMAGE, PHOTOS_DIR / "chelsea.png"]
    zip_path, report = client.predict(
        [handle_file(str(f)) for f in files], model="u2netp", api_name="/remove_background_batch"
    )
    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == ["car-1-cutout.png", "chelsea-cutout.png"]
        for name, size in (("car-1-cutout.png", PHOTO_SIZE), ("chelsea-cutout.png", (451, 300))):
            with zf.open(name) as member:
                im = Image.open(member)
                im.load()
            assert (im.format, im.mode, im.size) == ("PNG", "RGBA", size)

    assert [row["file"] for row in report] == ["car-1.jpg", "README.md", "chelsea.png"]
    statuses = {row["file"]: row["status"] for row in report}
    assert statuses["car-1.jpg"] == statuses["chelsea.png"] == "ok"
    assert statuses["README.md"] == "error: the input is not a recognisable image"
    assert all(row["provider"] == ran_on(engine, model="u2netp") for row in report if row["status"] == "ok")


def test_batch_of_only_bad_files_has_no_zip(client: Client) -> None:
    zip_path, report = client.predict(
        [handle_file(str(NOT_AN_IMAGE))], model="u2netp", api_name="/remove_background_batch"
    )
    assert zip_path is None
    assert [row["status"] for row in report] == ["error: the input is not a recognisable image"]


def test_batched_requests_each_get_their_own_cutout(client: Client, engine: Engine) -> None:
    """Concurrent single-image jobs on the ``batch=True`` endpoint: each its own result, a bad one only its own error.

    With u2net-dynamic the jobs that arrive together share one inference call;
    whatever the grouping, every job must get the cutout of its own image.
    """
    photos = [PHOTO, "chelsea.png", "coffee.png"]
    jobs = [
        client.submit(
            handle_file(str(PHOTOS_DIR / p)), "u2net-dynamic", "cpu", "png", api_name="/remove_background_batched"
        )
        for p in photos
    ]
    bad = client.submit(
        handle_file(str(NOT_AN_IMAGE)), "u2net-dynamic", "cpu", "png", api_name="/remove_background_batched"
    )
    for photo, job in zip(photos, jobs, strict=True):
        path, report = job.result(timeout=300)
        assert report["model"] == "u2net-dynamic" and report["provider"] == "cpu" and report["batch"] >= 1
        expected = engine.remove(photo_bytes(photo), RemovalOptions(model="u2net", provider="cpu"))
        assert_parity(alpha_of(opened(Path(path))), alpha_of(expected.image))
    path, report = bad.result(timeout=300)
    assert path is None
    assert report == {"error": {"code": "invalid_image", "message": "the input is not a recognisable image"}}


# --- the queue is the only way in --------------------------------------------------------------


@pytest.mark.parametrize("route", ["/gradio_api/run/remove_background", "/gradio_api/api/remove_background"])
def test_queue_cannot_be_bypassed(server: Server, route: str) -> None:
    """``api_open=False``: Gradio's direct (unqueued) REST routes refuse the named endpoints."""
    response = httpx.post(f"{server.url}{route}", json={"data": RAW_DATA}, timeout=30)
    assert response.status_code >= 400
    assert "join the queue" in response.json()["detail"]


def test_queued_http_route_goes_through_the_queue(server: Server) -> None:
    """Gradio's ``/call`` route is the queued one: it hands out an event id and runs the handler from the queue."""
    response = httpx.post(f"{server.url}/gradio_api/call/remove_background", json={"data": RAW_DATA}, timeout=30)
    assert response.status_code == 200
    event_id = response.json()["event_id"]
    stream = httpx.get(f"{server.url}/gradio_api/call/remove_background/{event_id}", timeout=60)
    assert "event: error" in stream.text
    assert "Add an image first." in stream.text
