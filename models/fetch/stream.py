"""What every downloading source shares: the error one attempt raises, and the copy that hashes as it writes."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import IO

from tqdm import tqdm

#: Read/hash granularity; large enough to be fast, small enough to bound memory.
CHUNK = 1 << 20
#: How much of a downloader's or pip's own message an error quotes.
MESSAGE_CHARS = 200


class SourceError(Exception):
    """One attempt at one source failed; ``retry`` says whether trying again may help."""

    def __init__(self, phrase: str, *, retry: bool) -> None:
        super().__init__(phrase)
        self.phrase = phrase
        self.retry = retry


def copy_hashing(
    read: Callable[[int], bytes],
    out: IO[bytes],
    *,
    total: int | None,
    label: str,
    progress: bool,
    deadline: float | None = None,
    deadline_s: float = 0.0,
) -> tuple[str, int]:
    """Stream ``read`` into ``out`` while hashing; return (md5, bytes copied).

    ``deadline``: a ``time.monotonic()`` after which the copy gives up (it was ``deadline_s``
    from the start, for the message).
    """
    digest = hashlib.md5(usedforsecurity=False)
    copied = 0
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=label,
        disable=not progress,
    ) as bar:
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise SourceError(f"download took longer than {deadline_s:g}s", retry=True)
            chunk = read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            out.write(chunk)
            copied += len(chunk)
            bar.update(len(chunk))
    return digest.hexdigest(), copied
