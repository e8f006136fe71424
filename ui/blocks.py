"""``build_ui(settings)``: the Gradio Blocks of the WebUI, importable without launching.

Layout first (provider toggle, then the Upload, Webcam and Gallery tabs and the
readout), event wiring after. The named API endpoints (``/remove_background``,
``/remove_background_batch``) are wired here too, on hidden components generated
from ``core.options.OPTIONS`` (file components for images, so that Gradio never
decodes or re-encodes the images they carry; raw values for the rest, so that the
engine's parser, not Gradio's, reads them). The Benchmark tab, and with it the
benchmark package, is imported only where the ``benchmark_tab`` setting is on.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import FileData
from gradio.utils import NamedString

from base.assets import EXAMPLE_PHOTOS, photo
from core import Engine, Settings, available_providers
from core.options import OPTIONS, QUOTE_CHARS, kind_of
from models.registry import MODELS
from ui.handlers import (
    Handlers,
    OutputStore,
    api_default,
    format_choices,
    requests_frame,
    stats_markdown,
    user_errors,
    with_option_parameters,
)

log = logging.getLogger(__name__)
LIVE_MODEL = "u2netp"  # the fastest model (python -m benchmark): the one that keeps up with a camera on a CPU


def uploaded_file(**kwargs: Any) -> gr.File:
    """A ``gr.File`` whose handler gets the cached upload's path, and no stray temporary file.

    Gradio 6.31's ``File.preprocess`` (``type="filepath"``) also creates an empty
    ``NamedTemporaryFile(delete=False)`` in the cache for every file it hands over, and
    neither deletes it nor tracks it for ``delete_cache``: one leaked file per request.
    The fix is bound to the instance, not made a subclass: Gradio writes a ``.pyi`` stub
    beside the module of every component subclass at import, which fails where the code
    is read-only (the Docker image runs as a user who does not own /app).
    """
    component = gr.File(**kwargs)
    original = component._process_single_file

    def process_single_file(f: FileData) -> NamedString | bytes:
        if component.type == "filepath" and not component.file_types:
            return NamedString(f.path)
        return original(f)

    component._process_single_file = process_single_file  # type: ignore[method-assign]
    return component


def raw_value(component: gr.components.Component) -> gr.components.Component:
    """The component hands its value to the handler as sent, unconverted.

    The engine's one parser then reads it as REST's values are read: ``"false"`` is
    false, ``"abc"`` for a number is an ``InvalidOption``, never Gradio's traceback.
    Bound to the instance, not a subclass, for the reason ``uploaded_file`` gives.
    """
    component.preprocess = lambda payload: payload  # type: ignore[method-assign]
    return component


def quiet_input_errors(demo: gr.Blocks) -> gr.Blocks:
    """An input Gradio cannot preprocess (a file path it did not upload, a string for a file, a
    wrong type from a script) is a short ``gr.Error`` and one log line, not a traceback.

    Gradio prints the traceback of any exception from ``preprocess_data`` and, with
    ``show_error``, sends its text back, which may quote the whole bad input. Bound to the
    instance, not a subclass, for the reason ``uploaded_file`` gives.
    """
    original = demo.preprocess_data

    async def preprocess_data(block_fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(block_fn, *args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever Gradio's preprocessing raises on bad input
            rid = uuid.uuid4().hex[:12]
            reason = _cut(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            log.info("request %s: %s: input refused: %s", rid, getattr(block_fn, "name", "event"), reason)
            raise gr.Error(f"Invalid input: {reason}", print_exception=False) from None

    demo.preprocess_data = preprocess_data  # type: ignore[method-assign]
    return demo


def _cut(text: str, limit: int = QUOTE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def option_component(f: Any, settings: Settings) -> gr.components.Component:
    """The client API's input for one option (hidden; named and typed for ``view_api``)."""
    kind, value = kind_of(f), api_default(f, settings)
    if kind == "image":
        return uploaded_file(label=f.name)
    if kind == "bool":
        return raw_value(gr.Checkbox(value=value, label=f.name))
    if kind == "int":
        return raw_value(gr.Number(value=value, label=f.name))
    return raw_value(gr.Textbox(value=value, label=f.name))


