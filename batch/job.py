"""What one batch run is (``BatchConfig``) and how it is stopped (``StopFlag``).

Shared by the local runner (``batch.runner``) and the Ray runner (``batch.ray_runner``),
which both sit above this module.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from base.settings import Settings
from core.options import RemovalOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchConfig:
    """Everything one ``batch`` run needs; built by the CLI (or a test)."""

    source: Path
    out: Path
    options: RemovalOptions
    settings: Settings
    workers: int | None = 1  # None: auto (one per GPU, or one per 2 physical cores)
    ray: str | None = None  # "local", "auto" or a cluster address
    overwrite: bool = False
    progress: bool = True
    background_image: str | None = None  # its path, for the report only


class StopFlag:
    """SIGINT/SIGTERM handling for the run: first signal asks to stop, second stops now."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def request(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
            log.warning("stopping after the images in progress (signal again to stop at once)")

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # second signal: unwind now; temporary files clean up
        self.request(signum)

    def install(self) -> None:
        """(Re)install the handlers; again after ``ray.init``, which sets its own for SIGTERM."""
        # Handlers can only be installed from the main thread (a library caller may be elsewhere).
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous = signal.signal(signum, self._handle)
                self._previous.setdefault(signum, previous)

    def __enter__(self) -> StopFlag:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
