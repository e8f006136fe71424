"""The batcher: concurrent requests share inference calls, and results never mix.

The unit tests use a stand-in network that tags each output row with its input
(pure logic: which row goes back to whom); the model test runs u2netp batched on
the CPU under concurrency with distinct photos and checks each answer against the
same photo run alone.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from base.settings import load_settings
from core import Engine, RemovalOptions
from core.batcher import Batcher
from tests.conftest import PHOTOS, alpha_of, mask_agreement, photo_bytes


def tagged(n: int) -> np.ndarray:
    """A 1x3x4x4 input whose every value is ``n``."""
    return np.full((1, 3, 4, 4), float(n), np.float32)


def network(calls: list[int], delay: float = 0.0) -> object:
    def run(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape[0])
        time.sleep(delay)
        return batch.mean(axis=1, keepdims=True) * 2  # row i: 2 * input i

    return run


def test_concurrent_requests_share_calls_and_get_their_own_rows() -> None:
    calls: list[int] = []
    batcher = Batcher(network(calls, delay=0.02), sizes=(1, 2, 4, 8), window_s=0.005)  # type: ignore[arg-type]
    try:
        with ThreadPoolExecutor(max_workers=24) as pool:
            answers = list(pool.map(lambda n: (n, batcher.submit(tagged(n))), range(48)))
    finally:
        batcher.close()
    for n, (output, shared) in answers:
        assert output.shape == (1, 1, 4, 4) and np.all(output == 2 * n), n
        assert 1 <= shared <= 8
    assert sum(1 for _ in calls) < 48  # requests shared calls
    assert set(calls) <= {1, 2, 4, 8}  # always a warmed-up size, padded
    assert batcher.stats.images == 48 and batcher.stats.calls == len(calls)


def test_padding_rows_are_dropped() -> None:
    calls: list[int] = []
    batcher = Batcher(network(calls), sizes=(1, 4), window_s=0.05)  # type: ignore[arg-type]
    try:
        outputs = batcher.submit_many([tagged(1), tagged(2), tagged(3)])
    finally:
        batcher.close()
    assert calls == [4] and [int(o[0][0, 0, 0, 0]) for o in outputs] == [2, 4, 6]
    assert [o[1] for o in outputs] == [3, 3, 3]


def test_an_error_reaches_its_batch_only() -> None:
    def run(batch: np.ndarray) -> np.ndarray:
        if (batch == 13).any():
            raise RuntimeError("bad batch")
        return batch.mean(axis=1, keepdims=True)

    batcher = Batcher(run, sizes=(1,), window_s=0.0)
    try:
        with pytest.raises(RuntimeError, match="bad batch"):
            batcher.submit(tagged(13))
        assert int(batcher.submit(tagged(5))[0][0, 0, 0, 0]) == 5  # the thread goes on
    finally:
        batcher.close()


def test_a_lone_request_waits_at_most_the_window() -> None:
    batcher = Batcher(lambda b: b.mean(axis=1, keepdims=True), sizes=(1, 2, 4), window_s=0.05)
    try:
        started = time.perf_counter()
        batcher.submit(tagged(1))
        elapsed = time.perf_counter() - started
    finally:
        batcher.close()
    assert elapsed >= 0.04  # it did wait for company (the window is the lower bound, not an upper one)


@pytest.mark.model
def test_batched_engine_never_mixes_results(engine: Engine) -> None:
    """u2netp batched on the CPU, 8 distinct photos from 8 threads at once, twice."""
    settings = dataclasses.replace(load_settings([]), batching="on", batch_window_ms=20, max_batch=8)
    batched = Engine(settings)
    session = batched.sessions.get("u2netp", "cpu")
    assert session.batcher is not None and session.batcher.sizes == (1, 2, 4, 8)
    options = RemovalOptions(model="u2netp", provider="cpu")
    alone = {name: engine.remove(photo_bytes(name), options) for name in PHOTOS}
    barrier = threading.Barrier(len(PHOTOS))

    def remove(name: str) -> tuple[str, object]:
        barrier.wait()
        return name, batched.remove(photo_bytes(name), options)

    for _ in range(2):
        with ThreadPoolExecutor(max_workers=len(PHOTOS)) as pool:
            for name, result in pool.map(remove, PHOTOS):
                mad, iou = mask_agreement(alpha_of(result.mask), alpha_of(alone[name].mask))  # type: ignore[attr-defined]
                assert mad <= 0.05 and iou >= 0.9999, (name, mad, iou)
    assert session.batcher.stats.calls < session.batcher.stats.images  # they did share calls
