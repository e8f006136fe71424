"""``ServeEngine``: an ``Engine`` whose removals run on the Ray Serve deployment (``serving.removal``).

The fronts (``python app.py --ray-address``, and the REST ingress on Serve) keep their
engine-shaped interface: ``remove``, ``remove_many``, ``warm``, ``health``, ``requests``.
Each removal goes through a ``DeploymentHandle``; typed errors come back as themselves.

Faults: a replica that dies under a request is retried once on another (a removal has no
side effects, and the retry sends the same input, so an answer is always this request's
own); a second loss, an answer that does not come within ``ANSWER_TIMEOUT_S``, or a
cluster that cannot be reached is ``ClusterUnavailable`` (503 with ``Retry-After``).
An unreachable cluster is found with a plain TCP connect first, since ``ray.init`` waits
minutes on an address where nothing listens.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import ray
from ray import serve
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from ray.serve.handle import DeploymentHandle

from base.errors import ClusterUnavailable, RemovalError
from base.settings import Settings
from core import Engine, RemovalOptions, RemovalResult
from serving.removal import APP_NAME, DEPLOYMENT, Removed

log = logging.getLogger(__name__)

#: How long one removal may take on the cluster, the queue there included, before the front gives up.
ANSWER_TIMEOUT_S = 120.0
#: How long ``health`` waits for a replica's answer.
HEALTH_TIMEOUT_S = 5.0
#: The TCP probe of the cluster's address, and how often a lost connection is tried again.
PROBE_TIMEOUT_S = 3.0
RECONNECT_EVERY_S = 10.0
#: What losing the replica under a request looks like through a handle.
LOST = (RayActorError, ActorUnavailableError, DeploymentUnavailableError)


def probe(address: str) -> None:
    """Raise ``ClusterUnavailable`` unless something listens at ``address`` (``host:port``, ``ray://host:port``)."""
    if address == "auto":
        return  # the local cluster, found by Ray itself
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host or hostport, int(port or 6379)), timeout=PROBE_TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        raise ClusterUnavailable(f"the Ray cluster at {address} cannot be reached: {exc}") from None


def wire_input(value: Any) -> Any:
    """A path is read here: the replica may run on another machine. Everything else travels as it is."""
    return Path(value).read_bytes() if isinstance(value, (str, Path)) else value


class ServeEngine(Engine):
    """Removals on the Ray Serve deployment; this process only sends them and keeps the request log."""

    def __init__(self, settings: Settings, handle: DeploymentHandle[Any] | None = None, pixels: bool = True) -> None:
        """``pixels``: results come whole (the WebUI shows them); else only encoded (``serving.removal.Encoded``)."""
        super().__init__(settings)
        self.pixels = pixels
        self._handle = handle
        self._problem: str | None = None if handle else "not connected to the Ray cluster yet"
        self._tried_at = -RECONNECT_EVERY_S
        self._connecting = threading.Lock()

    @property
    def runs_on(self) -> str:  # type: ignore[override]
        where = f"the Ray cluster at {self.settings.ray_address}" if self.settings.ray_address else "this Ray cluster"
        return f"{where} (Ray Serve application {APP_NAME!r}, deployment {DEPLOYMENT!r})"

    def connect(self) -> DeploymentHandle[Any]:
        """The handle to the removal deployment, connecting first where needed (at most every few seconds)."""
        if self._handle is not None:
            return self._handle
        with self._connecting:
            if self._handle is not None:
                return self._handle
            if time.monotonic() - self._tried_at < RECONNECT_EVERY_S:
                raise ClusterUnavailable(self._problem or "the Ray cluster cannot be reached")
            self._tried_at = time.monotonic()
            address = self.settings.ray_address or "auto"
            try:
                probe(address)
                if not ray.is_initialized():
                    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
                handle = serve.get_deployment_handle(DEPLOYMENT, app_name=APP_NAME)
                handle.health.remote().result(timeout_s=ANSWER_TIMEOUT_S)
            except ClusterUnavailable as exc:
                self._problem = exc.message
                raise
            except Exception as exc:  # whatever Ray raises, the front reports it and stays up
                self._problem = f"the Ray Serve deployment at {address} cannot be used: {type(exc).__name__}: {exc}"
                raise ClusterUnavailable(self._problem) from exc
            self._handle, self._problem = handle, None
            log.info("removals run on %s", self.runs_on)
            return handle

    def warm(self) -> None:
        """Connect now (in the background, at start), so that ``/healthz`` knows at once."""
        try:
            self.connect()
        except ClusterUnavailable as exc:
            log.warning("%s", exc.message)

    def health(self) -> list[str]:
        if self._handle is None:
            return [self._problem or "not connected to the Ray cluster yet"]
        try:
            reasons: list[str] = self._handle.health.remote().result(timeout_s=HEALTH_TIMEOUT_S)
        except GetTimeoutError:
            return [f"the removal deployment did not answer within {HEALTH_TIMEOUT_S:.0f} s"]
        except Exception as exc:  # noqa: BLE001 - a health probe reports, it does not raise
            return [f"the removal deployment cannot be reached: {type(exc).__name__}: {exc}"]
        return reasons

    def _wire(self, options: RemovalOptions | None) -> RemovalOptions:
        opts = options or RemovalOptions()
        opts.validated()  # here too, so that a bad option costs no hop (the replica validates again)
        return dataclasses.replace(
            opts, background_image=wire_input(opts.background_image), mask_edit=wire_input(opts.mask_edit)
        )

    def _answer(self, handle: DeploymentHandle[Any], response: Any, data: Any, opts: RemovalOptions) -> RemovalResult:
        """The result of ``response`` (sent with ``data`` and ``opts``), sent once more if its replica was lost."""
        for attempt in (1, 2):
            try:
                removed: Removed = response.result(timeout_s=ANSWER_TIMEOUT_S)
                break
            except LOST as exc:
                if attempt == 2:
                    raise ClusterUnavailable(f"the replica running this removal was lost twice ({exc})") from exc
                log.warning("the replica running a removal was lost; trying once more (%s)", type(exc).__name__)
                response = handle.remove.remote(data, opts, self.pixels)
            except BackPressureError as exc:
                raise ClusterUnavailable("every removal replica is busy; retry shortly") from exc
            except GetTimeoutError as exc:
                response.cancel()
                raise ClusterUnavailable(f"no answer from the cluster within {ANSWER_TIMEOUT_S:.0f} s") from exc
        result = removed.unpacked()
        width, height = result.input_size or result.image.size
        self.requests.record(result.provider, result.model, width * height, result.timings)
        return result

    def remove(self, image: Any, options: RemovalOptions | None = None) -> RemovalResult:
        opts, data = self._wire(options), wire_input(image)
        handle = self.connect()
        return self._answer(handle, handle.remove.remote(data, opts, self.pixels), data, opts)

    def remove_many(
        self, images: list[Any], options: RemovalOptions | None = None
    ) -> list[RemovalResult | RemovalError]:
        """``remove`` for each image, all sent at once: the replicas share them out (and batch them where
        their engine batches). A bad image gets its error in its place; option errors and a lost cluster raise."""
        opts = self._wire(options)
        handle = self.connect()
        sent = [(data, handle.remove.remote(data, opts, self.pixels)) for data in map(wire_input, images)]
        out: list[RemovalResult | RemovalError] = []
        for data, response in sent:
            try:
                out.append(self._answer(handle, response, data, opts))
            except ClusterUnavailable:
                raise
            except RemovalError as exc:
                if exc.code in ("invalid_option", "model_not_available", "provider_unavailable"):
                    raise
                out.append(exc)
        return out
