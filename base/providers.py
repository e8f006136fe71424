"""What each execution provider is: our name, its runtime, onnxruntime's id, where its tensors live.

Facts only; whether one can run here is ``core.providers``' question. Two runtimes run
the same ``.onnx`` files: onnxruntime (``cpu``, ``cuda``, ``tensorrt``) and OpenVINO
(``openvino``: the ``openvino`` package's own CPU plugin, beside onnxruntime, not the
onnxruntime-openvino build that would replace it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    name: str  # ours: what requests, settings and reports say
    ort_name: str  # onnxruntime's provider id ("" for another runtime)
    #: Where the provider keeps tensors (IO binding binds inputs and side outputs there).
    device: str
    #: The onnxruntime package that carries it.
    package: str
    #: Shared library whose loading decides whether it can run ("" when built in).
    library: str = ""
    #: The inference runtime: onnxruntime or openvino.
    runtime: str = "onnxruntime"

    @property
    def gpu(self) -> bool:
        """Runs on an NVIDIA GPU: one worker per device, GPU memory to report."""
        return self.device == "cuda"


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("cpu", "CPUExecutionProvider", "cpu", "onnxruntime"),
        Provider("cuda", "CUDAExecutionProvider", "cuda", "onnxruntime-gpu", "libonnxruntime_providers_cuda.so"),
        Provider(
            "tensorrt", "TensorrtExecutionProvider", "cuda", "onnxruntime-gpu", "libonnxruntime_providers_tensorrt.so"
        ),
        Provider("openvino", "", "cpu", "openvino", runtime="openvino"),
    )
}
#: ``auto`` tries these in order. TensorRT is left out: it compiles an engine on first
#: use (minutes), which an operator should choose knowingly. OpenVINO is left out too: on
#: the CPU, which runtime serves a request is the ``precision`` option's choice, made from
#: what ``python -m models tune`` measured here (``core.precision``).
AUTO_ORDER = ("cuda", "cpu")
#: What a request or a setting may name.
PROVIDER_CHOICES = ("auto", *PROVIDERS)
GPU_PROVIDERS = frozenset(name for name, p in PROVIDERS.items() if p.gpu)
#: onnxruntime's id -> ours, for reporting which provider really ran.
BY_ORT_NAME = {p.ort_name: p.name for p in PROVIDERS.values() if p.ort_name}
#: The precisions a session may run at: fp32 everywhere; bf16 (OpenVINO, on a CPU with
#: AMX or AVX512_BF16); int8 (a QDQ build such as u2net-int8); tf32 (CUDA).
PRECISIONS = ("fp32", "bf16", "int8", "tf32")
#: What a request may ask for: ``exact`` (masks equal rembg's) or ``fast`` (the fastest
#: build that passes the quality gate here).
PRECISION_CHOICES = ("exact", "fast")
