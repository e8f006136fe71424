"""``remove_background``: decode, preprocess, infer, postprocess, encode; timed per stage.

The one function every edge calls. ``Engine`` holds the settings and the shared
session cache; ``remove_background`` uses a process-wide default engine unless
one is passed. ``Engine.remove_many`` does the same for several images with one
set of options, in one inference call where the model's batch dimension is
dynamic (``u2net-dynamic``): the batched path Gradio's ``batch=True`` events use.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageChops

from base.errors import RemovalError
from base.settings import Settings, SettingsError, load_settings
from core import imaging
from core.decode import Limits, decode
from core.families import family_of
from core.formats import FORMATS
from core.options import RemovalOptions
from core.sessions import ModelSession, SessionCache
from core.telemetry import RequestLog
from models.registry import MODELS

STAGES = ("decode", "preprocess", "inference", "postprocess", "encode")


@dataclass
class RemovalResult:
    data: bytes  # encoded once, in the requested format
    media_type: str
    image: Image.Image  # the output as encoded (RGBA, RGB or L)
    mask: Image.Image  # the alpha mask, "L", at the input's size
    model: str
    provider: str  # the provider that really ran
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage and total
    #: How many images shared the inference call (``Engine.remove_many`` on a batched model).
    batch: int = 1
    #: The input as decoded (RGB or RGBA), framed like the output (cropped where it is): the "before".
    source: Image.Image | None = None
    #: Where the output lies in the input, (left, top, right, bottom), when it was cropped.
    box: tuple[int, int, int, int] | None = None
    #: The decoded input's (width, height), before any crop.
    input_size: tuple[int, int] | None = None

    @property
    def format(self) -> str:
        return self.media_type.split("/")[1]

    def report(self) -> dict[str, Any]:
        """JSON-safe summary: what ran, sizes and timings (for the UI and APIs)."""
        return {
            "model": self.model,
            "provider": self.provider,
            "width": self.image.width,
            "height": self.image.height,
            "format": self.format,
            "bytes": len(self.data),
            "timings_ms": {k: round(v, 1) for k, v in self.timings.items()},
            "batch": self.batch,
        }


@dataclass(frozen=True)
class _OptionImages:
    """The images an option carries, decoded once per request (also for a whole batch)."""

    background: Image.Image | None = None
    mask_edit: Image.Image | None = None


@dataclass(frozen=True)
class _Composed:
    out: Image.Image
    mask: Image.Image
    source: Image.Image
    box: tuple[int, int, int, int] | None


class _Clock:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.timings: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        """Add the time since the last lap to ``stage`` (a stage may come back)."""
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - self.last) * 1000
        self.last = now

    def total(self) -> dict[str, float]:
        # The sum of the stages, not end - start: in a batch, other images' stages
        # run in between, and only this image's share of the shared call is its own.
        self.timings["total"] = sum(self.timings.values())
        return self.timings


class Engine:
    """Settings plus the session cache; share one per process."""

    def __init__(self, settings: Settings) -> None:
        if settings.default_model not in MODELS:  # the settings table sits below the registry
            raise SettingsError(f"--default-model: choose one of {', '.join(MODELS)}")
        self.settings = settings
        self.sessions = SessionCache(settings)
        self.limits = Limits(settings.max_upload_bytes, settings.max_pixels)
        self.requests = RequestLog()

    def remove(self, image: Any, options: RemovalOptions | None = None) -> RemovalResult:
        opts = (options or RemovalOptions()).validated()
        session = self._session(opts)
        im, tensor, clock = self._prepare(image, session)
        extra = self._option_images(opts)
        clock.lap("decode")
        prediction = session.run(tensor)
        clock.lap("inference")
        return self._finish(im, prediction, opts, extra, session, clock)

    def remove_many(
        self, images: list[Any], options: RemovalOptions | None = None
    ) -> list[RemovalResult | RemovalError]:
        """``remove`` for each image, in order; a bad image gets its error in its place.

        Where the session takes a batch (``ModelSession.batched``) the good images
        run as one inference call, and each result's ``inference`` time is its
        share of that call (``batch`` in ``timings`` says how many shared it).
        Outputs equal one-by-one runs. Option, model and provider errors raise.
        """
        opts = (options or RemovalOptions()).validated()
        session = self._session(opts)
        extra = self._option_images(opts)
        out: list[RemovalResult | RemovalError] = []
        ready: list[tuple[int, Image.Image, np.ndarray, _Clock]] = []
        for image in images:
            try:
                im, tensor, clock = self._prepare(image, session)
            except RemovalError as exc:
                out.append(exc)
                continue
            ready.append((len(out), im, tensor, clock))
            out.append(RemovalError("not run"))  # replaced by its result below
        if session.batched and len(ready) > 1:
            started = time.perf_counter()
            predictions = list(session.run(np.concatenate([t for _, _, t, _ in ready]))[:, None])
            share = (time.perf_counter() - started) * 1000 / len(ready)
        else:
            predictions, share = [], 0.0
        for n, (index, im, tensor, clock) in enumerate(ready):
            clock.last = time.perf_counter()
            if predictions:
                prediction = predictions[n]
                clock.timings["inference"] = share
            else:
                prediction = session.run(tensor)
                clock.lap("inference")
            result = self._finish(im, prediction, opts, extra, session, clock)
            result.batch = len(ready) if predictions else 1
            out[index] = result
        return out

    def _session(self, opts: RemovalOptions) -> ModelSession:
        # Resolved before any decoding: a bad model or provider fails first.
        model = opts.model or self.settings.default_model
        return self.sessions.get(model, opts.provider or self.settings.default_provider)

    def _option_images(self, opts: RemovalOptions) -> _OptionImages:
        """Decode the options' images with the input's own decoder and limits."""
        return _OptionImages(
            background=None if opts.background_image is None else decode(opts.background_image, self.limits),
            mask_edit=None if opts.mask_edit is None else decode(opts.mask_edit, self.limits),
        )

    def _prepare(self, image: Any, session: ModelSession) -> tuple[Image.Image, np.ndarray, _Clock]:
        """Decode one image and make its network input, timing both."""
        clock = _Clock()
        im = decode(image, self.limits)
        clock.lap("decode")
        tensor = family_of(session.spec).prepare(im, session.spec)
        clock.lap("preprocess")
        return im, tensor, clock

    def _finish(
        self,
        im: Image.Image,
        prediction: np.ndarray,
        opts: RemovalOptions,
        extra: _OptionImages,
        session: ModelSession,
        clock: _Clock,
    ) -> RemovalResult:
        """Mask, compose, encode and record one image whose prediction is ready."""
        spec = session.spec
        mask = family_of(spec).finish(prediction, im.size)
        if opts.post_process_mask:
            mask = imaging.post_process_mask(mask)
        composed = self._compose(im, mask, opts, extra)
        out = composed.out
        clock.lap("postprocess")

        fmt = FORMATS[opts.output_format]
        data = fmt.encode(out, opts.quality)
        clock.lap("encode")
        timings = clock.total()
        self.requests.record(session.provider, spec.name, im.width * im.height, timings)
        return RemovalResult(
            data=data,
            media_type=fmt.media_type,
            image=out,
            mask=composed.mask,
            model=spec.name,
            provider=session.provider,
            timings=timings,
            source=composed.source,
            box=composed.box,
            input_size=im.size,
        )

    @staticmethod
    def _compose(im: Image.Image, mask: Image.Image, opts: RemovalOptions, extra: _OptionImages) -> _Composed:
        """The output image, its final mask (after matting, touch-up and cropping) and the input framed alike.

        Layers, bottom up: the background (a colour, an image or the input's own,
        blurred), the drop shadow, the cutout. Blur and shadow are computed on the
        whole frame before cropping, and the crop keeps the shadow in.
        """
        matted = None
        if opts.alpha_matting:
            matted = imaging.alpha_matting(
                im,
                mask,
                opts.alpha_matting_foreground_threshold,
                opts.alpha_matting_background_threshold,
                opts.alpha_matting_erode_size,
            )
            if matted is not None:
                mask = matted.getchannel("A")
        if extra.mask_edit is not None:
            target, weight = imaging.mask_edit_layers(extra.mask_edit, mask.size)
            mask = imaging.edited_mask(mask, target, weight)
            if matted is not None:  # restored areas take the input's colour, not matting's estimate
                matted = Image.composite(im.convert("RGBA"), matted, weight)
                matted.putalpha(mask)
        unit = min(im.size) / 1000  # lengths are thousandths of the shorter side
        shadow = backdrop = None
        if not opts.only_mask:
            if opts.shadow:
                offset = (round(opts.shadow_offset_x * unit), round(opts.shadow_offset_y * unit))
                shadow = imaging.drop_shadow(mask, offset, opts.shadow_blur * unit, opts.shadow_opacity / 100)
            if opts.blur_background:
                backdrop = imaging.blurred_background(im, mask, opts.blur_background * unit)
        box = None
        if opts.crop:
            extent = mask if shadow is None else ImageChops.lighter(mask, shadow)
            box = imaging.subject_box(extent, opts.crop_margin)
            if box is not None:
                im, mask = im.crop(box), mask.crop(box)
                matted = matted.crop(box) if matted is not None else None
                shadow = shadow.crop(box) if shadow is not None else None
                backdrop = backdrop.crop(box) if backdrop is not None else None
        if opts.only_mask:
            return _Composed(mask, mask, im, box)
        fmt = FORMATS[opts.output_format]
        background = extra.background
        # Hidden colour needs clearing only where it would survive into the file.
        clear = not fmt.blanks_hidden and background is None and opts.bgcolor is None and backdrop is None
        out = matted if matted is not None else imaging.cutout(im, mask, clear_hidden=clear)
        if shadow is not None:
            out = imaging.over_shadow(out, shadow)
        if background is not None:
            out = imaging.over_image(out, background)
        elif opts.color is not None:
            out = imaging.over_color(out, opts.color)
        elif backdrop is not None:
            out = Image.alpha_composite(backdrop, out)
        if not fmt.alpha:
            # JPEG has no alpha: flatten on the requested colour, white by default.
            if out.mode == "RGBA":
                out = imaging.over_color(out, opts.color or (255, 255, 255, 255))
            out = out.convert("RGB")
        return _Composed(out, mask, im, box)


_default: Engine | None = None
_default_lock = threading.Lock()


def default_engine() -> Engine:
    """A process-wide engine built from the environment (for library callers)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Engine(load_settings())
        return _default


def remove_background(
    image: Any, options: RemovalOptions | None = None, *, engine: Engine | None = None
) -> RemovalResult:
    """Remove the background of ``image`` (bytes, path, PIL image or numpy array)."""
    return (engine or default_engine()).remove(image, options)
