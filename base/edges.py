"""The words every edge speaks: request ids, quoted input cut short, and the JSON error shape.

REST (``api.rest``), the HTTP guard (``api.guard``), the WebUI and the Gradio client API
(``ui``), and the command line (``app.py remove``, ``app.py batch``) translate the engine's
typed errors at their edge; they take these pieces from here so that a request id, a quoted
value and an error body look the same whichever door a request came in by.
"""

from __future__ import annotations

import secrets
from typing import Any

#: How much of a client's own input (a value, a URL, a message that repeats it) an answer quotes back.
QUOTE_CHARS = 100


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
