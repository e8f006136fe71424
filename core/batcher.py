"""Requests that arrive together run as one inference call: the batcher of a session.

A request hands its network input (1xCxSxS) to ``submit`` and waits. One thread
per session takes the first waiting input, gathers the others that arrive within
the window (``batch_window_ms``) up to the largest batch, pads the batch with
zeros to the next of the fixed sizes (``base.settings.BATCH_SIZES``: the sizes the
session warmed up at load, so no request pays cuDNN's algorithm search), runs it
once and hands each request its own row back. While a batch runs, the next one
gathers, so under load batches fill without any waiting; a lone request waits at
most the window. An error in the call reaches every request of that batch, and
only them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)
#: One waiting input, and where its output row goes with the size of the call it ran in.
_Item = tuple[np.ndarray, "Future[tuple[np.ndarray, int]]"]


@dataclass
class BatchStats:
    """What the batcher has done: calls, images, and how full its batches were."""

    calls: int = 0
    images: int = 0
    by_size: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        mean = self.images / self.calls if self.calls else 0.0
        return {"calls": self.calls, "images": self.images, "mean_batch": round(mean, 2), "by_size": self.by_size}


class Batcher:
    """Gathers single inputs into padded batches for ``run`` (a batched network)."""

    def __init__(
        self, run: Callable[[np.ndarray], np.ndarray], sizes: Sequence[int], window_s: float, name: str = "batcher"
    ) -> None:
        if not sizes:
            raise ValueError("a batcher needs at least one batch size")
        self.run = run
        self.sizes = tuple(sorted(sizes))
        self.window_s = window_s
        self.stats = BatchStats()
        self._inbox: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._closed = False
        self._closing = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def largest(self) -> int:
        return self.sizes[-1]

    def submit(self, tensor: np.ndarray) -> tuple[np.ndarray, int]:
        """Output 0 for one input (1xCxSxS -> 1x1xSxS), run in a batch with whoever else came,
        and how many images that call ran (padding not counted)."""
        return self.submit_many([tensor])[0]

    def submit_many(self, tensors: Sequence[np.ndarray]) -> list[tuple[np.ndarray, int]]:
        """``submit`` for several inputs at once (they may share a batch, or several)."""
        futures: list[Future[tuple[np.ndarray, int]]] = []
        with self._closing:
            if not self._closed:
                for tensor in tensors:
                    future: Future[tuple[np.ndarray, int]] = Future()
                    self._inbox.put((tensor, future))
                    futures.append(future)
        if not futures and tensors:
            # Closed (the cache unloaded the session while this request held it): run alone.
            return [(self.run(tensor), 1) for tensor in tensors]
        return [future.result() for future in futures]

    def close(self) -> None:
        """Stop the thread once the inputs already waiting have run; later ones run alone."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._inbox.put(None)
        self._thread.join(timeout=10)

    def padded_size(self, count: int) -> int:
        return next(size for size in self.sizes if size >= count)

    def _gather(self, first: _Item) -> tuple[list[_Item], bool]:
        """The first waiting input and those that join it within the window; True when closing."""
        items = [first]
        deadline = time.monotonic() + self.window_s
        while len(items) < self.largest:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = self._inbox.get(timeout=left)
                except queue.Empty:
                    break
            if item is None:
                return items, True
            items.append(item)
        return items, False

    def _loop(self) -> None:
        closing = False
        while not closing:
            first = self._inbox.get()
            if first is None:
                return
            items, closing = self._gather(first)
            self._run(items)

    def _run(self, items: list[_Item]) -> None:
        count = len(items)
        size = self.padded_size(count)
        inputs = [tensor for tensor, _ in items]
        if size > count:  # zeros for the empty places: their outputs are dropped
            inputs.append(np.zeros((size - count, *inputs[0].shape[1:]), inputs[0].dtype))
        try:
            outputs = self.run(np.concatenate(inputs))
        except Exception as exc:  # noqa: BLE001 - every waiter of this batch gets the error; the thread goes on
            for _, future in items:
                future.set_exception(exc)
            return
        self.stats.calls += 1
        self.stats.images += count
        self.stats.by_size[size] = self.stats.by_size.get(size, 0) + 1
        for row, (_, future) in enumerate(items):
            future.set_result((outputs[row : row + 1], count))
