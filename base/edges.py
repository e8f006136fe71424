"""The words every edge speaks: request ids, quoted input cut short, the JSON error shape, exit codes.

REST (``api.rest``), the HTTP guard (``api.guard``), the WebUI and the Gradio client API
(``ui``), and the command line (``app.py remove``, ``app.py batch``) translate the engine's
typed errors at their edge; they take these pieces from here so that a request id, a quoted
value and an error body look the same whichever door a request came in by, and so that the
command line's subcommands exit with the same code for the same kind of failure.
"""

from __future__ import annotations

import functools
import re
import secrets
import signal
from enum import IntEnum
from pathlib import Path
from typing import Any

#: Where the project's version is written, once (``[project] version``).
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
#: How much of a client's own input (a value, a URL, a message that repeats it) an answer quotes back.
QUOTE_CHARS = 100


@functools.cache
def version() -> str:
    """The project's version (``/healthz`` answers it), read from ``pyproject.toml`` when first asked:
    not at import, since the Docker build fetches weights with ``base/`` and ``models/`` alone."""
    found = re.search(r'^version\s*=\s*"([^"]+)"', PYPROJECT.read_text(encoding="utf-8"), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"{PYPROJECT} names no version")
    return found.group(1)


def request_id() -> str:
    """A short random id, returned as ``X-Request-Id`` and written in the log lines of the request."""
    return secrets.token_hex(6)


def cut(text: object, limit: int = QUOTE_CHARS) -> str:
    """``text`` as a string of at most ``limit`` characters, ``...`` marking a cut."""
    words = str(text)
    return words if len(words) <= limit else words[: limit - 3] + "..."


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, for an error message that names a bad value."""
    return cut(repr(value), limit)


def error_body(code: str, message: str) -> dict[str, Any]:
    """The one JSON error shape: ``{"error": {"code": ..., "message": ...}}``."""
    return {"error": {"code": code, "message": message}}


class ExitCode(IntEnum):
    """The exit codes of ``python app.py remove`` and ``python app.py batch``."""

    #: Every input done (or, in a batch, skipped: its output was already complete).
    OK = 0
    #: The input (``remove``) or some inputs (``batch``, listed in ``OUT/_report.json``) failed, or an
    #: error no input can escape stopped the run (weights missing, provider cannot load).
    FAILED = 1
    #: Bad usage, found before any model loads: a bad flag or option value (``--quality abc`` and
    #: ``--quality 500`` alike), IN missing, OUT not writable, Ray not installed.
    BAD_FLAG = 2
    #: Stopped by SIGINT (Ctrl-C) or SIGTERM: 128 plus the signal, as shells report it.
    INTERRUPTED = 128 + signal.SIGINT
    TERMINATED = 128 + signal.SIGTERM

    @classmethod
    def stopped_by(cls, signum: int) -> int:
        """The code for a run stopped by ``signum``."""
        return 128 + signum
