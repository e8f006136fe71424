"""Unit tier: the UI's result store (``ui.handlers.OutputStore``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ui.handlers import OutputStore


def _results(root: Path) -> list[str]:
    return sorted(p.name for folder in root.iterdir() for p in folder.iterdir())


def test_write_is_atomic_and_leaves_only_the_result(tmp_path: Path) -> None:
    store = OutputStore(tmp_path)
    path = store.write(b"bytes", "cutout.png")
    assert path.read_bytes() == b"bytes" and path.parent.parent == tmp_path
    assert _results(tmp_path) == ["cutout.png"]


def test_results_older_than_max_age_are_pruned(tmp_path: Path) -> None:
    store = OutputStore(tmp_path, max_age_s=60)
    old = store.write(b"old", "old.png")
    hour_ago = time.time() - 3600
    os.utime(old.parent, (hour_ago, hour_ago))
    store.write(b"new", "new.png")
    assert _results(tmp_path) == ["new.png"]


def test_never_more_than_max_files(tmp_path: Path) -> None:
    store = OutputStore(tmp_path, max_files=3)
    paths = []
    for i in range(5):
        paths.append(store.write(b"x", f"{i}.png"))
        stamp = time.time() - 100 + i  # distinct, increasing ages
        os.utime(paths[-1].parent, (stamp, stamp))
    assert _results(tmp_path) == ["2.png", "3.png", "4.png"]  # the newest three
