"""``batch --ray``: the same job on a Ray cluster with Ray Data.

The driver (the machine running ``app.py batch``) plans the inputs, skips the
complete outputs and writes the report, exactly as a local run does. The work is
``Dataset.map_batches`` over the file list with an actor pool: ``RayRemover`` is a
callable class whose ``__init__`` creates the ``Engine`` and loads the session, so
each actor loads the model once. Each actor reads its inputs from, and writes its
outputs (atomically) to, the paths the driver names: IN and OUT must be the same
paths on every node (shared storage) for a real cluster. Only the outcomes (a few
strings per image) travel back to the driver, never the pixels.

``--ray local`` starts a throwaway single-machine cluster; ``--ray auto`` joins the
running cluster (``ray start --head``, or ``RAY_ADDRESS``); anything else is the
cluster's address (``head:6379``, or ``ray://head:10001`` for Ray Client). The code
of ``batch``, ``core`` and ``models`` is shipped with the job (``py_modules``), so
the actors run the driver's version; their dependencies (onnxruntime, Pillow, ...)
must be installed on every node, e.g. by running the project's Docker image.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from base.errors import RemovalError
from base.providers import GPU_PROVIDERS
from base.settings import Settings, SettingsError
from batch.inputs import Item
from batch.job import BatchConfig, StopFlag
from batch.outcome import Outcome
from batch.work import Worker, chunk_size, configure_worker_process
from core.options import RemovalOptions

log = logging.getLogger(__name__)

RAY_INSTALL_HINT = "Ray is not installed here; install it with: pip install -r requirements-ray.txt"
OUTCOME_FIELDS = tuple(f.name for f in dataclasses.fields(Outcome))
#: Default onnxruntime threads per CPU actor: Ray counts logical CPUs, so 2 is about
#: one physical core with SMT; more actors with fewer threads each use a node best.
DEFAULT_THREADS = 2


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


class RayRemover:
    """Ray Data callable class: one engine, its session loaded once, per actor."""

    def __init__(self, settings: Settings, options: RemovalOptions, out_root: str) -> None:
        self.worker: Worker | None = None
        self.error: RemovalError | None = None
        configure_worker_process(settings)
        try:
            self.worker = Worker(settings, options, out_root)
        except RemovalError as exc:
            # Returned with every row, so the driver stops with this one reason; raising
            # here would make Ray restart the actor over and over.
            self.error = exc

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        items = [
            Item(key=str(key), source=str(source), member=str(member), output=str(output))
            for key, source, member, output in zip(
                batch["key"], batch["source"], batch["member"], batch["output"], strict=True
            )
        ]
        if self.worker is None:
            error = self.error or RemovalError("the actor did not start")
            outcomes = [Outcome.failed(item.key, error.code, error.message, item.output) for item in items]
        else:
            outcomes = self.worker.process_many(items)
        # The stages as JSON text: a column of dicts (some None) is no plain Ray Data column.
        columns = {name: [getattr(o, name) for o in outcomes] for name in OUTCOME_FIELDS}
        columns["timings_ms"] = [json.dumps(o.timings_ms) if o.timings_ms else "" for o in outcomes]
        return columns


#: The packages an actor imports (a worker, its engine and what that stands on).
SHIPPED_PACKAGES = ("base", "models", "core", "batch")


def _shipped_code() -> list[str]:
    """Folders of the packages the actors import, shipped with the job."""
    root = Path(__file__).resolve().parent.parent
    return [str(root / package) for package in SHIPPED_PACKAGES]


def connect(address: str) -> bool:
    """Connect to (or start) the cluster; True when this call started Ray and must shut it down."""
    import ray

    if ray.is_initialized():  # a caller (a test, a notebook) already connected
        return False
    runtime_env = {"py_modules": _shipped_code()}
    if address == "local":
        # address="local" starts a new cluster even where RAY_ADDRESS names another one.
        ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING, runtime_env=runtime_env)
    else:
        ray.init(address=address, logging_level=logging.WARNING, runtime_env=runtime_env)
    return True


@dataclasses.dataclass(frozen=True)
class ActorPool:
    size: int  # actors
    num_cpus: int  # Ray resources each actor reserves
    num_gpus: int
    threads: int  # onnxruntime intra-op threads per actor (0 = the node's physical cores)


def _pool(config: BatchConfig, options: RemovalOptions) -> ActorPool:
    """How many actors, and what each reserves: one per GPU, or CPUs split into threads."""
    import ray

    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    gpus = int(resources.get("GPU", 0))
    provider = options.provider or config.settings.default_provider
    if provider in GPU_PROVIDERS or (provider == "auto" and gpus > 0):
        # One actor per GPU; Ray sets CUDA_VISIBLE_DEVICES for each.
        return ActorPool(config.workers or max(1, gpus), 1, 1, config.settings.threads)
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    per_node = max((int(node["Resources"].get("CPU", 0)) for node in nodes if node.get("Alive")), default=1)
    # An actor asking for more CPUs than any node has would never be scheduled.
    threads = max(1, min(config.settings.threads or DEFAULT_THREADS, per_node))
    size = config.workers or max(1, int(resources.get("CPU", 1)) // threads)
    return ActorPool(size, threads, 0, threads)


def execute_on_ray(
    config: BatchConfig, options: RemovalOptions, items: list[Item], stop: StopFlag, context: dict[str, Any]
) -> Iterator[Outcome]:
    """Outcomes of ``items`` as the actors finish them (in any order)."""
    if not ray_available():
        raise SettingsError(RAY_INSTALL_HINT)
    import ray
    import ray.data

    started_here = connect(config.ray or "local")
    stop.install()  # ray.init replaced our SIGTERM handler with one that exits at once
    try:
        data_context = ray.data.DataContext.get_current()
        data_context.enable_progress_bars = False  # ours (tqdm) counts images, not blocks
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        pool = _pool(config, options)
        context["runner"].update(dataclasses.asdict(pool))
        log.info(
            "running %d image(s) on Ray: %d actor(s), each %d CPU(s), %d GPU(s), %d thread(s)",
            len(items),
            pool.size,
            pool.num_cpus,
            pool.num_gpus,
            pool.threads,
        )
        settings = dataclasses.replace(config.settings, threads=pool.threads)
        dataset = ray.data.from_items(
            [dataclasses.asdict(item) for item in items],
            # Several blocks per actor, so that the pool shares the work out evenly.
            override_num_blocks=max(1, min(len(items), pool.size * 8)),
        )
        results = dataset.map_batches(
            RayRemover,
            fn_constructor_kwargs={"settings": settings, "options": options, "out_root": str(config.out.resolve())},
            # An actor's images in flight at once fill its session's batches where it batches.
            batch_size=chunk_size(settings, "cuda" if pool.num_gpus else "cpu"),
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=pool.size),
            num_cpus=pool.num_cpus,
            num_gpus=pool.num_gpus,
        )
        for row in results.iter_rows():
            yield Outcome.from_row(row)
            if stop.requested:
                # Leaving the iterator stops the dataset; an actor stopped in a write leaves
                # at most a hidden temporary file, removed by the next run.
                return
    finally:
        if started_here:
            ray.shutdown()
