"""Pre- and post-processing per model family: one small function pair each.

A registry entry names its family (``ModelSpec.family``); the pipeline calls the
family's ``prepare`` between decoding and inference and its ``finish`` between
inference and composition, so it stays the same for every model. A new family is a
registry entry plus a pair here. Each pair does what rembg 2.0.86's session class of
that family does (``rembg/sessions/*.py``); the tests run both on the same graph and compare.

Two families need a little more, declared on their ``Family``: sam runs its own inference
(``infer``: the encoder, then the decoder with the request's prompt, both sessions of one
``ModelSession``), and u2net_cloth_seg without ``cc`` gives three masks whose cutouts the
pipeline stacks as rembg's ``remove()`` does (``stacks``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from base.errors import InvalidOption
from core import imaging
from core.sessions import ModelSession
from models.registry import ModelSpec


def _one_mask(extras: Mapping[str, Any]) -> bool:
    return False


def _nothing_more(extras: Mapping[str, Any]) -> int:
    return 0


@dataclass(frozen=True)
class Family:
    #: The decoded RGB(A) image -> the network input for it (a batch of one).
    prepare: Callable[[Image.Image, ModelSession], np.ndarray]
    #: The network's output 0 for one image (a batch of one), the image's size, the session and the
    #: request's ``extras`` -> an "L" mask of the image's size; or several, top to bottom, where
    #: ``stacks`` says so for these extras.
    finish: Callable[[np.ndarray, tuple[int, int], ModelSession, Mapping[str, Any]], Image.Image | list[Image.Image]]
    #: A family that runs its own inference over the session's networks (``ModelSession.run_feeds``: the
    #: model's file, then its companions): the prepared input, the image's size, the session and the extras
    #: -> what ``finish`` takes. None: the session's one network, batched where it can be (``ModelSession.infer``).
    infer: Callable[[np.ndarray, tuple[int, int], ModelSession, Mapping[str, Any]], np.ndarray] | None = None
    #: Whether ``finish`` gives several masks for these extras, each composed into a cutout and the
    #: cutouts stacked top to bottom (rembg's ``remove()`` with ``get_concat_v_multi``).
    stacks: Callable[[Mapping[str, Any]], bool] = _one_mask
    #: The extras -> bytes per input pixel that the family's own steps hold at their peak beyond the
    #: pipeline's (``core.budget.request_cost`` adds them).
    bytes_per_pixel: Callable[[Mapping[str, Any]], int] = _nothing_more


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


#: What ``Unet2ClothSession`` returns without a category: three masks, in this order.
CLOTH_STACK = ("upper", "lower", "full")


def _cloth_category(extras: Mapping[str, Any]) -> str | None:
    category = extras.get("cc") or extras.get("cloth_category")
    return None if category is None else str(category)


def _cloth_masks(
    prediction: np.ndarray, size: tuple[int, int], session: ModelSession, extras: Mapping[str, Any]
) -> Image.Image | list[Image.Image]:
    """u2net_cloth_seg: the class argmax, LANCZOS-resized as labels (as rembg does), one category's classes white.

    With ``cc``, that category's mask; without, rembg's three (upper, lower, full), whose cutouts
    the pipeline stacks one above the other as rembg's ``remove()`` does.
    """
    labels = np.argmax(prediction, axis=1, keepdims=True)[0, 0]
    mask = Image.fromarray(labels.astype("uint8"), mode="L").resize(size, Image.Resampling.LANCZOS)
    category = _cloth_category(extras)

    def lit(name: str) -> Image.Image:
        one = mask.copy()
        one.putpalette(_palette(CLOTH_CLASSES[name]))
        return one.convert("RGB").convert("L")

    return lit(category) if category is not None else [lit(name) for name in CLOTH_STACK]


#: rembg's ``SamSession.predict``: the image is scaled into this (height, width) frame, top-left,
#: the rest black; the decoder's masks come back at it (``orig_im_size``); points are given to
#: ``apply_coords`` for a long side of ``SAM_TARGET``.
SAM_INPUT = (684, 1024)
SAM_TARGET = 1024
#: What a family's own steps hold per input pixel beyond the pipeline's one mask and cutout
#: (``Family.bytes_per_pixel``). Measured on a 12 MP image (the families' stand-in graphs of the
#: tests), the process's peak grew by 63 bytes per pixel with sam and a
#: decoder of one mask (rembg's ``transform_masks`` warps each mask back at float64 over int64
#: and float64 grids), 60 with u2net_cloth_seg's three stacked cutouts, and 18 with one cutout.
#: SAM's decoder gives up to four masks, and each one more keeps 4 bytes per pixel.
SAM_BYTES_PER_PIXEL = 45 + 3 * 4
CLOTH_STACK_BYTES_PER_PIXEL = 42


def _sam_matrix(size: tuple[int, int]) -> np.ndarray:
    """rembg's ``transform_matrix``: a scale that fits the image into ``SAM_INPUT``."""
    width, height = size
    scale = min(SAM_INPUT[1] / width, SAM_INPUT[0] / height)
    return np.array([[scale, 0, 0], [0, scale, 0], [0, 0, 1]])


