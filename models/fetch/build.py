"""The ``Build`` source: weights made here by ``python -m models build`` (``variants``, above the
engine), never downloaded. Fetching and first use refuse them with the command that builds them;
they pin no MD5, so their build record (``models.sidecar``) vouches for the file instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from base.errors import ModelNotAvailable
from models import sidecar
from models.registry import ModelSpec

BUILD_COMMAND = "python -m models build"


def hint(spec: ModelSpec, home: Path) -> str:
    return f"To build it, run: {BUILD_COMMAND} {spec.name} (into {home}, from $U2NET_HOME)"


def verified(spec: ModelSpec, home: Path, size: int, md5: Callable[[], str]) -> bool:
    """The file on disk is the one its build record describes (``md5`` is asked only when needed)."""
    return sidecar.verify(spec, sidecar.read_sidecar(spec, home), size, md5)


def not_built(spec: ModelSpec, home: Path, path: Path, present: bool) -> ModelNotAvailable:
    """For first use: never built inside a request, since a build takes minutes and gigabytes."""
    state = "does not match its build record" if present else "has not been built"
    return ModelNotAvailable(f"model {spec.name!r} is not available: {path} {state}. {hint(spec, home)}")


def not_fetched(spec: ModelSpec, home: Path) -> ModelNotAvailable:
    """For ``fetch``: built here, by the variants tool above the engine; ``python -m models fetch`` calls it."""
    return ModelNotAvailable(f"model {spec.name!r} is built, not downloaded. {hint(spec, home)}")
