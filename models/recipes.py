"""How each built entry is made, as data: the recipes of ``python -m models build``.

A registry entry whose source is ``Build(base=..., recipe=...)`` names one of these.
The whole recipe is recorded in the built file's sidecar (``models.sidecar``), so
changing any field makes existing builds unverified and the next build remakes them.
The code that applies a recipe is the ``variants`` package, above the engine.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from base.assets import CALIBRATION_DIR
from models.registry import Build, ModelSpec

CALIBRATION_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Recipe:
    """Int8 static quantisation (QDQ), every knob as data."""

    #: Opset the base is raised to before quantising (per-channel QDQ needs 13).
    opset: int
    #: ``QuantType`` names of activations and weights.
    activation_type: str
    weight_type: str
    per_channel: bool
    #: 7-bit weights, against u8s8 overflow on x86 without VNNI.
    reduce_range: bool
    #: ``CalibrationMethod`` name.
    calibrate_method: str
    #: Random crops/flips per calibration image (besides the whole image).
    crops: int
    seed: int
    #: Op types quantised (everything else runs in float).
    op_types: tuple[str, ...]
    #: Bias correction: a quantised conv whose int8 weights keep less than this many dB
    #: of signal to rounding noise (outlier weights) gets its float bias shifted to cancel
    #: the mean output error the rounding causes, measured on the calibration images.
    #: 0 turns it off.
    bias_correct_below_db: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ConvertRecipe:
    """A data-free rewrite of the base graph (fp16 and/or a symbolic batch dimension)."""

    fp16: bool = False
    dynamic_batch: bool = False
    #: fp16: keep float32 graph inputs and outputs, so callers feed the same tensors.
    keep_io_types: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


RECIPES: dict[str, Recipe | ConvertRecipe] = {
    "int8-qdq": Recipe(
        opset=13,
        activation_type="QUInt8",
        weight_type="QInt8",
        per_channel=True,
        reduce_range=False,
        calibrate_method="MinMax",
        crops=3,
        seed=20240601,
        op_types=("Conv", "MaxPool", "Resize", "Concat", "Add", "Relu"),
        # Picks u2net's three convs with outlier weights (Conv_765, Conv_787, Conv_920, all
        # under 35 dB; every other conv is well above them).
        bias_correct_below_db=35.0,
    ),
    "fp16": ConvertRecipe(fp16=True),
    "dynamic-batch": ConvertRecipe(dynamic_batch=True),
}


class RecipeError(ValueError):
    """An entry that is not built here, or names a recipe that does not exist."""


def recipe_of(spec: ModelSpec) -> tuple[Build, Recipe | ConvertRecipe]:
    build = spec.build
    if build is None:
        raise RecipeError(f"{spec.name} is not built here (its sources are downloads)")
    recipe = RECIPES.get(build.recipe)
    if recipe is None:
        raise RecipeError(f"unknown recipe {build.recipe!r}; known: {', '.join(RECIPES)}")
    return build, recipe


def calibration_files() -> list[Path]:
    return sorted(p for p in CALIBRATION_DIR.iterdir() if p.suffix.lower() in CALIBRATION_SUFFIXES)


def calibration_digest() -> str:
    """SHA-256 over the calibration images' names and bytes, in build order."""
    digest = hashlib.sha256()
    for path in calibration_files():
        digest.update(path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
