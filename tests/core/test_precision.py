"""The precision option: what ``exact`` and ``fast`` choose from a tune record, and what runs.

Unit tier for the choice (``core.precision.choose`` on records written here); model tier
for the runtimes (OpenVINO against onnxruntime on the real weights) and for the engine's
report of what ran.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from base.assets import EVAL_PHOTOS, photo
from base.cpu import cpu_info
from base.errors import InvalidOption
from core import Engine, RemovalOptions, load_settings
from core.decode import Limits, decode
from core.imaging import to_mask, to_tensor
from core.precision import MIN_GAIN, choose
from core.providers import provider_info
from core.quality import agreement
from core.sessions import create_session
from models import tuned
from models.fetch import status
from models.registry import MODELS
from variants.gate import MAX_MEAN_MAE, MAX_PHOTO_MAE

needs_openvino = pytest.mark.skipif(not provider_info("openvino").available, reason="openvino is not installed")


def row(provider: str, precision: str, ms: float, *, exact: bool, fast: bool, weights: str = "u2net") -> dict[str, Any]:
    return {
        "provider": provider,
        "precision": precision,
        "weights": weights,
        "inference_ms": ms,
        "mean_mae": 0.0 if exact else 0.7,
        "exact": exact,
        "fast": fast,
    }


REFERENCE = row("cpu", "fp32", 460, exact=True, fast=True)
OV_F32 = row("openvino", "fp32", 450, exact=True, fast=True)  # equal masks, within the noise of the reference
ORT_INT8 = row("cpu", "int8", 210, exact=False, fast=True, weights="u2net-int8")
OV_BF16 = row("openvino", "bf16", 82, exact=False, fast=True)
OV_INT8 = row("openvino", "int8", 59, exact=False, fast=False, weights="u2net-int8")  # missed the gate


# --- the choice, from a record ----------------------------------------------------------------


def test_without_a_record_exact_is_onnxruntime_fp32_and_fast_says_it_ran_exact() -> None:
    exact = choose("u2net", "auto", "exact", [])
    assert (exact.weights, exact.provider, exact.precision, exact.note) == ("u2net", "auto", "fp32", "")
    fast = choose("u2net", "auto", "fast", [])
    assert (fast.weights, fast.provider, fast.precision) == ("u2net", "auto", "fp32")
    assert fast.ran == "exact" and "has not measured u2net" in fast.note


@needs_openvino
def test_fast_is_the_fastest_that_passed_the_gate() -> None:
    rows = [REFERENCE, OV_F32, ORT_INT8, OV_BF16, OV_INT8]
    fast = choose("u2net", "auto", "fast", rows)
    assert (fast.weights, fast.provider, fast.precision, fast.ran) == ("u2net", "openvino", "bf16", "fast")
    assert fast.mae == 0.7 and not fast.note


@needs_openvino
def test_exact_moves_only_for_a_measured_gain() -> None:
    rows = [REFERENCE, OV_F32, OV_BF16]
    assert choose("u2net", "auto", "exact", rows).provider == "auto"  # 450 vs 460 ms: noise, rembg's runtime stays
    faster = dict(OV_F32, inference_ms=REFERENCE["inference_ms"] / MIN_GAIN - 1)
    exact = choose("u2net", "auto", "exact", [REFERENCE, faster, OV_BF16])
    assert (exact.provider, exact.precision, exact.weights) == ("openvino", "fp32", "u2net")


@needs_openvino
def test_a_named_provider_keeps_its_runtime() -> None:
    rows = [REFERENCE, OV_F32, ORT_INT8, OV_BF16]
    on_ort = choose("u2net", "cpu", "fast", rows)
    assert (on_ort.provider, on_ort.precision, on_ort.weights) == ("cpu", "int8", "u2net-int8")
    on_ov = choose("u2net", "openvino", "exact", rows)
    assert (on_ov.provider, on_ov.precision) == ("openvino", "fp32")


def test_nothing_faster_passed_so_fast_runs_exact_and_says_so() -> None:
    failed = dict(OV_BF16, fast=False)
    fast = choose("u2netp", "auto", "fast", [dict(REFERENCE, weights="u2netp"), dict(failed, weights="u2netp")])
    assert (fast.provider, fast.precision, fast.ran) == ("auto", "fp32", "exact")
    assert "passed the quality gate" in fast.note


def test_rows_that_cannot_run_are_never_chosen() -> None:
    unknown = row("cpu", "int8", 10, exact=False, fast=True, weights="no-such-model")
    broken = dict(row("cpu", "int8", 10, exact=False, fast=True), inference_ms=None)
    assert choose("u2net", "auto", "fast", [REFERENCE, unknown, broken]).precision == "fp32"


def test_no_provider_name_points_at_a_package_that_is_not_installed() -> None:
    """``openvino`` is the openvino package's runtime (requirements.txt), not onnxruntime-openvino."""
    import importlib.util

    from base.providers import AUTO_ORDER, PROVIDERS

    facts = PROVIDERS["openvino"]
    assert (facts.runtime, facts.package, facts.ort_name) == ("openvino", "openvino", "")
    assert (importlib.util.find_spec("openvino") is not None) == provider_info("openvino").available
    assert "openvino" not in AUTO_ORDER  # on the CPU the precision option moves requests, from measurement


