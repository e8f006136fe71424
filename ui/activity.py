"""What each lane of the WebUI is doing now, for the status line of those who wait.

Gradio's queue knows how many events wait in each concurrency group, not what
they are. Handlers register what they run here (``Activity.running``), so that a
request about to queue can be told what it waits behind: "alpha matting on a
3840x2160 image, running for 12 s" rather than a bare position.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: The WebUI's lanes (Gradio concurrency ids): small requests never wait behind the heavy ones.
LIGHT, HEAVY, GALLERY = "inference", "heavy", "gallery"
#: Pixels from which an image takes the heavy lane (4K UHD, 3840x2160, and above).
HEAVY_PIXELS = 3840 * 2160
LANE_NAMES = {LIGHT: "quick", HEAVY: "heavy", GALLERY: "gallery"}


@dataclass(frozen=True)
class Job:
    lane: str
    what: str
    started: float


class Activity:
    """The jobs running now, per lane (thread-safe)."""

    def __init__(self, waiting: Callable[[str], int] | None = None) -> None:
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        #: How many events wait in a lane's queue (set once the Blocks' queue exists).
        self.waiting = waiting or (lambda lane: 0)

    @contextmanager
    def running(self, lane: str, what: str) -> Iterator[None]:
        job_id = next(self._ids)
        with self._lock:
            self._jobs[job_id] = Job(lane, what, time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                del self._jobs[job_id]

    def jobs(self, lane: str) -> list[Job]:
        with self._lock:
            return sorted((j for j in self._jobs.values() if j.lane == lane), key=lambda j: j.started)

    def describe_wait(self, lane: str) -> str:
        """One line for someone about to join ``lane``: what runs and how many wait ahead; "" when free."""
        running, waiting = self.jobs(lane), self.waiting(lane)
        if not running and not waiting:
            return ""
        now = time.monotonic()
        parts = [f"{j.what}, running for {now - j.started:.0f} s" for j in running[:2]]
        if len(running) > 2:
            parts.append(f"{len(running) - 2} more running")
        if waiting:
            parts.append(f"{waiting} waiting")
        return f"In the {LANE_NAMES.get(lane, lane)} queue behind: " + "; ".join(parts) + "."
