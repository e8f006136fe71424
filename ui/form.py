"""The options table as the WebUI reads it: the Upload form's fields, their labels and start values,
and the client API's parameters, all from the rows of ``core.options`` (``RemovalOptions``).

A row gives a control its default, range (``low``/``high``), step and help; the page
adds only its own words for some labels (``LABELS``). The Upload form offers every row
but ``mask_edit`` (the touch-up paints it), with one control of the page's own,
``background``, that chooses between three rows (a colour, an image or a blur), so a
new row reaches the page, the form and the client API without an edit here.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, TypeVar

from base.settings import Settings
from core import InvalidOption, RemovalOptions
from core.options import kind_of
from ui.errors import handler_name

R = TypeVar("R")
Row = dataclasses.Field[Any]

#: The page's own words for some options; any other option is labelled by its name ("crop_margin": "Crop margin").
LABELS = {
    "model": "Model", "provider": "Run on", "output_format": "Output format", "quality": "Quality (WebP/JPEG)",
    "only_mask": "Mask only", "bgcolor": "Any colour", "background_image": "Background image",
    "blur_background": "Blur strength", "crop": "Crop to subject", "crop_margin": "Margin (px)",
    "alpha_matting": "Alpha matting", "alpha_matting_foreground_threshold": "Foreground threshold",
    "alpha_matting_background_threshold": "Background threshold", "alpha_matting_erode_size": "Erode size",
    "post_process_mask": "Smooth the mask", "shadow": "Drop shadow", "shadow_offset_x": "Offset →",
    "shadow_offset_y": "Offset ↓", "shadow_blur": "Softness", "shadow_opacity": "Opacity %", "precision": "Precision",
}  # fmt: skip

#: The page's own help lines for some options, in words (the table's help speaks to the REST API's users).
HELP = {
    "quality": "1-100: lower is a smaller file with less detail. 0 keeps every detail (WebP without loss; JPEG at 90).",
    "precision": "Exact gives rembg's own masks. Fast runs the quickest version of the model whose masks "
    "passed a closeness check on this server; its figures are under 'What the model choices mean'.",
}

#: The form's one field that is not an option: which background (``BACKGROUND_ROWS``) the page sends.
BACKGROUND = "background"
#: The background control's choices, (label, value), and the option each one sends.
BACKGROUNDS = [("Transparent", "transparent"), ("Colour", "colour"), ("Image", "image"), ("Blur", "blur")]
BACKGROUND_ROWS = {"colour": "bgcolor", "image": "background_image", "blur": "blur_background"}
#: Where the background control starts when Colour or Blur is chosen (the rows' defaults mean "none").
COLOUR_START = "#ffffff"
BLUR_START = 20
#: Rows the form has no control for: the touch-up paints ``mask_edit``.
NOT_ON_FORM = frozenset({"mask_edit"})


def label(name: str) -> str:
    """The control's label: the page's own words, else the option's name in words."""
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def help_line(row: Row) -> str:
    """The control's help line: the page's own words, else the row's help."""
    return HELP.get(row.name) or row.metadata["help"]


def step(row: Row) -> int | float:
    """A number's step: the row's, else 1 (every number option is an integer)."""
    return row.metadata.get("step") or 1


def start(row: Row) -> Any:
    """The value a control starts at: the row's default, or the value that means "not given" (``unset``)."""
    if row.default is None and row.metadata.get("unset") is not None:
        return row.metadata["unset"]
    return row.default


def api_default(row: Row, settings: Settings) -> Any:
    """What the client API shows (and its hidden component holds) for an option left out."""
    if row.name in ("model", "provider"):
        return getattr(settings, f"default_{row.name}")
    if row.metadata["unset"] is not None:
        return row.metadata["unset"]
    if row.default is None and kind_of(row) != "image":
        return ""
    return row.default


class Form:
    """The options an options class offers (``RemovalOptions``, or a test's subclass with a row more).

    ``fields``: the Upload tab's inputs after the image, in the order ``ui.blocks`` wires
    them; ``options`` turns their values into the class's options through its
    ``from_values``, the engine's one parser.
    """

    def __init__(self, options: type[RemovalOptions] = RemovalOptions) -> None:
        self.type = options

    @cached_property
    def rows(self) -> dict[str, Row]:
        """The rows by name, in the table's order (the client API's parameter order)."""
        return {row.name: row for row in dataclasses.fields(self.type)}

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """Every row on the form; ``background`` and the rows it chooses where the first of those is."""
        names: list[str] = []
        for name in self.rows:
            if name in NOT_ON_FORM or name in names:
                continue
            if name in BACKGROUND_ROWS.values():
                names += [BACKGROUND, *(n for n in self.rows if n in BACKGROUND_ROWS.values())]
            else:
                names.append(name)
        return tuple(names)

    def parse(self, values: Mapping[str, Any]) -> RemovalOptions:
        """Raw values by option name as options (``RemovalOptions.from_values``)."""
        return self.type.from_values(values)

    def options(self, form: Mapping[str, Any], mask_edit: Any = None) -> RemovalOptions:
        """The Upload tab's widget values as options: one background, as the control says."""
        values = {name: form[name] for name in self.fields if name in self.rows and name in form}
        background = form.get(BACKGROUND) or "transparent"
        for choice, name in BACKGROUND_ROWS.items():
            values[name] = form.get(name) if background == choice else self.rows[name].default
        if background == "image" and not values["background_image"]:
            raise InvalidOption("background_image", "choose the background image first, or another background")
        values["mask_edit"] = mask_edit
        return self.parse(values)

    def initial(self) -> dict[str, Any]:
        """The form as a fresh page has it (``model`` and ``provider``: the rows' defaults, not the server's)."""
        values = {name: start(self.rows[name]) for name in self.fields if name in self.rows}
        return values | {BACKGROUND: "transparent", "bgcolor": COLOUR_START, "blur_background": BLUR_START}

    def with_parameters(self, fn: Callable[..., R], first: str, settings: Settings, doc: str) -> Callable[..., R]:
        """``fn(first, *option values)`` as the client API shows it: one named parameter per option.

        Gradio names an endpoint's parameters, and documents them, from the function's
        signature and docstring; both are generated from the rows.
        """

        def call(*args: Any) -> R:
            return fn(*args)

        params = [inspect.Parameter(first, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        params += [
            inspect.Parameter(row.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=api_default(row, settings))
            for row in self.rows.values()
        ]
        call.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        args = "\n".join(f"    {row.name}: {row.metadata['help']}" for row in self.rows.values())
        call.__doc__ = f"{doc}\n\nArgs:\n{args}"
        call.__name__ = handler_name(fn)
        return call


#: The product's form: ``RemovalOptions`` as the table declares it.
FORM = Form()
#: The Upload tab's inputs after the image (``Form.fields``).
UPLOAD_FIELDS = FORM.fields


def upload_options(form: Mapping[str, Any], mask_edit: Any = None) -> RemovalOptions:
    """``FORM.options``: the Upload tab's widget values as options."""
    return FORM.options(form, mask_edit)
