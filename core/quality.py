"""How close one mask is to another: the measure of the build gates and the benchmark's quality table.

Alpha MAE (the mean absolute difference of the 0-255 alpha) says how much a user would
see differ; IoU of alpha > 127 says how much of the hard shape moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Agreement:
    """One mask against a reference mask of the same size."""

    mae: float
    iou: float


def agreement(actual: np.ndarray, expected: np.ndarray) -> Agreement:
    mae = float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).mean())
    a, b = actual > 127, expected > 127
    union = int((a | b).sum())
    return Agreement(mae, float((a & b).sum() / union) if union else 1.0)
