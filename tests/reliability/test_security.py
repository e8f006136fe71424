"""Reliability tier: nobody let in, nobody kept waiting.

Gradio's file route serves only what the app put in its cache: ``..`` in any
spelling, absolute paths, the app's own files and weights, ``/proc`` and a symlink
planted in the cache pointing outside are all 4xx, never the file's contents.
Gradio's upload route enforces the byte limit itself (``gradio_client`` checks it
only on the client side). With ``--queue-size 1`` extra requests are refused at
once (REST: 503 ``busy`` with ``Retry-After``; Gradio: "Queue is full") while the
admitted one is still running, and the server keeps serving afterwards. Multipart
bodies with two files, or the file under another field as well, never reach a 5xx.
"""

from __future__ import annotations

import concurrent.futures
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.conftest import PHOTOS_DIR, ROOT, photo_bytes, stop_server
from tests.reliability.catalogue import GOOD_PNG, LIMIT_FLAGS, MAX_BYTES, padded
from tests.reliability.common import IsolatedServer, decoded, launch_isolated, rest_remove

pytestmark = [pytest.mark.reliability, pytest.mark.api, pytest.mark.model]
SECRET = "secret-outside-the-cache"
SLOW_PHOTO = "plants-1.jpg"  # the largest photo; with u2net it keeps the one worker busy for seconds


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedServer]:
    running = launch_isolated(tmp_path_factory.mktemp("security"), *LIMIT_FLAGS)
    yield running
    stop_server(running.server)


def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """GET ``target`` exactly as written (no client-side normalisation of ``..``)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    status = int(response.split(b" ", 2)[1])
    return status, response.partition(b"\r\n\r\n")[2]


# --- the file route --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file outside Gradio's cache, with a recognisable secret in it."""
    path = tmp_path_factory.mktemp("outside") / "secret.png"
    path.write_text(SECRET)
    return path


