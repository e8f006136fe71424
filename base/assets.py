"""Where the product's own images are: example and benchmark photos, calibration images.

They are the product's (the WebUI's examples, the benchmark's photo, the variants'
calibration and evaluation sets); the tests use them too, never the other way round.
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
PHOTOS_DIR = ASSETS / "photos"
#: Images the int8 recipe calibrates on (see SOURCE.md there); none is an evaluation photo.
CALIBRATION_DIR = ASSETS / "calibration"
#: The photos built variants are checked against (and the tests' parity photos).
EVAL_PHOTOS = (
    "anime-girl-1.jpg",
    "car-1.jpg",
    "cloth-1.jpg",
    "plants-1.jpg",
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
)
#: The WebUI's examples.
EXAMPLE_PHOTOS = ("car-1.jpg", "anime-girl-1.jpg", "cloth-1.jpg", "chelsea.png")
#: The benchmark's photo, cut to each size it measures.
BENCHMARK_PHOTO = PHOTOS_DIR / "cloth-1.jpg"


def photo(name: str) -> Path:
    return PHOTOS_DIR / name
