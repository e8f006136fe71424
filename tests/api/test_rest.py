"""API tier: the rembg-compatible REST API of a real ``python app.py`` over HTTP.

``POST /api/remove`` with every rembg parameter group and our extras, its one
JSON error shape, ``GET /healthz``, the OpenAPI description, HTTP Basic auth,
``--share`` without auth and bad command-line settings.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from core import Engine, RemovalOptions
from core.providers import resolve
from tests.conftest import (
    ROOT,
    Server,
    alpha_of,
    free_port,
    launch_server,
    mask_agreement,
    photo_bytes,
    stop_server,
)
from tests.core.helpers import png_header_only

pytestmark = pytest.mark.api

MAX_MAD = 0.5
MIN_IOU = 0.999
PHOTO = "car-1.jpg"  # 480x360: the smallest photo, cheap on two CPU cores
PHOTO_SIZE = (480, 360)
STAGES = {"decode", "preprocess", "inference", "postprocess", "encode", "total"}
HEALTH_KEYS = {
    "status",
    "reasons",
    "version",
    "removals_run_on",
    "models_loaded",
    "models",
    "providers",
    "queue",
    "memory",
    "requests",
    "settings",
}
SHARE_WARNING = "anyone with the public link can use this machine"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
BLUE = (0, 0, 255, 255)


# --- helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def remove(
    http: httpx.Client,
    photo: str | None = PHOTO,
    *,
    params: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    **form: str,
) -> httpx.Response:
    """``POST /api/remove`` as a rembg client sends it: multipart ``file`` plus text fields."""
    files = {"file": (photo, photo_bytes(photo), "application/octet-stream")} if photo else None
    return http.post("/api/remove", files=files, data=form, params=params, auth=auth)


def image_of(response: httpx.Response) -> Image.Image:
    im = Image.open(io.BytesIO(response.content))
    im.load()
    return im


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """The one error shape, exactly: ``{"error": {"code": str, "message": str}}``; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    assert body["error"]["code"] == code, body
    assert body["error"]["message"].strip(), body
    return str(body["error"]["message"])


def assert_parity(actual: np.ndarray, expected: np.ndarray) -> None:
    mad, iou = mask_agreement(actual, expected)
    assert mad <= MAX_MAD and iou >= MIN_IOU, (mad, iou)


@pytest.fixture(scope="module")
def library_u2netp(engine: Engine) -> np.ndarray:
    """The library's alpha for PHOTO with u2netp and default options."""
    return alpha_of(engine.remove(photo_bytes(PHOTO), RemovalOptions(model="u2netp", provider="cpu")).image)


# --- the happy path --------------------------------------------------------------------


def test_remove_defaults_match_the_library(http: httpx.Client, engine: Engine) -> None:
    """No options: the default model (u2net) on the CPU, a PNG cutout equal to the library's."""
    response = remove(http)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    im = image_of(response)
    assert (im.format, im.mode, im.size) == ("PNG", "RGBA", PHOTO_SIZE)

    # auto and exact: onnxruntime's CPU, or OpenVINO where tune measured it faster at rembg's masks here
    assert response.headers["X-Provider"] == resolve(engine.choose(RemovalOptions()).provider)[0]
    assert response.headers["X-Model"] == engine.settings.default_model == "u2net"
    inference_ms = float(response.headers["X-Inference-Ms"])
    total_ms = float(response.headers["X-Total-Ms"])
    assert 0 < inference_ms <= total_ms
    timings = json.loads(response.headers["X-Timings"])
    assert set(timings) == STAGES
    assert all(isinstance(v, (int, float)) and v >= 0 for v in timings.values())
    assert timings["inference"] == pytest.approx(inference_ms, abs=0.1)
    assert timings["total"] == pytest.approx(total_ms, abs=0.1)

    expected = engine.remove(photo_bytes(PHOTO), RemovalOptions(provider="cpu"))
    assert_parity(alpha_of(im), alpha_of(expected.image))


def test_model_u2netp(http: httpx.Client, library_u2netp: np.ndarray) -> None:
    response = remove(http, model="u2netp")
    assert response.status_code == 200, response.text
    assert response.headers["X-Model"] == "u2netp"
    im = image_of(response)
    assert (im.mode, im.size) == ("RGBA", PHOTO_SIZE)
    assert_parity(alpha_of(im), library_u2netp)


