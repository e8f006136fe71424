"""One memory budget for the process: every removal is costed from its headers and admitted while the total fits.

The decoder bounds one request (pixels, bytes, CPU time); this bounds them together.
Before anything is decoded, ``request_cost`` reads the size each image declares (the
input and the option images: Pillow reads headers without decoding) and prices it
per stage; ``MemoryBudget.hold`` admits the request once the admitted costs plus its
own fit the budget, first come first served, and gives the cost back when the request
is done. A request that waits holds nothing but its thread and its encoded bytes; the
edges bound how many may wait (REST's in-flight slots, Gradio's queue, the batch
command's workers) and answer 503 past that as before. One request whose cost alone is
over the whole budget could never run: ``ImageTooComplex`` at once.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image

from base.errors import ImageTooComplex
from base.memory import available_bytes
from core import imaging

#: What one input pixel costs while a removal runs: decoded RGB(A) (4), its mask as floats and as
#: L (5), the cutout (4) and the encoder's buffers (3). Measured: eight 40 MP PNGs at once raised
#: the server's memory by 4.1 GB, 13 bytes per pixel.
INPUT_BYTES_PER_PIXEL = 16
#: An option image (background, touch-up): decoded at its own size (4), converted (4) ...
OPTION_BYTES_PER_PIXEL = 8
#: ... and resized to the input's size (4 per input pixel). Measured: 40 MP option images took the
#: eight requests above from 4.1 GB to 10.4 GB.
OPTION_BYTES_PER_INPUT_PIXEL = 4
#: The share of the available memory the budget takes when ``--memory-budget-mb`` is 0: the rest is
#: the models, their arenas, Python and the page cache's due.
DEFAULT_SHARE = 0.5
#: Where the available memory cannot be read.
FALLBACK_BYTES = 4 << 30
MIB = 1 << 20


def default_budget_bytes() -> int:
    """Half the memory available to the process now (cgroup-aware: ``base.memory.available_bytes``)."""
    free = available_bytes()
    return int(free * DEFAULT_SHARE) if free else FALLBACK_BYTES


def declared_pixels(source: Any) -> int:
    """The pixels an image declares in its header, read without decoding; 0 where none can be read.

    0 is safe: what Pillow cannot open here, the decoder refuses before it allocates.
    """
    if source is None:
        return 0
    if isinstance(source, np.ndarray):
        return int(source.shape[0] * source.shape[1]) if source.ndim >= 2 else 0
    if isinstance(source, Image.Image):
        return source.width * source.height
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(source, (bytes, bytearray, memoryview)):
                with Image.open(io.BytesIO(bytes(source))) as im:
                    return int(im.width * im.height)
            if isinstance(source, (str, os.PathLike)):
                with Image.open(source) as im:
                    return int(im.width * im.height)
    except Exception:  # noqa: BLE001 - any failure: the decoder will say what is wrong
        return 0
    return 0


def request_cost(images: list[Any], options: Any, matting_max_pixels: int, family_bytes_per_pixel: int = 0) -> int:
    """Bytes a removal of ``images`` with ``options`` (a ``RemovalOptions``) may hold at its peak.

    ``family_bytes_per_pixel``: what the model's family holds per input pixel beyond the pipeline's
    (``core.families.Family.bytes_per_pixel``: sam's masks warped back, cloth's three cutouts).
    """
    cost = 0
    extra = [declared_pixels(options.background_image), declared_pixels(options.mask_edit)]
    cost += sum(p * OPTION_BYTES_PER_PIXEL for p in extra)  # decoded once per request
    for image in images:
        pixels = declared_pixels(image)
        cost += pixels * (INPUT_BYTES_PER_PIXEL + family_bytes_per_pixel)
        cost += sum(OPTION_BYTES_PER_INPUT_PIXEL * pixels for p in extra if p)
        if options.alpha_matting and pixels:
            side = int(pixels**0.5) or 1
            cost += imaging.matting_bytes((side, max(1, pixels // side)), matting_max_pixels)
    return cost


class MemoryBudget:
    """Costs admitted against a total, first come first served."""

    def __init__(self, total_bytes: int) -> None:
        self.total = total_bytes
        self.admitted = 0
        self.running = 0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, cost: int) -> Iterator[None]:
        """Wait until ``cost`` fits (and every earlier waiter is in), hold it for the block, give it back."""
        if cost > self.total:
            raise ImageTooComplex(
                f"this request needs about {cost / MIB:,.0f} MiB while it runs, more than the server's whole "
                f"memory budget of {self.total / MIB:,.0f} MiB; send a smaller image or fewer option images"
            )
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            try:
                self._changed.wait_for(lambda: self._queue[0] is ticket and self.admitted + cost <= self.total)
            finally:
                self._queue.remove(ticket)
                self._changed.notify_all()
            self.admitted += cost
            self.running += 1
        try:
            yield
        finally:
            with self._changed:
                self.admitted -= cost
                self.running -= 1
                self._changed.notify_all()

    def summary(self) -> dict[str, int]:
        """For ``/healthz``: the budget, what is admitted now, requests running and waiting."""
        with self._changed:
            return {
                "budget_mb": self.total // MIB,
                "admitted_mb": self.admitted // MIB,
                "running": self.running,
                "waiting": len(self._queue),
            }
