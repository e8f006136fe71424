"""The JSON bodies the HTTP guard (``api.guard``) reads before Gradio does: bounded in depth, one
object, and ``fn_index`` normalised as Gradio's validator would read it, so that the private-event
check sees the number Gradio will run."""

from __future__ import annotations

import json
import math
from typing import Any

from base.edges import cut, quote

#: Deepest nesting of arrays and objects accepted in a body the guard parses. Gradio's own values
#: (an image editor's layers, a gallery of captioned files) nest about six deep; Python's parser
#: fails past its recursion limit (``[`` x 5000 raised RecursionError: a 500).
MAX_JSON_DEPTH = 64


class BadBody(ValueError):
    """A body the guard refuses to pass on: ``status`` and the one error shape's ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (0 for a scalar); iterative."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in item)
    return deepest


def parse_json_object(body: bytes) -> dict[str, Any]:
    """``body`` as a JSON object nested at most ``MAX_JSON_DEPTH`` deep, else ``BadBody`` (400)."""
    try:
        parsed = json.loads(body)
    except RecursionError:
        parsed = None  # deeper than Python's parser goes: deeper than ours too
        depth = MAX_JSON_DEPTH + 1
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise BadBody(400, "invalid_request", f"the body is not JSON ({cut(exc)})") from None
    else:
        depth = json_depth(parsed)
    if depth > MAX_JSON_DEPTH:
        raise BadBody(400, "invalid_request", f"the body nests more than {MAX_JSON_DEPTH} levels deep")
    if not isinstance(parsed, dict):
        raise BadBody(400, "invalid_request", "the body must be a JSON object")
    return parsed


def normalised_fn_index(value: Any) -> int | None:
    """``fn_index`` as the integer Gradio's validator would make of it, or ``BadBody`` (422).

    The validator is lax: it takes ``"19"``, ``" 19 "``, ``19.0`` and ``true``. Whatever it
    would take as a number is taken here as that number, so the private-event check sees it.
    """
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    number: float | None = None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not number.is_integer():
        raise BadBody(422, "invalid_request", f"fn_index must be a whole number, not {quote(value)}")
    return int(number)
