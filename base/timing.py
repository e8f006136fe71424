"""The one clock every timing uses, the engine's stage names, and the percentiles a benchmark reports.

``Clock`` times the engine's stages (``core.pipeline``) and anything else that times itself:
a batch item, a whole run, a benchmark's repetition, a model load. It reads
``time.perf_counter``, which is monotonic and the finest clock Python has; wall-clock
time (``time.time``) may jump and is for timestamps only.
"""

from __future__ import annotations

import math
import time

#: The engine's stages, in order. A result's timings hold these and ``total``, in milliseconds.
STAGES = ("decode", "preprocess", "inference", "postprocess", "encode")


class Clock:
    """Started when made: ``lap`` adds the time since the last lap to a stage; ``elapsed_*`` since the start."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.timings: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        """Add the time since the last lap to ``stage`` (a stage may come back), in milliseconds."""
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - self.last) * 1000
        self.last = now

    def restart_lap(self) -> None:
        """The next lap starts now (time in between belongs to no stage of this clock)."""
        self.last = time.perf_counter()

    def total(self) -> dict[str, float]:
        """The stages and their sum as ``total``.

        The sum, not end - start: in a batch, other images' stages run in between, and only
        this image's share of a shared call is its own.
        """
        self.timings["total"] = sum(self.timings.values())
        return self.timings

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.start

    def elapsed_ms(self) -> float:
        return self.elapsed_s() * 1000


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated linearly between the closest ranks
    (numpy's default method); NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    t, below, above = rank - low, ordered[low], ordered[high]
    # numpy's own arithmetic, from whichever end is nearer, so that the figures match it to the bit
    return above - (above - below) * (1 - t) if t >= 0.5 else below + (above - below) * t


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 and p95 of ``values``, in their unit, to one decimal: what every benchmark table reports."""
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1)}
