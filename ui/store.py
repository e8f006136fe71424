"""``OutputStore``: where the WebUI's encoded results are written for Gradio to serve, and pruned."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from base.files import atomic_write
from core import RemovalResult
from core.formats import FORMATS


class OutputStore:
    """Where encoded results are written for Gradio to serve; old files are pruned.

    A result is kept for ``max_age_s`` (so a download link works for a while) but
    never more than ``max_files`` of them: at a sustained rate the age alone would let
    the folder grow to rate x max_age_s files.
    """

    def __init__(self, root: Path, max_age_s: float = 3600, max_files: int = 2000) -> None:
        self.root = root
        self.max_age_s = max_age_s
        self.max_files = max_files
        root.mkdir(parents=True, exist_ok=True)

    def write(self, data: bytes, name: str) -> Path:
        self.prune()
        # A folder per result, named to be unguessable and unique (not a request id: nothing logs it);
        # never a half-written file under the served name.
        return atomic_write(self.root / uuid.uuid4().hex / name, data)

    def prune(self) -> None:
        """Remove results older than ``max_age_s``, then the oldest beyond ``max_files - 1``."""
        cutoff = time.time() - self.max_age_s
        kept: list[tuple[float, Path]] = []
        for folder in self.root.iterdir():
            try:
                mtime = folder.stat().st_mtime
            except OSError:
                continue  # another request pruned it first
            if mtime < cutoff:
                self._remove(folder)
            else:
                kept.append((mtime, folder))
        if len(kept) >= self.max_files:  # leave room for the result about to be written
            kept.sort()
            for _, folder in kept[: len(kept) - self.max_files + 1]:
                self._remove(folder)

    @staticmethod
    def _remove(folder: Path) -> None:
        try:
            for f in folder.iterdir():
                f.unlink(missing_ok=True)
            folder.rmdir()
        except OSError:
            pass  # another request removed it first


def output_name(source: str | None, result: RemovalResult) -> str:
    """The download's name: the input's stem, ``-cutout`` or ``-mask``, the format's extension."""
    stem = Path(source).stem if source else "image"
    suffix = "mask" if result.image.mode == "L" else "cutout"
    return f"{stem}-{suffix}{FORMATS[result.format].extension}"
