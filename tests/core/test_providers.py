"""Unit tier: provider names, availability reasons and the auto order."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from base.cpu import physical_cores
from base.errors import InvalidOption, ProviderUnavailable
from core import providers


def test_every_provider_listed_with_a_reason() -> None:
    listed = {p.name: p for p in providers.available_providers()}
    assert set(listed) == {"cpu", "cuda", "tensorrt", "openvino"}
    assert listed["cpu"].available
    for info in listed.values():
        assert info.reason


def test_auto_ends_with_cpu() -> None:
    assert providers.resolve("auto")[-1] == "cpu"


def test_unknown_name() -> None:
    with pytest.raises(InvalidOption):
        providers.resolve("gpu")


@pytest.fixture
def cpu_only_build(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """onnxruntime as its CPU wheel is built, so that every GPU provider is unavailable whatever this machine has."""
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    providers.provider_info.cache_clear()
    yield
    providers.provider_info.cache_clear()  # before monkeypatch restores onnxruntime: the next look is the real one


@pytest.mark.usefixtures("cpu_only_build")
def test_unavailable_names_the_reason() -> None:
    unavailable = [info for info in providers.available_providers() if not info.available]
    # openvino is the openvino package's CPU plugin, not an onnxruntime build: it stays where it is installed
    assert {info.name for info in unavailable} == {"cuda", "tensorrt"}
    for info in unavailable:
        with pytest.raises(ProviderUnavailable, match=re.escape(f"{info.name!r} is unavailable: {info.reason}")):
            providers.resolve(info.name)
    assert providers.resolve("auto") == ["cpu"]


def test_cpu_list_has_no_accelerator() -> None:
    assert providers.ort_providers("cpu") == ["CPUExecutionProvider"]
    cuda = providers.ort_providers("cuda")
    assert cuda[0][0] == "CUDAExecutionProvider" and cuda[-1] == "CPUExecutionProvider"


def test_tensorrt_options_cache_engines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    options = providers.provider_options("tensorrt", tmp_path)
    assert options["trt_fp16_enable"] and options["trt_engine_cache_path"] == str(tmp_path)


def test_physical_cores_positive() -> None:
    assert physical_cores() >= 1


def test_gpu_device_reaches_the_accelerator_options() -> None:
    assert providers.provider_options("cuda", device_id=1)["device_id"] == 1
    assert providers.ort_providers("tensorrt", device_id=2)[0][1]["device_id"] == 2
