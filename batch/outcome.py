"""The outcome of one input and the run's report ``OUT/_report.json``: ``core.outcome``'s, shared with the
WebUI's Gallery (its zip holds the same report); re-exported here for the batch runners."""

from __future__ import annotations

from core.outcome import (
    DONE,
    FAILED,
    FATAL_CODES,
    REPORT_NAME,
    REPORT_VERSION,
    SKIPPED,
    Outcome,
    Summary,
    read_report,
    write_report,
)

__all__ = [
    "DONE",
    "FAILED",
    "FATAL_CODES",
    "REPORT_NAME",
    "REPORT_VERSION",
    "SKIPPED",
    "Outcome",
    "Summary",
    "read_report",
    "write_report",
]
