"""What this machine measured of each model: its speed, and how close its masks are to u2net's.

Written by the build gate (``python -m models build``) and by the benchmark
(``python -m benchmark``), beside the weights (``$U2NET_HOME/measured.json``), per
provider; read by the WebUI's model menu, ``python -m models list`` and ``/healthz``
so that a user picks a model knowing what it costs and what it gives here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from base.cpu import cpu_info
from base.files import atomic_write

FILENAME = "measured.json"
#: What a model is compared with.
REFERENCE = "u2net"
FIELDS = ("inference_ms", "alpha_mae", "iou")


def _path(home: Path) -> Path:
    return home / FILENAME


def read(home: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """``{provider: {model: {inference_ms, alpha_mae, iou, source, measured_at, cpu}}}``; {} when none."""
    try:
        data = json.loads(_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record(home: Path, provider: str, figures: dict[str, dict[str, float | None]], source: str) -> None:
    """Merge ``figures`` (``{model: {inference_ms, alpha_mae, iou}}``) measured on ``provider`` into the file."""
    data = read(home)
    stamp = {"source": source, "measured_at": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_info().model}
    for model, values in figures.items():
        kept = {k: round(float(v), 4) for k, v in values.items() if k in FIELDS and v is not None}
        data.setdefault(provider, {})[model] = kept | stamp
    atomic_write(_path(home), json.dumps(data, indent=2) + "\n")


def figures(home: Path, model: str, provider: str = "cpu") -> dict[str, Any] | None:
    """The figures of ``model`` on ``provider``, or None when nothing was measured here."""
    found = read(home).get(provider, {}).get(model)
    return found if isinstance(found, dict) else None


def describe(found: dict[str, Any] | None) -> str:
    """One short line for a menu or a table: "120 ms, alpha MAE 0.66 vs u2net"."""
    if not found:
        return "not measured here"
    parts = []
    if found.get("inference_ms") is not None:
        parts.append(f"{found['inference_ms']:.0f} ms")
    if found.get("alpha_mae") is not None:
        parts.append(f"alpha MAE {found['alpha_mae']:.2f} vs {REFERENCE}")
    return ", ".join(parts) or "not measured here"
