"""The REST ingress on Ray Serve answers like ``python app.py``: the same bytes, the same typed errors.

A real local Ray cluster (started once for the module), the real model in its replicas,
HTTP through Serve's proxy on a real port.
"""

from __future__ import annotations

import json

import httpx
import pytest

from core import Engine, RemovalOptions
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
    response = httpx.post(
        f"{serve_app.url}/api/remove", files={"file": ("a.jpg", data)}, data={"om": "true", "format": "webp"}, timeout=120
    )
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