def provider_choices() -> tuple[list[tuple[str, str]], str]:
    """Radio choices for the providers that can run, and a note on those that cannot."""
    infos = available_providers()
    choices = [("Auto (best available)", "auto")] + [(p.name.upper(), p.name) for p in infos if p.available]
    missing = [f"**{p.name.upper()}**: {p.reason}" for p in infos if not p.available]
    note = "Unavailable here: " + "; ".join(missing) if missing else "All providers are available."
    return choices, note


def build_ui(settings: Settings, engine: Engine | None = None, output_dir: Path | None = None) -> gr.Blocks:
    engine = engine or Engine(settings)
    store = OutputStore(output_dir or Path(tempfile.mkdtemp(prefix="rembg-webui-")))
    handlers = Handlers(engine, store)
    models = list(MODELS)
    provider_list, provider_note = provider_choices()

    # Gradio 6: delete_cache prunes uploads and results older than an hour, every hour.
    with gr.Blocks(title="Background removal", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# Background removal\nU²-Net on onnxruntime. Everything runs on this server.")
        with gr.Row():
            runnable = {value for _, value in provider_list}
            provider = gr.Radio(
                provider_list,
                value=settings.default_provider if settings.default_provider in runnable else "auto",
                label="Run on",
                info="Switches per request; the readout shows what really ran.",
                elem_id="provider",
                scale=3,
            )
            gr.Markdown(provider_note, elem_id="provider-note")

        with gr.Tabs():
            with gr.Tab("Upload", id="upload"):
                with gr.Row():
                    with gr.Column():
                        image = gr.Image(
                            type="filepath", sources=["upload", "clipboard"], label="Image", elem_id="upload-image"
                        )
                        with gr.Accordion("Options", open=False):
                            model = gr.Dropdown(models, value=settings.default_model, label="Model", elem_id="model")
                            output_format = gr.Radio(format_choices(), value="png", label="Output format")
                            quality = gr.Slider(
                                0, 100, value=0, step=1, label="Quality (WebP/JPEG)", info="0: lossless WebP, JPEG 90"
                            )
                            only_mask = gr.Checkbox(label="Mask only")
                            background = gr.Radio(
                                ["transparent", "colour", "image"], value="transparent", label="Background"
                            )
                            color = gr.ColorPicker(value="#ffffff", label="Background colour")
                            background_image = gr.Image(type="filepath", label="Background image", height=160)
                            with gr.Row():
                                crop = gr.Checkbox(label="Crop to subject")
                                crop_margin = gr.Number(value=0, precision=0, minimum=0, label="Margin (px)")
                            alpha_matting = gr.Checkbox(label="Alpha matting (slow, finer edges)")
                            with gr.Row():
                                fg = gr.Slider(0, 255, value=240, step=1, label="Foreground threshold")
                                bg = gr.Slider(0, 255, value=10, step=1, label="Background threshold")
                                erode = gr.Slider(0, 20, value=10, step=1, label="Erode size")
                            post_process = gr.Checkbox(label="Smooth the mask (post-process)")
                        run = gr.Button("Remove background", variant="primary", elem_id="run")
                        gr.Examples([[str(photo(e))] for e in EXAMPLE_PHOTOS], inputs=[image])
                    with gr.Column():
                        slider = gr.ImageSlider(type="filepath", label="Before / after", elem_id="slider")
                        download = gr.File(label="Download", elem_id="download")

            with gr.Tab("Webcam", id="webcam"):
                live_model = gr.Dropdown(models, value=LIVE_MODEL, label="Model")
                with gr.Row():
                    with gr.Column():
                        snapshot = gr.Image(type="filepath", sources=["webcam"], label="Snapshot")
                        snap_run = gr.Button("Cut out snapshot", variant="primary")
                    snap_out = gr.ImageSlider(type="filepath", label="Before / after")
                with gr.Row():
                    live_in = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Live", elem_id="live")
                    live_out = gr.Image(label="Live cutout", format="webp", elem_id="live-out")
                fps = gr.Markdown(elem_id="fps")
                live_state = gr.State({})

            with gr.Tab("Gallery", id="gallery"):
                with gr.Row():
                    with gr.Column():
                        files = uploaded_file(file_count="multiple", label="Images", elem_id="gallery-files")
                        batch_format = gr.Radio(format_choices(), value="png", label="Output format")
                        batch_run = gr.Button("Remove backgrounds", variant="primary", elem_id="gallery-run")
                    with gr.Column():
                        gallery = gr.Gallery(label="Cutouts", columns=3, elem_id="gallery")
                        zip_file = gr.File(label="All cutouts (zip)")
                status = gr.Dataframe(
                    headers=["file", "status", "provider", "total ms"], label="Per file", elem_id="gallery-status"
                )

            if settings.benchmark_tab:
                from ui.benchmark_tab import benchmark_tab  # the benchmark (matplotlib) only when shown

                benchmark_tab(engine, store.root)

        with gr.Accordion("Readout", open=True):
            with gr.Row():
                report = gr.JSON(label="Last request", elem_id="readout")
                with gr.Column():
                    stats = gr.Markdown(stats_markdown(engine), elem_id="stats")
                    # Starts as None: a plot that starts from an empty frame with a colour never draws its lines.
                    chart = gr.LinePlot(
                        None, x="request", y="total_ms", color="provider",
                        label="Recent requests (total ms)", height=220,
                    )  # fmt: skip

        # Hidden components carrying the named client-API endpoints.
        with gr.Group(visible=False):
            api_image = uploaded_file(label="image")
            api_options = {f.name: option_component(f, settings) for f in OPTIONS.values()}
            api_model, api_provider, api_format = (api_options[n] for n in ("model", "provider", "output_format"))
            api_file = gr.File(label="cutout")
            api_report = gr.JSON(label="report")
            api_files = uploaded_file(file_count="multiple", label="images")
            api_zip = gr.File(label="zip")

        # --- wiring -------------------------------------------------------------------
        inference = {"concurrency_id": "inference", "concurrency_limit": _concurrency(settings)}
        run.click(
            user_errors(handlers.ui_remove),
            [image, provider, model, output_format, quality, only_mask, background, color, background_image,
             crop, crop_margin, alpha_matting, fg, bg, erode, post_process],
            [slider, download, report, chart, stats],
            api_visibility="private", **inference,
        )  # fmt: skip
        snap_run.click(
            user_errors(handlers.ui_snapshot),
            [snapshot, provider, live_model],
            [snap_out, download, report, chart, stats],
            api_visibility="private",
            **inference,
        )
        # No trigger_mode="always_last" here: in Gradio 6 it stalls the webcam stream after its first frame.
        live_in.stream(
            user_errors(handlers.webcam_frame),
            [live_in, provider, live_model, live_state],
            [live_out, fps, live_state],
            stream_every=0.2, time_limit=120, api_visibility="private",
            concurrency_id="live", concurrency_limit=1,
        )  # fmt: skip
        batch_run.click(
            user_errors(handlers.batch),
            [files, provider, model, batch_format],
            [gallery, zip_file, status],
            api_visibility="private",
            **inference,
        ).then(lambda: (requests_frame(engine), stats_markdown(engine)), None, [chart, stats], api_visibility="private")
        api_trigger = gr.Button(visible=False)
        remove_background = with_option_parameters(
            handlers.remove_background, "image", settings,
            "Remove the background of an image; return the encoded cutout and a report (provider, size, timings).",
        )  # fmt: skip
        api_trigger.click(
            user_errors(remove_background), [api_image, *api_options.values()], [api_file, api_report],
            api_name="remove_background", **inference,
        )  # fmt: skip
        api_trigger.click(
            user_errors(handlers.remove_background_batch),
            [api_files, api_model, api_provider, api_format],
            [api_zip, api_report],
            api_name="remove_background_batch",
            **inference,
        )
        # Queued requests that arrive together run as one batch (one inference call with u2net-dynamic).
        api_trigger.click(
            handlers.remove_background_batched,
            [api_image, api_model, api_provider, api_format],
            [api_file, api_report],
            api_name="remove_background_batched", batch=True, max_batch_size=8, **inference,
        )  # fmt: skip
    return quiet_input_errors(demo)


def _concurrency(settings: Settings) -> int:
    """Inference events at once: one per session slot of each provider that can run.

    On a CPU-only machine that is ``inference_concurrency`` (1): the queue then
    matches the serialised CPU session, and queue positions are honest.
    """
    runnable = sum(1 for p in available_providers() if p.available)
    return max(1, runnable * settings.inference_concurrency)
