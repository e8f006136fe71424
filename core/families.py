"""Pre- and post-processing per model family: one small function pair each.

A registry entry names its family (``ModelSpec.family``); the pipeline calls the
family's ``prepare`` between decoding and inference and its ``finish`` between
inference and composition, so it stays the same for every model. A new family is a
registry entry plus a pair here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from base.errors import InvalidOption
from core import imaging
from core.sessions import ModelSession
from models.registry import ModelSpec


@dataclass(frozen=True)
class Family:
    #: The decoded RGB(A) image -> the network input for it (a batch of one).
    prepare: Callable[[Image.Image, ModelSession], np.ndarray]
    #: The network's output 0 for one image (a batch of one) -> an "L" mask of the image's size.
    finish: Callable[[np.ndarray, tuple[int, int], ModelSession], Image.Image]


def _resize_normalise(im: Image.Image, session: ModelSession) -> np.ndarray:
    spec = session.spec
    if session.graphs is None:
        return imaging.to_tensor(im, spec.input_size, spec.mean, spec.std)
    return session.graphs.prepare(imaging.pixels(im if im.mode == "RGB" else im.convert("RGB")))


def _minmax_resize(prediction: np.ndarray, size: tuple[int, int], session: ModelSession) -> Image.Image:
    if session.graphs is None:
        return imaging.to_mask(prediction, size)
    return imaging.from_array(session.graphs.finish(prediction, size), "L")


FAMILIES: dict[str, Family] = {
    # U²-Net and IS-Net as rembg runs them: LANCZOS to the square input, scaled by the
    # image's maximum, normalised; the mask min-max scaled and LANCZOS back up. The
    # session's graphs run the same arithmetic on its provider (``core.graphs``).
    "u2net": Family(prepare=_resize_normalise, finish=_minmax_resize),
}


def family_of(spec: ModelSpec) -> Family:
    family = FAMILIES.get(spec.family)
    if family is None:
        raise InvalidOption("model", f"{spec.name} needs processing family {spec.family!r}, which is not known here")
    return family
