"""One local Ray cluster per test module, with the Serve application running on it.

Ray starts slowly on two cores, so each module starts it once (``serve_app``) and shuts it
down after. Skipped where Ray Serve is not installed (``pip install -r requirements-ray.txt``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

#: rembg's fixture photos (shared beside the repository).
FIXTURES = ROOT.parent / "shared" / "fixtures" / "rembg"
HAS_SERVE = importlib.util.find_spec("ray") is not None and importlib.util.find_spec("ray.serve") is not None


def fixture_photos() -> list[Path]:
    photos = sorted(FIXTURES.glob("*.jpg"))
    if not photos:
        pytest.skip(f"no fixture photos in {FIXTURES}")
    return photos


@dataclass
class ServeApp:
    url: str
    gcs_address: str


#: Settings every test module's application runs with (serve.yaml's ``args``).
APP_ARGS = {"serve_min_replicas": 1, "serve_max_replicas": 2, "serve_target_ongoing": 1, "allow_url_input": True}


@pytest.fixture(scope="module")
def serve_app() -> Iterator[ServeApp]:
    """A local Ray cluster (2 CPUs, no dashboard) running the application as ``serve run`` would."""
    import ray
    from ray import serve

    from serving.app import build
    from serving.removal import APP_NAME

    port = free_port()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        # The replicas import the product from this checkout, wherever the tests run from.
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build(APP_ARGS), name=APP_NAME, route_prefix="/")
        yield ServeApp(f"http://127.0.0.1:{port}", ray.get_runtime_context().gcs_address)
    finally:
        serve.shutdown()
        ray.shutdown()
