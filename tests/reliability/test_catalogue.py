"""Reliability tier: the bad-input catalogue (``catalogue.CASES``) through all three ways in.

Every case goes through the library (``core.remove_background``), the REST API
(``POST /api/remove``) and the Gradio client API (``/remove_background``) of a
launched server with the case's limits (``small`` or ``shipped``). Each must end in
success (a whole image of the case's size) or the case's typed error (the exception
in the library, a 4xx in the JSON error shape over REST, an ``AppError`` carrying
the library's own message over Gradio), never a 5xx or a traceback; an error message
quotes at most a short piece of the input; after an error a good request still
succeeds; no temporary file is left behind; and no request raises the process's peak
memory by more than ``figures.PEAK_LIMIT_MIB``. Each request's time and peak memory
are recorded (``tests/_artifacts/catalogue-figures.json``); the time bounds are
checked by ``python -m tests.reliability.figures`` on a quiet machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from base.errors import ImageTooLarge, RemovalError
from core import Engine, RemovalResult, load_settings
from tests.conftest import stop_server
from tests.reliability import figures
from tests.reliability.catalogue import CASES, GOOD_PNG, LIMIT_FLAGS, SHIPPED_FLAGS, Case
from tests.reliability.common import IsolatedServer, decoded, files_under, kind, launch_isolated, rest_remove

pytestmark = [pytest.mark.reliability, pytest.mark.api, pytest.mark.model]
IDS = [c.id for c in CASES]
BASE = {"model": "u2netp", "provider": "cpu"}
FLAGS = {"small": LIMIT_FLAGS, "shipped": SHIPPED_FLAGS}
#: An error message may quote this much of the input, and say a sentence around it.
MAX_MESSAGE = 300
RECORDED: list[figures.Figure] = []


@pytest.fixture(scope="module", autouse=True)
def record() -> Iterator[None]:
    """Write the figures of every request this module made, and print their summary."""
    yield
    if RECORDED:
        figures.write(RECORDED, figures.ARTIFACTS / "catalogue-figures.json")
        print("\n".join(["", "catalogue figures:", *figures.summary_lines(RECORDED)]))


@pytest.fixture(scope="module")
def engines() -> dict[str, Engine]:
    """The library with each server's limits (``figures.library_remove`` sets Pillow's bomb guard to match), warm."""
    found = {limits: Engine(load_settings(list(flags))) for limits, flags in FLAGS.items()}
    for engine in found.values():
        figures.warm_up(lambda options, engine=engine: figures.library_remove(engine, GOOD_PNG, options))
    return found


class Servers:
    """One launched server per set of limits, started when a case first needs it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: dict[str, IsolatedServer] = {}
        self.clients: dict[str, tuple[httpx.Client, Client]] = {}

    def __getitem__(self, limits: str) -> IsolatedServer:
        if limits not in self.running:
            self.running[limits] = launch_isolated(self.root / limits, *FLAGS[limits])
            http = self.http(limits)
            figures.warm_up(lambda options: rest_remove(http, GOOD_PNG, **options).raise_for_status())
        return self.running[limits]

    def http(self, limits: str) -> httpx.Client:
        return self._clients(limits)[0]

    def client(self, limits: str) -> Client:
        return self._clients(limits)[1]

    def _clients(self, limits: str) -> tuple[httpx.Client, Client]:
        if limits not in self.clients:
            url = self[limits].url
            downloads = self.root / f"downloads-{limits}"
            downloads.mkdir(exist_ok=True)
            self.clients[limits] = (
                httpx.Client(base_url=url, timeout=300),
                Client(url, verbose=False, download_files=downloads, analytics_enabled=False),
            )
        return self.clients[limits]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    running = Servers(tmp_path_factory.mktemp("catalogue"))
    yield running
    for http, _ in running.clients.values():
        http.close()
    for server in running.running.values():
        stop_server(server.server)
        assert "Traceback" not in server.server.log(), server.server.log()[-3000:]


def _record(case: Case, path: str, outcome: str, seconds: float, peak: float) -> None:
    figure = figures.Figure(case.id, path, seconds, peak, case.budget_s, outcome)
    RECORDED.append(figure)
    assert figure.peak_mib <= figures.PEAK_LIMIT_MIB, f"{case.id} over {path} raised the peak by {peak:.0f} MiB"


