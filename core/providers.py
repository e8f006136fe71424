"""Execution providers by name: which exist here, which can load, and why not.

Names are ours (``cpu``, ``cuda``, ``tensorrt``, ``openvino``, ``auto``); each maps
to onnxruntime provider ids. An accelerator that cannot load is reported with
onnxruntime's (or the dynamic loader's) reason and never silently replaced by
the CPU: that silent fallback is rembg's most reported GPU complaint.
"""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from core.errors import InvalidOption, ProviderUnavailable

#: Our name -> the onnxruntime provider that must be active for it.
ORT_PROVIDER = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
#: Reverse map, for reporting which provider really ran.
OUR_NAME = {v: k for k, v in ORT_PROVIDER.items()}
#: ``auto`` tries these in order. TensorRT is left out: it compiles an engine on
#: first use (minutes), which an operator should choose knowingly.
AUTO_ORDER = ("cuda", "openvino", "cpu")
PROVIDER_CHOICES = ("auto", *ORT_PROVIDER)

#: Shared libraries whose loading decides whether an accelerator can run; loading
#: them ourselves yields the loader's reason ("libcublasLt.so.12: cannot open
#: shared object file") that onnxruntime only prints to stderr before falling back.
_PROVIDER_LIBRARY = {
    "cuda": "libonnxruntime_providers_cuda.so",
    "tensorrt": "libonnxruntime_providers_tensorrt.so",
    "openvino": "libonnxruntime_providers_openvino.so",
}


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    available: bool
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "available": self.available, "reason": self.reason}


def _library_error(name: str) -> str | None:
    """Why the provider's shared library cannot load, or None when it loads."""
    lib = _PROVIDER_LIBRARY.get(name)
    if lib is None:
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
    ort_name = ORT_PROVIDER.get(name)
    if ort_name is None:
        raise InvalidOption("provider", f"unknown provider; choose one of {', '.join(PROVIDER_CHOICES)}")
    if ort_name not in ort.get_available_providers():
        package = "onnxruntime-openvino" if name == "openvino" else "onnxruntime-gpu"
        return ProviderInfo(name, False, f"not in this onnxruntime build (install {package} instead of onnxruntime)")
    error = _library_error(name)
    if error:
        return ProviderInfo(name, False, f"onnxruntime cannot load it: {error}")
    return ProviderInfo(name, True, "available")


def available_providers() -> list[ProviderInfo]:
    """Every named provider with available yes/no and why."""
    return [provider_info(name) for name in ORT_PROVIDER]


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
    name: str, cache_dir: Path | None = None, device_id: int = 0
) -> list[str | tuple[str, dict[str, Any]]]:
    """The provider list handed to onnxruntime for one of our names, with options.

    The CPU provider is appended so that operators an accelerator lacks can still
    run there; whether the accelerator itself loaded is checked after creation.
    """
    if name == "cpu":
        return [ORT_PROVIDER["cpu"]]
    return [(ORT_PROVIDER[name], provider_options(name, cache_dir, device_id)), ORT_PROVIDER["cpu"]]


def provider_options(name: str, cache_dir: Path | None = None, device_id: int = 0) -> dict[str, Any]:
    """Options that make each accelerator fast for U²-Net's fixed 320x320 input."""
    if name == "cuda":
        # The input shape never changes, so the exhaustive search runs once and pays off.
        return {"device_id": device_id, "cudnn_conv_algo_search": "EXHAUSTIVE", "do_copy_in_default_stream": True}
    if name == "tensorrt":
        options: dict[str, Any] = {"device_id": device_id, "trt_fp16_enable": True}
        if cache_dir is not None:
            # Building a TensorRT engine takes minutes; the cache makes it once per machine.
            options |= {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir)}
        return options
    if name == "openvino":
        return {"device_type": "CPU"}
    return {}


@functools.cache
def physical_cores() -> int:
    """Physical cores (not hyper-threads): onnxruntime's fp32 kernels gain nothing from SMT."""
    try:
        pairs = set()
        phys = core = ""
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "physical id":
                phys = value.strip()
            elif key == "core id":
                core = value.strip()
                pairs.add((phys, core))
    except OSError:
        pairs = set()
    # A container may be allowed fewer CPUs than the host has cores.
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(len(pairs) or allowed or 1, allowed or 1))
