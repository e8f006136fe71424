"""Model variants built here from the fp32 weights: ``python -m models build NAME``.

A registry entry whose source is ``Build(base=..., recipe=...)`` is made by this
module from the base entry's weights (fetched first when missing). Two kinds of
recipe:

* ``ConvertRecipe`` - a graph rewrite with onnx tools, no data: ``u2net-fp16``
  (weights and activations in float16 with float32 inputs and outputs kept, for
  GPUs) and ``u2net-dynamic`` (the batch dimension made symbolic, so several
  queued requests run as one batch on a GPU).
* ``Recipe`` - int8 static quantisation for CPUs (``u2net-int8``): fp32 U²-Net
  already runs at the CPU's fp32 peak; only lower precision makes it faster.

The int8 recipe, step by step:

1. The base model (u2net: opset 11) is raised to opset ``Recipe.opset`` with
   ``onnx.version_converter`` (per-channel QDQ needs opset 13).
2. Calibration tensors: the images in ``models/calibration/`` (sorted by name,
   see ``SOURCE.md`` there; none of them is an evaluation photo), each whole and
   as ``Recipe.crops`` random crops/flips drawn from ``Recipe.seed``, turned into
   network input by ``core.imaging.to_tensor`` exactly like at inference.
3. ``onnxruntime.quantization.quantize_static`` in QDQ format with the recipe's
   types, per-channel weights and calibration method.
4. The nodes that stay fp32 are found in the graph, not named by hand: the
   convolutions that read the network input, and the head - the fuse conv that
   makes output 0, the side-output convs feeding it, and every node downstream
   of them (resizes, concat, sigmoids).
5. The quality gate (``GATE_MIN_IOU`` mean IoU of alpha > 127 against the base
   model on the evaluation photos, ``GATE_MIN_SPEEDUP`` median speed-up, fp32
   and int8 run alternately in one process) is measured on the built file
   before it is installed; a build that misses it fails. The speed part is
   enforced where the CPU has int8 dot-product instructions (VNNI, AMX, Arm
   dotprod; ``cpu_int8_dot``); without them int8 convolutions cannot reach it, so
   the figure is measured and recorded but does not fail the build. Every
   recipe gets the IoU part (on CPU, so fp16 is checked here too).
6. The file is written atomically (a hidden temp file in the weights folder, then
   ``os.replace``; temp files are removed on any failure) and then its sidecar
   ``<filename>.json``, which records the base's MD5, the recipe, the calibration
   images' digest, the onnxruntime/onnx versions, the nodes kept fp32, the gate
   figures and the built file's own MD5 and size.

A built file's bytes depend on the onnxruntime version that made it, so the
registry pins no MD5 for it. Instead it is *verified* when its sidecar exists and
matches: the file's MD5 and size, the base's registry MD5, this recipe and the
calibration images (int8 only). The onnxruntime version is recorded, not required:
the results are plain ONNX files that later onnxruntime versions run unchanged.

``onnx`` and ``onnxruntime.quantization`` are imported only while building, so
checking a sidecar (``fetch.status``) costs no import.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models import fetch as fetching
from models.registry import Build, ModelSpec, get_spec

if TYPE_CHECKING:
    import onnx

    from core.settings import Settings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
#: The calibration images (shipped, small, public domain/CC0; see SOURCE.md there).
CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"
CALIBRATION_SUFFIXES = (".jpg", ".jpeg", ".png")
#: The evaluation photos of the gate: the test suite's (tests/conftest.py PHOTOS).
EVAL_DIR = ROOT / "tests" / "fixtures"
EVAL_PHOTOS = (
    "anime-girl-1.jpg",
    "car-1.jpg",
    "cloth-1.jpg",
    "plants-1.jpg",
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
)
#: Mean IoU (alpha > 127) against the base model that a build must reach.
GATE_MIN_IOU = 0.99
#: Speed-up over the base model (median of GATE_RUNS runs each) that a build must reach.
GATE_MIN_SPEEDUP = 2.5
#: Timed runs per model for the speed figure (after one warm-up run each).
GATE_RUNS = 7
#: The photo whose tensor is timed.
GATE_TIMING_PHOTO = "car-1.jpg"
BUILD_COMMAND = fetching.BUILD_COMMAND
SIDECAR_FORMAT = 1


@dataclass(frozen=True)
class Recipe:
    """How a Build entry is made: every knob of the quantisation, as data.

    The whole recipe is recorded in the sidecar; changing any field makes
    existing builds unverified, so the next use rebuilds them.
    """

    #: Opset the base is raised to before quantising.
    opset: int
    #: ``QuantType`` names of activations and weights.
    activation_type: str
    weight_type: str
    per_channel: bool
    #: 7-bit weights, against u8s8 overflow on x86 without VNNI.
    reduce_range: bool
    #: ``CalibrationMethod`` name, and its percentile when it is Percentile.
    calibrate_method: str
    percentile: float
    #: Random crops/flips per calibration image (besides the whole image).
    crops: int
    seed: int
    #: Op types quantised (everything else runs in float).
    op_types: tuple[str, ...]
    #: Keep the convs that read the network input in fp32.
    keep_input_convs: bool = True
    #: Keep the head (fuse conv, side-output convs and everything after them) in fp32.
    keep_head: bool = True
    #: Bias correction: a quantised conv whose int8 weights keep less than this many dB
    #: of signal to rounding noise (outlier weights) gets its float bias shifted to cancel
    #: the mean output error the rounding causes, measured on the calibration images.
    #: 0 turns it off.
    bias_correct_below_db: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ConvertRecipe:
    """A data-free rewrite of the base graph (fp16 and/or a symbolic batch dimension)."""

    fp16: bool = False
    dynamic_batch: bool = False
    #: fp16: keep float32 graph inputs and outputs, so callers feed the same tensors.
    keep_io_types: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


RECIPES: dict[str, Recipe | ConvertRecipe] = {
    "int8-qdq": Recipe(
        opset=13,
        activation_type="QUInt8",
        weight_type="QInt8",
        per_channel=True,
        reduce_range=False,
        calibrate_method="MinMax",
        percentile=99.999,
        crops=3,
        seed=20240601,
        op_types=("Conv", "MaxPool", "Resize", "Concat", "Add", "Relu"),
        # Picks u2net's three convs with outlier weights (Conv_765, Conv_787, Conv_920, all
        # under 35 dB; every other conv is well above): mean IoU 0.968 -> 0.983 on an AVX2
        # CPU, 0.961 -> 0.969 on an AVX-512 VNNI one, at full speed.
        bias_correct_below_db=35.0,
    ),
    "fp16": ConvertRecipe(fp16=True),
    "dynamic-batch": ConvertRecipe(dynamic_batch=True),
}


class BuildError(Exception):
    """The build failed; ``phrase`` says why in a few words."""

    def __init__(self, phrase: str) -> None:
        super().__init__(phrase)
        self.phrase = phrase


class GateFailed(BuildError):
    """The built model missed the quality gate; nothing was installed."""

    def __init__(self, report: GateReport) -> None:
        super().__init__(f"quality gate not met ({report.summary()})")
        self.report = report


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
    peak_rss_mb: dict[str, float] = field(default_factory=dict)

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
            "peak_rss_mb": self.peak_rss_mb,
            "passed": self.passed,
        }


@dataclass
class BuildResult:
    path: Path
    sidecar: dict[str, Any]
    #: False when the model was already present and verified (nothing built).
    built: bool


# --------------------------------------------------------------------------- #
# Sidecar and verification


def sidecar_path(spec: ModelSpec, home: Path) -> Path:
    return fetching.model_path(spec, home).with_name(spec.filename + ".json")


def read_sidecar(spec: ModelSpec, home: Path) -> dict[str, Any] | None:
    """The build record of ``spec`` in ``home``; None when missing or unreadable."""
    try:
        data = json.loads(sidecar_path(spec, home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def recipe_of(spec: ModelSpec) -> tuple[Build, Recipe | ConvertRecipe]:
    build = spec.build
    if build is None:
        raise BuildError(f"{spec.name} is not built here (its sources are downloads)")
    recipe = RECIPES.get(build.recipe)
    if recipe is None:
        raise BuildError(f"unknown recipe {build.recipe!r}; known: {', '.join(RECIPES)}")
    return build, recipe


def calibration_files() -> list[Path]:
    return sorted(p for p in CALIBRATION_DIR.iterdir() if p.suffix.lower() in CALIBRATION_SUFFIXES)


def calibration_digest() -> str:
    """SHA-256 over the calibration images' names and bytes, in build order."""
    digest = hashlib.sha256()
    for path in calibration_files():
        digest.update(path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


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
    except (BuildError, OSError):
        return False
    for key, value in expected.items():
        got = record.get(key)
        if key == "calibration":
            got = {"sha256": got.get("sha256")} if isinstance(got, dict) else None
        if got != value:
            log.debug("%s: sidecar %s differs: %r != %r", spec.name, key, got, value)
            return False
    return record.get("size") == size and record.get("md5") == md5()


def is_verified(spec: ModelSpec, home: Path) -> bool:
    """``verify`` for the file in ``home`` (hashing through the fetcher's MD5 cache)."""
    path = fetching.model_path(spec, home)
    try:
        st = path.stat()
    except OSError:
        return False
    return verify(spec, read_sidecar(spec, home), st.st_size, lambda: fetching.cached_md5(path, st))


# --------------------------------------------------------------------------- #
# Graph analysis


def fp32_nodes(model: onnx.ModelProto, recipe: Recipe) -> list[str]:
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

    keep: set[str] = set()
    if recipe.keep_input_convs:
        inputs = {i.name for i in graph.input} - initializers
        keep |= {n.name for n in graph.node if n.op_type == "Conv" and n.input and n.input[0] in inputs}
    if recipe.keep_head:
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
        raise BuildError("the base graph has unnamed nodes; cannot exclude them from quantisation")
    return [n.name for n in graph.node if n.name in keep]


def _load_base(path: Path, opset: int) -> onnx.ModelProto:
    import onnx
    from onnx import version_converter

    model = onnx.load(str(path))
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if current < opset:
        model = version_converter.convert_version(model, opset)
    return model


# --------------------------------------------------------------------------- #
# Calibration data


def calibration_tensors(spec: ModelSpec, recipe: Recipe) -> list[np.ndarray]:
    """Network inputs from the calibration images: each whole, then ``crops`` crops/flips.

    Files in name order, one ``numpy`` generator seeded with ``recipe.seed``:
    the same images give the same tensors on every machine.
    """
    from PIL import Image, ImageOps

    from core.imaging import to_tensor

    files = calibration_files()
    if not files:
        raise BuildError(f"no calibration images in {CALIBRATION_DIR}")
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
    """A ``CalibrationDataReader`` over prepared tensors, in order, in strides."""

    def __init__(self, input_name: str, tensors: list[np.ndarray]) -> None:
        self.input_name = input_name
        self.tensors = tensors
        self.index, self.end = 0, len(tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.index, self.end = start_index, end_index

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= self.end:
            return None
        tensor = self.tensors[self.index]
        self.index += 1
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
def _quiet(progress: bool) -> Iterator[None]:
    """Silence onnxruntime.quantization's prints (one line per calibration batch)."""
    root = logging.getLogger()
    quiet = _QuietRoot()
    root.addFilter(quiet)
    try:
        with contextlib.redirect_stdout(sys.stderr if progress else io.StringIO()):
            yield
    finally:
        root.removeFilter(quiet)


def quantize_into(base_path: Path, out: Path, spec: ModelSpec, recipe: Recipe, *, progress: bool = False) -> list[str]:
    """Quantise ``base_path`` into ``out`` by ``recipe``; returns the nodes kept fp32."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = _load_base(base_path, recipe.opset)
    keep = fp32_nodes(model, recipe)
    tensors = calibration_tensors(spec, recipe)
    if recipe.bias_correct_below_db > 0:
        corrected = correct_biases(model, tensors, recipe.bias_correct_below_db, skip=set(keep))
        log.info("bias corrected (weights under %.0f dB): %s", recipe.bias_correct_below_db, ", ".join(corrected))
    reader = _Reader(model.graph.input[0].name, tensors)
    extra: dict[str, Any] = {
        "CalibStridedMinMax": _stride(len(tensors)),
        "CalibTensorRangeSymmetric": False,
        "ActivationSymmetric": False,
        "WeightSymmetric": True,
    }
    if recipe.calibrate_method == "Percentile":
        extra["CalibPercentile"] = recipe.percentile
    with _quiet(progress):
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


def convert_into(base_path: Path, out: Path, recipe: ConvertRecipe) -> list[str]:
    """Rewrite ``base_path`` into ``out`` by ``recipe``; returns the nodes kept fp32 (none)."""
    import onnx

    model = onnx.load(str(base_path))
    if recipe.dynamic_batch:
        # U²-Net computes every Resize target from Shape(...) at run time (no
        # Reshape with a baked-in batch), so a symbolic first dimension is enough.
        for value in (*model.graph.input, *model.graph.output):
            value.type.tensor_type.shape.dim[0].dim_param = "batch"
        del model.graph.value_info[:]  # stale batch-1 shapes; onnxruntime infers them again
    if recipe.fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(model, keep_io_types=recipe.keep_io_types)
        _sort_nodes(model.graph)  # the converter appends its input casts after their consumers
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return []


def _sort_nodes(graph: Any) -> None:
    """Reorder ``graph.node`` topologically (stable: keeps the original order where it can)."""
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        rest = []
        for node in pending:
            if all(name in known for name in node.input):
                ordered.append(node)
                known.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise BuildError(f"the graph has a cycle or a dangling input at {rest[0].name}")
        pending = rest
    copies = [type(n)() for n in ordered]
    for copy, node in zip(copies, ordered, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


# --------------------------------------------------------------------------- #
# Bias correction


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


def make_into(
    base_path: Path, out: Path, spec: ModelSpec, recipe: Recipe | ConvertRecipe, *, progress: bool = False
) -> list[str]:
    """Build ``out`` from ``base_path`` by either kind of recipe; returns the nodes kept fp32."""
    if isinstance(recipe, ConvertRecipe):
        return convert_into(base_path, out, recipe)
    return quantize_into(base_path, out, spec, recipe, progress=progress)


def cpu_int8_dot() -> bool:
    """Whether this CPU has int8 dot-product instructions (VNNI, AMX or Arm dotprod)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = {word for line in fh if line.startswith(("flags", "Features")) for word in line.split()}
    except OSError:
        return False
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})


