"""``python app.py remove``: one image from the command line, through the real engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from base.edges import ExitCode
from core import Engine, RemovalOptions
from tests.conftest import PHOTOS_DIR, ROOT, alpha_of, mask_agreement

pytestmark = pytest.mark.model


def run_remove(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "app.py", "remove", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_remove_writes_the_cutout_in_the_suffix_format(tmp_path: Path, engine: Engine) -> None:
    out = tmp_path / "car.webp"
    done = run_remove(PHOTOS_DIR / "car-1.jpg", out, "--model", "u2netp")
    assert done.returncode == 0, done.stderr
    written = Image.open(out)
    assert written.format == "WEBP" and written.mode == "RGBA"
    expected = engine.remove((PHOTOS_DIR / "car-1.jpg").read_bytes(), RemovalOptions(model="u2netp"))
    mad, iou = mask_agreement(alpha_of(written), alpha_of(expected.image))
    assert mad <= 0.5 and iou >= 0.999, (mad, iou)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["car.webp"]  # no temporary file left


def test_remove_flags_reach_the_engine(tmp_path: Path) -> None:
    out = tmp_path / "car.jpg"
    done = run_remove(PHOTOS_DIR / "car-1.jpg", out, "--model", "u2netp", "--only-mask", "--format", "png")
    assert done.returncode == 0, done.stderr
    mask = Image.open(out)
    assert mask.format == "PNG" and mask.mode == "L"
    assert set(np.unique(np.asarray(mask))) - {0, 255}  # a soft mask, not a cutout


@pytest.mark.parametrize(
    ("args", "code", "mentions"),
    [
        (["--background-image", "/nonexistent.png"], 2, "--background-image"),
        (["--bgcolor", "300,0,0"], 2, "bgcolor"),
        (["--model", "../../etc/passwd"], 2, "model"),
    ],
    ids=["missing-background", "bad-colour", "path-as-model"],
)
def test_remove_bad_flags_fail_in_one_line(tmp_path: Path, args: list[str], code: int, mentions: str) -> None:
    out = tmp_path / "out.png"
    done = run_remove(PHOTOS_DIR / "car-1.jpg", out, *args)
    assert done.returncode == code
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("app.py: ") and mentions in done.stderr
    assert not list(tmp_path.iterdir())


def test_remove_not_an_image(tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    done = run_remove(bad, tmp_path / "out.png")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("command", ["remove", "batch"])
def test_a_bad_flag_exits_2_whichever_check_catches_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """``--quality abc`` (not a number) and ``--quality 500`` (out of range) are the same mistake: exit 2,
    one line naming the flag, nothing written; the same code from ``remove`` and ``batch``."""
    import app

    (tmp_path / "in").mkdir()
    source = PHOTOS_DIR / "car-1.jpg" if command == "remove" else tmp_path / "in"
    out = tmp_path / ("out.webp" if command == "remove" else "out")
    codes = {}
    for value in ("abc", "500", "-5", "2.5"):
        codes[value] = app.main([command, str(source), str(out), "--quality", value])
        err = capsys.readouterr().err.strip()
        assert err.startswith("app.py: --quality: "), (value, err)
    assert codes == dict.fromkeys(codes, ExitCode.BAD_FLAG) and ExitCode.BAD_FLAG == 2
    assert not out.exists()
