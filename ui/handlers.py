"""Event handlers of the WebUI and the Gradio client API: a few lines each around ``core``.

Every widget and API value becomes options through the engine's one parser
(``RemovalOptions.from_values``, by way of ``ui.form``), and every image reaches the
engine as the file the browser uploaded: the engine decodes it, as it does for REST
and the library, so all three give the same bytes. Typed engine errors become
``gr.Error`` with the error's own message, once, in ``ui.errors.user_errors``;
nothing else reaches the page, so no traceback is ever shown. The WebUI's handlers are generators: their first update
clears the status line ("Running..."), their last sets it to what happened, an
error included, which then stays until the next run.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from base.settings import Settings
from base.timing import Clock
from core import (
    Engine,
    RemovalError,
    RemovalOptions,
    RemovalResult,
)
from core.formats import FORMATS
from core.imaging import ALPHA_MATTING_WARMUP
from core.outcome import FATAL_ERRORS, gallery_report
from ui import readout, touchup
from ui.activity import GALLERY, LIGHT, Activity
from ui.errors import user_error
from ui.form import FORM, Form
from ui.gallery_report import Outcome, unique, zip_bytes
from ui.store import OutputStore, output_name

log = logging.getLogger(__name__)
ALPHA_MATTING_INFO = "Finer hair and fur edges; seconds more per image (runs in the heavy queue)."
WARMING_INFO = "Warming up: pymatting compiles its code on first use since start; this note changes when ready."
#: Results smaller than this on their shorter side are shown scaled up (pixelated) in the slider.
DISPLAY_MIN_SIDE = 256
#: ...but never beyond this many on their longer side (a 1x10000 strip stays as it is).
DISPLAY_MAX_SIDE = 2048


#: What the Upload and Webcam handlers update, in order (``ui.blocks`` wires the same names).
RESULT_OUTPUTS = ("slider", "files", "status", "last", "history", "chart", "editor", "touch")
#: What applying a touch-up updates: all but the editor, which is its input (``touchup_picture`` follows).
TOUCHUP_OUTPUTS = tuple(n for n in RESULT_OUTPUTS if n != "editor")
#: What a gallery run updates, in order.
GALLERY_OUTPUTS = ("gallery", "files", "table", "status", "history", "chart")


def status_html(kind: str, text: str) -> str:
    """The status line under the button: idle, wait, run, done or error; an error stays until the next run or upload."""
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


class Handlers:
    """The functions wired to events; each calls ``Engine.remove`` and shapes its result."""

    def __init__(self, engine: Engine, store: OutputStore, activity: Activity | None = None, form: Form = FORM) -> None:
        self.engine = engine
        self.store = store
        self.activity = activity or Activity()
        self.form = form

    def _remove(self, image: str | None, options: RemovalOptions) -> tuple[RemovalResult, Path]:
        if not image:
            raise user_error("Add an image first.")
        result = self.engine.remove(Path(image), options)
        return result, self.store.write(result.data, output_name(image, result))

    # --- the client API ---------------------------------------------------------------------

    def remove_background(self, image: str | None, *values: Any) -> tuple[str, dict[str, Any]]:
        """Remove the background of an image; return the encoded cutout and a report.

        ``values``: the options in the table's order (the client API's parameters
        after ``image``; see ``ui.form.Form.with_parameters``).
        """
        options = self.form.parse(dict(zip(self.form.rows, values, strict=False)))
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
        options = self.form.parse({"model": model, "provider": provider, "output_format": output_format})
        outcomes = self._batch(files, options, list(files))
        done = [o for o in outcomes if o.path is not None]
        zip_path = self._zip("cutouts.zip", done) if done else None
        report = [
            {
                "file": o.file,
                "status": o.status,
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
                options = self.form.parse(
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
        form = dict(zip(self.form.fields, values, strict=True))
        yield from self._run(lane, image, form, None, RESULT_OUTPUTS)

    def ui_touchup(self, lane: str, editor: Mapping[str, Any] | None, touch: Mapping[str, Any] | None) -> Any:
        """Apply the strokes painted on the result as the engine's ``mask_edit``, at full resolution."""
        if not touch:
            yield _pack(TOUCHUP_OUTPUTS, {"status": status_html("error", "Cut out an image first, then paint on it.")})
            raise user_error("Cut out an image first, then paint on it.")
        layers = [layer for layer in (editor or {}).get("layers") or [] if layer]
        if not layers:
            message = "Paint on the picture first: green keeps, red removes."
            yield _pack(TOUCHUP_OUTPUTS, {"status": status_html("error", message)})
            raise user_error(message)
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
            options = self.form.options(form, edit)
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
        names = GALLERY_OUTPUTS
        yield _pack(names, {"status": status_html("run", "Running…")})
        if not files:
            message = "Add one or more images first."
            yield _pack(names, {"status": status_html("error", message)})
            raise user_error(message)
        try:
            options = self.form.parse({"model": model, "provider": provider, "output_format": output_format})
            # An option, model or provider that fails fails every file: said once, not on every row.
            clock = Clock()
            each = progress.tqdm(list(files), desc="Removing backgrounds")
            outcomes = self._batch(files, options, each, FATAL_ERRORS)
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
                        o.status,
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
                outcomes.append(outcome.failed(exc, options.model or self.engine.settings.default_model, clock))
                continue
            out_name = unique(output_name(file, result), taken)
            outcomes.append(outcome.done(result, out_name, self.store.write(result.data, out_name), clock))
        return outcomes

    def _zip(self, name: str, outcomes: Sequence[Outcome], report: str | None = None) -> str:
        return str(self.store.write(zip_bytes(outcomes, report), name))

    # --- the Webcam tab's live mode -------------------------------------------------------------------

    def webcam_frame(
        self, frame: np.ndarray | None, provider: str, model: str, state: dict[str, Any] | None
    ) -> tuple[np.ndarray | None, str, dict[str, Any]]:
        """One live frame: the cutout and frames per second over the last few frames."""
        state = dict(state or {})
        if frame is None:
            return None, "", state
        # A camera wants frames more than exactness: the fastest build of the model that passed the gate here.
        options = self.form.parse({"model": model, "provider": provider, "output_format": "webp", "precision": "fast"})
        result = self.engine.remove(frame, options)
        stamps = [*state.get("stamps", [])[-9:], time.monotonic()]
        fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
        readout_text = (
            f"{fps:.1f} frames/s · {result.provider} · {result.model} · inference {result.timings['inference']:.0f} ms"
        )
        return np.asarray(result.image), f'<div class="fps">{readout_text}</div>', {"stamps": stamps}

    def precision_words(self, model: str) -> Any:
        """The Precision control's choices for ``model``: Fast's words are that model's figures here."""
        return gr.update(choices=readout.precision_choices(self.engine.settings, model))

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


__all__ = ["GALLERY_OUTPUTS", "RESULT_OUTPUTS", "TOUCHUP_OUTPUTS", "Handlers", "status_html", "warming_up"]
