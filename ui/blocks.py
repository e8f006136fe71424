"""``build_ui(settings)``: the Gradio Blocks of the WebUI, importable without launching.

Layout first, wiring after, in Gradio's demo style: ``ui.layout`` builds each part
of the page (the header, the Upload, Webcam and Gallery tabs, the read-outs, the
client API's hidden inputs) as a small record of its components; ``wire`` here then
connects every event. The named API endpoints (``/remove_background``,
``/remove_background_batch``, ``/remove_background_batched``) are wired on hidden
components generated from the options table (file components for images; raw
values for the rest, so that the engine's parser, not Gradio's, reads them). The
Benchmark tab, and with it the benchmark package, is imported only where the
``benchmark_tab`` setting is on.

Concurrency: small requests (``inference``), heavy ones (alpha matting, 4K and
above: ``heavy``), gallery batches (``gallery``) and the live webcam (``live``) are
separate Gradio concurrency groups, so a small image never waits behind a slow one.
The page picks the lane (``ui.page``: it knows the image's size and the options)
by pressing one of two hidden buttons wired to the same handler.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from core import Engine, RemovalOptions, Settings, available_providers
from ui import readout
from ui.activity import GALLERY, HEAVY, LIGHT, Activity
from ui.errors import quiet_input_errors, user_errors
from ui.form import Form
from ui.handlers import (
    ALPHA_MATTING_INFO,
    GALLERY_OUTPUTS,
    RESULT_OUTPUTS,
    TOUCHUP_OUTPUTS,
    WARMING_INFO,
    Handlers,
    status_html,
    warming_up,
)
from ui.layout import (
    ApiInputs,
    Component,
    Models,
    Page,
    build_api_inputs,
    build_gallery_tab,
    build_header,
    build_readout,
    build_upload_tab,
    build_webcam_tab,
)
from ui.store import OutputStore
from ui.urls import guard_url_inputs

#: Gradio's cache (uploads, results) is pruned every 5 minutes of what is 15 minutes old: long past any
#: job's wait in the bounded queue and a download after it; an hour let uploads fill the disk.
CACHE_SWEEP_S = 300
CACHE_AGE_S = 900

# --- the wiring -------------------------------------------------------------------------------------

PRIVATE: dict[str, Any] = {"api_visibility": "private"}


def wire(demo: gr.Blocks, page: Page, handlers: Handlers, settings: Settings) -> None:
    """Every event of the page and the client API, in one place."""
    lanes: dict[str, dict[str, Any]] = {
        LIGHT: {"concurrency_id": LIGHT, "concurrency_limit": _concurrency(settings)},
        HEAVY: {"concurrency_id": HEAVY, "concurrency_limit": 1},
    }
    wire_upload(page, handlers, lanes)
    wire_webcam(page, handlers, lanes)
    wire_gallery(page, handlers)
    wire_page_state(demo, page, handlers)
    wire_api(page.api, handlers, settings, lanes)


def wire_upload(page: Page, handlers: Handlers, lanes: dict[str, dict[str, Any]]) -> None:
    up, out = page.upload, page.readout
    widgets: dict[str, Component] = {"provider": page.header.provider, "model": up.model, **up.options}
    result_components: dict[str, Component] = {
        "slider": up.slider, "files": up.download, "status": up.status, "last": out.last, "history": out.history,
        "chart": out.chart, "editor": up.editor, "touch": up.touch,
    }  # fmt: skip
    outputs = [result_components[n] for n in RESULT_OUTPUTS]
    alpha_matting = up.options["alpha_matting"]
    if "precision" in up.options:
        up.model.change(
            handlers.precision_words, [up.model], [up.options["precision"]], queue=False, show_progress="hidden",
            **PRIVATE,
        )  # fmt: skip
    # The visible buttons only choose the lane, in the page (no round trip).
    up.run.click(None, [alpha_matting], None, js="(matting) => { window.rembgRun('run', matting); return []; }")
    up.apply.click(None, [alpha_matting], None, js="(matting) => { window.rembgRun('apply', matting); return []; }")
    lane_buttons = ((LIGHT, up.run_light, up.apply_light), (HEAVY, up.run_heavy, up.apply_heavy))
    for lane, run_button, apply_button in lane_buttons:
        run_button.click(
            functools.partial(handlers.wait_status, lane), None, [up.status], queue=False, show_progress="hidden",
            **PRIVATE,
        ).then(
            user_errors(functools.partial(handlers.ui_remove, lane)),
            [up.image, *(widgets[n] for n in handlers.form.fields)],
            outputs,
            show_progress_on=[up.slider],
            api_name=f"ui_remove_{lane}",
            **PRIVATE,
            **lanes[lane],
        )  # fmt: skip
        apply_button.click(
            functools.partial(handlers.wait_status, lane), None, [up.status], queue=False, show_progress="hidden",
            **PRIVATE,
        ).then(
            user_errors(functools.partial(handlers.ui_touchup, lane)),
            [up.editor, up.touch],
            [result_components[n] for n in TOUCHUP_OUTPUTS],
            show_progress_on=[up.slider],
            api_name=f"ui_touchup_{lane}",
            **PRIVATE,
            **lanes[lane],
        ).success(
            handlers.touchup_picture, [up.touch], [up.editor], queue=False, show_progress="hidden", **PRIVATE
        )  # fmt: skip

    # A new image starts a new story: the last error and the last result's readout go (no queue, no round trip
    # through a lane). ``change`` also covers an example chosen and the box cleared.
    up.image.change(
        lambda: (status_html("idle", ""), readout.last_request_html(None)), None, [up.status, out.last],
        queue=False, show_progress="hidden", **PRIVATE,
    )  # fmt: skip
    # One background control: choosing a colour or an image chooses that background.
    bg = up.background
    bg.swatches.input(None, [bg.swatches], [bg.color, bg.choice], js="(c) => [c, 'colour']")
    bg.color.input(None, None, [bg.choice], js="() => ['colour']")
    bg.image.upload(None, None, [bg.choice], js="() => ['image']")
    bg.choice.change(
        lambda b: (gr.update(visible=b == "image"), gr.update(visible=b == "blur")),
        [bg.choice],
        [bg.image, bg.blur],
        queue=False,
        show_progress="hidden",
        **PRIVATE,
    )


def wire_webcam(page: Page, handlers: Handlers, lanes: dict[str, dict[str, Any]]) -> None:
    cam, out, provider = page.webcam, page.readout, page.header.provider
    cam.snap_run.click(
        user_errors(functools.partial(handlers.ui_snapshot, LIGHT)),
        [cam.snapshot, provider, cam.model],
        [cam.snap_out, cam.snap_download, cam.snap_status, out.last, out.history, out.chart],
        show_progress_on=[cam.snap_out],
        **PRIVATE,
        **lanes[LIGHT],
    )
    # No trigger_mode="always_last" here: in Gradio 6 it stalls the webcam stream after its first frame.
    cam.live_in.stream(
        user_errors(handlers.webcam_frame),
        [cam.live_in, provider, cam.model, cam.live_state],
        [cam.live_out, cam.fps, cam.live_state],
        stream_every=0.2, time_limit=120, api_visibility="private", show_progress="hidden",
        concurrency_id="live", concurrency_limit=1,
    )  # fmt: skip


def wire_gallery(page: Page, handlers: Handlers) -> None:
    tab, out = page.gallery, page.readout
    components = {
        "gallery": tab.gallery, "files": tab.downloads, "table": tab.table, "status": tab.status,
        "history": out.history, "chart": out.chart,
    }  # fmt: skip
    tab.run.click(
        user_errors(handlers.ui_batch),
        [tab.files, page.header.provider, tab.model, tab.output_format],
        [components[n] for n in GALLERY_OUTPUTS],
        show_progress_on=[tab.gallery],
        concurrency_id=GALLERY,
        concurrency_limit=1,
        **PRIVATE,
    )


def wire_page_state(demo: gr.Blocks, page: Page, handlers: Handlers) -> None:
    """A fresh page's read-outs and model menus, and the alpha-matting note while it warms up."""
    alpha_matting = page.upload.options["alpha_matting"]
    demo.load(
        handlers.page_state,
        None,
        [page.readout.history, page.readout.chart, page.upload.model, page.gallery.model, page.webcam.model,
         alpha_matting],
        queue=False,
        **PRIVATE,
    )  # fmt: skip
    page.warm_timer.tick(
        lambda: (
            gr.update(info=WARMING_INFO if warming_up() else ALPHA_MATTING_INFO),
            gr.Timer(active=warming_up()),
        ),
        None,
        [alpha_matting, page.warm_timer],
        queue=False,
        show_progress="hidden",
        **PRIVATE,
    )