# --------------------------------------------------------------------------- #
# Gate


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
    rss: bool = True,
) -> GateReport:
    """IoU of the built model's masks against the base's and its speed-up, in this process.

    Masks as ``Engine.remove`` makes them with default options (decode,
    ``to_tensor``, the session's output 0, ``to_mask``); sessions as the service
    creates them (``core.sessions.create_session`` on the CPU provider). The two
    models are timed alternately on one tensor, ``runs`` times each after a
    warm-up, and the medians compared.
    """
    from core.decode import Limits, decode
    from core.imaging import to_mask, to_tensor
    from core.sessions import create_session

    missing = [p for p in EVAL_PHOTOS if not (EVAL_DIR / p).is_file()]
    if missing:
        raise BuildError(f"evaluation photos missing from {EVAL_DIR}: {', '.join(missing)} (use --no-gate)")
    limits = Limits(settings.max_upload_bytes, settings.max_pixels)
    fp32 = create_session(base_spec, base, "cpu", settings)
    int8 = create_session(spec, built, "cpu", settings)
    ious: dict[str, float] = {}
    timing_tensor: np.ndarray | None = None
    for photo in EVAL_PHOTOS:
        im = decode(EVAL_DIR / photo, limits)
        tensor = to_tensor(im, spec.input_size, spec.mean, spec.std)
        expected = np.asarray(to_mask(fp32.run(tensor), im.size))
        actual = np.asarray(to_mask(int8.run(tensor), im.size))
        ious[photo] = _iou(actual, expected)
        if photo == GATE_TIMING_PHOTO:
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
    del fp32, int8
    if rss:
        report.peak_rss_mb = {
            base_spec.name: peak_rss_mb(base, settings.threads),
            spec.name: peak_rss_mb(built, settings.threads),
        }
    return report


