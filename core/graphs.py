"""Pre- and post-processing as ONNX graphs, run where the network runs (``processing = graph``).

The exact path (``core.imaging``) resizes with Pillow's LANCZOS on the CPU; these
graphs compute the same resizes as two matrix products each, with Pillow's own
filter coefficients (``lanczos_matrix``, a port of Pillow's ``precompute_coeffs``
and its 8-bit fixed-point rounding) and its rounding between the passes, so that
the masks equal the exact path's within one level at a few pixels
(the tests check it on every evaluation photo). On a GPU that moves the pixel work off the CPU;
on a CPU, onnxruntime runs it on every core.

* ``pre``: the decoded image (uint8 HxWx3) and its two resampling matrices ->
  the network input (1x3xSxS float), normalised as ``imaging.to_tensor`` does.
* ``post``: the network's output 0 (1x1xSxS) and two matrices -> the mask (uint8
  HxW), min-max scaled and quantised as ``imaging.to_mask`` does.
* ``cutout``: the image and its mask -> the RGBA cutout with the colour of hidden
  pixels cleared, as ``imaging.cutout`` does for an opaque image, so that on a GPU
  the host gets the finished pixels back instead of composing them itself.

The graphs hold no weights: they are built here when a session loads (opset 18, IR
version 9, which onnxruntime 1.31's CUDA build accepts), for every model of the
U²-Net family. The matrices depend only on the image size and are cached.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

OPSET = 18
IR_VERSION = 9
#: Pillow's fixed-point precision of 8-bit resampling (``PRECISION_BITS`` in Resample.c).
PRECISION_BITS = 22
#: Image sizes whose matrices are kept.
MATRIX_CACHE = 32


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x *= math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    return _sinc(x) * _sinc(x / 3) if -3.0 <= x < 3.0 else 0.0


@functools.lru_cache(maxsize=MATRIX_CACHE)
def lanczos_matrix(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's LANCZOS weights from ``in_size`` to ``out_size`` samples, as an (out, in) matrix.

    Each row is rounded to Pillow's fixed point (``normalize_coeffs_8bpc``), so a
    product with 8-bit samples, plus one half and floored, is Pillow's 8-bit output.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    matrix = np.zeros((out_size, in_size), np.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        weights = np.array([_lanczos((x + xmin - center + 0.5) / filterscale) for x in range(xmax)])
        total = weights.sum()
        if total != 0.0:
            weights /= total
        fixed = np.where(
            weights < 0,
            np.trunc(weights * (1 << PRECISION_BITS) - 0.5),
            np.trunc(weights * (1 << PRECISION_BITS) + 0.5),
        )
        matrix[xx, xmin : xmin + xmax] = fixed / (1 << PRECISION_BITS)
    out = matrix.astype(np.float32)
    out.flags.writeable = False
    return out


def _rounded(name: str, nodes: list[onnx.NodeProto]) -> str:
    """Pillow's rounding of a resampling pass: floor(x + 0.5), clipped to 0..255."""
    nodes += [
        helper.make_node("Add", [name, "half"], [f"{name}_h"]),
        helper.make_node("Floor", [f"{name}_h"], [f"{name}_f"]),
        helper.make_node("Clip", [f"{name}_f", "zero", "k255"], [f"{name}_r"]),
    ]
    return f"{name}_r"


def _constants(mean: tuple[float, ...] = (), std: tuple[float, ...] = ()) -> list[onnx.TensorProto]:
    out = [
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("k255", TensorProto.FLOAT, [], [255.0]),
        helper.make_tensor("eps", TensorProto.FLOAT, [], [1e-6]),
        helper.make_tensor("axis0", TensorProto.INT64, [1], [0]),
    ]
    if mean:
        out += [
            helper.make_tensor("mean", TensorProto.FLOAT, [3, 1, 1], list(mean)),
            helper.make_tensor("std", TensorProto.FLOAT, [3, 1, 1], list(std)),
        ]
    return out


