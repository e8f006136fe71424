"""The quality gate of a built variant: its masks against its base model's, and its speed-up.

``GATE_MIN_IOU`` mean IoU of alpha > 127 against the base model on the evaluation
photos, and ``GATE_MIN_SPEEDUP`` median speed-up with both models run alternately in
one process. The speed part is enforced where the CPU has int8 dot-product
instructions (``base.cpu``); without them int8 convolutions cannot reach it, so the
figure is measured and recorded but does not fail the build. Every recipe gets the
IoU part (on the CPU, so fp16 is checked here too).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from base.assets import EVAL_PHOTOS, PHOTOS_DIR, photo
from base.settings import Settings
from core.decode import Limits, decode
from core.imaging import to_mask, to_tensor
from core.sessions import create_session
from models.registry import ModelSpec

#: Mean IoU (alpha > 127) against the base model that a build must reach.
GATE_MIN_IOU = 0.99
#: Speed-up over the base model (median of GATE_RUNS runs each) that a build must reach.
GATE_MIN_SPEEDUP = 2.5
#: Timed runs per model for the speed figure (after one warm-up run each).
GATE_RUNS = 7
#: The photo whose tensor is timed.
GATE_TIMING_PHOTO = "car-1.jpg"


class GateError(ValueError):
    """The gate cannot be measured (its photos are missing)."""


@dataclass
class GateReport:
    """The gate's figures for one built model against its base."""

    per_photo_iou: dict[str, float]
    fp32_ms: float
    int8_ms: float
    runs: int
    min_iou: float = GATE_MIN_IOU
    min_speedup: float = GATE_MIN_SPEEDUP
    enforce_speed: bool = True

    @property
    def mean_iou(self) -> float:
        return statistics.fmean(self.per_photo_iou.values())

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.int8_ms

    @property
    def quality_ok(self) -> bool:
        return self.mean_iou >= self.min_iou

    @property
    def speed_ok(self) -> bool:
        return self.speedup >= self.min_speedup

    @property
    def passed(self) -> bool:
        return self.quality_ok and (self.speed_ok or not self.enforce_speed)

    def summary(self) -> str:
        speed = f"speed-up {self.speedup:.2f}x (gate {self.min_speedup:g}x"
        speed += ")" if self.enforce_speed else ", not enforced)"
        return f"mean IoU {self.mean_iou:.4f} (gate {self.min_iou:g}), {speed}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "mean_iou": round(self.mean_iou, 5),
            "per_photo_iou": {k: round(v, 5) for k, v in self.per_photo_iou.items()},
            "min_iou": self.min_iou,
            "speedup": round(self.speedup, 3),
            "min_speedup": self.min_speedup,
            "speed_enforced": self.enforce_speed,
            "fp32_ms": round(self.fp32_ms, 1),
            "int8_ms": round(self.int8_ms, 1),
            "runs": self.runs,
            "passed": self.passed,
        }


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    fa, fb = a > 127, b > 127
    union = int((fa | fb).sum())
    return float((fa & fb).sum() / union) if union else 1.0


def measure_gate(
    spec: ModelSpec,
    base_spec: ModelSpec,
    built: Path,
    base: Path,
    settings: Settings,
    *,
    runs: int = GATE_RUNS,
    enforce_speed: bool = True,
) -> GateReport:
    """IoU of the built model's masks against the base's and its speed-up, in this process.

    Masks as ``Engine.remove`` makes them with default options (decode,
    ``to_tensor``, the session's output 0, ``to_mask``); sessions as the service
    creates them (``core.sessions.create_session`` on the CPU provider). The two
    models are timed alternately on one tensor, ``runs`` times each after a
    warm-up, and the medians compared.
    """
    missing = [p for p in EVAL_PHOTOS if not photo(p).is_file()]
    if missing:
        raise GateError(f"evaluation photos missing from {PHOTOS_DIR}: {', '.join(missing)} (use --no-gate)")
    limits = Limits(settings.max_upload_bytes, settings.max_pixels)
    fp32 = create_session(base_spec, base, "cpu", settings)
    int8 = create_session(spec, built, "cpu", settings)
    ious: dict[str, float] = {}
    timing_tensor: np.ndarray | None = None
    for name in EVAL_PHOTOS:
        im = decode(photo(name), limits)
        tensor = to_tensor(im, spec.input_size, spec.mean, spec.std)
        expected = np.asarray(to_mask(fp32.run(tensor), im.size))
        actual = np.asarray(to_mask(int8.run(tensor), im.size))
        ious[name] = _iou(actual, expected)
        if name == GATE_TIMING_PHOTO:
            timing_tensor = tensor
    assert timing_tensor is not None
    fp32_s: list[float] = []
    int8_s: list[float] = []
    for _ in range(runs):
        for session, times in ((fp32, fp32_s), (int8, int8_s)):
            started = time.perf_counter()
            session.run(timing_tensor)
            times.append(time.perf_counter() - started)
    report = GateReport(
        per_photo_iou=ious,
        fp32_ms=statistics.median(fp32_s) * 1000,
        int8_ms=statistics.median(int8_s) * 1000,
        runs=runs,
        enforce_speed=enforce_speed,
    )
    return report
