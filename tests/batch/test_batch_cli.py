"""Model tier: ``python app.py batch`` over real and broken images with u2netp.

Structure mirroring, the report and exit code, reruns that skip complete outputs,
runs stopped by SIGINT/SIGTERM, zip and list-file inputs, and ``--workers 2``
writing the same bytes as one process.
"""

from __future__ import annotations

import io
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.batch.helpers import BROKEN, GOOD, failures, leftovers, outputs, report, run_batch, zip_tree
from tests.conftest import PHOTOS_DIR, ROOT

pytestmark = pytest.mark.model

Reference = tuple[Path, subprocess.CompletedProcess[str]]


def _png(rel: str) -> str:
    return str(Path(rel).with_suffix(".png").as_posix())


def test_folder_mirrors_structure_and_reports_broken_files(reference: Reference) -> None:
    out, proc = reference
    assert proc.returncode == 1, proc.stderr  # some inputs failed
    assert set(outputs(out)) == {_png(rel) for rel in GOOD}
    for data in outputs(out).values():
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and image.mode == "RGBA"
    assert [(name, code) for name, code, _ in failures(out)] == [(rel, "invalid_image") for rel in sorted(BROKEN)]
    assert all(message for _, _, message in failures(out))
    data = report(out)
    assert data["counts"] == {"done": len(GOOD), "skipped": 0, "failed": len(BROKEN)}
    assert data["interrupted"] is False and data["options"]["model"] == "u2netp"
    assert "done 6, skipped 0, failed 3" in proc.stdout
    assert "images/s" in proc.stdout
    assert leftovers(out) == []


