"""The WebUI's layout: one builder per part of the page, each returning a small record of its components.

The header with the provider toggle, the Upload, Webcam and Gallery tabs, the
read-outs and the client API's hidden inputs are built here, in the page's order;
``ui.blocks`` then wires their events. The Upload tab's options are generated from
the options table (``ui.form``): a row there is a control here (``ui.components``),
placed by ``OPTION_COLUMNS`` or, if it is new, in a column of its own. Every image
input hands the engine the uploaded file itself (``ui.components.uploaded_image``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from base.assets import EXAMPLE_PHOTOS, photo
from core import Engine, Settings
from core.catalog import fast_model
from core.options import kind_of
from ui import readout, touchup
from ui.components import SLIDER_MAX_STEPS, api_component, option_control, uploaded_file, uploaded_image
from ui.form import BACKGROUND, BACKGROUND_ROWS, BACKGROUNDS, BLUR_START, COLOUR_START, Form, Row, help_line, label
from ui.handlers import ALPHA_MATTING_INFO, WARMING_INFO, status_html
from ui.page import SWATCHES

IMAGE_HEIGHT = 380  # the input and result boxes on a desktop (CSS makes them shorter on a phone)
Component = gr.components.Component


@dataclass(frozen=True)
class Fold:
    """Rows folded under an accordion, closed at first."""

    title: str
    names: tuple[str, ...]


#: A control on its own line, controls side by side, or rows under an accordion.
Item = str | tuple[str, ...] | Fold
#: The Upload tab's option columns after the background's: a name is a control on its own line, a tuple
#: controls side by side, a ``Fold`` rows under an accordion. A row placed nowhere (a new one) gets a column.
OPTION_COLUMNS: tuple[tuple[Item, ...], ...] = (
    ("output_format", "quality", ("only_mask", "post_process_mask"), ("crop", "crop_margin")),
    (
        "alpha_matting",
        Fold(
            "Matting thresholds",
            ("alpha_matting_foreground_threshold", "alpha_matting_background_threshold", "alpha_matting_erode_size"),
        ),
    ),
    ("shadow", ("shadow_offset_x", "shadow_offset_y"), ("shadow_blur", "shadow_opacity")),
)
#: CSS and page-script hooks of some option controls.
OPTION_IDS = {"alpha_matting": "alpha-matting", "shadow": "shadow"}
#: Fields with a control of their own outside the option columns.
PLACED_ELSEWHERE = frozenset({"provider", "model", "precision", BACKGROUND, *BACKGROUND_ROWS.values()})


# --- the records ------------------------------------------------------------------------------------


@dataclass
class Header:
    provider: gr.Radio


@dataclass
class Background:
    """The one background control and what it chooses between."""

    choice: gr.Radio
    swatches: gr.Radio
    color: gr.ColorPicker
    image: gr.Image
    blur: gr.Slider


@dataclass
class UploadTab:
    image: gr.Image
    model: gr.Dropdown
    run: gr.Button
    status: gr.HTML
    slider: gr.ImageSlider
    download: gr.File
    #: Every form field's control but ``provider`` and ``model`` (``ui.form.Form.fields``).
    options: dict[str, Component]
    background: Background
    editor: gr.ImageEditor
    apply: gr.Button
    touch: gr.State
    run_light: gr.Button
    run_heavy: gr.Button
    apply_light: gr.Button
    apply_heavy: gr.Button


@dataclass
class WebcamTab:
    model: gr.Dropdown
    fps: gr.HTML
    live_in: gr.Image
    live_out: gr.Image
    snapshot: gr.Image
    snap_run: gr.Button
    snap_status: gr.HTML
    snap_out: gr.ImageSlider
    snap_download: gr.File
    live_state: gr.State


@dataclass
class GalleryTab:
    files: gr.File
    model: gr.Dropdown
    output_format: Component
    run: gr.Button
    status: gr.HTML
    gallery: gr.Gallery
    downloads: gr.File
    table: gr.Dataframe


@dataclass
class Readout:
    last: gr.HTML
    history: gr.HTML
    chart: gr.HTML


@dataclass
class ApiInputs:
    """The hidden components of the named client-API endpoints."""

    image: gr.File
    options: dict[str, Component]
    file: gr.File
    report: gr.JSON
    files: gr.File
    zip: gr.File


@dataclass
class Page:
    """Everything ``wire`` connects."""

    header: Header
    upload: UploadTab
    webcam: WebcamTab
    gallery: GalleryTab
    readout: Readout
    api: ApiInputs
    warm_timer: gr.Timer


@dataclass(frozen=True)
class Models:
    """The model menus' choices (with their speeds) and where each menu starts."""

    choices: list[tuple[str, str]]
    default: str
    live: str
    #: The Precision control's choices in words, for the default model, and where it starts.
    precision: list[tuple[str, str]]
    default_precision: str

    @classmethod
    def of(cls, settings: Settings, engine: Engine) -> Models:
        choices = readout.model_choices(settings, engine)
        names = [value for _, value in choices]
        default = settings.default_model if settings.default_model in names else names[0]
        fast = fast_model(settings, settings.default_provider)  # the one that keeps up with a camera
        precision = readout.precision_choices(settings, default)
        return cls(choices, default, fast if fast in names else default, precision, settings.default_precision)