def wire_api(api: ApiInputs, handlers: Handlers, settings: Settings, lanes: dict[str, dict[str, Any]]) -> None:
    """The named client-API endpoints, on a hidden button."""
    model, provider, output_format = (api.options[n] for n in ("model", "provider", "output_format"))
    trigger = gr.Button(visible=False)
    remove_background = handlers.form.with_parameters(
        handlers.remove_background, "image", settings,
        "Remove the background of an image; return the encoded cutout and a report (provider, size, timings).",
    )  # fmt: skip
    trigger.click(
        user_errors(remove_background), [api.image, *api.options.values()], [api.file, api.report],
        api_name="remove_background", **lanes[LIGHT],
    )  # fmt: skip
    trigger.click(
        user_errors(handlers.remove_background_batch),
        [api.files, model, provider, output_format],
        [api.zip, api.report],
        api_name="remove_background_batch",
        **lanes[LIGHT],
    )
    # Queued requests that arrive together run as one batch (one inference call with u2net-dynamic).
    trigger.click(
        handlers.remove_background_batched,
        [api.image, model, provider, output_format],
        [api.file, api.report],
        api_name="remove_background_batched", batch=True, max_batch_size=8, **lanes[LIGHT],
    )  # fmt: skip


def _concurrency(settings: Settings) -> int:
    """Small-request events at once: one per session slot of each provider that can run.

    On a CPU-only machine that is ``inference_concurrency`` (1): the queue then
    matches the serialised CPU session, and queue positions are honest.
    """
    runnable = sum(1 for p in available_providers() if p.available)
    return max(1, runnable * settings.inference_concurrency)