@pytest.fixture(scope="module")
def served_output(client: Client, isolated: IsolatedServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The cache path of a real result, which the file route must serve (the control)."""
    image = tmp_path_factory.mktemp("in") / "good.png"
    image.write_bytes(GOOD_PNG)
    client.predict(handle_file(str(image)), model="u2netp", api_name="/remove_background")
    cached = sorted((isolated.temp / "gradio").glob("*/good-cutout.png"))
    assert cached, "the result is not in Gradio's cache"
    return str(cached[0])


def test_the_file_route_serves_the_cache(isolated: IsolatedServer, served_output: str) -> None:
    status, body = raw_get(isolated.url, f"/gradio_api/file={quote(served_output)}")
    assert status == 200
    assert decoded(body).size == (64, 48)


def traversal_targets(isolated: IsolatedServer, outside: Path) -> dict[str, str]:
    cache = isolated.temp / "gradio"
    weights = Path(os.environ.get("U2NET_HOME", Path.home() / ".u2net")) / "u2netp.onnx"
    return {
        "dotdot-encoded": "/gradio_api/file=..%2f..%2f..%2f..%2fetc%2fpasswd",
        "dotdot-raw": "/gradio_api/file=../../../../etc/passwd",
        "dotdot-double-encoded": "/gradio_api/file=..%252f..%252fetc%252fpasswd",
        "dotdot-dots-encoded": "/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "dotdot-backslash": "/gradio_api/file=..%5c..%5c..%5cetc%5cpasswd",
        "absolute": "/gradio_api/file=/etc/passwd",
        "absolute-encoded": "/gradio_api/file=%2fetc%2fpasswd",
        "cache-then-dotdot": f"/gradio_api/file={quote(str(cache))}/../../../../../etc/passwd",
        "cache-then-dotdot-encoded": f"/gradio_api/file={quote(str(cache), safe='')}%2f..%2f..%2f..%2fetc%2fpasswd",
        "outside-file": f"/gradio_api/file={quote(str(outside))}",
        "app-source": f"/gradio_api/file={quote(str(ROOT / 'app.py'))}",
        "app-relative": "/gradio_api/file=app.py",
        "weights": f"/gradio_api/file={quote(str(weights))}",
        "proc-environ": "/gradio_api/file=/proc/self/environ",
        "nul-byte": "/gradio_api/file=%2fetc%2fpasswd%00.png",
        "old-route": "/file=/etc/passwd",
    }


def test_file_route_cannot_read_outside_the_cache(isolated: IsolatedServer, outside: Path) -> None:
    weights = Path(os.environ.get("U2NET_HOME", Path.home() / ".u2net")) / "u2netp.onnx"
    secrets = [b"root:x:0", SECRET.encode(), b"PATH=", (ROOT / "app.py").read_bytes()[:40], weights.read_bytes()[:40]]
    for name, target in traversal_targets(isolated, outside).items():
        status, body = raw_get(isolated.url, target)
        assert 400 <= status < 500, f"{name}: {status} {body[:200]!r}"
        assert not any(s in body for s in secrets), f"{name} leaked file contents: {body[:200]!r}"


@pytest.mark.parametrize("layout", ["file-link", "folder-link"])
def test_symlink_in_the_cache_pointing_outside(isolated: IsolatedServer, outside: Path, layout: str) -> None:
    """A symlink planted inside the cache (say, by a tar extraction) is not followed out of it."""
    cache = isolated.temp / "gradio"
    if layout == "file-link":
        folder = cache / ("a" * 64)
        folder.mkdir(exist_ok=True)
        link = folder / "secret.png"
        link.unlink(missing_ok=True)
        link.symlink_to(outside)
        targets = [link, folder / "passwd"]
        (folder / "passwd").unlink(missing_ok=True)
        (folder / "passwd").symlink_to("/etc/passwd")
    else:
        link = cache / ("b" * 64)
        if not link.is_symlink():
            link.symlink_to(outside.parent, target_is_directory=True)
        targets = [link / outside.name]
    for target in targets:
        status, body = raw_get(isolated.url, f"/gradio_api/file={quote(str(target))}")
        assert 400 <= status < 500, f"{target}: {status} {body[:200]!r}"
        assert SECRET.encode() not in body and b"root:" not in body


def test_upload_route_enforces_the_byte_limit(isolated: IsolatedServer, client: Client, tmp_path: Path) -> None:
    """``gradio_client`` refuses big files itself; the server must refuse them too, with 413."""
    too_big = padded(GOOD_PNG, MAX_BYTES + 1)
    response = httpx.post(f"{isolated.url}/gradio_api/upload", files={"files": ("big.png", too_big)}, timeout=60)
    assert response.status_code == 413, response.text
    just_under = padded(GOOD_PNG, MAX_BYTES)
    response = httpx.post(f"{isolated.url}/gradio_api/upload", files={"files": ("ok.png", just_under)}, timeout=60)
    assert response.status_code == 200, response.text
    path = tmp_path / "big.png"
    path.write_bytes(too_big)
    with pytest.raises(ValueError, match="maximum file size"):
        client.predict(handle_file(str(path)), api_name="/remove_background")


# --- multipart oddities ---------------------------------------------------------------------------


def test_two_files_in_the_file_field(http: httpx.Client) -> None:
    other = photo_bytes("car-1.jpg")
    files = [("file", ("a.png", GOOD_PNG, "image/png")), ("file", ("b.jpg", other, "image/jpeg"))]
    response = http.post("/api/remove", files=files, data={"model": "u2netp"})
    assert response.status_code < 500 and "Traceback" not in response.text
    if response.status_code == 200:  # one of the two was used, whole
        assert decoded(response.content).size in {(64, 48), (480, 360)}
    else:
        assert response.json()["error"]["code"] == "invalid_request"


def test_file_and_an_extra_file_field(http: httpx.Client) -> None:
    files = [("file", ("a.png", GOOD_PNG, "image/png")), ("image", ("b.png", b"not an image", "image/png"))]
    response = http.post("/api/remove", files=files, data={"model": "u2netp"})
    assert response.status_code == 200, response.text
    assert decoded(response.content).size == (64, 48)


def test_many_file_parts(http: httpx.Client) -> None:
    files = [("file", (f"{i}.png", b"x", "image/png")) for i in range(200)]
    response = http.post("/api/remove", files=files, data={"model": "u2netp"})
    assert response.status_code < 500 and "Traceback" not in response.text
    assert response.headers["content-type"].startswith("application/json")


# --- a full queue ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedServer]:
    running = launch_isolated(tmp_path_factory.mktemp("queue"), "--queue-size", "1", "--no-fetch-missing")
    yield running
    stop_server(running.server)


def _slow_rest(url: str) -> tuple[int, str, dict[str, str], float]:
    files = {"file": (SLOW_PHOTO, photo_bytes(SLOW_PHOTO), "application/octet-stream")}
    response = httpx.post(f"{url}/api/remove", files=files, data={"model": "u2net"}, timeout=300)
    return response.status_code, response.text[:300], dict(response.headers), time.monotonic()


def test_rest_queue_full_is_503_at_once(tiny_queue: IsolatedServer) -> None:
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(_slow_rest, [tiny_queue.url] * 4))
    done = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert len(done) + len(refused) == 4, [r[:2] for r in results]
    assert len(done) >= 1 and len(refused) >= 1, [r[:2] for r in results]
    for _, text, headers, _ in refused:
        assert '"code":"busy"' in text.replace(" ", "")
        assert headers.get("retry-after") == "1"
    # refused while the admitted request was still running, not after waiting for it
    assert max(r[3] for r in refused) < max(r[3] for r in done)
    assert rest_remove(httpx.Client(base_url=tiny_queue.url, timeout=120), GOOD_PNG, model="u2netp").status_code == 200


def test_gradio_queue_full_is_refused_not_hung(tiny_queue: IsolatedServer, tmp_path: Path) -> None:
    client = Client(tiny_queue.url, verbose=False, download_files=tmp_path / "dl", analytics_enabled=False)
    photo = str(PHOTOS_DIR / SLOW_PHOTO)
    jobs = [client.submit(handle_file(photo), model="u2net", api_name="/remove_background") for _ in range(5)]
    outcomes: list[str] = []
    for job in jobs:
        try:
            job.result(timeout=300)
            outcomes.append("ok")
        except AppError as exc:
            outcomes.append(f"app-error: {exc}")
        except Exception as exc:  # noqa: BLE001 - gradio_client raises its QueueError for a full queue
            outcomes.append(f"{type(exc).__name__}: {exc}")
    assert "ok" in outcomes, outcomes
    full = [o for o in outcomes if "queue is full" in o.lower()]
    assert full, outcomes
    assert all(o == "ok" or o in full for o in outcomes), outcomes
    # serving afterwards, through both ways in
    good = tmp_path / "good.png"
    good.write_bytes(GOOD_PNG)
    path, _ = client.predict(handle_file(str(good)), model="u2netp", api_name="/remove_background")
    assert decoded(Path(path).read_bytes()).size == (64, 48)
    assert tiny_queue.server.process.poll() is None
    assert "Traceback" not in tiny_queue.server.log()
