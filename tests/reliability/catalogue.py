"""The bad-input catalogue: one list of cases, built in code, shared by every path that takes an image.

Each case is bytes (with the file name it is sent under), options as an edge sends
them (``RemovalOptions.from_values`` reads them on every path) and what must happen:
success (with the output's size) or one typed error (``base.errors`` class), within
``budget_s`` seconds (plus 1 s, measured by ``python -m tests.reliability.figures``).
Most cases probe the small limits of ``LIMIT_FLAGS``, given to the launched server
and to the library engine alike; the ``shipped`` ones need the shipped limits (32 MiB,
40 MP) to reproduce what a real server met (``SHIPPED_FLAGS``).
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from base.errors import (
    ImageTooComplex,
    ImageTooLarge,
    InvalidImage,
    InvalidOption,
    RemovalError,
    UnsupportedFormat,
)
from tests.core.helpers import (
    bmp_with_width,
    encoded,
    grey_jpeg,
    jpeg_kind,
    png_bytes,
    png_header_only,
    tiff_one_tile,
    tiff_pages,
    with_bad_crc,
)

MAX_BYTES = 2_000_000
MAX_PIXELS = 1_000_000
#: Small limits, so that "just under" and "just over" stay cheap; u2netp unless a case names a model.
LIMIT_FLAGS = (
    "--max-upload-bytes",
    str(MAX_BYTES),
    "--max-pixels",
    str(MAX_PIXELS),
    "--default-model",
    "u2netp",
    "--default-provider",
    "cpu",
    "--no-fetch-missing",
)
#: The shipped limits, with the small model, for the cases that reproduce the attacks on a real server.
SHIPPED_FLAGS = ("--default-model", "u2netp", "--default-provider", "cpu", "--no-fetch-missing")


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes
    filename: str = "upload.png"
    options: dict[str, Any] = field(default_factory=dict)
    #: None: must succeed; else the typed error every path must report.
    error: type[RemovalError] | None = None
    #: The output's (width, height) on success.
    size: tuple[int, int] | None = None
    #: Seconds one request of the case may take on any path (the figures allow 1 s more).
    budget_s: float = 1.0
    #: ``small``: ``LIMIT_FLAGS``; ``shipped``: ``SHIPPED_FLAGS``.
    limits: str = "small"


def _noise(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _photo_like(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """A small image with a bright square on a dark ground (something to cut out)."""
    im = Image.new("RGB", size, (20, 30, 40))
    w, h = size
    im.paste((230, 200, 60), (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    return im.convert(mode)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_rgb16(width: int, height: int) -> bytes:
    """A real 16-bit-per-channel RGB PNG (Pillow cannot write one)."""
    row = b"\0" + b"".join(struct.pack(">HHH", x * 1000 % 65536, 30000, 65535 - x * 500 % 65536) for x in range(width))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(row * height))
        + _chunk(b"IEND", b"")
    )


def png_with_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    """Insert a chunk right after IHDR (8-byte signature + 25-byte IHDR chunk)."""
    return png[:33] + _chunk(kind, body) + png[33:]


def padded(data: bytes, total: int) -> bytes:
    """A valid image followed by junk after its end marker, ``total`` bytes in all."""
    return data + b"\0" * (total - len(data))


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner.png", png_bytes(_photo_like()))
    return buf.getvalue()


def animated_gif(frames: int) -> bytes:
    images = [_photo_like((48, 48)).quantize(16).point(lambda v, i=i: (v + i) % 16) for i in range(frames)]
    return encoded(images[0], "GIF", save_all=True, append_images=images[1:], duration=20, loop=0)


def animated_webp(frames: int) -> bytes:
    images = [Image.new("RGB", (48, 48), (i * 5 % 256, 100, 50)) for i in range(frames)]
    return encoded(images[0], "WEBP", save_all=True, append_images=images[1:], lossless=True)


def exif_jpeg(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(_photo_like((64, 32)), "JPEG", exif=exif)


def huge_exif_jpeg() -> bytes:
    """An APP1 segment near its 64 KiB ceiling: a 60 000-character ImageDescription and orientation 6."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010E] = "x" * 60_000
    return encoded(_photo_like((64, 32)), "JPEG", exif=exif)


def garbage_exif_png() -> bytes:
    """A PNG with an ``eXIf`` chunk that claims TIFF but is 1.5 MB of noise."""
    return png_with_chunk(png_bytes(_photo_like()), b"eXIf", b"MM\x00\x2a\x00\x00\x00\x08" + _noise(1_500_000, 3))


def huge_icc(fmt: str) -> bytes:
    """A 1 MB random "ICC profile" (JPEG splits it over many APP2 segments)."""
    return encoded(_photo_like(), fmt, icc_profile=_noise(1_000_000, 4))


