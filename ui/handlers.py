"""Event handlers of the WebUI and the Gradio client API: a few lines each around ``core``.

Every widget and API value becomes options through the engine's one parser
(``RemovalOptions.from_values``), and every image reaches the engine as the file
the browser uploaded: the engine decodes it, as it does for REST and the library,
so all three give the same bytes. Typed engine errors become ``gr.Error`` with the
error's own message, once, in ``user_errors``; nothing else reaches the page, so no
traceback is ever shown. The WebUI's handlers are generators: their first update
clears the status line ("Running..."), their last sets it to what happened, an
error included, which then stays until the next run.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import logging
import time
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import gradio as gr
import numpy as np
from PIL import Image

from base.files import atomic_write
from base.settings import Settings
from base.timing import Clock
from core import (
    Engine,
    InvalidOption,
    RemovalError,
    RemovalOptions,
    RemovalResult,
)
from core.formats import FORMATS
from core.imaging import ALPHA_MATTING_WARMUP
from core.options import OPTIONS, kind_of
from core.outcome import FATAL_ERRORS, gallery_report
from core.outcome import Outcome as ItemOutcome
from ui import readout, touchup
from ui.activity import GALLERY, HEAVY, LIGHT, Activity

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
#: Seconds an error toast stays: long enough to read a sentence twice (the status line keeps it after).
TOAST_SECONDS = 30
ALPHA_MATTING_INFO = "Finer hair and fur edges; seconds more per image (runs in the heavy queue)."
WARMING_INFO = "Warming up: pymatting compiles its code on first use since start; this note changes when ready."
#: Results smaller than this on their shorter side are shown scaled up (pixelated) in the slider.
DISPLAY_MIN_SIDE = 256
#: ...but never beyond this many on their longer side (a 1x10000 strip stays as it is).
DISPLAY_MAX_SIDE = 2048


def _name(fn: Callable[..., Any]) -> str:
    """A handler's name for the log; a ``functools.partial`` goes by its function's."""
    return str(getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", "handler"))


def _toast(exc: RemovalError, where: str) -> gr.Error:
    log.info("request %s: %s -> %s", uuid.uuid4().hex[:12], where, exc.code)
    return gr.Error(
        exc.message,
        title=exc.code.replace("_", " ").capitalize(),
        duration=TOAST_SECONDS,
        print_exception=False,
    )


def _unexpected(rid: str) -> gr.Error:
    message = f"Something went wrong on the server; it has been logged as request {rid}."
    return gr.Error(message, duration=TOAST_SECONDS, print_exception=False)


@contextlib.contextmanager
def _translated(fn: Callable[..., Any]) -> Iterator[None]:
    """Typed engine errors become ``gr.Error`` (one log line each); anything else is logged."""
    try:
        yield
    except RemovalError as exc:
        raise _toast(exc, _name(fn)) from None
    except gr.Error:
        raise
    except Exception:
        rid = uuid.uuid4().hex[:12]
        log.exception("request %s: unexpected error in %s", rid, _name(fn))
        raise _unexpected(rid) from None


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` with its errors shown to the user (``_translated``); generators too."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: P.args, **kwargs: P.kwargs) -> Any:
            with _translated(fn):
                yield from fn(*args, **kwargs)  # type: ignore[misc]

        generator.__name__ = _name(fn)  # a partial's function's: Gradio names the event by it
        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _translated(fn):
            return fn(*args, **kwargs)

    wrapper.__name__ = _name(fn)
    return wrapper


class OutputStore:
    """Where encoded results are written for Gradio to serve; old files are pruned.

    A result is kept for ``max_age_s`` (so a download link works for a while) but
    never more than ``max_files`` of them: at a sustained rate the age alone would let
    the folder grow to rate x max_age_s files.
    """

    def __init__(self, root: Path, max_age_s: float = 3600, max_files: int = 2000) -> None:
        self.root = root
        self.max_age_s = max_age_s
        self.max_files = max_files
        root.mkdir(parents=True, exist_ok=True)

    def write(self, data: bytes, name: str) -> Path:
        self.prune()
        # never a half-written file under the served name
        return atomic_write(self.root / uuid.uuid4().hex / name, data)

    def prune(self) -> None:
        """Remove results older than ``max_age_s``, then the oldest beyond ``max_files - 1``."""
        cutoff = time.time() - self.max_age_s
        kept: list[tuple[float, Path]] = []
        for folder in self.root.iterdir():
            try:
                mtime = folder.stat().st_mtime
            except OSError:
                continue  # another request pruned it first
            if mtime < cutoff:
                self._remove(folder)
            else:
                kept.append((mtime, folder))
        if len(kept) >= self.max_files:  # leave room for the result about to be written
            kept.sort()
            for _, folder in kept[: len(kept) - self.max_files + 1]:
                self._remove(folder)

    @staticmethod
    def _remove(folder: Path) -> None:
        try:
            for f in folder.iterdir():
                f.unlink(missing_ok=True)
            folder.rmdir()
        except OSError:
            pass  # another request removed it first


def api_default(f: Any, settings: Settings) -> Any:
    """What the client API shows (and its hidden component holds) for an option left out."""
    if f.name in ("model", "provider"):
        return getattr(settings, f"default_{f.name}")
    if f.metadata["unset"] is not None:
        return f.metadata["unset"]
    if f.default is None and kind_of(f) != "image":
        return ""
    return f.default


def with_option_parameters(fn: Callable[..., R], first: str, settings: Settings, doc: str) -> Callable[..., R]:
    """``fn(first, *option values)`` as the client API shows it: one named parameter per option.

    Gradio names an endpoint's parameters, and documents them, from the function's
    signature and docstring; both are generated from ``core.options.OPTIONS``.
    """

    def call(*args: Any) -> R:
        return fn(*args)

    params = [inspect.Parameter(first, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [
        inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=api_default(f, settings))
        for f in OPTIONS.values()
    ]
    call.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    args = "\n".join(f"    {f.name}: {f.metadata['help']}" for f in OPTIONS.values())
    call.__doc__ = f"{doc}\n\nArgs:\n{args}"
    call.__name__ = _name(fn)
    return call


def output_name(source: str | None, result: RemovalResult) -> str:
    stem = Path(source).stem if source else "image"
    suffix = "mask" if result.image.mode == "L" else "cutout"
    return f"{stem}-{suffix}{FORMATS[result.format].extension}"


# --- the Upload tab's form -----------------------------------------------------------------------

#: The Upload tab's inputs after the image, in the order ``ui.blocks`` wires them.
#: Names that are options pass straight through; the others are the background control.
UPLOAD_FIELDS = (
    "provider", "model", "output_format", "quality", "only_mask", "background", "color", "background_image",
    "blur_background", "crop", "crop_margin", "alpha_matting", "alpha_matting_foreground_threshold",
    "alpha_matting_background_threshold", "alpha_matting_erode_size", "post_process_mask",
    "shadow", "shadow_offset_x", "shadow_offset_y", "shadow_blur", "shadow_opacity",
)  # fmt: skip
#: The background control's choices: (label, value).
BACKGROUNDS = [("Transparent", "transparent"), ("Colour", "colour"), ("Image", "image"), ("Blur", "blur")]
#: What the Upload and Webcam handlers update, in order (``ui.blocks`` wires the same names).
RESULT_OUTPUTS = ("slider", "files", "status", "last", "history", "chart", "editor", "touch")
#: What applying a touch-up updates: all but the editor, which is its input (``touchup_picture`` follows).
TOUCHUP_OUTPUTS = tuple(n for n in RESULT_OUTPUTS if n != "editor")


def upload_options(form: Mapping[str, Any], mask_edit: Any = None) -> RemovalOptions:
    """The Upload tab's widget values as options: one background, as the control says."""
    values = {name: form[name] for name in UPLOAD_FIELDS if name in OPTIONS and name in form}
    background = form.get("background") or "transparent"
    values["bgcolor"] = form.get("color") if background == "colour" else None
    values["background_image"] = form.get("background_image") if background == "image" else None
    values["blur_background"] = form.get("blur_background") if background == "blur" else 0
    if background == "image" and not values["background_image"]:
        raise InvalidOption("background_image", "choose the background image first, or another background")
    values["mask_edit"] = mask_edit
    return RemovalOptions.from_values(values)


