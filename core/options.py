"""``RemovalOptions``: what a request may ask for, validated in one place.

Every edge (UI, Gradio API, REST API, CLI) builds one of these; bad values raise
``InvalidOption`` naming the option and why.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidOption

OUTPUT_FORMATS = ("png", "webp", "jpeg")
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
#: Accepted spellings of output formats, mapped to ours.
FORMAT_ALIASES = {"png": "png", "webp": "webp", "jpeg": "jpeg", "jpg": "jpeg"}


@dataclass(frozen=True)
class RemovalOptions:
    """Options of one background removal; every field has a sensible default.

    ``model``/``provider`` of ``None`` mean the service defaults (settings).
    ``quality`` of ``None`` means lossless WebP and JPEG quality 90; a number
    means lossy WebP/JPEG at that quality (ignored for PNG).
    ``background_image`` may be anything ``remove_background`` accepts as input.
    """

    model: str | None = None
    provider: str | None = None
    output_format: str = "png"
    quality: int | None = None
    only_mask: bool = False
    bgcolor: tuple[int, ...] | str | None = None
    background_image: Any = None
    crop: bool = False
    crop_margin: int = 0
    alpha_matting: bool = False
    alpha_matting_foreground_threshold: int = 240
    alpha_matting_background_threshold: int = 10
    alpha_matting_erode_size: int = 10
    post_process_mask: bool = False

    @property
    def color(self) -> tuple[int, int, int, int] | None:
        """The background colour as RGBA, or None."""
        return None if self.bgcolor is None else parse_color(self.bgcolor)

    def validated(self) -> RemovalOptions:
        """A normalised copy (``jpg`` -> ``jpeg``, RGB -> RGBA colour) or ``InvalidOption``."""
        fmt = FORMAT_ALIASES.get(str(self.output_format).lower())
        if fmt is None:
            raise InvalidOption("output_format", f"choose one of {', '.join(OUTPUT_FORMATS)}")
        if self.quality is not None and not _int_in(self.quality, 1, 100):
            raise InvalidOption("quality", "must be an integer from 1 to 100")
        bgcolor = self.color
        if bgcolor is not None and self.background_image is not None:
            raise InvalidOption("bgcolor", "give a background colour or a background image, not both")
        if not _int_in(self.crop_margin, 0, 10_000):
            raise InvalidOption("crop_margin", "must be an integer from 0 to 10000 pixels")
        for name in ("alpha_matting_foreground_threshold", "alpha_matting_background_threshold"):
            if not _int_in(getattr(self, name), 0, 255):
                raise InvalidOption(name, "must be an integer from 0 to 255")
        if not _int_in(self.alpha_matting_erode_size, 0, 100):
            raise InvalidOption("alpha_matting_erode_size", "must be an integer from 0 to 100")
        if self.alpha_matting and self.alpha_matting_background_threshold >= self.alpha_matting_foreground_threshold:
            raise InvalidOption("alpha_matting_background_threshold", "must be below the foreground threshold")
        for name in ("only_mask", "crop", "alpha_matting", "post_process_mask"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidOption(name, "must be true or false")
        return dataclasses.replace(self, output_format=fmt, bgcolor=bgcolor)


def _int_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


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
                raise InvalidOption("bgcolor", f"{value!r} is not a hex colour") from None
        else:
            try:
                parts = [int(p) for p in text.split(",")]
            except ValueError:
                raise InvalidOption("bgcolor", f"{value!r} is not r,g,b[,a]") from None
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
        numbers = [float(p) for p in body.replace("/", ",").split(",")]
    except ValueError:
        raise InvalidOption("bgcolor", f"{text!r} is not a CSS colour") from None
    if not all(math.isfinite(n) for n in numbers):  # float() takes "inf", "nan" and 1e400
        raise InvalidOption("bgcolor", f"{text!r} is not a CSS colour")
    if len(numbers) == 4:
        numbers[3] *= 255
    return parse_color([round(n) for n in numbers])
