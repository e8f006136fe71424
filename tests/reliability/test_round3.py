"""Reliability tier: the third hardening round (issue 25) on real servers.

Start-up calls nobody, MCP is behind the login, URL inputs on the Gradio API follow
``--allow-url-input``, and a clean stop leaves no files behind.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from gradio_client.utils import Status

from base.files import folder_bytes
from benchmark.server import ROOT, free_port, wait_healthy
from core.remote import URL_INPUT_OFF
from tests.conftest import stop_server
from tests.reliability.catalogue import GOOD_PNG, LIMIT_FLAGS, photo_jpeg
from tests.reliability.common import IsolatedServer, files_under, launch_isolated

pytestmark = [pytest.mark.reliability, pytest.mark.model]

#: Names a server may look up at start: its own address.
LOCAL_NAMES = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}

#: Runs app.py with ``socket.getaddrinfo`` recording every name it is asked for (asyncio, httpx and
#: urllib all resolve through it).
RECORDING = """
import os, runpy, socket, sys
log = os.environ["LOOKUP_LOG"]
real = socket.getaddrinfo
def recording(host, *args, **kwargs):
    with open(log, "a") as f:
        f.write(f"{host}\\n")
    return real(host, *args, **kwargs)
socket.getaddrinfo = recording
sys.path.insert(0, os.getcwd())
sys.argv = ["app.py", *sys.argv[1:]]
runpy.run_path("app.py", run_name="__main__")
"""


def test_start_up_looks_up_no_name_but_its_own(tmp_path: Path) -> None:
    """Gradio's analytics looked up api.gradio.app and huggingface.co at every start, and ``import openvino``
    www.google-analytics.com (its telemetry, ``base.settings.quiet_openvino``)."""
    lookups = tmp_path / "lookups.txt"
    log = tmp_path / "server.log"
    port = free_port()
    # Without CI's own variables: openvino's telemetry stays quiet where CI=true, and a user's server has none
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_") and k not in ("CI", "TF_BUILD")}
    env.update({"LOOKUP_LOG": str(lookups), "TMPDIR": str(tmp_path), "GRADIO_TEMP_DIR": str(tmp_path / "gradio")})
    flags = ["--port", str(port), "--default-model", "u2netp", "--default-provider", "cpu", "--no-fetch-missing"]
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", RECORDING, *flags], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, 120, log)
        # Gradio's start-up work runs beside serving: wait until its own check of the page is done
        deadline = time.monotonic() + 60
        while "HEAD http://127.0.0.1" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # the analytics threads start with launch(); give them time to be seen
    finally:
        process.terminate()
        process.wait(30)
    names = set(lookups.read_text().split()) if lookups.exists() else set()
    assert names <= LOCAL_NAMES, sorted(names - LOCAL_NAMES)


# --- MCP behind the login ---------------------------------------------------------------------------

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def mcp_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedServer]:
    running = launch_isolated(tmp_path_factory.mktemp("mcp-auth"), *LIMIT_FLAGS, "--mcp", "--auth", "user:secret")
    yield running
    stop_server(running.server)


def test_mcp_needs_the_login(mcp_auth: IsolatedServer) -> None:
    """With ``--auth --mcp``, initialize, tools/list and the schema answered anyone (issue 25)."""
    with httpx.Client(base_url=mcp_auth.url, timeout=60) as anyone:
        for path in ("/gradio_api/mcp/", "/gradio_api/mcp/http/"):
            for method in ("initialize", "tools/list"):
                answer = anyone.post(path, json={**INITIALIZE, "method": method}, headers=MCP_HEADERS)
                assert answer.status_code == 401, (path, method, answer.text[:300])
        for path in ("/gradio_api/mcp/schema", "/gradio_api/mcp/sse"):
            answer = anyone.get(path)
            assert answer.status_code == 401, (path, answer.text[:300])
            assert answer.json()["error"]["code"] == "unauthorized"
    with httpx.Client(base_url=mcp_auth.url, timeout=60, auth=("user", "secret")) as user:
        schema = user.get("/gradio_api/mcp/schema")
        assert schema.status_code == 200, schema.text[:300]
        assert "remove_background" in schema.text
        started = user.post("/gradio_api/mcp/", json=INITIALIZE, headers=MCP_HEADERS)
        assert started.status_code == 200, started.text[:300]


# --- URL inputs on the Gradio API and MCP follow --allow-url-input ----------------------------------


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedServer]:
    running = launch_isolated(tmp_path_factory.mktemp("plain"), *LIMIT_FLAGS, "--mcp")
    yield running
    stop_server(running.server)


@pytest.fixture(scope="module")
def url_on(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedServer]:
    running = launch_isolated(tmp_path_factory.mktemp("url-on"), *LIMIT_FLAGS, "--allow-url-input")
    yield running
    stop_server(running.server)


def _gradio_url_error(server: IsolatedServer, url: str, tmp_path: Path) -> str:
    client = Client(server.url, verbose=False, download_files=tmp_path / "dl", analytics_enabled=False)
    with pytest.raises(AppError) as info:
        client.predict(handle_file(url), model="u2netp", api_name="/remove_background")
    return str(info.value)


def test_gradio_api_refuses_image_urls_while_url_input_is_off(plain: IsolatedServer, tmp_path: Path) -> None:
    """With URL input off, Gradio fetched image URLs itself, under its own check only (issue 25)."""
    said = _gradio_url_error(plain, "http://images.example/a.png", tmp_path)
    assert URL_INPUT_OFF in said, said


def test_gradio_api_fetches_urls_through_the_ssrf_guard(url_on: IsolatedServer, tmp_path: Path) -> None:
    """With it on, the service's guard decides, with its own words (Gradio's check said something else)."""
    for url in ("http://127.0.0.1:8080/a.png", "http://[::127.0.0.1]:8080/a.png", "http://[64:ff9b::a9fe:a9fe]/"):
        said = _gradio_url_error(url_on, url, tmp_path)
        assert "non-public address" in said, (url, said)
    assert "Traceback" not in url_on.server.log()


def _mcp_session(http: httpx.Client) -> dict[str, str]:
    started = http.post("/gradio_api/mcp/", json=INITIALIZE, headers=MCP_HEADERS)
    assert started.status_code == 200, started.text[:300]
    headers = dict(MCP_HEADERS)
    if "mcp-session-id" in started.headers:
        headers["mcp-session-id"] = started.headers["mcp-session-id"]
    http.post("/gradio_api/mcp/", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    return headers


def test_mcp_refuses_image_urls_while_url_input_is_off(plain: IsolatedServer) -> None:
    with httpx.Client(base_url=plain.url, timeout=120) as http:
        headers = _mcp_session(http)
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        listed = http.post("/gradio_api/mcp/", json=listing, headers=headers)
        tools = [t for t in re.findall(r'"name":"([^"]+)"', listed.text) if "remove_background" in t]
        assert tools, listed.text[:500]
        call = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": tools[0], "arguments": {"image": "http://images.example/a.png", "model": "u2netp"}},
        }
        answer = http.post("/gradio_api/mcp/", json=call, headers=headers)
    assert URL_INPUT_OFF in answer.text, answer.text[:500]


# --- a clean stop leaves nothing behind --------------------------------------------------------------

#: onnxruntime's own per-machine id (51 bytes), written in the temp folder's root; not this service's.
NOT_OURS = {".ses"}


def test_a_clean_stop_leaves_no_files(tmp_path: Path) -> None:
    """The results folder (35 files after a load run) and MCP's ``file.png`` outlived the process (issue 25)."""
    running = launch_isolated(tmp_path, *LIMIT_FLAGS, "--mcp")
    good = tmp_path / "good.png"
    good.write_bytes(GOOD_PNG)
    try:
        with httpx.Client(base_url=running.url, timeout=120) as http:
            assert http.post("/api/remove", files={"file": ("a.png", GOOD_PNG)}).status_code == 200
            headers = _mcp_session(http)
            image = "data:image/png;base64," + base64.b64encode(GOOD_PNG).decode()
            call = {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {"name": "remove_background", "arguments": {"image": image, "model": "u2netp"}},
            }
            assert '"isError":true' not in http.post("/gradio_api/mcp/", json=call, headers=headers).text
        client = Client(running.url, verbose=False, download_files=tmp_path / "dl", analytics_enabled=False)
        client.predict(handle_file(str(good)), model="u2netp", api_name="/remove_background")
        assert files_under(running.temp) - NOT_OURS, "the requests left no file to clean up: the test tests nothing"
    finally:
        running.server.process.terminate()
        running.server.process.wait(90)
    assert running.server.process.returncode == 0, running.server.log()[-2000:]
    assert sorted(files_under(running.temp) - NOT_OURS) == []
    left = [p for p in running.temp.rglob("*") if p.is_dir() and p != running.temp / "gradio"]
    assert left == [], left


