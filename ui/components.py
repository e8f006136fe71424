"""Gradio components as the WebUI needs them: inputs that hand the engine the uploaded file itself,
values unconverted for the client API, and a control for any row of the options table.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.data_classes import FileData
from gradio.utils import NamedString

from base.settings import Settings
from core.options import kind_of
from ui.form import Row, api_default, help_line, label, start, step

#: An integer row with a wider range than this is a number box: a slider cannot pick one value in ten thousand.
SLIDER_MAX_STEPS = 1000
#: A choice among this many or fewer is a radio (all visible at once), more a dropdown.
RADIO_MAX_CHOICES = 5


def uploaded_file(**kwargs: Any) -> gr.File:
    """A ``gr.File`` whose handler gets the cached upload's path, and no stray temporary file.

    Gradio 6.31's ``File.preprocess`` (``type="filepath"``) also creates an empty
    ``NamedTemporaryFile(delete=False)`` in the cache for every file it hands over, and
    neither deletes it nor tracks it for ``delete_cache``: one leaked file per request.
    The fix is bound to the instance, not made a subclass: Gradio writes a ``.pyi`` stub
    beside the module of every component subclass at import, which fails where the code
    is read-only (the Docker image runs as a user who does not own /app).
    """
    component = gr.File(**kwargs)
    original = component._process_single_file

    def process_single_file(f: FileData) -> NamedString | bytes:
        if component.type == "filepath" and not component.file_types:
            return NamedString(f.path)  # type: ignore[no-untyped-call]
        return original(f)

    component._process_single_file = process_single_file  # type: ignore[method-assign]
    return component


def uploaded_image(**kwargs: Any) -> gr.Image:
    """A ``gr.Image`` whose handler gets the uploaded file's path, never Gradio's conversion of it.

    Gradio 6.31's ``Image.preprocess`` opens the upload with Pillow and, unless the
    mode already matches ``image_mode``, converts it (RGBA, grey and CMYK to RGB:
    transparency lost, alpha off by up to 16 levels) and re-saves it; a file that is
    not an image fails there, with Gradio's own message and a traceback in the log.
    Handing over the path lets the engine decode it, as REST and the library do.
    Bound to the instance, not a subclass, for the reason ``uploaded_file`` gives.
    """
    component = gr.Image(type="filepath", **kwargs)

    def preprocess(payload: FileData | None) -> str | None:
        return None if payload is None or payload.path is None else NamedString(payload.path)  # type: ignore[no-untyped-call]

    component.preprocess = preprocess  # type: ignore[method-assign,assignment]
    return component


def raw_value(component: gr.components.Component) -> gr.components.Component:
    """The component hands its value to the handler as sent, unconverted.

    The engine's one parser then reads it as REST's values are read: ``"false"`` is
    false, ``"abc"`` for a number is an ``InvalidOption``, never Gradio's traceback.
    Bound to the instance, not a subclass, for the reason ``uploaded_file`` gives.
    """
    component.preprocess = lambda payload: payload  # type: ignore[method-assign]
    return component


def api_component(row: Row, settings: Settings) -> gr.components.Component:
    """The client API's input for one option (hidden; named and typed for ``view_api``)."""
    kind, value = kind_of(row), api_default(row, settings)
    if kind == "image":
        return uploaded_file(label=row.name)
    if kind == "bool":
        return raw_value(gr.Checkbox(value=value, label=row.name))
    if kind == "int":
        return raw_value(gr.Number(value=value, label=row.name))
    return raw_value(gr.Textbox(value=value, label=row.name))


def option_control(row: Row, info: str | None = None, **kwargs: Any) -> gr.components.Component:
    """The page's control for one row: its label, start value, range, step, choices and help.

    A yes/no is a checkbox, a number a slider over its range (a number box where the
    range is too wide, or open), a choice a radio or a dropdown, a colour a picker, an
    image an upload, anything else a text box. ``info`` replaces the row's help.
    """
    kind, value = kind_of(row), start(row)
    common: dict[str, Any] = {"label": label(row.name), "info": info or help_line(row), **kwargs}
    choices = row.metadata.get("choices")
    if kind == "bool":
        return gr.Checkbox(value=bool(value), **common)
    if kind == "int":
        low, high, unset = row.metadata["low"], row.metadata["high"], row.metadata["unset"]
        if low is not None and high is not None and high - low <= SLIDER_MAX_STEPS:
            low = low if unset is None else min(low, unset)  # the slider reaches "not given" too
            return gr.Slider(low, high, value=value, step=step(row), **common)
        return gr.Number(value=value, precision=0, minimum=low, maximum=high, step=step(row), **common)
    if choices:
        if len(choices) <= RADIO_MAX_CHOICES:
            return gr.Radio(list(choices), value=value, **common)
        return gr.Dropdown(list(choices), value=value, **common)
    if kind == "colour":
        return gr.ColorPicker(value=value, **common)
    if kind == "image":
        common.pop("info")  # an image box has no help line
        return uploaded_image(sources=["upload", "clipboard"], **common)
    return gr.Textbox(value="" if value is None else str(value), **common)
