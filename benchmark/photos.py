"""The benchmark's inputs: one real photo cut to each size measured, as a quality-90 JPEG."""

from __future__ import annotations

import io

from PIL import Image

from base.assets import BENCHMARK_PHOTO

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}


def test_jpeg(size: str) -> bytes:
    """``BENCHMARK_PHOTO`` cut to the aspect of ``size`` and scaled to it, as a quality-90 JPEG."""
    width, height = SIZES[size]
    im = Image.open(BENCHMARK_PHOTO).convert("RGB")
    crop_h = min(im.height, im.width * height // width)
    top = (im.height - crop_h) // 2
    im = im.crop((0, top, im.width, top + crop_h)).resize((width, height), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()
