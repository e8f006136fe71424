"""Unit tier: atomic writes, worker layout, the report, signals and the CLI's usage errors (no weights)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

import app
from base.files import atomic_write
from base.settings import load_settings
from batch import runner
from batch.outcome import DONE, FAILED, SKIPPED, Outcome, Summary, read_report, write_report
from batch.work import TEMP_SUFFIX, sweep_temporaries
from core.options import RemovalOptions


@pytest.fixture(autouse=True)
def _keep_pillow_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """app.main sets Pillow's process-wide pixel limit; put it back for the other tests."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


def test_write_atomic_writes_whole_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "x.png"
    atomic_write(target, b"data", suffix=TEMP_SUFFIX)
    assert target.read_bytes() == b"data"
    assert [p.name for p in target.parent.iterdir()] == ["x.png"]


def test_write_atomic_interrupted_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted_replace(src: object, dst: object) -> None:
        raise KeyboardInterrupt  # a second Ctrl-C between the write and the rename

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "x.png", b"data", suffix=TEMP_SUFFIX)
    assert list(tmp_path.iterdir()) == []


def test_sweep_removes_only_our_temporaries(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    stale = tmp_path / "sub" / f".x.png.123{TEMP_SUFFIX}"
    stale.write_bytes(b"half")
    keep = [tmp_path / "x.png", tmp_path / ".keep", tmp_path / "sub" / f"y{TEMP_SUFFIX}"]
    for path in keep:
        path.write_bytes(b"")
    assert sweep_temporaries(tmp_path) == 1
    assert not stale.exists() and all(p.exists() for p in keep)


def test_report_lists_failures_sorted_with_code_and_message(tmp_path: Path) -> None:
    summary = Summary(
        outcomes=[
            Outcome(key="b.jpg", status=DONE, output="b.png"),
            Outcome.failed("z.jpg", "invalid_image", "the input is empty", "z.png"),
            Outcome(key="c.jpg", status=SKIPPED, output="c.png"),
            Outcome.failed("a.jpg", "image_too_large", "too big", "a.png"),
        ],
        elapsed_s=2.0,
    )
    path = write_report(tmp_path, summary, {"input": "in"}, total=5)
    data = json.loads(path.read_text())
    assert data == read_report(tmp_path)
    assert data["counts"] == {DONE: 1, SKIPPED: 1, FAILED: 2}
    assert data["not_run"] == 1 and data["images_per_s"] == 0.5
    assert data["failures"] == [
        {"input": "a.jpg", "output": "a.png", "code": "image_too_large", "message": "too big"},
        {"input": "z.jpg", "output": "z.png", "code": "invalid_image", "message": "the input is empty"},
    ]
    assert "done 1, skipped 1, failed 2" in summary.line()


def test_outcome_round_trips_through_a_row() -> None:
    outcome = Outcome.failed("k", "invalid_image", "m", "o", 1.5)
    assert Outcome.from_row(outcome.to_row()) == outcome


@pytest.mark.parametrize(
    ("workers", "threads", "expected"),
    [
        (1, 0, (1, 0)),  # one process: every core in one session
        (2, 0, (2, 4)),  # 8 cores split over 2 workers
        (3, 0, (3, 2)),
        (16, 0, (16, 1)),  # never below one thread
        (2, 3, (2, 3)),  # --threads wins
        (None, 0, (4, 2)),  # auto: one worker per 2 physical cores
    ],
)
def test_cpu_layout_splits_physical_cores(
    monkeypatch: pytest.MonkeyPatch, workers: int | None, threads: int, expected: tuple[int, int]
) -> None:
    monkeypatch.setattr(runner, "physical_cores", lambda: 8)
    settings = load_settings(["--threads", str(threads)])
    layout = runner.plan_layout(settings, RemovalOptions(provider="cpu"), workers)
    assert (layout.workers, layout.threads, layout.provider) == (*expected, "cpu")


def test_gpu_layout_is_one_worker_per_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from core import providers

    monkeypatch.setattr(providers, "resolve", lambda name: [name])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # device ids count from 0 among the visible ones
    layout = runner.plan_layout(load_settings([]), RemovalOptions(provider="cuda"), None)
    assert (layout.workers, layout.gpus) == (2, (0, 1))


def test_first_signal_asks_to_stop_second_interrupts() -> None:
    with runner.StopFlag() as stop:
        assert not stop.requested
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested and stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is not stop._handle  # restored


def test_exit_codes() -> None:
    failed = Summary(outcomes=[Outcome.failed("a", "invalid_image", "m")])
    assert runner.BatchResult(Summary(), Path("r"), None).exit_code == 0
    assert runner.BatchResult(failed, Path("r"), None).exit_code == 1
    assert runner.BatchResult(failed, Path("r"), signal.SIGINT).exit_code == 130
    assert runner.BatchResult(Summary(), Path("r"), signal.SIGTERM).exit_code == 143


def test_ray_missing_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from batch import ray_runner

    monkeypatch.setattr(ray_runner, "ray_available", lambda: False)
    (tmp_path / "in").mkdir()
    assert app.main(["batch", str(tmp_path / "in"), str(tmp_path / "out"), "--ray", "auto"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "app.py: Ray is not installed here; install it with: pip install -r requirements-ray.txt"


def test_missing_input_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(["batch", str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_bad_option_is_one_line_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    code = app.main(["batch", str(tmp_path / "in"), str(tmp_path / "out"), "--format", "gif"])
    assert code == 2
    assert capsys.readouterr().err.strip().startswith("app.py: --format: choose one of")


def test_unavailable_provider_stops_the_run_with_its_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.providers import provider_info

    if provider_info("cuda").available:
        pytest.skip("CUDA can run here")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.jpg").write_bytes(b"not read: the provider fails first")
    code = app.main(["batch", str(tmp_path / "in"), str(tmp_path / "out"), "--provider", "cuda", "--no-progress"])
    assert code == 1
    assert "provider 'cuda' is unavailable" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "_report.json").read_text())["aborted"] is True


def _complete_run(tmp_path: Path, options: RemovalOptions) -> runner.BatchResult:
    """A run whose only output already exists: nothing to do, so no model is loaded."""
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "in" / "a.jpg").write_bytes(b"never read")
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "out" / "a.png").write_bytes(b"done before")
    config = runner.BatchConfig(
        source=tmp_path / "in", out=tmp_path / "out", options=options, settings=load_settings([]), progress=False
    )
    return runner.run_batch(config)


def test_complete_outputs_are_skipped_untouched(tmp_path: Path) -> None:
    result = _complete_run(tmp_path, RemovalOptions(bgcolor="10,20,30"))
    assert result.exit_code == 0
    assert result.summary.counts == {DONE: 0, SKIPPED: 1, FAILED: 0}
    assert (tmp_path / "out" / "a.png").read_bytes() == b"done before"


def test_rerun_warns_only_when_options_changed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _complete_run(tmp_path, RemovalOptions(bgcolor="10,20,30"))
    _complete_run(tmp_path, RemovalOptions(bgcolor="10,20,30"))  # a tuple in the report, a list when read
    assert "other options" not in caplog.text
    _complete_run(tmp_path, RemovalOptions(bgcolor="1,2,3"))
    assert "other options" in caplog.text
