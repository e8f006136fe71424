"""Pixel work around the network: input tensor, mask, cutout, backgrounds, crop.

The resampling matches rembg exactly (Pillow LANCZOS, same arithmetic), so masks
equal ``rembg.remove()``'s; the large resizes are split into horizontal stripes
computed on all cores, which Pillow's box argument makes bit-identical to one call.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
from PIL import Image, ImageChops, ImageFilter, ImageOps

from base.cpu import physical_cores
from base.timing import Clock

log = logging.getLogger(__name__)

#: Below this many output pixels a single Pillow call beats the thread hand-off.
_STRIPE_MIN_PIXELS = 250_000
#: Alpha at or under this counts as background when cropping to the subject.
CROP_ALPHA_THRESHOLD = 10


#: Where ``from_array`` keeps, on the image, the array that holds its pixels.
_ARRAY = "_rembg_webui_array"


def from_array(arr: np.ndarray, mode: str) -> Image.Image:
    """A Pillow image over ``arr``'s memory (no copy); ``pixels`` gives the array back."""
    im = Image.frombuffer(mode, (arr.shape[1], arr.shape[0]), arr, "raw", mode, 0, 1)
    setattr(im, _ARRAY, (im.im, arr))
    return im


def pixels(im: Image.Image) -> np.ndarray:
    """``im``'s pixels as an array: the one it was made from where it still is, else a copy.

    ``np.asarray`` of a Pillow image copies every pixel while holding the GIL, which
    serialises concurrent requests on large images; an image ``from_array`` made skips that.
    """
    known: tuple[object, np.ndarray] | None = getattr(im, _ARRAY, None)
    if known is not None and known[0] is im.im:  # Pillow replaces ``im.im`` when it copies on write
        return known[1]
    return np.asarray(im)


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=physical_cores(), thread_name_prefix="resize")


# A forked child inherits the cached pool without its threads, and would wait on it for
# ever: it makes its own on first use instead.
os.register_at_fork(after_in_child=_pool.cache_clear)


def _stripe_bounds(src_rows: int, rows: int, parts: int) -> list[int]:
    """Row bounds near an even split where every bound maps to a whole source row.

    Only such bounds keep Pillow's filter centres, and so its output, bit-identical
    to one call; sizes with no such bound get a single stripe.
    """
    step = rows // math.gcd(src_rows, rows)
    inner = {round(rows * i / parts / step) * step for i in range(1, parts)}
    return [0, *sorted(b for b in inner if 0 < b < rows), rows]


def resize(
    im: Image.Image, size: tuple[int, int], resample: Image.Resampling = Image.Resampling.LANCZOS
) -> Image.Image:
    """``im.resize(size, resample)``, computed in row stripes on every core.

    Each stripe passes its source rows as ``box``; Pillow still reads the filter's
    support from outside the box, so the stripes join into the same pixels.
    """
    width, height = size
    parts = physical_cores()
    if parts < 2 or max(width * height, im.width * im.height) < _STRIPE_MIN_PIXELS:
        return im.resize(size, resample)
    bounds = _stripe_bounds(im.height, height, parts)
    if len(bounds) < 3:
        return im.resize(size, resample)
    futures = [
        _pool().submit(
            im.resize, (width, y1 - y0), resample, (0, y0 * im.height // height, im.width, y1 * im.height // height)
        )
        for y0, y1 in itertools.pairwise(bounds)
    ]
    out = Image.new(im.mode, size)
    for y0, future in zip(bounds, futures, strict=False):
        out.paste(future.result(), (0, y0))
    return out


def to_tensor(im: Image.Image, size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """The network input, exactly as rembg's ``BaseSession.normalize`` builds it."""
    rgb = im if im.mode == "RGB" else im.convert("RGB")
    arr = np.asarray(resize(rgb, (size, size)))
    x = arr / max(float(arr.max()), 1e-6)
    x = (x - np.asarray(mean)) / np.asarray(std)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))


def to_mask(prediction: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """Network output (1x1xSxS) -> an "L" mask of ``size``, as rembg's ``predict`` does."""
    pred = prediction[0, 0]
    lo, hi = pred.min(), pred.max()
    # rembg divides by (hi - lo) unguarded; a flat prediction means "no subject" here.
    pred = (pred - lo) / (hi - lo) if hi > lo else np.zeros_like(pred)
    small = Image.fromarray((pred.clip(0, 1) * 255).astype(np.uint8), "L")
    return resize(small, size)


def post_process_mask(mask: Image.Image) -> Image.Image:
    """rembg's morphological smoothing (opening, blur, threshold)."""
    from rembg.bg import post_process  # heavy import (scipy, skimage); only when asked

    return Image.fromarray(post_process(np.asarray(mask)))


#: Peak bytes per pixel of rembg's closed-form matting (pymatting's Laplacian, its preconditioner
#: and the foreground estimate): about 520 MiB per megapixel, measured at 0.3, 1 and 2 MP.
MATTING_BYTES_PER_PIXEL = 600
#: Bytes per full-size pixel that upsampling a smaller matte adds (alpha, colour, masks).
_UPSAMPLE_BYTES_PER_PIXEL = 12


def matting_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """The size alpha matting runs at: ``size``, or scaled down to ``max_pixels``."""
    width, height = size
    if width * height <= max_pixels:
        return size
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, int(width * scale)), max(1, int(height * scale))


