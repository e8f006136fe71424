"""One session per (model, provider, precision): created lazily, once, behind a lock.

A session runs on onnxruntime (``cpu``, ``cuda``, ``tensorrt``) or on OpenVINO
(``openvino``, ``core.openvino``), at a precision (``base.providers.PRECISIONS``); which
one serves a request is ``core.precision``'s choice. A model of several files (the
registry's ``companions``: sam's decoder beside its encoder) is one session holding a
network per file, all on the same runtime and provider, loaded, counted and unloaded together.

The cache is shared by every request. Inference on one session is bounded by a
semaphore (``Settings.inference_concurrency``, 1 by default): one inference already
uses every core, so a second one at once only slows both (``python -m benchmark``'s
throughput rows show it). The loaded sessions share a memory budget
(``Settings.session_memory_mb``): loading one that would exceed it first unloads the
least recently used. A model or provider that fails to load is remembered
(``failures``) so that ``/healthz`` can say why.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from base.cpu import physical_cores
from base.errors import InvalidOption, ProviderUnavailable, RemovalError
from base.memory import rss_bytes
from base.providers import BY_ORT_NAME, PROVIDERS
from base.settings import BATCH_SIZES, Settings
from base.timing import Clock
from core import providers
from core.batcher import Batcher
from core.graphs import Graphs
from core.openvino import OpenVinoSession
from models.fetch import ensure_model
from models.registry import MODELS, PLAIN_FAMILIES, ModelSpec, get_spec

log = logging.getLogger(__name__)

#: Where a run's activations live on the CPU (``python -m benchmark arena`` measures the choices):
#: ``shared``: one onnxruntime arena for every session of the process, so it holds the largest
#: single run's activations once, however many models are loaded; a run larger than
#: ``ARENA_KEEPS_INPUT_BYTES`` (a batch, a 1024-pixel model) gives its memory back after it.
#: ``session``: onnxruntime's default, one arena per session, each keeping its largest run for
#: good (a batch of 8 on u2net-dynamic pinned 2.3 GB). ``off``: no arena; the least memory, but
#: every run faults its activations in afresh (64,000 page faults a u2netp run), about a fifth
#: more CPU time per inference.
CPU_ARENA = "shared"
#: The input a run may have for the shared arena to keep what it allocated: one 320x320 image.
ARENA_KEEPS_INPUT_BYTES = 3 * 320 * 320 * 4


@functools.cache
def _shared_cpu_arena() -> None:
    """Register the process's one CPU arena with onnxruntime's environment (before any session uses it)."""
    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    # max_mem 0 (onnxruntime's default), kSameAsRequested (1): grow by what a run asks, not by doubling.
    ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, 1, -1, -1))


def _shrink_after() -> ort.RunOptions:
    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


#: A loaded session's memory, per byte of its weights file, and what every session adds besides:
#: ``python -m benchmark arena`` shows u2net's 176 MB file about 400 MiB loaded and run. A float16
#: file is widened to float32 at load (u2net-fp16: 88 MB, the same 400 MiB), which the growth of
#: the process while the session loads catches where it exceeds this estimate.
SESSION_BYTES_PER_WEIGHT_BYTE = 2.3
SESSION_BASE_BYTES = 32 * 2**20


def model_files(spec: ModelSpec, path: Path) -> list[Path]:
    """The files a session of ``spec`` loads: its weights at ``path``, then its companions beside it (sam's decoder)."""
    return [path, *(path.parent / name for name, _, _ in spec.companions)]


def session_bytes(paths: Path | Sequence[Path], grew: int | None = None) -> int:
    """The memory a session of the weights at ``paths`` (one file, or a model's files together) is
    counted for in the budget.

    ``grew``: how much the process grew while the session loaded (other requests allocate
    meanwhile too, so it is only believed up to four times the estimate).
    """
    estimate = 0
    for path in [paths] if isinstance(paths, Path) else paths:
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        estimate += int(size * SESSION_BYTES_PER_WEIGHT_BYTE) + SESSION_BASE_BYTES
    if grew is None:
        return estimate
    return max(estimate, min(grew, 4 * estimate))


@dataclass
class ModelSession:
    """A loaded model on one provider at one precision, plus what is needed to feed it."""

    spec: ModelSpec
    provider: str  # our name of the provider that really runs (read back from the session)
    session: ort.InferenceSession | OpenVinoSession
    load_ms: float
    _gate: threading.Semaphore = field(repr=False)
    device_id: int = 0  # which GPU, for IO binding on an accelerator
    #: Pre- and post-processing on the provider (``processing = graph``); None: exact, on the CPU.
    graphs: Graphs | None = field(default=None, repr=False)
    #: Gathers concurrent requests into batches (``batching``); None: one call per request.
    batcher: Batcher | None = field(default=None, repr=False)
    #: GPU memory the process held after warming each batch size, MB (where a GPU reports it).
    gpu_memory_mb: dict[int, float] = field(default_factory=dict)
    #: What the session is counted for in the cache's memory budget (``session_bytes``).
    memory_bytes: int = 0
    #: The precision it computes at (``base.providers.PRECISIONS``): fp32, bf16, int8 (the
    #: weights are a QDQ build), tf32 (CUDA) or fp16 (TensorRT).
    precision: str = "fp32"
    #: The networks of the registry entry's ``companions`` (sam's decoder), in its order, on the same
    #: runtime and provider; their family runs them (``run_feeds``).
    companions: tuple[ort.InferenceSession | OpenVinoSession, ...] = field(default=(), repr=False)

    @property
    def runtime(self) -> str:
        """onnxruntime or openvino."""
        return PROVIDERS[self.provider].runtime

    @property
    def backend(self) -> str:
        """Runtime and provider in one word, as the ``X-Backend`` header says it: ``onnxruntime-cpu``."""
        return f"{self.runtime}-{PROVIDERS[self.provider].device if self.runtime == 'openvino' else self.provider}"

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
            if isinstance(self.session, OpenVinoSession):
                return np.asarray(self.session.run([self.output_name], {self.input_name: batch})[0])
            if self.provider == "cpu":
                # A run larger than the shared arena keeps would otherwise stay resident for good.
                options = _shrink_after() if batch.nbytes > ARENA_KEEPS_INPUT_BYTES else None
                return np.asarray(self.session.run([self.output_name], {self.input_name: batch}, options)[0])
            return run_bound(self.session, batch, device=self.device, device_id=self.device_id)

    def run_feeds(self, feeds: Mapping[str, np.ndarray], part: int = 0) -> list[np.ndarray]:
        """Every output of network ``part`` (0: the model's file; 1...: its companions) for the named
        ``feeds``: for a family that runs its own inference (sam's encoder, then its decoder)."""
        session = self.session if part == 0 else self.companions[part - 1]
        names = [output.name for output in session.get_outputs()]
        with self._gate:
            if isinstance(session, OpenVinoSession):
                return [np.asarray(out) for out in session.run(names, feeds)]
            large = self.provider == "cpu" and sum(value.nbytes for value in feeds.values()) > ARENA_KEEPS_INPUT_BYTES
            return [np.asarray(out) for out in session.run(names, dict(feeds), _shrink_after() if large else None)]

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
            "runtime": self.runtime,
            "precision": self.precision,
            "load_ms": round(self.load_ms, 1),
            "memory_mib": round(self.memory_bytes / 2**20),
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
    # A server's inference threads share the cores with other requests' decoding and encoding and with
    # other sessions (OpenVINO's, tune's candidates): idle threads that spin take those cores from them.
    # Measured through REST at 1 and 4 clients, spinning off was as fast or faster (docs/cpu-precision.md).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.enable_cpu_mem_arena = CPU_ARENA != "off"
    if CPU_ARENA == "shared":
        _shared_cpu_arena()
        opts.add_session_config_entry("session.use_env_allocators", "1")
    return opts


def uses_graphs(settings: Settings, spec: ModelSpec, provider: str) -> bool:
    """Whether pre/post-processing runs as graphs on ``provider`` for ``spec`` (onnxruntime graphs:
    on OpenVINO, Pillow prepares the input as everywhere else on the CPU)."""
    wanted = settings.processing == "graph" or (settings.processing == "auto" and PROVIDERS[provider].gpu)
    return wanted and spec.family in PLAIN_FAMILIES and PROVIDERS[provider].runtime == "onnxruntime"


def uses_batching(settings: Settings, provider: str) -> bool:
    """Batching pays on a GPU; on a CPU one image already fills every core (measured:
    ``python -m benchmark gpu`` on a CPU compares it), so ``auto`` leaves it off there, and
    OpenVINO sessions are compiled for one image."""
    if PROVIDERS[provider].runtime != "onnxruntime":
        return False
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


def precision_on(provider: str, precision: str) -> str:
    """The precision a session on ``provider`` really computes at, asked for ``precision``.

    TensorRT always builds fp16 engines (``core.providers.provider_options``); CUDA runs
    fp32 or tf32; the CPU runtimes run what they are asked.
    """
    if provider == "tensorrt":
        return "fp16"
    if provider == "cuda":
        return "tf32" if precision == "tf32" else "fp32"
    if precision not in ("fp32", "bf16", "int8"):
        raise InvalidOption("precision", f"{provider} runs fp32, bf16 or int8, not {precision}")
    if provider == "cpu" and precision == "bf16":
        raise InvalidOption("precision", "bf16 runs on OpenVINO (provider openvino), not on onnxruntime's CPU")
    return precision


def create_openvino_session(
    spec: ModelSpec, path: Path, provider: str, settings: Settings, precision: str
) -> ModelSession:
    """A session of ``spec`` on OpenVINO's CPU plugin at ``precision``, or ``ProviderUnavailable``."""
    clock = Clock()
    before = rss_bytes()
    info = providers.provider_info(provider)
    if not info.available:
        raise ProviderUnavailable(f"provider {provider!r} is unavailable: {info.reason}")
    files = model_files(spec, path)
    try:
        session, *companions = (
            OpenVinoSession(
                file, precision, settings.threads or physical_cores(), requests=settings.inference_concurrency
            )
            for file in files
        )
    except Exception as exc:  # OpenVINO raises bare RuntimeError subclasses
        raise ProviderUnavailable(f"provider {provider!r} failed to start {spec.name} at {precision}: {exc}") from exc
    after = rss_bytes()
    grew = after - before if after is not None and before is not None else None
    model = ModelSession(
        spec=spec,
        provider=provider,
        session=session,
        load_ms=0.0,
        _gate=threading.Semaphore(settings.inference_concurrency),
        memory_bytes=session_bytes(files, grew),
        precision=precision,
        companions=tuple(companions),
    )
    # OpenVINO finishes preparing its kernels on the first inference: pay it at load, not in a request
    # (a model of several networks, fed by its family, pays it on its first request).
    if not spec.companions:
        model.run(np.zeros((1, 3, spec.input_size, spec.input_size), np.float32))
    model.load_ms = clock.elapsed_ms()
    log.info("loaded %s on %s (%s) in %.0f ms", spec.name, provider, precision, model.load_ms)
    return model


def create_session(
    spec: ModelSpec, path: Path, provider: str, settings: Settings, precision: str = "fp32"
) -> ModelSession:
    """Create a session on exactly ``provider`` at ``precision``, or raise ``ProviderUnavailable``.

    With batching, the network is loaded with a symbolic batch dimension, every batch
    size up to ``max_batch`` is run once (so that no request pays the first call of a
    size) and the largest that fits ``gpu_memory_mb`` is kept.
    """
    precision = precision_on(provider, precision)
    if PROVIDERS[provider].runtime == "openvino":
        return create_openvino_session(spec, path, provider, settings, precision)
    clock = Clock()
    before = rss_bytes()
    # A model of several networks is fed by its family, one image at a time.
    batching = uses_batching(settings, provider) and not spec.companions
    files = model_files(spec, path)
    ort_providers = providers.ort_providers(
        provider,
        cache_dir=settings.model_home / "trt-cache",
        device_id=settings.gpu_device,
        precision=precision,
        memory_mb=settings.gpu_memory_mb,
    )

    def load(model: str | bytes) -> ort.InferenceSession:
        return ort.InferenceSession(model, sess_options=session_options(settings), providers=ort_providers)

    try:
        session = load(_with_batch_dimension(path) if batching else str(path))
        companions = tuple(load(str(file)) for file in files[1:])
    except Exception as exc:  # onnxruntime raises bare RuntimeError/Fail subclasses
        raise ProviderUnavailable(f"provider {provider!r} failed to start {spec.name}: {exc}") from exc
    active = session.get_providers()
    wanted = PROVIDERS[provider].ort_name
    if any(wanted not in part.get_providers() for part in (session, *companions)):
        raise ProviderUnavailable(
            f"provider {provider!r} did not load (onnxruntime fell back to {', '.join(active)}); "
            "check that the GPU driver and the CUDA/cuDNN libraries match onnxruntime-gpu"
        )
    after = rss_bytes()
    grew = after - before if after is not None and before is not None else None
    model = ModelSession(
        spec=spec,
        provider=BY_ORT_NAME[active[0]],
        session=session,
        load_ms=0.0,
        _gate=threading.Semaphore(settings.inference_concurrency),
        device_id=settings.gpu_device,
        memory_bytes=session_bytes(files, grew),
        precision=precision,
        companions=companions,
    )
    if uses_graphs(settings, spec, provider):
        model.graphs = Graphs(spec.input_size, spec.mean, spec.std, load, model.device, settings.gpu_device)
    if batching:
        sizes = warm_batch_sizes(model, [b for b in BATCH_SIZES if b <= settings.max_batch])
        model.batcher = Batcher(model.run, sizes, settings.batch_window_ms / 1000, f"batcher-{spec.name}-{provider}")
    model.load_ms = clock.elapsed_ms()
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
    """Lazily created, shared sessions keyed by (model, provider, precision), within a memory budget."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sessions: dict[tuple[str, str, str], ModelSession] = {}
        self._used: dict[tuple[str, str, str], float] = {}  # key -> when it was last handed out
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        #: Models outside the registry, by name: their spec and weights file.
        self._local: dict[str, tuple[ModelSpec, Path]] = {}
        #: (model, provider) -> why it last failed to load; cleared by a later success.
        self.failures: dict[tuple[str, str], RemovalError] = {}

    def register(self, spec: ModelSpec, path: Path) -> None:
        """Make ``spec``, with its weights at ``path``, available by name, beside the registry.

        For the benchmark's stand-in model (``python -m benchmark scaling``) and for
        callers with a model file of their own; a registry name cannot be replaced.
        """
        if spec.name in MODELS:
            raise InvalidOption("model", f"{spec.name} is a registry model")
        self._local[spec.name] = (spec, path)

    def get(self, model: str, provider: str, precision: str = "fp32") -> ModelSession:
        """The session for ``model`` on ``provider`` (``auto`` = best that loads) at ``precision``
        (on a GPU: fp32, or tf32 where ``--gpu-precision tf32`` asks for it on CUDA)."""
        spec = self._local[model][0] if model in self._local else get_spec(model)
        candidates = providers.resolve(provider)
        last: ProviderUnavailable | None = None
        for name in candidates:
            wanted = "tf32" if name == "cuda" and self.settings.gpu_precision == "tf32" else precision
            if wanted == "tf32" and name != "cuda":  # fast on a GPU, where auto ended up on the CPU
                wanted = "fp32"
            try:
                return self._get_exact(spec, name, precision_on(name, wanted))
            except ProviderUnavailable as exc:
                if provider != "auto":
                    raise
                log.warning("auto: skipping %s: %s", name, exc.message)
                last = exc
        raise last or ProviderUnavailable("no execution provider is available")

    def _get_exact(self, spec: ModelSpec, provider: str, precision: str) -> ModelSession:
        key = (spec.name, provider, precision)
        cached = self._sessions.get(key)
        if cached is not None:
            self._used[key] = time.monotonic()
            return cached
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one loader per key; others wait and then share its session
            cached = self._sessions.get(key)
            if cached is None:
                try:
                    if spec.name in self._local:
                        path = self._local[spec.name][1]
                    else:
                        path = ensure_model(
                            spec,
                            self.settings.model_home,
                            fetch_missing=self.settings.fetch_missing,
                            rembg_home=self.settings.rembg_home,
                        )
                    self._make_room(session_bytes(model_files(spec, path)), key)
                    cached = create_session(spec, path, provider, self.settings, precision)
                except RemovalError as exc:
                    self.failures[key[:2]] = exc
                    raise
                self.failures.pop(key[:2], None)
                with self._guard:
                    self._sessions[key] = cached
            self._used[key] = time.monotonic()
            return cached

    def _make_room(self, needed: int, key: tuple[str, str, str]) -> None:
        """Unload the least recently used sessions until ``needed`` more bytes fit the budget.

        A request still running on an unloaded session keeps it alive until it finishes
        (its batcher, closed, runs such late inputs alone).
        """
        budget = self.settings.session_memory_mb * 2**20
        if not budget:
            return
        unloaded: list[ModelSession] = []
        with self._guard:
            while self._sessions and sum(s.memory_bytes for s in self._sessions.values()) + needed > budget:
                oldest = min(self._sessions, key=lambda k: self._used.get(k, 0.0))
                gone = self._sessions.pop(oldest)
                unloaded.append(gone)
                self._used.pop(oldest, None)
                log.info(
                    "unloaded %s on %s (least recently used) to load %s within --session-memory-mb %d",
                    oldest[0],
                    gone.provider,
                    key[0],
                    self.settings.session_memory_mb,
                )
        for gone in unloaded:
            gone.close()
        if needed > budget:
            log.warning(
                "%s alone is counted for %.0f MiB, over --session-memory-mb %d; loading it anyway",
                key[0],
                needed / 2**20,
                self.settings.session_memory_mb,
            )

    def keys(self) -> list[tuple[str, str]]:
        """(model, provider) of every loaded session (once, whatever its precisions)."""
        with self._guard:
            return list(dict.fromkeys(key[:2] for key in self._sessions))

    def loaded(self) -> list[dict[str, object]]:
        """What is loaded now (for the health endpoint)."""
        with self._guard:
            sessions = sorted(self._sessions.items())
        return [s.describe() for _, s in sessions]
