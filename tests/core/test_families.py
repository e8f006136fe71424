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
import json
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
from core.pipeline import STAGES
from core.sessions import session_bytes
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


@pytest.mark.parametrize("cc", ["upper", "lower", "full", "attire"])
def test_cloth_seg_equals_rembgs_session(tmp_path: Path, cc: str) -> None:
    """Four classes, argmax, resized as labels, one category white."""
    from rembg.sessions.u2net_cloth_seg import Unet2ClothSession

    path = tiny_graph(tmp_path / "cloth.onnx", 768, 4, scale=8.0)
    spec = _custom("tiny-cloth", "u2net_cloth_seg", "u2net_cloth_seg")
    expected = theirs(rembg_session(Unet2ClothSession, path), cc=cc)
    mine = ours(tmp_path, spec, path, f'{{"cc": "{cc}"}}')
    assert np.array_equal(mine, expected)
    assert len(np.unique(expected)) > 1


def cloth_engine(tmp_path: Path) -> tuple[Engine, Any]:
    """The engine and rembg's ``Unet2ClothSession``, both on the same 4-class stand-in graph."""
    from rembg.sessions.u2net_cloth_seg import Unet2ClothSession

    path = tiny_graph(tmp_path / "cloth.onnx", 768, 4, scale=8.0)
    engine = Engine(Settings(model_home=tmp_path, threads=1))
    engine.sessions.register(_custom("tiny-cloth", "u2net_cloth_seg", "u2net_cloth_seg"), path)
    return engine, rembg_session(Unet2ClothSession, path)


#: (our options, rembg's remove() arguments): without cc, rembg stacks its three cutouts.
CLOTH_STACKS = {
    "only_mask": ({"only_mask": True}, {"only_mask": True}),
    "cutout": ({}, {}),
    "bgcolor": ({"bgcolor": "0,0,255,255"}, {"bgcolor": (0, 0, 255, 255)}),
    "post_process_mask": ({"post_process_mask": True}, {"post_process_mask": True}),
}


@pytest.mark.parametrize("case", CLOTH_STACKS)
def test_cloth_seg_without_cc_stacks_as_rembgs_remove(tmp_path: Path, case: str) -> None:
    """rembg's remove() composes each of the three masks (upper, lower, full) into a cutout and stacks
    them top to bottom (``get_concat_v_multi``), then lays the colour under; ours gives the same pixels."""
    from rembg import remove

    engine, session = cloth_engine(tmp_path)
    mine_options, rembg_options = CLOTH_STACKS[case]
    photo = (PHOTOS_DIR / PHOTO).read_bytes()
    result = engine.remove(photo, RemovalOptions(model="tiny-cloth", **mine_options))
    expected = Image.open(io.BytesIO(remove(photo, session=session, **rembg_options)))  # type: ignore[arg-type]
    mine = Image.open(io.BytesIO(result.data))
    assert (mine.mode, mine.size) == (expected.mode, expected.size)
    assert mine.height == 3 * Image.open(io.BytesIO(photo)).height
    assert np.array_equal(np.asarray(mine), np.asarray(expected))
    # The mask and the "before" are stacked alike, for the WebUI's before/after view and touch-up picture.
    assert result.mask.size == mine.size and result.source is not None and result.source.size == mine.size
    alpha = np.asarray(expected.convert("RGBA"))[..., 0 if case == "only_mask" else 3]
    if case != "bgcolor":
        assert np.array_equal(np.asarray(result.mask), alpha)
    thirds = np.split(np.asarray(expected), 3)  # three different cutouts
    assert not np.array_equal(thirds[0], thirds[1]) and not np.array_equal(thirds[1], thirds[2])


@pytest.mark.parametrize(
    "option", [{"crop": True}, {"shadow": True}, {"blur_background": 5}, {"background_image": PHOTOS_DIR / PHOTO}]
)
def test_cloth_seg_without_cc_refuses_options_of_one_cutout(tmp_path: Path, option: dict[str, Any]) -> None:
    engine, _ = cloth_engine(tmp_path)
    [(name, value)] = option.items()
    with pytest.raises(InvalidOption) as info:
        engine.remove((PHOTOS_DIR / PHOTO).read_bytes(), RemovalOptions(model="tiny-cloth", **option))
    assert info.value.option == name and "extras cc" in info.value.message
    # With a category there is one cutout, and the option applies as to any model.
    one = RemovalOptions(
        model="tiny-cloth", extras='{"cc": "upper"}', **{name: str(value) if name == "background_image" else value}
    )
    assert engine.remove((PHOTOS_DIR / PHOTO).read_bytes(), one).image.height <= 360


