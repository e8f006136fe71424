"""The output formats, one row each: name, media type, extension, alpha, size limit and the encoder.

Every edge takes its format facts from ``FORMATS``: the options' validation, the
REST content types, the file names the WebUI and the batch command write, the CLI's
choice by file suffix. Adding a format is one row here and its encoder function.
``OutputFormat.write`` checks the row's size limit before encoding and turns any
refusal of the codec into ``InvalidOption``, so that no answer ever carries an empty
or half-written image.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from isal import isal_zlib
from PIL import Image

from base.errors import InvalidOption
from core.imaging import pixels

Encoder = Callable[[Image.Image, "int | None"], bytes]
#: PNG colour types of the modes we write ourselves (8 bits per channel).
_PNG_COLOUR_TYPE = {"L": 0, "RGB": 2, "RGBA": 6}


def _pillow(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def encode_png(im: Image.Image, quality: int | None) -> bytes:
    """PNG with the "up" filter, deflated by ISA-L at its fastest level.

    As fast as the fastest single-purpose PNG writers, with smaller files, and every
    step (numpy's filter, ISA-L's deflate, zlib's CRC) runs without the GIL, so that
    requests encode on every core at once (``python -m benchmark scaling``).
    """
    colour_type = _PNG_COLOUR_TYPE.get(im.mode)
    if colour_type is None:
        return _pillow(im, "PNG", compress_level=1)
    arr = pixels(im)
    height, width = arr.shape[:2]
    flat = arr.reshape(height, -1)
    rows = np.empty((height, flat.shape[1] + 1), np.uint8)
    rows[0, 0] = 0  # the first row has nothing above it
    rows[0, 1:] = flat[0]
    rows[1:, 0] = 2  # "up": each byte minus the one above it, wrapping
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    idat = isal_zlib.compress(rows, 1)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


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
    #: The longest side the codec writes; larger images are refused before encoding.
    max_side: int
    #: Other names accepted for it (``jpg``).
    aliases: tuple[str, ...] = ()

    def check_size(self, width: int, height: int) -> None:
        """``InvalidOption`` naming the format where the codec cannot write a ``width`` x ``height`` image."""
        if max(width, height) > self.max_side:
            others = ", ".join(f.name for f in FORMATS.values() if f.max_side >= max(width, height))
            raise InvalidOption(
                "output_format",
                f"{self.name} holds at most {self.max_side:,} pixels per side and the result is "
                f"{width}x{height}; ask for {others or 'a smaller image'}",
            )

    def write(self, im: Image.Image, quality: int | None) -> bytes:
        """The encoded image: never empty; a size or codec refusal is ``InvalidOption``."""
        self.check_size(im.width, im.height)
        try:
            data = self.encode(im, quality)
        except (OSError, ValueError) as exc:
            reason = str(exc)[:100] or type(exc).__name__
            raise InvalidOption("output_format", f"the {self.name} encoder refused the image ({reason})") from None
        if not data:
            raise InvalidOption("output_format", f"the {self.name} encoder wrote nothing for this image")
        return data


FORMATS: dict[str, OutputFormat] = {
    f.name: f
    for f in (
        # PNG's own limit, 2^31 - 1 per side: encode_png writes any size the input limits let through.
        OutputFormat(
            "png", "image/png", ".png", alpha=True, blanks_hidden=False, encode=encode_png, max_side=2**31 - 1
        ),
        # libwebp: WEBP_MAX_DIMENSION.
        OutputFormat(
            "webp", "image/webp", ".webp", alpha=True, blanks_hidden=True, encode=encode_webp, max_side=16_383
        ),
        # libjpeg: JPEG_MAX_DIMENSION (65,500, not 65,535: it answers "broken data stream" past it).
        OutputFormat(
            "jpeg",
            "image/jpeg",
            ".jpg",
            alpha=False,
            blanks_hidden=True,
            encode=encode_jpeg,
            max_side=65_500,
            aliases=("jpg",),
        ),
    )
}
#: Every accepted spelling -> the format's name.
FORMAT_NAMES: dict[str, str] = {alias: f.name for f in FORMATS.values() for alias in (f.name, *f.aliases)}


def format_for_suffix(suffix: str, default: str = "png") -> str:
    """The format a file name's suffix asks for (``.jpg`` -> ``jpeg``), else ``default``."""
    return FORMAT_NAMES.get(suffix.lower().lstrip("."), default)
