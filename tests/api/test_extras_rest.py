"""API tier: rembg's ``extras`` over REST for the two families that read it, on stand-in graphs.

The real u2net_cloth_seg and SAM weights cannot be fetched here, so the engine behind the REST
routes serves the stand-ins of ``tests/core/test_families.py`` (same input and output names and
shapes), and a real uvicorn on a free loopback port serves the routes. rembg's own
``remove()`` with its own session classes on the same graphs is the reference: the same pixels.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from PIL import Image

from api.rest import create_router
from base.settings import Settings
from core import Engine
from models.registry import MODELS
from tests.conftest import free_port, photo_bytes
from tests.core.test_families import (
    BAD_PROMPTS,
    SAM_PROMPTS,
    _custom,
    rembg_sam,
    rembg_session,
    tiny_graph,
    tiny_sam_decoder,
    tiny_sam_encoder,
)

pytestmark = pytest.mark.api

PHOTO = "car-1.jpg"


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("graphs")
    tiny_sam_decoder(folder / "tiny-sam.decoder.onnx")
    return {
        "cloth": tiny_graph(folder / "cloth.onnx", 768, 4, scale=8.0),
        "sam": tiny_sam_encoder(folder / "tiny-sam.encoder.onnx"),
    }


@pytest.fixture(scope="module")
def http(graphs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The REST routes over an engine serving both stand-ins, on a real port."""
    engine = Engine(Settings(model_home=tmp_path_factory.mktemp("home"), threads=1))
    engine.sessions.register(_custom("tiny-cloth", "u2net_cloth_seg", "u2net_cloth_seg"), graphs["cloth"])
    sam = replace(
        MODELS["sam"],
        name="tiny-sam",
        filename=graphs["sam"].name,
        md5=None,
        sources=(),
        companions=(("tiny-sam.decoder.onnx", "", ""),),
    )
    engine.sessions.register(sam, graphs["sam"])
    app = FastAPI()
    app.include_router(create_router(engine, [], lambda: 0))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        yield client
    server.should_exit = True
    thread.join(30)


def post(http: httpx.Client, **form: str) -> httpx.Response:
    files = {"file": (PHOTO, photo_bytes(PHOTO), "application/octet-stream")}
    return http.post("/api/remove", files=files, data=form)


def pixels(data: object) -> tuple[str, np.ndarray]:
    """The mode and pixels of an encoded image (ours, or rembg's ``remove()`` bytes)."""
    assert isinstance(data, bytes)
    im = Image.open(io.BytesIO(data))
    return im.mode, np.asarray(im)


#: (REST form fields, rembg's remove() arguments): rembg's own field names (om, bgc).
CLOTH = {
    "only_mask": ({"om": "true"}, {"only_mask": True}),
    "cutout": ({}, {}),
    "bgcolor": ({"bgc": "0,0,255,255"}, {"bgcolor": (0, 0, 255, 255)}),
}


@pytest.mark.parametrize("case", CLOTH)
def test_cloth_without_cc_is_rembgs_stack(http: httpx.Client, graphs: dict[str, Path], case: str) -> None:
    from rembg import remove
    from rembg.sessions.u2net_cloth_seg import Unet2ClothSession

    form, kwargs = CLOTH[case]
    response = post(http, model="tiny-cloth", **form)
    assert response.status_code == 200, response.text
    expected = remove(photo_bytes(PHOTO), session=rembg_session(Unet2ClothSession, graphs["cloth"]), **kwargs)
    (mode, mine), (their_mode, theirs) = pixels(response.content), pixels(expected)
    assert (mode, mine.shape) == (their_mode, theirs.shape)
    assert np.array_equal(mine, theirs)
    assert mine.shape[0] == 3 * 360


def test_cloth_with_cc_is_one_cutout(http: httpx.Client, graphs: dict[str, Path]) -> None:
    from rembg import remove
    from rembg.sessions.u2net_cloth_seg import Unet2ClothSession

    response = post(http, model="tiny-cloth", om="true", extras=json.dumps({"cc": "lower"}))
    assert response.status_code == 200, response.text
    session = rembg_session(Unet2ClothSession, graphs["cloth"])
    expected = remove(photo_bytes(PHOTO), session=session, only_mask=True, cc="lower")
    assert np.array_equal(pixels(response.content)[1], pixels(expected)[1])


def test_cloth_without_cc_refuses_a_crop(http: httpx.Client) -> None:
    response = post(http, model="tiny-cloth", crop="true")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_option" and "extras cc" in error["message"]


@pytest.mark.parametrize("prompt", SAM_PROMPTS)
def test_sam_prompt_over_rest_is_rembgs_mask(http: httpx.Client, graphs: dict[str, Path], prompt: str) -> None:
    from rembg import remove

    marks = SAM_PROMPTS[prompt]
    form = {} if marks is None else {"extras": json.dumps({"sam_prompt": marks})}
    response = post(http, model="tiny-sam", om="true", **form)
    assert response.status_code == 200, response.text
    kwargs: dict[str, Any] = {} if marks is None else {"sam_prompt": marks}
    expected = remove(photo_bytes(PHOTO), session=rembg_sam(graphs["sam"]), only_mask=True, **kwargs)
    assert np.array_equal(pixels(response.content)[1], pixels(expected)[1])


@pytest.mark.parametrize("prompt", [*BAD_PROMPTS, "not json"], ids=range(len(BAD_PROMPTS) + 1))
def test_bad_sam_prompts_are_400(http: httpx.Client, prompt: Any) -> None:
    extras = "{" if prompt == "not json" else json.dumps({"sam_prompt": prompt})
    response = post(http, model="tiny-sam", extras=extras)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_option" and "extras" in error["message"]
    assert "Traceback" not in response.text
