"""Concurrent callers for the throughput figures: ``clients`` threads calling one function."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from base.timing import Clock

T = TypeVar("T")


def callers(
    call: Callable[[], T], clients: int, *, seconds: float | None = None, requests: int | None = None
) -> tuple[list[T], float]:
    """What ``call`` returned, from ``clients`` threads, each calling it ``requests`` times or for
    ``seconds``; and the seconds the whole took."""
    if (seconds is None) == (requests is None):
        raise ValueError("give seconds or requests")
    results: list[T] = []
    lock = threading.Lock()
    stop = time.monotonic() + (seconds or 0.0)

    def client() -> None:
        done = 0
        while (requests is not None and done < requests) or (seconds is not None and time.monotonic() < stop):
            value = call()
            done += 1
            with lock:
                results.append(value)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    clock = Clock()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, clock.elapsed_s()


def timed(call: Callable[[], object]) -> Callable[[], float]:
    """``call`` made to return its own duration, in ms."""

    def run() -> float:
        clock = Clock()
        call()
        return clock.elapsed_ms()

    return run
