"""What serves ``precision=exact`` and ``precision=fast``: chosen from what this machine measured.

``choose`` is the one place that turns a request's model, provider and precision word
into the weights, provider and precision that run. On a CPU it reads the record of
``python -m models tune`` (``models.tuned``): ``exact`` is the fastest candidate whose
masks equal onnxruntime fp32's (rembg's), ``fast`` the fastest that passes the quality
gate. Nothing is chosen from CPU flags: they only decided which candidates tune tried.
Without a record, ``exact`` is onnxruntime fp32 (rembg's own runtime) and ``fast`` runs
``exact``, saying so. On a GPU, ``exact`` is fp32 and ``fast`` TF32 on CUDA (TensorRT
always builds fp16 engines); ``--gpu-precision tf32``, the older flag, still makes every
CUDA session TF32.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from base.errors import InvalidOption, RemovalError
from base.providers import PRECISION_CHOICES, PROVIDERS
from core.providers import provider_info, resolve
from models import tuned
from models.registry import MODELS

#: How much faster than onnxruntime fp32 a candidate must have measured to replace it: OpenVINO
#: f32 and onnxruntime fp32 run about the same arithmetic at about the same speed (tune measured
#: OpenVINO f32 between 1.03x and 1.09x on one machine, run to run: docs/cpu-precision.md), and a
#: noisy measurement must not flip which runtime every request runs on from one tune to the next.
#: Below this, ``exact`` stays on onnxruntime fp32, rembg's own runtime: byte for byte rembg's masks.
MIN_GAIN = 1.25
#: The CPU providers a choice may move a request between, by what it asked for.
CPU_PROVIDERS = {"auto": ("cpu", "openvino"), "cpu": ("cpu",), "openvino": ("openvino",)}


@dataclass(frozen=True)
class Choice:
    """What runs for one request: ``weights`` (a registry model) on ``provider`` at ``precision``."""

    requested: str  # exact or fast
    model: str  # the model asked for
    weights: str
    provider: str  # ours; ``auto`` stays auto where the GPU-or-CPU question is the session cache's
    precision: str  # fp32, bf16, int8; tf32 asks CUDA for TF32
    #: Empty, or why the request runs other than it asked ("fast runs exact: ...").
    note: str = ""
    #: Mean alpha MAE against onnxruntime fp32 on the evaluation photos, where measured.
    mae: float | None = None

    @property
    def ran(self) -> str:
        """exact or fast: what the answer ran as."""
        return "fast" if self.requested == "fast" and not self.note else "exact"


def check_word(word: str) -> str:
    if word not in PRECISION_CHOICES:
        raise InvalidOption("precision", f"choose one of {', '.join(PRECISION_CHOICES)}")
    return word


def _on_gpu(provider: str) -> bool:
    if provider == "auto":
        try:
            first = resolve("auto")[0]
        except (RemovalError, IndexError):
            return False
        return PROVIDERS[first].gpu
    return provider in PROVIDERS and PROVIDERS[provider].gpu


def fastest(rows: Iterable[dict[str, Any]], gate: str, providers: tuple[str, ...]) -> dict[str, Any] | None:
    """The fastest row that passed ``gate`` (exact or fast) on one of ``providers`` and that can run here,
    where it measured ``MIN_GAIN`` times faster than the reference row (onnxruntime fp32), if there is one."""
    rows = list(rows)
    passing = [
        row
        for row in rows
        if row.get(gate) is True
        and row.get("provider") in providers
        and row.get("weights") in MODELS
        and isinstance(row.get("inference_ms"), (int, float))
        and provider_info(str(row["provider"])).available
    ]
    if not passing:
        return None
    best = min(passing, key=lambda row: float(row["inference_ms"]))
    reference = next(
        (r for r in passing if (r.get("provider"), r.get("precision")) == ("cpu", "fp32")),
        None,
    )
    if reference is not None and float(best["inference_ms"]) * MIN_GAIN > float(reference["inference_ms"]):
        return reference
    return best


def choose(model: str, provider: str, word: str, rows: list[dict[str, Any]]) -> Choice:
    """What runs ``model`` on ``provider`` for ``word``, given the tune record's ``rows`` for ``model``."""
    check_word(word)
    if _on_gpu(provider):
        return Choice(word, model, model, provider, "tf32" if word == "fast" else "fp32")
    allowed = CPU_PROVIDERS.get(provider, (provider,))
    default = Choice(word, model, model, provider, "fp32")
    exact_row = fastest(rows, "exact", allowed)
    exact = default if exact_row is None else _from_row(word, model, provider, exact_row)
    if word == "exact":
        return exact
    fast_row = fastest(rows, "fast", allowed)
    if fast_row is not None and fast_row is not exact_row:
        return _from_row(word, model, provider, fast_row)
    if not rows:
        why = f"{tuned.TUNE_COMMAND} has not measured {model} here"
    else:
        why = f"no faster build of {model} passed the quality gate on {' or '.join(allowed)} here"
    return Choice(word, model, exact.weights, exact.provider, exact.precision, f"fast runs exact: {why}", exact.mae)


def _from_row(word: str, model: str, provider: str, row: dict[str, Any]) -> Choice:
    # A request for auto on a CPU keeps rembg's runtime unless the record moved it.
    chosen = str(row["provider"])
    mae = row.get("mean_mae")
    return Choice(
        word,
        model,
        str(row["weights"]),
        chosen if provider != "auto" or chosen != "cpu" else "auto",
        str(row["precision"]),
        mae=float(mae) if isinstance(mae, (int, float)) else None,
    )


def choice_for(home: Path, model: str, provider: str, word: str) -> Choice:
    """``choose`` with the record in ``home``."""
    return choose(model, provider, word, tuned.candidates(home, model))


def describe(choice: Choice) -> str:
    """One line for a menu or ``python -m models list``: "openvino bf16, 82 ms"."""
    where = "onnxruntime" if choice.provider in ("cpu", "auto") else choice.provider
    weights = "" if choice.weights == choice.model else f" ({choice.weights})"
    return f"{where} {choice.precision}{weights}"
