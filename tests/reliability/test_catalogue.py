"""Reliability tier: the bad-input catalogue (``catalogue.CASES``) through all three ways in.

Every case goes through the library (``core.remove_background``), the REST API
(``POST /api/remove``) and the Gradio client API (``/remove_background``) of one
launched server. Each must end in success or the case's typed error (the exception
in the library, a 4xx in the JSON error shape over REST, an ``AppError`` carrying
the library's own message over Gradio), never a 5xx or a traceback; after an error
a good request still succeeds; and no temporary file is left behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from base.errors import ImageTooLarge, RemovalError
from core import Engine, RemovalOptions, load_settings, remove_background
from tests.conftest import stop_server
from tests.reliability.catalogue import CASES, GOOD_PNG, LIMIT_FLAGS, MAX_BYTES, Case
from tests.reliability.common import IsolatedServer, decoded, files_under, kind, launch_isolated, rest_remove

pytestmark = [pytest.mark.reliability, pytest.mark.api, pytest.mark.model]
IDS = [c.id for c in CASES]
BASE = {"model": "u2netp", "provider": "cpu"}


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """The library with the same limits as the server, Pillow's bomb guard included (``app.configure_process``)."""
    settings = load_settings(list(LIMIT_FLAGS))
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = settings.max_pixels
    yield Engine(settings)
    Image.MAX_IMAGE_PIXELS = saved


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedServer]:
    running = launch_isolated(tmp_path_factory.mktemp("catalogue"), *LIMIT_FLAGS)
    yield running
    stop_server(running.server)
    assert "Traceback" not in running.server.log(), running.server.log()[-3000:]


def library_outcome(engine: Engine, case: Case) -> RemovalError | None:
    try:
        result = remove_background(case.data, RemovalOptions(**{**BASE, **case.options}), engine=engine)
    except RemovalError as exc:
        return exc
    if case.size is not None:
        assert result.image.size == case.size
    return None


def new_files(isolated: IsolatedServer, before: set[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for rel in sorted(files_under(isolated.temp) - before):
        grouped.setdefault(kind(rel), []).append(rel)
    return grouped


def assert_still_serving_rest(http: httpx.Client, isolated: IsolatedServer) -> None:
    assert isolated.server.process.poll() is None, "the server died"
    response = rest_remove(http, GOOD_PNG, **BASE)
    assert response.status_code == 200, response.text
    assert decoded(response.content).size == (64, 48)


# --- the library ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_library(engine: Engine, case: Case) -> None:
    outcome = library_outcome(engine, case)
    if case.error is None:
        assert outcome is None, f"expected success, got {outcome!r}"
    else:
        assert type(outcome) is case.error, f"expected {case.error.__name__}, got {outcome!r}"
        assert outcome.message.strip() and "Traceback" not in outcome.message


# --- REST -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rest(http: httpx.Client, isolated: IsolatedServer, case: Case) -> None:
    before = files_under(isolated.temp)
    response = rest_remove(http, case.data, case.filename, **{**BASE, **case.options})
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if case.error is None:
        assert response.status_code == 200, response.text
        im = decoded(response.content)
        assert im.format == "PNG" and im.mode == "RGBA"
        if case.size is not None:
            assert im.size == case.size
    else:
        assert response.status_code == case.error.http_status, response.text
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        assert body["error"]["code"] == case.error.code, body
        assert body["error"]["message"].strip()
        assert_still_serving_rest(http, isolated)
    assert new_files(isolated, before) == {}, "the REST path left temporary files behind"


# --- the Gradio client API -------------------------------------------------------------------


def _upload(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / case.filename
    path.write_bytes(case.data)
    return path


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradio_client(
    client: Client, http: httpx.Client, isolated: IsolatedServer, engine: Engine, case: Case, tmp_path: Path
) -> None:
    before = files_under(isolated.temp)
    upload = _upload(tmp_path, case)
    options = {**BASE, **case.options}
    if case.error is None:
        path, report = client.predict(handle_file(str(upload)), api_name="/remove_background", **options)
        im = decoded(Path(path).read_bytes())
        assert im.mode == "RGBA" and report["format"] == "png"
        if case.size is not None:
            assert im.size == case.size == (report["width"], report["height"])
        created = new_files(isolated, before)
        assert len(created.pop("outputs", [])) == 1, "one result in the OutputStore (pruned after an hour)"
    else:
        if case.error is ImageTooLarge and len(case.data) > MAX_BYTES:
            # gradio_client refuses it against the server's max_file_size before uploading
            # (the server's own 413 on /gradio_api/upload is in test_security.py).
            with pytest.raises(ValueError, match="maximum file size") as caught:
                client.predict(handle_file(str(upload)), api_name="/remove_background", **options)
        else:
            with pytest.raises(AppError) as caught:
                client.predict(handle_file(str(upload)), api_name="/remove_background", **options)
            expected = library_outcome(engine, case)
            assert expected is not None
            assert str(caught.value) == expected.message
        assert "Traceback" not in str(caught.value)
        created = new_files(isolated, before)
        assert "outputs" not in created, "a failed request left a result file"
        path, _ = client.predict(handle_file(str(_good(tmp_path))), api_name="/remove_background", **BASE)
        assert decoded(Path(path).read_bytes()).size == (64, 48)
        created = new_files(isolated, before)
        created.pop("outputs", None)
    assert "stray" not in created, f"stray temporary files: {created['stray']}"
    # What is left is Gradio's content-addressed upload cache (pruned by delete_cache).
    assert set(created) <= {"gradio_cache"}, created


def _good(tmp_path: Path) -> Path:
    path = tmp_path / "good.png"
    path.write_bytes(GOOD_PNG)
    return path


def test_server_log_has_no_traceback(isolated: IsolatedServer, http: httpx.Client) -> None:
    assert_still_serving_rest(http, isolated)
    log = isolated.server.log()
    assert "Traceback" not in log, log[-3000:]


def test_nothing_half_written_anywhere(isolated: IsolatedServer) -> None:
    leftovers = [rel for rel in files_under(isolated.temp) if kind(rel) == "stray"]
    assert leftovers == []
