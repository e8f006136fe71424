"""The output formats, one row each: name, media type, extension, alpha, and the encoder.

Every edge takes its format facts from ``FORMATS``: the options' validation, the
REST content types, the file names the WebUI and the batch command write, the CLI's
choice by file suffix. Adding a format is one row here and its encoder function.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

try:  # fpng writes PNG far faster than zlib, at a somewhat larger file; optional.
    import fpng as _fpng
except ImportError:  # pragma: no cover - exercised only where fpng is missing
    _fpng = None

Encoder = Callable[[Image.Image, "int | None"], bytes]


def _pillow(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def encode_png(im: Image.Image, quality: int | None) -> bytes:
    if _fpng is not None and im.mode in ("RGB", "RGBA"):
        return bytes(_fpng.from_ndarray(np.asarray(im)))
    return _pillow(im, "PNG", compress_level=1)


def encode_webp(im: Image.Image, quality: int | None) -> bytes:
    if quality is None:
        # Lossless at the lowest effort: the same pixels, far faster than Pillow's default
        # effort. exact=False (the default) lets libwebp blank the colour of hidden pixels.
        return _pillow(im, "WEBP", lossless=True, quality=0, method=0)
    return _pillow(im, "WEBP", quality=quality, method=2)


def encode_jpeg(im: Image.Image, quality: int | None) -> bytes:
    return _pillow(im, "JPEG", quality=quality or 90)


@dataclass(frozen=True)
class OutputFormat:
    name: str
    media_type: str
    #: The file extension written (``jpeg`` as the usual ``.jpg``).
    extension: str
    #: Carries transparency; without it the cutout is flattened on the background colour.
    alpha: bool
    #: The encoder itself blanks the colour of fully transparent pixels (else we do, so that
    #: the removed background cannot be recovered from the file).
    blanks_hidden: bool
    encode: Encoder
    #: Other names accepted for it (``jpg``).
    aliases: tuple[str, ...] = ()


FORMATS: dict[str, OutputFormat] = {
    f.name: f
    for f in (
        OutputFormat("png", "image/png", ".png", alpha=True, blanks_hidden=False, encode=encode_png),
        OutputFormat("webp", "image/webp", ".webp", alpha=True, blanks_hidden=True, encode=encode_webp),
        OutputFormat(
            "jpeg", "image/jpeg", ".jpg", alpha=False, blanks_hidden=True, encode=encode_jpeg, aliases=("jpg",)
        ),
    )
}
#: Every accepted spelling -> the format's name.
FORMAT_NAMES: dict[str, str] = {alias: f.name for f in FORMATS.values() for alias in (f.name, *f.aliases)}


def format_for_suffix(suffix: str, default: str = "png") -> str:
    """The format a file name's suffix asks for (``.jpg`` -> ``jpeg``), else ``default``."""
    return FORMAT_NAMES.get(suffix.lower().lstrip("."), default)