def _model(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def pre_graph(mean: tuple[float, ...], std: tuple[float, ...]) -> bytes:
    """uint8 HxWx3, rx (W x S), ry (S x H) -> the network input 1x3xSxS, as ``imaging.to_tensor``."""
    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["pixels"], ["planes"], perm=[2, 0, 1]),  # 3 x H x W
        helper.make_node("MatMul", ["planes", "rx"], ["across"]),  # 3 x H x S: Pillow's horizontal pass first
    ]
    across = _rounded("across", nodes)
    nodes.append(helper.make_node("MatMul", ["ry", across], ["down"]))  # 3 x S x S
    down = _rounded("down", nodes)
    nodes += [
        helper.make_node("ReduceMax", [down], ["peak"], keepdims=0),
        helper.make_node("Max", ["peak", "eps"], ["peak_safe"]),
        helper.make_node("Div", [down, "peak_safe"], ["unit"]),
        helper.make_node("Sub", ["unit", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["normal"]),
        helper.make_node("Unsqueeze", ["normal", "axis0"], ["input"]),
    ]
    graph = helper.make_graph(
        nodes,
        "pre",
        [
            helper.make_tensor_value_info("image", TensorProto.UINT8, ["h", "w", 3]),
            helper.make_tensor_value_info("rx", TensorProto.FLOAT, ["w", "s"]),
            helper.make_tensor_value_info("ry", TensorProto.FLOAT, ["s", "h"]),
        ],
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "s", "s"])],
        _constants(mean, std),
    )
    return _model(graph)


def post_graph() -> bytes:
    """Output 0 (1x1xSxS), ux (S x W), uy (H x S) -> the uint8 HxW mask, as ``imaging.to_mask``."""
    nodes = [
        helper.make_node("ReduceMin", ["prediction"], ["lo"], keepdims=0),
        helper.make_node("ReduceMax", ["prediction"], ["hi"], keepdims=0),
        helper.make_node("Sub", ["prediction", "lo"], ["shifted"]),
        helper.make_node("Sub", ["hi", "lo"], ["span"]),
        helper.make_node("Greater", ["span", "zero"], ["varies"]),
        # rembg divides by the span unguarded; a flat prediction means "no subject" here.
        helper.make_node("Where", ["varies", "span", "one"], ["span_safe"]),
        helper.make_node("Div", ["shifted", "span_safe"], ["scaled"]),
        helper.make_node("Where", ["varies", "scaled", "zero"], ["unit"]),
        helper.make_node("Clip", ["unit", "zero", "one"], ["clipped"]),
        helper.make_node("Mul", ["clipped", "k255"], ["levels"]),
        helper.make_node("Floor", ["levels"], ["small4d"]),  # astype(uint8) truncates
        helper.make_node("Squeeze", ["small4d"], ["small"]),  # S x S
        helper.make_node("MatMul", ["small", "ux"], ["across"]),  # S x W
    ]
    across = _rounded("across", nodes)
    nodes.append(helper.make_node("MatMul", ["uy", across], ["up"]))  # H x W
    up = _rounded("up", nodes)
    nodes.append(helper.make_node("Cast", [up], ["mask"], to=TensorProto.UINT8))
    graph = helper.make_graph(
        nodes,
        "post",
        [
            helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [1, 1, "s", "s"]),
            helper.make_tensor_value_info("ux", TensorProto.FLOAT, ["s", "w"]),
            helper.make_tensor_value_info("uy", TensorProto.FLOAT, ["h", "s"]),
        ],
        [helper.make_tensor_value_info("mask", TensorProto.UINT8, ["h", "w"])],
        _constants(),
    )
    return _model(graph)


