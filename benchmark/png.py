"""PNG writers side by side on real cutouts: ``python -m benchmark png``.

The engine's own writer (``core.formats.encode_png``) against Pillow's at its fastest
and its default level, and against fpng where it is installed (the writer before it):
median milliseconds over ``--runs`` and the file size, on u2netp cutouts of the
benchmark photo at 1080p and 4K. Every file is decoded back and compared with the
cutout, so a writer that loses pixels fails instead of winning.

    python -m benchmark png [--runs 7]
"""

from __future__ import annotations

import argparse
import io
import statistics
from collections.abc import Callable

import numpy as np
from PIL import Image

from base.timing import Clock
from benchmark.photos import test_jpeg
from core import RemovalOptions, remove_background
from core.formats import encode_png

Writer = Callable[[Image.Image], bytes]


def _pillow(level: int) -> Writer:
    def write(im: Image.Image) -> bytes:
        buf = io.BytesIO()
        im.save(buf, "PNG", compress_level=level)
        return buf.getvalue()

    return write


def writers() -> dict[str, Writer]:
    found: dict[str, Writer] = {
        "ours (up filter + ISA-L level 1)": lambda im: encode_png(im, None),
        "Pillow, compress_level=1": _pillow(1),
        "Pillow's default (level 6)": _pillow(6),
    }
    try:
        import fpng  # not a dependency: measured where it is installed
    except ImportError:
        return found
    found["fpng"] = lambda im: bytes(fpng.from_ndarray(np.asarray(im)))
    return found


def measure(runs: int) -> list[tuple[str, str, float, int]]:
    """(size, writer, median ms, bytes) for each size and writer."""
    rows = []
    for size in ("1080p", "4K"):
        cutout = remove_background(test_jpeg(size), RemovalOptions(model="u2netp", provider="cpu")).image
        for name, write in writers().items():
            times = []
            for _ in range(runs):
                clock = Clock()
                data = write(cutout)
                times.append(clock.elapsed_ms())
            back = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
            if not np.array_equal(back, np.asarray(cutout)):
                raise AssertionError(f"{name} did not write the cutout's pixels")
            rows.append((size, name, statistics.median(times), len(data)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark png", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per writer (default 7)")
    args = parser.parse_args(argv)
    print("| size | writer | median ms | MB |")
    print("|---|---|---|---|")
    for size, name, ms, size_bytes in measure(args.runs):
        print(f"| {size} | {name} | {ms:.1f} | {size_bytes / 1e6:.2f} |")


if __name__ == "__main__":
    main()
