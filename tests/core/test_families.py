"""Each family's pre- and post-processing equals rembg 2.0.86's own session class of that family.

The weights of BiRefNet, BRIA, BEN2 and the cloth model cannot be fetched here, so each is
stood in for by a small ONNX graph built here with the same input and output names and shapes
(a fixed 1x1 convolution of the normalised image: its output depends on every step of the
pre-processing). rembg's session class runs the graph through its own ``predict``; the engine
runs it as a custom model of that family; the masks must match. The claim checked is "our
family code equals rembg's", not anything about the real weights.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from base.errors import InvalidOption, ModelNotAvailable
from base.settings import Settings
from core import Engine, RemovalOptions
from core.options import parse_extras
from models.registry import MODELS, ModelSpec
from tests.conftest import PHOTOS_DIR

PHOTO = "car-1.jpg"


def tiny_graph(path: Path, size: int, channels: int, *, output: str = "output", scale: float = 1.0) -> Path:
    """input (1x3xSxS) -> a fixed 1x1 convolution -> output (1xCxSxS), as the family's network has them."""
    rng = np.random.default_rng(channels)
    weight = (rng.normal(size=(channels, 3, 1, 1)) * scale).astype(np.float32)
    bias = rng.normal(size=(channels,)).astype(np.float32)
    node = helper.make_node("Conv", ["input", "w", "b"], [output])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, channels, size, size])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def rembg_session(cls: Any, path: Path) -> Any:
    """rembg's session class on ``path``, without its download step (which needs the network)."""
    session = object.__new__(cls)
    session.model_name = "tiny"
    session.inner_session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session


def ours(tmp_path: Path, spec: ModelSpec, path: Path, extras: str | None = None) -> np.ndarray:
    engine = Engine(Settings(model_home=tmp_path, threads=1))
    engine.sessions.register(spec, path)
    result = engine.remove(
        (PHOTOS_DIR / PHOTO).read_bytes(), RemovalOptions(model=spec.name, only_mask=True, extras=extras)
    )
    return np.asarray(result.mask, dtype=np.int16)


def theirs(session: object, **kwargs: object) -> np.ndarray:
    im = Image.open(io.BytesIO((PHOTOS_DIR / PHOTO).read_bytes()))
    [mask] = session.predict(im, **kwargs)  # type: ignore[attr-defined]
    return np.asarray(mask, dtype=np.int16)


def _custom(name: str, family: str, registry_name: str) -> ModelSpec:
    base = MODELS[registry_name]
    return replace(base, name=name, family=family, sources=(), md5=None, sha256=None)


PLAIN = [
    # (registry entry whose data the stand-in takes, rembg session module and class)
    ("isnet-general-use", "rembg.sessions.dis_general_use", "DisSession"),
    ("isnet-anime", "rembg.sessions.dis_anime", "DisSession"),
    ("bria-rmbg", "rembg.sessions.bria_rmbg", "BriaRmBgSession"),
    ("birefnet-general", "rembg.sessions.birefnet_general", "BiRefNetSessionGeneral"),
    ("birefnet-general-lite", "rembg.sessions.birefnet_general_lite", "BiRefNetSessionGeneralLite"),
    ("birefnet-massive", "rembg.sessions.birefnet_massive", "BiRefNetSessionMassive"),
    ("u2net_human_seg", "rembg.sessions.u2net_human_seg", "U2netHumanSegSession"),
]


@pytest.mark.parametrize(("name", "module", "cls"), PLAIN, ids=[p[0] for p in PLAIN])
def test_family_equals_rembgs_session(tmp_path: Path, name: str, module: str, cls: str) -> None:
    import importlib

    spec = MODELS[name]
    path = tiny_graph(tmp_path / "tiny.onnx", spec.input_size, 1, scale=4.0)
    rembg = rembg_session(getattr(importlib.import_module(module), cls), path)
    mine = ours(tmp_path, _custom("tiny", spec.family, name), path)
    expected = theirs(rembg)
    assert mine.shape == expected.shape
    assert np.abs(mine - expected).max() <= 1, f"{name}: family {spec.family} differs from rembg's {cls}"
    assert expected.std() > 10  # the stand-in draws a mask worth comparing, not a flat one


