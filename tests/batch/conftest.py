"""Fixtures of the batch tests: one input tree and one reference run shared by the model tier."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.batch.helpers import build_tree, run_batch


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tree(tmp_path_factory.mktemp("batch") / "in")


@pytest.fixture(scope="session")
def reference(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The single-process run over ``tree``: the outputs every other runner must equal."""
    out = tmp_path_factory.mktemp("reference") / "out"
    return out, run_batch(tree, out)