def cutout_graph() -> bytes:
    """uint8 HxWx3 and its uint8 HxW mask -> the RGBA cutout, hidden colour cleared, as ``imaging.cutout``."""
    nodes = [
        helper.make_node("Unsqueeze", ["mask", "axis2"], ["alpha"]),  # H x W x 1
        helper.make_node("Cast", ["alpha"], ["seen"], to=TensorProto.BOOL),  # any alpha above 0
        helper.make_node("Where", ["seen", "image", "zero8"], ["colour"]),
        helper.make_node("Concat", ["colour", "alpha"], ["rgba"], axis=2),
    ]
    graph = helper.make_graph(
        nodes,
        "cutout",
        [
            helper.make_tensor_value_info("image", TensorProto.UINT8, ["h", "w", 3]),
            helper.make_tensor_value_info("mask", TensorProto.UINT8, ["h", "w"]),
        ],
        [helper.make_tensor_value_info("rgba", TensorProto.UINT8, ["h", "w", 4])],
        [
            helper.make_tensor("axis2", TensorProto.INT64, [1], [2]),
            helper.make_tensor("zero8", TensorProto.UINT8, [], [0]),
        ],
    )
    return _model(graph)


class Graphs:
    """The pre and post graphs of one model on one provider, and their runs.

    ``device`` is where the provider keeps tensors: the inputs are bound there once
    per call (the resampling matrices once per image size) and the outputs come back
    to the host, through IO binding on every provider alike.
    """

    def __init__(
        self,
        input_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        make_session: Callable[[bytes], ort.InferenceSession],
        device: str,
        device_id: int = 0,
    ) -> None:
        self.input_size = input_size
        self.pre = make_session(pre_graph(mean, std))
        self.post = make_session(post_graph())
        self.compose = make_session(cutout_graph())
        self.device, self.device_id = device, device_id
        self._matrices: OrderedDict[tuple[str, int, int], ort.OrtValue] = OrderedDict()
        self._lock = threading.Lock()

    def _matrix(self, kind: str, rows: int, cols: int, make: np.ndarray) -> ort.OrtValue:
        """A resampling matrix where the provider keeps it, cached by image size."""
        key = (kind, rows, cols)
        with self._lock:
            value = self._matrices.get(key)
            if value is not None:
                self._matrices.move_to_end(key)
                return value
        value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(make), self.device, self.device_id)
        with self._lock:
            self._matrices[key] = value
            while len(self._matrices) > 4 * MATRIX_CACHE:
                self._matrices.popitem(last=False)
        return value

    def _run(self, session: ort.InferenceSession, inputs: dict[str, ort.OrtValue]) -> np.ndarray:
        binding = session.io_binding()
        for name, value in inputs.items():
            binding.bind_ortvalue_input(name, value)
        binding.bind_output(session.get_outputs()[0].name, "cpu")
        session.run_with_iobinding(binding)
        return np.asarray(binding.copy_outputs_to_cpu()[0])

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 HxWx3 -> the network input 1x3xSxS."""
        height, width = rgb.shape[:2]
        s = self.input_size
        inputs = {
            "image": ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(rgb), self.device, self.device_id),
            "rx": self._matrix("rx", width, s, lanczos_matrix(width, s).T),
            "ry": self._matrix("ry", s, height, lanczos_matrix(height, s)),
        }
        return self._run(self.pre, inputs)

    def cutout(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """uint8 HxWx3 and HxW -> the uint8 HxWx4 cutout with the colour of hidden pixels cleared."""
        inputs = {
            "image": ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(rgb), self.device, self.device_id),
            "mask": ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(mask), self.device, self.device_id),
        }
        return self._run(self.compose, inputs)

    def finish(self, prediction: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Output 0 of one image (1x1xSxS) -> its uint8 mask, ``size`` = (width, height)."""
        width, height = size
        s = prediction.shape[-1]
        inputs = {
            "prediction": ort.OrtValue.ortvalue_from_numpy(
                np.ascontiguousarray(prediction, np.float32), self.device, self.device_id
            ),
            "ux": self._matrix("ux", s, width, lanczos_matrix(s, width).T),
            "uy": self._matrix("uy", height, s, lanczos_matrix(s, height)),
        }
        return self._run(self.post, inputs)