def test_only_mask_is_a_grey_png(http: httpx.Client, library_u2netp: np.ndarray) -> None:
    response = remove(http, model="u2netp", om="true")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    im = image_of(response)
    assert (im.format, im.mode, im.size) == ("PNG", "L", PHOTO_SIZE)
    assert_parity(alpha_of(im), library_u2netp)


def test_alpha_matting(http: httpx.Client, library_u2netp: np.ndarray) -> None:
    response = remove(http, model="u2netp", a="true", af="240", ab="10", ae="10")
    assert response.status_code == 200, response.text
    im = image_of(response)
    assert (im.mode, im.size) == ("RGBA", PHOTO_SIZE)
    alpha = alpha_of(im)
    mad, iou = mask_agreement(alpha, library_u2netp)
    assert mad > 0, "alpha matting changed nothing"
    assert iou > 0.9, "alpha matting should refine the edges, not replace the subject"


def test_post_process_mask_is_binary(http: httpx.Client) -> None:
    response = remove(http, model="u2netp", ppm="true")
    assert response.status_code == 200, response.text
    values = set(np.unique(alpha_of(image_of(response))).tolist())
    assert values <= {0.0, 255.0} and values == {0.0, 255.0}


@pytest.mark.parametrize("where", ["form", "query"])
def test_background_colour(http: httpx.Client, library_u2netp: np.ndarray, where: str) -> None:
    """``bgc`` as a form field and as rembg's own clients send it, in the query string."""
    colour = ",".join(map(str, BLUE))
    if where == "form":
        response = remove(http, model="u2netp", bgc=colour)
    else:
        response = remove(http, model="u2netp", params={"bgc": colour})
    assert response.status_code == 200, response.text
    pixels = np.asarray(image_of(response).convert("RGBA"))
    assert (pixels[..., 3] == 255).all(), "a cutout over an opaque colour is opaque"
    background = pixels[library_u2netp == 0]
    assert len(background) > 1000
    assert (background == BLUE).all()


@pytest.mark.parametrize(
    ("fmt", "media_type", "pil_format", "mode"),
    [("webp", "image/webp", "WEBP", "RGBA"), ("jpeg", "image/jpeg", "JPEG", "RGB")],
)
def test_output_formats(http: httpx.Client, fmt: str, media_type: str, pil_format: str, mode: str) -> None:
    response = remove(http, model="u2netp", format=fmt)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    im = image_of(response)
    assert (im.format, im.mode, im.size) == (pil_format, mode, PHOTO_SIZE)


def test_webp_quality_makes_it_lossy(http: httpx.Client) -> None:
    lossless = remove(http, model="u2netp", format="webp")
    lossy = remove(http, model="u2netp", format="webp", quality="60")
    assert lossless.status_code == lossy.status_code == 200
    assert b"VP8L" in lossless.content  # the lossless bitstream
    assert b"VP8L" not in lossy.content and b"VP8 " in lossy.content
    assert len(lossy.content) < len(lossless.content)
    assert image_of(lossy).size == PHOTO_SIZE


def test_provider_cpu(http: httpx.Client) -> None:
    response = remove(http, model="u2netp", provider="cpu")
    assert response.status_code == 200, response.text
    assert response.headers["X-Provider"] == "cpu"


def test_precision_headers_name_what_ran(http: httpx.Client, engine: Engine) -> None:
    exact = remove(http, model="u2netp", precision="exact")
    assert exact.status_code == 200, exact.text
    assert (exact.headers["X-Precision"], exact.headers["X-Precision-Ran"]) == ("fp32", "exact")
    assert exact.headers["X-Backend"] in ("onnxruntime-cpu", "openvino-cpu")
    fast = remove(http, model="u2netp", precision="fast")
    assert fast.status_code == 200, fast.text
    # What the server's engine chooses from this machine's tune record (or its absence).
    choice = engine.choose(RemovalOptions(model="u2netp", precision="fast"))
    assert fast.headers["X-Precision"] == choice.precision
    assert fast.headers["X-Precision-Ran"] == choice.ran
    assert fast.headers.get("X-Precision-Note", "") == choice.note
    assert "precision" in assert_error(remove(http, model="u2netp", precision="bf16"), 400, "invalid_option")


