"""Execution providers by name: which can load here, why not, and the options each gets.

Names are ours (``cpu``, ``cuda``, ``tensorrt``, ``openvino``, ``auto``; the facts are
in ``base.providers``; ``openvino`` is the OpenVINO runtime, ``core.openvino``). An
accelerator that cannot load is reported with onnxruntime's (or the dynamic loader's)
reason and never silently replaced by the CPU: that silent fallback is rembg's most reported GPU complaint.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from base.errors import InvalidOption, ProviderUnavailable
from base.providers import AUTO_ORDER, PROVIDER_CHOICES, PROVIDERS
from base.settings import quiet_openvino

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    available: bool
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "available": self.available, "reason": self.reason}


@functools.cache
def _preload_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries of the ``nvidia-*`` wheels, where they are installed.

    ``onnxruntime-gpu[cuda,cudnn]`` brings CUDA and cuDNN from the package index, but its
    provider library has no search path to them: without this, it loads only where the
    host has the same CUDA major installed (``libcublasLt.so.13: cannot open shared
    object file``). onnxruntime's own ``preload_dlls`` finds them; it prints what it
    cannot load, so that goes to the debug log, and the provider check below reports
    what is still missing. Only the host's driver (``libcuda.so.1``) must come from outside.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            preload()
    except (OSError, RuntimeError) as exc:
        log.debug("onnxruntime.preload_dlls failed: %s", exc)
    if printed.getvalue().strip():
        log.debug("onnxruntime.preload_dlls: %s", printed.getvalue().strip())


def _library_error(name: str) -> str | None:
    """Why the provider's shared library cannot load, or None when it loads.

    Loading it ourselves yields the loader's reason ("libcublasLt.so.13: cannot open
    shared object file") that onnxruntime only prints to stderr before falling back.
    """
    lib = PROVIDERS[name].library
    if not lib:
        return None
    path = Path(ort.__file__).parent / "capi" / lib
    if not path.exists():
        return None  # some builds link the provider statically; trust the session check
    try:
        ctypes.CDLL(os.fspath(path))
    except OSError as exc:
        return str(exc)
    return None


@functools.cache
def provider_info(name: str) -> ProviderInfo:
    """Whether ``name`` can run here, and why not. Cached: libraries do not appear at run time."""
    if name == "cpu":
        return ProviderInfo("cpu", True, "always available")
    facts = PROVIDERS.get(name)
    if facts is None:
        raise InvalidOption("provider", f"unknown provider; choose one of {', '.join(PROVIDER_CHOICES)}")
    if facts.runtime == "openvino":
        return _openvino_info()
    if facts.ort_name not in ort.get_available_providers():
        return ProviderInfo(
            name, False, f"not in this onnxruntime build (install {facts.package} instead of onnxruntime)"
        )
    if facts.gpu:
        _preload_cuda_libraries()
    error = _library_error(name)
    if error:
        return ProviderInfo(name, False, f"onnxruntime cannot load it: {error}")
    return ProviderInfo(name, True, "available")


def _openvino_info() -> ProviderInfo:
    if importlib.util.find_spec("openvino") is None:
        return ProviderInfo("openvino", False, "the openvino package is not installed (see requirements.txt)")
    try:
        quiet_openvino()
        import openvino

        devices = openvino.Core().available_devices
    except (RuntimeError, OSError, ImportError) as exc:  # a broken install: a missing plugin library
        return ProviderInfo("openvino", False, f"OpenVINO cannot start: {exc}")
    if "CPU" not in devices:
        return ProviderInfo("openvino", False, f"OpenVINO has no CPU device here (devices: {', '.join(devices)})")
    return ProviderInfo("openvino", True, f"available (OpenVINO {openvino.__version__.split('-')[0]}, CPU)")


def available_providers() -> list[ProviderInfo]:
    """Every named provider with available yes/no and why."""
    return [provider_info(name) for name in PROVIDERS]


def resolve(name: str) -> list[str]:
    """Candidate provider names for a request, best first.

    An explicit name yields itself or raises ``ProviderUnavailable`` with the reason;
    ``auto`` yields every available provider in ``AUTO_ORDER``.
    """
    if name == "auto":
        return [n for n in AUTO_ORDER if provider_info(n).available]
    info = provider_info(name)
    if not info.available:
        raise ProviderUnavailable(f"provider {name!r} is unavailable: {info.reason}")
    return [name]


def ort_providers(
    name: str, cache_dir: Path | None = None, device_id: int = 0, *, precision: str = "fp32", memory_mb: int = 0
) -> list[str | tuple[str, dict[str, Any]]]:
    """The provider list handed to onnxruntime for one of our names, with options.

    The CPU provider is appended so that operators an accelerator lacks can still
    run there; whether the accelerator itself loaded is checked after creation.
    """
    cpu = PROVIDERS["cpu"].ort_name
    if PROVIDERS[name].runtime != "onnxruntime":
        raise ProviderUnavailable(f"provider {name!r} is not an onnxruntime provider")
    if name == "cpu":
        return [cpu]
    options = provider_options(name, cache_dir, device_id, precision=precision, memory_mb=memory_mb)
    return [(PROVIDERS[name].ort_name, options), cpu]


def provider_options(
    name: str, cache_dir: Path | None = None, device_id: int = 0, *, precision: str = "fp32", memory_mb: int = 0
) -> dict[str, Any]:
    """Options that make each accelerator fast for U²-Net's 320x320 input, in bounded memory.

    CUDA: HEURISTIC algorithm search reaches EXHAUSTIVE's steady speed at a quarter of
    its first-call cost per batch size, and DEFAULT is several times slower (measured
    on an H200: ``docs/benchmark/h200/cuda-options.json``); without the maximum cuDNN workspace and with
    an arena that grows by what is asked, a session holds far less memory. TF32 is off
    unless asked for: with it, masks differ from the CPU's. ``memory_mb`` caps the
    arena, and with it the batch sizes a session warms up (``core.sessions``).
    """
    if name == "cuda":
        options: dict[str, Any] = {
            "device_id": device_id,
            "cudnn_conv_algo_search": "HEURISTIC",
            "cudnn_conv_use_max_workspace": "0",
            "arena_extend_strategy": "kSameAsRequested",
            "use_tf32": "1" if precision == "tf32" else "0",
            "do_copy_in_default_stream": True,
        }
        if memory_mb:
            options["gpu_mem_limit"] = str(memory_mb * 1024 * 1024)
        return options
    if name == "tensorrt":
        options = {"device_id": device_id, "trt_fp16_enable": True}
        if cache_dir is not None:
            # Building a TensorRT engine takes minutes; the cache makes it once per machine.
            options |= {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir)}
        return options
    return {}
