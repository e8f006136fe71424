"""Model tier: a URL fetch waiting on a slow host holds no REST in-flight slot (issue 25, finding 3).

The real router (``api.rest``) in process, on a real engine, with the queue bound at one
slot; ``fetch_url`` is replaced by one that waits until the test lets it go, since the
service's own fetcher refuses the loopback host a slow test server would live on
(``tests/core/test_remote.py`` has the fetcher's own deadline against such a server).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import api.rest
from api.rest import create_router
from core import Engine, load_settings
from tests.reliability.catalogue import GOOD_PNG, LIMIT_FLAGS

pytestmark = [pytest.mark.api, pytest.mark.model]


class SlowHost:
    """A stand-in for ``fetch_url`` whose host answers only once ``release`` is set."""

    def __init__(self) -> None:
        self.waiting = threading.Semaphore(0)
        self.release = threading.Event()

    def __call__(self, url: str, max_bytes: int) -> bytes:
        self.waiting.release()
        self.release.wait(60)
        return GOOD_PNG


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowHost]:
    host = SlowHost()
    monkeypatch.setattr(api.rest, "fetch_url", host)
    yield host
    host.release.set()


@pytest.fixture(scope="module")
def rest() -> Iterator[TestClient]:
    settings = load_settings([*LIMIT_FLAGS, "--queue-size", "1", "--allow-url-input"])
    app = FastAPI()
    app.include_router(create_router(Engine(settings), [], lambda: 0))
    with TestClient(app) as client:
        yield client


def _get(rest: TestClient, results: list[httpx.Response]) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(rest.get("/api/remove", params={"url": "http://x/a"})))
    thread.start()
    return thread


def test_a_slow_url_holds_no_slot(rest: TestClient, slow: SlowHost) -> None:
    """With one slot, a URL fetch waiting on its host used to turn every upload away with 503."""
    results: list[httpx.Response] = []
    thread = _get(rest, results)
    assert slow.waiting.acquire(timeout=60), "the fetch never started"
    upload = rest.post("/api/remove", files={"file": ("a.png", GOOD_PNG, "image/png")})
    assert upload.status_code == 200, upload.text
    slow.release.set()
    thread.join(60)
    assert [r.status_code for r in results] == [200], [r.text for r in results]


def test_url_fetches_have_their_own_bound(rest: TestClient, slow: SlowHost) -> None:
    results: list[httpx.Response] = []
    threads = [_get(rest, results) for _ in range(api.rest.URL_FETCHES)]
    for _ in threads:
        assert slow.waiting.acquire(timeout=60), "a fetch never started"
    refused = rest.get("/api/remove", params={"url": "http://x/a"})
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "busy"
    assert refused.headers["Retry-After"] == "1"
    slow.release.set()
    for thread in threads:
        thread.join(60)
    # released together, they then meet the one in-flight slot: each is served or told to retry
    statuses = [r.status_code for r in results]
    assert len(statuses) == api.rest.URL_FETCHES and set(statuses) <= {200, 503} and 200 in statuses, statuses