def test_crop_to_subject(http: httpx.Client, engine: Engine) -> None:
    response = remove(http, model="u2netp", crop="true")
    assert response.status_code == 200, response.text
    im = image_of(response)
    width, height = im.size
    assert width <= PHOTO_SIZE[0] and height <= PHOTO_SIZE[1]
    assert width * height < PHOTO_SIZE[0] * PHOTO_SIZE[1]
    expected = engine.remove(photo_bytes(PHOTO), RemovalOptions(model="u2netp", provider="cpu", crop=True))
    assert im.size == expected.image.size


# --- errors ----------------------------------------------------------------------------


PHOTO_UPLOAD = (PHOTO, photo_bytes(PHOTO))


def _post(
    upload: tuple[str, bytes] | None = PHOTO_UPLOAD,
    field: str = "file",
    params: dict[str, str] | None = None,
    **form: str,
) -> dict[str, Any]:
    """Keyword arguments of ``httpx.Client.post`` for one bad request."""
    kwargs: dict[str, Any] = {"data": form, "params": params}
    if upload is not None:
        kwargs["files"] = {field: (*upload, "application/octet-stream")}
    return kwargs


#: (id, keyword arguments of the POST, status, code)
BAD_REQUESTS = [
    ("no-file-field", _post(None, model="u2netp"), 400, "invalid_request"),
    ("no-body-at-all", {}, 400, "invalid_request"),
    ("wrong-field-name", _post(field="image"), 400, "invalid_request"),
    ("empty-file", _post(("empty.png", b"")), 400, "invalid_image"),
    ("random-bytes", _post(("noise.png", random.Random(0).randbytes(4096))), 400, "invalid_image"),
    ("svg", _post(("drawing.svg", SVG)), 415, "unsupported_format"),
    ("60000x60000-header", _post(("huge.png", png_header_only(60000, 60000))), 413, "image_too_large"),
    ("model-path", _post(model="../../etc/passwd"), 400, "invalid_option"),
    ("af-negative", _post(model="u2netp", a="true", af="-1"), 400, "invalid_option"),
    ("af-300", _post(model="u2netp", a="true", af="300"), 400, "invalid_option"),
    ("af-not-a-number", _post(model="u2netp", af="lots"), 400, "invalid_option"),
    ("bgc-300", _post(model="u2netp", bgc="300,0,0"), 400, "invalid_option"),
    ("bgc-300-query", _post(model="u2netp", params={"bgc": "300,0,0"}), 400, "invalid_option"),
    ("format-exe", _post(model="u2netp", format="exe"), 400, "invalid_option"),
    ("quality-101", _post(model="u2netp", format="webp", quality="101"), 400, "invalid_option"),
    ("a-maybe", _post(model="u2netp", a="maybe"), 400, "invalid_option"),
    ("provider-unknown", _post(model="u2netp", provider="bogus"), 400, "invalid_option"),
]


@pytest.mark.parametrize(("kwargs", "status", "code"), [r[1:] for r in BAD_REQUESTS], ids=[r[0] for r in BAD_REQUESTS])
def test_bad_request(http: httpx.Client, kwargs: dict[str, Any], status: int, code: str) -> None:
    assert_error(http.post("/api/remove", **kwargs), status, code)


def test_option_errors_name_the_option(http: httpx.Client) -> None:
    assert "'model'" in assert_error(remove(http, model="../../etc/passwd"), 400, "invalid_option")
    assert "'a'" in assert_error(remove(http, model="u2netp", a="maybe"), 400, "invalid_option")
    assert "'af'" in assert_error(remove(http, model="u2netp", af="300"), 400, "invalid_option")  # rembg's name
    assert "'format'" in assert_error(remove(http, model="u2netp", format="exe"), 400, "invalid_option")
    assert "'bgc'" in assert_error(remove(http, model="u2netp", bgc="300,0,0"), 400, "invalid_option")


def test_unavailable_provider(http: httpx.Client) -> None:
    providers = {p["name"]: p for p in http.get("/healthz").json()["providers"]}
    if providers["cuda"]["available"]:
        pytest.skip("CUDA can load on this machine")
    message = assert_error(remove(http, model="u2netp", provider="cuda"), 503, "provider_unavailable")
    assert "cuda" in message


