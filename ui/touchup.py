"""Touch-up in the WebUI: the picture the brush paints on, and the strokes turned into the engine's ``mask_edit``.

The engine's option is colour-blind and simple (white keeps, black removes, the
stroke's opacity says how much); the page paints in green (restore) and red
(erase) so that the strokes read over a photo. The picture is the input framed
like the result, the removed part faded, at a size a browser paints smoothly;
strokes come back at that size and are placed into the whole input frame, where
the engine scales them to full resolution.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from core import RemovalResult

RESTORE = "#22c55e"
ERASE = "#ef4444"
#: The brushes paint at this opacity, so that the photo shows through the strokes.
BRUSH_OPACITY = 0.6
#: The editor's picture is at most this many pixels on its longer side, and tiny inputs are scaled up to it.
PREVIEW_SIDE = 1024
#: The removed part shows at this opacity in the editor's picture.
FADED = 0.3
#: Accumulated strokes are kept at most this many pixels on the input's longer side.
EDIT_SIDE = 2048


def preview(result: RemovalResult) -> tuple[Image.Image, float]:
    """The editor's picture (the kept part opaque, the removed part faded, over a checkerboard) and its scale."""
    source = result.source if result.source is not None else result.image
    mask = result.mask
    longer = max(source.size)
    scale = PREVIEW_SIDE / longer if longer > PREVIEW_SIDE or longer < PREVIEW_SIDE // 4 else 1.0
    size = (max(1, round(source.width * scale)), max(1, round(source.height * scale)))
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    rgba = source.convert("RGBA").resize(size, resample)
    alpha = np.asarray(mask.resize(size, resample), dtype=np.float32) / 255
    own = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255
    shown = own * (FADED + (1 - FADED) * alpha)
    rgba.putalpha(Image.fromarray(np.round(shown * 255).astype(np.uint8), "L"))
    return Image.alpha_composite(checkerboard(size), rgba).convert("RGB"), scale


def checkerboard(size: tuple[int, int], cell: int = 12) -> Image.Image:
    yy, xx = np.indices((size[1], size[0]))
    shade = np.where((yy // cell + xx // cell) % 2, 204, 240).astype(np.uint8)
    grey = Image.fromarray(shade, "L")
    return Image.merge("RGBA", (grey, grey, grey, Image.new("L", size, 255)))


def strokes_to_edit(layer: Image.Image) -> Image.Image:
    """Green strokes -> white, red -> black, at full opacity where painted; unpainted stays transparent."""
    rgba = np.asarray(layer.convert("RGBA"), dtype=np.int32)
    painted = np.clip(rgba[..., 3] * 4, 0, 255).astype(np.uint8)  # the brushes' own opacity undone
    keep = rgba[..., 1] > rgba[..., 0]
    value = np.where(keep, 255, 0).astype(np.uint8)
    return Image.fromarray(np.dstack([value, value, value, painted]), "RGBA")


def place_edit(
    strokes: Image.Image,
    frame: tuple[int, int],
    box: tuple[int, int, int, int] | None,
    previous: Image.Image | None,
) -> Image.Image:
    """The strokes (drawn on the result's frame) put into the input's whole frame, over earlier strokes.

    ``frame`` is the input's size, ``box`` where the result lies in it (a crop), or None.
    """
    scale = min(1.0, EDIT_SIDE / max(frame))
    size = (max(1, round(frame[0] * scale)), max(1, round(frame[1] * scale)))
    left, top, right, bottom = box or (0, 0, frame[0], frame[1])
    target = (max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale)))
    placed = Image.new("RGBA", size, (0, 0, 0, 0))
    placed.paste(
        strokes_to_edit(strokes).resize(target, Image.Resampling.BILINEAR), (round(left * scale), round(top * scale))
    )
    if previous is None:
        return placed
    return Image.alpha_composite(previous.convert("RGBA").resize(size, Image.Resampling.BILINEAR), placed)