def _sam_prepare(im: Image.Image, session: ModelSession) -> np.ndarray:
    """The encoder's input: the RGB pixels warped into the 684x1024 frame, as float32 HxWx3. rembg
    2.0.86's ``predict`` feeds them to the encoder file as they are: no mean, std or padding of its own."""
    from rembg.sessions.sam import warp_affine  # scipy's map_coordinates, rembg's own arithmetic

    pixels = np.array(im.convert("RGB"))
    warped: np.ndarray = warp_affine(pixels, _sam_matrix(im.size)[:2], SAM_INPUT)
    return warped.astype(np.float32)


def sam_prompt(extras: Mapping[str, Any], size: tuple[int, int]) -> list[dict[str, Any]]:
    """The request's ``sam_prompt`` (``core.options`` has checked it), or rembg's default: one
    foreground point at the image's centre."""
    prompt = extras.get("sam_prompt")
    if prompt is not None:
        return list(prompt)
    return [{"type": "point", "label": 1, "data": [int(size[0] / 2), int(size[1] / 2)]}]


def _sam_infer(
    tensor: np.ndarray, size: tuple[int, int], session: ModelSession, extras: Mapping[str, Any]
) -> np.ndarray:
    """The encoder on the image, then the decoder on its embedding with the prompt; the decoder's masks."""
    from rembg.sessions.sam import apply_coords, get_input_points

    [embedding, *_] = session.run_feeds({session.input_name: tensor})
    points, labels = get_input_points(sam_prompt(extras, size))
    coords = np.concatenate([points, np.array([[0.0, 0.0]])], axis=0)[None, :, :]
    point_labels = np.concatenate([labels, np.array([-1])], axis=0)[None, :].astype(np.float32)
    coords = apply_coords(coords, SAM_INPUT, SAM_TARGET).astype(np.float32)
    coords = np.concatenate([coords, np.ones((1, coords.shape[1], 1), dtype=np.float32)], axis=2)
    coords = np.matmul(coords, _sam_matrix(size).T)[:, :, :2].astype(np.float32)
    masks, *_ = session.run_feeds(
        {
            "image_embeddings": embedding,
            "point_coords": coords,
            "point_labels": point_labels,
            "mask_input": np.zeros((1, 1, 256, 256), dtype=np.float32),
            "has_mask_input": np.zeros(1, dtype=np.float32),
            "orig_im_size": np.array(SAM_INPUT, dtype=np.float32),
        },
        part=1,
    )
    return np.asarray(masks)


def _sam_mask(
    masks: np.ndarray, size: tuple[int, int], session: ModelSession, extras: Mapping[str, Any]
) -> Image.Image:
    """The decoder's masks warped back to the image's size; white wherever any is above 0 (rembg's union)."""
    from rembg.sessions.sam import transform_masks

    width, height = size
    back = transform_masks(masks, (height, width), np.linalg.inv(_sam_matrix(size)))
    mask = np.zeros((back.shape[2], back.shape[3], 3), dtype=np.uint8)
    for m in back[0, :, :, :]:
        mask[m > 0.0] = [255, 255, 255]
    return Image.fromarray(mask).convert("L")


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
    # Without cc: three masks, their cutouts and the stack.
    "u2net_cloth_seg": Family(
        prepare=_resize_normalise,
        finish=_cloth_masks,
        stacks=lambda extras: _cloth_category(extras) is None,
        bytes_per_pixel=lambda extras: CLOTH_STACK_BYTES_PER_PIXEL if _cloth_category(extras) is None else 0,
    ),
    # rembg's SamSession: an encoder and a decoder file (the registry's ``companions``), prompted.
    "sam": Family(
        prepare=_sam_prepare, finish=_sam_mask, infer=_sam_infer, bytes_per_pixel=lambda extras: SAM_BYTES_PER_PIXEL
    ),
}


def family_of(spec: ModelSpec) -> Family:
    family = FAMILIES.get(spec.family)
    if family is None:
        raise InvalidOption("model", f"{spec.name} needs processing family {spec.family!r}, which is not known here")
    return family
