"""Model weights: the registry of models (data, not classes) and the offline fetcher.

Weights live where rembg looks for them (``$U2NET_HOME``, default ``~/.u2net``) so
that rembg and this project share one copy. ``python -m models --help`` is the CLI.
"""

from models.registry import MODELS, ModelSpec, PyPIWheel, Url, get_spec

__all__ = ["MODELS", "ModelSpec", "PyPIWheel", "Url", "get_spec"]
