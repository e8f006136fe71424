"""One onnxruntime session per (model, provider): created lazily, once, behind a lock.

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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from base.cpu import physical_cores
from base.errors import ProviderUnavailable, RemovalError
from base.memory import rss_bytes
from base.providers import BY_ORT_NAME, PROVIDERS
from base.settings import Settings
from core import providers
from models.fetch import ensure_model
from models.registry import ModelSpec, get_spec

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


def session_bytes(path: Path, grew: int | None = None) -> int:
    """The memory a session of the weights at ``path`` is counted for in the budget.

    ``grew``: how much the process grew while the session loaded (other requests allocate
    meanwhile too, so it is only believed up to four times the estimate).
    """
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    estimate = int(size * SESSION_BYTES_PER_WEIGHT_BYTE) + SESSION_BASE_BYTES
    if grew is None:
        return estimate
    return max(estimate, min(grew, 4 * estimate))


@dataclass
class ModelSession:
    """A loaded model on one provider, plus what is needed to feed it."""

    spec: ModelSpec
    provider: str  # our name of the provider that really runs (read back from the session)
    session: ort.InferenceSession
    load_ms: float
    _gate: threading.Semaphore = field(repr=False)
    device_id: int = 0  # which GPU, for IO binding on an accelerator
    #: What the session is counted for in the cache's memory budget (``session_bytes``).
    memory_bytes: int = 0

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

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on an Nx3xSxS float32 batch; returns output 0 (Nx1xSxS).

        Only output 0 (the fused mask) is fetched: U²-Net's six side outputs stay
        where they were computed, which on a GPU saves six device-to-host copies.
        """
        with self._gate:
            if self.provider == "cpu":
                # A run larger than the shared arena keeps would otherwise stay resident for good.
                options = _shrink_after() if batch.nbytes > ARENA_KEEPS_INPUT_BYTES else None
                return np.asarray(self.session.run([self.output_name], {self.input_name: batch}, options)[0])
            return run_bound(self.session, batch, device=PROVIDERS[self.provider].device, device_id=self.device_id)


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
    opts.enable_cpu_mem_arena = CPU_ARENA != "off"
    if CPU_ARENA == "shared":
        _shared_cpu_arena()
        opts.add_session_config_entry("session.use_env_allocators", "1")
    return opts


def create_session(spec: ModelSpec, path: Path, provider: str, settings: Settings) -> ModelSession:
    """Create a session on exactly ``provider``, or raise ``ProviderUnavailable``."""
    started = time.perf_counter()
    before = rss_bytes()
    try:
        session = ort.InferenceSession(
            str(path),
            sess_options=session_options(settings),
            providers=providers.ort_providers(
                provider, cache_dir=settings.model_home / "trt-cache", device_id=settings.gpu_device
            ),
        )
    except Exception as exc:  # onnxruntime raises bare RuntimeError/Fail subclasses
        raise ProviderUnavailable(f"provider {provider!r} failed to start {spec.name}: {exc}") from exc
    active = session.get_providers()
    wanted = PROVIDERS[provider].ort_name
    if wanted not in active:
        raise ProviderUnavailable(
            f"provider {provider!r} did not load (onnxruntime fell back to {', '.join(active)}); "
            "check that the GPU driver and the CUDA/cuDNN libraries match onnxruntime-gpu"
        )
    load_ms = (time.perf_counter() - started) * 1000
    after = rss_bytes()
    grew = after - before if after is not None and before is not None else None
    log.info("loaded %s on %s in %.0f ms (active: %s)", spec.name, provider, load_ms, active)
    return ModelSession(
        spec=spec,
        provider=BY_ORT_NAME[active[0]],
        session=session,
        load_ms=load_ms,
        _gate=threading.Semaphore(settings.inference_concurrency),
        device_id=settings.gpu_device,
        memory_bytes=session_bytes(path, grew),
    )


class SessionCache:
    """Lazily created, shared sessions keyed by (model, provider), within a memory budget."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sessions: dict[tuple[str, str], ModelSession] = {}
        self._used: dict[tuple[str, str], float] = {}  # key -> when it was last handed out
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        #: (model, provider) -> why it last failed to load; cleared by a later success.
        self.failures: dict[tuple[str, str], RemovalError] = {}

    def get(self, model: str, provider: str) -> ModelSession:
        """The session for ``model`` on ``provider`` (``auto`` = best that loads)."""
        spec = get_spec(model)
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
            self._used[key] = time.monotonic()
            return cached
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one loader per key; others wait and then share its session
            cached = self._sessions.get(key)
            if cached is None:
                try:
                    path = ensure_model(spec, self.settings.model_home, fetch_missing=self.settings.fetch_missing)
                    self._make_room(session_bytes(path), key)
                    cached = create_session(spec, path, provider, self.settings)
                except RemovalError as exc:
                    self.failures[key] = exc
                    raise
                self.failures.pop(key, None)
                with self._guard:
                    self._sessions[key] = cached
            self._used[key] = time.monotonic()
            return cached

    def _make_room(self, needed: int, key: tuple[str, str]) -> None:
        """Unload the least recently used sessions until ``needed`` more bytes fit the budget.

        A request still running on an unloaded session keeps it alive until it finishes.
        """
        budget = self.settings.session_memory_mb * 2**20
        if not budget:
            return
        with self._guard:
            while self._sessions and sum(s.memory_bytes for s in self._sessions.values()) + needed > budget:
                oldest = min(self._sessions, key=lambda k: self._used.get(k, 0.0))
                gone = self._sessions.pop(oldest)
                self._used.pop(oldest, None)
                log.info(
                    "unloaded %s on %s (least recently used) to load %s within --session-memory-mb %d",
                    oldest[0],
                    gone.provider,
                    key[0],
                    self.settings.session_memory_mb,
                )
        if needed > budget:
            log.warning(
                "%s alone is counted for %.0f MiB, over --session-memory-mb %d; loading it anyway",
                key[0],
                needed / 2**20,
                self.settings.session_memory_mb,
            )

    def keys(self) -> list[tuple[str, str]]:
        """(model, provider) of every loaded session; the provider as asked for."""
        with self._guard:
            return list(self._sessions)

    def loaded(self) -> list[dict[str, object]]:
        """What is loaded now (for the health endpoint)."""
        with self._guard:
            sessions = sorted(self._sessions.items())
        return [
            {
                "model": m,
                "provider": s.provider,
                "load_ms": round(s.load_ms, 1),
                "memory_mib": round(s.memory_bytes / 2**20),
            }
            for (m, _), s in sessions
        ]
