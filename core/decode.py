"""Decoding any accepted input into an RGB or RGBA Pillow image, safely.

Inputs are identified by content, never by file name or declared type. Byte size
and pixel count are checked against the limits from the header, before any pixel
is decoded, so a 60000x60000 PNG header is refused without allocating it. The work
a header can ask for is bounded before it starts: progressive-JPEG scans are
counted (``MAX_JPEG_SCANS``), a TIFF tile must fit the pixel limit, a body too
short for the size its header declares is refused as truncated (PNG, and JPEG of
every kind, SOF0-SOF15), and only the first frame of a multi-page file is ever looked
at. What is left runs under a CPU-time budget (``Limits.budget_s``), checked at every
read Pillow makes and between steps.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from base.edges import cut
from base.errors import ImageTooComplex, ImageTooLarge, InvalidImage, UnsupportedFormat

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


#: Longest side accepted (JPEG's own ceiling is 65,500). Pillow works row by row, so a tall sliver
#: within the pixel limit (1x40,000,000) would take minutes in every step; none of our encoders but
#: PNG can even write a longer side.
MAX_SIDE = 65_535
#: Progressive-JPEG scans decoded at most. Each scan walks every block of its components again, so
#: a small file of thousands of near-empty scans costs minutes; real encoders write about ten.
#: nvImageCodec allows 256 (after the cure53 review of libjpeg-turbo); 256 empty scans of a 40 MP
#: image still take seconds (the bad-input catalogue builds such files).
MAX_JPEG_SCANS = 100
#: Bytes handed to a decoder per call, so that the budget is checked often (Pillow's default is 64 KiB).
_READ_BLOCK = 16 * 1024
#: Deflate's best ratio (258-byte matches in 2-bit codes): a PNG's pixel data cannot be shorter.
_DEFLATE_MAX_RATIO = 1032


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int
    #: CPU seconds (this thread's) one decode may take; past it, ``ImageTooComplex``.
    budget_s: float = math.inf


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if width <= 0 or height <= 0:
        raise InvalidImage(f"the image has no pixels ({width}x{height})")
    if width * height > limits.max_pixels:
        raise ImageTooLarge(f"the image is {width}x{height} pixels; the limit is {limits.max_pixels:,} pixels")
    if max(width, height) > MAX_SIDE:
        raise ImageTooLarge(f"the image is {width}x{height} pixels; a side may be at most {MAX_SIDE:,} pixels")


class _Budget:
    """This thread's CPU time since the decode started, against ``Limits.budget_s``."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.deadline = time.thread_time() + budget_s

    def check(self) -> None:
        if time.thread_time() > self.deadline:
            raise ImageTooComplex(f"decoding the image took more than its budget of {self.budget_s:g} CPU seconds")


class _BudgetedBytes(io.BytesIO):
    """The bytes Pillow reads from, checking the budget at every read (between decoder calls)."""

    def __init__(self, data: bytes, budget: _Budget) -> None:
        super().__init__(data)
        self.budget = budget

    def read(self, size: int | None = -1) -> bytes:
        self.budget.check()
        return super().read(size)


def _short(exc: BaseException) -> str:
    """A decoder's message, cut short: some quote the bytes they choked on."""
    return cut(str(exc) or type(exc).__name__)


# --- what a header asks for, checked before any pixel is decoded ------------------------------

