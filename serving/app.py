"""The Serve application: the REST ingress (``api.rest``'s own routes and guard) over the removal deployment.

    serve run deploy/ray/serve.yaml                  # a local Ray, or the cluster at RAY_ADDRESS
    serve run serving.app:build serve_max_replicas=4 # the same, settings as arguments

``build`` is Serve's application builder: its arguments are rows of the settings table
(``base/settings.py``; environment variables apply too), read once into the ``Settings``
that every replica gets. The ingress answers ``/api/remove`` (POST, and GET where
``allow_url_input``), ``/healthz`` and the API description exactly as ``python app.py``
does, from the same code: only its engine differs (``serving.client.ServeEngine``, which
calls the removal deployment through a ``DeploymentHandle``). For API-only users; the
WebUI stays a front of its own (``python app.py --ray-address``).

An entry point on top of the layers, like app.py: it joins ``api`` (an edge) and
``serving``; nothing in the product imports it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle
from starlette.middleware import Middleware

from api.guard import Guard, guard_state
from api.rest import create_router
from base.edges import version
from base.settings import Settings, auth_users, load_settings
from serving.client import ServeEngine
from serving.removal import RemovalDeployment, removal_options

INGRESS = "Ingress"


@serve.deployment(name=INGRESS, ray_actor_options={"num_cpus": 0})
@serve.ingress()
class Ingress:
    """HTTP in, removals out to the removal deployment; holds no model (so it reserves no CPU of its own)."""

    def __init__(self, removal: DeploymentHandle[Any], settings: Settings) -> None:
        self.settings = settings
        self.engine = ServeEngine(settings, removal, pixels=False)  # it sends the encoded bytes on, nothing else

    def __serve_build_asgi_app__(self) -> FastAPI:
        s = self.settings
        users = auth_users(s.auth)
        guard = guard_state(users, s.max_upload_bytes, s.max_batch_bytes, s.read_timeout_s, s.max_failed_logins)
        router = create_router(self.engine, users, lambda: 0, lambda: guard.draining)
        return FastAPI(
            title="rembg WebUI REST API (Ray Serve)",
            version=version(),
            routes=router.routes,
            middleware=[Middleware(Guard, state=guard)],
        )


def settings_from(args: Mapping[str, Any]) -> Settings:
    """``args`` (setting name -> value, as in serve.yaml) over the environment, checked like flags."""
    argv: list[str] = []
    for name, value in args.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif value is not None:
            argv += [flag, str(value)]
    return load_settings(argv)


def replica_settings(settings: Settings) -> Settings:
    """One replica's settings: onnxruntime gets the CPUs the replica reserves, not the whole node's,
    so that replicas sharing a node do not oversubscribe it (``--threads`` set explicitly wins)."""
    if settings.threads or settings.serve_cpus_per_replica < 1:
        return settings
    return dataclasses.replace(settings, threads=math.floor(settings.serve_cpus_per_replica))


def build(args: Mapping[str, Any]) -> Application:
    """The application: the ingress, bound to the removal deployment (options from the settings)."""
    settings = settings_from(args)
    removal = RemovalDeployment.options(**removal_options(settings)).bind(replica_settings(settings))
    return Ingress.bind(removal, settings)  # type: ignore[attr-defined,no-any-return] # a Deployment once decorated
