"""Unit tier: the process's one memory budget (``core.budget``): costed from headers, admitted while it fits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from base.errors import ImageTooComplex
from core import Engine, RemovalOptions, load_settings
from core.budget import INPUT_BYTES_PER_PIXEL, MIB, MemoryBudget, declared_pixels, request_cost
from tests.core.helpers import encoded, png_bytes, png_header_only


def test_cost_is_read_from_the_header_without_decoding() -> None:
    # a 6000x6600 header with 16 bytes of pixel data: decoding it would fail, costing it does not
    assert declared_pixels(png_header_only(6000, 6600)) == 6000 * 6600
    assert declared_pixels(b"not an image") == 0
    assert declared_pixels(encoded(Image.new("RGB", (30, 20)), "JPEG")) == 600


def test_option_images_and_matting_add_to_the_cost() -> None:
    image = png_header_only(6000, 6600)
    plain = request_cost([image], RemovalOptions(), 1_000_000)
    assert plain == 6000 * 6600 * INPUT_BYTES_PER_PIXEL
    with_options = request_cost([image], RemovalOptions(background_image=image, mask_edit=image), 1_000_000)
    assert with_options > 2 * plain
    assert request_cost([image], RemovalOptions(alpha_matting=True), 1_000_000) > plain


def test_a_request_over_the_whole_budget_is_too_complex() -> None:
    with pytest.raises(ImageTooComplex, match="memory budget"), MemoryBudget(100 * MIB).hold(101 * MIB):
        pass


def test_requests_wait_until_their_cost_fits_first_come_first_served() -> None:
    budget = MemoryBudget(100)
    order: list[str] = []
    first = budget.hold(60)
    first.__enter__()

    def run(name: str, cost: int) -> None:
        with budget.hold(cost):
            order.append(name)

    big = threading.Thread(target=run, args=("big", 70))
    big.start()
    while budget.summary()["waiting"] < 1:
        time.sleep(0.01)
    small = threading.Thread(target=run, args=("small", 10))  # would fit now, but big came first
    small.start()
    while budget.summary()["waiting"] < 2:
        time.sleep(0.01)
    assert order == []
    first.__exit__(None, None, None)
    big.join(10)
    small.join(10)
    assert order == ["big", "small"]
    assert budget.summary() == {"budget_mb": 0, "admitted_mb": 0, "running": 0, "waiting": 0}


def test_the_engine_refuses_what_its_budget_can_never_hold() -> None:
    """Before the budget, a request was bounded alone: eight 40 MP ones with option images took 10.4 GB."""
    settings = load_settings(["--memory-budget-mb", "8", "--default-model", "u2netp", "--no-fetch-missing"])
    engine = Engine(settings)
    image = png_bytes(Image.new("RGB", (1000, 1000), (200, 100, 50)))  # 16 MB at 16 bytes a pixel
    with pytest.raises(ImageTooComplex, match="memory budget"):
        engine.remove(image, RemovalOptions(provider="cpu"))
    assert engine.budget.summary()["admitted_mb"] == 0


def test_a_batch_over_the_budget_runs_in_parts_that_fit() -> None:
    settings = load_settings(["--memory-budget-mb", "40", "--default-model", "u2netp", "--no-fetch-missing"])
    engine = Engine(settings)
    image = png_bytes(Image.new("RGB", (1000, 1000), (200, 100, 50)))  # about 15 MiB each: two fit, four do not
    results = engine.remove_many([image] * 4, RemovalOptions(provider="cpu"))
    assert [r.image.size for r in results] == [(1000, 1000)] * 4  # type: ignore[union-attr]


def test_a_familys_own_memory_counts(tmp_path: Path) -> None:
    """sam's masks warped back and cloth's three stacked cutouts hold more per pixel than one cutout:
    a budget that one cutout of a megapixel fits refuses them, before anything is decoded."""
    from tests.core.test_families import _custom, tiny_graph, tiny_sam_model

    image = encoded(Image.new("RGB", (1000, 1000), (90, 120, 200)), "PNG")
    one_cutout = 1000 * 1000 * INPUT_BYTES_PER_PIXEL
    engine = Engine(load_settings(["--model-home", str(tmp_path), "--memory-budget-mb", str(2 * one_cutout // MIB)]))
    cloth = tiny_graph(tmp_path / "cloth.onnx", 768, 4, scale=8.0)
    engine.sessions.register(_custom("tiny-cloth", "u2net_cloth_seg", "u2net_cloth_seg"), cloth)
    engine.sessions.register(*tiny_sam_model(tmp_path))
    assert engine.remove(image, RemovalOptions(model="tiny-cloth", extras='{"cc": "upper"}')).image.size == (1000, 1000)
    for options in (RemovalOptions(model="tiny-cloth"), RemovalOptions(model="tiny-sam")):
        with pytest.raises(ImageTooComplex, match="memory budget"):
            engine.remove(image, options)
    assert request_cost([image], RemovalOptions(), 0, family_bytes_per_pixel=48) == one_cutout * 4
