"""The OpenVINO runtime behind the same session interface as onnxruntime's.

``OpenVinoSession`` reads the same ``.onnx`` file and answers the few calls
``core.sessions.ModelSession`` makes of an ``onnxruntime.InferenceSession``
(``get_inputs``, ``get_outputs``, ``run``, ``get_providers``), so that sessions, the
memory budget, ``/healthz`` and warm-up treat both runtimes alike. Precision is
OpenVINO's ``INFERENCE_PRECISION_HINT``: ``f32`` is always set explicitly, since the
CPU plugin defaults to bf16 where the CPU has it, and a QDQ int8 file (u2net-int8) runs
its quantised convolutions in int8 whatever the hint.
"""

from __future__ import annotations

import queue
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from base.settings import quiet_openvino

#: Our precision -> OpenVINO's inference precision hint.
HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


@dataclass(frozen=True)
class Port:
    """An input or output as onnxruntime describes one: its name and shape (an int or a name per axis)."""

    name: str
    shape: list[int | str]


def _port(node: Any) -> Port:
    shape = node.get_partial_shape()
    dims: list[int | str] = [d.get_length() if d.is_static else "batch" for d in shape]
    return Port(node.get_any_name(), dims)


class OpenVinoSession:
    """A compiled OpenVINO model on the CPU, with ``requests`` infer requests used one per caller at a time."""

    def __init__(self, path: Path, precision: str, threads: int, requests: int = 1) -> None:
        quiet_openvino()
        import openvino

        if precision not in HINTS:
            raise ValueError(f"OpenVINO runs fp32, bf16 or int8, not {precision}")
        core = openvino.Core()
        config = {
            "INFERENCE_PRECISION_HINT": HINTS[precision],
            # One request at a time uses every core (the session's semaphore keeps it so).
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads,
        }
        self.compiled = core.compile_model(str(path), "CPU", config)
        self.precision = precision
        self.hint = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self._inputs = [_port(node) for node in self.compiled.inputs]
        self._outputs = [_port(node) for node in self.compiled.outputs]
        # An infer request is not thread-safe; a caller takes one and gives it back.
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(max(1, requests)):
            self._requests.put(self.compiled.create_infer_request())

    def get_inputs(self) -> list[Port]:
        return self._inputs

    def get_outputs(self) -> list[Port]:
        return self._outputs

    def get_providers(self) -> list[str]:
        return ["OpenVINO CPU"]

    def run(self, output_names: Sequence[str], feeds: Mapping[str, np.ndarray], options: object = None) -> list[Any]:
        """The named outputs for ``feeds``, copied out of the request (which the next call reuses)."""
        del options  # onnxruntime's run options have no OpenVINO counterpart
        indices = [next(i for i, p in enumerate(self._outputs) if p.name == name) for name in output_names]
        request = self._requests.get()
        try:
            request.infer({name: np.ascontiguousarray(value) for name, value in feeds.items()})
            return [np.array(request.get_output_tensor(i).data, copy=True) for i in indices]
        finally:
            self._requests.put(request)