_RSS_SCRIPT = """
import sys
import numpy as np
import onnxruntime as ort
opts = ort.SessionOptions()
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
if int(sys.argv[2]):
    opts.intra_op_num_threads = int(sys.argv[2])
s = ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
i = s.get_inputs()[0]
x = np.random.default_rng(0).standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
for _ in range(2):
    s.run([s.get_outputs()[0].name], {i.name: x})
# VmHWM, not ru_maxrss: ru_maxrss survives exec, so it would report the (big) parent.
print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""


def peak_rss_mb(model: Path, threads: int = 0) -> float:
    """Peak RSS (MB) of a fresh process that loads ``model`` and runs it twice."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(model), str(threads)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    kib = int(out.stdout.strip().splitlines()[-1])
    return round(kib / 1024, 1)


# --------------------------------------------------------------------------- #
# Build


def _temp_in(folder: Path, filename: str, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{filename}.{os.getpid()}.", suffix=suffix, dir=folder)
    os.close(fd)
    return Path(name)


def _fsync(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def build(
    spec: ModelSpec,
    home: Path,
    *,
    gate: bool = True,
    enforce_speed: bool | None = None,
    force: bool = False,
    progress: bool = True,
    fetch_base: bool = True,
    settings: Settings | None = None,
    say: Callable[[str], None] | None = None,
) -> BuildResult:
    """Build ``spec`` (a Build entry) into ``home``; idempotent unless ``force``.

    Fetches the base when missing (if ``fetch_base``), quantises into a hidden
    temp file beside the target, checks the gate (unless ``gate`` is False; the
    speed part only when ``enforce_speed``, by default for int8 recipes on CPUs
    with ``cpu_int8_dot``), then renames the file and writes
    its sidecar. Raises ``BuildError`` (``GateFailed`` for a missed gate) or
    ``core.errors.ModelNotAvailable`` (base unavailable); nothing is left
    behind on failure.
    """
    from core.settings import load_settings

    say = say or log.info
    build_source, recipe = recipe_of(spec)
    if enforce_speed is None:
        enforce_speed = isinstance(recipe, Recipe) and cpu_int8_dot()
    target = fetching.model_path(spec, home)
    if not force and is_verified(spec, home):
        record = read_sidecar(spec, home) or {}
        return BuildResult(target, record, built=False)
    base_spec = get_spec(build_source.base)
    base = fetching.ensure_model(base_spec, home, fetch_missing=fetch_base, progress=progress)
    settings = replace(settings or load_settings([]), model_home=home)
    try:
        home.mkdir(parents=True, exist_ok=True)
        part = _temp_in(home, spec.filename, ".part")
    except OSError as exc:
        raise BuildError(f"cannot write to {home} ({exc.strerror or exc})") from None
    sidecar_part: Path | None = None
    started = time.perf_counter()
    try:
        import onnx
        import onnxruntime as ort

        say(f"{spec.name}: building from {base.name} (recipe {build_source.recipe}) ...")
        try:
            keep = make_into(base, part, spec, recipe, progress=False)
        except BuildError:
            raise
        except Exception as exc:  # onnx/onnxruntime raise many unrelated types
            raise BuildError(f"recipe {build_source.recipe} failed: {type(exc).__name__}: {exc}") from exc
        made_s = time.perf_counter() - started
        say(f"{spec.name}: built in {made_s:.0f} s; {len(keep)} nodes kept fp32")
        report: GateReport | None = None
        if gate:
            say(f"{spec.name}: measuring the gate against {base_spec.name} ...")
            report = measure_gate(spec, base_spec, part, base, settings, enforce_speed=enforce_speed)
            say(f"{spec.name}: {report.summary()}")
            if not report.passed:
                raise GateFailed(report)
        _fsync(part)
        digest = fetching.file_md5(part)
        record = {
            **expected_record(spec),
            "md5": digest,
            "size": part.stat().st_size,
            "onnxruntime": ort.__version__,
            "onnx": onnx.__version__,
            "fp32_nodes": keep,
            "fp32_convs": [n for n in keep if n.startswith("Conv")],
            "gate": report.as_dict() if report else None,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - started, 1),
            "python": sys.version.split()[0],
        }
        if isinstance(recipe, Recipe):
            record["calibration"] = {
                "sha256": calibration_digest(),
                "images": [p.name for p in calibration_files()],
                "tensors": len(calibration_files()) * (1 + recipe.crops),
            }
        sidecar_part = _temp_in(home, spec.filename + ".json", ".part")
        sidecar_part.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        _fsync(sidecar_part)
        # The model first, then its record: a crash in between leaves a file whose
        # sidecar does not match, which simply counts as unverified (rebuilt).
        os.replace(part, target)
        fetching.remember_md5(target, digest)
        os.replace(sidecar_part, sidecar_path(spec, home))
        sidecar_part = None
        return BuildResult(target, record, built=True)
    finally:
        for leftover in (part, sidecar_part):
            if leftover is not None:
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
