"""Every typed error, raised through the public ``remove_background`` path."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from base import errors
from core import (
    Engine,
    ImageTooComplex,
    ImageTooLarge,
    InvalidImage,
    InvalidOption,
    ModelNotAvailable,
    ProviderUnavailable,
    RemovalError,
    RemovalOptions,
    UnsupportedFormat,
    available_providers,
    load_settings,
)
from tests.conftest import photo_bytes
from tests.core.helpers import grey_jpeg, png_header_only

CAR = photo_bytes("car-1.jpg")


def test_one_base_class() -> None:
    typed = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, RemovalError)]
    assert {c.__name__ for c in typed} == {
        "RemovalError",
        "InvalidImage",
        "UnsupportedFormat",
        "ImageTooLarge",
        "ImageTooComplex",  # decoding or matting that would cost too much (test_decode.py, test_pipeline.py)
        "InvalidOption",
        "ModelNotAvailable",
        "ProviderUnavailable",
        "UrlRefused",  # URL input only: raised by core.remote, tested in test_remote.py
        "UrlFetchFailed",
        "ClusterUnavailable",  # --ray-address only: raised by serving.client, tested in tests/serving
    }
    assert len({c.code for c in typed}) == len(typed)


@pytest.mark.model
@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x00\x01garbage", InvalidImage),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", UnsupportedFormat),
        (png_header_only(60000, 60000), ImageTooLarge),
        (grey_jpeg(64, 48, ac_scans=101), ImageTooComplex),
    ],
)
def test_bad_images(engine: Engine, data: bytes, error: type[RemovalError]) -> None:
    with pytest.raises(error):
        engine.remove(data)
    assert engine.remove(CAR, RemovalOptions(model="u2netp")).image.size == (480, 360)  # still serving


@pytest.mark.parametrize(
    ("options", "option"),
    [
        (RemovalOptions(model="../../etc/passwd"), "model"),
        (RemovalOptions(provider="gpu0"), "provider"),
        (RemovalOptions(output_format="exe"), "output_format"),
        (RemovalOptions(quality=0), "quality"),
        (RemovalOptions(bgcolor=(300, 0, 0)), "bgcolor"),
        (RemovalOptions(alpha_matting_erode_size=-1), "alpha_matting_erode_size"),
    ],
)
def test_bad_options_fail_before_any_work(engine: Engine, options: RemovalOptions, option: str) -> None:
    with pytest.raises(InvalidOption) as info:
        engine.remove(b"not even an image", options)
    assert info.value.option == option
    assert option in info.value.message


def test_missing_model_names_the_command(tmp_path: Path) -> None:
    settings = dataclasses.replace(load_settings([]), model_home=tmp_path, fetch_missing=False)
    with pytest.raises(ModelNotAvailable) as info:
        Engine(settings).remove(CAR, RemovalOptions(model="silueta"))
    assert "python -m models fetch silueta" in info.value.message


def test_unavailable_accelerator_is_an_error_not_a_cpu_run(engine: Engine) -> None:
    info = {p.name: p for p in available_providers()}
    if info["cuda"].available:
        pytest.skip("CUDA can load here")
    with pytest.raises(ProviderUnavailable) as raised:
        engine.remove(CAR, RemovalOptions(provider="cuda"))
    assert info["cuda"].reason in raised.value.message