def test_rerun_skips_complete_outputs_and_redoes_missing(reference: Reference, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    missing = _png("people/space/astronaut.png")
    (out / missing).unlink()
    before = {p: (out / p).stat().st_mtime_ns for p in outputs(out)}
    time.sleep(0.01)  # a rewrite would show as a new mtime

    proc = run_batch(tree, out)

    assert proc.returncode == 1  # the broken inputs are tried again and fail again
    assert {p: (out / p).stat().st_mtime_ns for p in before} == before
    assert (out / missing).read_bytes() == (reference[0] / missing).read_bytes()
    assert report(out)["counts"] == {"done": 1, "skipped": len(GOOD) - 1, "failed": len(BROKEN)}


def test_format_extension_and_all_good_exit_zero(tmp_path: Path) -> None:
    source = tmp_path / "in"
    (source / "a").mkdir(parents=True)
    shutil.copyfile(PHOTOS_DIR / "car-1.jpg", source / "a" / "car.jpg")
    shutil.copyfile(PHOTOS_DIR / "rocket.jpg", source / "rocket.JPG")

    proc = run_batch(source, tmp_path / "out", "--format", "jpeg", "--bgcolor", "0,0,255")

    assert proc.returncode == 0, proc.stderr
    assert set(outputs(tmp_path / "out")) == {"a/car.jpg", "rocket.jpg"}
    assert Image.open(tmp_path / "out" / "rocket.jpg").format == "JPEG"


def test_touch_up_blur_and_shadow_flags(tmp_path: Path) -> None:
    """The WebUI's touch-up, blur and shadow are engine options, so the batch command takes them too."""
    source = tmp_path / "in"
    source.mkdir()
    shutil.copyfile(PHOTOS_DIR / "car-1.jpg", source / "car.jpg")
    strokes = tmp_path / "strokes.png"
    edit = Image.new("RGBA", (48, 36), (0, 0, 0, 0))
    edit.paste((0, 0, 0, 255), (0, 0, 24, 36))  # remove the left half
    edit.save(strokes)

    proc = run_batch(source, tmp_path / "out", "--mask-edit", str(strokes), "--shadow", "--blur-background", "20")

    assert proc.returncode == 0, proc.stderr
    image = Image.open(tmp_path / "out" / "car.png")
    assert image.mode == "RGBA" and image.getextrema()[3] == (255, 255), "a blurred background is opaque"
    options = report(tmp_path / "out")["options"]
    assert options["mask_edit"] == str(strokes) and options["shadow"] is True and options["blur_background"] == 20
    plain = run_batch(source, tmp_path / "plain", "--mask-edit", str(strokes))
    assert plain.returncode == 0, plain.stderr
    alpha = Image.open(tmp_path / "plain" / "car.png").getchannel("A")
    assert alpha.crop((0, 0, 230, 360)).getextrema() == (0, 0), "the strokes removed the left half"


def test_zip_input_gives_the_same_outputs(reference: Reference, tree: Path, tmp_path: Path) -> None:
    archive = zip_tree(tree, tmp_path / "in.zip")
    proc = run_batch(archive, tmp_path / "out")
    assert proc.returncode == 1
    assert outputs(tmp_path / "out") == outputs(reference[0])
    assert failures(tmp_path / "out") == failures(reference[0])
    assert report(tmp_path / "out")["input_kind"] == "zip"


def test_list_file_input(reference: Reference, tree: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tree"
    shutil.copytree(tree, copy)
    listing = copy / "list.txt"
    # An absolute path, paths relative to the list's folder, a comment and a blank line.
    listing.write_text(f"# one path per line\n\n{copy / 'car-1.jpg'}\npeople/anime-girl-1.jpg\nbroken/empty.png\n")

    proc = run_batch(listing, tmp_path / "out")

    assert proc.returncode == 1
    out = outputs(tmp_path / "out")
    assert set(out) == {"car-1.png", "people/anime-girl-1.png"}
    assert out["car-1.png"] == (reference[0] / "car-1.png").read_bytes()
    assert [(name, code) for name, code, _ in failures(tmp_path / "out")] == [("broken/empty.png", "invalid_image")]
    assert report(tmp_path / "out")["input_kind"] == "list"


def test_two_workers_write_the_same_bytes(reference: Reference, tree: Path, tmp_path: Path) -> None:
    proc = run_batch(tree, tmp_path / "out", "--workers", "2")
    assert proc.returncode == 1, proc.stderr
    assert outputs(tmp_path / "out") == outputs(reference[0])
    assert failures(tmp_path / "out") == failures(reference[0])
    runner = report(tmp_path / "out")["runner"]
    assert runner["workers"] == 2 and runner["threads_per_worker"] >= 1


@pytest.mark.parametrize(
    ("signum", "workers"), [(signal.SIGINT, "1"), (signal.SIGTERM, "2")], ids=["SIGINT-1-worker", "SIGTERM-2-workers"]
)
def test_interrupted_run_leaves_only_complete_outputs(tmp_path: Path, signum: int, workers: str) -> None:
    COUNT = 10  # enough that a stop after the first output leaves work undone
    source = tmp_path / "in"
    source.mkdir()
    for i in range(COUNT):
        shutil.copyfile(PHOTOS_DIR / ("car-1.jpg" if i % 2 else "rocket.jpg"), source / f"img{i:02d}.jpg")
    out = tmp_path / "out"
    command = [sys.executable, "app.py", "batch", str(source), str(out), "--model", "u2netp", "--no-progress"]
    process = subprocess.Popen(
        [*command, "--workers", workers], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 180
    while not list(out.glob("*.png")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no output appeared"
        time.sleep(0.05)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)

    assert process.returncode == 128 + signum, stderr
    assert "interrupted" in stdout
    assert leftovers(out) == []
    written = sorted(out.glob("*.png"))
    assert 0 < len(written) < COUNT
    for path in written:
        Image.open(path).load()  # every output that exists is complete
    data = report(out)
    assert data["interrupted"] is True and data["not_run"] > 0

    rerun = run_batch(source, out)
    assert rerun.returncode == 0, rerun.stderr
    assert len(list(out.glob("*.png"))) == COUNT
    assert report(out)["counts"]["skipped"] >= len(written)


def test_batched_run_shares_inference_calls_and_matches(reference: Reference, tree: Path, tmp_path: Path) -> None:
    """As on a GPU: the session batches, the worker keeps a batch's worth of images in flight."""
    proc = run_batch(tree, tmp_path / "out", "--batching", "on", "--max-batch", "4")
    assert proc.returncode == 1, proc.stderr  # the broken inputs still fail, alone
    got, expected = outputs(tmp_path / "out"), outputs(reference[0])
    assert set(got) == set(expected)
    assert failures(tmp_path / "out") == failures(reference[0])
    for name, data in got.items():
        alpha = np.asarray(Image.open(io.BytesIO(data)).getchannel("A"), np.float64)
        wanted = np.asarray(Image.open(io.BytesIO(expected[name])).getchannel("A"), np.float64)
        assert np.abs(alpha - wanted).mean() <= 0.05, name  # batch-of-4 arithmetic, same masks