# --- a disk quota for uploads, across requests --------------------------------------------------------


def test_uploads_have_a_disk_quota_across_requests(tmp_path: Path) -> None:
    """4 x 32 MiB, then 8 x 31 MiB, left 376 MiB on disk in 5 s: each request was within its own limit."""
    quota = 4 << 20
    running = launch_isolated(tmp_path, *LIMIT_FLAGS, "--upload-disk-mb", "4", "--max-batch-bytes", "3000000")
    statuses = []
    try:
        with httpx.Client(base_url=running.url, timeout=60) as http:
            memory = http.get("/healthz").json()["memory"]  # the budget, derived from what is available
            assert memory["budget_mb"] > 0 and memory["admitted_mb"] == 0, memory
            for n in range(6):
                answer = http.post("/gradio_api/upload", files={"files": (f"{n}.png", os.urandom(1_500_000))})
                statuses.append(answer.status_code)
                if answer.status_code == 507:
                    assert "quota" in answer.text, answer.text
        stored = folder_bytes(running.temp / "gradio")
    finally:
        stop_server(running.server)
    assert statuses[0] == 200 and 507 in statuses, statuses
    assert stored <= quota, (stored, statuses)


# --- shutdown within its timeout, every client answered ---------------------------------------------


def test_jobs_that_cannot_finish_in_the_shutdown_timeout_get_a_clean_503(tmp_path: Path) -> None:
    """With --shutdown-timeout-s 5 and matting in flight, the process ran to 11.6 s and dropped two requests."""
    running = launch_isolated(tmp_path, *LIMIT_FLAGS, "--shutdown-timeout-s", "2")
    photo = photo_jpeg((1000, 1000))
    answers: list[tuple[int, str]] = []

    def matte() -> None:
        # matting runs one at a time: four of them outlast the 2 s timeout whatever the machine
        try:
            with httpx.Client(base_url=running.url, timeout=120) as http:
                answer = http.post("/api/remove", files={"file": ("m.jpg", photo)}, data={"a": "true"})
            code = "" if answer.status_code == 200 else answer.json()["error"]["code"]
            answers.append((answer.status_code, code))
        except httpx.HTTPError as exc:
            answers.append((0, type(exc).__name__))

    threads = [threading.Thread(target=matte) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60  # never hang: the asserts below say what was missed
    with httpx.Client(base_url=running.url, timeout=30) as http:
        while http.get("/healthz").json()["queue"]["rest_in_flight"] < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    running.server.process.terminate()
    for thread in threads:
        thread.join(120)
    running.server.process.wait(60)
    assert running.server.process.returncode == 0, running.server.log()[-2000:]
    assert all(answer in ((200, ""), (503, "shutting_down")) for answer in answers), answers
    assert (503, "shutting_down") in answers, answers
    assert "told to retry" in running.server.log()


def test_gradio_jobs_that_cannot_finish_in_the_shutdown_timeout_get_an_error(tmp_path: Path) -> None:
    """The Gradio side of the same: a job running or queued at the timeout ends with an error message."""
    running = launch_isolated(tmp_path, *LIMIT_FLAGS, "--shutdown-timeout-s", "2")
    photo = tmp_path / "m.jpg"
    photo.write_bytes(photo_jpeg((1000, 1000)))
    client = Client(running.url, verbose=False, download_files=tmp_path / "dl", analytics_enabled=False)
    jobs = [
        client.submit(handle_file(str(photo)), model="u2netp", alpha_matting=True, api_name="/remove_background")
        for _ in range(3)
    ]
    # Every job is in (a job still joining when the drain starts is refused as new work, with a 503 that the
    # client library reports as "Queue is full!"); some run (the client API's lane may run more than one at a
    # time) and at least one waits in the queue.
    accepted = {Status.IN_QUEUE, Status.SENDING_DATA, Status.PROCESSING, Status.PROGRESS, Status.LOG, Status.FINISHED}
    deadline = time.monotonic() + 60  # never hang: the asserts below say what was missed
    with httpx.Client(base_url=running.url, timeout=30) as http:
        while time.monotonic() < deadline and (
            any(job.status().code not in accepted for job in jobs)
            or http.get("/healthz").json()["queue"]["gradio_pending"] < 1
        ):
            time.sleep(0.05)
    running.server.process.terminate()
    outcomes = []
    for job in jobs:
        try:
            job.result(timeout=120)
            outcomes.append("done")
        except Exception as exc:  # noqa: BLE001 - the client raises its own kinds; the message is the point
            outcomes.append(str(exc))
    running.server.process.wait(60)
    assert running.server.process.returncode == 0, running.server.log()[-2000:]
    assert any("shutting down" in outcome for outcome in outcomes), outcomes
    assert all(outcome == "done" or "shutting down" in outcome for outcome in outcomes), outcomes
