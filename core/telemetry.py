"""Request timings per provider: the live CPU-versus-GPU comparison.

A bounded, thread-safe log of finished requests with p50/p95 per provider,
shared by the UI readout, the REST API and the health endpoint; and, for the whole
life of the process, a small histogram of total times per (provider, model), from
which the WebUI shows p50/p95 since start and each model's speed here.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Sample:
    at: float  # unix time
    provider: str
    model: str
    pixels: int
    total_ms: float
    inference_ms: float


#: Histogram buckets per doubling of the time: a percentile read from it is within ~4% of the true one.
_BUCKETS_PER_DOUBLING = 16


@dataclass
class Histogram:
    """Counts of times in logarithmic buckets: constant memory for any number of requests."""

    counts: dict[int, int] = field(default_factory=dict)
    total: int = 0

    def add(self, ms: float) -> None:
        bucket = math.floor(math.log2(max(ms, 0.01)) * _BUCKETS_PER_DOUBLING)
        self.counts[bucket] = self.counts.get(bucket, 0) + 1
        self.total += 1

    def merge(self, other: Histogram) -> None:
        for bucket, n in other.counts.items():
            self.counts[bucket] = self.counts.get(bucket, 0) + n
        self.total += other.total

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100), as the middle of its bucket, in ms; NaN when empty."""
        if not self.total:
            return math.nan
        rank, seen = q / 100 * self.total, 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return float(2 ** ((bucket + 0.5) / _BUCKETS_PER_DOUBLING))
        return math.nan  # pragma: no cover - the loop always reaches the rank


class RequestLog:
    """The last ``capacity`` requests, and a histogram per (provider, model) since start."""

    def __init__(self, capacity: int = 200) -> None:
        self._samples: deque[Sample] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._count = 0
        self._since_start: dict[tuple[str, str], Histogram] = {}

    def record(self, provider: str, model: str, pixels: int, timings: dict[str, float]) -> None:
        sample = Sample(time.time(), provider, model, pixels, timings["total"], timings["inference"])
        with self._lock:
            self._samples.append(sample)
            self._count += 1
            self._since_start.setdefault((provider, model), Histogram()).add(timings["total"])

    def since_start(self, by: str = "provider") -> dict[str, Histogram]:
        """Total-time histograms since start, per ``provider`` or per ``model``."""
        index = 0 if by == "provider" else 1
        out: dict[str, Histogram] = {}
        with self._lock:
            for key, histogram in self._since_start.items():
                out.setdefault(key[index], Histogram()).merge(histogram)
        return dict(sorted(out.items()))

    def model_speed(self, model: str) -> tuple[str, float, int] | None:
        """(provider, p50 total ms, requests) of ``model`` on the provider that ran it most; None if never."""
        with self._lock:
            runs = [(h.total, provider, h) for (provider, m), h in self._since_start.items() if m == model]
        if not runs:
            return None
        count, provider, histogram = max(runs, key=lambda r: r[0])
        return provider, histogram.percentile(50), count

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
