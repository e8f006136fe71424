"""One onnxruntime session per (model, provider): created lazily, once, behind a lock.

The cache is shared by every request. Inference on one session is bounded by a
semaphore (``Settings.inference_concurrency``, 1 by default): one inference already
uses every core, so a second one at once only slows both (``python -m benchmark``'s
throughput rows show it).
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from base.cpu import physical_cores
from base.errors import InvalidOption, ProviderUnavailable
from base.providers import BY_ORT_NAME, PROVIDERS
from base.settings import BATCH_SIZES, Settings
from core import providers
from core.batcher import Batcher
from core.graphs import Graphs
from models.fetch import ensure_model
from models.registry import MODELS, ModelSpec, get_spec

log = logging.getLogger(__name__)


@dataclass
class ModelSession:
    """A loaded model on one provider, plus what is needed to feed it."""

    spec: ModelSpec
    provider: str  # our name of the provider that really runs (read back from the session)
    session: ort.InferenceSession
    load_ms: float
    _gate: threading.Semaphore = field(repr=False)
    device_id: int = 0  # which GPU, for IO binding on an accelerator
    #: Pre- and post-processing on the provider (``processing = graph``); None: exact, on the CPU.
    graphs: Graphs | None = field(default=None, repr=False)
    #: Gathers concurrent requests into batches (``batching``); None: one call per request.
    batcher: Batcher | None = field(default=None, repr=False)
    #: GPU memory the process held after warming each batch size, MB (where a GPU reports it).
    gpu_memory_mb: dict[int, float] = field(default_factory=dict)

    @property
    def input_name(self) -> str:
        return str(self.session.get_inputs()[0].name)

    @property
    def output_name(self) -> str:
        return str(self.session.get_outputs()[0].name)

    @property
    def batched(self) -> bool:
        """Whether the input's batch dimension is symbolic (several images per call)."""
        return not isinstance(self.session.get_inputs()[0].shape[0], int)

    @property
    def device(self) -> str:
        return PROVIDERS[self.provider].device

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on an Nx3xSxS float32 batch; returns output 0 (Nx1xSxS).

        Only output 0 (the fused mask) is fetched: U²-Net's six side outputs stay
        where they were computed, which on a GPU saves six device-to-host copies.
        """
        with self._gate:
            if self.provider == "cpu":
                return np.asarray(self.session.run([self.output_name], {self.input_name: batch})[0])
            return run_bound(self.session, batch, device=self.device, device_id=self.device_id)

    def infer(self, tensors: list[np.ndarray]) -> list[tuple[np.ndarray, int]]:
        """Output 0 of each single input (1xCxSxS), and how many images shared its call.

        Through the batcher where there is one; else as one call where the batch
        dimension is symbolic, else one call each.
        """
        if self.batcher is not None:
            return self.batcher.submit_many(tensors)
        if self.batched and len(tensors) > 1:
            return [(row[None], len(tensors)) for row in self.run(np.concatenate(tensors))]
        return [(self.run(tensor), 1) for tensor in tensors]

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()

    def describe(self) -> dict[str, object]:
        """What the health endpoint and the benchmark show of it."""
        out: dict[str, object] = {
            "model": self.spec.name,
            "provider": self.provider,
            "load_ms": round(self.load_ms, 1),
            "processing": "graph" if self.graphs else "exact",
            "batching": self.batcher.stats.as_dict() | {"sizes": list(self.batcher.sizes)} if self.batcher else None,
        }
        if self.gpu_memory_mb:
            out["gpu_memory_mb_by_batch"] = self.gpu_memory_mb
        return out


def run_bound(session: ort.InferenceSession, batch: np.ndarray, device: str, device_id: int = 0) -> np.ndarray:
    """Run with IO binding: the input is copied to ``device`` once, the mask is bound
    to the host and the side outputs stay on the device, unfetched."""
    binding = session.io_binding()
    binding.bind_ortvalue_input(
        session.get_inputs()[0].name, ort.OrtValue.ortvalue_from_numpy(batch, device, device_id)
    )
    binding.bind_output(session.get_outputs()[0].name, "cpu")
    for extra in session.get_outputs()[1:]:
        binding.bind_output(extra.name, device, device_id)
    session.run_with_iobinding(binding)
    return np.asarray(binding.copy_outputs_to_cpu()[0])


def session_options(settings: Settings) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = settings.threads or physical_cores()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # our own errors carry the reasons; keep stderr quiet
    return opts


def uses_graphs(settings: Settings, spec: ModelSpec, provider: str) -> bool:
    """Whether pre/post-processing runs as graphs on ``provider`` for ``spec``."""
    wanted = settings.processing == "graph" or (settings.processing == "auto" and PROVIDERS[provider].gpu)
    return wanted and spec.family == "u2net"


def uses_batching(settings: Settings, provider: str) -> bool:
    """Batching pays on a GPU; on a CPU one image already fills every core (measured:
    ``python -m benchmark gpu`` on a CPU compares it), so ``auto`` leaves it off there."""
    return settings.batching == "on" or (settings.batching == "auto" and PROVIDERS[provider].gpu)


def _with_batch_dimension(path: Path) -> bytes:
    """The model with its batch dimension made symbolic, in memory.

    U²-Net computes every Resize target from Shape(...) at run time (no Reshape with a
    baked-in batch), so a symbolic first dimension is enough (the ``u2net-dynamic``
    build does the same on disk).
    """
    import onnx

    model = onnx.load(str(path))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.value_info[:]  # stale batch-1 shapes; onnxruntime infers them again
    data: bytes = model.SerializeToString()
    return data


def create_session(spec: ModelSpec, path: Path, provider: str, settings: Settings) -> ModelSession:
    """Create a session on exactly ``provider``, or raise ``ProviderUnavailable``.

    With batching, the network is loaded with a symbolic batch dimension, every batch
    size up to ``max_batch`` is run once (so that no request pays the first call of a
    size) and the largest that fits ``gpu_memory_mb`` is kept.
    """
    started = time.perf_counter()
    batching = uses_batching(settings, provider)
    ort_providers = providers.ort_providers(
        provider,
        cache_dir=settings.model_home / "trt-cache",
        device_id=settings.gpu_device,
        precision=settings.gpu_precision,
        memory_mb=settings.gpu_memory_mb,
    )

    def load(model: str | bytes) -> ort.InferenceSession:
        return ort.InferenceSession(model, sess_options=session_options(settings), providers=ort_providers)

    try:
        session = load(_with_batch_dimension(path) if batching else str(path))
    except Exception as exc:  # onnxruntime raises bare RuntimeError/Fail subclasses
        raise ProviderUnavailable(f"provider {provider!r} failed to start {spec.name}: {exc}") from exc
    active = session.get_providers()
    wanted = PROVIDERS[provider].ort_name
    if wanted not in active:
        raise ProviderUnavailable(
            f"provider {provider!r} did not load (onnxruntime fell back to {', '.join(active)}); "
            "check that the GPU driver and the CUDA/cuDNN libraries match onnxruntime-gpu"
        )
    model = ModelSession(
        spec=spec,
        provider=BY_ORT_NAME[active[0]],
        session=session,
        load_ms=0.0,
        _gate=threading.Semaphore(settings.inference_concurrency),
        device_id=settings.gpu_device,
    )
    if uses_graphs(settings, spec, provider):
        model.graphs = Graphs(spec.input_size, spec.mean, spec.std, load, model.device, settings.gpu_device)
    if batching:
        sizes = warm_batch_sizes(model, [b for b in BATCH_SIZES if b <= settings.max_batch])
        model.batcher = Batcher(model.run, sizes, settings.batch_window_ms / 1000, f"batcher-{spec.name}-{provider}")
    model.load_ms = (time.perf_counter() - started) * 1000
    log.info("loaded %s on %s in %.0f ms (active: %s)", spec.name, provider, model.load_ms, active)
    return model


def warm_batch_sizes(model: ModelSession, sizes: list[int]) -> list[int]:
    """Run each batch size once, smallest first; the sizes that ran (a size that does not fit
    the memory limit ends the list). Records the GPU memory held after each."""
    spec = model.spec
    ran: list[int] = []
    for size in sizes:
        batch = np.zeros((size, 3, spec.input_size, spec.input_size), np.float32)
        try:
            model.run(batch)
        except Exception as exc:
            if not ran:
                raise ProviderUnavailable(f"{spec.name} does not fit on {model.provider} at batch 1: {exc}") from exc
            log.warning(
                "%s on %s: batch %d does not fit (%s); largest batch %d", spec.name, model.provider, size, exc, ran[-1]
            )
            break
        ran.append(size)
        memory = gpu_memory_mb() if model.device == "cuda" else None
        if memory is not None:
            model.gpu_memory_mb[size] = memory
    return ran


def gpu_memory_mb() -> float | None:
    """GPU memory this process holds now (nvidia-smi), MB; None where nothing reports it."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    used = [
        float(m) for pid, _, m in (line.partition(",") for line in out.splitlines()) if pid.strip() == str(os.getpid())
    ]
    return sum(used) if used else None


