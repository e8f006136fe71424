"""The quality gate of a built variant: what a user sees (its masks) and what it costs (its speed).

Measured on the evaluation photos (``base.assets.EVAL_PHOTOS``; none is a calibration
image), each model's mask as ``Engine.remove`` makes it with default options, against
the base model's (fp32 u2net):

* alpha MAE (mean absolute difference of the 0-255 alpha), and IoU of alpha > 127;
* for an int8 build also the fast model it is meant to replace (u2netp), on the same
  photos, and inference times of all three, run alternately in this process.

A build passes when (``GateReport.checks``):

* its mean alpha MAE is <= ``MAX_MEAN_MAE`` and no photo's is over ``MAX_PHOTO_MAE``;
* (int8) on every photo it is at least as close to fp32 as u2netp, by MAE and by IoU;
* (int8) its inference is ``MIN_SPEEDUP_VNNI`` times faster than fp32 where the CPU has
  VNNI, ``MIN_SPEEDUP`` elsewhere, and it takes at most ``MAX_VS_FAST`` times u2netp's.

Mean IoU alone was the wrong measure: on a photo whose mask is uncertain (rocket.jpg,
a small subject in a wide band of soft alpha) the 50% threshold turns small alpha
errors into large IoU changes, while u2netp, shipped as the fast model, is much further
from u2net on every photo.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from base.assets import EVAL_PHOTOS, PHOTOS_DIR, photo
from base.cpu import cpu_info
from base.settings import Settings
from base.timing import Clock
from core.decode import Limits, decode
from core.imaging import to_mask, to_tensor
from core.quality import Agreement, agreement
from core.sessions import create_session
from models.registry import ModelSpec

MAX_MEAN_MAE = 1.0
MAX_PHOTO_MAE = 3.0
MIN_SPEEDUP_VNNI = 2.0
MIN_SPEEDUP = 1.5
MAX_VS_FAST = 1.1
#: Timed runs per model (after one warm-up run each); the medians are compared.
GATE_RUNS = 7
#: The photo whose network input is timed (inference costs the same for any photo).
GATE_TIMING_PHOTO = "car-1.jpg"


class GateError(ValueError):
    """The gate cannot be measured (its photos are missing)."""


@dataclass
class GateReport:
    """The gate's figures for one built model against its base (and the fast model, for int8)."""

    model: str
    base: str
    photos: dict[str, Agreement]
    model_ms: float
    base_ms: float
    runs: int
    #: The fast model it competes with (u2netp), with its figures; None for data-free recipes.
    fast: str | None = None
    fast_photos: dict[str, Agreement] = field(default_factory=dict)
    fast_ms: float | None = None
    vnni: bool = False
    enforce_speed: bool = True

    @property
    def mean_mae(self) -> float:
        return statistics.fmean(a.mae for a in self.photos.values())

    @property
    def max_mae(self) -> float:
        return max(a.mae for a in self.photos.values())

    @property
    def mean_iou(self) -> float:
        return statistics.fmean(a.iou for a in self.photos.values())

    @property
    def speedup(self) -> float:
        return self.base_ms / self.model_ms

    @property
    def min_speedup(self) -> float:
        return MIN_SPEEDUP_VNNI if self.vnni else MIN_SPEEDUP

    def checks(self) -> dict[str, tuple[bool, str]]:
        """Each condition: whether it holds, and what was measured against what."""
        out = {
            "mean_mae": (self.mean_mae <= MAX_MEAN_MAE, f"mean alpha MAE {self.mean_mae:.2f} <= {MAX_MEAN_MAE:g}"),
            "photo_mae": (
                self.max_mae <= MAX_PHOTO_MAE,
                f"worst photo's alpha MAE {self.max_mae:.2f} <= {MAX_PHOTO_MAE:g}",
            ),
        }
        if self.fast is None:
            return out
        worse = [
            name
            for name, a in self.photos.items()
            if a.mae > self.fast_photos[name].mae or a.iou < self.fast_photos[name].iou
        ]
        out["closer_than_fast"] = (
            not worse,
            f"closer to {self.base} than {self.fast} on every photo"
            + (f" (not on {', '.join(worse)})" if worse else ""),
        )
        if self.enforce_speed:
            vnni = "with VNNI" if self.vnni else "without VNNI"
            out["speedup"] = (
                self.speedup >= self.min_speedup,
                f"{self.speedup:.2f}x faster than {self.base} >= {self.min_speedup:g}x ({vnni})",
            )
            assert self.fast_ms is not None
            ratio = self.model_ms / self.fast_ms
            out["vs_fast"] = (ratio <= MAX_VS_FAST, f"{ratio:.2f}x {self.fast}'s inference time <= {MAX_VS_FAST:g}x")
        return out

    @property
    def passed(self) -> bool:
        return all(ok for ok, _ in self.checks().values())

    def summary(self) -> str:
        return "; ".join(f"{text} {'ok' if ok else 'MISSED'}" for ok, text in self.checks().values())

    def table(self) -> str:
        """The speed/quality table of the models measured, on this machine."""
        cpu = cpu_info()
        lines = [
            f"on {cpu.model} ({cpu.physical_cores} cores, {'with' if self.vnni else 'without'} VNNI):",
            "| model | inference ms | mean alpha MAE (0-255) | mean IoU | worst IoU |",
            "|---|---|---|---|---|",
            f"| {self.base} | {self.base_ms:.0f} | - | - | - |",
        ]
        rows = [(self.model, self.model_ms, self.photos)]
        if self.fast is not None and self.fast_ms is not None:
            rows.insert(0, (self.fast, self.fast_ms, self.fast_photos))
        for name, ms, photos in rows:
            worst = min(photos, key=lambda p: photos[p].iou)
            lines.append(
                f"| {name} | {ms:.0f} | {statistics.fmean(a.mae for a in photos.values()):.2f} | "
                f"{statistics.fmean(a.iou for a in photos.values()):.3f} | {photos[worst].iou:.2f} ({worst}) |"
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The sidecar's ``gate``: every figure, the thresholds and each check."""
        out: dict[str, Any] = {
            "photos": {name: {"mae": round(a.mae, 3), "iou": round(a.iou, 5)} for name, a in self.photos.items()},
            "mean_mae": round(self.mean_mae, 3),
            "max_mae": round(self.max_mae, 3),
            "mean_iou": round(self.mean_iou, 5),
            "min_iou": round(min(a.iou for a in self.photos.values()), 5),
            "inference_ms": round(self.model_ms, 1),
            "base_ms": round(self.base_ms, 1),
            "speedup": round(self.speedup, 3),
            "runs": self.runs,
            "vnni": self.vnni,
            "speed_enforced": self.enforce_speed,
            "thresholds": {"max_mean_mae": MAX_MEAN_MAE, "max_photo_mae": MAX_PHOTO_MAE},
            "checks": {name: {"ok": ok, "measured": text} for name, (ok, text) in self.checks().items()},
            "passed": self.passed,
        }
        if self.fast is not None:
            assert self.fast_ms is not None
            fast = self.fast_photos.values()
            out["thresholds"] |= {"min_speedup": self.min_speedup, "max_vs_fast": MAX_VS_FAST}
            out["fast"] = {
                "model": self.fast,
                "inference_ms": round(self.fast_ms, 1),
                "mean_mae": round(statistics.fmean(a.mae for a in fast), 3),
                "mean_iou": round(statistics.fmean(a.iou for a in fast), 5),
                "min_iou": round(min(a.iou for a in fast), 5),
                "photos": {n: {"mae": round(a.mae, 3), "iou": round(a.iou, 5)} for n, a in self.fast_photos.items()},
            }
        return out


def measure_gate(
    spec: ModelSpec,
    base_spec: ModelSpec,
    built: Path,
    base: Path,
    settings: Settings,
    *,
    fast: tuple[ModelSpec, Path] | None = None,
    runs: int = GATE_RUNS,
    enforce_speed: bool = True,
    progress: bool = False,
) -> GateReport:
    """The built model's masks against the base's (and ``fast``'s), and their speeds, in this process.

    Masks as ``Engine.remove`` makes them with default options (decode, ``to_tensor``,
    the session's output 0, ``to_mask``); sessions as the service creates them on the
    CPU provider. The models are timed alternately on one input, ``runs`` times each
    after a warm-up, and the medians compared.
    """
    missing = [p for p in EVAL_PHOTOS if not photo(p).is_file()]
    if missing:
        raise GateError(f"evaluation photos missing from {PHOTOS_DIR}: {', '.join(missing)} (use --no-gate)")
    settings = dataclasses.replace(settings, processing="exact", batching="off")
    limits = Limits(settings.max_upload_bytes, settings.max_pixels)
    sessions = {
        "base": create_session(base_spec, base, "cpu", settings),
        "model": create_session(spec, built, "cpu", settings),
    }
    if fast is not None:
        sessions["fast"] = create_session(fast[0], fast[1], "cpu", settings)
    agreements: dict[str, dict[str, Agreement]] = {"model": {}, "fast": {}}
    timing: np.ndarray | None = None
    steps = len(EVAL_PHOTOS) + runs * len(sessions)
    with tqdm(total=steps, desc=f"{spec.name} gate", unit="step", disable=not progress) as bar:
        for name in EVAL_PHOTOS:
            im = decode(photo(name), limits)
            tensor = to_tensor(im, spec.input_size, spec.mean, spec.std)
            masks = {role: np.asarray(to_mask(s.run(tensor), im.size)) for role, s in sessions.items()}
            for role in ("model", "fast"):
                if role in masks:
                    agreements[role][name] = agreement(masks[role], masks["base"])
            if name == GATE_TIMING_PHOTO:
                timing = tensor
            bar.update(1)
        assert timing is not None
        times: dict[str, list[float]] = {role: [] for role in sessions}
        for session in sessions.values():
            session.run(timing)  # warm-up
        for _ in range(runs):  # alternately, so that a busy moment costs every model alike
            for role, session in sessions.items():
                clock = Clock()
                session.run(timing)
                times[role].append(clock.elapsed_ms())
                bar.update(1)
    medians = {role: statistics.median(t) for role, t in times.items()}
    return GateReport(
        model=spec.name,
        base=base_spec.name,
        photos=agreements["model"],
        model_ms=medians["model"],
        base_ms=medians["base"],
        runs=runs,
        fast=fast[0].name if fast else None,
        fast_photos=agreements["fast"],
        fast_ms=medians.get("fast"),
        vnni=cpu_info().vnni,
        enforce_speed=enforce_speed,
    )
