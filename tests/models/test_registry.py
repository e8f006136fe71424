"""The model registry is consistent data: checksums, sizes, sources, safe lookups."""

from __future__ import annotations

import re

import pytest

from base.errors import InvalidOption
from models.registry import DEFAULT_FETCH, MODELS, Build, ModelSpec, PyPIWheel, Url, get_spec

SPECS = list(MODELS.values())


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_entry_is_well_formed(spec: ModelSpec) -> None:
    if spec.build is None:
        # rembg pins an MD5, or for bria-rmbg a SHA-256.
        assert (spec.md5 is not None and re.fullmatch(r"[0-9a-f]{32}", spec.md5)) or (
            spec.md5 is None and spec.sha256 is not None and re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
        )
    else:
        # Built here: its bytes depend on onnxruntime, so its build sidecar verifies it.
        assert spec.md5 is None and spec.sources == (spec.build,)
        assert MODELS[spec.build.base].build is None
    assert spec.input_size in (320, 768, 1024)  # 768: u2net_cloth_seg, as rembg
    assert spec.sources
    # rembg's own file name; sam keeps its release names (an encoder and a decoder).
    assert spec.filename == f"{spec.name}.onnx" or spec.companions
    assert "/" not in spec.filename and not spec.filename.startswith(".")
    assert len(spec.mean) == 3 and len(spec.std) == 3
    assert all(s > 0 for s in spec.std)
    assert spec.size is None or spec.size > 0
    for source in spec.sources:
        assert isinstance(source, (PyPIWheel, Url, Build))
        if isinstance(source, Url):
            assert source.url.startswith("https://")


@pytest.mark.parametrize("name", ["u2net", "u2netp"])
def test_default_models_come_from_pypi_first(name: str) -> None:
    spec = MODELS[name]
    assert isinstance(spec.sources[0], PyPIWheel)
    assert spec.sources[0].member.endswith(spec.filename)
    # Their size is known, so `list` can tell a truncated file without hashing.
    assert spec.size is not None


def test_default_fetch_names_exist() -> None:
    assert set(DEFAULT_FETCH) <= set(MODELS)


def test_names_and_filenames_are_unique() -> None:
    assert all(key == spec.name for key, spec in MODELS.items())
    assert len({s.filename for s in SPECS}) == len(SPECS)
    pinned = [s.md5 for s in SPECS if s.md5 is not None]
    assert len(set(pinned)) == len(pinned)


def test_get_spec_finds_entries() -> None:
    assert get_spec("u2netp") is MODELS["u2netp"]


@pytest.mark.parametrize("bad", ["../../etc/passwd", "u2net.onnx", "", "U2NET", "/tmp/x"])
def test_get_spec_rejects_anything_else(bad: str) -> None:
    with pytest.raises(InvalidOption) as info:
        get_spec(bad)
    assert info.value.option == "model"
    assert "u2net" in info.value.message


#: Every local model name of rembg 2.0.86 (``rembg.sessions``), less the three custom sessions
#: (``--custom-model``) and the remote ones.
REMBG_LOCAL = (
    "u2net u2netp u2net_human_seg u2net_cloth_seg silueta isnet-general-use isnet-anime sam "
    "birefnet-general birefnet-general-lite birefnet-portrait birefnet-dis birefnet-hrsod birefnet-cod "
    "birefnet-massive bria-rmbg"
).split()


@pytest.mark.parametrize("name", REMBG_LOCAL)
def test_every_rembg_model_is_in_the_registry_as_rembg_has_it(name: str) -> None:
    """URL and checksum equal rembg's own session class (read from its source, not copied by hand)."""
    import inspect

    from rembg.sessions import sessions

    spec = get_spec(name)
    source = inspect.getsource(sessions[name])
    for parent in type.mro(sessions[name])[1:]:
        if parent.__module__.startswith("rembg.sessions") and parent.__name__ != "BaseSession":
            source += inspect.getsource(parent)
    url = spec.sources[-1]
    assert isinstance(url, Url)
    if name != "sam":  # sam's URL is an f-string of its checkpoint's name
        assert url.url in source
    pin = f"md5:{spec.md5}" if spec.md5 else f"sha256:{spec.sha256}"
    module = inspect.getsource(inspect.getmodule(sessions[name]))  # type: ignore[arg-type]
    assert pin in module
    size = f"({spec.input_size}, {spec.input_size})"
    if name != "sam":
        assert size in source
        # normalize(img, mean, std, size), as the session's predict calls it
        assert f"{spec.mean}, {spec.std}, {size}" in " ".join(source.split()).replace("( ", "(")