# --- the page ---------------------------------------------------------------------------------------


def build_ui(
    settings: Settings,
    engine: Engine | None = None,
    output_dir: Path | None = None,
    activity: Activity | None = None,
    options: type[RemovalOptions] = RemovalOptions,
) -> gr.Blocks:
    """The WebUI and the client API over ``engine``; results go to ``output_dir`` (a temporary folder).

    ``options``: the options class whose rows the page offers (a test passes a subclass with a row more).
    """
    engine = engine or Engine(settings)
    guard_url_inputs(settings)
    store = OutputStore(output_dir or Path(tempfile.mkdtemp(prefix="rembg-webui-")))
    form = Form(options)
    handlers = Handlers(engine, store, activity, form)
    models = Models.of(settings, engine)
    warming = warming_up()

    # Gradio 6: delete_cache prunes uploads and results older than CACHE_AGE_S, every CACHE_SWEEP_S:
    # uploads count against the disk quota (--upload-disk-mb) until they go.
    with gr.Blocks(title="Background removal", delete_cache=(CACHE_SWEEP_S, CACHE_AGE_S)) as demo:
        header = build_header(settings)
        with gr.Tabs(elem_id="tabs"):
            upload = build_upload_tab(form, models, warming)
            webcam = build_webcam_tab(models)
            gallery = build_gallery_tab(form, models)
            if settings.benchmark_tab:
                from ui.benchmark_tab import benchmark_tab  # the benchmark (matplotlib) only when shown

                benchmark_tab(engine, store.root)
        out = build_readout(settings, engine)
        api = build_api_inputs(form, settings)
        warm_timer = gr.Timer(3, active=warming)
        wire(demo, Page(header, upload, webcam, gallery, out, api, warm_timer), handlers, settings)
    return quiet_input_errors(demo)
