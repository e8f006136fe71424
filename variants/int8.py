"""The int8 recipe (``int8-qdq`` in ``models.recipes``): static QDQ quantisation for CPUs.

fp32 U²-Net already runs at the CPU's fp32 peak; only lower precision makes it faster.
Step by step:

1. The base model (u2net: opset 11) is raised to ``Recipe.opset`` with
   ``onnx.version_converter`` (per-channel QDQ needs opset 13).
2. Calibration tensors: the images in ``assets/calibration/`` (sorted by name, see
   ``SOURCE.md`` there; none of them is an evaluation photo), each whole and as
   ``Recipe.crops`` random crops/flips drawn from ``Recipe.seed``, turned into network
   input by ``core.imaging.to_tensor`` exactly like at inference.
3. The nodes that stay fp32 are found in the graph, not named by hand: the convolutions
   that read the network input, and the head - the fuse conv that makes output 0, the
   side-output convs feeding it, and every node downstream of them.
4. Bias correction of the convs whose int8 weights round badly (``correct_biases``).
5. ``onnxruntime.quantization.quantize_static`` in QDQ format with the recipe's types,
   per-channel weights and calibration method.

``onnx`` and ``onnxruntime.quantization`` are imported only here, while building.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from base.assets import CALIBRATION_DIR
from core.imaging import to_tensor
from models.recipes import Recipe, calibration_files
from models.registry import ModelSpec
from variants.convert import GraphError

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)


def fp32_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes the recipe keeps in float, in graph order (found, not hardcoded).

    * input convs: Conv nodes reading a graph input;
    * head: the convs that make output 0 through non-conv nodes only (the fuse
      conv), the convs feeding those the same way (the side-output convs), and
      every node downstream of any of them.
    """
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def convs_feeding(tensors: list[str]) -> list[Any]:
        found: list[Any] = []
        seen: set[str] = set()
        stack = list(tensors)
        while stack:
            name = stack.pop()
            if name in seen or name in initializers:
                continue
            seen.add(name)
            node = producer.get(name)
            if node is None:
                continue
            if node.op_type == "Conv":
                if node not in found:
                    found.append(node)
                continue
            stack.extend(node.input)
        return found

    inputs = {i.name for i in graph.input} - initializers
    keep = {n.name for n in graph.node if n.op_type == "Conv" and n.input and n.input[0] in inputs}
    fuse = convs_feeding([graph.output[0].name])
    sides = convs_feeding([n.input[0] for n in fuse])
    head = fuse + sides
    keep |= {n.name for n in head}
    stack = [out for n in head for out in n.output]
    while stack:
        for node in consumers.get(stack.pop(), []):
            if node.name not in keep:
                keep.add(node.name)
                stack.extend(node.output)
    if any(not n.name for n in graph.node if n.name in keep):
        raise GraphError("the base graph has unnamed nodes; cannot exclude them from quantisation")
    return [n.name for n in graph.node if n.name in keep]


def _load_base(path: Path, opset: int) -> onnx.ModelProto:
    import onnx
    from onnx import version_converter

    model = onnx.load(str(path))
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if current < opset:
        model = version_converter.convert_version(model, opset)
    return model


def calibration_tensors(spec: ModelSpec, recipe: Recipe) -> list[np.ndarray]:
    """Network inputs from the calibration images: each whole, then ``crops`` crops/flips.

    Files in name order, one ``numpy`` generator seeded with ``recipe.seed``:
    the same images give the same tensors on every machine.
    """
    files = calibration_files()
    if not files:
        raise GraphError(f"no calibration images in {CALIBRATION_DIR}")
    rng = np.random.default_rng(recipe.seed)
    tensors: list[np.ndarray] = []
    for path in files:
        with Image.open(path) as opened:
            im = opened.convert("RGB")
        tensors.append(to_tensor(im, spec.input_size, spec.mean, spec.std))
        for _ in range(recipe.crops):
            w, h = im.size
            cw = max(1, round(w * rng.uniform(0.5, 1.0)))
            ch = max(1, round(h * rng.uniform(0.5, 1.0)))
            x = int(rng.integers(0, w - cw + 1))
            y = int(rng.integers(0, h - ch + 1))
            crop = im.crop((x, y, x + cw, y + ch))
            if rng.random() < 0.5:
                crop = ImageOps.mirror(crop)
            tensors.append(to_tensor(crop, spec.input_size, spec.mean, spec.std))
    return tensors


class _Reader:
    """A ``CalibrationDataReader`` over prepared tensors, in order, in strides; it ticks ``bar``."""

    def __init__(self, input_name: str, tensors: list[np.ndarray], bar: tqdm[Any] | None = None) -> None:
        self.input_name = input_name
        self.tensors = tensors
        self.index, self.end = 0, len(tensors)
        self.bar = bar

    def __len__(self) -> int:
        return len(self.tensors)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.index, self.end = start_index, end_index

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= self.end:
            return None
        tensor = self.tensors[self.index]
        self.index += 1
        if self.bar is not None:
            self.bar.update(1)
        return {self.input_name: tensor}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        while (item := self.get_next()) is not None:
            yield item


