"""CLI tier: ``app.py batch`` refuses an OUT it cannot write before any model loads, in one line.

The weights folder is empty and fetching is off, so a run that got as far as loading
a model would stop on the weights instead (exit 1): exit 2 with the OUT message shows
the check comes first. The tests run as root here (CI too), and root ignores permission
bits, so each case is one that stops root as well: OUT below a regular file, and OUT on
a read-only mount (a bind mount in a private mount namespace; as another user, plain
``chmod``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PHOTOS_DIR, ROOT


def batch(source: Path, out: Path, home: Path, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "U2NET_HOME": str(home), "REMBG_WEBUI_FETCH_MISSING": "false"}
    command = [sys.executable, "app.py", "batch", str(source), str(out), "--model", "u2netp", "--no-progress"]
    return subprocess.run([*(prefix or []), *command], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(PHOTOS_DIR / "car-1.jpg", folder / "car-1.jpg")
    (tmp_path / "empty-home").mkdir()
    return folder


def assert_one_line(result: subprocess.CompletedProcess[str], out: Path, words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("app.py: "), result.stderr
    assert str(out) in lines[0] and words in lines[0], lines[0]
    assert result.stdout == ""


def test_out_that_cannot_be_created(source: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("OUT's parent is a regular file: mkdir fails for root too\n")
    out = blocker / "out"
    result = batch(source, out, tmp_path / "empty-home")
    assert_one_line(result, out, "cannot create OUT")


def test_read_only_out(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("root needs unshare(1) to make a read-only mount")
        remount = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
        prefix = ["unshare", "--mount", "sh", "-c", remount, "sh", str(out)]
        probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.skip(f"no private read-only mount here: {probe.stderr.strip()}")
    else:
        out.chmod(0o555)
        prefix = []
    try:
        result = batch(source, out, tmp_path / "empty-home", prefix)
    finally:
        out.chmod(0o755)
    assert_one_line(result, out, "cannot write into OUT")
    assert list(out.iterdir()) == []  # no report, no probe left behind
