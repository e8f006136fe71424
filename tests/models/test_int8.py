"""The built u2net-int8 model: its sidecar verification, its place in fetch, and its quality gate.

A temporary weights folder and a fake built file: the sidecar verification, the
fetch and CLI paths, and that a missed gate installs nothing. Whether the real int8
model meets its gate depends on the CPU (docs/models.md: it does where the CPU has
VNNI), so no test here claims either; the gate itself runs on every
``python -m models build u2net-int8``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import models.__main__ as cli
from base.assets import EVAL_PHOTOS
from base.errors import ModelNotAvailable
from core.quality import Agreement
from models import fetch as fetching
from models import measured
from models.recipes import RECIPES, calibration_files
from models.registry import MODELS
from models.sidecar import expected_record, sidecar_path
from variants import builder
from variants.gate import GateReport

SPEC = MODELS["u2net-int8"]
FAKE = b"a quantised model, as far as the sidecar knows" * 100


def write_fake_build(home: Path, data: bytes = FAKE, **changes: object) -> Path:
    """A built file and a sidecar that vouches for it (as ``variants.builder.build`` writes them)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / SPEC.filename
    path.write_bytes(data)
    record = {**expected_record(SPEC), "md5": fetching.file_md5(path), "size": len(data), **changes}
    sidecar_path(SPEC, home).write_text(json.dumps(record))
    return path


def test_the_entry_is_built_from_u2net() -> None:
    assert SPEC.build is not None and SPEC.build.base == "u2net"
    assert SPEC.build.recipe in RECIPES
    assert SPEC.md5 is None


def test_calibration_images_are_not_evaluation_photos() -> None:
    calibration = {p.name for p in calibration_files()}
    assert len(calibration) >= 8
    assert not calibration & set(EVAL_PHOTOS)


def test_a_matching_sidecar_verifies(tmp_path: Path) -> None:
    write_fake_build(tmp_path)
    assert fetching.status(SPEC, tmp_path).verified
    assert fetching.ensure_model(SPEC, tmp_path) == tmp_path / SPEC.filename


@pytest.mark.parametrize(
    "changes",
    [
        {"md5": "0" * 32},
        {"size": 1},
        {"base": {"name": "u2net", "md5": "0" * 32}},
        {"recipe": {"name": "int8-qdq", "seed": 1}},
        {"calibration": {"sha256": "0" * 64}},
    ],
    ids=["file-md5", "size", "base-md5", "recipe", "calibration"],
)
def test_any_mismatch_is_unverified(tmp_path: Path, changes: dict[str, object]) -> None:
    write_fake_build(tmp_path, **changes)
    assert not fetching.status(SPEC, tmp_path).verified


def test_a_rewritten_file_is_unverified(tmp_path: Path) -> None:
    path = write_fake_build(tmp_path)
    path.write_bytes(FAKE[::-1])
    assert not fetching.status(SPEC, tmp_path).verified


def test_requests_never_build_they_name_the_command(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable) as info:
        fetching.ensure_model(SPEC, tmp_path, fetch_missing=True)
    assert "python -m models build u2net-int8" in info.value.message
    assert list(tmp_path.iterdir()) == []


def test_build_refuses_downloaded_models(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["build", "u2netp"]) == 2
    assert "fetch" in capsys.readouterr().err


def test_a_verified_build_is_not_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake_build(tmp_path)
    monkeypatch.setattr(builder, "quantize_into", lambda *a, **k: pytest.fail("rebuilt"))
    result = builder.build(SPEC, tmp_path, progress=False)
    assert result.built is False and result.path == tmp_path / SPEC.filename


def test_a_failed_gate_installs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quantisation and the gate are replaced; the install logic around them is real."""
    (tmp_path / "u2net.onnx").write_bytes(b"x")
    monkeypatch.setattr(fetching, "ensure_model", lambda spec, home, **k: home / spec.filename)

    def fake_quantize(base: Path, out: Path, *args: object, **kwargs: object) -> list[str]:
        out.write_bytes(FAKE)
        return ["Conv_0"]

    report = gate_report(int8=(4.0, 0.9), fast=(6.0, 0.8))  # a photo 4/255 off: over the per-photo limit
    monkeypatch.setattr(builder, "quantize_into", fake_quantize)
    monkeypatch.setattr(builder, "measure_gate", lambda *a, **k: report)
    with pytest.raises(builder.GateFailed) as info:
        builder.build(SPEC, tmp_path, progress=False)
    assert "worst photo's alpha MAE 4.00 <= 3 MISSED" in info.value.phrase
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u2net.onnx"]

    report.photos["rocket.jpg"] = Agreement(0.7, 0.95)
    result = builder.build(SPEC, tmp_path, progress=False)
    assert result.built and fetching.status(SPEC, tmp_path).verified
    gate = result.sidecar["gate"]
    assert gate["passed"] is True and result.sidecar["fp32_nodes"] == ["Conv_0"] and not result.sidecar["gate_skipped"]
    assert gate["fast"]["model"] == "u2netp" and gate["inference_ms"] == 100.0
    # what the menu, `list` and /healthz show now
    assert measured.figures(tmp_path, "u2net-int8") is not None
    assert measured.figures(tmp_path, "u2netp")["inference_ms"] == 110.0  # type: ignore[index]


def gate_report(int8: tuple[float, float], fast: tuple[float, float], vnni: bool = True) -> GateReport:
    """Two photos; rocket.jpg gets the given (MAE, IoU) for int8 and u2netp, car-1.jpg near-perfect figures."""
    return GateReport(
        model="u2net-int8",
        base="u2net",
        photos={"car-1.jpg": Agreement(0.2, 0.999), "rocket.jpg": Agreement(*int8)},
        model_ms=100.0,
        base_ms=250.0,
        runs=3,
        fast="u2netp",
        fast_photos={"car-1.jpg": Agreement(3.0, 0.95), "rocket.jpg": Agreement(*fast)},
        fast_ms=110.0,
        vnni=vnni,
    )


@pytest.mark.parametrize(
    ("changes", "missed"),
    [
        ({}, set()),
        ({"int8": (2.5, 0.9)}, {"mean_mae"}),  # mean (0.2 + 2.5) / 2 > 1.0
        ({"int8": (0.9, 0.7)}, {"closer_than_fast"}),  # worse IoU than u2netp on rocket.jpg
        ({"model_ms": 130.0}, {"speedup", "vs_fast"}),  # 1.92x < 2x with VNNI, and 1.18x u2netp's time
        ({"model_ms": 130.0, "vnni": False}, {"vs_fast"}),  # 1.5x is enough without VNNI
    ],
)
def test_the_gate_checks(changes: dict[str, object], missed: set[str]) -> None:
    report = gate_report(
        int8=changes.get("int8", (0.9, 0.9)),  # type: ignore[arg-type]
        fast=(6.0, 0.8),
        vnni=bool(changes.get("vnni", True)),
    )
    report.model_ms = float(changes.get("model_ms", 100.0))  # type: ignore[arg-type]
    assert {name for name, (ok, _) in report.checks().items() if not ok} == missed
    assert report.passed == (not missed)
    report.enforce_speed = False
    assert not {"speedup", "vs_fast"} & set(report.checks())
