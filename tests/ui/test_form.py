"""The WebUI reads the options table: every control from its row, and a new row on the page without an edit.

Adding an option is a row in ``core.options`` and the code that honours it. The test
here adds two rows in a subclass of ``RemovalOptions`` (an integer and a choice, as the
``precision`` row is), puts them in the engine's table, and builds the page over them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

import core.options
from core import Engine, RemovalOptions
from core.options import OPTIONS, _option
from tests.conftest import PHOTOS_DIR
from ui import build_ui
from ui.form import FORM, UPLOAD_FIELDS, Form, help_line, label, start
from ui.handlers import RESULT_OUTPUTS

pytestmark = pytest.mark.model

#: What reached the engine's parser through the page (``WithMore.from_values``).
PARSED: list[RemovalOptions] = []


@dataclasses.dataclass(frozen=True)
class WithMore(RemovalOptions):
    """The table with two rows more, as a developer would add them."""

    sharpen: int = _option(4, "Sharpen the edges, 0-12.", low=0, high=12, step=2)
    finish: str = _option("matte", "The finish: matte or gloss.", choices=("matte", "gloss"))

    @classmethod
    def from_values(cls, values: Any) -> RemovalOptions:
        options = super().from_values(values)
        PARSED.append(options)
        return options


def _by_label(demo: gr.Blocks, text: str) -> list[Any]:
    return [b for b in demo.blocks.values() if getattr(b, "label", None) == text]


@pytest.fixture(scope="module")
def demo(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> gr.Blocks:
    return build_ui(engine.settings, engine, tmp_path_factory.mktemp("form-outputs"))


@pytest.fixture
def more(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The engine's table with the two rows (its parser and ``validated`` read ``core.options.OPTIONS``)."""
    monkeypatch.setattr(core.options, "OPTIONS", {f.name: f for f in dataclasses.fields(WithMore)})
    PARSED.clear()
    yield


def test_the_form_offers_every_row_but_the_touch_up() -> None:
    assert set(UPLOAD_FIELDS) == {*OPTIONS, "background"} - {"mask_edit"}
    at = UPLOAD_FIELDS.index("background")
    assert UPLOAD_FIELDS[at : at + 4] == ("background", "bgcolor", "background_image", "blur_background")


def test_every_slider_reaches_what_the_table_allows(demo: gr.Blocks) -> None:
    sliders = 0
    for name in FORM.fields:
        row = FORM.rows.get(name)
        if row is None or name == "blur_background":  # the background control's blur starts at 1 (below)
            continue
        for control in _by_label(demo, label(name)):
            if not isinstance(control, gr.Slider):
                continue
            sliders += 1
            low, unset = row.metadata["low"], row.metadata["unset"]
            low = low if unset is None else min(low, unset)  # quality's 0, "not given", is on the slider
            assert (control.minimum, control.maximum, control.value) == (low, row.metadata["high"], start(row)), name
            assert control.step == 1 and control.info == help_line(row), name
    assert sliders == 8, "quality, three matting thresholds, four shadow settings"
    offset, softness = _by_label(demo, "Offset →")[0], _by_label(demo, "Softness")[0]
    assert (offset.minimum, offset.maximum, softness.maximum) == (-200, 200, 200), "the range the API accepts"
    (blur,) = _by_label(demo, "Blur strength")
    assert (blur.minimum, blur.maximum) == (1, OPTIONS["blur_background"].metadata["high"])
    (margin,) = _by_label(demo, "Margin (px)")
    assert isinstance(margin, gr.Number) and margin.maximum == OPTIONS["crop_margin"].metadata["high"]


def test_a_new_row_reaches_the_page_the_client_api_and_the_engine(more: None, engine: Engine, tmp_path: Path) -> None:
    demo = build_ui(engine.settings, engine, tmp_path, options=WithMore)
    (sharpen,) = _by_label(demo, "Sharpen")
    assert isinstance(sharpen, gr.Slider)
    assert (sharpen.minimum, sharpen.maximum, sharpen.step, sharpen.value) == (0, 12, 2, 4)
    assert sharpen.info == "Sharpen the edges, 0-12."
    (finish,) = _by_label(demo, "Finish")
    assert isinstance(finish, gr.Radio), "a choice among a few is a radio"
    assert [value for _, value in finish.choices] == ["matte", "gloss"] and finish.value == "matte"
    api = next(fn for fn in demo.fns.values() if fn.api_name == "remove_background")
    assert [c.label for c in api.inputs[-2:]] == ["sharpen", "finish"], "the client API's parameters too"

    event = next(fn for fn in demo.fns.values() if fn.api_name == "ui_remove_inference")
    assert sharpen in event.inputs and finish in event.inputs
    names = Form(WithMore).fields
    assert names == (*UPLOAD_FIELDS, "sharpen", "finish")
    form = {n: c.value for n, c in zip(names, event.inputs[1:], strict=True)}
    form |= {"provider": "cpu", "model": "u2netp", "sharpen": 10, "finish": "gloss"}
    *_, last = event.fn(str(PHOTOS_DIR / "chelsea.png"), *(form[n] for n in names))
    assert "Done:" in last[RESULT_OUTPUTS.index("status")]
    options = PARSED[-1]
    assert isinstance(options, WithMore) and (options.sharpen, options.finish) == (10, "gloss")
