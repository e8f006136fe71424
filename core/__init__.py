"""The background-removal engine: pure Python over onnxruntime, no web framework.

    from core import remove_background, RemovalOptions
    result = remove_background(image, RemovalOptions(model="u2net", provider="cpu"))

The layer above the model registry (``models``) and below the edges (``ui``, ``api``,
``batch``, ``benchmark``). Its typed errors and settings live in ``base`` and are
re-exported here for callers of the engine.
"""

from __future__ import annotations

from base.errors import (
    ClusterUnavailable,
    ImageTooComplex,
    ImageTooLarge,
    InvalidImage,
    InvalidOption,
    ModelNotAvailable,
    ProviderUnavailable,
    RemovalError,
    UnsupportedFormat,
    UrlFetchFailed,
    UrlRefused,
)
from base.settings import Settings, load_settings
from core.options import RemovalOptions
from core.pipeline import Engine, RemovalResult, default_engine, remove_background
from core.providers import available_providers

__all__ = [
    "ClusterUnavailable",
    "Engine",
    "ImageTooComplex",
    "ImageTooLarge",
    "InvalidImage",
    "InvalidOption",
    "ModelNotAvailable",
    "ProviderUnavailable",
    "RemovalError",
    "RemovalOptions",
    "RemovalResult",
    "Settings",
    "UnsupportedFormat",
    "UrlFetchFailed",
    "UrlRefused",
    "available_providers",
    "default_engine",
    "load_settings",
    "remove_background",
]
