"""What happened to each input of a many-image run, and the report ``_report.json`` that lists it.

One schema for both places that write it: ``app.py batch`` (``OUT/_report.json``, by the
driver alone, atomically, at the end of every run, interrupted ones included) and the
WebUI's Gallery (inside its zip). The report is one JSON object::

    version, input, input_kind, output, options, started, [runner], [aborted],
    finished, interrupted, total, counts {done, skipped, failed}, not_run,
    elapsed_s, images_per_s,
    failures: [{input, output, code, message}]            sorted by input
    items:    [{input, status, output, code, message,     every input, in the order it finished
                model, provider, ms, timings_ms}]          (the Gallery's: the order of its files)

``failures`` lists each failure with the typed error's ``code`` and ``message``, sorted by
input, so that two runs over the same input (local or Ray) give the same list; ``items``
has a row for every input. ``FATAL_ERRORS`` are the errors no other input can escape: a run
stops on them instead of failing every item with the same reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from base.errors import InvalidOption, ModelNotAvailable, ProviderUnavailable, RemovalError
from base.files import atomic_write
from core.options import RemovalOptions

REPORT_NAME = "_report.json"
REPORT_VERSION = 1
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
#: Errors that no other input can escape (bad option, missing weights, provider cannot
#: load): the run stops instead of failing every item with the same reason.
FATAL_ERRORS: tuple[type[RemovalError], ...] = (InvalidOption, ModelNotAvailable, ProviderUnavailable)
FATAL_CODES = frozenset(error.code for error in FATAL_ERRORS)


@dataclass(frozen=True)
class Outcome:
    """The result of one input: done, skipped (output already complete) or failed."""

    key: str  # the input as the report names it (relative to IN, the list's line, the Gallery's file name)
    status: str
    output: str = ""  # relative to OUT, or the name in the zip
    code: str = ""  # the typed error's code when failed
    message: str = ""
    ms: float = 0.0  # time spent on this input, milliseconds
    model: str = ""  # what ran (the model asked for, where it failed)
    provider: str = ""
    timings_ms: dict[str, float] | None = None  # the engine's stages, where it ran

    @classmethod
    def failed(cls, key: str, code: str, message: str, output: str = "", ms: float = 0.0, model: str = "") -> Outcome:
        return cls(key=key, status=FAILED, output=output, code=code, message=message, ms=ms, model=model)

    @classmethod
    def done(cls, key: str, output: str, model: str, provider: str, timings: dict[str, float], ms: float) -> Outcome:
        """A written output; ``timings``: the engine's stages (``RemovalResult.timings``)."""
        stages = {k: round(v, 1) for k, v in timings.items()}
        return cls(key=key, status=DONE, output=output, ms=ms, model=model, provider=provider, timings_ms=stages)

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Outcome:
        """Back from a plain dict (Ray Data rows carry numpy scalars; str()/float() normalise them,
        and the stages travel as JSON text)."""
        stages = row.get("timings_ms")
        if isinstance(stages, str):
            stages = json.loads(stages) if stages else None
        return cls(
            key=str(row["key"]),
            status=str(row["status"]),
            output=str(row["output"]),
            code=str(row["code"]),
            message=str(row["message"]),
            ms=float(row["ms"]),
            model=str(row.get("model", "")),
            provider=str(row.get("provider", "")),
            timings_ms={str(k): float(v) for k, v in stages.items()} if stages else None,
        )

    def item(self) -> dict[str, Any]:
        """This input's row in the report's ``items``."""
        return {
            "input": self.key,
            "status": self.status,
            "output": self.output,
            "code": self.code,
            "message": self.message,
            "model": self.model or None,
            "provider": self.provider or None,
            "ms": round(self.ms, 1),
            "timings_ms": self.timings_ms,
        }


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


def options_dict(options: RemovalOptions) -> dict[str, Any]:
    """The options as the report stores them: JSON-safe (image options as their path)."""
    opts = dataclasses.asdict(options)
    for name, value in opts.items():
        if isinstance(value, os.PathLike):
            opts[name] = os.fspath(value)
    return opts


def report_context(source: str, kind: str, output: str, options: RemovalOptions) -> dict[str, Any]:
    """What a run was asked to do, at its start: the report's first keys."""
    return {
        "input": source,
        "input_kind": kind,
        "output": output,
        "options": options_dict(options),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def build_report(summary: Summary, context: dict[str, Any], total: int) -> dict[str, Any]:
    """The report of a run: ``context`` (``report_context``, and what the runner adds), then what happened."""
    c = summary.counts
    return {
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
        "items": [o.item() for o in summary.outcomes],
    }


def report_json(summary: Summary, context: dict[str, Any], total: int) -> str:
    """``build_report`` as the text of ``_report.json``."""
    return json.dumps(build_report(summary, context, total), indent=2, ensure_ascii=False) + "\n"


def write_report(out: Path, summary: Summary, context: dict[str, Any], total: int) -> Path:
    """Write ``OUT/_report.json`` atomically and return its path."""
    return atomic_write(out / REPORT_NAME, report_json(summary, context, total))


def read_report(out: Path) -> dict[str, Any] | None:
    """The previous run's report, or None when there is none or it is unreadable."""
    try:
        data = json.loads((out / REPORT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def gallery_report(items: list[Outcome], options: RemovalOptions, zip_name: str, elapsed_s: float) -> str:
    """The text of ``_report.json`` in the WebUI Gallery's zip: the batch command's report, of its files."""
    context = report_context("gallery", "gallery", zip_name, options)
    return report_json(Summary(items, elapsed_s), context, len(items))
