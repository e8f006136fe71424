"""What crosses the hop, without a cluster: typed errors rebuilt as themselves, the settings as
serve.yaml gives them, and the deployment's Serve options from the settings table."""

from __future__ import annotations

import pickle

import pytest

from base.errors import ClusterUnavailable, ImageTooLarge, InvalidOption, RemovalError
from base.settings import SettingsError
from core import Engine, RemovalOptions
from tests.conftest import photo_bytes
from tests.serving.conftest import HAS_SERVE

pytestmark = pytest.mark.skipif(
    not HAS_SERVE, reason="Ray Serve is not installed (pip install -r requirements-ray.txt)"
)


@pytest.mark.parametrize(
    "error",
    [InvalidOption("alpha_matting", "expected true or false"), ImageTooLarge("too big"), ClusterUnavailable("x")],
)
def test_typed_errors_cross_as_themselves(error: RemovalError) -> None:
    from serving.removal import WireError

    rebuilt = pickle.loads(pickle.dumps(WireError.of(error))).rebuilt()
    assert type(rebuilt) is type(error)
    assert (rebuilt.code, rebuilt.message, rebuilt.http_status) == (error.code, error.message, error.http_status)
    assert getattr(rebuilt, "option", None) == getattr(error, "option", None)


def test_an_unknown_error_class_is_a_plain_removal_error() -> None:
    from serving.removal import WireError

    for kind in ("NoSuchError", "Settings", "__builtins__"):
        rebuilt = WireError(kind, "message").rebuilt()
        assert type(rebuilt) is RemovalError and rebuilt.message == "message"


def test_serve_yaml_args_are_settings_checked_like_flags() -> None:
    from serving.app import replica_settings, settings_from
    from serving.removal import removal_options

    settings = settings_from({"serve_max_replicas": 4, "serve_cpus_per_replica": 2, "allow_url_input": True})
    assert (settings.serve_max_replicas, settings.allow_url_input) == (4, True)
    options = removal_options(settings)
    assert options["autoscaling_config"]["max_replicas"] == 4
    assert options["ray_actor_options"] == {"num_cpus": 2.0, "num_gpus": 0.0}
    assert replica_settings(settings).threads == 2  # onnxruntime gets the replica's CPUs, not the node's
    with pytest.raises(SettingsError):
        settings_from({"serve_min_replicas": 3, "serve_max_replicas": 2})
    with pytest.raises(SettingsError):
        settings_from({"no_such_setting": 1})


def test_a_closed_port_is_unavailable_at_once() -> None:
    from serving.client import probe
    from tests.conftest import free_port

    with pytest.raises(ClusterUnavailable, match="cannot be reached"):
        probe(f"127.0.0.1:{free_port()}")


def test_an_encoded_answer_keeps_the_bytes_size_and_mask(engine: Engine) -> None:
    """What the REST ingress gets: no pixels across the hop, yet the same bytes, size and mask."""
    import numpy as np

    from serving.removal import Encoded, Removed

    result = engine.remove(photo_bytes("car-1.jpg"), RemovalOptions(output_format="webp"))
    result.ran_on = {"replica": "r", "node": "n"}
    back = pickle.loads(pickle.dumps(Removed(encoded=Encoded.of(result)))).unpacked()
    assert back.data == result.data and back.media_type == result.media_type
    assert back.image.size == result.image.size and back.input_size == result.input_size
    assert np.array_equal(np.asarray(back.mask), np.asarray(result.mask))
    assert (back.provider, back.model, back.timings, back.ran_on) == (
        result.provider, result.model, result.timings, result.ran_on
    )  # fmt: skip
    assert back.source is None