def _stride(count: int, wanted: int = 4) -> int:
    """Largest stride <= ``wanted`` dividing ``count`` (quantize_static requires it).

    Calibration then keeps only that many sets of intermediate outputs in memory.
    """
    return next(s for s in range(min(wanted, count), 0, -1) if count % s == 0)


class _QuietRoot(logging.Filter):
    """Drops onnxruntime's advice to run its pre-processing (we do what it would)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence onnxruntime.quantization's prints (one line per calibration batch; our bar counts)."""
    root = logging.getLogger()
    quiet = _QuietRoot()
    root.addFilter(quiet)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.removeFilter(quiet)


def quantize_into(base_path: Path, out: Path, spec: ModelSpec, recipe: Recipe, *, progress: bool = False) -> list[str]:
    """Quantise ``base_path`` into ``out`` by ``recipe``; returns the nodes kept fp32."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = _load_base(base_path, recipe.opset)
    keep = fp32_nodes(model)
    tensors = calibration_tensors(spec, recipe)
    if recipe.bias_correct_below_db > 0:
        corrected = correct_biases(model, tensors, recipe.bias_correct_below_db, skip=set(keep))
        log.info("bias corrected (weights under %.0f dB): %s", recipe.bias_correct_below_db, ", ".join(corrected))
    bar = tqdm(total=len(tensors), desc=f"{spec.name} calibration", unit="image", disable=not progress)
    reader = _Reader(model.graph.input[0].name, tensors, bar)
    extra: dict[str, Any] = {
        "CalibStridedMinMax": _stride(len(tensors)),
        "CalibTensorRangeSymmetric": False,
        "ActivationSymmetric": False,
        "WeightSymmetric": True,
    }
    with _quiet(), bar:
        quantize_static(
            model,
            str(out),
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(recipe.op_types),
            per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range,
            activation_type=QuantType[recipe.activation_type],
            weight_type=QuantType[recipe.weight_type],
            nodes_to_exclude=keep,
            calibrate_method=CalibrationMethod[recipe.calibrate_method],
            extra_options=extra,
        )
    return keep


def fake_quantize_weights(weights: np.ndarray) -> np.ndarray:
    """``weights`` rounded as onnxruntime quantises them: symmetric int8 per output channel."""
    absmax = np.abs(weights).reshape(weights.shape[0], -1).max(axis=1)
    scale = np.where(absmax == 0, 1.0, absmax / 127).reshape(-1, *([1] * (weights.ndim - 1)))
    return np.clip(np.round(weights / scale), -127, 127) * scale


def weight_sqnr_db(weights: np.ndarray) -> float:
    """Signal-to-quantisation-noise ratio of ``weights`` after int8 rounding, in dB."""
    w = weights.astype(np.float64)
    noise = float(np.sum((fake_quantize_weights(w) - w) ** 2))
    return math.inf if noise == 0 else 10 * math.log10(float(np.sum(w**2)) / noise)


def correct_biases(
    model: onnx.ModelProto,
    tensors: list[np.ndarray],
    below_db: float,
    skip: Collection[str] = (),
) -> list[str]:
    """Shift the bias of each conv whose weights round badly, in place; returns their names.

    The rounding error of a conv's weights, times the mean of its input per channel,
    is the mean error it adds to each output channel (the input assumed uniform over
    the kernel); subtracting it from the float bias cancels it before quantisation.
    The input means come from running the float model on ``tensors``.
    """
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    chosen = []
    for node in graph.node:
        if node.op_type != "Conv" or node.name in skip or len(node.input) < 3:
            continue
        if any(a.name == "group" and a.i != 1 for a in node.attribute):
            continue  # the per-channel mean formula below assumes a dense conv
        if node.input[1] in inits and node.input[2] in inits:
            if weight_sqnr_db(numpy_helper.to_array(inits[node.input[1]])) < below_db:
                chosen.append(node)
    if not chosen:
        return []
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    wanted = sorted({n.input[0] for n in chosen})
    probe.graph.output.extend(helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in wanted)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    sums: dict[str, np.ndarray] = {}
    for tensor in tensors:
        for name, value in zip(wanted, session.run(wanted, {graph.input[0].name: tensor}), strict=True):
            sums[name] = sums.get(name, 0) + value.mean(axis=(0, 2, 3), dtype=np.float64)
    for node in chosen:
        w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        shift = (fake_quantize_weights(w) - w).sum(axis=(2, 3)) @ (sums[node.input[0]] / len(tensors))
        bias = numpy_helper.to_array(inits[node.input[2]])
        inits[node.input[2]].CopyFrom(numpy_helper.from_array((bias - shift).astype(np.float32), node.input[2]))
    return [n.name for n in chosen]
