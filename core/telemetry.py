"""Recent request timings per provider: the live CPU-versus-GPU comparison.

A bounded, thread-safe log of finished requests with p50/p95 per provider,
shared by the UI readout, the REST API and the health endpoint.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sample:
    at: float  # unix time
    provider: str
    model: str
    pixels: int
    total_ms: float
    inference_ms: float


class RequestLog:
    """The last ``capacity`` requests."""

    def __init__(self, capacity: int = 200) -> None:
        self._samples: deque[Sample] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._count = 0

    def record(self, provider: str, model: str, pixels: int, timings: dict[str, float]) -> None:
        sample = Sample(time.time(), provider, model, pixels, timings["total"], timings["inference"])
        with self._lock:
            self._samples.append(sample)
            self._count += 1

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    @property
    def count(self) -> int:
        """Requests recorded since start (not only those still in the window)."""
        return self._count

    def summary(self) -> dict[str, dict[str, float]]:
        """Per provider: requests in the window, p50 and p95 of total and inference ms."""
        by_provider: dict[str, list[Sample]] = {}
        for s in self.samples():
            by_provider.setdefault(s.provider, []).append(s)
        out: dict[str, dict[str, float]] = {}
        for provider, items in sorted(by_provider.items()):
            total = np.array([s.total_ms for s in items])
            inference = np.array([s.inference_ms for s in items])
            out[provider] = {
                "requests": len(items),
                "total_p50_ms": round(float(np.percentile(total, 50)), 1),
                "total_p95_ms": round(float(np.percentile(total, 95)), 1),
                "inference_p50_ms": round(float(np.percentile(inference, 50)), 1),
                "inference_p95_ms": round(float(np.percentile(inference, 95)), 1),
            }
        return out
