"""Event handlers of the WebUI and the Gradio client API: a few lines each around ``core``.

Every widget and API value becomes options through the engine's one parser
(``RemovalOptions.from_values``). Typed engine errors become ``gr.Error`` with the
error's own message, once, in ``user_errors``; nothing else reaches the page, so no
traceback is ever shown.
"""

from __future__ import annotations

import functools
import inspect
import io
import logging
import time
import uuid
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import gradio as gr
import numpy as np
import pandas as pd

from base.files import atomic_write
from base.settings import Settings
from core import Engine, RemovalError, RemovalOptions, RemovalResult
from core.formats import FORMATS
from core.options import OPTIONS, kind_of

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Show typed engine errors to the user as ``gr.Error`` (one log line each); log anything unexpected."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except RemovalError as exc:
            log.info("request %s: %s -> %s", uuid.uuid4().hex[:12], fn.__name__, exc.code)
            raise gr.Error(exc.message, title=exc.code.replace("_", " ").capitalize(), print_exception=False) from None
        except gr.Error:
            raise
        except Exception:
            rid = uuid.uuid4().hex[:12]
            log.exception("request %s: unexpected error in %s", rid, fn.__name__)
            message = f"Something went wrong on the server; it has been logged as request {rid}."
            raise gr.Error(message, print_exception=False) from None

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
    call.__name__ = fn.__name__
    return call


def output_name(source: str | None, result: RemovalResult) -> str:
    stem = Path(source).stem if source else "image"
    suffix = "mask" if result.image.mode == "L" else "cutout"
    return f"{stem}-{suffix}{FORMATS[result.format].extension}"


def requests_frame(engine: Engine) -> pd.DataFrame:
    """Recent requests for the live latency chart."""
    samples = engine.requests.samples()
    return pd.DataFrame(
        {
            "request": list(range(engine.requests.count - len(samples) + 1, engine.requests.count + 1)),
            "total_ms": [s.total_ms for s in samples],
            "provider": [s.provider for s in samples],
        }
    )


def stats_markdown(engine: Engine) -> str:
    summary = engine.requests.summary()
    if not summary:
        return "No requests yet."
    lines = [
        "| provider | requests | total p50 | total p95 | inference p50 | inference p95 |",
        "|---|---|---|---|---|---|",
    ]
    for provider, s in summary.items():
        lines.append(
            f"| {provider} | {s['requests']:.0f} | {s['total_p50_ms']:.0f} ms | {s['total_p95_ms']:.0f} ms | "
            f"{s['inference_p50_ms']:.0f} ms | {s['inference_p95_ms']:.0f} ms |"
        )
    return "\n".join(lines)


class Handlers:
    """The functions wired to events; each calls ``Engine.remove`` and shapes its result."""

    def __init__(self, engine: Engine, store: OutputStore) -> None:
        self.engine = engine
        self.store = store

    def _remove(self, image: str | None, options: RemovalOptions) -> tuple[RemovalResult, Path]:
        if not image:
            raise gr.Error("Add an image first.", print_exception=False)
        result = self.engine.remove(Path(image), options)
        return result, self.store.write(result.data, output_name(image, result))

    def remove_background(self, image: str | None, *values: Any) -> tuple[str, dict[str, Any]]:
        """Remove the background of an image; return the encoded cutout and a report.

        ``values``: the options in ``core.options.OPTIONS`` order (the client API's
        parameters after ``image``; see ``with_option_parameters``).
        """
        options = RemovalOptions.from_values(dict(zip(OPTIONS, values, strict=False)))
        result, path = self._remove(image, options)
        return str(path), result.report()

    def ui_remove(
        self, image: str | None, provider: str, model: str, output_format: str, quality: float, only_mask: bool,
        background: str, color: str, background_image: str | None, crop: bool, crop_margin: float,
        alpha_matting: bool, fg: float, bg: float, erode: float, post_process_mask: bool,
    ) -> tuple[tuple[str, str], str, dict[str, Any], pd.DataFrame, str]:  # fmt: skip
        """The Upload tab: before/after, the download and the readout."""
        options = RemovalOptions.from_values(
            {
                "model": model, "provider": provider, "output_format": output_format, "quality": quality,
                "only_mask": only_mask, "bgcolor": color if background == "colour" else None,
                "background_image": background_image if background == "image" else None, "crop": crop,
                "crop_margin": crop_margin, "alpha_matting": alpha_matting,
                "alpha_matting_foreground_threshold": fg, "alpha_matting_background_threshold": bg,
                "alpha_matting_erode_size": erode, "post_process_mask": post_process_mask,
            }
        )  # fmt: skip
        return self._ui_result(image, options)

    def ui_snapshot(
        self, image: str | None, provider: str, model: str
    ) -> tuple[tuple[str, str], str, dict[str, Any], pd.DataFrame, str]:
        """The Webcam tab's snapshot: default options, the tab's model."""
        return self._ui_result(image, RemovalOptions.from_values({"model": model, "provider": provider}))

    def _ui_result(
        self, image: str | None, options: RemovalOptions
    ) -> tuple[tuple[str, str], str, dict[str, Any], pd.DataFrame, str]:
        result, path = self._remove(image, options)
        assert image is not None
        return (image, str(path)), str(path), result.report(), requests_frame(self.engine), stats_markdown(self.engine)

    def batch(
        self, files: Sequence[str] | None, provider: str, model: str, output_format: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's documented idiom
    ) -> tuple[list[tuple[str, str]], str | None, list[list[Any]]]:  # fmt: skip
        """Many images in, a gallery, one zip and a status row per file; one bad file stops nothing."""
        if not files:
            raise gr.Error("Add one or more images first.", print_exception=False)
        options = RemovalOptions.from_values({"model": model, "provider": provider, "output_format": output_format})
        gallery: list[tuple[str, str]] = []
        rows: list[list[Any]] = []
        outputs: list[tuple[str, Path]] = []
        taken: set[str] = set()
        for file in progress.tqdm(list(files), desc="Removing backgrounds"):
            name = Path(file).name
            try:
                result = self.engine.remove(Path(file), options)
            except RemovalError as exc:
                rows.append([name, f"error: {exc.message}", None, None])
                continue
            out_name = _unique(output_name(file, result), taken)
            path = self.store.write(result.data, out_name)
            outputs.append((out_name, path))
            gallery.append((str(path), name))
            rows.append([name, "ok", result.provider, round(result.timings["total"])])
        zip_path = self._zip(outputs) if outputs else None
        return gallery, zip_path, rows

    def _zip(self, outputs: list[tuple[str, Path]]) -> str:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # images are compressed already
            for name, path in outputs:
                zf.write(path, name)
        return str(self.store.write(buf.getvalue(), "cutouts.zip"))

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
        _, zip_path, rows = self.batch(files, provider, model, output_format, progress=_NoProgress())
        report = [{"file": r[0], "status": r[1], "provider": r[2], "total_ms": r[3]} for r in rows]
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
        readout = (
            f"{fps:.1f} frames/s · {result.provider} · {result.model} · inference {result.timings['inference']:.0f} ms"
        )
        return np.asarray(result.image), readout, {"stamps": stamps}


class _NoProgress:
    """Stands in for ``gr.Progress`` where no progress bar is shown (the API batch)."""

    def tqdm(self, iterable: Sequence[str], desc: str = "") -> Sequence[str]:
        return iterable


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