def status_html(kind: str, text: str) -> str:
    """The status line under the button: idle, wait, run, done or error; an error stays until the next run."""
    label = {"error": "<b>Error:</b> ", "wait": "<b>Waiting.</b> "}.get(kind, "")
    # data-at changes with every update, so that a page (or a test) can tell two equal messages apart.
    return (
        f'<div class="status status-{kind}" role="status" aria-live="polite" data-at="{time.time_ns()}">'
        f"{label}{readout.esc(text)}</div>"
    )


def _pack(names: Sequence[str], values: Mapping[str, Any]) -> tuple[Any, ...]:
    """Outputs in ``names`` order; those not given stay as they are (``gr.skip``)."""
    return tuple(values[n] if n in values else gr.skip() for n in names)


def image_size(path: str | None) -> tuple[int, int] | None:
    """Width and height from the file's header, for describing a job (the engine decodes it, not this)."""
    if not path:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's bomb warning: the engine refuses such files itself
            with Image.open(path) as im:
                return im.size
    except Exception:  # noqa: BLE001 - any failure just means "unknown"; the engine reports the real error
        return None


def describe(path: str | None, form: Mapping[str, Any], settings: Settings) -> str:
    size = image_size(path)
    what = f"{form.get('model') or settings.default_model}"
    if form.get("alpha_matting"):
        what += " with alpha matting"
    return what + (f" on a {size[0]}×{size[1]} image" if size else "")


