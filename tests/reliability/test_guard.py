"""Reliability tier: what the HTTP guard (``api.guard``) bounds before any route reads a byte.

Bodies are counted while they stream and cut off at the limit (REST and Gradio's upload
route alike), the login is checked before the body, uploads cut off mid-body leave no
file and one log line each, stray upload files are swept at start, slow clients are
closed, failed logins are limited per address, the API description needs the login,
and Gradio's internal events answer only callers that loaded the page. Raw sockets
where a client library would hide what the server does.
"""

from __future__ import annotations

import base64
import os
import re
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from gradio_client import Client, handle_file

from tests.conftest import stop_server
from tests.reliability.catalogue import GOOD_PNG, LIMIT_FLAGS, MAX_BYTES
from tests.reliability.common import IsolatedServer, decoded, files_under, launch_isolated, rest_remove

pytestmark = [pytest.mark.reliability, pytest.mark.api, pytest.mark.model]
READ_TIMEOUT_S = 2
MAX_BATCH = 3_000_000
GUARD_FLAGS = (*LIMIT_FLAGS, "--read-timeout-s", str(READ_TIMEOUT_S), "--max-batch-bytes", str(MAX_BATCH))
#: What a server may have read past the limit before its answer reaches the client: the socket
#: buffers of both ends on loopback and uvicorn's own, a few MB; without the guard, all of it.
SLACK = 16_000_000
BOUNDARY = "guardboundary"


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedServer]:
    root = tmp_path_factory.mktemp("guard")
    # a cut-off upload left by an earlier run (two hours old) and one another app may be writing now
    gradio = root / "temp" / "gradio"
    gradio.mkdir(parents=True)
    (gradio / "tmpstale").write_bytes(b"x" * 1000)
    os.utime(gradio / "tmpstale", (time.time() - 7200, time.time() - 7200))
    (gradio / "tmpfresh").write_bytes(b"x")
    running = launch_isolated(root, *GUARD_FLAGS)
    yield running
    stop_server(running.server)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedServer]:
    running = launch_isolated(tmp_path_factory.mktemp("guard-auth"), *GUARD_FLAGS, "--auth", "user:secret")
    yield running
    stop_server(running.server)


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def _part_head(field: str = "file", filename: str = "big.png") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def _parts(field: str, part_bytes: int) -> Iterator[bytes]:
    """A multipart body without end: file parts of ``part_bytes`` each, one after another."""
    n = 0
    while True:
        yield _part_head(field, f"{n}.png") + b"x" * part_bytes + b"\r\n"
        n += 1


def stream_until_answered(
    url: str, path: str, total: int, headers: str = "", field: str = "file", part_bytes: int = 1 << 40
) -> tuple[int, bytes]:
    """POST a chunked multipart body of ``total`` bytes, reading while writing; (bytes sent, the answer's head).

    The body is one file part, or parts of ``part_bytes`` each. Stops sending once an
    answer arrives, as a client that reads while it writes does.
    """
    sock = socket.create_connection(_address(url), timeout=30)
    sock.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n{headers}"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
        ).encode()
    )
    sock.setblocking(False)
    chunk = 256 * 1024
    parts = _parts(field, part_bytes) if part_bytes < total else None
    head = _part_head(field)
    pending = f"{len(head):x}\r\n".encode() + head + b"\r\n" if parts is None else b""
    sent, answer = 0, b""
    deadline = time.monotonic() + 120
    try:
        while sent < total and time.monotonic() < deadline and b"\r\n\r\n" not in answer:
            readable, writable, _ = select.select([sock], [sock], [], 1)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
            elif writable:
                if not pending:
                    body = next(parts) if parts is not None else b"x" * chunk
                    pending = f"{len(body):x}\r\n".encode() + body + b"\r\n"
                try:
                    n = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    break
                pending, sent = pending[n:], sent + n
        sock.settimeout(30)  # blocking again, but a server that never answers fails the test, not hangs it
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except OSError:
        pass
    finally:
        sock.close()
    return sent, answer.partition(b"\r\n\r\n")[0]


def status_of(head: bytes) -> int:
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0


