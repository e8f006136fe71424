"""``build_ui(settings)``: the Gradio Blocks of the WebUI, importable without launching.

Layout first (the header with the provider toggle, then the Upload, Webcam and
Gallery tabs, the read-outs), event wiring after. Every image input hands the
engine the uploaded file itself (``uploaded_image``, ``uploaded_file``): the engine
decodes it, with its limits and typed errors, exactly as for REST and the library.
The named API endpoints (``/remove_background``, ``/remove_background_batch``,
``/remove_background_batched``) are wired here too, on hidden components generated
from ``core.options.OPTIONS`` (file components for images; raw values for the rest,
so that the engine's parser, not Gradio's, reads them). The Benchmark tab, and with
it the benchmark package, is imported only where the ``benchmark_tab`` setting is on.

Concurrency: small requests (``inference``), heavy ones (alpha matting, 4K and
above: ``heavy``), gallery batches (``gallery``) and the live webcam (``live``) are
separate Gradio concurrency groups, so a small image never waits behind a slow one.
The page picks the lane (``ui.page``: it knows the image's size and the options)
by pressing one of two hidden buttons wired to the same handler.
"""

from __future__ import annotations

import functools
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
from core.catalog import fast_model
from core.options import OPTIONS, QUOTE_CHARS, kind_of
from ui import readout, touchup
from ui.activity import GALLERY, HEAVY, LIGHT, Activity
from ui.handlers import (
    ALPHA_MATTING_INFO,
    BACKGROUNDS,
    RESULT_OUTPUTS,
    TOUCHUP_OUTPUTS,
    UPLOAD_FIELDS,
    WARMING_INFO,
    Handlers,
    OutputStore,
    api_default,
    format_choices,
    status_html,
    user_errors,
    warming_up,
    with_option_parameters,
)
from ui.page import SWATCHES
from ui.urls import guard_url_inputs

log = logging.getLogger(__name__)
#: Gradio's cache (uploads, results) is pruned every 5 minutes of what is 15 minutes old: long past any
#: job's wait in the bounded queue and a download after it; an hour let uploads fill the disk.
CACHE_SWEEP_S = 300
CACHE_AGE_S = 900
IMAGE_HEIGHT = 380  # the input and result boxes on a desktop (CSS makes them shorter on a phone)


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


def uploaded_image(**kwargs: Any) -> gr.Image:
    """A ``gr.Image`` whose handler gets the uploaded file's path, never Gradio's conversion of it.

    Gradio 6.31's ``Image.preprocess`` opens the upload with Pillow and, unless the
    mode already matches ``image_mode``, converts it (RGBA, grey and CMYK to RGB:
    transparency lost, alpha off by up to 16 levels) and re-saves it; a file that is
    not an image fails there, with Gradio's own message and a traceback in the log.
    Handing over the path lets the engine decode it, as REST and the library do.
    Bound to the instance, not a subclass, for the reason ``uploaded_file`` gives.
    """
    component = gr.Image(type="filepath", **kwargs)

    def preprocess(payload: FileData | None) -> str | None:
        return None if payload is None or payload.path is None else NamedString(payload.path)

    component.preprocess = preprocess  # type: ignore[method-assign,assignment]
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
    """Radio choices for the providers that can run, and a disclosure of those that cannot (with why)."""
    return readout.provider_choices()


