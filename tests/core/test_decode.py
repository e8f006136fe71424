"""Unit tier: decoding every kind of input, good and bad, without the model."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from base.errors import ImageTooComplex, ImageTooLarge, InvalidImage, RemovalError, UnsupportedFormat
from core.decode import Limits, decode
from tests.conftest import PHOTOS_DIR, photo_bytes
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

LIMITS = Limits(max_bytes=5_000_000, max_pixels=4_000_000)
RGB = Image.new("RGB", (40, 30), (200, 100, 50))


def test_jpeg_png_webp_bmp_tiff_gif() -> None:
    for fmt in ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"):
        im = decode(encoded(RGB, fmt), LIMITS)
        assert im.size == (40, 30) and im.mode == "RGB", fmt


def test_by_content_not_name() -> None:
    im = decode(PHOTOS_DIR / "plants-1.jpg", LIMITS)  # a PNG named .jpg
    assert im.mode == "RGBA" and im.size == (987, 1481)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("L", "RGB"), ("LA", "RGBA"), ("CMYK", "RGB"), ("1", "RGB"), ("RGBA", "RGBA"), ("I;16", "RGB"), ("I", "RGB")],
)
def test_modes_normalised(mode: str, expected: str) -> None:
    im = Image.new(mode, (8, 8))
    fmt = "TIFF" if mode in ("CMYK", "I") else "PNG"
    assert decode(encoded(im, fmt), LIMITS).mode == expected


def test_16_bit_grey_is_scaled_not_clipped() -> None:
    arr = np.full((4, 4), 32768, dtype=np.uint16)
    im = decode(png_bytes(Image.fromarray(arr)), LIMITS)
    assert np.asarray(im)[0, 0, 0] == 127


def test_palette_with_transparency_keeps_alpha() -> None:
    p = Image.new("P", (4, 4), 1)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    assert decode(png_bytes(p, transparency=0), LIMITS).mode == "RGBA"


def test_animated_uses_first_frame() -> None:
    frames = [Image.new("RGB", (10, 10), (i * 20, 0, 0)) for i in range(10)]
    for fmt in ("GIF", "WEBP"):
        data = encoded(frames[0], fmt, save_all=True, append_images=frames[1:], lossless=True)
        im = decode(data, LIMITS)
        assert im.size == (10, 10) and np.asarray(im)[0, 0, 0] < 10, fmt


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientations(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    im = decode(encoded(Image.new("RGB", (40, 20)), "JPEG", exif=exif), LIMITS)
    assert im.size == ((40, 20) if orientation < 5 else (20, 40))


def test_numpy_and_pil_inputs() -> None:
    assert decode(np.zeros((5, 6, 3), np.uint8), LIMITS).size == (6, 5)
    assert decode(np.zeros((5, 6), np.uint8), LIMITS).mode == "RGB"
    assert decode(np.zeros((5, 6, 4), np.uint16), LIMITS).mode == "RGBA"
    assert decode(Image.new("LA", (3, 3)), LIMITS).mode == "RGBA"


def test_tiny_and_extreme_aspect() -> None:
    assert decode(png_bytes(Image.new("RGB", (1, 1))), LIMITS).size == (1, 1)
    assert decode(png_bytes(Image.new("RGB", (1, 10000))), LIMITS).size == (1, 10000)


HTML = b"<!doctype html><html><body>hi</body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", InvalidImage),
        (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), InvalidImage),
        (b"just some text, not an image", InvalidImage),
        (HTML, InvalidImage),
        (SVG, UnsupportedFormat),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", UnsupportedFormat),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", UnsupportedFormat),
        (b"PK\x03\x04" + b"\0" * 100, UnsupportedFormat),
        (encoded(Image.new("RGB", (16, 16)), "ICO"), UnsupportedFormat),
        (encoded(RGB, "JPEG")[:200], InvalidImage),
        (png_bytes(RGB)[:60], InvalidImage),
        (with_bad_crc(png_bytes(RGB)), InvalidImage),
        (png_header_only(0, 10), InvalidImage),
        (png_header_only(60000, 60000), ImageTooLarge),
        (png_header_only(2001, 2000), ImageTooLarge),
    ],
    ids=[
        "empty",
        "random",
        "text",
        "html",
        "svg-xml",
        "svg",
        "pdf",
        "zip",
        "ico",
        "truncated-jpeg",
        "truncated-png",
        "bad-crc",
        "zero-size",
        "bomb-60000",
        "just-over-limit",
    ],
)
def test_bad_input_is_a_typed_error(data: bytes, error: type[RemovalError]) -> None:
    with pytest.raises(error) as info:
        decode(data, LIMITS)
    assert info.value.message and "Traceback" not in info.value.message


def test_pixel_limit_just_under() -> None:
    assert decode(png_bytes(Image.new("L", (2000, 2000))), LIMITS).size == (2000, 2000)


def test_byte_limit() -> None:
    small = Limits(max_bytes=100, max_pixels=LIMITS.max_pixels)
    data = png_bytes(RGB)
    with pytest.raises(ImageTooLarge):
        decode(data, small)
    assert decode(data, Limits(len(data), LIMITS.max_pixels)).size == (40, 30)


def test_byte_limit_on_paths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x"
    path.write_bytes(photo_bytes("car-1.jpg"))
    with pytest.raises(ImageTooLarge):
        decode(path, Limits(max_bytes=1000, max_pixels=LIMITS.max_pixels))
    with pytest.raises(InvalidImage):
        decode(tmp_path / "missing", LIMITS)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((4,), np.uint8),
        np.zeros((4, 4, 3), np.float64),
        np.zeros((0, 4, 3), np.uint8),
    ],
    ids=["two-channels", "1d", "float", "empty"],
)
def test_bad_arrays(array: np.ndarray) -> None:
    with pytest.raises(InvalidImage):
        decode(array, LIMITS)


def test_unreadable_types() -> None:
    with pytest.raises(InvalidImage):
        decode(12345, LIMITS)
    with pytest.raises(InvalidImage):
        decode(io.BytesIO(b"x"), LIMITS)


# --- work a header asks for, bounded before decoding (issue: hardening) ---------------------------


def test_progressive_jpeg_scans_are_capped() -> None:
    from core.decode import MAX_JPEG_SCANS

    assert decode(grey_jpeg(64, 48, ac_scans=MAX_JPEG_SCANS - 1), LIMITS).size == (64, 48)
    with pytest.raises(ImageTooComplex, match="scans"):
        decode(grey_jpeg(64, 48, ac_scans=MAX_JPEG_SCANS + 1), LIMITS)


def test_a_jpeg_declaring_more_than_its_body_holds_is_truncated() -> None:
    assert decode(grey_jpeg(1000, 1000), LIMITS).size == (1000, 1000)  # the same header, whole: fine
    with pytest.raises(InvalidImage, match="truncated"):
        decode(grey_jpeg(1000, 1000, body=b"\0" * 500), LIMITS)


#: Every JPEG frame kind but baseline: extended, progressive, lossless; Huffman and arithmetic; hierarchical.
_OTHER_SOF = (0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)


@pytest.mark.parametrize("marker", _OTHER_SOF, ids=lambda m: f"SOF{m - 0xC0}")
def test_every_jpeg_kind_declaring_more_than_its_body_holds_is_refused(marker: int) -> None:
    """An arithmetic-coded (SOF9, 696 B) and a lossless (SOF3, 649 B) JPEG of 6000x6600 decoded whole."""
    with pytest.raises(InvalidImage, match="truncated"):
        decode(jpeg_kind(marker, 1000, 1000, body=b"\0" * 500), LIMITS)
    with pytest.raises(InvalidImage, match="truncated"):
        decode(jpeg_kind(marker, 6000, 6600, body=b"\0" * 600), Limits(max_bytes=5_000_000, max_pixels=40_000_000))


def test_a_whole_lossless_jpeg_is_decoded() -> None:
    """The floor for lossless frames is one bit per sample: a file that spends exactly that passes."""
    image = decode(jpeg_kind(0xC3, 1000, 1000), LIMITS)
    assert image.size == (1000, 1000)
    assert image.getpixel((500, 500)) == (128, 128, 128)


def test_a_png_declaring_more_than_its_body_holds_is_truncated() -> None:
    # 1000x1000 RGB inflates from at least 2.9 KB of deflate; 16 zero bytes cannot hold it
    with pytest.raises(InvalidImage, match="truncated"):
        decode(png_header_only(1000, 1000), LIMITS)


def test_bmp_with_negative_width_is_invalid_not_too_large() -> None:
    assert decode(bmp_with_width(16), LIMITS).size == (16, 16)
    with pytest.raises(InvalidImage):
        decode(bmp_with_width(-16), LIMITS)


def test_tiff_tiles_are_bounded_by_the_pixel_limit() -> None:
    small = Limits(max_bytes=LIMITS.max_bytes, max_pixels=1_000_000)
    with pytest.raises(ImageTooLarge, match="tiles"):
        decode(tiff_one_tile((16, 16), (1024, 1024)), small)


def test_tiff_pages_are_never_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """``n_frames`` walks every page (minutes for 200,000): the first page is decoded without asking."""
    from PIL import TiffImagePlugin

    def refuse(self: object) -> int:
        raise AssertionError("n_frames was asked")

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "n_frames", property(refuse))
    assert decode(tiff_pages(2000), LIMITS).size == (1, 1)


def test_a_side_longer_than_65535_is_too_large() -> None:
    from core.decode import MAX_SIDE

    tall = Limits(max_bytes=LIMITS.max_bytes, max_pixels=LIMITS.max_pixels)
    assert decode(png_bytes(Image.new("L", (1, MAX_SIDE))), tall).size == (1, MAX_SIDE)
    with pytest.raises(ImageTooLarge, match="side"):
        decode(png_bytes(Image.new("L", (1, MAX_SIDE + 1))), tall)


def test_decoding_past_its_budget_is_too_complex() -> None:
    data = photo_bytes("car-1.jpg")
    assert decode(data, Limits(LIMITS.max_bytes, LIMITS.max_pixels, budget_s=60)).size == (480, 360)
    with pytest.raises(ImageTooComplex, match="budget"):
        decode(data, Limits(LIMITS.max_bytes, LIMITS.max_pixels, budget_s=1e-9))


@pytest.mark.parametrize("cut", [12, 16, 20, 25])
def test_a_png_cut_off_inside_its_header_is_invalid(cut: int) -> None:
    """Found by the fuzzer: the truncated-body check read an IHDR cut off after its name (struct.error)."""
    data = png_bytes(Image.new("RGB", (8, 8), (1, 2, 3)))[:cut]
    with pytest.raises(InvalidImage):
        decode(data, Limits(1_000_000, 250_000))