class SessionCache:
    """Lazily created, shared sessions keyed by (model, provider)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sessions: dict[tuple[str, str], ModelSession] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        #: Models outside the registry, by name: their spec and weights file.
        self._local: dict[str, tuple[ModelSpec, Path]] = {}

    def register(self, spec: ModelSpec, path: Path) -> None:
        """Make ``spec``, with its weights at ``path``, available by name, beside the registry.

        For the benchmark's stand-in model (``python -m benchmark scaling``) and for
        callers with a model file of their own; a registry name cannot be replaced.
        """
        if spec.name in MODELS:
            raise InvalidOption("model", f"{spec.name} is a registry model")
        self._local[spec.name] = (spec, path)

    def get(self, model: str, provider: str) -> ModelSession:
        """The session for ``model`` on ``provider`` (``auto`` = best that loads)."""
        spec = self._local[model][0] if model in self._local else get_spec(model)
        candidates = providers.resolve(provider)
        last: ProviderUnavailable | None = None
        for name in candidates:
            try:
                return self._get_exact(spec, name)
            except ProviderUnavailable as exc:
                if provider != "auto":
                    raise
                log.warning("auto: skipping %s: %s", name, exc.message)
                last = exc
        raise last or ProviderUnavailable("no execution provider is available")

    def _get_exact(self, spec: ModelSpec, provider: str) -> ModelSession:
        key = (spec.name, provider)
        cached = self._sessions.get(key)
        if cached is not None:
            return cached
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one loader per key; others wait and then share its session
            cached = self._sessions.get(key)
            if cached is None:
                if spec.name in self._local:
                    path = self._local[spec.name][1]
                else:
                    path = ensure_model(spec, self.settings.model_home, fetch_missing=self.settings.fetch_missing)
                cached = create_session(spec, path, provider, self.settings)
                self._sessions[key] = cached
            return cached

    def loaded(self) -> list[dict[str, object]]:
        """What is loaded now (for the health endpoint)."""
        return [s.describe() for _, s in sorted(self._sessions.items())]
