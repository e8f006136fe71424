"""What happened to each input, and the run's machine-readable report ``OUT/_report.json``.

The report is written by the driver alone (the local process or Ray's driver),
atomically, at the end of every run, interrupted ones included. It lists each
failure with the typed error's ``code`` and ``message``, sorted by input, so that
two runs over the same input (local or Ray) produce the same list.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from base.files import atomic_write

REPORT_NAME = "_report.json"
REPORT_VERSION = 1
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
#: Errors that no other input can escape (bad option, missing weights, provider
#: cannot load): the run stops instead of failing every item with the same reason.
FATAL_CODES = frozenset({"invalid_option", "model_not_available", "provider_unavailable"})


@dataclass(frozen=True)
class Outcome:
    """The result of one input: done, skipped (output already complete) or failed."""

    key: str  # the input as the report names it (relative to IN, or the list's line)
    status: str
    output: str = ""  # relative to OUT
    code: str = ""  # the typed error's code when failed
    message: str = ""
    ms: float = 0.0  # time spent on this input, milliseconds

    @classmethod
    def failed(cls, key: str, code: str, message: str, output: str = "", ms: float = 0.0) -> Outcome:
        return cls(key=key, status=FAILED, output=output, code=code, message=message, ms=ms)

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Outcome:
        """Back from a plain dict (Ray Data rows carry numpy scalars; str()/float() normalise them)."""
        return cls(
            key=str(row["key"]),
            status=str(row["status"]),
            output=str(row["output"]),
            code=str(row["code"]),
            message=str(row["message"]),
            ms=float(row["ms"]),
        )


@dataclass
class Summary:
    """Counts and rate of one run, and everything the report holds."""

    outcomes: list[Outcome] = field(default_factory=list)
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(o.status for o in self.outcomes)
        return {status: counted.get(status, 0) for status in (DONE, SKIPPED, FAILED)}

    @property
    def failures(self) -> list[Outcome]:
        return sorted((o for o in self.outcomes if o.status == FAILED), key=lambda o: o.key)

    @property
    def images_per_s(self) -> float:
        """Images written per second of processing (skipped ones cost nothing and do not count)."""
        return self.counts[DONE] / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        c = self.counts
        state = " (interrupted)" if self.interrupted else ""
        return (
            f"done {c[DONE]}, skipped {c[SKIPPED]}, failed {c[FAILED]} in {self.elapsed_s:.1f} s, "
            f"{self.images_per_s:.2f} images/s{state}"
        )


def write_report(out: Path, summary: Summary, context: dict[str, Any], total: int) -> Path:
    """Write ``OUT/_report.json`` atomically and return its path."""
    c = summary.counts
    report = {
        "version": REPORT_VERSION,
        **context,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "interrupted": summary.interrupted,
        "total": total,
        "counts": c,
        "not_run": max(0, total - sum(c.values())),
        "elapsed_s": round(summary.elapsed_s, 3),
        "images_per_s": round(summary.images_per_s, 3),
        "failures": [
            {"input": o.key, "output": o.output, "code": o.code, "message": o.message} for o in summary.failures
        ],
    }
    return atomic_write(out / REPORT_NAME, json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def read_report(out: Path) -> dict[str, Any] | None:
    """The previous run's report, or None when there is none or it is unreadable."""
    try:
        data = json.loads((out / REPORT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
