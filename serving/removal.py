"""The removal as a Ray Serve deployment: bytes and ``RemovalOptions`` in, the engine's result out.

Each replica holds one ``Engine`` (settings handed over by the application, so every
replica runs the same table). A removal returns a ``Removed``: the engine's
``RemovalResult`` (with ``ran_on``: this replica's and node's ids), or the typed error it
raised, carried as a value, so that it crosses the hop as itself rather than as Ray's
wrapped task error. Replicas are stateless between requests: any replica may take any
request, and a request retried on another replica gives the same bytes.

Weights are fetched and verified once per node: the first replica on a node takes a
file lock in the model folder while it checks them (``models.fetch.ensure_model``
remembers the checksum beside the file), so a second replica there only re-reads the
remembered checksum.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import logging
import os
from dataclasses import dataclass
from typing import IO, Any

import ray
from PIL import Image
from ray import serve

from base import errors
from base.errors import RemovalError
from base.settings import Settings
from core import Engine, RemovalOptions, RemovalResult
from models.fetch import ensure_model
from models.registry import MODELS

log = logging.getLogger(__name__)

#: The Serve application's name, and the removal deployment's (``serve.get_deployment_handle``).
APP_NAME = "rembg"
DEPLOYMENT = "Removal"
#: The lock file, in the model folder, that one replica per node holds while it checks the weights.
NODE_LOCK = ".serve-weights.lock"


@dataclass(frozen=True)
class WireError:
    """A typed engine error as it crosses the hop: its class name (in ``base.errors``), message, option."""

    kind: str
    message: str
    option: str | None = None

    @classmethod
    def of(cls, exc: RemovalError) -> WireError:
        return cls(type(exc).__name__, exc.message, getattr(exc, "option", None))

    def rebuilt(self) -> RemovalError:
        """The error again, of its own class (``RemovalError`` where this side does not know the class)."""
        kind = getattr(errors, self.kind, RemovalError)
        if not (isinstance(kind, type) and issubclass(kind, RemovalError)):
            kind = RemovalError
        exc = kind.__new__(kind)
        RemovalError.__init__(exc, self.message)  # InvalidOption's own __init__ rewrites the message
        if self.option is not None:
            exc.option = self.option  # type: ignore[attr-defined]
        return exc


@dataclass(frozen=True)
class Encoded:
    """A result without its pixels, for a front that only sends the encoded output on (the REST
    ingress): the output as encoded and the mask as a PNG, each opened lazily at the other end,
    instead of the output, mask and input pixels (about 9 bytes per pixel) across the hop."""

    data: bytes
    media_type: str
    mask_png: bytes
    model: str
    provider: str
    timings: dict[str, float]
    batch: int
    box: tuple[int, int, int, int] | None
    input_size: tuple[int, int] | None
    ran_on: dict[str, str] | None

    @classmethod
    def of(cls, result: RemovalResult) -> Encoded:
        mask = io.BytesIO()
        result.mask.save(mask, "PNG", compress_level=1)
        return cls(
            result.data,
            result.media_type,
            mask.getvalue(),
            result.model,
            result.provider,
            result.timings,
            result.batch,
            result.box,
            result.input_size,
            result.ran_on,
        )

    def result(self) -> RemovalResult:
        """The ``RemovalResult`` again; its output and mask decode only if read (no ``source``)."""
        return RemovalResult(
            data=self.data,
            media_type=self.media_type,
            image=Image.open(io.BytesIO(self.data)),
            mask=Image.open(io.BytesIO(self.mask_png)),
            model=self.model,
            provider=self.provider,
            timings=self.timings,
            batch=self.batch,
            box=self.box,
            input_size=self.input_size,
            ran_on=self.ran_on,
        )


@dataclass(frozen=True)
class Removed:
    """One removal's answer: the result (whole, or ``Encoded``), or the typed error."""

    result: RemovalResult | None = None
    error: WireError | None = None
    encoded: Encoded | None = None

    def unpacked(self) -> RemovalResult:
        """The result; the typed error raised as itself."""
        if self.error is not None:
            raise self.error.rebuilt()
        if self.encoded is not None:
            return self.encoded.result()
        assert self.result is not None  # a Removed carries one of the three
        return self.result


def prepare_node(settings: Settings) -> None:
    """The default model's weights, fetched and verified, once per node (see the module's docstring).

    A model that cannot be had is logged, not raised: the replica still serves the other
    models, and ``health`` reports the default one as the engine does.
    """
    home = settings.model_home
    try:
        lock: IO[str] | None = open(home / NODE_LOCK, "a")  # held across the check below
    except OSError:  # a read-only model folder (baked into the image): nothing to fetch into, nothing to lock
        lock = None
    try:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # replicas are processes: a thread lock would not do
        ensure_model(MODELS[settings.default_model], home, fetch_missing=settings.fetch_missing, progress=False)
    except RemovalError as exc:
        log.warning("the default model is not available on this node: %s", exc.message)
    finally:
        if lock is not None:
            lock.close()  # closing releases the lock


class Removal:
    """One engine per replica; ``remove`` and ``health`` are what the fronts call through a handle."""

    def __init__(self, settings: Settings) -> None:
        prepare_node(settings)
        self.engine = Engine(settings)
        self.engine.warm()
        context = serve.get_replica_context()
        self.ran_on = {
            "replica": context.replica_id.unique_id,
            "node": ray.get_runtime_context().get_node_id(),
            "pid": str(os.getpid()),
        }
        log.info("removal replica %s ready on node %s", self.ran_on["replica"], self.ran_on["node"])

    def _remove(self, image: Any, options: RemovalOptions, pixels: bool) -> Removed:
        try:
            result = self.engine.remove(image, options)
        except RemovalError as exc:
            return Removed(error=WireError.of(exc))
        result.ran_on = dict(self.ran_on)
        return Removed(result=result) if pixels else Removed(encoded=Encoded.of(result))

    async def remove(self, image: Any, options: RemovalOptions, pixels: bool = True) -> Removed:
        """``pixels``: the whole result (the WebUI shows the output, mask and input); else ``Encoded``."""
        # In a worker thread: the replica's event loop keeps taking requests and health checks
        # while this one decodes and infers (inference itself is serialised by the session).
        return await asyncio.to_thread(self._remove, image, options, pixels)

    async def health(self) -> list[str]:
        return await asyncio.to_thread(self.engine.health)

    async def loaded(self) -> list[dict[str, object]]:
        return [{**s, "ran_on": self.ran_on} for s in self.engine.sessions.loaded()]


RemovalDeployment = serve.deployment(name=DEPLOYMENT)(Removal)


def removal_options(settings: Settings) -> dict[str, Any]:
    """The deployment's Serve options from the settings table: autoscaling, CPUs and GPUs per replica."""
    target = settings.serve_target_ongoing
    return {
        "autoscaling_config": {
            "min_replicas": settings.serve_min_replicas,
            "initial_replicas": settings.serve_min_replicas,
            "max_replicas": settings.serve_max_replicas,
            "target_ongoing_requests": target,
            # Up soon after load rises; down only once it has stayed low a while (a model loads in seconds).
            "upscale_delay_s": 3.0,
            "downscale_delay_s": 20.0,
        },
        # Room above the target so that a burst queues at the replica, not in the front.
        "max_ongoing_requests": max(1, round(target * 2)),
        "ray_actor_options": {
            "num_cpus": settings.serve_cpus_per_replica,
            "num_gpus": settings.serve_gpus_per_replica,
        },
    }
