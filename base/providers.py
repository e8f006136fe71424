"""What each execution provider is: our name, onnxruntime's, where its tensors live.

Facts only; whether one can run here is ``core.providers``' question.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    name: str  # ours: what requests, settings and reports say
    ort_name: str  # onnxruntime's provider id
    #: Where the provider keeps tensors (IO binding binds inputs and side outputs there).
    device: str
    #: The onnxruntime package that carries it.
    package: str
    #: Shared library whose loading decides whether it can run ("" when built in).
    library: str = ""

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
        Provider(
            "openvino",
            "OpenVINOExecutionProvider",
            "cpu",
            "onnxruntime-openvino",
            "libonnxruntime_providers_openvino.so",
        ),
    )
}
#: ``auto`` tries these in order. TensorRT is left out: it compiles an engine on first
#: use (minutes), which an operator should choose knowingly.
AUTO_ORDER = ("cuda", "openvino", "cpu")
#: What a request or a setting may name.
PROVIDER_CHOICES = ("auto", *PROVIDERS)
GPU_PROVIDERS = frozenset(name for name, p in PROVIDERS.items() if p.gpu)
#: onnxruntime's id -> ours, for reporting which provider really ran.
BY_ORT_NAME = {p.ort_name: p.name for p in PROVIDERS.values()}
