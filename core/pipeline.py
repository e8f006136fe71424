"""``remove_background``: decode, preprocess, infer, postprocess, encode; timed per stage.

The one function every edge calls. ``Engine`` holds the settings and the shared
session cache; ``remove_background`` uses a process-wide default engine unless
one is passed. ``Engine.remove_many`` does the same for several images with one
set of options, in one inference call where the model's batch dimension is
dynamic (``u2net-dynamic``): the batched path Gradio's ``batch=True`` events use.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageChops

from base.errors import ImageTooComplex, InvalidOption, RemovalError
from base.memory import available_bytes
from base.settings import Settings, SettingsError, load_settings
from base.timing import STAGES as STAGES  # re-exported: the stages a result is timed in
from base.timing import Clock
from core import custom, imaging
from core.budget import MIB, MemoryBudget, default_budget_bytes, request_cost
from core.decode import Limits, decode
from core.families import Family, family_of
from core.formats import FORMATS
from core.options import RemovalOptions
from core.precision import Choice, choice_for, choose
from core.providers import provider_info
from core.sessions import ModelSession, SessionCache
from core.telemetry import RequestLog
from models.registry import MODELS

log = logging.getLogger(__name__)


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
    #: The precision the network computed at (fp32, bf16, int8, tf32, fp16) and the runtime
    #: with its provider (``onnxruntime-cpu``, ``openvino-cpu``, ``onnxruntime-cuda``...).
    precision: str = "fp32"
    backend: str = ""
    #: What the request asked for (exact or fast), what it ran as, and why they differ ("" when not).
    precision_requested: str = "exact"
    precision_ran: str = "exact"
    precision_note: str = ""
    #: Where it ran when not in this process: the Ray Serve replica and node ids (``serving``).
    ran_on: dict[str, str] | None = None

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
            "backend": self.backend,
            "precision": self.precision,
            "precision_requested": self.precision_requested,
            "precision_ran": self.precision_ran,
            "precision_note": self.precision_note,
            **({"ran_on": self.ran_on} if self.ran_on else {}),
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


class Engine:
    """Settings plus the session cache; share one per process."""

    #: Where removals run (``/healthz`` says it; ``serving.client.ServeEngine`` runs them on a Ray cluster).
    runs_on = "this process"

    def __init__(self, settings: Settings) -> None:
        customs = [custom.parse(entry) for entry in settings.custom_model]
        names = [*MODELS, *(spec.name for spec, _ in customs)]
        if settings.default_model not in names:  # the settings table sits below the registry
            raise SettingsError(f"--default-model: choose one of {', '.join(names)}")
        self.settings = settings
        self.sessions = SessionCache(settings)
        for spec, path in customs:
            custom.check(spec, path)
            self.sessions.register(spec, path)
        self.limits = Limits(settings.max_upload_bytes, settings.max_pixels, settings.decode_budget_s)
        self.requests = RequestLog()
        # Alpha matting takes seconds and hundreds of MiB per megapixel: one at a time, so that
        # concurrent requests (REST has its own threads) cannot stack them up.
        self._matting = threading.Lock()
        #: Every removal in the process holds its cost in this while it runs (``core.budget``).
        self.budget = MemoryBudget(settings.memory_budget_mb * MIB or default_budget_bytes())

    def remove(self, image: Any, options: RemovalOptions | None = None) -> RemovalResult:
        opts = (options or RemovalOptions()).validated()
        session, choice = self._session(opts)
        family = _family_for(session, opts)
        with self.budget.hold(
            request_cost([image], opts, self.settings.matting_max_pixels, family.bytes_per_pixel(opts.extra))
        ):
            im, tensor, clock = self._prepare(image, session, opts)
            extra = self._option_images(opts)
            clock.lap("decode")
            [(prediction, shared)] = self._infer(family, session, [tensor], [im.size], opts)
            clock.lap("inference")
            result = self._finish(im, prediction, opts, extra, session, clock, choice)
        result.batch = shared
        return result

    def remove_many(
        self, images: list[Any], options: RemovalOptions | None = None
    ) -> list[RemovalResult | RemovalError]:
        """``remove`` for each image, in order; a bad image gets its error in its place.

        Where the session takes a batch (a batcher, or a symbolic batch dimension)
        the good images run together, and each result's ``inference`` time is its
        share of the calls (``batch`` says how many shared its call). Outputs equal
        one-by-one runs. Option, model and provider errors raise.
        """
        opts = (options or RemovalOptions()).validated()
        session, choice = self._session(opts)
        family = _family_for(session, opts)
        cost = request_cost(images, opts, self.settings.matting_max_pixels, family.bytes_per_pixel(opts.extra))
        if cost > self.budget.total and len(images) > 1:
            # more than the budget together, but maybe not apart: halves, each held on its own
            half = len(images) // 2
            return self.remove_many(images[:half], opts) + self.remove_many(images[half:], opts)
        with self.budget.hold(cost):
            return self._remove_many(images, opts, session, choice)

    def _remove_many(
        self, images: list[Any], opts: RemovalOptions, session: ModelSession, choice: Choice
    ) -> list[RemovalResult | RemovalError]:
        extra = self._option_images(opts)
        family = family_of(session.spec)
        out: list[RemovalResult | RemovalError] = []
        ready: list[tuple[int, Image.Image, np.ndarray, Clock]] = []
        for image in images:
            try:
                im, tensor, clock = self._prepare(image, session, opts)
            except RemovalError as exc:
                out.append(exc)
                continue
            ready.append((len(out), im, tensor, clock))
            out.append(RemovalError("not run"))  # replaced by its result below
        call = Clock()
        tensors, sizes = [tensor for _, _, tensor, _ in ready], [im.size for _, im, _, _ in ready]
        outputs = self._infer(family, session, tensors, sizes, opts) if ready else []
        share = call.elapsed_ms() / max(len(ready), 1)
        for (index, im, _, clock), (prediction, shared) in zip(ready, outputs, strict=True):
            clock.restart_lap()
            clock.timings["inference"] = share
            result = self._finish(im, prediction, opts, extra, session, clock, choice)
            result.batch = shared
            out[index] = result
        return out

    def warm(self) -> None:
        """Load the default model on the default provider at the default precision now (at start-up,
        in the background), so that a model or provider that cannot load shows in ``health`` before
        any request."""
        try:
            self._session(RemovalOptions())
        except RemovalError as exc:
            log.warning("the default model cannot load: %s", exc.message)

    def health(self) -> list[str]:
        """Why the service cannot serve requests that name no model or provider; [] when it can.

        Degraded while the default model has failed to load (and is not loaded) on the
        default provider, or on any provider for ``auto``, and while the default provider is
        an accelerator that cannot run here.
        """
        model, provider = self.settings.default_model, self.settings.default_provider
        reasons = []
        if provider not in ("auto", "cpu"):
            info = provider_info(provider)
            if not info.available:
                reasons.append(f"the default provider {provider} cannot run here: {info.reason}")
        loaded = {(m, p) for m, p in self.sessions.keys()}
        for (m, p), exc in list(self.sessions.failures.items()):
            if m != model or (provider != "auto" and p != provider):
                continue
            if (m, p) in loaded or (provider == "auto" and any(lm == model for lm, _ in loaded)):
                continue
            reasons.append(f"the default model {model} cannot load on {p}: {exc.message}")
        return reasons

    def load(self, options: RemovalOptions | None = None) -> ModelSession:
        """The session a request with ``options`` runs on, loaded now (model, provider and precision as chosen)."""
        return self._session((options or RemovalOptions()).validated())[0]

    def choose(self, opts: RemovalOptions) -> Choice:
        """What runs a request with ``opts``: weights, provider and precision (``core.precision``)."""
        model = opts.model or self.settings.default_model
        provider = opts.provider or self.settings.default_provider
        word = opts.precision or self.settings.default_precision
        if model not in MODELS:  # a model registered beside the registry was never tuned
            return choose(model, provider, word, [])
        return choice_for(self.settings.model_home, model, provider, word)

    def _session(self, opts: RemovalOptions) -> tuple[ModelSession, Choice]:
        # Resolved before any decoding: a bad model, provider or precision fails first.
        model = opts.model or self.settings.default_model
        if model in MODELS:
            _check_stack(family_of(MODELS[model]), opts)  # before its weights are looked for
        choice = self.choose(opts)
        try:
            return self.sessions.get(choice.weights, choice.provider, choice.precision), choice
        except RemovalError as exc:
            fallback = choose(choice.model, opts.provider or self.settings.default_provider, "exact", [])
            if (choice.weights, choice.provider, choice.precision) == (
                fallback.weights,
                fallback.provider,
                fallback.precision,
            ):
                raise
            # The measured choice cannot load now (its weights gone, a runtime broken): rembg's runtime serves.
            log.warning("%s %s cannot load, running onnxruntime fp32: %s", choice.weights, choice.precision, exc)
            note = f"{choice.requested} runs onnxruntime fp32: {choice.weights} on {choice.provider} did not load"
            session = self.sessions.get(fallback.weights, fallback.provider, fallback.precision)
            return session, Choice(choice.requested, choice.model, fallback.weights, fallback.provider, "fp32", note)

    def _option_images(self, opts: RemovalOptions) -> _OptionImages:
        """Decode the options' images with the input's own decoder and limits."""
        return _OptionImages(
            background=None if opts.background_image is None else decode(opts.background_image, self.limits),
            mask_edit=None if opts.mask_edit is None else decode(opts.mask_edit, self.limits),
        )

    def _prepare(
        self, image: Any, session: ModelSession, opts: RemovalOptions | None = None
    ) -> tuple[Image.Image, np.ndarray, Clock]:
        """Decode one image and make its network input, timing both.

        An output format that cannot hold the image is refused here, before inference
        (cropping may still shrink it; ``_finish`` checks the result itself).
        """
        clock = Clock()
        im = decode(image, self.limits)
        if opts is not None and not opts.crop:
            FORMATS[opts.output_format].check_size(im.width, im.height)
        clock.lap("decode")
        tensor = family_of(session.spec).prepare(im, session)
        clock.lap("preprocess")
        return im, tensor, clock

    @staticmethod
    def _infer(
        family: Family,
        session: ModelSession,
        tensors: list[np.ndarray],
        sizes: list[tuple[int, int]],
        opts: RemovalOptions,
    ) -> list[tuple[np.ndarray, int]]:
        """What ``finish`` takes for each prepared input, and how many images shared its call: the
        session's network (batched where it can be), or the family's own inference (sam)."""
        if family.infer is None:
            return session.infer(tensors)
        extras = opts.extra
        return [(family.infer(tensor, size, session, extras), 1) for tensor, size in zip(tensors, sizes, strict=True)]

    def _finish(
        self,
        im: Image.Image,
        prediction: np.ndarray,
        opts: RemovalOptions,
        extra: _OptionImages,
        session: ModelSession,
        clock: Clock,
        choice: Choice | None = None,
    ) -> RemovalResult:
        """Mask, compose, encode and record one image whose prediction is ready."""
        spec = session.spec
        masks = family_of(spec).finish(prediction, im.size, session, opts.extra)
        if isinstance(masks, list):
            composed = _stack([self._compose(im, self._post(mask, opts), opts, extra, session) for mask in masks], opts)
        else:
            composed = self._compose(im, self._post(masks, opts), opts, extra, session)
        out = composed.out
        clock.lap("postprocess")

        fmt = FORMATS[opts.output_format]
        data = fmt.write(out, opts.quality)
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
            precision=session.precision,
            backend=session.backend,
            precision_requested=choice.requested if choice else "exact",
            precision_ran=choice.ran if choice else "exact",
            precision_note=choice.note if choice else "",
        )

    @staticmethod
    def _post(mask: Image.Image, opts: RemovalOptions) -> Image.Image:
        return imaging.post_process_mask(mask) if opts.post_process_mask else mask

    def _matte(self, im: Image.Image, mask: Image.Image, opts: RemovalOptions) -> Image.Image | None:
        """Alpha matting, one at a time, refused where its memory estimate exceeds what is free."""
        max_pixels = self.settings.matting_max_pixels
        with self._matting:
            needed, free = imaging.matting_bytes(im.size, max_pixels), available_bytes()
            if free is not None and needed > free:
                raise ImageTooComplex(
                    f"alpha matting needs about {needed / 2**20:,.0f} MiB and {free / 2**20:,.0f} MiB are free now; "
                    "try again later, or without alpha matting"
                )
            return imaging.alpha_matting(
                im,
                mask,
                opts.alpha_matting_foreground_threshold,
                opts.alpha_matting_background_threshold,
                opts.alpha_matting_erode_size,
                max_pixels,
            )

    # One pass over the layers in the order they stack; each branch is one option's effect, and split up they
    # would pass half a dozen partly built layers between them.
    def _compose(  # noqa: C901
        self,
        im: Image.Image,
        mask: Image.Image,
        opts: RemovalOptions,
        extra: _OptionImages,
        session: ModelSession,
    ) -> _Composed:
        """The output image, its final mask (after matting, touch-up and cropping) and the input framed alike.

        Layers, bottom up: the background (a colour, an image or the input's own,
        blurred), the drop shadow, the cutout. Blur and shadow are computed on the
        whole frame before cropping, and the crop keeps the shadow in.
        """
        matted = self._matte(im, mask, opts) if opts.alpha_matting else None
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
        if matted is not None:
            out = matted
        elif session.graphs is not None and im.mode == "RGB" and clear:
            # On the provider, where the image already went for preprocessing.
            out = imaging.from_array(session.graphs.cutout(imaging.pixels(im), imaging.pixels(mask)), "RGBA")
        else:
            out = imaging.cutout(im, mask, clear_hidden=clear)
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


#: Options of ours that act on one cutout (its frame, its shadow, its background, its touch-up):
#: a stacked result (u2net_cloth_seg without ``cc``) refuses them rather than guess which cutout.
ONE_CUTOUT_OPTIONS = ("crop", "shadow", "blur_background", "background_image", "mask_edit")


def _check_stack(family: Family, opts: RemovalOptions) -> None:
    """``InvalidOption`` for an option of ours that a stacked result (``Family.stacks``) cannot take."""
    if not family.stacks(opts.extra):
        return
    for name in ONE_CUTOUT_OPTIONS:
        if getattr(opts, name):
            raise InvalidOption(
                name,
                "applies to one cutout; without extras cc this model gives three (upper, lower and full, stacked "
                "top to bottom as rembg does): add extras cc (upper, lower, full or attire) to choose one",
            )


def _family_for(session: ModelSession, opts: RemovalOptions) -> Family:
    """The session's family, with the request's options checked against it (a custom model too)."""
    family = family_of(session.spec)
    _check_stack(family, opts)
    return family


def _stack(parts: list[_Composed], opts: RemovalOptions) -> _Composed:
    """The cutouts top to bottom, as rembg's ``get_concat_v_multi`` pastes them into one RGBA image
    (a mask, with ``only_mask``, becomes grey RGBA there too); the masks and inputs alike, for the
    before/after view. The background colour was laid under each cutout: per pixel the same as
    rembg's under the stack."""
    width, height = parts[0].out.size

    def column(images: list[Image.Image], mode: str) -> Image.Image:
        canvas = Image.new(mode, (width, height * len(images)))
        for row, image in enumerate(images):
            canvas.paste(image, (0, row * height))
        return canvas

    out = column([p.out for p in parts], "RGBA")
    if not FORMATS[opts.output_format].alpha:  # each part is flattened already: its alpha is opaque
        out = out.convert("RGB")
    source = parts[0].source
    return _Composed(
        out, column([p.mask for p in parts], "L"), column([source] * len(parts), source.mode), parts[0].box
    )


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