def test_ben2_equals_rembgs_ben_custom(tmp_path: Path) -> None:
    from rembg.sessions.ben_custom import BenCustomSession

    path = tiny_graph(tmp_path / "tiny.onnx", 1024, 1, scale=4.0)
    spec = replace(_custom("tiny-ben", "ben2", "isnet-general-use"), mean=(0.5, 0.5, 0.5), std=(1.0, 1.0, 1.0))
    expected = theirs(rembg_session(BenCustomSession, path))
    assert np.abs(ours(tmp_path, spec, path) - expected).max() <= 1


@pytest.mark.parametrize("cc", ["upper", "lower", "full", "attire", None])
def test_cloth_seg_equals_rembgs_session(tmp_path: Path, cc: str | None) -> None:
    """Four classes, argmax, resized as labels, one category white; without ``cc`` rembg returns three
    masks (upper, lower, full) and we one, ``attire`` (the three together)."""
    from rembg.sessions.u2net_cloth_seg import Unet2ClothSession

    path = tiny_graph(tmp_path / "cloth.onnx", 768, 4, scale=8.0)
    spec = _custom("tiny-cloth", "u2net_cloth_seg", "u2net_cloth_seg")
    extras = None if cc is None else f'{{"cc": "{cc}"}}'
    expected = theirs(rembg_session(Unet2ClothSession, path), cc=cc or "attire")
    mine = ours(tmp_path, spec, path, extras)
    assert np.array_equal(mine, expected)
    assert len(np.unique(expected)) > 1


def test_sam_answers_503_at_once_without_looking_for_weights(tmp_path: Path) -> None:
    engine = Engine(Settings(model_home=tmp_path))
    with pytest.raises(ModelNotAvailable) as info:
        engine.remove((PHOTOS_DIR / PHOTO).read_bytes(), RemovalOptions(model="sam"))
    assert "sam" in info.value.message and "encoder and a decoder" in info.value.message
    assert not list(tmp_path.iterdir())  # nothing was fetched


@pytest.mark.parametrize(
    "extras",
    ['{"model_path": "/etc/passwd"}', '{"sam_model": "sam_vit_h_4b8939"}', '{"weights_path": "x"}'],
)
def test_extras_naming_a_file_are_refused(extras: str) -> None:
    with pytest.raises(InvalidOption) as info:
        parse_extras(extras)
    assert info.value.option == "extras" and "file" in info.value.message


@pytest.mark.parametrize("extras", ["[1]", "{", '{"cc": "hat"}', '{"sam_prompt": [{"type": "point"}]}', '{"x": 1}'])
def test_bad_extras_are_refused(extras: str) -> None:
    with pytest.raises(InvalidOption):
        parse_extras(extras)


def test_good_extras_parse() -> None:
    assert parse_extras('{"cc": "upper"}') == {"cc": "upper"}
    prompt = '{"sam_prompt": [{"type": "point", "label": 1, "data": [10, 20]}]}'
    assert parse_extras(prompt)["sam_prompt"][0]["data"] == [10, 20]
    assert parse_extras(None) == {} and parse_extras(" ") == {}


def test_the_stand_in_depends_on_its_input(tmp_path: Path) -> None:
    """Guard for the stand-in itself: the graph's output depends on the input."""
    path = tiny_graph(tmp_path / "t.onnx", 8, 1)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    a = session.run(None, {"input": np.zeros((1, 3, 8, 8), np.float32)})[0]
    b = session.run(None, {"input": np.ones((1, 3, 8, 8), np.float32)})[0]
    assert not np.array_equal(a, b)