def wait_for_log(isolated: IsolatedServer, pattern: str, count: int = 1, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = re.findall(pattern, isolated.server.log())
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


# --- bytes bounded before they are read ----------------------------------------------------------


def test_a_chunked_rest_body_is_cut_off_at_the_limit(isolated: IsolatedServer) -> None:
    """Issue row 1: a body without a length was spooled to disk whole before the 413."""
    total = 400_000_000
    sent, head = stream_until_answered(isolated.url, "/api/remove", total)
    assert status_of(head) == 413, head
    assert b"x-request-id" in head.lower()
    assert sent < MAX_BYTES + SLACK, f"the server read {sent:,} bytes of a body limited to {MAX_BYTES:,}"
    found = wait_for_log(isolated, r"request \w{12}: POST /api/remove from [\d.]+: refused: the body passed")
    assert found, isolated.server.log()[-2000:]
    assert rest_remove(httpx.Client(base_url=isolated.url, timeout=120), GOOD_PNG, model="u2netp").status_code == 200


def test_a_declared_length_over_the_limit_is_refused_before_reading(isolated: IsolatedServer) -> None:
    """A gigabyte announced and not (yet) sent: 413 at once, not after reading it."""
    with socket.create_connection(_address(isolated.url), timeout=30) as sock:
        sock.sendall(
            (
                "POST /api/remove HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
            ).encode()
            + _part_head()
        )
        answer = b""
        try:
            while b"\r\n\r\n" not in answer and (data := sock.recv(65536)):
                answer += data
        except TimeoutError:
            pass
    assert status_of(answer) == 413, answer[:300]
    response = httpx.post(
        f"{isolated.url}/api/remove", files={"file": ("big.png", b"x" * (MAX_BYTES + 100_000))}, timeout=60
    )
    assert response.status_code == 413, response.text  # what a client library sees: the 413, whole
    assert response.json()["error"]["code"] == "image_too_large"


def test_rest_checks_the_login_before_the_body(auth_server: IsolatedServer) -> None:
    """Issue row 1, with --auth: 1 GiB was read before the 401."""
    sent, head = stream_until_answered(auth_server.url, "/api/remove", 400_000_000)
    assert status_of(head) == 401, head
    assert sent < SLACK, f"{sent:,} bytes read before the 401"
    login = base64.b64encode(b"user:secret").decode()
    sent, head = stream_until_answered(
        auth_server.url, "/api/remove", 400_000_000, headers=f"Authorization: Basic {login}\r\n"
    )
    assert status_of(head) == 413, head  # logged in: the byte limit is next


def test_gradio_upload_route_is_cut_off_at_its_limit_and_leaves_nothing(isolated: IsolatedServer) -> None:
    """Many files each under Gradio's per-file limit: the route's total is bounded too."""
    before = files_under(isolated.temp)
    sent, head = stream_until_answered(
        isolated.url, "/gradio_api/upload", 400_000_000, field="files", part_bytes=MAX_BYTES // 2
    )
    assert status_of(head) == 413, head
    assert sent < MAX_BATCH + SLACK
    time.sleep(0.5)
    assert sorted(files_under(isolated.temp) - before) == []


def _hang_up_mid_upload(url: str, total: int) -> None:
    head = _part_head("files", "photo.png")
    body = head + b"x" * total + f"\r\n--{BOUNDARY}--\r\n".encode()
    request = (
        f"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
    ).encode()
    with socket.create_connection(_address(url), timeout=30) as sock:
        sock.sendall(request + body[: len(body) // 2])
        time.sleep(0.2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close


def test_gradio_uploads_cut_off_mid_body_leave_no_file_and_one_line(isolated: IsolatedServer) -> None:
    """Issue row 2: ten uploads cut off mid-body left tmp* files (+300 MiB) and a traceback each."""
    before = files_under(isolated.temp)
    for _ in range(10):
        _hang_up_mid_upload(isolated.url, 1_500_000)
    lines = wait_for_log(isolated, r"request \w{12}: POST /gradio_api/upload from [\d.]+: the client hung up", 10)
    assert len(lines) >= 10, isolated.server.log()[-3000:]
    assert sorted(files_under(isolated.temp) - before) == []
    assert "Traceback" not in isolated.server.log()


def test_stray_uploads_are_swept_at_start(isolated: IsolatedServer) -> None:
    gradio = isolated.temp / "gradio"
    assert not (gradio / "tmpstale").exists(), "a two-hour-old cut-off upload was left"
    assert (gradio / "tmpfresh").exists(), "an upload another app may be writing was deleted"


# --- slow clients -----------------------------------------------------------------------------


def test_headers_that_never_end_are_closed(isolated: IsolatedServer) -> None:
    """Slowloris: a request whose headers trickle in is closed after --read-timeout-s."""
    with socket.create_connection(_address(isolated.url), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        deadline = time.monotonic() + 60
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                closed = True
                break
            readable, _, _ = select.select([sock], [], [], 0.5)
            if readable:
                try:
                    closed = sock.recv(1024) == b""
                except OSError:
                    closed = True
        assert closed, "the server kept a connection whose headers never ended"


def test_a_body_that_stalls_is_answered_408(isolated: IsolatedServer) -> None:
    head = _part_head()
    request = (
        f"POST /api/remove HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
    ).encode()
    with socket.create_connection(_address(isolated.url), timeout=60) as sock:
        sock.sendall(request + head + b"x" * 1000)  # and then nothing
        answer = b""
        while data := sock.recv(65536):  # the server closes after its answer
            answer += data
    assert status_of(answer) == 408, answer[:300]
    assert b"request_timeout" in answer


# --- logins -----------------------------------------------------------------------------------


def _client_from(address: str, url: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127.x.y.z is this machine)."""
    return httpx.Client(base_url=url, timeout=60, transport=httpx.HTTPTransport(local_address=address))


def test_failed_rest_logins_are_limited_per_address(auth_server: IsolatedServer) -> None:
    with _client_from("127.0.0.7", auth_server.url) as http:
        statuses = [http.get("/openapi.json", auth=("user", f"wrong{i}")).status_code for i in range(12)]
        assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429], statuses
        refused = http.post("/api/remove", files={"file": ("a.png", GOOD_PNG)}, auth=("user", "secret"))
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        assert refused.json()["error"]["code"] == "too_many_logins"
    with _client_from("127.0.0.8", auth_server.url) as other:  # another address is not held up
        response = other.post("/api/remove", files={"file": ("a.png", GOOD_PNG)}, auth=("user", "secret"))
        assert response.status_code == 200, response.text


def test_failed_webui_logins_are_limited_per_address(auth_server: IsolatedServer) -> None:
    with _client_from("127.0.0.9", auth_server.url) as http:
        statuses = [
            http.post("/login", data={"username": "user", "password": f"wrong{i}"}).status_code for i in range(12)
        ]
        assert statuses[:10] == [400] * 10 and statuses[10:] == [429, 429], statuses
        assert http.post("/login", data={"username": "user", "password": "secret"}).status_code == 429
    with _client_from("127.0.0.10", auth_server.url) as other:
        assert other.post("/login", data={"username": "user", "password": "secret"}).status_code == 200


def test_the_api_description_needs_the_login(auth_server: IsolatedServer) -> None:
    with _client_from("127.0.0.11", auth_server.url) as http:
        anonymous = http.get("/openapi.json")
        assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
        assert "/api/remove" not in anonymous.text
        logged_in = http.get("/openapi.json", auth=("user", "secret"))
        assert logged_in.status_code == 200 and "/api/remove" in logged_in.json()["paths"]


def test_healthz_does_not_answer_whether_guessed_credentials_are_right(auth_server: IsolatedServer) -> None:
    with _client_from("127.0.0.12", auth_server.url) as http:
        for i in range(10):
            assert set(http.get("/healthz", auth=("user", f"wrong{i}")).json()) == {"status", "version"}
        # past the limit even the right password gets liveness only
        assert set(http.get("/healthz", auth=("user", "secret")).json()) == {"status", "version"}


# --- Gradio's internal events -----------------------------------------------------------------


def _fn_index(http: httpx.Client, name: str) -> int:
    config = http.get("/config").json()
    found = [d["id"] for d in config["dependencies"] if d.get("api_name") == name]
    assert found, [d.get("api_name") for d in config["dependencies"]]
    return int(found[0])


def test_internal_events_answer_only_the_page(isolated: IsolatedServer, tmp_path: Path) -> None:
    """The WebUI's handlers and the Benchmark run could be called by number from a script."""
    with httpx.Client(base_url=isolated.url, timeout=60) as http:
        for name in ("ui_remove_inference", "ui_remove_heavy", "ui_touchup_heavy", "ui_batch", "run_quick"):
            index = _fn_index(http, name)
            refused = http.post("/gradio_api/queue/join", json={"fn_index": index, "data": [], "session_hash": "s1"})
            assert refused.status_code == 403, refused.text
            by_name = http.post(f"/gradio_api/call/{name}", json={"data": []})
            assert by_name.status_code == 403, by_name.text
    with httpx.Client(base_url=isolated.url, timeout=60) as page:
        assert page.get("/").status_code == 200  # the page sets its cookie
        index = _fn_index(page, "ui_snapshot")
        joined = page.post(
            "/gradio_api/queue/join", json={"fn_index": index, "data": [None, "cpu", "u2netp"], "session_hash": "s2"}
        )
        assert joined.status_code == 200, joined.text
    # the named endpoints stay open to every client
    good = tmp_path / "good.png"
    good.write_bytes(GOOD_PNG)
    client = Client(isolated.url, verbose=False, download_files=tmp_path / "dl", analytics_enabled=False)
    path, _ = client.predict(handle_file(str(good)), model="u2netp", api_name="/remove_background")
    assert decoded(Path(path).read_bytes()).size == (64, 48)


def test_rejected_gradio_file_inputs_are_one_line_and_a_short_error(isolated: IsolatedServer) -> None:
    """A file reference Gradio did not upload, a 300 KB path, a string for a file: no traceback, no echo."""
    with httpx.Client(base_url=isolated.url, timeout=60) as http:
        index = _fn_index(http, "remove_background")
        options = ["u2netp", "cpu", "png", 0, False, "", None, False, 0, False, 240, 10, 10, False]
        bad_images = [
            {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}},
            {"path": "x" * 300_000, "meta": {"_type": "gradio.FileData"}},
            "just a string",
        ]
        for n, image in enumerate(bad_images):
            session = f"bad{n}"
            joined = http.post(
                "/gradio_api/queue/join", json={"fn_index": index, "data": [image, *options], "session_hash": session}
            )
            assert joined.status_code == 200, joined.text
            with http.stream("GET", f"/gradio_api/queue/data?session_hash={session}") as stream:
                completed = next(line for line in stream.iter_lines() if "process_completed" in line)
            assert '"success":false' in completed.replace(" ", "")
            assert len(completed) < 1000, completed[:300]
    lines = wait_for_log(isolated, r"request \w{12}: remove_background: input refused", 3)
    assert len(lines) == 3
    assert "Traceback" not in isolated.server.log()


# --- the queue route: no 5xx, whatever the body ---------------------------------------------------


def _error_shape(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body["error"]) == {"code", "message"}, body
    assert len(response.text) < 1000, response.text[:300]
    return dict(body["error"])


@pytest.mark.parametrize("server", ["isolated", "auth_server"])
def test_the_queue_route_answers_junk_json_with_a_4xx(server: str, request: pytest.FixtureRequest) -> None:
    """``[`` x 5000 raised RecursionError in the guard's parser, ``1e999999`` broke FastAPI's handler: 500s."""
    running: IsolatedServer = request.getfixturevalue(server)
    bodies = [
        b"[" * 5000,
        b'{"fn_index": 0, "data": ' + b"[" * 5000 + b"]" * 5000 + b', "session_hash": "deep"}',
        b'{"fn_index": 0, "data": ' + b"[" * 100 + b"]" * 100 + b', "session_hash": "deep"}',
        b'{"fn_index": 1e999999, "data": [], "session_hash": "inf"}',
        b'{"fn_index": {"a": 1}, "data": [], "session_hash": "dict"}',
        b"[1, 2, 3]",
        b"\xff\xfe not json",
    ]
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=running.url, timeout=60) as http:
        for body in bodies:
            answer = http.post("/gradio_api/queue/join", content=body, headers=headers)
            assert 400 <= answer.status_code < 500, (body[:40], answer.status_code, answer.text[:300])
            assert _error_shape(answer)["code"] == "invalid_request"
        # FastAPI's own validation, on a route the guard does not parse
        answer = http.post(
            "/gradio_api/cancel",
            content=b'{"fn_index": 1e999999, "session_hash": "s", "event_id": "e"}',
            headers=headers,
        )
        assert answer.status_code == 422, answer.text[:300]
        assert _error_shape(answer)["code"] == "invalid_request"
        assert "inf" not in answer.text.lower()
    assert "Traceback" not in running.server.log()


def test_an_internal_fn_index_in_any_spelling_needs_the_page(isolated: IsolatedServer) -> None:
    """``"fn_index": "19"`` ran ``ui_snapshot`` without the page's cookie: the validator takes it as 19."""
    with httpx.Client(base_url=isolated.url, timeout=60) as http:
        index = _fn_index(http, "ui_snapshot")
        for spelling in (str(index), f" {index} ", float(index), f"{index}.0"):
            body = {"fn_index": spelling, "data": [None, "cpu", "u2netp"], "session_hash": "spelled"}
            refused = http.post("/gradio_api/queue/join", json=body)
            assert refused.status_code == 403, (spelling, refused.text)
            assert _error_shape(refused)["code"] == "forbidden"
        # a public event spelled as a string still runs: normalised, not refused
        public = _fn_index(http, "remove_background")
        joined = http.post(
            "/gradio_api/queue/join", json={"fn_index": str(public), "data": [], "session_hash": "public-spelled"}
        )
        assert joined.status_code == 200, joined.text
