"""Under load on a real local Ray cluster: the removal deployment scales 1 -> 2 -> 1, and a replica
killed mid-load loses no request and mixes none up (every answer is checked against its own input).

Slow (minutes: the autoscaler waits before it scales down); select with ``-m serve``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from core import Engine, RemovalOptions
from tests.serving.conftest import HAS_SERVE, ServeApp, fixture_photos

pytestmark = [
    pytest.mark.model,
    pytest.mark.serve,
    pytest.mark.skipif(not HAS_SERVE, reason="Ray Serve is not installed (pip install -r requirements-ray.txt)"),
]

CLIENTS = 4


@dataclass
class Answer:
    photo: int
    status: int
    content: bytes
    retry_after: str | None


def running_replicas() -> int:
    from ray import serve

    from serving.removal import APP_NAME, DEPLOYMENT

    states = serve.status().applications[APP_NAME].deployments[DEPLOYMENT].replica_states
    return int(states.get("RUNNING", 0))


def wait_until(condition: Callable[[], bool], wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


class Load:
    """``CLIENTS`` threads posting the fixture photos round-robin until stopped; every answer kept."""

    def __init__(self, url: str, photos: list[bytes]) -> None:
        self.url, self.photos = url, photos
        self.answers: list[Answer] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(CLIENTS)]

    def client(self, index: int) -> None:
        n = index
        with httpx.Client(timeout=300) as http:
            while not self.stop.is_set():
                photo = n % len(self.photos)
                r = http.post(f"{self.url}/api/remove", files={"file": ("p.jpg", self.photos[photo])})
                self.answers.append(Answer(photo, r.status_code, r.content, r.headers.get("Retry-After")))
                n += 1

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=300)
        assert not any(t.is_alive() for t in self.threads), "a request hung"


@pytest.fixture(scope="module")
def photos_and_expected(engine: Engine) -> tuple[list[bytes], list[bytes]]:
    photos = [p.read_bytes() for p in fixture_photos()]
    return photos, [engine.remove(p, RemovalOptions()).data for p in photos]


def assert_own_answers(answers: list[Answer], expected: list[bytes]) -> None:
    """Each answer is its own input's exact result, or a clean 503 with Retry-After: never a 500 or a mix-up."""
    assert answers
    for a in answers:
        if a.status == 200:
            assert a.content == expected[a.photo], f"photo {a.photo} got another answer"
        else:
            assert (a.status, a.retry_after) == (503, "1"), (a.status, a.content[:300])


def test_scales_from_one_to_two_replicas_under_load_and_back(
    serve_app: ServeApp, photos_and_expected: tuple[list[bytes], list[bytes]]
) -> None:
    photos, expected = photos_and_expected
    assert wait_until(lambda: running_replicas() == 1, 120)
    with Load(serve_app.url, photos) as load:
        scaled_up = wait_until(lambda: running_replicas() == 2, 180)
    assert scaled_up, "no second replica under load"
    assert_own_answers(load.answers, expected)
    assert wait_until(lambda: running_replicas() == 1, 180), "not back to one replica once the load stopped"


def test_a_replica_killed_mid_load_loses_no_request(
    serve_app: ServeApp, photos_and_expected: tuple[list[bytes], list[bytes]]
) -> None:
    import ray

    photos, expected = photos_and_expected
    with Load(serve_app.url, photos) as load:
        assert wait_until(lambda: len(load.answers) >= 2, 180)
        replicas = [
            a
            for a in ray.util.list_named_actors(all_namespaces=True)
            if "SERVE_REPLICA" in a["name"] and "Removal" in a["name"]
        ]
        assert replicas
        victim = ray.get_actor(replicas[0]["name"], namespace=replicas[0]["namespace"])
        before = len(load.answers)
        ray.kill(victim, no_restart=True)
        assert wait_until(lambda: len(load.answers) >= before + 2 * CLIENTS, 240)
    assert_own_answers(load.answers, expected)
    assert sum(a.status == 200 for a in load.answers[before:]) > 0, "nothing served after the kill"
