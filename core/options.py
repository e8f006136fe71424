"""``RemovalOptions``: what a request may ask for, declared once and validated in one place.

Each field of ``RemovalOptions`` is a row, as ``base.settings.Settings`` is for the
service: name, type, default, range or choices, help, and the REST field name
(rembg's short names, ``a``, ``af``, ``om``...). The Gradio API's inputs, the REST
fields (POST form and GET query), the CLI flags of ``app.py remove`` and
``app.py batch`` and docs/configuration.md's options table are all generated from ``OPTIONS``,
and every edge turns its raw values into options through the one parser,
``RemovalOptions.from_values``: text, numbers and booleans as they arrive, bad ones
an ``InvalidOption`` naming the option. Adding an option is a row here and the code
that honours it in ``core.pipeline``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from base.edges import QUOTE_CHARS as QUOTE_CHARS  # re-exported: the WebUI cuts its messages to it
from base.edges import quote
from base.errors import InvalidOption
from base.providers import PRECISION_CHOICES, PROVIDER_CHOICES
from base.settings import SettingsError
from core.formats import FORMAT_NAMES, FORMATS
from models.registry import MODELS, get_spec

#: Text that means true or false, on every edge (REST forms, query strings, Gradio values).
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _option(
    default: Any,
    help: str,
    *,
    kind: str | None = None,
    rest: str | None = None,
    cli: str | None = None,
    low: int | None = None,
    high: int | None = None,
    step: int | None = None,
    choices: tuple[str, ...] | None = None,
    unset: Any = None,
    advanced: bool = False,
) -> Any:
    """A row of the options table.

    ``kind``: bool, int, str (from the annotation), or colour / image. ``rest``: the
    REST field name (default: the name). ``cli``: the flag (default: ``--name``).
    ``low``/``high``: an int's range; ``step``: its step on the WebUI's controls (default 1).
    ``choices``: what the UI offers (the engine checks names itself). ``unset``: a value edges send for "not given"
    (Gradio's numbers cannot be empty: ``quality`` 0 means the format's default).
    ``advanced``: left out of the Gradio UI's basic options (still in the API).
    """
    return field(
        default=default,
        metadata={
            "help": help,
            "kind": kind,
            "rest": rest,
            "cli": cli,
            "low": low,
            "high": high,
            "step": step,
            "choices": choices,
            "unset": unset,
            "advanced": advanced,
        },
    )


@dataclass(frozen=True)
class RemovalOptions:
    """Options of one background removal; every field has a sensible default.

    ``model``/``provider``/``precision`` of ``None`` mean the service defaults (settings).
    ``quality`` of ``None`` means lossless WebP and JPEG quality 90; a number
    means lossy WebP/JPEG at that quality (ignored for PNG).
    ``background_image`` and ``mask_edit`` may be anything ``remove_background``
    accepts as input. Lengths of the blur and the shadow are in thousandths of the
    input's shorter side, so that one request looks the same at every size.
    """

    model: str | None = _option(None, "Model name; empty: the server's default model.", choices=tuple(MODELS))
    provider: str | None = _option(
        None, "Where to run: auto, cpu, cuda, tensorrt or openvino; empty: the default.", choices=PROVIDER_CHOICES
    )
    output_format: str = _option(
        "png", "Output format: png, webp or jpeg.", rest="format", cli="--format", choices=tuple(FORMATS)
    )
    quality: int | None = _option(
        None, "Lossy WebP/JPEG quality 1-100; 0 or empty: lossless WebP, JPEG 90.", low=1, high=100, unset=0
    )
    only_mask: bool = _option(False, "Return the mask instead of the cutout.", rest="om")
    bgcolor: tuple[int, ...] | str | None = _option(
        None, "Background colour r,g,b[,a], #rrggbb[aa] or rgb(...); empty: transparent.", kind="colour", rest="bgc"
    )
    background_image: Any = _option(None, "An image to put behind the subject.", kind="image")  # noqa: RUF009 - a field
    crop: bool = _option(False, "Crop the result to the subject.")
    crop_margin: int = _option(0, "Pixels kept around the subject when cropping.", low=0, high=10_000)
    alpha_matting: bool = _option(False, "Refine the edges with alpha matting (slow).", rest="a")
    alpha_matting_foreground_threshold: int = _option(
        240, "Alpha matting: mask values above this are surely foreground.", rest="af", low=0, high=255, advanced=True
    )
    alpha_matting_background_threshold: int = _option(
        10, "Alpha matting: mask values below this are surely background.", rest="ab", low=0, high=255, advanced=True
    )
    # Capped: matting's time grows with the band the erosion leaves unknown (docs/limits-and-security.md
    # has the figures, with the command that measures them).
    alpha_matting_erode_size: int = _option(
        10, "Alpha matting: erosion of the sure regions, pixels (0-20).", rest="ae", low=0, high=20, advanced=True
    )
    post_process_mask: bool = _option(False, "Smooth the mask (morphological post-processing).", rest="ppm")
    # New rows go last: the Gradio client API takes the options as positional parameters in this order.
    mask_edit: Any = _option(  # noqa: RUF009 - a field
        None,
        "Touch-up: brush strokes over the input (any size, scaled to it); where opaque, white keeps the subject "
        "and black removes it (grey: partly); transparent pixels leave the mask as the model made it.",
        kind="image",
    )
    blur_background: int = _option(
        0,
        "Keep the background, blurred: strength 1-100 (Gaussian radius in thousandths of the shorter side); "
        "0: remove it.",
        low=0,
        high=100,
    )
    shadow: bool = _option(False, "Add a soft drop shadow under the subject.")
    shadow_offset_x: int = _option(
        15, "Drop shadow: offset to the right (negative: left), thousandths of the shorter side.", low=-200, high=200
    )
    shadow_offset_y: int = _option(
        15, "Drop shadow: offset downwards (negative: up), thousandths of the shorter side.", low=-200, high=200
    )
    shadow_blur: int = _option(
        20, "Drop shadow: softness (Gaussian radius), thousandths of the shorter side.", low=0, high=200
    )
    shadow_opacity: int = _option(50, "Drop shadow: opacity, percent.", low=0, high=100)
    precision: str | None = _option(
        None,
        "exact: masks equal rembg's, on the runtime measured fastest at that here; fast: the fastest build of the "
        "model that passed the quality gate here (python -m models tune), else exact, and the answer says so; "
        "empty: the server's default.",
        choices=PRECISION_CHOICES,
    )
    extras: str | None = _option(
        None,
        "rembg's extras: a JSON object of per-request model parameters: cc (u2net_cloth_seg: upper, lower, "
        "full or attire; without it, rembg's three cutouts stacked) or sam_prompt (sam: points and rectangles, "
        "as rembg takes them). Nothing in it may name a file.",
        advanced=True,
    )

    @property
    def extra(self) -> dict[str, Any]:
        """``extras`` parsed (``validated`` has checked it); {} when not given."""
        return parse_extras(self.extras)

    @property
    def color(self) -> tuple[int, int, int, int] | None:
        """The background colour as RGBA, or None."""
        return None if self.bgcolor is None else parse_color(self.bgcolor)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> RemovalOptions:
        """Options from raw edge values by field name: text, numbers, booleans or None.

        ``None`` and empty text mean "not given" (the default), as does an option's
        ``unset`` value. Raises ``InvalidOption`` naming the option; unknown names too.
        """
        parsed: dict[str, Any] = {}
        for name, raw in values.items():
            f = OPTIONS.get(name)
            if f is None:
                raise InvalidOption(quote(name), "no such option")
            parsed[name] = coerce(f, raw)
        return cls(**parsed)

    def validated(self) -> RemovalOptions:
        """A normalised copy (``jpg`` -> ``jpeg``, RGB -> RGBA colour) or ``InvalidOption``."""
        if self.precision is not None and self.precision not in PRECISION_CHOICES:
            raise InvalidOption("precision", f"choose one of {', '.join(PRECISION_CHOICES)}")
        fmt = FORMAT_NAMES.get(str(self.output_format).lower())
        if fmt is None:
            raise InvalidOption("output_format", f"choose one of {', '.join(FORMATS)}")
        for f in OPTIONS.values():
            value = getattr(self, f.name)
            kind = kind_of(f)
            if kind == "bool" and not isinstance(value, bool):
                raise InvalidOption(f.name, "must be true or false")
            low, high = f.metadata["low"], f.metadata["high"]
            if kind == "int" and low is not None and value is not None and not _int_in(value, low, high):
                raise InvalidOption(f.name, f"must be an integer from {low} to {high}")
        bgcolor = self.color
        if bgcolor is not None and self.background_image is not None:
            raise InvalidOption("bgcolor", "give a background colour or a background image, not both")
        if self.blur_background and (bgcolor is not None or self.background_image is not None):
            raise InvalidOption("blur_background", "choose one background: a colour, an image or a blur")
        if self.alpha_matting and self.alpha_matting_background_threshold >= self.alpha_matting_foreground_threshold:
            raise InvalidOption("alpha_matting_background_threshold", "must be below the foreground threshold")
        parse_extras(self.extras)
        return dataclasses.replace(self, output_format=fmt, bgcolor=bgcolor)


OPTIONS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(RemovalOptions)}

#: The per-request parameters rembg's sessions read from ``extras`` that this service takes.
EXTRAS = ("cc", "cloth_category", "sam_prompt")
CLOTH_CATEGORIES = ("upper", "lower", "full", "attire")
#: Keys of rembg's ``extras`` that choose weights files: the server's operator does that (``--custom-model``).
FILE_EXTRAS = ("model_path", "sam_model", "sam_quant")
EXTRAS_CHARS = 16_384


def parse_extras(raw: str | None) -> dict[str, Any]:
    """rembg's ``extras`` JSON as a dict, or ``InvalidOption``: a key that names a file is refused
    (a request names a model, never a path), as is a key rembg would silently ignore here."""
    if raw is None or not raw.strip():
        return {}
    if len(raw) > EXTRAS_CHARS:
        raise InvalidOption("extras", f"longer than {EXTRAS_CHARS} characters")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidOption("extras", "must be a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidOption("extras", "must be a JSON object")
    for key in value:
        if key in FILE_EXTRAS or str(key).endswith("_path"):
            raise InvalidOption(
                "extras", f"{quote(key)} names a weights file; a request names a model (the server registers files)"
            )
        if key not in EXTRAS:
            raise InvalidOption("extras", f"{quote(key)} is not taken here; use {', '.join(EXTRAS)}")
    cc = value.get("cc") or value.get("cloth_category")
    if cc is not None and cc not in CLOTH_CATEGORIES:
        raise InvalidOption("extras", f"cc: choose one of {', '.join(CLOTH_CATEGORIES)}")
    if "sam_prompt" in value:
        _check_sam_prompt(value["sam_prompt"])
    return value


#: What a point of ``sam_prompt`` may be labelled: 1 the subject, 0 not the subject (SAM's own 2 and 3
#: are the corners of a rectangle, which rembg labels itself).
SAM_POINT_LABELS = (0, 1)
SAM_PROMPT_SHAPE = (
    "sam_prompt: a non-empty list of {type: point, label: 0 or 1, data: [x, y]} "
    "or {type: rectangle, data: [x1, y1, x2, y2]}, in the image's pixels"
)


def _label(value: Any) -> int | None:
    """A JSON integer (rembg's schema takes 1.0 as one too), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if float(value).is_integer() else None


def _sam_mark(mark: Any) -> bool:
    """One mark of rembg's ``sam_prompt``: a point with its label, or a rectangle (its label, if any, an integer)."""
    if not isinstance(mark, dict) or mark.get("type") not in ("point", "rectangle"):
        return False
    data = mark.get("data")
    if not isinstance(data, list) or len(data) != (2 if mark["type"] == "point" else 4):
        return False
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in data):
        return False
    if mark["type"] == "point":
        return _label(mark.get("label")) in SAM_POINT_LABELS
    return "label" not in mark or _label(mark["label"]) is not None


