"""Run a batch: plan the inputs, skip complete outputs, process the rest, write the report.

``run_batch(config)`` is the whole job; the work itself runs in one of three
places, all producing the same ``Outcome`` stream:

- inline, in this process (``--workers 1``, the default): one engine whose session
  uses every physical core (or ``--threads``);
- ``--workers N`` processes (``spawn``, so no onnxruntime state is forked), each
  with ``threads = physical_cores // N`` unless ``--threads`` is given, or on a GPU
  provider one process per GPU, each given its own ``gpu_device``;
- a Ray cluster (``--ray``, ``batch.ray_runner``).

Stopping: the first SIGINT or SIGTERM stops handing out inputs; the images in
progress finish (seconds) and the report is written, marked interrupted. A second
signal stops at once; the temporary file being written is removed, so no output
is ever partial. The exit code is then 130 (SIGINT) or 143 (SIGTERM): ``base.edges.ExitCode``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Generator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from base.cpu import physical_cores
from base.edges import ExitCode
from base.errors import RemovalError
from base.providers import GPU_PROVIDERS
from base.settings import Settings, visible_gpu_count
from base.timing import Clock
from batch import inputs
from batch.inputs import InputError, Item
from batch.job import BatchConfig, StopFlag
from batch.outcome import FAILED, FATAL_CODES, SKIPPED, Outcome, Summary, read_report, write_report
from batch.ray_runner import execute_on_ray
from batch.work import TEMP_SUFFIX, Worker, chunk_size, configure_worker_process, sweep_temporaries
from core import custom, providers
from core.options import RemovalOptions
from core.outcome import report_context
from models.fetch import ensure_model
from models.registry import get_spec

log = logging.getLogger(__name__)


class BatchAborted(RemovalError):
    """An error no input can escape (weights missing, provider cannot load) stopped the run."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Layout:
    """How many workers, with how many threads each, on which GPUs."""

    workers: int
    threads: int  # onnxruntime intra-op threads per worker (0 = all physical cores)
    provider: str  # the provider the run asks for (after resolving ``auto``)
    gpus: tuple[int, ...] = ()

    def describe(self) -> str:
        threads = "all cores" if self.threads == 0 else f"{self.threads} threads"
        return f"{self.workers} worker(s) x {threads} on {self.provider}"


@dataclass
class BatchResult:
    summary: Summary
    report: Path
    signal: int | None  # the signal that stopped the run, if one did

    @property
    def exit_code(self) -> int:
        if self.signal is not None:
            return ExitCode.stopped_by(self.signal)
        return ExitCode.FAILED if self.summary.counts[FAILED] else ExitCode.OK


def gpu_ids() -> tuple[int, ...]:
    """The GPUs this process may use, as device indices: ``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``."""
    visible = visible_gpu_count()
    if visible is not None:
        return tuple(range(visible))
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(range(sum(1 for line in listed.stdout.splitlines() if line.startswith("GPU "))))