def test_get_by_url_is_off_by_default(http: httpx.Client) -> None:
    response = http.get("/api/remove", params={"url": "https://example.com/cat.png"})
    assert_error(response, 405, "method_not_allowed")
    assert "allow_url_input" in response.json()["error"]["message"]
    assert response.headers["Allow"] == "POST"


# --- URL input (--allow-url-input): the SSRF guard as the REST API applies it -------------------


@pytest.fixture(scope="module")
def url_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    running = launch_server(tmp_path_factory.mktemp("url"), "--allow-url-input")
    with httpx.Client(base_url=running.url, timeout=60) as client:
        yield client
    stop_server(running)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:7860/healthz", "url_refused"),
        ("http://localhost/a.png", "url_refused"),
        ("http://169.254.169.254/latest/meta-data/", "url_refused"),
        ("http://10.0.0.1/a.png", "url_refused"),
        ("http://[::1]:8080/a.png", "url_refused"),
        ("http://[::ffff:127.0.0.1]/a.png", "url_refused"),
        ("file:///etc/passwd", "url_refused"),
        ("gopher://example.com/", "url_refused"),
        ("http://user:pw@example.com/a.png", "url_refused"),
        ("", "url_refused"),
    ],
)
def test_url_input_refuses_what_is_not_public(url_http: httpx.Client, url: str, code: str) -> None:
    response = url_http.get("/api/remove", params={"url": url, "model": "u2netp"})
    assert_error(response, 400, code)


def test_url_input_keeps_the_other_routes(url_http: httpx.Client) -> None:
    response = url_http.put("/api/remove")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, POST"
    assert remove(url_http, model="u2netp").status_code == 200
    assert url_http.get("/healthz").json()["settings"]["allow_url_input"] is True


def test_error_shape_is_one_shape(http: httpx.Client) -> None:
    """Every failure of ``/api/remove`` has the same keys at every level, and nothing else."""
    requests: list[dict[str, Any]] = [r[1] for r in BAD_REQUESTS]
    bodies = [http.post("/api/remove", **kwargs) for kwargs in requests]
    bodies.append(http.get("/api/remove", params={"url": "https://example.com/x.png"}))
    bodies.append(remove(http, model="u2netp", a="true", af="10", ab="20"))  # thresholds out of order
    shapes = set()
    for response in bodies:
        assert response.status_code >= 400
        assert "Traceback" not in response.text
        body = response.json()
        shapes.add((tuple(sorted(body)), tuple(sorted(body["error"])), type(body["error"]["code"]).__name__))
        assert type(body["error"]["message"]) is str
    assert shapes == {(("error",), ("code", "message"), "str")}


#: Requests that fail in FastAPI's/Starlette's body parsing, before the handler runs.
MALFORMED_BODIES = {
    "file-as-text-field": {"data": {"file": "hello"}},
    "multipart-garbage": {"content": b"garbage", "headers": {"content-type": "multipart/form-data; boundary=xyz"}},
    "multipart-no-boundary": {"content": b"garbage", "headers": {"content-type": "multipart/form-data"}},
    "text-field-over-1MiB": {"files": {"file": PHOTO_UPLOAD}, "data": {"model": "a" * (1024 * 1024 + 1)}},
}


