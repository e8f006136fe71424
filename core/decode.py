"""Decoding any accepted input into an RGB or RGBA Pillow image, safely.

Inputs are identified by content, never by file name or declared type. Byte size
and pixel count are checked against the limits from the header, before any pixel
is decoded, so a 60000x60000 PNG header is refused without allocating it.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from base.errors import ImageTooLarge, InvalidImage, UnsupportedFormat

#: Formats we decode (Pillow names). GIF and WebP animations use their first frame.
SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
#: File names taken as images where names decide (folders and zips of the batch command);
#: decoding is still by content.
INPUT_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})

#: Magic numbers of things people upload that are not raster images we accept.
_KNOWN_OTHER = (
    (b"%PDF", "PDF"),
    (b"PK\x03\x04", "ZIP"),
    (b"<svg", "SVG"),
    (b"<?xml", "SVG/XML"),
    (b"\x00\x00\x00\x0cjP", "JPEG 2000"),
)


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if width <= 0 or height <= 0:
        raise InvalidImage(f"the image has no pixels ({width}x{height})")
    if width * height > limits.max_pixels:
        raise ImageTooLarge(f"the image is {width}x{height} pixels; the limit is {limits.max_pixels:,} pixels")


def _read_bytes(source: Any, limits: Limits) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > limits.max_bytes:
                raise ImageTooLarge(f"the file is {size:,} bytes; the limit is {limits.max_bytes:,} bytes")
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidImage(f"cannot read the file: {exc.strerror or exc}") from None
    else:
        raise InvalidImage(f"cannot read an image from a {type(source).__name__}")
    if not data:
        raise InvalidImage("the input is empty")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"the input is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes")
    return data


def _unsupported_or_invalid(data: bytes) -> Exception:
    head = data[:512].lstrip()
    for magic, name in _KNOWN_OTHER:
        if head.startswith(magic) or (name == "SVG" and b"<svg" in head.lower()):
            return UnsupportedFormat(f"{name} is not supported; send PNG, JPEG, WebP, BMP, TIFF or GIF")
    try:  # another raster format Pillow knows but we do not accept (ICO, PSD, ...)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fmt = Image.open(io.BytesIO(data)).format
        return UnsupportedFormat(f"{fmt} is not supported; send PNG, JPEG, WebP, BMP, TIFF or GIF")
    except Exception:  # noqa: BLE001 - any failure here just means "not an image"
        return InvalidImage("the input is not a recognisable image")


def _open(data: bytes, limits: Limits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow warns (and past 2x errors) on decompression bombs; our own limit is stricter.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(f"the image exceeds the limit of {limits.max_pixels:,} pixels") from None
    except UnidentifiedImageError:
        raise _unsupported_or_invalid(data) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"the image header is corrupt: {exc}") from None
    return im


def _to_8bit(im: Image.Image) -> Image.Image:
    """Scale 16-bit and 32-bit grey images to 8 bits (Pillow's convert would clip)."""
    arr = np.asarray(im)
    if im.mode == "F":
        arr = np.clip(arr, 0.0, 1.0 if arr.max() <= 1.0 else 255.0)
        peak = 1.0 if arr.max() <= 1.0 else 255.0
        return Image.fromarray((arr * (255.0 / peak)).astype(np.uint8), "L")
    peak = 65535 if arr.max() > 255 else 255
    return Image.fromarray((arr.astype(np.uint32) * 255 // peak).astype(np.uint8), "L")


def normalise_mode(im: Image.Image) -> Image.Image:
    """RGB, or RGBA where the input carries transparency."""
    if im.mode in ("RGB", "RGBA"):
        return im
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _to_8bit(im).convert("RGB")
    if im.mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("LA", "PA", "RGBa", "La"):
        return im.convert("RGBA")
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _from_array(arr: np.ndarray, limits: Limits) -> Image.Image:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InvalidImage(f"an array image must be HxW, HxWx3 or HxWx4, not {arr.shape}")
    _check_pixels(arr.shape[1], arr.shape[0], limits)
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise InvalidImage(f"an array image must be uint8 or uint16, not {arr.dtype}")
    mode = "L" if arr.ndim == 2 else {3: "RGB", 4: "RGBA"}[arr.shape[2]]
    return normalise_mode(Image.fromarray(np.ascontiguousarray(arr), mode))


def decode(source: Any, limits: Limits) -> Image.Image:
    """Any accepted input -> a loaded RGB/RGBA image, EXIF orientation applied.

    Accepts bytes, a path, a Pillow image or a numpy array. Raises ``InvalidImage``,
    ``UnsupportedFormat`` or ``ImageTooLarge``; never anything else for bad data.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source, limits)
    if isinstance(source, Image.Image):
        im = source
    else:
        im = _open(_read_bytes(source, limits), limits)
    _check_pixels(im.width, im.height, limits)
    try:
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)  # animations: the first frame only
        im.load()
        im = ImageOps.exif_transpose(im) or im
        return normalise_mode(im)
    # Pillow's plugins also raise TypeError/KeyError/IndexError on corrupt data (a TIFF whose
    # next IFD lacks its dimensions: TypeError from n_frames); Image.open treats the same set as
    # "not this format".
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, TypeError, KeyError, IndexError) as exc:
        raise InvalidImage(f"the image data is truncated or corrupt: {exc}") from None
