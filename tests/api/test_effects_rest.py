"""API tier: touch-up (``mask_edit``), blurred background and drop shadow over REST, against the library.

``POST /api/remove`` of a real ``python app.py``: the touch-up strokes as a second
multipart file, the rest as form fields named as in ``core.options``. Each answer
must equal what the library makes of the same photo and options.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from core import Engine, RemovalOptions
from tests.conftest import Server, alpha_of, mask_agreement, photo_bytes
from tests.core.helpers import png_bytes

pytestmark = pytest.mark.api

PHOTO = "car-1.jpg"  # 480x360
MAX_MAD = 0.5
MIN_IOU = 0.999


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def post(http: httpx.Client, files: dict[str, Any] | None = None, **form: str) -> Image.Image:
    files = {"file": (PHOTO, photo_bytes(PHOTO), "image/jpeg"), **(files or {})}
    response = http.post("/api/remove", files=files, data={"model": "u2netp", "provider": "cpu", **form})
    assert response.status_code == 200, response.text
    im = Image.open(io.BytesIO(response.content))
    im.load()
    return im


def library(engine: Engine, **options: Any) -> Image.Image:
    return engine.remove(photo_bytes(PHOTO), RemovalOptions(model="u2netp", provider="cpu", **options)).image


def close(actual: Image.Image, expected: Image.Image, tolerance: float = 1.0) -> None:
    a = np.asarray(actual.convert("RGBA")).astype(float)
    b = np.asarray(expected.convert("RGBA")).astype(float)
    assert a.shape == b.shape
    assert np.abs(a - b).mean() <= tolerance, np.abs(a - b).mean()


def test_touch_up_strokes_as_a_file(http: httpx.Client, engine: Engine) -> None:
    strokes = Image.new("RGBA", (96, 72), (0, 0, 0, 0))
    strokes.paste((0, 0, 0, 255), (0, 0, 48, 72))  # remove the left half
    strokes.paste((255, 255, 255, 255), (80, 0, 96, 10))  # keep the top right corner
    im = post(http, {"mask_edit": ("strokes.png", png_bytes(strokes), "image/png")})
    alpha = alpha_of(im)
    assert (alpha[:, :230] == 0).all() and (alpha[:5, 410:] == 255).all()
    mad, iou = mask_agreement(alpha, alpha_of(library(engine, mask_edit=strokes)))
    assert mad <= MAX_MAD and iou >= MIN_IOU, (mad, iou)


def test_a_bad_touch_up_file_is_a_typed_error(http: httpx.Client) -> None:
    files = {"file": (PHOTO, photo_bytes(PHOTO), "image/jpeg"), "mask_edit": ("x.png", b"not an image", "image/png")}
    response = http.post("/api/remove", files=files, data={"model": "u2netp"})
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid_image", "message": "the input is not a recognisable image"}}


def test_blur_background(http: httpx.Client, engine: Engine) -> None:
    im = post(http, blur_background="25")
    assert im.mode == "RGBA" and (np.asarray(im)[..., 3] == 255).all()
    close(im, library(engine, blur_background=25))


def test_drop_shadow_on_a_colour_and_transparent(http: httpx.Client, engine: Engine) -> None:
    options = {"shadow": "true", "shadow_offset_x": "-20", "shadow_offset_y": "30", "shadow_blur": "10"}
    on_white = post(http, bgc="255,255,255", shadow_opacity="70", **options)
    close(on_white, library(engine, bgcolor="255,255,255", shadow=True, shadow_offset_x=-20, shadow_offset_y=30,
                             shadow_blur=10, shadow_opacity=70))  # fmt: skip
    plain = post(http, bgc="255,255,255")
    assert np.asarray(on_white.convert("L")).mean() < np.asarray(plain.convert("L")).mean(), "a shadow darkens"
    transparent = post(http, **options)
    assert (alpha_of(transparent) > 0).sum() > (alpha_of(post(http)) > 0).sum(), "the shadow is in the alpha"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"blur_background": "20", "bgc": "0,0,0"}, "blur_background"),
        ({"blur_background": "500"}, "blur_background"),
        ({"shadow": "maybe"}, "shadow"),
        ({"shadow": "true", "shadow_opacity": "150"}, "shadow_opacity"),
    ],
)
def test_bad_effect_values_name_the_field(http: httpx.Client, form: dict[str, str], field: str) -> None:
    files = {"file": (PHOTO, photo_bytes(PHOTO), "image/jpeg")}
    response = http.post("/api/remove", files=files, data={"model": "u2netp", **form})
    assert response.status_code == 400, response.text
    body = response.json()["error"]
    assert body["code"] == "invalid_option" and f"'{field}'" in body["message"], body