@pytest.mark.parametrize("kwargs", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_malformed_bodies_keep_the_error_shape(http: httpx.Client, kwargs: dict[str, Any]) -> None:
    assert_error(http.post("/api/remove", **kwargs), 400, "invalid_request")


def test_other_methods_keep_the_error_shape(http: httpx.Client) -> None:
    assert_error(http.put("/api/remove"), 405, "method_not_allowed")


def test_405_names_the_allowed_method(http: httpx.Client) -> None:
    response = http.get("/api/remove")
    assert response.status_code == 405
    assert "POST" in response.headers.get("allow", "")


def test_server_keeps_serving_after_errors(http: httpx.Client, server: Server) -> None:
    for kwargs in [r[1] for r in BAD_REQUESTS[:6]]:
        assert http.post("/api/remove", **kwargs).status_code >= 400
    response = remove(http, model="u2netp")
    assert response.status_code == 200
    assert image_of(response).size == PHOTO_SIZE
    assert server.process.poll() is None
    assert "Traceback" not in server.log(), "a handled error was logged with a traceback"


# --- health and description ---------------------------------------------------------------


def test_healthz(http: httpx.Client) -> None:
    assert remove(http, model="u2netp").status_code == 200  # something to report
    response = http.get("/healthz")
    assert response.status_code == 200
    health = response.json()
    assert set(health) == HEALTH_KEYS
    assert health["status"] == "ok"
    assert health["removals_run_on"] == "this process"  # not --ray-address (tests/serving)
    assert isinstance(health["version"], str) and health["version"]
    assert {"model": "u2netp", "provider": "cpu"} in [
        {k: m[k] for k in ("model", "provider")} for m in health["models_loaded"]
    ]
    providers = {p["name"]: p for p in health["providers"]}
    assert providers["cpu"]["available"] is True
    assert set(health["queue"]) == {"gradio_pending", "rest_in_flight"}
    assert set(health["memory"]) == {"budget_mb", "admitted_mb", "running", "waiting"}  # core.budget
    assert health["requests"]["cpu"]["requests"] >= 1
    models = {m["name"]: m for m in health["models"]}
    assert models["u2netp"]["ready"] is True and models["u2netp"]["get"] is None
    assert set(models) >= {"u2net", "u2netp", "u2net-int8"} and all("summary" in m for m in models.values())
    precision = models["u2netp"]["precision"]
    assert {"tuned", "exact", "fast"} <= set(precision) and precision["exact"]["precision"] == "fp32"
    assert models["u2net-int8"]["precision"] is None  # a build: a candidate of u2net, not a model of its own
    settings = health["settings"]
    assert settings["auth"] is None
    assert settings["default_model"] == "u2net"
    assert settings["port"] == int(http.base_url.port or 0)


def test_openapi_describes_the_rest_api(http: httpx.Client) -> None:
    response = http.get("/openapi.json")
    assert response.status_code == 200, "Gradio's app no longer serves /openapi.json"
    spec = response.json()
    assert "/api/remove" in spec["paths"] and "/healthz" in spec["paths"]
    post = spec["paths"]["/api/remove"]["post"]
    schema = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    rembg_fields = {"file", "model", "a", "af", "ab", "ae", "om", "ppm", "bgc"}
    assert rembg_fields | {"format", "quality", "provider", "crop"} <= set(schema["properties"])
    assert "bgc" in {p["name"] for p in post.get("parameters", []) if p["in"] == "query"}
    assert {"image/png", "image/webp", "image/jpeg"} <= set(post["responses"]["200"]["content"])


# --- auth --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = launch_server(tmp_path_factory.mktemp("auth"), "--auth", "user:secret")
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def auth_http(auth_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=auth_server.url, timeout=120) as client:
        yield client


def test_auth_required(auth_http: httpx.Client) -> None:
    response = remove(auth_http, model="u2netp")
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "credentials", [("user", "wrong"), ("someone", "secret"), ("", ""), ("user", "secret2")], ids=repr
)
def test_auth_wrong_credentials(auth_http: httpx.Client, credentials: tuple[str, str]) -> None:
    response = remove(auth_http, model="u2netp", auth=credentials)
    assert_error(response, 401, "unauthorized")
    assert "WWW-Authenticate" in response.headers


def test_auth_malformed_header(auth_http: httpx.Client) -> None:
    for header in ("Basic !!!not-base64", "Bearer dXNlcjpzZWNyZXQ=", "dXNlcjpzZWNyZXQ="):
        response = auth_http.post(
            "/api/remove",
            files={"file": (PHOTO, photo_bytes(PHOTO))},
            data={"model": "u2netp"},
            headers={"Authorization": header},
        )
        assert_error(response, 401, "unauthorized")


def test_auth_basic_credentials_pass(auth_http: httpx.Client) -> None:
    response = remove(auth_http, model="u2netp", auth=("user", "secret"))
    assert response.status_code == 200, response.text
    assert image_of(response).size == PHOTO_SIZE


def test_healthz_does_not_leak_the_password(auth_http: httpx.Client, auth_server: Server) -> None:
    anonymous = auth_http.get("/healthz")  # open without login, for load balancers: liveness only
    assert anonymous.status_code == 200
    assert anonymous.json() == {"status": "ok", "version": anonymous.json()["version"]}
    response = auth_http.get("/healthz", auth=("user", "secret"))
    assert response.json()["settings"]["auth"] == "set"
    assert "secret" not in response.text
    assert "secret" not in auth_server.log()


