"""The Gallery's outcome of one file and its zip.

Each file's row in the zip's ``_report.json`` is ``core.outcome.Outcome``, the one the batch
command writes: a Gallery zip and ``app.py batch`` give the same report
(``core.outcome.gallery_report``).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from base.timing import Clock
from core import RemovalError, RemovalResult
from core.outcome import REPORT_NAME
from core.outcome import Outcome as Item


@dataclass
class Outcome:
    """One file of a gallery batch."""

    file: str
    result: RemovalResult | None = None
    error: RemovalError | None = None
    path: Path | None = None
    name: str = ""
    #: Its row in the zip's ``_report.json``.
    item: Item | None = None

    def failed(self, exc: RemovalError, model: str, clock: Clock) -> Outcome:
        """This file's engine refused it (``model``: the one asked for)."""
        self.error = exc
        self.item = Item.failed(self.file, exc.code, exc.message, ms=clock.elapsed_ms(), model=model)
        return self

    def done(self, result: RemovalResult, name: str, path: Path, clock: Clock) -> Outcome:
        """This file's cutout, written at ``path`` and named ``name`` in the zip."""
        self.result, self.name, self.path = result, name, path
        self.item = Item.done(self.file, name, result.model, result.provider, result.timings, clock.elapsed_ms())
        return self

    @property
    def status(self) -> str:
        """The status column of the tables: ``ok`` or ``error: <message>``."""
        return "ok" if self.result else f"error: {self.error.message if self.error else ''}"


def zip_bytes(outcomes: Sequence[Outcome], report: str | None = None) -> bytes:
    """The cutouts under their names, and ``_report.json`` where a report is given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # images are compressed already
        for outcome in outcomes:
            assert outcome.path is not None
            zf.write(outcome.path, outcome.name)
        if report is not None:
            zf.writestr(REPORT_NAME, report)
    return buf.getvalue()


def unique(name: str, taken: set[str]) -> str:
    """``name``, or ``stem-2.ext``, ``stem-3.ext``... if an earlier file took it."""
    stem, dot, ext = name.rpartition(".")
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}{dot}{ext}"
    taken.add(candidate)
    return candidate
