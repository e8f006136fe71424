"""Unit tier: bias correction of convs whose int8 weights round badly (``variants.int8``)."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from variants.int8 import correct_biases, fake_quantize_weights, weight_sqnr_db


def conv_model(weights: np.ndarray, bias: np.ndarray, name: str = "conv") -> onnx.ModelProto:
    out_ch, in_ch = weights.shape[:2]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name=name, pads=[1, 1, 1, 1])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, in_ch, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, out_ch, 8, 8])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["y"], {"x": x})[0])


def with_weights(model: onnx.ModelProto, weights: np.ndarray) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.graph.initializer[0].CopyFrom(numpy_helper.from_array(weights.astype(np.float32), "w"))
    return copy


def outlier_weights(rng: np.random.Generator) -> np.ndarray:
    weights = rng.normal(0, 0.01, (4, 3, 3, 3)).astype(np.float32)
    weights[:, 0, 0, 0] = 1.0  # one large weight per channel: the small ones round coarsely
    return weights


def test_fake_quantization_is_symmetric_int8_per_channel() -> None:
    w = np.array([[[[1.0, -0.5, 0.003]]], [[[0.0, 0.0, 0.0]]]], dtype=np.float64)
    q = fake_quantize_weights(w)
    assert q[0, 0, 0, 0] == 1.0 and q[0, 0, 0, 2] == 0.0  # 0.003 < half a step of 1/127
    assert np.all(q[1] == 0)
    assert weight_sqnr_db(np.zeros((1, 1, 1, 1))) == math.inf


def test_outlier_weights_have_low_sqnr() -> None:
    rng = np.random.default_rng(0)
    assert weight_sqnr_db(outlier_weights(rng)) < weight_sqnr_db(rng.normal(0, 0.01, (4, 3, 3, 3)))


def test_correction_cancels_the_mean_error_of_rounded_weights() -> None:
    rng = np.random.default_rng(1)
    weights, bias = outlier_weights(rng), np.zeros(4, dtype=np.float32)
    model = conv_model(weights, bias)
    # Inputs with a large mean, so rounding the weights shifts the outputs.
    tensors = [(2.0 + rng.normal(0, 0.1, (1, 3, 8, 8))).astype(np.float32) for _ in range(4)]
    probe = tensors[0]
    exact = run(model, probe)[..., 1:-1, 1:-1]  # away from the zero padding
    rounded = fake_quantize_weights(weights.astype(np.float64))
    before = np.abs((run(with_weights(model, rounded), probe)[..., 1:-1, 1:-1] - exact).mean(axis=(0, 2, 3)))

    assert correct_biases(model, tensors, below_db=60) == ["conv"]
    after = np.abs((run(with_weights(model, rounded), probe)[..., 1:-1, 1:-1] - exact).mean(axis=(0, 2, 3)))
    assert after.max() < before.max() / 10, (before, after)


def test_convs_above_the_threshold_or_skipped_are_left_alone() -> None:
    rng = np.random.default_rng(2)
    model = conv_model(outlier_weights(rng), np.ones(4, dtype=np.float32))
    tensors = [np.ones((1, 3, 8, 8), dtype=np.float32)]
    assert correct_biases(model, tensors, below_db=0.1) == []
    assert correct_biases(model, tensors, below_db=60, skip={"conv"}) == []
    assert np.array_equal(numpy_helper.to_array(model.graph.initializer[1]), np.ones(4, dtype=np.float32))