# --- the layout -------------------------------------------------------------------------------------


def build_header(settings: Settings) -> Header:
    with gr.Row(elem_id="header", equal_height=True):
        gr.HTML(
            f'<div class="brand"><h1>Background removal</h1><span>{readout.esc(readout.runs_on_words())}</span></div>',
            elem_id="brand",
            padding=False,
        )
        with gr.Row(elem_id="runon"):
            provider_list, provider_note = readout.provider_choices()
            runnable = {value for _, value in provider_list}
            provider = gr.Radio(
                provider_list,
                value=settings.default_provider if settings.default_provider in runnable else "auto",
                label=label("provider"),
                elem_id="provider",
                container=False,
                scale=0,
            )
            gr.HTML(provider_note, elem_id="provider-note", padding=False)
    return Header(provider)


def build_upload_tab(form: Form, models: Models, warming: bool) -> UploadTab:
    with gr.Tab("Upload", id="upload", elem_id="tab-upload"):
        with gr.Row(elem_id="upload-row", equal_height=False):
            with gr.Column(elem_id="input-col", min_width=300):
                image = uploaded_image(
                    sources=["upload", "clipboard"],
                    label="Image",
                    elem_id="upload-image",
                    height=IMAGE_HEIGHT,
                    placeholder="Drop an image here, click to choose one, or paste one",
                )
                with gr.Row(elem_id="run-row", equal_height=True):
                    model = gr.Dropdown(
                        models.choices,
                        value=models.default,
                        label=label("model"),
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
                # under the result, not between the photo and its button: on a phone the result and its
                # download stay on the first screen (test_the_result_and_its_download_are_on_the_first_screen)
                precision = build_precision(form, models)
        gr.Examples(
            [[str(photo(e))] for e in EXAMPLE_PHOTOS],
            inputs=[image],
            label="Examples",
            elem_id="examples",
            example_labels=None,
        )
        with gr.Accordion("Options", open=False, elem_id="options"):
            with gr.Row(elem_id="options-row"):
                background = build_background_column(form)
                options: dict[str, Component] = {
                    BACKGROUND: background.choice, "bgcolor": background.color,
                    "background_image": background.image, "blur_background": background.blur,
                }  # fmt: skip
                options |= build_option_columns(form, warming)
        if precision is not None:
            options["precision"] = precision
        editor, apply = build_touchup()
        touch = gr.State(None)
        # The lanes: the page presses one of these (ui/page.py), by the image's size and the options.
        run_light = gr.Button(visible="hidden", elem_id="run-light")
        run_heavy = gr.Button(visible="hidden", elem_id="run-heavy")
        apply_light = gr.Button(visible="hidden", elem_id="apply-light")
        apply_heavy = gr.Button(visible="hidden", elem_id="apply-heavy")
    return UploadTab(
        image, model, run, status, slider, download, options, background, editor, apply, touch,
        run_light, run_heavy, apply_light, apply_heavy,
    )  # fmt: skip


def build_precision(form: Form, models: Models) -> Component | None:
    """Exact or Fast, beside the model menu, in words with what Fast measured here (``Models.precision``)."""
    row = form.rows.get("precision")
    if row is None or "precision" not in form.fields:
        return None
    return gr.Radio(
        models.precision,
        value=models.default_precision,
        label=label("precision"),
        info=help_line(row),
        elem_id="precision",
    )


def build_background_column(form: Form) -> Background:
    """One background control: transparent, a colour (swatches or any), an image, or a blur."""
    rows = form.rows
    with gr.Column(min_width=260, elem_classes="option-group"):
        background = gr.Radio(BACKGROUNDS, value="transparent", label="Background", elem_id="background")
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
            # No help line: the row's speaks of the text forms (r,g,b...) that a picker never shows.
            color = gr.ColorPicker(value=COLOUR_START, label=label("bgcolor"), elem_id="colour", scale=1, min_width=90)
        background_image = uploaded_image(
            label=label("background_image"),
            height=150,
            visible=False,
            elem_id="background-image",
            sources=["upload", "clipboard"],
        )
        blur_row = rows["blur_background"]
        # Chosen by the control, so never 0 ("no blur"): from 1 to the row's top.
        blur = gr.Slider(
            max(1, blur_row.metadata["low"]), blur_row.metadata["high"], value=BLUR_START,
            step=1, label=label("blur_background"), info=blur_row.metadata["help"], visible=False, elem_id="blur",
        )  # fmt: skip
    return Background(background, swatches, color, background_image, blur)


def build_option_columns(form: Form, warming: bool) -> dict[str, Component]:
    """``OPTION_COLUMNS``, then a column with every row on the form that they do not place."""
    controls: dict[str, Component] = {}
    placed = {n for column in OPTION_COLUMNS for item in column for n in _names(item)}
    extra = tuple(n for n in form.fields if n not in placed and n not in PLACED_ELSEWHERE)
    extra_column: tuple[Item, ...] = (
        *(n for n in extra if not form.rows[n].metadata.get("advanced")),
        Fold("More", tuple(n for n in extra if form.rows[n].metadata.get("advanced"))),
    )
    for column in (*OPTION_COLUMNS, extra_column) if extra else OPTION_COLUMNS:
        with gr.Column(min_width=220, elem_classes="option-group"):
            for item in column:
                if isinstance(item, Fold):
                    if item.names:
                        with gr.Accordion(item.title, open=False):
                            controls |= _controls(form, item.names, side_by_side=False, warming=warming)
                elif isinstance(item, str):
                    controls |= _controls(form, (item,), side_by_side=False, warming=warming)
                else:
                    with gr.Row(equal_height=True):
                        controls |= _controls(form, item, side_by_side=True, warming=warming)
    return controls


def _names(item: Item) -> tuple[str, ...]:
    return (item,) if isinstance(item, str) else item.names if isinstance(item, Fold) else item


def _controls(form: Form, names: Sequence[str], side_by_side: bool, warming: bool) -> dict[str, Component]:
    """The controls of rows that ``form`` has (a layout may name more than a test's table)."""
    controls: dict[str, Component] = {}
    for name in names:
        row = form.rows.get(name)
        if row is None or name not in form.fields:
            continue
        kwargs: dict[str, Any] = {}
        if name in OPTION_IDS:
            kwargs["elem_id"] = OPTION_IDS[name]
        if side_by_side:
            kwargs["min_width"] = _min_width(row)
        if name == "alpha_matting":  # the page's own note, which changes when the warm-up ends
            kwargs["info"] = WARMING_INFO if warming else ALPHA_MATTING_INFO
        controls[name] = option_control(row, **kwargs)
    return controls


def _min_width(row: Row) -> int:
    """Side by side, a checkbox and its label take 120 pixels, a number box 90, a slider 100."""
    low, high = row.metadata["low"], row.metadata["high"]
    if kind_of(row) == "bool":
        return 120
    return 90 if low is None or high is None or high - low > SLIDER_MAX_STEPS else 100


def build_touchup() -> tuple[gr.ImageEditor, gr.Button]:
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
    return editor, apply


def build_webcam_tab(models: Models) -> WebcamTab:
    with gr.Tab("Webcam", id="webcam", elem_id="tab-webcam"):
        with gr.Row(equal_height=False):
            with gr.Column(min_width=300, scale=3):
                # One under the other: the model's words whole, at every width (a row squeezed them).
                with gr.Column(elem_id="live-row"):
                    model = gr.Dropdown(models.choices, value=models.live, label=label("model"), elem_id="live-model")
                    fps = gr.HTML('<div class="fps">Start live to see frames per second.</div>', elem_id="fps")
                with gr.Row(equal_height=False, elem_id="live-pair"):
                    live_in = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Live", elem_id="live")
                    live_out = gr.Image(label="Live cutout", format="webp", elem_id="live-out")
            with gr.Column(min_width=300, scale=2):
                snapshot = uploaded_image(sources=["webcam"], label="Snapshot", elem_id="snapshot")
                snap_run = gr.Button("Cut out snapshot", variant="primary", elem_id="snap-run")
                snap_status = gr.HTML(status_html("idle", ""), elem_id="snap-status", padding=False)
                snap_out = gr.ImageSlider(type="filepath", label="Before / after", elem_id="snap-slider")
                snap_download = gr.File(label="Download", file_count="multiple", elem_id="snap-download")
        live_state = gr.State({})
    return WebcamTab(
        model, fps, live_in, live_out, snapshot, snap_run, snap_status, snap_out, snap_download, live_state
    )


def build_gallery_tab(form: Form, models: Models) -> GalleryTab:
    with gr.Tab("Gallery", id="gallery", elem_id="tab-gallery"):
        with gr.Row(equal_height=False):
            with gr.Column(min_width=300):
                files = uploaded_file(file_count="multiple", label="Images", elem_id="gallery-files", height=220)
                # The model on a line of its own: beside the format, its words were cut off.
                model = gr.Dropdown(
                    models.choices, value=models.default, label=label("model"), elem_id="gallery-model",
                )  # fmt: skip
                output_format = option_control(form.rows["output_format"])
                run = gr.Button("Remove backgrounds", variant="primary", elem_id="gallery-run")
                status = gr.HTML(status_html("idle", ""), elem_id="gallery-status-line", padding=False)
            with gr.Column(min_width=300):
                gallery = gr.Gallery(label="Cutouts", columns=3, height=300, elem_id="gallery")
                downloads = gr.File(
                    label="Downloads (the zip first, with _report.json)",
                    file_count="multiple",
                    elem_id="gallery-downloads",
                )  # no fixed height: every cutout is listed, not the zip and one
        table = gr.Dataframe(
            headers=["file", "status", "provider", "total ms"],
            label="Per file",
            elem_id="gallery-status",
            wrap=True,  # a phone shows the whole error, not "error: the input is not a rec…"
        )
    return GalleryTab(files, model, output_format, run, status, gallery, downloads, table)


def build_readout(settings: Settings, engine: Engine) -> Readout:
    gr.HTML(readout.more_models_html(settings), elem_id="more-models", padding=False)
    with gr.Accordion("Readout", open=True, elem_id="readout-box"):
        with gr.Row(equal_height=False, elem_id="readout-row"):
            last = gr.HTML(readout.last_request_html(None), elem_id="readout", min_height=0, min_width=300)
            history = gr.HTML(readout.history_html(engine), elem_id="stats", min_height=0, min_width=260)
            chart = gr.HTML(readout.recent_chart_html(engine), elem_id="chart", min_height=0, min_width=300)
    return Readout(last, history, chart)


def build_api_inputs(form: Form, settings: Settings) -> ApiInputs:
    with gr.Group(visible=False):
        image = uploaded_file(label="image")
        options = {name: api_component(row, settings) for name, row in form.rows.items()}
        file = gr.File(label="cutout")
        report = gr.JSON(label="report")
        files = uploaded_file(file_count="multiple", label="images")
        zip_file = gr.File(label="zip")
    return ApiInputs(image, options, file, report, files, zip_file)
