"""Model tier: the WebUI, REST and the library decode the same file the same way, to the byte.

The WebUI's side is the Upload tab as built (``build_ui``): its image input's own
``preprocess`` (what the handler receives for an uploaded file), then the tab's
handler with the tab's widget values. REST is the real router (``api.rest``) in
process; the library is ``remove_background``. Every case of the bad-input
catalogue goes through all three, plus transparent, grey, CMYK, 16-bit and EXIF
photos: a success gives byte-identical files, an error the same typed error.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from gradio.data_classes import FileData
from PIL import Image

from api.rest import create_router
from core import Engine, RemovalError, RemovalOptions, load_settings, remove_background
from tests.conftest import PHOTOS_DIR
from tests.core.helpers import encoded, transparent_photo
from tests.reliability.catalogue import CASES, LIMIT_FLAGS, Case, png_rgb16
from tests.reliability.common import UPLOAD_FORM, rest_form
from ui import build_ui, touchup
from ui.activity import LIGHT
from ui.errors import user_errors
from ui.form import UPLOAD_FIELDS
from ui.handlers import RESULT_OUTPUTS, Handlers
from ui.store import OutputStore

pytestmark = pytest.mark.model

BASE = {"model": "u2netp", "provider": "cpu"}
FORM = UPLOAD_FORM


def _orientation(value: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif


PHOTO_CASES = [
    Case("rgba-transparent-outside", transparent_photo(), "t.png"),
    Case("grey-jpeg", encoded(Image.open(PHOTOS_DIR / "chelsea.png").convert("L"), "JPEG"), "g.jpg"),
    Case("cmyk-jpeg-photo", encoded(Image.open(PHOTOS_DIR / "car-1.jpg").convert("CMYK"), "JPEG"), "c.jpg"),
    Case("rgb-16-bit-png", png_rgb16(96, 64), "p16.png"),
    Case("exif-rotated-photo", encoded(Image.open(PHOTOS_DIR / "car-1.jpg"), "JPEG", exif=_orientation(6)), "e.jpg"),
]


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """The catalogue's limits, Pillow's bomb guard included (``app.configure_process``)."""
    settings = load_settings(list(LIMIT_FLAGS))
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = settings.max_pixels
    yield Engine(settings)
    Image.MAX_IMAGE_PIXELS = saved


@pytest.fixture(scope="module")
def upload_input(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> gr.components.Component:
    """The Upload tab's image input, as ``build_ui`` builds it for the page."""
    demo = build_ui(engine.settings, engine, tmp_path_factory.mktemp("ui-outputs"))
    return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "upload-image")


@pytest.fixture(scope="module")
def handlers(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Handlers:
    return Handlers(engine, OutputStore(tmp_path_factory.mktemp("handler-outputs")))


@pytest.fixture(scope="module")
def rest(engine: Engine) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(create_router(engine, [], lambda: 0))
    with TestClient(app) as client:
        yield client


def ui_run(
    upload_input: gr.components.Component, handlers: Handlers, path: Path, form: dict[str, Any]
) -> tuple[bytes | None, str, tuple[Any, ...]]:
    """(the download's bytes or None, the error message or "", the handler's last update) for an uploaded file."""
    received = upload_input.preprocess(FileData(path=str(path), orig_name=path.name))
    updates: list[tuple[Any, ...]] = []
    try:
        updates.extend(user_errors(handlers.ui_remove)(LIGHT, received, *(form[n] for n in UPLOAD_FIELDS)))
    except gr.Error as exc:
        return None, str(exc.message), updates[-1]
    last = updates[-1]
    files = last[RESULT_OUTPUTS.index("files")]
    return Path(files[0]).read_bytes(), "", last


def form_for(case: Case) -> dict[str, Any]:
    form = dict(FORM)
    for name, value in case.options.items():
        if name == "bgcolor":
            form.update(background="colour", bgcolor=value)
        else:
            form[name] = value
    return form


@pytest.mark.parametrize("case", [*CASES, *PHOTO_CASES], ids=[c.id for c in [*CASES, *PHOTO_CASES]])
def test_ui_rest_and_library_agree(
    engine: Engine,
    upload_input: gr.components.Component,
    handlers: Handlers,
    rest: TestClient,
    case: Case,
    tmp_path: Path,
) -> None:
    path = tmp_path / case.filename
    path.write_bytes(case.data)
    options = {**BASE, **case.options}
    ui_bytes, ui_error, last = ui_run(upload_input, handlers, path, form_for(case))
    response = rest.post(
        "/api/remove", files={"file": (case.filename, case.data, "application/octet-stream")}, data=rest_form(options)
    )
    try:  # the edges' one parser: "false" is false, "abc" for a number an InvalidOption
        library: RemovalError | bytes = remove_background(
            case.data, RemovalOptions.from_values(options), engine=engine
        ).data
    except RemovalError as exc:
        library = exc
    if isinstance(library, bytes):
        assert response.status_code == 200, response.text
        assert ui_error == "", ui_error
        assert ui_bytes == response.content == library, "the three paths must write the same file"
        return
    # The same typed error everywhere; the UI says it in the engine's words (the library's, given the path).
    assert response.json()["error"]["code"] == library.code
    with pytest.raises(RemovalError) as from_path:
        remove_background(path, RemovalOptions.from_values(options), engine=engine)
    assert type(from_path.value) is type(library)
    assert ui_error == from_path.value.message
    status = last[RESULT_OUTPUTS.index("status")]
    assert "status-error" in status and "Traceback" not in status and "preprocess" not in status


def test_the_before_side_is_the_input_as_decoded_on_a_checkerboard(
    upload_input: gr.components.Component, handlers: Handlers, tmp_path: Path
) -> None:
    """The slider's "before" keeps the input's transparency: the hidden colour never shows."""
    path = tmp_path / "t.png"
    path.write_bytes(transparent_photo())
    data, error, last = ui_run(upload_input, handlers, path, FORM)
    assert data is not None and error == ""
    before_path, _ = last[RESULT_OUTPUTS.index("slider")]
    before = np.asarray(Image.open(before_path).convert("RGB")).astype(int)
    source = Image.open(path)
    board = np.asarray(touchup.checkerboard(source.size, max(8, max(source.size) // 48)).convert("RGB")).astype(int)
    hidden = np.asarray(source.getchannel("A")) == 0
    assert (before[hidden] == board[hidden]).all(), "transparent input shows the checkerboard, not its hidden pixels"
    visible = ~hidden
    assert (before[visible] == np.asarray(source.convert("RGB")).astype(int)[visible]).all()
    cutout = Image.open(io.BytesIO(data))
    assert (np.asarray(cutout.getchannel("A"))[hidden] == 0).all(), "0% of the output where the input was transparent"


def test_gradios_own_image_input_would_not_agree(tmp_path: Path) -> None:
    """Why the Upload tab does not use ``gr.Image``'s conversion: it drops the alpha the engine needs."""
    path = tmp_path / "t.png"
    path.write_bytes(transparent_photo())
    converted = gr.Image(type="filepath").preprocess(FileData(path=str(path), orig_name=path.name))
    assert Image.open(converted).mode == "RGB"