# --- sam -----------------------------------------------------------------------------------


def _value(name: str, shape: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array, name)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def tiny_sam_encoder(path: Path) -> Path:
    """input_image (684x1024x3, the warped pixels) -> image_embeddings (1x256x64x64): the image
    resized to 64² and a fixed 1x1 convolution, so that the embedding depends on the pixels."""
    rng = np.random.default_rng(7)
    nodes = [
        helper.make_node("Transpose", ["input_image"], ["chw"], perm=[2, 0, 1]),
        helper.make_node("Unsqueeze", ["chw", "axis0"], ["nchw"]),
        helper.make_node("Resize", ["nchw", "", "", "sizes"], ["small"], mode="linear"),
        helper.make_node("Conv", ["small", "w", "b"], ["image_embeddings"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-sam-encoder",
        [_value("input_image", [684, 1024, 3])],
        [_value("image_embeddings", [1, 256, 64, 64])],
        [
            _const("axis0", np.array([0], np.int64)),
            _const("sizes", np.array([1, 3, 64, 64], np.int64)),
            _const("w", (rng.normal(size=(256, 3, 1, 1)) / 255).astype(np.float32)),
            _const("b", rng.normal(size=(256,)).astype(np.float32) * 0.1),
        ],
    )
    return _save(graph, path)


def tiny_sam_decoder(path: Path) -> Path:
    """SAM's decoder inputs -> masks (1x1xHxW at orig_im_size), iou_predictions, low_res_masks.

    On a 64² grid of the 1024 frame: the embedding through a 1x1 convolution, plus a Gaussian
    bump of 150 px at every point weighted by its label (label - 0.5: the padding point, -1,
    pulls down; rectangle corners, 2 and 3, push up); resized to ``orig_im_size``. So the mask
    depends on the image, on each point's place and on its label."""
    rng = np.random.default_rng(11)
    centres = (np.arange(64, dtype=np.float32) * 16 + 8)[None, None]
    gx = np.broadcast_to(centres[:, :, None, :], (1, 1, 64, 64)).astype(np.float32)
    gy = np.broadcast_to(centres[:, :, :, None], (1, 1, 64, 64)).astype(np.float32)
    n = helper.make_node
    nodes = [
        n("Conv", ["image_embeddings", "w"], ["image_term"]),
        n("Slice", ["point_coords", "zero", "one", "two"], ["px3"]),
        n("Slice", ["point_coords", "one", "two", "two"], ["py3"]),
        n("Unsqueeze", ["px3", "three"], ["px"]),
        n("Unsqueeze", ["py3", "three"], ["py"]),
        n("Sub", ["gx", "px"], ["dx"]),
        n("Sub", ["gy", "py"], ["dy"]),
        n("Mul", ["dx", "dx"], ["dx2"]),
        n("Mul", ["dy", "dy"], ["dy2"]),
        n("Add", ["dx2", "dy2"], ["d2"]),
        n("Mul", ["d2", "inv_sigma2"], ["scaled"]),
        n("Neg", ["scaled"], ["negative"]),
        n("Exp", ["negative"], ["bump"]),
        n("Sub", ["point_labels", "half"], ["weight2"]),
        n("Unsqueeze", ["weight2", "two_three"], ["weight"]),
        n("Mul", ["bump", "weight"], ["weighted"]),
        n("ReduceSum", ["weighted", "one"], ["prompt_term"], keepdims=1),
        n("Mul", ["prompt_term", "gain"], ["prompt_scaled"]),
        n("Add", ["image_term", "prompt_scaled"], ["sum"]),
        n("ReduceMean", ["mask_input"], ["mask_mean"], keepdims=0),
        n("Mul", ["mask_mean", "has_mask_input"], ["mask_term"]),
        n("Add", ["sum", "mask_term"], ["low"]),
        n("Add", ["low", "offset"], ["logits"]),
        n("Cast", ["orig_im_size"], ["hw"], to=TensorProto.INT64),
        n("Concat", ["ones", "hw"], ["sizes"], axis=0),
        n("Resize", ["logits", "", "", "sizes"], ["masks"], mode="linear"),
        n("Resize", ["logits", "", "", "low_sizes"], ["low_res_masks"], mode="linear"),
        n("ReduceMean", ["logits"], ["iou_predictions"], axes=[2, 3], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-sam-decoder",
        [
            _value("image_embeddings", [1, 256, 64, 64]),
            _value("point_coords", [1, "points", 2]),
            _value("point_labels", [1, "points"]),
            _value("mask_input", [1, 1, 256, 256]),
            _value("has_mask_input", [1]),
            _value("orig_im_size", [2]),
        ],
        [
            _value("masks", [1, 1, "height", "width"]),
            _value("iou_predictions", [1, 1]),
            _value("low_res_masks", [1, 1, 256, 256]),
        ],
        [
            _const("w", (rng.normal(size=(1, 256, 1, 1)) / 16).astype(np.float32)),
            _const("zero", np.array([0], np.int64)),
            _const("one", np.array([1], np.int64)),
            _const("two", np.array([2], np.int64)),
            _const("three", np.array([3], np.int64)),
            _const("two_three", np.array([2, 3], np.int64)),
            _const("gx", gx),
            _const("gy", gy),
            _const("inv_sigma2", np.array(1 / 150**2, np.float32)),
            _const("half", np.array(0.5, np.float32)),
            _const("gain", np.array(4.0, np.float32)),
            _const("offset", np.array(-0.5, np.float32)),
            _const("ones", np.array([1, 1], np.int64)),
            _const("low_sizes", np.array([1, 1, 256, 256], np.int64)),
        ],
    )
    return _save(graph, path)


@pytest.fixture
def tiny_sam(tmp_path: Path) -> tuple[ModelSpec, Path]:
    return tiny_sam_model(tmp_path)


def tiny_sam_model(folder: Path) -> tuple[ModelSpec, Path]:
    """sam's registry entry on the stand-in encoder, its decoder beside it as the companion."""
    encoder = tiny_sam_encoder(folder / "tiny-sam.encoder.onnx")
    tiny_sam_decoder(folder / "tiny-sam.decoder.onnx")
    spec = replace(
        MODELS["sam"],
        name="tiny-sam",
        filename=encoder.name,
        md5=None,
        sources=(),
        companions=(("tiny-sam.decoder.onnx", "", ""),),
    )
    return spec, encoder


def rembg_sam(encoder: Path) -> Any:
    """rembg's ``SamSession`` on the stand-ins, without its download step."""
    from rembg.sessions.sam import SamSession

    session = object.__new__(SamSession)
    session.model_name = "sam"
    session.encoder = ort.InferenceSession(str(encoder), providers=["CPUExecutionProvider"])
    decoder = encoder.with_name(encoder.name.replace("encoder", "decoder"))
    session.decoder = ort.InferenceSession(str(decoder), providers=["CPUExecutionProvider"])
    return session


SAM_PROMPTS: dict[str, list[dict[str, Any]] | None] = {
    "default": None,
    "point": [{"type": "point", "label": 1, "data": [120, 90]}],
    "points": [{"type": "point", "label": 1, "data": [300, 200]}, {"type": "point", "label": 0, "data": [350, 220]}],
    "rectangle": [{"type": "rectangle", "data": [60, 40, 260, 200]}],
}


@pytest.mark.parametrize("prompt", SAM_PROMPTS)
def test_sam_equals_rembgs_session(tmp_path: Path, tiny_sam: tuple[ModelSpec, Path], prompt: str) -> None:
    """The encoder on the warped image, the decoder with the prompt (rembg's default: the centre),
    the masks warped back and their union: the same mask as rembg's ``SamSession.predict``."""
    spec, encoder = tiny_sam
    marks = SAM_PROMPTS[prompt]
    extras = None if marks is None else json.dumps({"sam_prompt": marks})
    expected = theirs(rembg_sam(encoder), **({} if marks is None else {"sam_prompt": marks}))
    mine = ours(tmp_path, spec, encoder, extras)
    assert mine.shape == expected.shape
    assert np.array_equal(mine, expected)
    assert 0.02 < (expected > 0).mean() < 0.98  # the stand-in draws a mask worth comparing


def test_sam_on_openvino_equals_rembgs_session(tmp_path: Path, tiny_sam: tuple[ModelSpec, Path]) -> None:
    """Both networks of the model on the second CPU runtime: the same masks."""
    from core.providers import provider_info

    if not provider_info("openvino").available:
        pytest.skip("OpenVINO is not installed")
    spec, encoder = tiny_sam
    engine = Engine(Settings(model_home=tmp_path, threads=1))
    engine.sessions.register(spec, encoder)
    for marks in SAM_PROMPTS.values():
        extras = None if marks is None else json.dumps({"sam_prompt": marks})
        options = RemovalOptions(model=spec.name, provider="openvino", only_mask=True, extras=extras)
        result = engine.remove((PHOTOS_DIR / PHOTO).read_bytes(), options)
        assert result.backend == "openvino-cpu"
        expected = theirs(rembg_sam(encoder), **({} if marks is None else {"sam_prompt": marks}))
        assert np.array_equal(np.asarray(result.mask, dtype=np.int16), expected)
    [loaded] = engine.sessions.loaded()
    assert loaded["runtime"] == "openvino"


def test_sam_masks_depend_on_the_prompt(tmp_path: Path, tiny_sam: tuple[ModelSpec, Path]) -> None:
    """Guard for the stand-ins: each prompt above draws another mask."""
    spec, encoder = tiny_sam
    masks = {
        name: ours(tmp_path, spec, encoder, None if m is None else json.dumps({"sam_prompt": m}))
        for name, m in SAM_PROMPTS.items()
    }
    names = list(masks)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not np.array_equal(masks[a], masks[b]), (a, b)


def test_sam_cutout_equals_rembgs_remove(tmp_path: Path, tiny_sam: tuple[ModelSpec, Path]) -> None:
    from rembg import remove

    spec, encoder = tiny_sam
    prompt = SAM_PROMPTS["rectangle"]
    photo = (PHOTOS_DIR / PHOTO).read_bytes()
    engine = Engine(Settings(model_home=tmp_path, threads=1))
    engine.sessions.register(spec, encoder)
    result = engine.remove(photo, RemovalOptions(model=spec.name, extras=json.dumps({"sam_prompt": prompt})))
    expected = np.asarray(Image.open(io.BytesIO(remove(photo, session=rembg_sam(encoder), sam_prompt=prompt))))  # type: ignore[arg-type]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(result.data))), expected)
    assert set(result.timings) == {*STAGES, "total"}
    loaded = engine.sessions.loaded()[0]
    # Both files count in the session cache's budget.
    assert loaded["memory_mib"] * 2**20 >= session_bytes([encoder, encoder.with_name("tiny-sam.decoder.onnx")]) - 2**20


def test_sam_without_its_weights_is_not_available(tmp_path: Path) -> None:
    """The registry's sam, weights absent and not fetched: ``ModelNotAvailable`` naming both files."""
    engine = Engine(Settings(model_home=tmp_path, rembg_home=tmp_path / "rembg", fetch_missing=False))
    with pytest.raises(ModelNotAvailable) as info:
        engine.remove((PHOTOS_DIR / PHOTO).read_bytes(), RemovalOptions(model="sam"))
    for part in ("sam_vit_b_01ec64.encoder.onnx", "sam_vit_b_01ec64.decoder.onnx", "python -m models fetch sam"):
        assert part in info.value.message
    assert not list(tmp_path.iterdir()) or [p.name for p in tmp_path.iterdir()] == ["rembg"]


BAD_PROMPTS = [
    [],
    [{"type": "point", "data": [1, 2]}],  # a point without its label
    [{"type": "point", "label": 2, "data": [1, 2]}],
    [{"type": "point", "label": True, "data": [1, 2]}],
    [{"type": "point", "label": 1, "data": [1, 2, 3]}],
    [{"type": "point", "label": 1, "data": [1, "2"]}],
    [{"type": "rectangle", "data": [1, 2, 3]}],
    [{"type": "rectangle", "label": "x", "data": [1, 2, 3, 4]}],
    [{"type": "box", "data": [1, 2, 3, 4]}],
    {"type": "point", "label": 1, "data": [1, 2]},
    "1,2",
]


@pytest.mark.parametrize("prompt", BAD_PROMPTS, ids=range(len(BAD_PROMPTS)))
def test_bad_sam_prompts_are_refused(tmp_path: Path, tiny_sam: tuple[ModelSpec, Path], prompt: Any) -> None:
    spec, encoder = tiny_sam
    engine = Engine(Settings(model_home=tmp_path, threads=1))
    engine.sessions.register(spec, encoder)
    with pytest.raises(InvalidOption) as info:
        engine.remove(
            (PHOTOS_DIR / PHOTO).read_bytes(),
            RemovalOptions(model=spec.name, extras=json.dumps({"sam_prompt": prompt})),
        )
    assert info.value.option == "extras" and "sam_prompt" in info.value.message
    assert not engine.sessions.loaded()  # refused before the model was loaded


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
