"""Model tier: ``batch --ray local`` on a throwaway local Ray cluster equals the local run.

Skipped where Ray is not installed (``pip install -r requirements-ray.txt``). One
run, bounded: cluster start-up plus the fixture tree takes well under two minutes.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from tests.batch.helpers import failures, leftovers, outputs, report, run_batch

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None, reason="Ray is not installed (pip install -r requirements-ray.txt)"
    ),
]


def test_ray_local_cluster_writes_the_same_bytes_and_report(
    reference: tuple[Path, subprocess.CompletedProcess[str]], tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = run_batch(tree, out, "--ray", "local", timeout=110)

    assert proc.returncode == 1, proc.stderr  # the broken inputs fail there too
    assert outputs(out) == outputs(reference[0])  # byte-identical files, same structure
    assert failures(out) == failures(reference[0])
    assert report(out)["counts"] == report(reference[0])["counts"]
    assert report(out)["runner"]["kind"] == "ray"
    assert leftovers(out) == []