# --- share ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def share_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, float]]:
    """``--share`` without ``--auth``; yields the server and the monotonic time it was launched."""
    start = time.monotonic()
    running = launch_server(tmp_path_factory.mktemp("share"), "--share", timeout=180)
    yield running, start
    stop_server(running)


def _share_settled(log: str) -> bool:
    """Gradio has finished its share attempt: a public link, or its "Could not create share link"."""
    return "public URL" in log or "share link" in log


def test_share_without_auth_warns_and_serves(
    share_server: tuple[Server, float], record_property: pytest.RecordProperty
) -> None:
    running, start = share_server
    startup_s = time.monotonic() - start
    assert httpx.get(f"{running.url}/healthz", timeout=10).status_code == 200
    assert SHARE_WARNING in running.log()
    # A failed tunnel (no internet here) must not take the local server down: wait for the
    # share attempt to end either way, then ask again.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not _share_settled(running.log()):
        time.sleep(0.2)
    settled_s = time.monotonic() - start
    record_property("share_healthz_s", round(startup_s, 1))
    record_property("share_settled_s", round(settled_s, 1))
    print(f"--share: /healthz answered after {startup_s:.1f} s; share attempt over after {settled_s:.1f} s")
    assert _share_settled(running.log()), "Gradio's share attempt did not end within 90 s"
    assert running.process.poll() is None
    assert httpx.get(f"{running.url}/healthz", timeout=10).status_code == 200


# --- MCP --------------------------------------------------------------------------------------


def test_mcp_lists_the_endpoints_as_tools(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``--mcp``: Gradio's MCP server is up and describes each named endpoint as a tool."""
    running = launch_server(tmp_path_factory.mktemp("mcp"), "--mcp")
    try:
        response = httpx.get(f"{running.url}/gradio_api/mcp/schema", timeout=30)
    finally:
        stop_server(running)
    assert response.status_code == 200
    tools = {tool["name"]: tool for tool in response.json()}
    assert {"remove_background", "remove_background_batch", "remove_background_batched"} <= set(tools)
    assert "image" in tools["remove_background"]["inputSchema"]["properties"]


# --- bad settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [(["--port", "abc"], "--port"), (["--nope"], "--nope"), (["--port", "0"], "--port")],
    ids=["port-abc", "unknown-flag", "port-0"],
)
def test_bad_settings_exit_2(argv: list[str], mentions: str) -> None:
    done = subprocess.run(
        [sys.executable, "app.py", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("app.py: ") and mentions in done.stderr
    assert done.stdout == ""


def test_bad_auth_setting_exits_2() -> None:
    done = subprocess.run(
        [sys.executable, "app.py", "--auth", "nocolon", "--port", str(free_port())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr
    assert done.returncode == 2, done.stderr


def test_every_answer_has_a_request_id_that_the_log_names(http: httpx.Client, server: Server) -> None:
    ok = remove(http, model="u2netp")
    bad = http.post("/api/remove", files={"file": ("x.png", b"not an image", "image/png")})
    ids = [ok.headers["X-Request-Id"], bad.headers["X-Request-Id"]]
    assert all(len(i) == 12 for i in ids) and ids[0] != ids[1]
    assert_error(bad, 400, "invalid_image")
    deadline = time.monotonic() + 10
    while f"request {ids[1]}" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"request {ids[1]}: POST /api/remove -> 400" in server.log()


def test_healthz_is_degraded_while_the_default_accelerator_cannot_run(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``--default-provider cuda`` where CUDA cannot load: 503 "degraded", and why (the GPU image
    defaults to cuda; probes and its HEALTHCHECK must not call such a replica healthy)."""
    from core import available_providers

    cuda = {p.name: p for p in available_providers()}["cuda"]
    if cuda.available:
        pytest.skip("CUDA can run here")
    running = launch_server(tmp_path_factory.mktemp("degraded"), "--default-provider", "cuda")
    try:
        health = httpx.get(f"{running.url}/healthz", timeout=30)
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert any("cuda" in r and cuda.reason in r for r in health.json()["reasons"]), health.json()
        with httpx.Client(base_url=running.url, timeout=120) as http:
            assert_error(remove(http, model="u2netp"), 503, "provider_unavailable")
            assert remove(http, model="u2netp", provider="cpu").status_code == 200
    finally:
        stop_server(running)
