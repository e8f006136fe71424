"""The project's version is written once, in ``pyproject.toml``; ``/healthz`` answers it from there."""

from __future__ import annotations

import pytest

from base.edges import PYPROJECT, version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def test_the_version_is_pyprojects() -> None:
    with PYPROJECT.open("rb") as f:
        assert version() == tomllib.load(f)["project"]["version"]