def test_on_a_gpu_fast_is_tf32_and_sessions_say_what_they_compute() -> None:
    from core.sessions import precision_on

    rows = [REFERENCE, OV_BF16]  # a CPU record does not move a GPU request
    assert choose("u2net", "cuda", "exact", rows).precision == "fp32"
    fast = choose("u2net", "cuda", "fast", rows)
    assert (fast.provider, fast.precision, fast.weights) == ("cuda", "tf32", "u2net")
    assert precision_on("cuda", "tf32") == "tf32" and precision_on("cuda", "fp32") == "fp32"
    assert precision_on("tensorrt", "fp32") == "fp16"  # TensorRT always builds fp16 engines
    with pytest.raises(InvalidOption, match="OpenVINO"):
        precision_on("cpu", "bf16")


def test_unknown_precision_word() -> None:
    with pytest.raises(InvalidOption, match="precision"):
        choose("u2net", "auto", "fastest", [])
    with pytest.raises(InvalidOption, match="precision"):
        RemovalOptions.from_values({"precision": "bf16"}).validated()


# --- the runtimes, on the real weights ------------------------------------------------------


@pytest.fixture(scope="module")
def inputs() -> dict[str, tuple[np.ndarray, tuple[int, int]]]:
    spec = MODELS["u2net"]
    out = {}
    for name in EVAL_PHOTOS:
        im = decode(photo(name), Limits(10**9, 10**9))
        out[name] = (to_tensor(im, spec.input_size, spec.mean, spec.std), im.size)
    return out


def _agreements(
    engine: Engine, model: str, provider: str, precision: str, inputs: dict[str, Any], reference: str | None = None
) -> list[Any]:
    """Each photo's mask by ``model`` on ``provider`` at ``precision`` against onnxruntime fp32's of
    ``reference`` (default: the model itself, or the base of a build)."""
    settings = dataclasses.replace(engine.settings, processing="exact", batching="off")
    home = settings.model_home
    spec = MODELS[model]
    base = MODELS[reference or (spec.build.base if spec.build else model)]
    expected = create_session(base, home / base.filename, "cpu", settings)
    actual = create_session(spec, home / spec.filename, provider, settings, precision)
    runtime = "openvino" if provider == "openvino" else "onnxruntime"
    assert (actual.provider, actual.precision, actual.runtime) == (provider, precision, runtime)
    return [
        agreement(np.asarray(to_mask(actual.run(t), size)), np.asarray(to_mask(expected.run(t), size)))
        for t, size in inputs.values()
    ]


@needs_openvino
@pytest.mark.model
@pytest.mark.parametrize("model", ["u2net", "u2netp"])
def test_openvino_f32_masks_equal_onnxruntime_fp32(engine: Engine, inputs: dict[str, Any], model: str) -> None:
    for a in _agreements(engine, model, "openvino", "fp32", inputs):
        assert a.mae <= tuned.EXACT_MAX_MAE and a.iou >= tuned.EXACT_MIN_IOU, a


@needs_openvino
@pytest.mark.model
@pytest.mark.skipif(not cpu_info().bf16, reason="this CPU has no AMX or AVX512_BF16")
def test_openvino_bf16_u2net_is_within_the_gate(engine: Engine, inputs: dict[str, Any]) -> None:
    found = _agreements(engine, "u2net", "openvino", "bf16", inputs)
    assert max(a.mae for a in found) <= MAX_PHOTO_MAE, found
    assert float(np.mean([a.mae for a in found])) <= MAX_MEAN_MAE, found
    assert min(a.mae for a in found) > 0  # bf16 did run: its masks are not fp32's to the bit


