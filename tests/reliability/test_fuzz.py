"""Reliability tier: a bounded hypothesis fuzz of decoding and option parsing; no model runs.

``core.decode.decode`` gets arbitrary bytes, mutated real images (bit flips,
truncation, spliced junk) and PNG headers with arbitrary fields; option parsing
(``RemovalOptions.validated``, ``parse_color``, and the one parser of every edge,
``RemovalOptions.from_values``, with REST's text and Gradio's widget values) gets
arbitrary values. Each may succeed or raise a
``base.errors.RemovalError`` subclass, and nothing else. The run is
derandomised and bounded (``max_examples``) so it takes seconds and repeats in CI;
``HYPOTHESIS_PROFILE=explore`` runs a longer random search.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from base.errors import RemovalError
from core.decode import Limits, decode
from core.options import OPTIONS, RemovalOptions, parse_color

pytestmark = pytest.mark.reliability

settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", max_examples=5000, deadline=None, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

LIMITS = Limits(max_bytes=1_000_000, max_pixels=250_000)


def only_typed_errors(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a ``RemovalError`` is fine, anything else fails the test with what it was."""
    try:
        return fn()
    except RemovalError as exc:
        assert exc.message.strip()
        assert "Traceback" not in exc.message
        return exc


def _seed(fmt: str, mode: str = "RGB", **params: Any) -> bytes:
    im = Image.new(mode, (24, 16), 0)
    im.paste(200 if mode in ("L", "P") else (200, 120, 40)[: len(mode)], (4, 4, 16, 12))
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def _exif_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010E] = "description"
    return _seed("JPEG", exif=exif)


SEEDS = [
    _seed("PNG"),
    _seed("PNG", "P", transparency=0),
    _seed("PNG", "LA"),
    _seed("JPEG"),
    _exif_jpeg(),
    _seed("JPEG", "CMYK"),
    _seed("GIF", "P"),
    _seed("WEBP", lossless=True),
    _seed("BMP"),
    _seed("TIFF"),
    _seed("TIFF", compression="tiff_lzw"),
]


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80]))
        elif action == "truncate":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 32))]
    return bytes(data)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@st.composite
def png_headers(draw: st.DrawFn) -> bytes:
    """A well-formed PNG whose IHDR fields and IDAT are arbitrary."""
    ihdr = struct.pack(
        ">IIBBBBB",
        draw(st.integers(0, 2**31 - 1) | st.integers(0, 600)),
        draw(st.integers(0, 2**31 - 1) | st.integers(0, 600)),
        draw(st.sampled_from([1, 2, 4, 8, 16, 3, 0, 32])),
        draw(st.sampled_from([0, 2, 3, 4, 6, 1, 7])),
        draw(st.integers(0, 2)),
        draw(st.integers(0, 2)),
        draw(st.integers(0, 2)),
    )
    idat = zlib.compress(draw(st.binary(max_size=512)))
    extra = draw(st.lists(st.sampled_from([b"PLTE", b"tRNS", b"eXIf", b"iCCP", b"gAMA"]), max_size=3))
    chunks = b"".join(_chunk(kind, draw(st.binary(max_size=64))) for kind in extra)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + chunks + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _check_decoded(result: Any) -> None:
    if isinstance(result, Image.Image):
        assert result.mode in ("RGB", "RGBA")
        assert result.width * result.height <= LIMITS.max_pixels


@given(st.binary(max_size=2048))
def test_decode_arbitrary_bytes(data: bytes) -> None:
    _check_decoded(only_typed_errors(lambda: decode(data, LIMITS)))


@given(mutated_images())
def test_decode_mutated_images(data: bytes) -> None:
    _check_decoded(only_typed_errors(lambda: decode(data, LIMITS)))


@given(png_headers())
def test_decode_png_headers(data: bytes) -> None:
    _check_decoded(only_typed_errors(lambda: decode(data, LIMITS)))


ANY_VALUE = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=24)
    | st.lists(st.integers(-300, 300) | st.text(max_size=3), max_size=5)
    | st.tuples(st.integers(-1, 256), st.integers(-1, 256), st.integers(-1, 256))
)
OPTION_FIELDS = [
    "output_format", "quality", "only_mask", "bgcolor", "crop", "crop_margin", "alpha_matting",
    "alpha_matting_foreground_threshold", "alpha_matting_background_threshold", "alpha_matting_erode_size",
    "post_process_mask",
]  # fmt: skip


@given(st.dictionaries(st.sampled_from(OPTION_FIELDS), ANY_VALUE, max_size=6))
def test_options_validated(values: dict[str, Any]) -> None:
    result = only_typed_errors(lambda: RemovalOptions(**values).validated())
    if isinstance(result, RemovalOptions):
        assert result.output_format in ("png", "webp", "jpeg")
        assert result.bgcolor is None or (len(result.bgcolor) == 4 and all(0 <= c <= 255 for c in result.bgcolor))


COLOUR_TEXT = st.text(max_size=30) | st.from_regex(
    r"\A(#[0-9a-fA-F]{0,10}|rgba?\([-0-9., /e]{0,30}\)|[-0-9 ,]{0,20})\Z", fullmatch=True
)


@given(COLOUR_TEXT | ANY_VALUE)
def test_parse_color(value: Any) -> None:
    result = only_typed_errors(lambda: parse_color(value))
    if isinstance(result, tuple):
        assert len(result) == 4 and all(isinstance(c, int) and 0 <= c <= 255 for c in result)


@given(st.sampled_from(sorted(OPTIONS)), st.none() | st.text(max_size=40))
def test_rest_form_parsers(name: str, value: str | None) -> None:
    """REST sends every field as text (or leaves it out)."""
    result = only_typed_errors(lambda: RemovalOptions.from_values({name: value}).validated())
    assert isinstance(result, (RemovalOptions, RemovalError))


NUMBER = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**40), 2**40)


@given(
    st.text(max_size=12),
    NUMBER,
    st.booleans(),
    st.text(max_size=30),
    NUMBER,
    NUMBER,
    NUMBER,
    NUMBER,
)
def test_ui_widget_values(
    fmt: str, quality: Any, only_mask: bool, bgcolor: str, margin: Any, fg: Any, bg: Any, erode: Any
) -> None:
    """Gradio's widget values (floats, NaN, None, huge numbers) through ``from_values`` and validation."""

    def build() -> RemovalOptions:
        return RemovalOptions.from_values(
            {
                "model": "u2netp", "provider": "cpu", "output_format": fmt, "quality": quality,
                "only_mask": only_mask, "bgcolor": bgcolor, "crop_margin": margin, "alpha_matting": True,
                "alpha_matting_foreground_threshold": fg, "alpha_matting_background_threshold": bg,
                "alpha_matting_erode_size": erode,
            }
        ).validated()  # fmt: skip

    only_typed_errors(build)
