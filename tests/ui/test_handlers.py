"""Unit tier: the UI's result store, its form, status line, read-outs, lanes and touch-up strokes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from base.settings import load_settings
from core import InvalidOption
from core.imaging import Warmup
from tests.reliability.common import UPLOAD_FORM
from ui import page, readout, touchup
from ui.activity import HEAVY, LIGHT, Activity
from ui.form import UPLOAD_FIELDS, upload_options
from ui.handlers import status_html
from ui.store import OutputStore


def _results(root: Path) -> list[str]:
    return sorted(p.name for folder in root.iterdir() for p in folder.iterdir())


def test_write_is_atomic_and_leaves_only_the_result(tmp_path: Path) -> None:
    store = OutputStore(tmp_path)
    path = store.write(b"bytes", "cutout.png")
    assert path.read_bytes() == b"bytes" and path.parent.parent == tmp_path
    assert _results(tmp_path) == ["cutout.png"]


def test_results_older_than_max_age_are_pruned(tmp_path: Path) -> None:
    store = OutputStore(tmp_path, max_age_s=60)
    old = store.write(b"old", "old.png")
    hour_ago = time.time() - 3600
    os.utime(old.parent, (hour_ago, hour_ago))
    store.write(b"new", "new.png")
    assert _results(tmp_path) == ["new.png"]


def test_never_more_than_max_files(tmp_path: Path) -> None:
    store = OutputStore(tmp_path, max_files=3)
    paths = []
    for i in range(5):
        paths.append(store.write(b"x", f"{i}.png"))
        stamp = time.time() - 100 + i  # distinct, increasing ages
        os.utime(paths[-1].parent, (stamp, stamp))
    assert _results(tmp_path) == ["2.png", "3.png", "4.png"]  # the newest three


# --- the Upload tab's form, the status line, the read-outs (pure logic) ------------------------------

FORM = {**UPLOAD_FORM, "bgcolor": "#ff0000"}


def test_the_form_has_every_field() -> None:
    assert set(FORM) == set(UPLOAD_FIELDS)


@pytest.mark.parametrize(
    ("background", "bgcolor", "image", "blur"),
    [("transparent", None, None, 0), ("colour", "#ff0000", None, 0), ("blur", None, None, 20)],
)
def test_one_background_as_the_control_says(background: str, bgcolor: str | None, image: None, blur: int) -> None:
    options = upload_options({**FORM, "background": background})
    assert (options.bgcolor, options.background_image, options.blur_background) == (bgcolor, image, blur)


def test_an_image_background_without_an_image_says_so() -> None:
    with pytest.raises(InvalidOption) as caught:
        upload_options({**FORM, "background": "image"})
    assert caught.value.option == "background_image"
    assert upload_options({**FORM, "background": "image", "background_image": "/x.png"}).background_image == "/x.png"


def test_the_status_line_escapes_what_it_shows() -> None:
    html = status_html("error", "<script>alert(1)</script>")
    assert "<script>" not in html and "&lt;script&gt;" in html and "status-error" in html


def test_readouts_escape_and_show_every_stage() -> None:
    stages = {"decode": 1, "preprocess": 2, "inference": 30, "postprocess": 4, "encode": 5, "total": 42}
    report = {"model": "<b>m</b>", "provider": "cpu", "width": 4, "height": 3, "format": "png", "bytes": 2048}
    report["timings_ms"] = stages
    html = readout.last_request_html(report)
    assert "<b>m</b>" not in html and 'data-provider="cpu"' in html
    for stage in ("decode", "preprocess", "inference", "postprocess", "encode"):
        assert f"({stage}) <b>" in html
    assert "Done in 42 ms on the CPU; most of it was the model." in html
    assert readout.ms(840) == "840 ms" and readout.ms(1234) == "1.2 s" and readout.ms(63_000) == "63 s"


def test_the_wait_line_names_what_runs_in_the_lane() -> None:
    activity = Activity(waiting=lambda lane: 2 if lane == HEAVY else 0)
    assert activity.describe_wait(LIGHT) == ""
    with activity.running(HEAVY, "u2net with alpha matting on a 3840×2160 image"):
        line = activity.describe_wait(HEAVY)
        assert "alpha matting on a 3840×2160 image, running for" in line and "2 waiting" in line
        assert activity.describe_wait(LIGHT) == "", "the quick lane does not wait behind the heavy one"
    assert activity.jobs(HEAVY) == []


def test_strokes_become_the_engines_edit_in_the_whole_frame() -> None:
    strokes = Image.new("RGBA", (100, 50), (0, 0, 0, 0))
    strokes.paste((34, 197, 94, 153), (0, 0, 50, 50))  # green, as the brush paints it (opacity 0.6)
    strokes.paste((239, 68, 68, 153), (50, 0, 100, 50))  # red
    edit = touchup.place_edit(strokes, (400, 200), (100, 50, 300, 150), None)
    assert edit.size == (400, 200)
    assert edit.getpixel((120, 100)) == (255, 255, 255, 255), "green keeps"
    assert edit.getpixel((280, 100)) == (0, 0, 0, 255), "red removes"
    assert edit.getpixel((20, 20))[3] == 0 and edit.getpixel((350, 180))[3] == 0, "outside the crop: untouched"
    again = touchup.place_edit(Image.new("RGBA", (100, 50), (0, 0, 0, 0)), (400, 200), (100, 50, 300, 150), edit)
    assert again.getpixel((120, 100)) == (255, 255, 255, 255), "earlier strokes are kept"


def test_warmup_says_when_it_is_running() -> None:
    release, calls = threading.Event(), []

    def warm() -> None:
        calls.append(1)
        release.wait(10)

    warmup = Warmup(warm)
    assert not warmup.warming, "not started: nothing to wait for"
    warmup.start()
    assert warmup.warming
    release.set()
    assert warmup.wait(10) and not warmup.warming
    warmup.start()  # once only
    assert calls == [1]


def test_a_failed_warmup_ends_the_warming_state() -> None:
    def broken() -> None:
        raise RuntimeError("no compiler")

    warmup = Warmup(broken)
    warmup.start()
    assert warmup.wait(10) and not warmup.warming


def test_the_readout_sentence_names_the_slowest_step_only_when_it_is_most_of_the_time() -> None:
    report = {"provider": "cuda", "timings_ms": {"decode": 300, "inference": 250, "encode": 250, "total": 800}}
    assert readout.summary_sentence(report) == "Done in 800 ms on the GPU (CUDA)."
    report["timings_ms"] = {"decode": 900, "inference": 50, "total": 1000}
    assert readout.summary_sentence(report) == "Done in 1.0 s on the GPU (CUDA); most of it was reading the image."


def test_model_words_come_from_the_facts_and_never_repeat() -> None:
    def fact(
        name: str, ms: float | None, mae: float | None, description: str = "U²-Net", family: str = "u2net"
    ) -> dict[str, object]:
        figures = None if ms is None else {"inference_ms": ms, "alpha_mae": mae}
        return {"name": name, "description": description, "measured": figures, "family": family}

    words = readout.model_words(
        [
            fact("u2net", 1300, 0.0),
            fact("u2netp", 300, 6.0),
            fact("u2net-int8", 400, 0.3),
            fact("u2net-fp16", 700, 0.1, "U²-Net in float16, for GPUs (python -m models build u2net-fp16)"),
            fact("u2net-dynamic", 650, 0.0, "U²-Net with a dynamic batch dimension, for batched GPU runs"),
            fact("silueta", None, None, "U²-Net pruned to 43 MB"),
            # Another family is not a rougher u2net: it says what it is, and how its speed compares.
            fact("isnet-general-use", 4200, 12.0, "IS-Net (DIS), general purpose", "isnet"),
        ]
    )
    assert words == {
        "u2net": "Best quality",
        "u2netp": "Fastest · rougher edges",
        "u2net-int8": "Fast · looks the same",
        "u2net-fp16": "Fast · looks the same · for GPUs",
        "u2net-dynamic": "Fast · looks the same · another build",
        "silueta": "U²-Net pruned to 43 MB",
        "isnet-general-use": "Slower · IS-Net",
    }


def test_the_servers_own_1024_pixel_models_run_in_the_heavy_lane() -> None:
    """A custom model of a 1024² family takes seconds like the registry's: the page sends it to the heavy lane."""
    settings = load_settings(
        ["--custom-model", "mine=isnet:/srv/mine.onnx", "--custom-model", "small=u2net:/srv/s.onnx"]
    )
    heavy = page.heavy_models(settings)
    assert "mine" in heavy and "birefnet-general" in heavy and "isnet-general-use" in heavy
    assert "small" not in heavy and "u2net" not in heavy
    assert '"mine"' in page.head(settings) and "__HEAVY_MODELS__" not in page.head(settings)
