"""The REST ingress on Ray Serve answers like ``python app.py``: the same bytes, the same typed errors.

A real local Ray cluster (started once for the module), the real model in its replicas,
HTTP through Serve's proxy on a real port.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from core import Engine, RemovalOptions
from tests.conftest import Server, free_port, launch_server, stop_server
from tests.serving.conftest import HAS_SERVE, ServeApp, fixture_photos

pytestmark = [
    pytest.mark.model,
    pytest.mark.serve,
    pytest.mark.skipif(not HAS_SERVE, reason="Ray Serve is not installed (pip install -r requirements-ray.txt)"),
]


def test_the_ingress_gives_the_local_engines_bytes(serve_app: ServeApp, engine: Engine) -> None:
    for photo in fixture_photos():
        data = photo.read_bytes()
        expected = engine.remove(data, RemovalOptions()).data
        response = httpx.post(f"{serve_app.url}/api/remove", files={"file": (photo.name, data)}, timeout=120)
        assert response.status_code == 200, response.text
        assert response.content == expected, photo.name
        ran_on = json.loads(response.headers["X-Ran-On"])
        assert ran_on["replica"] and ran_on["node"]
        assert response.headers["X-Provider"] == "CPUExecutionProvider" or response.headers["X-Provider"]


def test_options_cross_the_hop(serve_app: ServeApp, engine: Engine) -> None:
    data = fixture_photos()[0].read_bytes()
    expected = engine.remove(data, RemovalOptions(only_mask=True, output_format="webp")).data
    fields = {"om": "true", "format": "webp"}
    response = httpx.post(f"{serve_app.url}/api/remove", files={"file": ("a.jpg", data)}, data=fields, timeout=120)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/webp"
    assert response.content == expected


@pytest.mark.parametrize(
    ("files", "fields", "status", "code"),
    [
        ({"file": ("x.jpg", b"not an image")}, {}, 400, "invalid_image"),
        ({"file": ("x.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")}, {}, 415, "unsupported_format"),
        ({"file": ("x.jpg", b"")}, {}, 400, "invalid_image"),
        (None, {"a": "maybe"}, 400, "invalid_request"),
        ("photo", {"a": "maybe"}, 400, "invalid_option"),
        ("photo", {"model": "no-such-model"}, 400, "invalid_option"),
    ],
)
def test_bad_inputs_get_the_same_typed_errors(
    serve_app: ServeApp, files: object, fields: dict[str, str], status: int, code: str
) -> None:
    if files == "photo":
        files = {"file": ("a.jpg", fixture_photos()[0].read_bytes())}
    response = httpx.post(f"{serve_app.url}/api/remove", files=files, data=fields, timeout=60)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_healthz_says_where_removals_run(serve_app: ServeApp) -> None:
    response = httpx.get(f"{serve_app.url}/healthz", timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert "Ray cluster" in body["removals_run_on"]
    assert httpx.get(f"{serve_app.url}/openapi.json", timeout=30).json()["paths"]["/api/remove"]


def healthy(front: Server, wait_s: float = 120) -> dict[str, Any]:
    """``/healthz`` once it is ok (the front connects to the cluster in the background), or as it last was."""
    deadline = time.monotonic() + wait_s
    while True:
        response = httpx.get(f"{front.url}/healthz", timeout=30)
        if response.status_code == 200 or time.monotonic() > deadline:
            return dict(response.json())
        time.sleep(1)


def test_the_webui_front_sends_removals_to_the_cluster(serve_app: ServeApp, engine: Engine, tmp_path: Path) -> None:
    """``python app.py --ray-address``: the Gradio client API and REST as ever, each removal on a replica."""
    front = launch_server(tmp_path, "--ray-address", serve_app.gcs_address)
    try:
        health = healthy(front)
        assert health["status"] == "ok", (health, front.log())
        assert "Ray cluster" in health["removals_run_on"]
        photo = fixture_photos()[0]
        expected = engine.remove(photo.read_bytes(), RemovalOptions())
        client = Client(front.url, verbose=False, download_files=tmp_path / "downloads", analytics_enabled=False)
        path, report = client.predict(handle_file(str(photo)), api_name="/remove_background")
        with Image.open(path) as out:
            assert out.size == expected.image.size
            assert np.array_equal(np.asarray(out.convert("RGBA")), np.asarray(expected.image.convert("RGBA")))
        assert report["ran_on"]["replica"] and report["ran_on"]["node"], report
        response = httpx.post(f"{front.url}/api/remove", files={"file": (photo.name, photo.read_bytes())}, timeout=120)
        assert response.status_code == 200, response.text
        assert response.content == expected.data
        bad = httpx.post(f"{front.url}/api/remove", files={"file": ("x.jpg", b"not an image")}, timeout=60)
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_image")
    finally:
        stop_server(front)


def test_an_unreachable_cluster_is_degraded_with_the_reason(tmp_path: Path) -> None:
    """Nothing listens at the address: the front still starts; /healthz and removals say why, 503 + Retry-After."""
    address = f"127.0.0.1:{free_port()}"
    front = launch_server(tmp_path, "--ray-address", address)
    try:
        health = httpx.get(f"{front.url}/healthz", timeout=30)
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert any(address in reason for reason in health.json()["reasons"]), health.json()
        response = httpx.post(
            f"{front.url}/api/remove", files={"file": ("a.jpg", fixture_photos()[0].read_bytes())}, timeout=60
        )
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "cluster_unavailable"
        assert response.headers["Retry-After"] == "1"
    finally:
        stop_server(front)


def test_get_by_url_is_guarded_as_on_one_machine(serve_app: ServeApp) -> None:
    """GET /api/remove (allow_url_input): the same SSRF guard, the same typed errors."""
    refused = httpx.get(f"{serve_app.url}/api/remove", params={"url": "http://127.0.0.1:9/x.jpg"}, timeout=60)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "url_refused")
    missing = httpx.get(f"{serve_app.url}/api/remove", timeout=60)
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "url_refused")
    put = httpx.put(f"{serve_app.url}/api/remove", timeout=60)
    assert (put.status_code, put.json()["error"]["code"]) == (405, "method_not_allowed")
