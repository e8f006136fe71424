"""The bad-input catalogue: one list of cases, built in code, shared by every path that takes an image.

Each case is bytes (with the file name it is sent under), engine-named options and
what must happen: success (with the expected output size) or one typed error
(``base.errors`` class). The limits the cases probe are ``LIMIT_FLAGS``, given to
the launched server and to the library engine alike.
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

from base.errors import ImageTooLarge, InvalidImage, InvalidOption, RemovalError, UnsupportedFormat
from tests.core.helpers import encoded, png_bytes, png_header_only, with_bad_crc

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


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes
    filename: str = "upload.png"
    options: dict[str, Any] = field(default_factory=dict)
    #: None: must succeed; else the typed error every path must report.
    error: type[RemovalError] | None = None
    #: The output's (width, height) on success, where it is known.
    size: tuple[int, int] | None = None


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
        Case("tiff-page-2-without-size", tiff_second_page_without_size(), "t.tif", error=InvalidImage),
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
    ]
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return cases


CASES = _cases()