@needs_openvino
@pytest.mark.model
def test_openvino_runs_the_int8_build_closer_than_u2netp(engine: Engine, inputs: dict[str, Any]) -> None:
    """OpenVINO's int8 kernels round otherwise than onnxruntime's, so whether it passes the gate is
    tune's measurement; that it runs the QDQ file as int8 and gives u2net's masks, not noise, is checked here."""
    if not status(MODELS["u2net-int8"], engine.settings.model_home).verified:
        pytest.skip("u2net-int8 is not built here (python -m models build u2net-int8)")
    found = _agreements(engine, "u2net-int8", "openvino", "int8", inputs)
    fast = _agreements(engine, "u2netp", "cpu", "fp32", inputs, reference="u2net")
    assert all(a.mae <= f.mae for a, f in zip(found, fast, strict=True)), (found, fast)
    assert min(a.mae for a in found) > 0  # int8 did run


# --- the engine: what ran is what it reports --------------------------------------------------


def tuned_home(tmp_path: Path, rows: list[dict[str, Any]], model: str = "u2netp") -> Path:
    """A weights folder with the real weights (linked) and a tune record of ``rows`` for ``model``."""
    real = load_settings([]).model_home
    for name in ("u2net.onnx", "u2netp.onnx", "measured.json"):
        if (real / name).exists():
            (tmp_path / name).symlink_to(real / name)
    tuned.write(tmp_path, {"models": {model: {"candidates": rows}}})
    return tmp_path


@needs_openvino
@pytest.mark.model
def test_engine_reports_what_ran(tmp_path: Path) -> None:
    rows = [dict(REFERENCE, weights="u2netp"), dict(OV_BF16, weights="u2netp")]
    home = tuned_home(tmp_path, rows)
    engine = Engine(dataclasses.replace(load_settings([]), model_home=home))
    data = photo("car-1.jpg").read_bytes()
    fast = engine.remove(data, RemovalOptions(model="u2netp", precision="fast"))
    assert (fast.backend, fast.precision, fast.provider, fast.precision_ran) == (
        "openvino-cpu",
        "bf16",
        "openvino",
        "fast",
    )
    report = fast.report()
    assert (report["backend"], report["precision"], report["precision_note"]) == ("openvino-cpu", "bf16", "")
    exact = engine.remove(data, RemovalOptions(model="u2netp"))
    assert (exact.backend, exact.precision, exact.precision_ran) == ("onnxruntime-cpu", "fp32", "exact")
    loaded = {(m["model"], m["provider"], m["precision"]) for m in engine.sessions.loaded()}
    assert loaded == {("u2netp", "openvino", "bf16"), ("u2netp", "cpu", "fp32")}
    fast_default = Engine(dataclasses.replace(engine.settings, default_precision="fast"))
    assert fast_default.remove(data, RemovalOptions(model="u2netp")).precision == "bf16"


@pytest.mark.model
def test_fast_without_a_record_runs_exact_and_says_so(tmp_path: Path) -> None:
    home = tuned_home(tmp_path, [], model="u2net")
    engine = Engine(dataclasses.replace(load_settings([]), model_home=home))
    result = engine.remove(photo("car-1.jpg").read_bytes(), RemovalOptions(model="u2netp", precision="fast"))
    assert (result.backend, result.precision, result.precision_ran) == ("onnxruntime-cpu", "fp32", "exact")
    assert "python -m models tune has not measured u2netp" in result.report()["precision_note"]


@needs_openvino
@pytest.mark.model
def test_openvino_sessions_share_the_memory_budget() -> None:
    """u2net on OpenVINO (counted over 400 MiB) and u2netp on onnxruntime do not both fit in 300 MiB."""
    engine = Engine(dataclasses.replace(load_settings([]), session_memory_mb=300))
    engine.sessions.get("u2net", "openvino", "bf16" if cpu_info().bf16 else "fp32")
    engine.sessions.get("u2netp", "cpu")
    assert engine.sessions.keys() == [("u2netp", "cpu")]
    engine.sessions.get("u2net", "openvino")
    assert engine.sessions.keys() == [("u2net", "openvino")]
    [loaded] = engine.sessions.loaded()
    assert (loaded["runtime"], loaded["precision"], loaded["memory_mib"] > 300) == ("openvino", "fp32", True)
