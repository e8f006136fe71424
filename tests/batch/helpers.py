"""Builders for the batch tests: input trees with real and broken images, and the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from tests.conftest import PHOTOS_DIR, ROOT

#: Real photos in nested folders (the small ones: the tier should stay quick on 2 cores).
GOOD = {
    "car-1.jpg": "car-1.jpg",
    "rocket.jpg": "rocket.jpg",
    "people/anime-girl-1.jpg": "anime-girl-1.jpg",
    "people/space/astronaut.png": "astronaut.png",
    "animals/chelsea.png": "chelsea.png",
    "things/coffee.png": "coffee.png",
}
#: Broken inputs, by name, that must each fail with ``invalid_image`` and let the rest go on.
BROKEN = ("broken/not-an-image.jpg", "broken/truncated.jpg", "broken/empty.png")


def build_tree(root: Path) -> Path:
    """IN: ``GOOD`` copied from assets/photos, ``BROKEN`` made up, and files batch must leave out."""
    for rel, name in GOOD.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PHOTOS_DIR / name, root / rel)
    (root / "broken").mkdir(parents=True, exist_ok=True)
    (root / BROKEN[0]).write_text("this is text, not a JPEG\n")
    (root / BROKEN[1]).write_bytes((PHOTOS_DIR / "cloth-1.jpg").read_bytes()[:20_000])
    (root / BROKEN[2]).write_bytes(b"")
    (root / "notes.txt").write_text("left out: not an image extension\n")
    (root / ".hidden.png").write_bytes((PHOTOS_DIR / "car-1.jpg").read_bytes())
    return root


def zip_tree(root: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    return archive


def run_batch(source: Path, out: Path, *flags: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python app.py batch SOURCE OUT --model u2netp FLAGS`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "app.py", "batch", str(source), str(out), "--model", "u2netp", "--no-progress", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "REMBG_WEBUI_LOG_LEVEL": "warning"},
    )


def outputs(out: Path) -> dict[str, bytes]:
    """Every file under OUT but the report, by relative path."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "_report.json"
    }


def report(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "_report.json").read_text())
    return data


def failures(out: Path) -> list[tuple[str, str, str]]:
    return [(f["input"], f["code"], f["message"]) for f in report(out)["failures"]]


def leftovers(out: Path) -> list[str]:
    """Hidden or temporary files under OUT: there must never be any after a run."""
    return [p.relative_to(out).as_posix() for p in out.rglob("*") if p.name.startswith(".") or "part" in p.suffix]