def _check_sam_prompt(prompt: Any) -> None:
    """rembg's schema for ``sam_prompt`` (a list of {type, label, data}), and what its ``SamSession`` needs
    to run: at least one mark, each a point or a rectangle with its coordinates (rembg skips a mark of
    another type, and fails on a prompt with none)."""
    if not isinstance(prompt, list) or not prompt or not all(_sam_mark(mark) for mark in prompt):
        raise InvalidOption("extras", SAM_PROMPT_SHAPE)


def kind_of(f: dataclasses.Field[Any]) -> str:
    """bool, int, str, colour or image."""
    declared: str | None = f.metadata["kind"]
    # Annotations are strings under ``from __future__ import annotations``.
    return declared or str(f.type).split(" |")[0]


def rest_name(f: dataclasses.Field[Any]) -> str:
    return f.metadata["rest"] or f.name


def cli_flag(f: dataclasses.Field[Any]) -> str:
    return f.metadata["cli"] or "--" + f.name.replace("_", "-")


def coerce(f: dataclasses.Field[Any], raw: Any) -> Any:
    """One raw edge value as the option's type (the one parser of every edge)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return f.default
    kind = kind_of(f)
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return raw.strip().lower() in TRUE_WORDS
        raise InvalidOption(f.name, f"must be true or false, not {quote(raw)}")
    if kind == "int":
        value = _as_int(raw)
        if value is None:
            raise InvalidOption(f.name, f"must be an integer, not {quote(raw)}")
        unset = f.metadata["unset"]
        return None if unset is not None and value == unset else value
    if kind == "str":
        # Which names exist is the engine's question (``validated``, the registry, the providers).
        if not isinstance(raw, str):
            raise InvalidOption(f.name, f"must be text, not {quote(raw)}")
        return raw.strip()
    return raw  # colour (parsed by validated) and image (decoded by the engine)


def _as_int(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if math.isfinite(raw) and raw.is_integer() else None
    if isinstance(raw, str):
        text = raw.strip()
        if len(text) > 12:  # no option takes a number that long; int() of huge text is slow
            return None
        try:
            return int(text)
        except ValueError:
            return None
    return None


def _int_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


# --- the CLI flags -------------------------------------------------------------------


def add_option_arguments(parser: argparse.ArgumentParser, format_help: str | None = None) -> None:
    """Every option as a flag (``app.py remove`` and ``app.py batch``); values parse in ``options_from_args``."""
    for f in OPTIONS.values():
        kind = kind_of(f)
        help_text = format_help if f.name == "output_format" and format_help else f.metadata["help"]
        if kind == "bool":
            parser.add_argument(cli_flag(f), dest=f.name, action="store_true", help=help_text)
        else:
            metavar = {"image": "PATH", "colour": "COLOUR", "int": "N"}.get(kind, f.name.upper())
            parser.add_argument(cli_flag(f), dest=f.name, metavar=metavar, help=help_text)


def options_from_args(
    args: argparse.Namespace, *, custom_models: Collection[str] = (), **overrides: Any
) -> RemovalOptions:
    """``RemovalOptions`` from the flags of ``add_option_arguments``; a bad value is a ``SettingsError``.

    Every check that needs no model runs here (ranges, colours, formats, the model's name: a
    registry model or one of ``custom_models``, the server's ``--custom-model`` names), so that a
    value out of range is refused like one of the wrong type: before any work, as a bad flag.
    """
    values: dict[str, Any] = {name: getattr(args, name, None) for name in OPTIONS} | overrides
    for f in OPTIONS.values():
        if kind_of(f) == "image" and values[f.name] is not None:
            path = Path(values[f.name])
            if not path.is_file():
                raise SettingsError(f"{cli_flag(f)}: {path} is not a readable file")
            values[f.name] = path
    try:
        options = RemovalOptions.from_values(values)
        options.validated()
        if options.model is not None and options.model not in custom_models:
            get_spec(options.model)
        return options
    except InvalidOption as exc:
        flag = cli_flag(OPTIONS[exc.option]) if exc.option in OPTIONS else exc.option
        raise SettingsError(f"{flag}: {exc.message.split(': ', 1)[-1]}") from None


# --- the docs' table ------------------------------------------------------------------


def options_table_markdown() -> str:
    """The options table of docs/configuration.md, generated from the same rows."""
    lines = ["| option | REST field | CLI flag | default | meaning |", "|---|---|---|---|---|"]
    for f in OPTIONS.values():
        default = "" if f.default is None else f"`{f.default}`"
        lines.append(f"| `{f.name}` | `{rest_name(f)}` | `{cli_flag(f)}` | {default} | {f.metadata['help']} |")
    return "\n".join(lines)


def parse_color(value: object) -> tuple[int, int, int, int]:
    """An RGB(A) colour from a tuple/list, ``"r,g,b[,a]"``, ``#rrggbb[aa]`` or CSS ``rgb[a](...)``."""
    parts: list[object]
    if isinstance(value, str):
        text = value.strip()
        if text.lower().startswith(("rgb(", "rgba(")) and text.endswith(")"):
            return _css_color(text)
        if text.startswith("#") and len(text) in (7, 9):
            try:
                parts = [int(text[i : i + 2], 16) for i in range(1, len(text), 2)]
            except ValueError:
                raise InvalidOption("bgcolor", f"{quote(value)} is not a hex colour") from None
        else:
            try:
                parts = [int(p) for p in text.split(",")] if len(text) <= 64 else []
            except ValueError:
                raise InvalidOption("bgcolor", f"{quote(value)} is not r,g,b[,a]") from None
    elif isinstance(value, (tuple, list)):
        parts = list(value)
    else:
        raise InvalidOption("bgcolor", "expected r,g,b[,a] or #rrggbb")
    if len(parts) not in (3, 4) or not all(_int_in(p, 0, 255) for p in parts):
        raise InvalidOption("bgcolor", "needs 3 or 4 integers from 0 to 255")
    ints = [int(p) for p in parts]  # type: ignore[call-overload]
    if len(ints) == 3:
        ints.append(255)
    return (ints[0], ints[1], ints[2], ints[3])


def _css_color(text: str) -> tuple[int, int, int, int]:
    """CSS ``rgb(r, g, b)`` / ``rgba(r, g, b, a)`` with alpha from 0 to 1 (what colour pickers send)."""
    body = text[text.index("(") + 1 : -1]
    try:
        numbers = [float(p) for p in body.replace("/", ",").split(",")] if len(body) <= 64 else []
    except ValueError:
        raise InvalidOption("bgcolor", f"{quote(text)} is not a CSS colour") from None
    if not numbers or not all(math.isfinite(n) for n in numbers):  # float() takes "inf", "nan" and 1e400
        raise InvalidOption("bgcolor", f"{quote(text)} is not a CSS colour")
    if len(numbers) == 4:
        numbers[3] *= 255
    return parse_color([round(n) for n in numbers])
