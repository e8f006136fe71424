"""Which model is the fast one here, and what the model menu is told of each."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from base.settings import load_settings
from core import catalog
from models import fetch as fetching
from models import measured
from models.registry import MODELS
from models.sidecar import expected_record, sidecar_path

INT8 = MODELS["u2net-int8"]


def install_fake_int8(home: Path) -> None:
    """A file and a sidecar that vouches for it, as a build that passed its gate leaves them."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / INT8.filename
    path.write_bytes(b"int8 weights, as far as the sidecar knows")
    record = {**expected_record(INT8), "md5": fetching.file_md5(path), "size": path.stat().st_size}
    sidecar_path(INT8, home).write_text(json.dumps(record))


def test_the_fast_model_is_int8_on_a_cpu_only_where_installed(tmp_path: Path) -> None:
    settings = dataclasses.replace(load_settings([]), model_home=tmp_path)
    assert catalog.fast_model(settings, "cpu") == "u2netp"
    install_fake_int8(tmp_path)
    assert catalog.fast_model(settings, "cpu") == "u2net-int8"


def test_on_a_gpu_int8_is_not_offered_and_the_fast_model_is_u2netp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_int8(tmp_path)
    settings = dataclasses.replace(load_settings([]), model_home=tmp_path)
    monkeypatch.setattr(catalog, "resolve", lambda provider: ["cuda"])
    assert catalog.fast_model(settings, "auto") == "u2netp"
    facts = {f["name"]: f for f in catalog.model_facts(settings, "auto")}
    assert facts["u2net-int8"]["offered"] is False and facts["u2net"]["offered"] is True


def test_each_build_is_offered_on_the_machine_it_is_built_for() -> None:
    """A GPU build on a CPU gives u2net's masks more slowly; int8 on a GPU is not what it was built for."""
    assert not catalog.offered("u2net-fp16", "cpu") and not catalog.offered("u2net-dynamic", "openvino")
    assert catalog.offered("u2net-fp16", "cuda") and catalog.offered("u2net-dynamic", "tensorrt")
    assert catalog.offered("u2net-int8", "cpu") and not catalog.offered("u2net-int8", "cuda")
    assert all(catalog.offered(name, where) for name in ("u2net", "u2netp") for where in ("cpu", "cuda"))


def test_model_facts_say_what_is_ready_measured_and_how_to_get_the_rest(tmp_path: Path) -> None:
    settings = dataclasses.replace(load_settings([]), model_home=tmp_path)
    measured.record(tmp_path, "cpu", {"u2netp": {"inference_ms": 127.0, "alpha_mae": 6.31, "iou": 0.853}}, "test")
    facts = {f["name"]: f for f in catalog.model_facts(settings, "cpu")}
    assert set(facts) == set(MODELS)
    assert facts["u2netp"]["summary"] == "127 ms, alpha MAE 6.31 vs u2net"
    assert facts["u2net"]["ready"] is False and facts["u2net"]["get"] == "python -m models fetch u2net"
    assert facts["u2net-int8"]["get"] == "python -m models build u2net-int8"