#: SOF markers: frame headers of every JPEG process (C4 is DHT, C8 is reserved, CC is DAC).
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
#: Lossless frames (SOF3, SOF7, SOF11, SOF15) code every sample; the others code 8x8 blocks.
_LOSSLESS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})
_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
#: The next marker after entropy-coded data: 0xFF not followed by a stuffed 0x00 or a restart marker.
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _check_jpeg(data: bytes, limits: Limits) -> None:
    """Count the scans, and refuse a body too short for the blocks (or samples) its frame header declares.

    Every frame kind, SOF0 to SOF15, Huffman and arithmetic, DCT and lossless, is held to one
    bit of entropy-coded data per 8x8 block (per sample for lossless).
    """
    frame: tuple[int, int, int, list[tuple[int, int]]] | None = None  # marker, width, height, sampling
    scans = 0
    entropy = 0
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return  # out of step with the markers: Pillow will say what is wrong
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker == 0xD9:
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        body = data[i + 4 : i + 2 + length]
        if marker in _SOF and frame is None and len(body) >= 6:
            height, width, count = struct.unpack(">HHB", body[1:6])
            sampling = [(body[7 + 3 * c] >> 4, body[7 + 3 * c] & 15) for c in range(count) if 8 + 3 * c <= len(body)]
            frame = (marker, width, height, sampling)
        i += 2 + length
        if marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise ImageTooComplex(f"the JPEG has more than {MAX_JPEG_SCANS} scans; real encoders write about ten")
            found = _MARKER.search(data, i)
            end = found.start() if found else n
            entropy += end - i
            i = end
    if frame is None or scans == 0:
        return
    marker, width, height, sampling = frame
    if height:  # a size over the limits is that, before it is a truncated body
        _check_pixels(width, height, limits)
    if not sampling or height == 0 or not all(h and v for h, v in sampling):
        return
    h_max, v_max = max(h for h, _ in sampling), max(v for _, v in sampling)
    side = 1 if marker in _LOSSLESS else 8
    units = [
        math.ceil(math.ceil(width * h / h_max) / side) * math.ceil(math.ceil(height * v / v_max) / side)
        for h, v in sampling
    ]
    # One bit per unit at least: a Huffman code is never shorter (a block's DC difference, a lossless
    # sample's difference). An arithmetic coder can go below it on a flat image; such files are held
    # to the same floor, since no browser decodes them and from a few hundred bytes they expand to
    # the full canvas. A sequential frame codes every component, a progressive one might leave one out.
    needed = (min(units) if marker in _PROGRESSIVE else sum(units)) // 8
    if entropy < needed:
        raise InvalidImage(
            f"the image data is truncated: a {width}x{height} JPEG needs at least {needed:,} bytes "
            f"of image data, this one has {entropy:,}"
        )


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _check_png(data: bytes, limits: Limits) -> None:
    """Refuse pixel data (IDAT) too short to inflate to the size IHDR declares."""
    i, n = 8, len(data)
    header: tuple[int, int, int, int] | None = None
    idat = 0
    while i + 8 <= n:
        length, kind = struct.unpack(">I4s", data[i : i + 8])
        if kind == b"IHDR" and length >= 10 and i + 18 <= n:  # a cut-off IHDR is left to Pillow
            header = struct.unpack(">IIBB", data[i + 8 : i + 18])
        elif kind == b"IDAT":
            idat += length
        elif kind == b"IEND":
            break
        i += 12 + length
    if header is None:
        return
    width, height, depth, colour = header
    _check_pixels(width, height, limits)  # a size over the limits is that, before it is a truncated body
    if colour not in _PNG_CHANNELS:
        return
    raw = height * (1 + math.ceil(width * depth * _PNG_CHANNELS[colour] / 8))
    needed = raw // _DEFLATE_MAX_RATIO
    if idat < needed:
        raise InvalidImage(
            f"the image data is truncated: a {width}x{height} PNG needs at least {needed:,} bytes "
            f"of image data, this one has {idat:,}"
        )


def _check_bmp(data: bytes) -> None:
    """A BMP's width is signed in its header; Pillow reads it unsigned, as four billion."""
    if len(data) >= 26 and struct.unpack("<I", data[14:18])[0] >= 40:
        width, height = struct.unpack("<ii", data[18:26])
        if width <= 0 or height == 0:
            raise InvalidImage(f"the image has no pixels ({width}x{abs(height)})")


def _check_header(data: bytes, limits: Limits) -> None:
    if data[:3] == b"\xff\xd8\xff":
        _check_jpeg(data, limits)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        _check_png(data, limits)
    elif data[:2] == b"BM":
        _check_bmp(data)


def _check_tiles(im: Image.Image, limits: Limits) -> None:
    """A TIFF tile is allocated whole, whatever the image's size: bound it by the pixel limit too."""
    tags = getattr(im, "tag_v2", None)
    if tags is None:
        return
    tile_width, tile_height = tags.get(322), tags.get(323)  # TileWidth, TileLength
    if isinstance(tile_width, int) and isinstance(tile_height, int) and tile_width * tile_height > limits.max_pixels:
        raise ImageTooLarge(
            f"the image has {tile_width}x{tile_height}-pixel tiles; the limit is {limits.max_pixels:,} pixels"
        )


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


def _open(data: bytes, limits: Limits, budget: _Budget) -> Image.Image:
    _check_header(data, limits)
    try:
        with warnings.catch_warnings():
            # Pillow warns (and past 2x errors) on decompression bombs; our own limit is stricter.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(_BudgetedBytes(data, budget), formats=SUPPORTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(f"the image exceeds the limit of {limits.max_pixels:,} pixels") from None
    except UnidentifiedImageError:
        raise _unsupported_or_invalid(data) from None
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        raise InvalidImage(f"the image header is corrupt: {_short(exc)}") from None
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
    budget = _Budget(limits.budget_s)
    if isinstance(source, Image.Image):
        im = source
    else:
        im = _open(_read_bytes(source, limits), limits, budget)
    _check_pixels(im.width, im.height, limits)
    _check_tiles(im, limits)
    if isinstance(im, ImageFile.ImageFile) and isinstance(im.fp, _BudgetedBytes):
        im.decodermaxblock = _READ_BLOCK
    try:
        # Pillow opens a file at its first frame (animations, TIFF pages), and that is the one
        # decoded; ``n_frames`` is never asked, since a TIFF answers it by walking every page.
        im.load()
        budget.check()
        im = ImageOps.exif_transpose(im) or im
        budget.check()
        im = normalise_mode(im)
        budget.check()
        return im
    # Pillow's plugins also raise TypeError/KeyError/IndexError on corrupt data (a TIFF IFD
    # that lacks a tag); Image.open treats the same set as "not this format".
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, TypeError, KeyError, IndexError) as exc:
        raise InvalidImage(f"the image data is truncated or corrupt: {_short(exc)}") from None