def library_outcome(engine: Engine, case: Case) -> RemovalError | RemovalResult:
    try:
        return figures.library_remove(engine, case.data, {**BASE, **case.options})
    except RemovalError as exc:
        return exc


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
def test_library(engines: dict[str, Engine], case: Case) -> None:
    engine = engines[case.limits]
    outcome, seconds, peak = figures.measured(os.getpid(), lambda: library_outcome(engine, case))
    _record(case, "library", figures.code_of(outcome), seconds, peak)
    if case.error is None:
        assert isinstance(outcome, RemovalResult), f"expected success, got {outcome!r}"
        assert outcome.image.size == case.size and outcome.data
        assert decoded(outcome.data).size == case.size
    else:
        assert type(outcome) is case.error, f"expected {case.error.__name__}, got {outcome!r}"
        assert outcome.message.strip() and "Traceback" not in outcome.message
        assert len(outcome.message) <= MAX_MESSAGE, outcome.message[:400]


# --- REST -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rest(servers: Servers, case: Case) -> None:
    isolated, http = servers[case.limits], servers.http(case.limits)
    before = files_under(isolated.temp)
    response, seconds, peak = figures.measured(
        isolated.pid, lambda: rest_remove(http, case.data, case.filename, **{**BASE, **case.options})
    )
    assert isinstance(response, httpx.Response), response
    _record(case, "rest", str(response.status_code), seconds, peak)
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if case.error is None:
        assert response.status_code == 200, response.text
        im = decoded(response.content)  # every 200 carries a whole image of the right size
        assert im.size == case.size
        expected = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}[case.options.get("output_format", "png")]
        assert im.format == expected
    else:
        assert response.status_code == case.error.http_status, response.text
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        assert body["error"]["code"] == case.error.code, body
        assert body["error"]["message"].strip()
        assert len(response.content) <= MAX_MESSAGE + 100, response.text[:400]
        assert_still_serving_rest(http, isolated)
    assert new_files(isolated, before) == {}, "the REST path left temporary files behind"


# --- the Gradio client API -------------------------------------------------------------------


def _upload(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / case.filename
    path.write_bytes(case.data)
    return path


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradio_client(servers: Servers, engines: dict[str, Engine], case: Case, tmp_path: Path) -> None:
    isolated, client = servers[case.limits], servers.client(case.limits)
    before = files_under(isolated.temp)
    upload = _upload(tmp_path, case)
    options = {**BASE, **case.options}

    def call() -> tuple[str, dict[str, object]]:
        path, report = client.predict(handle_file(str(upload)), api_name="/remove_background", **options)
        return path, report

    outcome, seconds, peak = figures.measured(isolated.pid, call)
    _record(case, "gradio", figures.code_of(outcome), seconds, peak)
    if case.error is None:
        assert not isinstance(outcome, BaseException), repr(outcome)
        path, report = outcome
        im = decoded(Path(path).read_bytes())
        assert im.size == case.size == (report["width"], report["height"])
        created = new_files(isolated, before)
        assert len(created.pop("outputs", [])) == 1, "one result in the OutputStore (pruned after an hour)"
    else:
        if case.error is ImageTooLarge and len(case.data) > engines[case.limits].settings.max_upload_bytes:
            # gradio_client refuses it against the server's max_file_size before uploading
            # (the server's own 413 on /gradio_api/upload is in test_security.py).
            assert isinstance(outcome, ValueError) and "maximum file size" in str(outcome), repr(outcome)
        else:
            assert isinstance(outcome, AppError), repr(outcome)
            expected = library_outcome(engines[case.limits], case)
            assert isinstance(expected, RemovalError)
            assert str(outcome) == expected.message
            assert len(str(outcome)) <= MAX_MESSAGE
        assert "Traceback" not in str(outcome)
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


def test_server_log_has_no_traceback(servers: Servers) -> None:
    isolated = servers["small"]
    assert_still_serving_rest(servers.http("small"), isolated)
    log = isolated.server.log()
    assert "Traceback" not in log, log[-3000:]


def test_nothing_half_written_anywhere(servers: Servers) -> None:
    for isolated in servers.running.values():
        leftovers = [rel for rel in files_under(isolated.temp) if kind(rel) == "stray"]
        assert leftovers == []
