"""Builders of awkward inputs for the decode and error tests."""

from __future__ import annotations

import io
import math
import struct
import zlib

from PIL import Image

from base.assets import PHOTOS_DIR


def png_bytes(image: Image.Image, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **params)
    return buf.getvalue()


def transparent_photo() -> bytes:
    """A real photo whose outside is transparent, with its colour still hidden under alpha 0."""
    im = Image.open(PHOTOS_DIR / "car-1.jpg").convert("RGBA")
    alpha = Image.new("L", im.size, 0)
    alpha.paste(255, (60, 60, 420, 300))
    im.putalpha(alpha)
    return png_bytes(im)


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width`` x ``height``, with a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 16)) + _chunk(b"IEND", b"")
    )


def with_bad_crc(png: bytes) -> bytes:
    """Flip one byte of the IHDR chunk's CRC (Pillow checks header CRCs, not IDAT's)."""
    at = png.index(b"IHDR")
    length = struct.unpack(">I", png[at - 4 : at])[0]
    crc_at = at + 4 + length
    return png[:crc_at] + bytes([png[crc_at] ^ 0xFF]) + png[crc_at + 1 :]


# --- files written by hand, byte by byte, where Pillow cannot write the awkward case ------------


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


class _Bits:
    """Entropy-coded bits, most significant first, with JPEG's 0xFF00 stuffing and 1-bit padding."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, count: int) -> None:
        for shift in range(count - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> shift) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc = self.n = 0

    def zeros(self, count: int) -> None:
        while count and self.n:
            self.put(0, 1)
            count -= 1
        self.out += bytes(count // 8)
        self.put(0, count % 8)

    def done(self) -> bytes:
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)
        return bytes(self.out)


def grey_jpeg(width: int, height: int, *, ac_scans: int = 0, body: bytes | None = None) -> bytes:
    """A flat grey 8-bit JPEG: baseline, or progressive with ``ac_scans`` identical AC scans.

    Every block costs the fewest bits a valid file can spend (1-bit DC codes; end-of-block
    runs), so a 6000x6600 progressive file of 20,000 scans stays near 1.5 MB. libjpeg
    decodes repeated scans with a warning, walking every block each time. ``body``
    replaces the first scan's data: a header that declares more than the file holds.
    """
    progressive = ac_scans > 0
    blocks = math.ceil(width / 8) * math.ceil(height / 8)
    out = b"\xff\xd8" + _segment(0xDB, b"\x00" + bytes([1] * 64))
    out += _segment(0xC2 if progressive else 0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    out += _segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")  # DC: difference 0 is '0'
    # AC: EOB, EOB1 ... EOB14 in 4-bit codes (EOBr: a run of 2^r + r more bits blocks)
    out += _segment(0xC4, b"\x10" + bytes([0, 0, 0, 15] + [0] * 12) + bytes(r << 4 for r in range(15)))
    if not progressive:
        bits = _Bits()
        bits.zeros(5 * blocks)  # DC '0' and EOB '0000' per block
        scan = bits.done() if body is None else body
        return out + _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + scan + b"\xff\xd9"
    dc = _Bits()
    dc.zeros(blocks)
    out += _segment(0xDA, b"\x01\x01\x00\x00\x00\x00") + (dc.done() if body is None else body)
    ac = _Bits()
    left = blocks
    while left:
        r = min(14, left.bit_length() - 1)
        run = min(left, (1 << (r + 1)) - 1)
        ac.put(r, 4)
        ac.put(run - (1 << r), r)
        left -= run
    scan = _segment(0xDA, b"\x01\x01\x00\x01\x3f\x00") + ac.done()
    return out + scan * ac_scans + b"\xff\xd9"


#: Lossless JPEG frames (SOF3, SOF7, SOF11, SOF15); the rest code DCT blocks.
LOSSLESS_SOF = (0xC3, 0xC7, 0xCB, 0xCF)


def jpeg_kind(marker: int, width: int, height: int, body: bytes | None = None) -> bytes:
    """A flat grey JPEG of frame kind ``marker`` (SOF0-SOF15) and one sequential scan of ``body``.

    Huffman frames get a DC table whose category 0 is the 1-bit code '0' (and an AC table of
    4-bit codes); arithmetic frames (SOF9 and up) use the default conditioning. Without
    ``body``, a lossless Huffman frame (SOF3) gets its whole scan: every sample grey 128,
    predicted exactly, one '0' bit each. Other kinds need ``body``.
    """
    lossless = marker in LOSSLESS_SOF
    arithmetic = marker >= 0xC9
    out = b"\xff\xd8"
    if not lossless:
        out += _segment(0xDB, b"\x00" + bytes([1] * 64))
    out += _segment(marker, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    if not arithmetic:
        out += _segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")
        if not lossless:
            out += _segment(0xC4, b"\x10" + bytes([0, 0, 0, 15] + [0] * 12) + bytes(r << 4 for r in range(15)))
    if body is None:
        if marker != 0xC3:
            raise ValueError("only a lossless Huffman frame is written whole")
        bits = _Bits()
        bits.zeros(width * height)
        body = bits.done()
    # predictor 1 for lossless, the whole spectrum for DCT
    scan = b"\x01\x01\x00" + (b"\x01\x00\x00" if lossless else b"\x00\x3f\x00")
    return out + _segment(0xDA, scan) + body + b"\xff\xd9"


def _ifd(entries: list[tuple[int, int, int]], next_offset: int) -> bytes:
    body = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        body += struct.pack("<HHI", tag, kind, 1) + packed
    return body + struct.pack("<I", next_offset)


def tiff_pages(pages: int) -> bytes:
    """A little-endian TIFF of ``pages`` 1x1 grey pages sharing one pixel (78 bytes a page)."""
    entries_size = 2 + 12 * 6 + 4
    parts = [b"II*\x00" + struct.pack("<I", 9) + b"\x80"]
    for p in range(pages):
        offset = 9 + p * entries_size
        following = offset + entries_size if p + 1 < pages else 0
        parts.append(_ifd([(256, 3, 1), (257, 3, 1), (258, 3, 8), (262, 3, 1), (273, 4, 8), (279, 4, 1)], following))
    return b"".join(parts)


def tiff_one_tile(size: tuple[int, int], tile: tuple[int, int]) -> bytes:
    """A grey TIFF of ``size`` stored as one deflate-compressed ``tile`` (libtiff allocates the tile whole)."""
    data = zlib.compress(b"\x80" * 16)
    entries = [
        (256, 4, size[0]),
        (257, 4, size[1]),
        (258, 3, 8),
        (259, 3, 8),
        (262, 3, 1),
        (322, 4, tile[0]),
        (323, 4, tile[1]),
        (324, 4, 8),
        (325, 4, len(data)),
    ]
    return b"II*\x00" + struct.pack("<I", 8 + len(data)) + data + _ifd(entries, 0)


def bmp_with_width(width: int, height: int = 16) -> bytes:
    """A 24-bit BMP whose header says ``width`` (signed: -16 is no width at all)."""
    row = (3 * abs(width) + 3) // 4 * 4
    pixels = b"\x40" * row * abs(height)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0, 14 + len(info)) + info + pixels
