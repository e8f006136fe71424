"""The WebUI's edge: typed engine errors become ``gr.Error`` once, here; nothing else reaches the page.

``user_errors`` wraps every handler: a ``RemovalError`` is a toast with the error's
own message (and one log line), anything unexpected a toast naming a request id that
the log has with its traceback. ``quiet_input_errors`` does the same for what Gradio
itself cannot preprocess. Request ids and cut-short messages are ``base.edges``'s.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import gradio as gr

from base.edges import cut, request_id
from core import RemovalError

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
#: Seconds an error toast stays: long enough to read a sentence twice (the status line keeps it after).
TOAST_SECONDS = 30


def handler_name(fn: Callable[..., Any]) -> str:
    """A handler's name for the log; a ``functools.partial`` goes by its function's."""
    return str(getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", "handler"))


def user_error(message: str) -> gr.Error:
    """A mistake of the user's (no image yet, nothing painted): a toast, no traceback."""
    return gr.Error(message, duration=TOAST_SECONDS, print_exception=False)


def _toast(exc: RemovalError, where: str) -> gr.Error:
    log.info("request %s: %s -> %s", request_id(), where, exc.code)
    return gr.Error(
        exc.message,
        title=exc.code.replace("_", " ").capitalize(),
        duration=TOAST_SECONDS,
        print_exception=False,
    )


def _unexpected(rid: str) -> gr.Error:
    return user_error(f"Something went wrong on the server; it has been logged as request {rid}.")


@contextlib.contextmanager
def _translated(fn: Callable[..., Any]) -> Iterator[None]:
    """Typed engine errors become ``gr.Error`` (one log line each); anything else is logged."""
    try:
        yield
    except RemovalError as exc:
        raise _toast(exc, handler_name(fn)) from None
    except gr.Error:
        raise
    except Exception:
        rid = request_id()
        log.exception("request %s: unexpected error in %s", rid, handler_name(fn))
        raise _unexpected(rid) from None


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` with its errors shown to the user (``_translated``); generators too."""
    if inspect.isgeneratorfunction(fn):  # a partial of one too

        @functools.wraps(fn)
        def generator(*args: P.args, **kwargs: P.kwargs) -> Any:
            with _translated(fn):
                yield from fn(*args, **kwargs)

        generator.__name__ = handler_name(fn)  # a partial's function's: Gradio names the event by it
        return generator

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _translated(fn):
            return fn(*args, **kwargs)

    wrapper.__name__ = handler_name(fn)
    return wrapper


def quiet_input_errors(demo: gr.Blocks) -> gr.Blocks:
    """An input Gradio cannot preprocess (a file path it did not upload, a string for a file, a
    wrong type from a script) is a short ``gr.Error`` and one log line, not a traceback.

    Gradio prints the traceback of any exception from ``preprocess_data`` and, with
    ``show_error``, sends its text back, which may quote the whole bad input. Bound to the
    instance, not a subclass, for the reason ``ui.components.uploaded_file`` gives.
    """
    original = demo.preprocess_data

    async def preprocess_data(block_fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(block_fn, *args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever Gradio's preprocessing raises on bad input
            rid = request_id()
            reason = cut(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            log.info("request %s: %s: input refused: %s", rid, getattr(block_fn, "name", "event"), reason)
            raise gr.Error(f"Invalid input: {reason}", print_exception=False) from None

    demo.preprocess_data = preprocess_data  # type: ignore[method-assign]
    return demo
