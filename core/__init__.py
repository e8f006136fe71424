"""The background-removal engine: pure Python over onnxruntime, no web framework.

    from core import remove_background, RemovalOptions
    result = remove_background(image, RemovalOptions(model="u2net", provider="cpu"))

Names load on first use (PEP 562), so ``import core.errors`` from the weights
tooling stays cheap and does not pull in onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.errors import (
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
    from core.options import RemovalOptions
    from core.pipeline import Engine, RemovalResult, default_engine, remove_background
    from core.providers import available_providers
    from core.settings import Settings, load_settings

__all__ = [
    "Engine",
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
_MODULES = ("core.errors", "core.options", "core.pipeline", "core.providers", "core.settings")


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module in _MODULES:
            value = getattr(importlib.import_module(module), name, None)
            if value is not None:
                return value
    raise AttributeError(f"module 'core' has no attribute {name!r}")