@dataclass
class Outcome:
    """One file of a gallery batch."""

    file: str
    result: RemovalResult | None = None
    error: RemovalError | None = None
    path: Path | None = None
    name: str = ""
    item: ItemOutcome | None = None  # its row in the zip's _report.json


class Handlers:
    """The functions wired to events; each calls ``Engine.remove`` and shapes its result."""

    def __init__(self, engine: Engine, store: OutputStore, activity: Activity | None = None) -> None:
        self.engine = engine
        self.store = store
        self.activity = activity or Activity()

    def _remove(self, image: str | None, options: RemovalOptions) -> tuple[RemovalResult, Path]:
        if not image:
            raise gr.Error("Add an image first.", duration=TOAST_SECONDS, print_exception=False)
        result = self.engine.remove(Path(image), options)
        return result, self.store.write(result.data, output_name(image, result))

    # --- the client API ---------------------------------------------------------------------

    def remove_background(self, image: str | None, *values: Any) -> tuple[str, dict[str, Any]]:
        """Remove the background of an image; return the encoded cutout and a report.

        ``values``: the options in ``core.options.OPTIONS`` order (the client API's
        parameters after ``image``; see ``with_option_parameters``).
        """
        options = RemovalOptions.from_values(dict(zip(OPTIONS, values, strict=False)))
        with self.activity.running(LIGHT, "a client API request"):
            result, path = self._remove(image, options)
        return str(path), result.report()

    def remove_background_batch(
        self, files: Sequence[str] | None, model: str = "", provider: str = "", output_format: str = "png"
    ) -> tuple[str | None, list[dict[str, Any]]]:
        """Remove the backgrounds of many images; return a zip of the cutouts and a status per file.

        Args:
            files: the images; a file that is not a usable image gets an error status and does not stop the rest.
            model: as for remove_background.
            provider: as for remove_background.
            output_format: png, webp or jpeg.
        """
        if not files:
            raise gr.Error("Add one or more images first.", print_exception=False)
        options = RemovalOptions.from_values({"model": model, "provider": provider, "output_format": output_format})
        outcomes = self._batch(files, options, list(files))
        done = [o for o in outcomes if o.path is not None]
        zip_path = self._zip("cutouts.zip", done) if done else None
        report = [
            {
                "file": o.file,
                "status": "ok" if o.result else f"error: {o.error.message if o.error else ''}",
                "provider": o.result.provider if o.result else None,
                "total_ms": round(o.result.timings["total"]) if o.result else None,
            }
            for o in outcomes
        ]
        return zip_path, report

    def remove_background_batched(
        self, image: list[str | None], model: list[str], provider: list[str], output_format: list[str]
    ) -> tuple[list[str | None], list[dict[str, Any]]]:
        """Remove the background of one image; requests queued together run as one batch.

        Gradio ``batch=True``: each argument arrives as a list, one entry per queued
        request. Requests are grouped by (model, provider, format); a model with a
        dynamic batch dimension (u2net-dynamic) runs each group in one inference
        call, others one by one. A bad request gets ``{"error": {code, message}}`` as
        its report and no file, and fails nobody else's.

        Args:
            image: the image file.
            model: as for remove_background (u2net-dynamic batches).
            provider: as for remove_background.
            output_format: png, webp or jpeg.
        """
        files: list[str | None] = [None] * len(image)
        reports: list[dict[str, Any]] = [{} for _ in image]
        groups: dict[tuple[str, str, str], list[int]] = {}
        for i, key in enumerate(zip(model, provider, output_format, strict=True)):
            groups.setdefault(key, []).append(i)
        for (group_model, group_provider, group_format), members in groups.items():
            inputs = [Path(path) if (path := image[i]) else b"" for i in members]
            try:
                options = RemovalOptions.from_values(
                    {"model": group_model, "provider": group_provider, "output_format": group_format}
                )
                with self.activity.running(LIGHT, f"{len(members)} batched client API request(s)"):
                    results = self.engine.remove_many(inputs, options)
            except RemovalError as exc:
                results = [exc] * len(members)
            for i, result in zip(members, results, strict=True):
                if isinstance(result, RemovalError):
                    reports[i] = {"error": result.to_dict()}
                    continue
                files[i] = str(self.store.write(result.data, output_name(image[i], result)))
                reports[i] = result.report()
        return files, reports

    # --- the Upload tab -------------------------------------------------------------------------

    def wait_status(self, lane: str) -> str:
        """Before a request joins its lane: what it will wait behind, if anything."""
        waiting = self.activity.describe_wait(lane)
        return status_html("wait", waiting) if waiting else status_html("run", "Starting…")

    def ui_remove(self, lane: str, image: str | None, *values: Any) -> Iterator[tuple[Any, ...]]:
        """The Upload tab: before/after, downloads, the read-outs and the touch-up picture."""
        form = dict(zip(UPLOAD_FIELDS, values, strict=True))
        yield from self._run(lane, image, form, None, RESULT_OUTPUTS)

    def ui_touchup(self, lane: str, editor: Mapping[str, Any] | None, touch: Mapping[str, Any] | None) -> Any:
        """Apply the strokes painted on the result as the engine's ``mask_edit``, at full resolution."""
        if not touch:
            yield _pack(TOUCHUP_OUTPUTS, {"status": status_html("error", "Cut out an image first, then paint on it.")})
            raise gr.Error("Cut out an image first, then paint on it.", duration=TOAST_SECONDS, print_exception=False)
        layers = [layer for layer in (editor or {}).get("layers") or [] if layer]
        if not layers:
            message = "Paint on the picture first: green keeps, red removes."
            yield _pack(TOUCHUP_OUTPUTS, {"status": status_html("error", message)})
            raise gr.Error(message, duration=TOAST_SECONDS, print_exception=False)
        previous = None
        if touch.get("edit"):
            with Image.open(touch["edit"]) as earlier:
                previous = earlier.convert("RGBA")
        with Image.open(layers[0]) as strokes:
            edit = touchup.place_edit(strokes, tuple(touch["input_size"]), touch.get("box"), previous)
        buf = io.BytesIO()
        edit.save(buf, "PNG")
        edit_path = str(self.store.write(buf.getvalue(), "touch-up.png"))
        yield from self._run(lane, touch["image"], touch["form"], edit_path, TOUCHUP_OUTPUTS)

    @staticmethod
    def touchup_picture(touch: Mapping[str, Any] | None) -> Any:
        """The editor's new picture after a touch-up (a step of its own: the editor was the touch-up's input)."""
        if not touch or not touch.get("picture"):
            return gr.skip()
        return {"background": touch["picture"], "layers": [], "composite": touch["picture"]}

    def ui_snapshot(self, lane: str, image: str | None, provider: str, model: str) -> Iterator[tuple[Any, ...]]:
        """The Webcam tab's snapshot: default options, the tab's model."""
        yield from self._run(lane, image, {"provider": provider, "model": model}, None, RESULT_OUTPUTS[:6])

    def _run(
        self, lane: str, image: str | None, form: dict[str, Any], edit: str | None, names: Sequence[str]
    ) -> Iterator[tuple[Any, ...]]:
        yield _pack(names, {"status": status_html("run", "Running…")})
        try:
            options = upload_options(form, edit)
            if options.alpha_matting and warming_up():
                yield _pack(names, {"status": status_html("run", "Running… (alpha matting is still warming up)")})
            with self.activity.running(lane, describe(image, form, self.engine.settings)):
                result, path = self._remove(image, options)
        except RemovalError as exc:
            yield _pack(names, {"status": status_html("error", exc.message)})
            raise
        except gr.Error as exc:
            yield _pack(names, {"status": status_html("error", str(exc.message))})
            raise
        assert image is not None
        files = [str(path)]
        if edit is not None:
            mask_png = FORMATS["png"].encode(result.mask, None)
            files.append(str(self.store.write(mask_png, f"{Path(image).stem}-mask.png")))
        values: dict[str, Any] = {
            "slider": (self._display(result.source or result.image, "before.png"), self._after(result, path)),
            "files": files,
            "status": status_html("done", self._done_text(result, edit is not None)),
            "last": readout.last_request_html(result.report()),
            "history": readout.history_html(self.engine),
            "chart": readout.recent_chart_html(self.engine),
        }
        if "touch" in names:
            picture, _ = touchup.preview(result)
            buf = io.BytesIO()
            picture.save(buf, "PNG")
            background = str(self.store.write(buf.getvalue(), "touch-up-picture.png"))
            values["editor"] = {"background": background, "layers": [], "composite": background}
            values["touch"] = {
                "image": image,
                "form": form,
                "edit": edit,
                "box": result.box,
                "input_size": result.input_size,
                "picture": background,
            }
        yield _pack(names, values)

    @staticmethod
    def _done_text(result: RemovalResult, touched: bool) -> str:
        what = "Touch-up applied" if touched else "Done"
        return (
            f"{what}: {result.model} on {result.provider.upper()}, {result.image.width}×{result.image.height}, "
            f"{readout.ms(result.timings['total'])}."
        )

    def _display(self, im: Image.Image, name: str) -> str:
        """A copy for the slider: transparency over a checkerboard, tiny images scaled up in whole steps.

        The checkerboard is drawn into the copy rather than behind the ``<img>``, so that
        it covers the picture and not the letterbox around it; the download stays the
        engine's own file.
        """
        factor = min(-(-DISPLAY_MIN_SIDE // max(1, min(im.size))), DISPLAY_MAX_SIDE // max(im.size))
        if factor > 1:
            im = im.resize((im.width * factor, im.height * factor), Image.Resampling.NEAREST)
        if im.mode == "RGBA":
            cell = max(8, max(im.size) // 48)
            im = Image.alpha_composite(touchup.checkerboard(im.size, cell), im).convert("RGB")
        return str(self.store.write(FORMATS["png"].encode(im, None), name))

    def _after(self, result: RemovalResult, path: Path) -> str:
        """The result as the slider shows it: the encoded file itself when it is opaque and not tiny."""
        if result.image.mode == "RGBA" or min(result.image.size) < DISPLAY_MIN_SIDE:
            return self._display(result.image, "after.png")
        return str(path)

    # --- the Gallery tab --------------------------------------------------------------------------

    def ui_batch(
        self, files: Sequence[str] | None, provider: str, model: str, output_format: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's documented idiom
    ) -> Iterator[tuple[Any, ...]]:  # fmt: skip
        """Many images in: a gallery, a dated zip with a report, each file on its own, a row per file."""
        names = ("gallery", "files", "table", "status", "history", "chart")
        yield _pack(names, {"status": status_html("run", "Running…")})
        if not files:
            message = "Add one or more images first."
            yield _pack(names, {"status": status_html("error", message)})
            raise gr.Error(message, duration=TOAST_SECONDS, print_exception=False)
        try:
            options = RemovalOptions.from_values({"model": model, "provider": provider, "output_format": output_format})
            # An option, model or provider that fails fails every file: said once, not on every row.
            clock = Clock()
            outcomes = self._batch(
                files, options, progress.tqdm(list(files), desc="Removing backgrounds"), FATAL_ERRORS
            )
        except RemovalError as exc:
            yield _pack(names, {"status": status_html("error", exc.message)})
            raise
        done = [o for o in outcomes if o.path is not None]
        stamp = time.strftime("%Y-%m-%d-%H%M")
        zip_name = f"cutouts-{stamp}-{len(done)}-of-{len(outcomes)}.zip"
        report = gallery_report([o.item for o in outcomes if o.item], options, zip_name, clock.elapsed_s())
        zip_path = self._zip(zip_name, done, report)
        failed = [o for o in outcomes if o.error is not None]
        text = f"{len(done)} of {len(outcomes)} cut out"
        text += f"; {len(failed)} failed (see the table and _report.json)." if failed else "."
        yield _pack(
            names,
            {
                "gallery": [(str(o.path), o.file) for o in done],
                "files": [zip_path, *(str(o.path) for o in done)],
                "table": [
                    [
                        o.file,
                        "ok" if o.result else f"error: {o.error.message if o.error else ''}",
                        o.result.provider if o.result else None,
                        round(o.result.timings["total"]) if o.result else None,
                    ]
                    for o in outcomes
                ],
                "status": status_html("error" if len(failed) == len(outcomes) else "done", text),
                "history": readout.history_html(self.engine),
                "chart": readout.recent_chart_html(self.engine),
            },
        )

    def _batch(
        self, files: Sequence[str], options: RemovalOptions, each: Any, fatal: tuple[type[Exception], ...] = ()
    ) -> list[Outcome]:
        """Every file through the engine; one bad file stops nothing, an error of a ``fatal`` type stops all."""
        outcomes: list[Outcome] = []
        taken: set[str] = set()
        for file in each:
            name = Path(file).name
            outcome = Outcome(name)
            clock = Clock()
            try:
                with self.activity.running(GALLERY, f"a gallery of {len(files)} images"):
                    result = self.engine.remove(Path(file), options)
            except fatal:
                raise
            except RemovalError as exc:
                outcome.error = exc
                model = options.model or self.engine.settings.default_model
                outcome.item = ItemOutcome.failed(name, exc.code, exc.message, ms=clock.elapsed_ms(), model=model)
                outcomes.append(outcome)
                continue
            outcome.result = result
            outcome.name = _unique(output_name(file, result), taken)
            outcome.path = self.store.write(result.data, outcome.name)
            outcome.item = ItemOutcome.done(
                name, outcome.name, result.model, result.provider, result.timings, clock.elapsed_ms()
            )
            outcomes.append(outcome)
        return outcomes

    def _zip(self, name: str, outcomes: Sequence[Outcome], report: str | None = None) -> str:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # images are compressed already
            for outcome in outcomes:
                assert outcome.path is not None
                zf.write(outcome.path, outcome.name)
            if report is not None:
                zf.writestr("_report.json", report)
        return str(self.store.write(buf.getvalue(), name))

    # --- the Webcam tab's live mode -------------------------------------------------------------------

    def webcam_frame(
        self, frame: np.ndarray | None, provider: str, model: str, state: dict[str, Any] | None
    ) -> tuple[np.ndarray | None, str, dict[str, Any]]:
        """One live frame: the cutout and frames per second over the last few frames."""
        state = dict(state or {})
        if frame is None:
            return None, "", state
        options = RemovalOptions.from_values({"model": model, "provider": provider, "output_format": "webp"})
        result = self.engine.remove(frame, options)
        stamps = [*state.get("stamps", [])[-9:], time.monotonic()]
        fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
        readout_text = (
            f"{fps:.1f} frames/s · {result.provider} · {result.model} · inference {result.timings['inference']:.0f} ms"
        )
        return np.asarray(result.image), f'<div class="fps">{readout_text}</div>', {"stamps": stamps}

    # --- page load --------------------------------------------------------------------------------

    def page_state(self) -> tuple[Any, ...]:
        """What a freshly opened page shows: the read-outs since start, the models with their speeds, warm-up."""
        choices = readout.model_choices(self.engine.settings, self.engine)
        return (
            readout.history_html(self.engine),
            readout.recent_chart_html(self.engine),
            gr.update(choices=choices),
            gr.update(choices=choices),
            gr.update(choices=choices),
            gr.update(info=WARMING_INFO if warming_up() else ALPHA_MATTING_INFO),
        )


def warming_up() -> bool:
    """Alpha matting's start-up warm-up is still running (its first use would wait for the compiler)."""
    return ALPHA_MATTING_WARMUP.warming


def _unique(name: str, taken: set[str]) -> str:
    stem, dot, ext = name.rpartition(".")
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}{dot}{ext}"
    taken.add(candidate)
    return candidate


def format_choices() -> list[str]:
    return list(FORMATS)


__all__ = ["HEAVY", "LIGHT", "Handlers", "OutputStore", "user_errors"]
