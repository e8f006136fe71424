"""What ``python -m models tune`` measured here: every runtime and precision of each model, gated.

Written beside the weights (``$U2NET_HOME/tuned.json``, next to ``measured.json``) and
read by the engine (``core.precision``) to choose what serves ``precision=exact`` and
``precision=fast``, by ``/healthz`` and by ``python -m models list``. A record holds, per
requested model, one row per candidate: where it ran (``provider``: ``cpu`` is
onnxruntime, ``openvino`` is OpenVINO), at which ``precision``, from which weights file
(``weights``: u2net-int8 for u2net's int8), its median inference time and how its masks
compare with onnxruntime fp32's on the evaluation photos, and whether it passed each gate:

* ``exact``: every photo's alpha MAE <= ``EXACT_MAX_MAE`` and IoU >= ``EXACT_MIN_IOU``
  (masks equal to ``rembg.remove()`` with the same model);
* ``fast``: the build gate of ``variants.gate`` (mean alpha MAE <= 1.0, worst photo
  <= 3.0, and for u2net closer than u2netp on every photo).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from base.files import atomic_write

FILENAME = "tuned.json"
FORMAT = 1
EXACT_MAX_MAE = 0.5
EXACT_MIN_IOU = 0.999
TUNE_COMMAND = "python -m models tune"

#: (path, mtime) -> record: the engine asks per request; the file changes only when tune runs.
_cache: dict[Path, tuple[float, dict[str, Any]]] = {}


def path(home: Path) -> Path:
    return home / FILENAME


def read(home: Path) -> dict[str, Any]:
    """The record (``{format, measured_at, cpu, flags, runtimes, models: {name: {candidates: [...]}}}``);
    {} when there is none or it cannot be read."""
    file = path(home)
    try:
        mtime = file.stat().st_mtime
    except OSError:
        return {}
    cached = _cache.get(file)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("models"), dict):
        return {}
    _cache[file] = (mtime, data)
    return data


def write(home: Path, record: dict[str, Any]) -> None:
    """Replace the record (atomically: a reader sees the old one or the new one)."""
    atomic_write(path(home), json.dumps({"format": FORMAT, **record}, indent=2) + "\n")


def candidates(home: Path, model: str) -> list[dict[str, Any]]:
    """The measured candidates of ``model``; [] when it was not tuned here."""
    entry = read(home).get("models", {}).get(model)
    rows = entry.get("candidates") if isinstance(entry, dict) else None
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []
