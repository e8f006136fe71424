"""Removals past one machine, on Ray Serve: the engine as an autoscaling deployment, and the handle to it.

``serving.removal``: the deployment (one engine per replica; typed errors come back as
values; weights checked once per node). ``serving.client``: ``ServeEngine``, an ``Engine``
whose removals run on that deployment, for the fronts (``python app.py --ray-address``
and the REST ingress). ``serving.app``: the Serve application itself (the REST ingress
over ``api.rest``'s routes, and the removal deployment behind it), an entry point that
``serve run deploy/ray/serve.yaml`` imports; it sits on top of the layers like app.py.

Needs Ray Serve (``pip install -r requirements-ray.txt``); nothing else imports this
package unless ``--ray-address`` is set.
"""
