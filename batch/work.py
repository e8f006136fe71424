"""One input to one output: read, remove the background, write atomically.

``Worker`` is what runs wherever the work runs: in the local process, in each
``--workers`` process and in each Ray actor. It owns one ``Engine`` whose session
is loaded in ``__init__``, so a worker pays the model load once, and it turns every
error of one input into a failed ``Outcome`` so that the rest go on.

Completeness: an output exists under its final name only after ``base.files.atomic_write``
renamed a fully written (and fsynced) temporary file in the same folder, so existence
alone says an output is complete; a rerun skips existing outputs and never rewrites
them. Temporary files are hidden (``.NAME.<random>.rembg-part``): a stop by signal
removes the one being written, and ``sweep_temporaries`` clears those a killed run
left behind.
"""

from __future__ import annotations

import functools
import logging
import os
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from base.errors import ImageTooLarge, InvalidImage, RemovalError
from base.files import atomic_write
from base.memory import return_large_frees
from base.settings import Settings
from base.timing import Clock
from batch.inputs import Item
from batch.outcome import Outcome
from core.options import RemovalOptions
from core.pipeline import Engine
from core.sessions import uses_batching

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".rembg-part"


def sweep_temporaries(out: Path) -> int:
    """Remove temporary files that a killed run (SIGKILL, power loss) left in ``out``."""
    removed = 0
    if not out.is_dir():
        return 0
    for folder, _, files in os.walk(out):
        for name in files:
            if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
    return removed


@functools.lru_cache(maxsize=4)
def _open_zip(path: str) -> zipfile.ZipFile:
    # Kept open: re-reading the central directory for every member of a large zip is slow.
    return zipfile.ZipFile(path)


def read_input(item: Item, max_bytes: int) -> bytes | str:
    """The input's bytes (zip member) or its path (file; the engine reads and checks it)."""
    if not item.member:
        return item.source
    try:
        archive = _open_zip(item.source)
        info = archive.getinfo(item.member)
        # Checked before inflating: a zip bomb's member claims its size up front.
        if info.file_size > max_bytes:
            raise ImageTooLarge(f"the file is {info.file_size:,} bytes; the limit is {max_bytes:,} bytes")
        return archive.read(info)
    except (OSError, KeyError, zipfile.BadZipFile, RuntimeError) as exc:
        # RuntimeError: an encrypted member; BadZipFile: a CRC mismatch or damage.
        raise InvalidImage(f"cannot read the zip member: {exc}") from None


def chunk_size(settings: Settings, provider: str) -> int:
    """Images a worker takes at once: enough to fill a batch where its session batches."""
    return settings.max_batch if uses_batching(settings, provider) else 1


def configure_worker_process(settings: Settings) -> None:
    """Process-wide state that ``app.configure_process`` sets, for processes app.py did not
    start (``--workers`` processes, Ray actors): Pillow's decompression-bomb limit, which the
    decoder turns into ``ImageTooLarge`` (without it a worker would refuse other images), and
    freed images returned to the system."""
    from PIL import Image

    return_large_frees()
    Image.MAX_IMAGE_PIXELS = settings.max_pixels


class Worker:
    """An engine with its session loaded, and the options and OUT of one run."""

    def __init__(self, settings: Settings, options: RemovalOptions, out_root: str | Path) -> None:
        self.engine = Engine(settings)
        self.options = options.validated()
        self.out_root = Path(out_root)
        # Load now: the first image is then not slower than the rest, and a model or
        # provider that cannot load fails here, once, not on every image.
        session = self.engine.load(self.options)
        self.provider = session.provider
        # Where the session batches (an accelerator), images in flight at once fill its batches.
        self.concurrency = session.batcher.largest if session.batcher else 1
        self._pool = ThreadPoolExecutor(self.concurrency, "batch-image") if self.concurrency > 1 else None

    def process_many(self, items: Sequence[Item]) -> list[Outcome]:
        """``process`` for each item, up to ``concurrency`` at once (their inferences share batches)."""
        if self._pool is None or len(items) < 2:
            return [self.process(item) for item in items]
        return list(self._pool.map(self.process, items))

    def process(self, item: Item) -> Outcome:
        """Run one item; every error becomes a failed outcome naming its code and reason."""
        clock = Clock()
        target = self.out_root / item.output
        try:
            result = self.engine.remove(read_input(item, self.engine.limits.max_bytes), self.options)
            atomic_write(target, result.data, suffix=TEMP_SUFFIX)
        except RemovalError as exc:
            model = self.options.model or self.engine.settings.default_model
            return Outcome.failed(item.key, exc.code, exc.message, item.output, clock.elapsed_ms(), model)
        except OSError as exc:  # writing: disk full, permissions
            return Outcome.failed(item.key, "write_error", f"cannot write {target}: {exc.strerror or exc}", item.output)
        except Exception as exc:  # one unexpected bug must not end a run of thousands (logged with its traceback)
            log.exception("unexpected error on %s", item.key)
            return Outcome.failed(item.key, "internal_error", f"{type(exc).__name__}: {exc}", item.output)
        return Outcome.done(item.key, item.output, result.model, result.provider, result.timings, clock.elapsed_ms())
