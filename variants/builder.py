"""``build(spec, home)``: make a built registry entry, check its gate, install it with its sidecar.

The base is fetched first when missing. The file is made in a hidden temporary file
beside the target and renamed into place only after the gate passed (``base.files``);
then its sidecar ``<filename>.json`` is written the same way. The sidecar records the
base's MD5, the recipe, the calibration images' digest, the onnxruntime/onnx versions,
the nodes kept fp32, the gate's figures and the built file's own MD5 and size
(``models.sidecar`` says what makes it verified).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from base.cpu import cpu_info
from base.files import atomic_target, atomic_write
from base.settings import Settings, load_settings
from base.timing import Clock
from models import fetch as fetching
from models import measured
from models.recipes import ConvertRecipe, Recipe, RecipeError, calibration_digest, calibration_files, recipe_of
from models.registry import ModelSpec, get_spec
from models.sidecar import expected_record, read_sidecar, sidecar_path
from variants.convert import GraphError, convert_into
from variants.gate import GateError, GateReport, measure_gate
from variants.int8 import quantize_into

#: The fast model an int8 build is meant to replace on CPUs, and is measured against.
FAST_MODEL = "u2netp"

log = logging.getLogger(__name__)


def _record_measured(home: Path, report: GateReport) -> None:
    """The gate's figures of every model it ran, for the menu, ``list`` and ``/healthz``."""
    figures: dict[str, dict[str, float | None]] = {
        report.base: {"inference_ms": report.base_ms, "alpha_mae": 0.0, "iou": 1.0},
        report.model: {"inference_ms": report.model_ms, "alpha_mae": report.mean_mae, "iou": report.mean_iou},
    }
    if report.fast is not None:
        fast = report.fast_photos.values()
        figures[report.fast] = {
            "inference_ms": report.fast_ms,
            "alpha_mae": sum(a.mae for a in fast) / len(fast),
            "iou": sum(a.iou for a in fast) / len(fast),
        }
    measured.record(home, "cpu", figures, source=f"python -m models build {report.model}")


class BuildError(Exception):
    """The build failed; ``phrase`` says why in a few words."""

    def __init__(self, phrase: str) -> None:
        super().__init__(phrase)
        self.phrase = phrase


class GateFailed(BuildError):
    """The built model missed the quality gate; nothing was installed."""

    def __init__(self, report: GateReport) -> None:
        super().__init__(f"quality gate not met ({report.summary()})")
        self.report = report


@dataclass
class BuildResult:
    path: Path
    sidecar: dict[str, Any]
    #: False when the model was already present and verified (nothing built).
    built: bool


def make_into(
    base_path: Path, out: Path, spec: ModelSpec, recipe: Recipe | ConvertRecipe, *, progress: bool = False
) -> list[str]:
    """Build ``out`` from ``base_path`` by either kind of recipe; returns the nodes kept fp32."""
    if isinstance(recipe, ConvertRecipe):
        return convert_into(base_path, out, recipe)
    return quantize_into(base_path, out, spec, recipe, progress=progress)


def _sidecar_record(
    spec: ModelSpec,
    recipe: Recipe | ConvertRecipe,
    part: Path,
    digest: str,
    keep: list[str],
    report: GateReport | None,
    seconds: float,
) -> dict[str, Any]:
    """What the sidecar records of one build: the recipe, the file, the versions, the gate and the machine."""
    record: dict[str, Any] = {
        **expected_record(spec),
        "md5": digest,
        "size": part.stat().st_size,
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "fp32_nodes": keep,
        "fp32_convs": [n for n in keep if n.startswith("Conv")],
        "gate": report.as_dict() if report else None,
        "gate_skipped": report is None,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(seconds, 1),
        "python": sys.version.split()[0],
        "cpu": {"model": cpu_info().model, "flags": cpu_info().reported_flags()},
    }
    if isinstance(recipe, Recipe):
        record["calibration"] = {
            "sha256": calibration_digest(),
            "images": [p.name for p in calibration_files()],
            "tensors": len(calibration_files()) * (1 + recipe.crops),
        }
    return record