def matting_bytes(size: tuple[int, int], max_pixels: int) -> int:
    """Memory alpha matting takes at its peak on an image of ``size`` (see ``alpha_matting``)."""
    work = matting_size(size, max_pixels)
    extra = 0 if work == size else size[0] * size[1] * _UPSAMPLE_BYTES_PER_PIXEL
    return work[0] * work[1] * MATTING_BYTES_PER_PIXEL + extra


def alpha_matting(
    im: Image.Image, mask: Image.Image, fg: int, bg: int, erode: int, max_pixels: int
) -> Image.Image | None:
    """rembg's closed-form alpha matting (RGBA), run on at most ``max_pixels``.

    Its time and memory grow with the pixels (``MATTING_BYTES_PER_PIXEL``; seconds per
    megapixel), so a larger image is matted downscaled, erosion scaled with it, and the
    matte is upsampled: the colour of partly transparent pixels is then matting's
    foreground estimate, upsampled, and the image's own elsewhere. None where the
    trimap is degenerate (rembg falls back to the plain mask too).
    """
    from rembg.bg import alpha_matting_cutout

    work = matting_size(im.size, max_pixels)
    scale = work[0] / im.width
    small_im, small_mask = (im, mask) if work == im.size else (resize(im, work), resize(mask, work))
    small_erode = erode if work == im.size else (max(1, round(erode * scale)) if erode else 0)
    try:
        matted: Image.Image = alpha_matting_cutout(small_im, small_mask, fg, bg, small_erode)
    except ValueError:
        return None
    if work == im.size:
        return matted
    del small_im, small_mask
    alpha = np.asarray(resize(matted.getchannel("A"), im.size, Image.Resampling.BILINEAR))
    out = np.array(im.convert("RGBA"))
    out[..., 3] = alpha
    edge = (alpha > 0) & (alpha < 255)
    if edge.any():
        foreground = np.asarray(resize(matted.convert("RGB"), im.size, Image.Resampling.BILINEAR))
        out[edge, :3] = foreground[edge]
        del foreground
    out[alpha == 0] = 0  # the hidden background is not kept in the file
    return Image.fromarray(out, "RGBA")


def cutout(im: Image.Image, mask: Image.Image, clear_hidden: bool = True) -> Image.Image:
    """RGBA with ``mask`` as (straight, not premultiplied) alpha.

    Colour stays intact on soft edges (rembg's naive cutout premultiplies it, which
    darkens edges). With ``clear_hidden``, pixels with zero alpha become transparent
    black so the removed background cannot be recovered from the file; outputs that
    discard hidden colour anyway (WebP, JPEG, a background) skip that pass.
    """
    if im.mode == "RGBA":
        alpha = ImageChops.multiply(im.getchannel("A"), mask)
        rgba = im.copy()
    else:
        alpha = mask
        rgba = im.convert("RGBA")
    rgba.putalpha(alpha)
    if not clear_hidden:
        return rgba
    # One 32-bit multiply per pixel by 0 or 1 (numpy runs it without the GIL).
    arr = np.array(rgba)
    words = arr.view(np.uint32)[..., 0]
    words *= arr[..., 3] != 0
    return from_array(arr, "RGBA")


def over_color(rgba: Image.Image, color: tuple[int, int, int, int]) -> Image.Image:
    return Image.alpha_composite(Image.new("RGBA", rgba.size, color), rgba)


def over_image(rgba: Image.Image, background: Image.Image) -> Image.Image:
    """Composite over ``background`` scaled to cover the cutout and centre-cropped."""
    fitted = ImageOps.fit(background.convert("RGBA"), rgba.size, Image.Resampling.LANCZOS)
    return Image.alpha_composite(fitted, rgba)


def subject_box(alpha: Image.Image, margin: int) -> tuple[int, int, int, int] | None:
    """Bounding box of the subject plus ``margin`` pixels, clamped; None when there is none."""
    box = alpha.point(lambda v: 255 if v > CROP_ALPHA_THRESHOLD else 0).getbbox()
    if box is None:
        return None
    left, top, right, bottom = box
    return (
        max(0, left - margin),
        max(0, top - margin),
        min(alpha.width, right + margin),
        min(alpha.height, bottom + margin),
    )


