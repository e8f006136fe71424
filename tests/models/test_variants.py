"""The GPU variants built from u2net, checked on the CPU: u2net-fp16 and u2net-dynamic.

``.ci/run`` builds them (``python -m models build``). fp16 must give the fp32 masks
(mean IoU of alpha > 127 at least the int8 gate's 0.99; measured on the CPU, where
onnxruntime runs the float16 graph too); the dynamic-batch model must give, for a
batch, exactly what it gives one image at a time, and ``Engine.remove_many`` must
use it as one call.
"""

from __future__ import annotations

import numpy as np
import pytest

from base.assets import EVAL_PHOTOS
from base.errors import InvalidImage, RemovalError
from core import Engine, RemovalOptions
from core.pipeline import RemovalResult
from models import fetch as fetching
from models.recipes import RECIPES, ConvertRecipe
from models.registry import MODELS
from tests.conftest import alpha_of, mask_agreement, photo_bytes

pytestmark = pytest.mark.model

PHOTOS = ("car-1.jpg", "chelsea.png", "coffee.png", "anime-girl-1.jpg")
#: fp16 against fp32, mean IoU of alpha > 127 on the evaluation photos (measured on the CPU).
FP16_MIN_IOU = 0.99


def built(engine: Engine, name: str) -> None:
    if not fetching.status(MODELS[name], engine.settings.model_home).verified:
        pytest.fail(f"{name} is not built: run python -m models build {name} (.ci/run does)")


def test_the_recipes() -> None:
    fp16, dynamic = RECIPES["fp16"], RECIPES["dynamic-batch"]
    assert isinstance(fp16, ConvertRecipe) and fp16.fp16 and fp16.keep_io_types
    assert isinstance(dynamic, ConvertRecipe) and dynamic.dynamic_batch and not dynamic.fp16


def test_fp16_masks_agree_with_fp32(engine: Engine) -> None:
    built(engine, "u2net-fp16")
    session = engine.sessions.get("u2net-fp16", "cpu")
    # float32 in and out, so the service feeds it like any other model.
    assert session.session.get_inputs()[0].type == "tensor(float)"
    assert session.session.get_outputs()[0].type == "tensor(float)"
    ious = {}
    for photo in EVAL_PHOTOS:
        data = photo_bytes(photo)
        fp32 = engine.remove(data, RemovalOptions(model="u2net", provider="cpu"))
        fp16 = engine.remove(data, RemovalOptions(model="u2net-fp16", provider="cpu"))
        ious[photo] = mask_agreement(alpha_of(fp16.image), alpha_of(fp32.image))[1]
    assert float(np.mean(list(ious.values()))) >= FP16_MIN_IOU, ious


def test_dynamic_batch_equals_one_by_one(engine: Engine) -> None:
    built(engine, "u2net-dynamic")
    session = engine.sessions.get("u2net-dynamic", "cpu")
    assert session.batched and not engine.sessions.get("u2net", "cpu").batched
    from core.decode import decode
    from core.imaging import to_tensor

    spec = session.spec
    tensors = [to_tensor(decode(photo_bytes(p), engine.limits), spec.input_size, spec.mean, spec.std) for p in PHOTOS]
    batch = session.run(np.concatenate(tensors))
    assert batch.shape == (len(PHOTOS), 1, spec.input_size, spec.input_size)
    for i, tensor in enumerate(tensors):
        np.testing.assert_allclose(batch[i : i + 1], session.run(tensor), rtol=0, atol=1e-5)
    # The same weights as u2net: one image gives u2net's prediction.
    np.testing.assert_allclose(session.run(tensors[0]), engine.sessions.get("u2net", "cpu").run(tensors[0]), atol=1e-5)


def test_remove_many_runs_one_call_and_matches_remove(engine: Engine) -> None:
    built(engine, "u2net-dynamic")
    options = RemovalOptions(model="u2net-dynamic", provider="cpu")
    inputs = [photo_bytes(PHOTOS[0]), b"not an image", photo_bytes(PHOTOS[1]), photo_bytes(PHOTOS[2])]
    results = engine.remove_many(inputs, options)
    assert isinstance(results[1], InvalidImage)
    good = [r for r in results if isinstance(r, RemovalResult)]
    assert len(good) == 3 and all(r.batch == 3 for r in good)
    for data, result in zip((inputs[0], inputs[2], inputs[3]), good, strict=True):
        single = engine.remove(data, options)
        assert single.batch == 1
        mad, iou = mask_agreement(alpha_of(result.image), alpha_of(single.image))
        assert mad <= 0.01 and iou == 1.0, (mad, iou)
        assert result.timings["total"] == pytest.approx(sum(v for k, v in result.timings.items() if k != "total"))


def test_remove_many_on_a_fixed_batch_model_runs_one_by_one(engine: Engine) -> None:
    options = RemovalOptions(model="u2netp", provider="cpu")
    results = engine.remove_many([photo_bytes(PHOTOS[0]), b"", photo_bytes(PHOTOS[1])], options)
    assert isinstance(results[1], RemovalError)
    for data, result in zip((PHOTOS[0], PHOTOS[1]), (results[0], results[2]), strict=True):
        assert isinstance(result, RemovalResult) and result.batch == 1
        assert result.data == engine.remove(photo_bytes(data), options).data
