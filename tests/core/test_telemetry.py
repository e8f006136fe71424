"""Unit tier: the request log's histograms since start (``core.telemetry``)."""

from __future__ import annotations

import random

import numpy as np

from core.telemetry import Histogram, RequestLog


def timings(total: float) -> dict[str, float]:
    return {"total": total, "inference": total * 0.9}


def test_histogram_percentiles_are_within_a_few_percent() -> None:
    rng = random.Random(1)
    values = [rng.lognormvariate(6.5, 0.6) for _ in range(5000)]
    histogram = Histogram()
    for v in values:
        histogram.add(v)
    for q in (50, 95):
        exact = float(np.percentile(values, q))
        assert abs(histogram.percentile(q) - exact) / exact < 0.05, q
    assert histogram.total == 5000
    assert np.isnan(Histogram().percentile(50))


def test_since_start_outlives_the_window_and_splits_by_provider_and_model() -> None:
    log = RequestLog(capacity=10)
    for _ in range(30):
        log.record("cpu", "u2net", 100, timings(1000))
    for _ in range(5):
        log.record("cpu", "u2netp", 100, timings(300))
    log.record("cuda", "u2net", 100, timings(50))
    assert len(log.samples()) == 10 and log.count == 36
    by_provider = log.since_start("provider")
    assert {p: h.total for p, h in by_provider.items()} == {"cpu": 35, "cuda": 1}
    assert {m: h.total for m, h in log.since_start("model").items()} == {"u2net": 31, "u2netp": 5}
    provider, p50, runs = log.model_speed("u2netp") or ("", 0.0, 0)
    assert (provider, runs) == ("cpu", 5) and abs(p50 - 300) / 300 < 0.05
    assert log.model_speed("silueta") is None
