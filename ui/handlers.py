"""Event handlers of the WebUI and the Gradio client API: a few lines each around ``core``.

Typed engine errors become ``gr.Error`` with the error's own message, once, in
``user_errors``; nothing else reaches the page, so no traceback is ever shown.
"""

from __future__ import annotations

import functools
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

from core import Engine, RemovalError, RemovalOptions, RemovalResult
from core.options import FORMAT_ALIASES

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Show typed engine errors to the user as ``gr.Error``; log anything unexpected."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except RemovalError as exc:
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
        folder = self.root / uuid.uuid4().hex
        folder.mkdir()
        path = folder / name
        tmp = folder / f".{name}.part"
        tmp.write_bytes(data)
        tmp.replace(path)  # never a half-written file under the served name
        return path

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


def options_from(
    model: str | None,
    provider: str | None,
    output_format: str = "png",
    quality: float | None = 0,
    only_mask: bool = False,
    bgcolor: str | None = "",
    background_image: str | None = None,
    crop: bool = False,
    crop_margin: float | None = 0,
    alpha_matting: bool = False,
    foreground_threshold: float | None = 240,
    background_threshold: float | None = 10,
    erode_size: float | None = 10,
    post_process_mask: bool = False,
) -> RemovalOptions:
    """Gradio's widget values (numbers arrive as floats, empty strings for "none") as options."""
    return RemovalOptions(
        model=model or None,
        provider=provider or None,
        output_format=output_format or "png",
        quality=_whole(quality) or None,
        only_mask=bool(only_mask),
        bgcolor=bgcolor or None,
        background_image=background_image or None,
        crop=bool(crop),
        crop_margin=_whole(crop_margin) or 0,
        alpha_matting=bool(alpha_matting),
        alpha_matting_foreground_threshold=_whole(foreground_threshold, 240),
        alpha_matting_background_threshold=_whole(background_threshold, 10),
        alpha_matting_erode_size=_whole(erode_size, 10),
        post_process_mask=bool(post_process_mask),
    )


def _whole(value: float | None, default: int = 0) -> int:
    if value is None:
        return default
    return int(value) if float(value).is_integer() else -1  # -1: let validation name the option


def output_name(source: str | None, result: RemovalResult) -> str:
    stem = Path(source).stem if source else "image"
    suffix = "mask" if result.image.mode == "L" else "cutout"
    return f"{stem}-{suffix}.{EXTENSIONS[result.format]}"


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

    def remove_background(
        self, image: str | None, model: str = "", provider: str = "", output_format: str = "png",
        quality: float = 0, only_mask: bool = False, bgcolor: str = "", background_image: str | None = None,
        crop: bool = False, crop_margin: float = 0, alpha_matting: bool = False,
        alpha_matting_foreground_threshold: float = 240, alpha_matting_background_threshold: float = 10,
        alpha_matting_erode_size: float = 10, post_process_mask: bool = False,
    ) -> tuple[str, dict[str, Any]]:  # fmt: skip
        """Remove the background of an image; return the encoded cutout and a report.

        Args:
            image: the image (PNG, JPEG, WebP, BMP, TIFF or GIF), identified by content.
            model: u2net (default), u2netp (fast), u2net_human_seg, silueta, isnet-general-use or isnet-anime.
            provider: auto, cpu, cuda, tensorrt or openvino; the report says which really ran.
            output_format: png, webp or jpeg.
            quality: 0 for lossless WebP and JPEG quality 90, else lossy quality 1-100.
            only_mask: return the mask instead of the cutout.
            bgcolor: background colour as r,g,b[,a] or #rrggbb; empty for transparent.
            background_image: an image to put behind the subject instead of transparency.
            crop: crop the result to the subject.
            crop_margin: pixels kept around the subject when cropping.
            alpha_matting: refine the edges with alpha matting (slower).
            alpha_matting_foreground_threshold: mask values above this are surely foreground (0-255).
            alpha_matting_background_threshold: mask values below this are surely background (0-255).
            alpha_matting_erode_size: erosion of the sure regions, in pixels.
            post_process_mask: smooth the mask with morphological post-processing.
        """
        options = options_from(
            model, provider, output_format, quality, only_mask, bgcolor, background_image, crop, crop_margin,
            alpha_matting, alpha_matting_foreground_threshold, alpha_matting_background_threshold,
            alpha_matting_erode_size, post_process_mask,
        )  # fmt: skip
        result, path = self._remove(image, options)
        return str(path), result.report()

    def ui_remove(
        self, image: str | None, provider: str, model: str, output_format: str, quality: float, only_mask: bool,
        background: str, color: str, background_image: str | None, crop: bool, crop_margin: float,
        alpha_matting: bool, fg: float, bg: float, erode: float, post_process_mask: bool,
    ) -> tuple[tuple[str, str], str, dict[str, Any], pd.DataFrame, str]:  # fmt: skip
        """The Upload tab: before/after, the download and the readout."""
        options = options_from(
            model, provider, output_format, quality, only_mask,
            color if background == "colour" else "", background_image if background == "image" else None,
            crop, crop_margin, alpha_matting, fg, bg, erode, post_process_mask,
        )  # fmt: skip
        return self._ui_result(image, options)

    def ui_snapshot(
        self, image: str | None, provider: str, model: str
    ) -> tuple[tuple[str, str], str, dict[str, Any], pd.DataFrame, str]:
        """The Webcam tab's snapshot: default options, the tab's model."""
        return self._ui_result(image, options_from(model, provider))

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
        options = options_from(model, provider, output_format)
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
        target = self.store.write(b"", "cutouts.zip")
        tmp = target.with_name(".cutouts.zip.part")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:  # images are compressed already
            for name, path in outputs:
                zf.write(path, name)
        tmp.replace(target)
        return str(target)

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
                results = self.engine.remove_many(inputs, options_from(group_model, group_provider, group_format))
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
        result = self.engine.remove(frame, RemovalOptions(model=model, provider=provider, output_format="webp"))
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
    return sorted(set(FORMAT_ALIASES.values()))