def mask_edit_layers(edit: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, Image.Image]:
    """A touch-up image as (target, weight), both "L" at ``size``.

    ``target`` is the edit's brightness (white: subject, black: background) and
    ``weight`` its opacity: transparent pixels change nothing, an image without
    alpha replaces the whole mask.
    """
    rgba = edit.convert("RGBA")
    if rgba.size != size:
        # Pillow resizes RGBA premultiplied, so the colour under transparent pixels does not bleed in.
        rgba = rgba.resize(size, Image.Resampling.BILINEAR)
    return rgba.convert("L"), rgba.getchannel("A")


def edited_mask(mask: Image.Image, target: Image.Image, weight: Image.Image) -> Image.Image:
    """``mask`` moved towards ``target`` by ``weight``: a full-strength stroke sets the value outright."""
    m, t, w = (np.asarray(x, dtype=np.uint32) for x in (mask, target, weight))
    out = (m * (255 - w) + t * w + 127) // 255
    return Image.fromarray(out.astype(np.uint8), "L")


def blurred_background(im: Image.Image, mask: Image.Image, radius: float) -> Image.Image:
    """The image's background, blurred, as opaque RGBA (the input's own alpha blurred along).

    The subject is left out of the blur (each pixel averages background pixels only),
    so it does not smear a halo of its own colours around itself; deep inside a large
    subject, where there is no background to average, the plain blur fills in.
    """
    blur = ImageFilter.GaussianBlur(radius)
    rgb = im.convert("RGB")
    weighted = rgb.convert("RGBA")
    weight = ImageOps.invert(mask)
    if im.mode == "RGBA":  # nor the colour under the input's own transparent pixels
        weight = ImageChops.multiply(weight, im.getchannel("A"))
    weighted.putalpha(weight)
    # Blurred premultiplied, then divided by the blurred weight: a weighted average.
    background = weighted.convert("RGBa").filter(blur).convert("RGBA")
    reach = background.getchannel("A").point(lambda v: min(255, v * 8))
    out = Image.composite(background, rgb.filter(blur).convert("RGBA"), reach)
    out.putalpha(im.getchannel("A").filter(blur) if im.mode == "RGBA" else 255)
    return out


def drop_shadow(mask: Image.Image, offset: tuple[int, int], radius: float, opacity: float) -> Image.Image:
    """The shadow's alpha ("L", the mask's size): the mask moved by ``offset``, blurred, at ``opacity`` (0-1)."""
    shadow = Image.new("L", mask.size, 0)
    shadow.paste(mask, offset)
    if radius > 0:
        shadow = shadow.filter(ImageFilter.GaussianBlur(radius))
    return shadow.point(lambda v: round(v * opacity))


def over_shadow(rgba: Image.Image, shadow: Image.Image) -> Image.Image:
    """``rgba`` over a black shadow whose alpha is ``shadow``."""
    layer = Image.new("RGBA", rgba.size, (0, 0, 0, 0))
    layer.putalpha(shadow)
    return Image.alpha_composite(layer, rgba)


def warm_alpha_matting() -> Image.Image | None:
    """Run alpha matting once on a tiny image, so that its first real use does not wait; returns the matte.

    pymatting's numba functions compile on first use (or load from numba's cache,
    far faster): the slow first request the note on alpha matting in docs/usage.md measures.
    None would mean a degenerate trimap, where matting stops before any of it compiles.
    """
    im = Image.new("RGB", (48, 48), (20, 30, 40))
    im.paste((230, 200, 60), (12, 12, 36, 36))
    mask = Image.new("L", (48, 48), 0)
    mask.paste(255, (14, 14, 34, 34))
    mask = mask.filter(ImageFilter.GaussianBlur(3))
    return alpha_matting(im, mask, 240, 10, 2, 48 * 48)


class Warmup:
    """A warm-up (``warm_alpha_matting``) in a background thread, started once, and whether it is still running."""

    def __init__(self, warm: Callable[[], object] | None = None) -> None:
        self._warm = warm or warm_alpha_matting
        self._done = threading.Event()
        self._started = False
        self._lock = threading.Lock()

    @property
    def warming(self) -> bool:
        """Started and not finished: the first alpha matting would still wait for it."""
        return self._started and not self._done.is_set()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="warm-alpha-matting", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _run(self) -> None:
        clock = Clock()
        try:
            self._warm()
            log.info("alpha matting is ready (warmed up in %.1f s)", clock.elapsed_s())
        except Exception:
            log.warning("warming up alpha matting failed; its first use will be slow", exc_info=True)
        finally:
            self._done.set()


#: The process's alpha-matting warm-up (the server starts it; the WebUI shows it).
ALPHA_MATTING_WARMUP = Warmup()
