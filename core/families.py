"""Pre- and post-processing per model family: one small function pair each.

A registry entry names its family (``ModelSpec.family``); the pipeline calls the
family's ``prepare`` between decoding and inference and its ``finish`` between
inference and composition, so it stays the same for every model. A new family is a
registry entry plus a pair here. Each pair does what rembg 2.0.86's session class of
that family does (``rembg/sessions/*.py``); the tests run both on the same graph and compare.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from base.errors import InvalidOption, ModelNotAvailable
from core import imaging
from core.sessions import ModelSession
from models.registry import ModelSpec


@dataclass(frozen=True)
class Family:
    #: The decoded RGB(A) image -> the network input for it (a batch of one).
    prepare: Callable[[Image.Image, ModelSession], np.ndarray]
    #: The network's output 0 for one image (a batch of one), the image's size, the session and the
    #: request's ``extras`` -> an "L" mask of the image's size.
    finish: Callable[[np.ndarray, tuple[int, int], ModelSession, Mapping[str, Any]], Image.Image]


def _resize_normalise(im: Image.Image, session: ModelSession) -> np.ndarray:
    spec = session.spec
    if session.graphs is None:
        return imaging.to_tensor(im, spec.input_size, spec.mean, spec.std)
    return session.graphs.prepare(imaging.pixels(im if im.mode == "RGB" else im.convert("RGB")))


def _minmax_resize(
    prediction: np.ndarray, size: tuple[int, int], session: ModelSession, extras: Mapping[str, Any]
) -> Image.Image:
    if session.graphs is None:
        return imaging.to_mask(prediction, size)
    return imaging.from_array(session.graphs.finish(prediction, size), "L")


def _sigmoid_minmax_resize(
    prediction: np.ndarray, size: tuple[int, int], session: ModelSession, extras: Mapping[str, Any]
) -> Image.Image:
    """BiRefNet (``BiRefNetSessionGeneral``): the logits through a sigmoid, then as U²-Net's."""
    return imaging.to_mask(1 / (1 + np.exp(-prediction[:, :1])), size)


def _palette(lit: tuple[int, ...]) -> list[int]:
    """rembg's ``palette1..4``: black, with the classes in ``lit`` white (4 entries of RGB)."""
    return [channel for index in range(4) for channel in ((255,) * 3 if index in lit else (0,) * 3)]


#: ``Unet2ClothSession``'s categories: the classes of the argmax each one keeps (0 is background).
CLOTH_CLASSES: dict[str, tuple[int, ...]] = {"upper": (1,), "lower": (2,), "full": (3,), "attire": (1, 2, 3)}


def _cloth_mask(
    prediction: np.ndarray, size: tuple[int, int], session: ModelSession, extras: Mapping[str, Any]
) -> Image.Image:
    """u2net_cloth_seg: the class argmax, LANCZOS-resized as labels (as rembg does), one category's classes white.

    rembg returns the three categories upper, lower and full as three masks when ``cc`` is not
    given, and stacks their cutouts one above the other; one cutout per request here, so without
    ``cc`` the mask is ``attire`` (upper, lower and full together).
    """
    labels = np.argmax(prediction, axis=1, keepdims=True)[0, 0]
    mask = Image.fromarray(labels.astype("uint8"), mode="L").resize(size, Image.Resampling.LANCZOS)
    category = extras.get("cc") or extras.get("cloth_category") or "attire"
    mask.putpalette(_palette(CLOTH_CLASSES[category]))
    return mask.convert("RGB").convert("L")


FAMILIES: dict[str, Family] = {
    # U²-Net and IS-Net as rembg runs them: LANCZOS to the square input, scaled by the
    # image's maximum, normalised; the mask min-max scaled and LANCZOS back up. The
    # session's graphs run the same arithmetic on its provider (``core.graphs``).
    "u2net": Family(prepare=_resize_normalise, finish=_minmax_resize),
    # rembg's DisSession, BriaRmBgSession and BenCustomSession: the same two steps; only the
    # registry's data differ (1024², their mean and std).
    "isnet": Family(prepare=_resize_normalise, finish=_minmax_resize),
    "bria": Family(prepare=_resize_normalise, finish=_minmax_resize),
    "ben2": Family(prepare=_resize_normalise, finish=_minmax_resize),
    "birefnet": Family(prepare=_resize_normalise, finish=_sigmoid_minmax_resize),
    "u2net_cloth_seg": Family(prepare=_resize_normalise, finish=_cloth_mask),
}

#: Registry families that rembg runs and this service does not yet: sam needs two sessions
#: (an encoder and a decoder) per model, and the engine runs one.
NOT_HERE = {"sam": "it needs an encoder and a decoder session, and this service runs one session per model"}


def family_of(spec: ModelSpec) -> Family:
    family = FAMILIES.get(spec.family)
    if family is None:
        if spec.family in NOT_HERE:
            raise ModelNotAvailable(
                f"model {spec.name!r} is not available in this service: {NOT_HERE[spec.family]}; rembg runs it "
                f"(rembg i -m {spec.name})"
            )
        raise InvalidOption("model", f"{spec.name} needs processing family {spec.family!r}, which is not known here")
    return family