def palette_with_transparency() -> bytes:
    p = _photo_like().quantize(8)
    return png_bytes(p, transparency=0)


def tiff_second_page_without_size() -> bytes:
    """A two-page TIFF whose second IFD lost its width and height tags (Pillow: TypeError in ``n_frames``)."""
    page = _photo_like((24, 16))
    data = bytearray(encoded(page, "TIFF", save_all=True, append_images=[page]))
    first = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[first : first + 2])[0]
    second = struct.unpack("<I", data[first + 2 + 12 * count : first + 6 + 12 * count])[0]
    for i in range(struct.unpack("<H", data[second : second + 2])[0]):
        at = second + 2 + 12 * i
        tag = struct.unpack("<H", data[at : at + 2])[0]
        if tag in (256, 257):  # ImageWidth, ImageLength -> unknown private tags
            data[at : at + 2] = struct.pack("<H", 65000 + tag - 256)
    return bytes(data)


def truncated_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def tall_png(width: int, height: int) -> bytes:
    """A flat grey 8-bit PNG written row by row (Pillow would hold it whole): 1x40,000,000 is 155 KB."""
    row = b"\0" + b"\x80" * width
    deflate = zlib.compressobj(9)
    rows_per_piece = max(1, (1 << 20) // len(row))
    parts = []
    for start in range(0, height, rows_per_piece):
        parts.append(deflate.compress(row * min(rows_per_piece, height - start)))
    parts.append(deflate.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def photo_jpeg(size: tuple[int, int]) -> bytes:
    """A real photo (cloth-1.jpg: a person on a plain ground) scaled to ``size``: something to matte."""
    from base.assets import photo

    with Image.open(photo("cloth-1.jpg")) as im:
        return encoded(im.convert("RGB").resize(size, Image.Resampling.BILINEAR), "JPEG", quality=85)


HTML = b"<!doctype html><html><head><title>x</title></head><body><img src=x onerror=alert(1)></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
NOISY_JPEG = encoded(Image.frombytes("RGB", (128, 96), _noise(128 * 96 * 3, 1)), "JPEG", quality=95)
NOISY_PNG = png_bytes(Image.frombytes("RGB", (128, 96), _noise(128 * 96 * 3, 2)))
GOOD_PNG = png_bytes(_photo_like())


def _cases() -> list[Case]:
    side = int(MAX_PIXELS**0.5)  # 1000: exactly at the pixel limit
    cases = [
        # not images at all
        Case("empty", b"", error=InvalidImage),
        Case("random-bytes", _noise(4096), error=InvalidImage),
        Case("text-named-png", b"just some text, not an image\n" * 20, error=InvalidImage),
        Case("html-named-png", HTML, error=InvalidImage),
        Case("svg-named-png", SVG, error=UnsupportedFormat),
        Case("pdf-named-png", PDF, error=UnsupportedFormat),
        Case("zip-named-png", zip_bytes(), error=UnsupportedFormat),
        Case("ico-named-png", encoded(_photo_like((32, 32)), "ICO"), error=UnsupportedFormat),
        # broken images
        Case("truncated-jpeg-header", NOISY_JPEG[:200], "t.jpg", error=InvalidImage),
        Case("truncated-jpeg-half", truncated_half(NOISY_JPEG), "t.jpg", error=InvalidImage),
        Case("truncated-png-header", NOISY_PNG[:60], error=InvalidImage),
        Case("truncated-png-half", truncated_half(NOISY_PNG), error=InvalidImage),
        Case("png-bad-crc", with_bad_crc(GOOD_PNG), error=InvalidImage),
        # only the first page is decoded: a broken second page does not matter (it did, through n_frames)
        Case("tiff-page-2-without-size", tiff_second_page_without_size(), "t.tif", size=(24, 16)),
        # sizes and limits
        Case("header-60000x60000", png_header_only(60000, 60000), error=ImageTooLarge),
        Case("header-0x10", png_header_only(0, 10), error=InvalidImage),
        Case("header-10x0", png_header_only(10, 0), error=InvalidImage),
        Case("pixels-just-over", png_header_only(side + 1, side), error=ImageTooLarge),
        Case("pixels-at-limit", png_bytes(Image.new("RGB", (side, side), (90, 90, 90))), size=(side, side)),
        Case("bytes-at-limit", padded(GOOD_PNG, MAX_BYTES), size=(64, 48)),
        Case("bytes-just-over", padded(GOOD_PNG, MAX_BYTES + 1), error=ImageTooLarge),
        Case("1x1", png_bytes(Image.new("RGB", (1, 1), (255, 0, 0))), size=(1, 1)),
        Case("1x10000", png_bytes(_photo_like((1, 10000))), size=(1, 10000)),
        Case("10000x1", png_bytes(_photo_like((10000, 1))), size=(10000, 1)),
        # modes and depths: valid images that must succeed
        Case("rgb-16-bit", png_rgb16(64, 48), size=(64, 48)),
        Case(
            "grey-I;16",
            png_bytes(_photo_like().convert("L").point(lambda v: v * 256, "I").convert("I;16")),
            size=(64, 48),
        ),
        Case("cmyk-jpeg", encoded(_photo_like(mode="CMYK"), "JPEG"), "c.jpg", size=(64, 48)),
        Case("cmyk-tiff", encoded(_photo_like(mode="CMYK"), "TIFF"), "c.tif", size=(64, 48)),
        Case("palette-transparency", palette_with_transparency(), size=(64, 48)),
        Case("LA", png_bytes(_photo_like(mode="LA")), size=(64, 48)),
        Case("gif-300-frames", animated_gif(300), "a.gif", size=(48, 48)),
        Case("webp-60-frames", animated_webp(60), "a.webp", size=(48, 48)),
        *(
            Case(f"exif-orientation-{o}", exif_jpeg(o), "e.jpg", size=(64, 32) if o < 5 else (32, 64))
            for o in range(1, 9)
        ),
        Case("exif-60k-jpeg", huge_exif_jpeg(), "e.jpg", size=(32, 64)),
        Case("exif-garbage-1.5MB-png", garbage_exif_png(), size=(64, 48)),
        Case("icc-1MB-jpeg", huge_icc("JPEG"), "i.jpg", size=(64, 48)),
        Case("icc-1MB-png", huge_icc("PNG"), size=(64, 48)),
        # option errors on a good image
        Case("model-etc-passwd", GOOD_PNG, options={"model": "../../etc/passwd"}, error=InvalidOption),
        Case("model-absolute", GOOD_PNG, options={"model": "/etc/passwd"}, error=InvalidOption),
        Case("model-with-path", GOOD_PNG, options={"model": "u2netp/../u2net"}, error=InvalidOption),
        Case("model-unknown", GOOD_PNG, options={"model": "nonexistent"}, error=InvalidOption),
        Case(
            "af-minus-1",
            GOOD_PNG,
            options={"alpha_matting": True, "alpha_matting_foreground_threshold": -1},
            error=InvalidOption,
        ),
        Case("bgc-300", GOOD_PNG, options={"bgcolor": "300,0,0"}, error=InvalidOption),
        Case("format-exe", GOOD_PNG, options={"output_format": "exe"}, error=InvalidOption),
        Case("provider-path", GOOD_PNG, options={"provider": "../cpu"}, error=InvalidOption),
        *_hardening_cases(),
        *_round3_cases(),
    ]
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert all(c.size is not None for c in cases if c.error is None), "every success names its output size"
    return cases


def _hardening_cases() -> list[Case]:
    """The attacks and accidents of the hardening issue, each row of its table that is an input.

    Rows 1, 2, 8 and 10 are not inputs (a body that never ends, an upload cut off, SIGTERM,
    corrupt weights): tests/reliability/test_guard.py and test_faults.py have them.
    """
    side = int(MAX_PIXELS**0.5)
    matte = {"alpha_matting": True}
    return [
        # row 3: a progressive JPEG of thousands of near-empty scans (49 s for 20,000 at 6000x6600)
        Case("jpeg-20000-scans", grey_jpeg(side, side, ac_scans=20_000), "p.jpg", error=ImageTooComplex),
        Case(
            "jpeg-6000x6600-20000-scans",
            grey_jpeg(6000, 6600, ac_scans=20_000),
            "p.jpg",
            error=ImageTooComplex,
            limits="shipped",
        ),
        # row 4: a TIFF of many pages (n_frames walked them all: 200,000 took minutes)
        Case("tiff-25000-pages", tiff_pages(25_000), "t.tif", size=(1, 1)),
        Case("tiff-200000-pages", tiff_pages(200_000), "t.tif", size=(1, 1), budget_s=2.0, limits="shipped"),
        # row 5: sizes an output format cannot hold (a 500 from WebP's and JPEG's own errors)
        Case(
            "webp-16384-wide",
            png_bytes(Image.new("RGB", (16_384, 61), (40, 90, 140))),
            options={"output_format": "webp"},
            error=InvalidOption,
        ),
        Case(
            "jpeg-65535-wide",
            png_bytes(Image.new("RGB", (65_535, 15), (40, 90, 140))),
            options={"output_format": "jpeg"},
            error=InvalidOption,
        ),
        Case(
            "panorama-20000x1125-webp",
            encoded(Image.new("RGB", (20_000, 1125), (40, 90, 140)), "JPEG"),
            "p.jpg",
            options={"output_format": "webp"},
            error=InvalidOption,
            limits="shipped",
        ),
        # row 6: a sliver within the pixel limit that Pillow works on row by row (an empty PNG, 20 s, 5.5 GB)
        Case("tall-1x65536", tall_png(1, 65_536), error=ImageTooLarge),
        Case("tall-1x40000000", tall_png(1, 40_000_000), error=ImageTooLarge, limits="shipped"),
        # row 7: alpha matting, bounded by matting_max_pixels (1080p took 22 s, 4K 127 s and 5.7 GB, 40 MP
        # a MemoryError)
        Case("matting-1000x1000", photo_jpeg((side, side)), "m.jpg", options=matte, size=(side, side), budget_s=15),
        Case("matting-erode-100", GOOD_PNG, options={**matte, "alpha_matting_erode_size": 100}, error=InvalidOption),
        Case(
            "matting-1080p",
            photo_jpeg((1920, 1080)),
            "m.jpg",
            options=matte,
            size=(1920, 1080),
            budget_s=15,
            limits="shipped",
        ),
        Case(
            "matting-4k",
            photo_jpeg((3840, 2160)),
            "m.jpg",
            options=matte,
            size=(3840, 2160),
            budget_s=20,
            limits="shipped",
        ),
        Case(
            "matting-6000x6600",
            photo_jpeg((6000, 6600)),
            "m.jpg",
            options=matte,
            size=(6000, 6600),
            budget_s=30,
            limits="shipped",
        ),
        # row 9: Gradio took "abc" for a number with a traceback, and "false" as true
        Case("quality-abc", GOOD_PNG, options={"quality": "abc"}, error=InvalidOption),
        Case("crop-false", GOOD_PNG, options={"crop": "false"}, size=(64, 48)),
        # row 11: a header that declares far more than the file holds (decoded as grey, +1 GB)
        Case("jpeg-declares-1000x1000", grey_jpeg(side, side, body=b"\0" * 500), "t.jpg", error=InvalidImage),
        Case(
            "jpeg-declares-6000x6600",
            grey_jpeg(6000, 6600, body=b"\0" * 600),
            "t.jpg",
            error=InvalidImage,
            limits="shipped",
        ),
        Case("png-declares-1000x1000", png_header_only(side, side), error=InvalidImage),
        # row 12: one TIFF tile larger than the pixel limit (+1 GB before the 400)
        Case("tiff-tile-1024x1024", tiff_one_tile((16, 16), (1024, 1024)), "t.tif", error=ImageTooLarge),
        Case(
            "tiff-tile-32768x32768",
            tiff_one_tile((16, 16), (32_768, 32_768)),
            "t.tif",
            error=ImageTooLarge,
            limits="shipped",
        ),
        # the smaller items: a negative BMP width; a 1 MB option value echoed back whole
        Case("bmp-width-minus-16", bmp_with_width(-16), "b.bmp", error=InvalidImage),
        Case("bgc-1MB", GOOD_PNG, options={"bgcolor": "9" * 1_000_000}, error=InvalidOption),
    ]


def _round3_cases() -> list[Case]:
    """The inputs of the third hardening round (issue 25): tiny JPEGs of the other kinds declaring 40 MP."""
    side = int(MAX_PIXELS**0.5)
    return [
        # finding 7: arithmetic-coded (SOF9, 696 B) and lossless (SOF3, 649 B) JPEGs expanded to 6000x6600
        Case(
            "jpeg-sof9-declares-1000x1000", jpeg_kind(0xC9, side, side, body=b"\0" * 500), "a.jpg", error=InvalidImage
        ),
        Case(
            "jpeg-sof3-declares-1000x1000", jpeg_kind(0xC3, side, side, body=b"\0" * 500), "l.jpg", error=InvalidImage
        ),
        Case(
            "jpeg-sof9-declares-6000x6600",
            jpeg_kind(0xC9, 6000, 6600, body=b"\0" * 600),
            "a.jpg",
            error=InvalidImage,
            limits="shipped",
        ),
        Case(
            "jpeg-sof3-declares-6000x6600",
            jpeg_kind(0xC3, 6000, 6600, body=b"\0" * 600),
            "l.jpg",
            error=InvalidImage,
            limits="shipped",
        ),
        Case("jpeg-sof3-whole-1000x1000", jpeg_kind(0xC3, side, side), "l.jpg", size=(side, side), budget_s=3),
    ]


CASES = _cases()
SMALL = [c for c in CASES if c.limits == "small"]
SHIPPED = [c for c in CASES if c.limits == "shipped"]