def build(
    spec: ModelSpec,
    home: Path,
    *,
    gate: bool = True,
    enforce_speed: bool | None = None,
    force: bool = False,
    progress: bool = True,
    fetch_base: bool = True,
    settings: Settings | None = None,
    say: Callable[[str], None] | None = None,
) -> BuildResult:
    """Build ``spec`` (a Build entry) into ``home``; idempotent unless ``force``.

    Fetches the base when missing (if ``fetch_base``), builds into a hidden temp file
    beside the target, checks the gate (``variants.gate``; unless ``gate`` is False; the
    speed part unless ``enforce_speed`` is False), then renames the file and writes its
    sidecar, and the figures the gate measured to ``models.measured``. Raises
    ``BuildError`` (``GateFailed`` for a missed gate) or ``base.errors.ModelNotAvailable``
    (base unavailable); nothing is left behind on failure.
    """
    say = say or log.info
    try:
        build_source, recipe = recipe_of(spec)
    except RecipeError as exc:
        raise BuildError(str(exc)) from None
    if enforce_speed is None:
        enforce_speed = True
    target = fetching.model_path(spec, home)
    if not force and fetching.status(spec, home).verified:
        return BuildResult(target, read_sidecar(spec, home) or {}, built=False)
    base_spec = get_spec(build_source.base)
    base = fetching.ensure_model(base_spec, home, fetch_missing=fetch_base, progress=progress)
    fast: tuple[ModelSpec, Path] | None = None
    if gate and isinstance(recipe, Recipe):  # an int8 build competes with the fast model
        fast_spec = get_spec(FAST_MODEL)
        fast = (fast_spec, fetching.ensure_model(fast_spec, home, fetch_missing=fetch_base, progress=progress))
    settings = replace(settings or load_settings([]), model_home=home)
    clock = Clock()
    try:
        with atomic_target(target) as part:
            # The estimate setup.sh and docs/models.md give for the build with its gate (measured there).
            takes = "up to about two minutes on 2 cores" if isinstance(recipe, Recipe) else "seconds"
            say(f"{spec.name}: building from {base.name} (recipe {build_source.recipe}; {takes}) ...")
            try:
                keep = make_into(base, part, spec, recipe, progress=progress)
            except GraphError as exc:
                raise BuildError(str(exc)) from None
            except Exception as exc:  # onnx/onnxruntime raise many unrelated types
                raise BuildError(f"recipe {build_source.recipe} failed: {type(exc).__name__}: {exc}") from exc
            say(f"{spec.name}: built in {clock.elapsed_s():.0f} s; {len(keep)} nodes kept fp32")
            report: GateReport | None = None
            if gate:
                say(f"{spec.name}: measuring the gate against {base_spec.name} ...")
                try:
                    report = measure_gate(
                        spec, base_spec, part, base, settings, fast=fast, enforce_speed=enforce_speed, progress=progress
                    )
                except GateError as exc:
                    raise BuildError(str(exc)) from None
                say(report.table())
                say(f"{spec.name}: {report.summary()}")
                if not report.passed:
                    raise GateFailed(report)
            digest = fetching.file_md5(part)
            record = _sidecar_record(spec, recipe, part, digest, keep, report, clock.elapsed_s())
    except OSError as exc:
        raise BuildError(f"cannot write to {home} ({exc.strerror or exc})") from None
    # The model first, then its record: a crash in between leaves a file whose sidecar
    # does not match, which simply counts as unverified (rebuilt).
    fetching.remember_md5(target, digest)
    atomic_write(sidecar_path(spec, home), json.dumps(record, indent=2) + "\n")
    if report is not None:
        _record_measured(home, report)
    return BuildResult(target, record, built=True)