def plan_layout(settings: Settings, options: RemovalOptions, workers: int | None) -> Layout:
    """Workers and threads for a local run: one per GPU, or the physical cores split evenly."""
    requested = options.provider or settings.default_provider
    provider = providers.resolve(requested)[0] if requested == "auto" else requested
    if provider in GPU_PROVIDERS:
        gpus = gpu_ids()
        count = workers or max(1, len(gpus))
        if gpus and count > len(gpus):
            log.warning("%d workers on %d GPU(s): workers share GPUs (one per GPU is best)", count, len(gpus))
        return Layout(count, settings.threads, provider, gpus)
    cores = physical_cores()
    count = workers or max(1, cores // 2)
    if count > cores:
        log.warning("%d workers on %d physical cores: more workers than cores only adds contention", count, cores)
    # One worker keeps the setting (0 = all cores); several split the cores between them.
    threads = settings.threads or (0 if count == 1 else max(1, cores // count))
    return Layout(count, threads, provider)


def run_batch(config: BatchConfig) -> BatchResult:
    """Run the whole job; raises ``InputError``/``SettingsError`` (usage) or ``RemovalError`` (fatal)."""
    options = config.options.validated()
    plan = inputs.plan(config.source, config.out, options.output_format)
    if plan.ignored:
        log.info("left out %d file(s) without an image extension or hidden", plan.ignored)
    prepare_out(config.out)
    swept = sweep_temporaries(config.out)
    if swept:
        log.info("removed %d temporary file(s) left by an interrupted run", swept)
    context = _context(config, options, plan.kind)
    todo, skipped = _split(config, plan.items, context)

    summary = Summary(outcomes=[*plan.refused, *skipped])
    stopper = StopFlag()
    clock = Clock()
    with stopper, logging_redirect_tqdm():
        bar = tqdm(
            total=len(todo), unit="img", desc="batch", disable=not config.progress, file=sys.stderr, smoothing=0.1
        )
        stream = _execute(config, options, todo, stopper, context)
        try:
            try:
                for outcome in stream:
                    summary.outcomes.append(outcome)
                    bar.update(1)
                    if outcome.status == FAILED:
                        if outcome.code in FATAL_CODES:
                            raise BatchAborted(outcome.code, outcome.message)
                        log.warning("%s: %s (%s)", outcome.key, outcome.message, outcome.code)
                        bar.set_postfix(failed=summary.counts[FAILED], refresh=False)
            finally:
                # Now, not at garbage collection: an abort must stop the worker processes
                # (or the Ray job) before the report is written.
                stream.close()
        except KeyboardInterrupt:
            stopper.request(stopper.signum or signal.SIGINT)
        except BaseException:
            summary.elapsed_s = clock.elapsed_s()
            write_report(config.out, summary, {**context, "aborted": True}, len(plan.items) + len(plan.refused))
            raise
        finally:
            bar.close()
    summary.elapsed_s = clock.elapsed_s()
    summary.interrupted = stopper.requested and len(summary.outcomes) < len(plan.items) + len(plan.refused)
    report = write_report(config.out, summary, context, len(plan.items) + len(plan.refused))
    return BatchResult(summary, report, stopper.signum if summary.interrupted else None)


def prepare_out(out: Path) -> None:
    """Create OUT and prove it writable before any model loads, or raise ``InputError``.

    Writing a probe file is the only test that holds everywhere: permission bits
    say nothing for root, and nothing of read-only mounts or ACLs. Without it a run
    whose outputs cannot be written processed every image first, then crashed
    writing the report. The probe has the temporary files' name, so the sweep
    removes it should the run be killed in between.
    """
    who = f"uid {os.getuid()}" if hasattr(os, "getuid") else "this user"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create OUT as {who} ({exc.strerror or exc})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", suffix=TEMP_SUFFIX, dir=out)
    except OSError as exc:
        raise InputError(f"{out}: cannot write into OUT as {who} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def _context(config: BatchConfig, options: RemovalOptions, kind: str) -> dict[str, Any]:
    context = report_context(str(config.source), kind, str(config.out), options)
    context["options"]["background_image"] = config.background_image
    return context


def _split(config: BatchConfig, items: list[Item], context: dict[str, Any]) -> tuple[list[Item], list[Outcome]]:
    """Items still to do, and outcomes for those whose output already exists (complete, see ``batch.work``)."""
    if config.overwrite:
        return list(items), []
    todo: list[Item] = []
    skipped: list[Outcome] = []
    for item in items:
        if (config.out / item.output).exists():
            skipped.append(Outcome(key=item.key, status=SKIPPED, output=item.output))
        else:
            todo.append(item)
    previous = read_report(config.out)
    # Through JSON, as the report stores them (tuples come back as lists).
    current = json.loads(json.dumps(context["options"]))
    if skipped and previous is not None and previous.get("options") != current:
        log.warning(
            "OUT holds outputs of a run with other options; they are kept as they are (--overwrite redoes them)"
        )
    return todo, skipped


def _execute(
    config: BatchConfig, options: RemovalOptions, items: list[Item], stop: StopFlag, context: dict[str, Any]
) -> Generator[Outcome, None, None]:
    if not items:  # nothing to do: load no model, start no worker
        return
    if config.ray is not None:
        context["runner"] = {"kind": "ray", "address": config.ray}
        yield from execute_on_ray(config, options, items, stop, context)
        return
    layout = plan_layout(config.settings, options, config.workers)
    context["runner"] = {
        "kind": "local",
        "workers": layout.workers,
        "threads_per_worker": layout.threads,
        "provider": layout.provider,
    }
    log.info("running %d image(s): %s", len(items), layout.describe())
    if layout.workers == 1:
        settings = dataclasses.replace(config.settings, threads=layout.threads)
        worker = Worker(settings, options, config.out)
        for chunk in _chunks(items, worker.concurrency):
            if stop.requested:
                return
            yield from worker.process_many(chunk)
        return
    yield from _run_pool(config, options, items, layout, stop)


def _chunks(items: list[Item], size: int) -> Generator[list[Item], None, None]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- worker processes -------------------------------------------------------------

_WORKER: Worker | None = None
_WORKER_ERROR: RemovalError | None = None


class Terminated(BaseException):
    """SIGTERM reached a worker process: unwind (removing its temporary file) and stop."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def _init_process(settings: Settings, options: RemovalOptions, out: str, gpus: tuple[int, ...], counter: Any) -> None:
    global _WORKER, _WORKER_ERROR
    # The driver decides when to stop (Ctrl-C reaches the whole process group).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminate)
    if gpus:
        with counter.get_lock():
            index = counter.value
            counter.value += 1
        settings = dataclasses.replace(settings, gpu_device=gpus[index % len(gpus)])
    configure_worker_process(settings)
    try:
        _WORKER = Worker(settings, options, out)
    except RemovalError as exc:  # reported with the first item; raising here would only break the pool
        _WORKER_ERROR = exc


def _process_in_worker(items: list[Item]) -> list[Outcome]:
    if _WORKER is None:
        error = _WORKER_ERROR or RemovalError("the worker did not start")
        return [Outcome.failed(item.key, error.code, error.message, item.output) for item in items]
    return _WORKER.process_many(items)


def _run_pool(
    config: BatchConfig, options: RemovalOptions, items: list[Item], layout: Layout, stop: StopFlag
) -> Generator[Outcome, None, None]:
    # Fetch once here, not N times at once in the workers (a custom model's file is the operator's).
    model = options.model or config.settings.default_model
    if model not in {custom.parse(entry)[0].name for entry in config.settings.custom_model}:
        ensure_model(
            get_spec(model),
            config.settings.model_home,
            fetch_missing=config.settings.fetch_missing,
            rembg_home=config.settings.rembg_home,
        )
    context = multiprocessing.get_context("spawn")
    settings = dataclasses.replace(config.settings, threads=layout.threads)
    executor = ProcessPoolExecutor(
        max_workers=layout.workers,
        mp_context=context,
        initializer=_init_process,
        initargs=(settings, options, str(config.out), layout.gpus, context.Value("i", 0)),
    )
    queue = _chunks(items, chunk_size(settings, layout.provider))
    pending: set[Future[list[Outcome]]] = set()

    def fill() -> None:
        # A short window of work in flight: a stop then waits for a few chunks, not the whole queue.
        while len(pending) < 2 * layout.workers and not stop.requested:
            chunk = next(queue, None)
            if chunk is None:
                return
            pending.add(executor.submit(_process_in_worker, chunk))

    clean = False
    try:
        fill()
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    yield from future.result()
                except Terminated:
                    stop.request(signal.SIGTERM)  # someone is stopping the workers; stop handing out work
            fill()
        clean = True
    except BrokenProcessPool as exc:
        if not stop.requested:
            raise BatchAborted(
                "worker_died", "a worker process died (killed, or out of memory); rerun to go on where it stopped"
            ) from exc
    finally:
        if clean:
            executor.shutdown(wait=True)
        else:
            _terminate_pool(executor)


def _terminate_pool(executor: ProcessPoolExecutor) -> None:
    """Stop now: cancel what is queued and SIGTERM the workers (each removes its temporary file)."""
    # Python < 3.14 has no public way to reach the worker processes.
    processes = list(getattr(executor, "_processes", {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
