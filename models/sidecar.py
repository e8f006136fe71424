"""The record a build writes beside its file, and what makes a built file *verified*.

A built file's bytes depend on the onnxruntime version that made it, so the registry
pins no MD5 for it. Instead it is verified when its sidecar ``<filename>.json`` exists
and matches: the file's MD5 and size, the base's registry MD5, the recipe, and the
calibration images (int8 only). The onnxruntime version is recorded, not required:
the results are plain ONNX files that later onnxruntime versions run unchanged. The
sidecar also describes the model: the build's measured figures (``gate``); the ones
the model menu, ``python -m models list`` and ``/healthz`` show are copied to
``models.measured``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.recipes import Recipe, RecipeError, calibration_digest, recipe_of
from models.registry import ModelSpec, get_spec

log = logging.getLogger(__name__)

SIDECAR_FORMAT = 1


def sidecar_path(spec: ModelSpec, home: Path) -> Path:
    return home / (spec.filename + ".json")


def read_sidecar(spec: ModelSpec, home: Path) -> dict[str, Any] | None:
    """The build record of ``spec`` in ``home``; None when missing or unreadable."""
    try:
        data = json.loads(sidecar_path(spec, home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def expected_record(spec: ModelSpec) -> dict[str, Any]:
    """The sidecar fields that must match for ``spec``'s file to count as verified."""
    build, recipe = recipe_of(spec)
    base = get_spec(build.base)
    record: dict[str, Any] = {
        "format": SIDECAR_FORMAT,
        "model": spec.name,
        "filename": spec.filename,
        "base": {"name": base.name, "md5": base.md5},
        "recipe": {"name": build.recipe, **recipe.as_dict()},
    }
    if isinstance(recipe, Recipe):  # only calibrated recipes depend on the images
        record["calibration"] = {"sha256": calibration_digest()}
    return record


def verify(spec: ModelSpec, record: dict[str, Any] | None, size: int, md5: Callable[[], str]) -> bool:
    """Whether ``record`` (the sidecar) vouches for a file of ``size`` bytes whose MD5 is ``md5()``.

    ``md5`` is called last, only when everything cheaper already matches.
    """
    if record is None:
        return False
    try:
        expected = expected_record(spec)
    except (RecipeError, OSError):
        return False
    for key, value in expected.items():
        got = record.get(key)
        if key == "calibration":
            got = {"sha256": got.get("sha256")} if isinstance(got, dict) else None
        if got != value:
            log.debug("%s: sidecar %s differs: %r != %r", spec.name, key, got, value)
            return False
    return record.get("size") == size and record.get("md5") == md5()
