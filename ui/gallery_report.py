"""The Gallery's outcome of one file and its ``_report.json``, kept apart so that a shared
outcome/report module (the one ``app.py batch`` is to use too) can replace it in one place.

The schema is the Gallery's as it was: a list of one object per file, ``file``,
``status`` (ok or error), ``error``, ``code`` (errors only), ``output`` (ok only),
``model``, ``provider`` and ``timings_ms``.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import RemovalError, RemovalResult

#: The report's name inside the zip.
REPORT_NAME = "_report.json"


@dataclass
class Outcome:
    """One file of a gallery batch."""

    file: str
    result: RemovalResult | None = None
    error: RemovalError | None = None
    path: Path | None = None
    name: str = ""
    report: dict[str, Any] = field(default_factory=dict)

    def failed(self, exc: RemovalError, model: str) -> Outcome:
        """This file's engine refused it (``model``: the one asked for)."""
        self.error = exc
        self.report = {
            "file": self.file, "status": "error", "error": exc.message, "code": exc.code,
            "model": model, "provider": None, "timings_ms": None,
        }  # fmt: skip
        return self

    def done(self, result: RemovalResult, name: str, path: Path) -> Outcome:
        """This file's cutout, written at ``path`` and named ``name`` in the zip."""
        self.result, self.name, self.path = result, name, path
        self.report = {
            "file": self.file, "status": "ok", "error": None, "output": name, "model": result.model,
            "provider": result.provider, "timings_ms": {k: round(v, 1) for k, v in result.timings.items()},
        }  # fmt: skip
        return self

    @property
    def status(self) -> str:
        """The status column of the tables: ``ok`` or ``error: <message>``."""
        return "ok" if self.result else f"error: {self.error.message if self.error else ''}"


def zip_bytes(outcomes: Sequence[Outcome], report: list[dict[str, Any]] | None = None) -> bytes:
    """The cutouts under their names, and ``_report.json`` where a report is given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # images are compressed already
        for outcome in outcomes:
            assert outcome.path is not None
            zf.write(outcome.path, outcome.name)
        if report is not None:
            zf.writestr(REPORT_NAME, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
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