def build_ui(
    settings: Settings, engine: Engine | None = None, output_dir: Path | None = None, activity: Activity | None = None
) -> gr.Blocks:
    engine = engine or Engine(settings)
    guard_url_inputs(settings)
    store = OutputStore(output_dir or Path(tempfile.mkdtemp(prefix="rembg-webui-")))
    handlers = Handlers(engine, store, activity)
    provider_list, provider_note = provider_choices()
    models = readout.model_choices(settings, engine)
    model_names = [value for _, value in models]
    default_model = settings.default_model if settings.default_model in model_names else model_names[0]
    fast = fast_model(settings, settings.default_provider)  # the one that keeps up with a camera
    live_model = fast if fast in model_names else default_model
    warming = warming_up()

    # Gradio 6: delete_cache prunes uploads and results older than CACHE_AGE_S, every CACHE_SWEEP_S:
    # uploads count against the disk quota (--upload-disk-mb) until they go.
    with gr.Blocks(title="Background removal", delete_cache=(CACHE_SWEEP_S, CACHE_AGE_S)) as demo:
        with gr.Row(elem_id="header", equal_height=True):
            gr.HTML(
                '<div class="brand"><h1>Background removal</h1>'
                "<span>U²-Net on onnxruntime · everything runs on this server</span></div>",
                elem_id="brand",
                padding=False,
            )
            with gr.Row(elem_id="runon"):
                runnable = {value for _, value in provider_list}
                provider = gr.Radio(
                    provider_list,
                    value=settings.default_provider if settings.default_provider in runnable else "auto",
                    label="Run on",
                    elem_id="provider",
                    container=False,
                    scale=0,
                )
                gr.HTML(provider_note, elem_id="provider-note", padding=False)

        with gr.Tabs(elem_id="tabs"):
            # --- Upload ------------------------------------------------------------------------
            with gr.Tab("Upload", id="upload", elem_id="tab-upload"):
                with gr.Row(elem_id="upload-row", equal_height=False):
                    with gr.Column(elem_id="input-col", min_width=300):
                        image = uploaded_image(
                            sources=["upload", "clipboard"],
                            label="Image",
                            elem_id="upload-image",
                            height=IMAGE_HEIGHT,
                            placeholder="Drop an image here, click to choose one, or paste it (Ctrl+V)",
                        )
                        with gr.Row(elem_id="run-row", equal_height=True):
                            model = gr.Dropdown(
                                models,
                                value=default_model,
                                label="Model",
                                container=False,  # one line with the button; "Model" is drawn inside (ui/page.py)
                                elem_id="model",
                                scale=1,
                                min_width=140,
                            )
                            run = gr.Button("Remove background", variant="primary", elem_id="run", scale=1)
                        status = gr.HTML(status_html("idle", ""), elem_id="status", padding=False, min_height=0)
                    with gr.Column(elem_id="output-col", min_width=300):
                        slider = gr.ImageSlider(
                            type="filepath",
                            label="Before / after",
                            elem_id="slider",
                            height=IMAGE_HEIGHT,
                            max_height=IMAGE_HEIGHT,
                            buttons=["fullscreen"],
                        )
                        download = gr.File(label="Download", elem_id="download", file_count="multiple")
                gr.Examples(
                    [[str(photo(e))] for e in EXAMPLE_PHOTOS],
                    inputs=[image],
                    label="Examples",
                    elem_id="examples",
                    example_labels=None,
                )
                with gr.Accordion("Options", open=False, elem_id="options"):
                    with gr.Row(elem_id="options-row"):
                        with gr.Column(min_width=260, elem_classes="option-group"):
                            background = gr.Radio(
                                BACKGROUNDS, value="transparent", label="Background", elem_id="background"
                            )
                            with gr.Row(elem_id="colour-row", equal_height=True):
                                swatches = gr.Radio(
                                    [(name, value) for name, value in SWATCHES],
                                    value=None,
                                    label="Colour",
                                    show_label=False,
                                    elem_id="swatches",
                                    container=False,
                                    scale=3,
                                )
                                color = gr.ColorPicker(
                                    value="#ffffff", label="Any colour", elem_id="colour", scale=1, min_width=90
                                )
                            background_image = uploaded_image(
                                label="Background image",
                                height=150,
                                visible=False,
                                elem_id="background-image",
                                sources=["upload", "clipboard"],
                            )
                            blur = gr.Slider(
                                1, 100, value=20, step=1, label="Blur strength", visible=False, elem_id="blur"
                            )
                        with gr.Column(min_width=220, elem_classes="option-group"):
                            output_format = gr.Radio(format_choices(), value="png", label="Output format")
                            quality = gr.Slider(
                                0, 100, value=0, step=1, label="Quality (WebP/JPEG)", info="0: lossless WebP, JPEG 90"
                            )
                            with gr.Row():
                                only_mask = gr.Checkbox(label="Mask only", min_width=100)
                                post_process = gr.Checkbox(label="Smooth the mask", min_width=120)
                            with gr.Row(equal_height=True):
                                crop = gr.Checkbox(label="Crop to subject", min_width=120)
                                crop_margin = gr.Number(
                                    value=0, precision=0, minimum=0, label="Margin (px)", min_width=90
                                )
                        with gr.Column(min_width=220, elem_classes="option-group"):
                            alpha_matting = gr.Checkbox(
                                label="Alpha matting",
                                info=WARMING_INFO if warming else ALPHA_MATTING_INFO,
                                elem_id="alpha-matting",
                            )
                            with gr.Accordion("Matting thresholds", open=False):
                                fg = gr.Slider(0, 255, value=240, step=1, label="Foreground threshold")
                                bg = gr.Slider(0, 255, value=10, step=1, label="Background threshold")
                                erode = gr.Slider(0, 20, value=10, step=1, label="Erode size")
                        with gr.Column(min_width=220, elem_classes="option-group"):
                            shadow = gr.Checkbox(label="Drop shadow", elem_id="shadow")
                            with gr.Row():
                                shadow_x = gr.Slider(-100, 100, value=15, step=1, label="Offset →", min_width=100)
                                shadow_y = gr.Slider(-100, 100, value=15, step=1, label="Offset ↓", min_width=100)
                            with gr.Row():
                                shadow_blur = gr.Slider(0, 100, value=20, step=1, label="Softness", min_width=100)
                                shadow_opacity = gr.Slider(0, 100, value=50, step=1, label="Opacity %", min_width=100)
                with gr.Accordion("Touch up the result", open=False, elem_id="touchup"):
                    gr.Markdown(
                        "Paint on the result: **green keeps**, **red removes**; then apply. "
                        "The strokes are applied to the mask at the image's full resolution, and the mask "
                        "is offered for download.",
                        elem_id="touchup-help",
                    )
                    editor = gr.ImageEditor(
                        type="filepath",
                        label="Touch-up",
                        elem_id="editor",
                        sources=[],
                        transforms=[],
                        layers=False,
                        brush=gr.Brush(
                            colors=[(touchup.RESTORE, touchup.BRUSH_OPACITY), (touchup.ERASE, touchup.BRUSH_OPACITY)],
                            default_color=(touchup.RESTORE, touchup.BRUSH_OPACITY),
                            color_mode="fixed",
                        ),
                        eraser=gr.Eraser(),
                        height=480,
                        interactive=True,
                    )
                    apply = gr.Button("Apply touch-up", elem_id="touchup-apply", variant="primary")
                touch = gr.State(None)
                # The lanes: the page presses one of these (ui/page.py), by the image's size and the options.
                run_light = gr.Button(visible="hidden", elem_id="run-light")
                run_heavy = gr.Button(visible="hidden", elem_id="run-heavy")
                apply_light = gr.Button(visible="hidden", elem_id="apply-light")
                apply_heavy = gr.Button(visible="hidden", elem_id="apply-heavy")

            # --- Webcam -------------------------------------------------------------------------
            with gr.Tab("Webcam", id="webcam", elem_id="tab-webcam"):
                with gr.Row(equal_height=False):
                    with gr.Column(min_width=300, scale=3):
                        with gr.Row(elem_id="live-row"):
                            live_model = gr.Dropdown(models, value=live_model, label="Model", elem_id="live-model")
                            fps = gr.HTML('<div class="fps">Start live to see frames per second.</div>', elem_id="fps")
                        with gr.Row(equal_height=False):
                            live_in = gr.Image(
                                sources=["webcam"], streaming=True, type="numpy", label="Live", elem_id="live"
                            )
                            live_out = gr.Image(label="Live cutout", format="webp", elem_id="live-out")
                    with gr.Column(min_width=300, scale=2):
                        snapshot = uploaded_image(sources=["webcam"], label="Snapshot", elem_id="snapshot")
                        snap_run = gr.Button("Cut out snapshot", variant="primary", elem_id="snap-run")
                        snap_status = gr.HTML(status_html("idle", ""), elem_id="snap-status", padding=False)
                        snap_out = gr.ImageSlider(type="filepath", label="Before / after", elem_id="snap-slider")
                        snap_download = gr.File(label="Download", file_count="multiple", elem_id="snap-download")
                live_state = gr.State({})

            # --- Gallery ------------------------------------------------------------------------
            with gr.Tab("Gallery", id="gallery", elem_id="tab-gallery"):
                with gr.Row(equal_height=False):
                    with gr.Column(min_width=300):
                        files = uploaded_file(
                            file_count="multiple", label="Images", elem_id="gallery-files", height=220
                        )
                        with gr.Row(equal_height=True):
                            batch_model = gr.Dropdown(
                                models, value=default_model, label="Model", elem_id="gallery-model", min_width=220
                            )
                            batch_format = gr.Radio(format_choices(), value="png", label="Output format", min_width=220)
                        batch_run = gr.Button("Remove backgrounds", variant="primary", elem_id="gallery-run")
                        batch_status = gr.HTML(status_html("idle", ""), elem_id="gallery-status-line", padding=False)
                    with gr.Column(min_width=300):
                        gallery = gr.Gallery(label="Cutouts", columns=3, height=300, elem_id="gallery")
                        zip_file = gr.File(
                            label="Downloads (the zip first, with _report.json)",
                            file_count="multiple",
                            elem_id="gallery-downloads",
                            height=140,
                        )
                status_table = gr.Dataframe(
                    headers=["file", "status", "provider", "total ms"], label="Per file", elem_id="gallery-status"
                )

            if settings.benchmark_tab:
                from ui.benchmark_tab import benchmark_tab  # the benchmark (matplotlib) only when shown

                benchmark_tab(engine, store.root)

        gr.HTML(readout.more_models_html(settings), elem_id="more-models", padding=False)
        with gr.Accordion("Readout", open=True, elem_id="readout-box"):
            with gr.Row(equal_height=False):
                last = gr.HTML(readout.last_request_html(None), elem_id="readout", min_height=0, min_width=300)
                history = gr.HTML(readout.history_html(engine), elem_id="stats", min_height=0, min_width=260)
                chart = gr.HTML(readout.recent_chart_html(engine), elem_id="chart", min_height=0, min_width=300)

        # Hidden components carrying the named client-API endpoints.
        with gr.Group(visible=False):
            api_image = uploaded_file(label="image")
            api_options = {f.name: option_component(f, settings) for f in OPTIONS.values()}
            api_model, api_provider, api_format = (api_options[n] for n in ("model", "provider", "output_format"))
            api_file = gr.File(label="cutout")
            api_report = gr.JSON(label="report")
            api_files = uploaded_file(file_count="multiple", label="images")
            api_zip = gr.File(label="zip")
        warm_timer = gr.Timer(3, active=warming)

        # --- wiring -------------------------------------------------------------------------
        widgets: dict[str, gr.components.Component] = {
            "provider": provider, "model": model, "output_format": output_format, "quality": quality,
            "only_mask": only_mask, "background": background, "color": color, "background_image": background_image,
            "blur_background": blur, "crop": crop, "crop_margin": crop_margin, "alpha_matting": alpha_matting,
            "alpha_matting_foreground_threshold": fg, "alpha_matting_background_threshold": bg,
            "alpha_matting_erode_size": erode, "post_process_mask": post_process, "shadow": shadow,
            "shadow_offset_x": shadow_x, "shadow_offset_y": shadow_y, "shadow_blur": shadow_blur,
            "shadow_opacity": shadow_opacity,
        }  # fmt: skip
        result_components = {
            "slider": slider, "files": download, "status": status, "last": last, "history": history, "chart": chart,
            "editor": editor, "touch": touch,
        }  # fmt: skip
        outputs = [result_components[n] for n in RESULT_OUTPUTS]
        private: dict[str, Any] = {"api_visibility": "private"}
        lanes = {
            LIGHT: {"concurrency_id": LIGHT, "concurrency_limit": _concurrency(settings)},
            HEAVY: {"concurrency_id": HEAVY, "concurrency_limit": 1},
        }
        # The visible buttons only choose the lane, in the page (no round trip).
        run.click(None, [alpha_matting], None, js="(matting) => { window.rembgRun('run', matting); return []; }")
        apply.click(None, [alpha_matting], None, js="(matting) => { window.rembgRun('apply', matting); return []; }")
        for lane, light_button, apply_button in ((LIGHT, run_light, apply_light), (HEAVY, run_heavy, apply_heavy)):
            light_button.click(
                functools.partial(handlers.wait_status, lane), None, [status], queue=False, show_progress="hidden",
                **private,
            ).then(
                user_errors(functools.partial(handlers.ui_remove, lane)),
                [image, *(widgets[n] for n in UPLOAD_FIELDS)],
                outputs,
                show_progress_on=[slider],
                api_name=f"ui_remove_{lane}",
                **private,
                **lanes[lane],
            )  # fmt: skip
            apply_button.click(
                functools.partial(handlers.wait_status, lane), None, [status], queue=False, show_progress="hidden",
                **private,
            ).then(
                user_errors(functools.partial(handlers.ui_touchup, lane)),
                [editor, touch],
                [result_components[n] for n in TOUCHUP_OUTPUTS],
                show_progress_on=[slider],
                api_name=f"ui_touchup_{lane}",
                **private,
                **lanes[lane],
            ).success(
                handlers.touchup_picture, [touch], [editor], queue=False, show_progress="hidden", **private
            )  # fmt: skip

        # One background control: choosing a colour or an image chooses that background.
        swatches.input(None, [swatches], [color, background], js="(c) => [c, 'colour']")
        color.input(None, None, [background], js="() => ['colour']")
        background_image.upload(None, None, [background], js="() => ['image']")
        background.change(
            lambda b: (gr.update(visible=b == "image"), gr.update(visible=b == "blur")),
            [background],
            [background_image, blur],
            queue=False,
            show_progress="hidden",
            **private,
        )
        snap_run.click(
            user_errors(functools.partial(handlers.ui_snapshot, LIGHT)),
            [snapshot, provider, live_model],
            [snap_out, snap_download, snap_status, last, history, chart],
            show_progress_on=[snap_out],
            **private,
            **lanes[LIGHT],
        )
        # No trigger_mode="always_last" here: in Gradio 6 it stalls the webcam stream after its first frame.
        live_in.stream(
            user_errors(handlers.webcam_frame),
            [live_in, provider, live_model, live_state],
            [live_out, fps, live_state],
            stream_every=0.2, time_limit=120, api_visibility="private", show_progress="hidden",
            concurrency_id="live", concurrency_limit=1,
        )  # fmt: skip
        batch_run.click(
            user_errors(handlers.ui_batch),
            [files, provider, batch_model, batch_format],
            [gallery, zip_file, status_table, batch_status, history, chart],
            show_progress_on=[gallery],
            concurrency_id=GALLERY,
            concurrency_limit=1,
            **private,
        )
        demo.load(
            handlers.page_state,
            None,
            [history, chart, model, batch_model, live_model, alpha_matting],
            queue=False,
            **private,
        )
        warm_timer.tick(
            lambda: (
                gr.update(info=WARMING_INFO if warming_up() else ALPHA_MATTING_INFO),
                gr.Timer(active=warming_up()),
            ),
            None,
            [alpha_matting, warm_timer],
            queue=False,
            show_progress="hidden",
            **private,
        )

        api_trigger = gr.Button(visible=False)
        remove_background = with_option_parameters(
            handlers.remove_background, "image", settings,
            "Remove the background of an image; return the encoded cutout and a report (provider, size, timings).",
        )  # fmt: skip
        api_trigger.click(
            user_errors(remove_background), [api_image, *api_options.values()], [api_file, api_report],
            api_name="remove_background", **lanes[LIGHT],
        )  # fmt: skip
        api_trigger.click(
            user_errors(handlers.remove_background_batch),
            [api_files, api_model, api_provider, api_format],
            [api_zip, api_report],
            api_name="remove_background_batch",
            **lanes[LIGHT],
        )
        # Queued requests that arrive together run as one batch (one inference call with u2net-dynamic).
        api_trigger.click(
            handlers.remove_background_batched,
            [api_image, api_model, api_provider, api_format],
            [api_file, api_report],
            api_name="remove_background_batched", batch=True, max_batch_size=8, **lanes[LIGHT],
        )  # fmt: skip
    return quiet_input_errors(demo)


def _concurrency(settings: Settings) -> int:
    """Small-request events at once: one per session slot of each provider that can run.

    On a CPU-only machine that is ``inference_concurrency`` (1): the queue then
    matches the serialised CPU session, and queue positions are honest.
    """
    runnable = sum(1 for p in available_providers() if p.available)
    return max(1, runnable * settings.inference_concurrency)
