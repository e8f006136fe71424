"""Typed errors of the engine, one module, one base class.

Every error carries a short ``message`` fit to show a user and a stable ``code``
that the edges (Gradio UI, REST API, CLI) translate once: ``gr.Error`` in the UI,
one JSON error shape over HTTP, a one-line message and exit code in the CLI.
"""

from __future__ import annotations


class RemovalError(Exception):
    """Base class of every error the engine raises on purpose."""

    code: str = "removal_error"
    #: HTTP status the REST edge maps this error to.
    http_status: int = 400
    #: Seconds a client should wait before trying again (the REST edge's ``Retry-After``), where retrying helps.
    retry_after_s: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidImage(RemovalError):
    """The input is not a decodable image (empty, random bytes, truncated, corrupt)."""

    code = "invalid_image"


class UnsupportedFormat(RemovalError):
    """The input is an image, but in a format the service does not accept (SVG, PDF, ...)."""

    code = "unsupported_format"
    http_status = 415


class ImageTooLarge(RemovalError):
    """The input exceeds the byte or pixel limit; raised before the pixels are decoded."""

    code = "image_too_large"
    http_status = 413


class ImageTooComplex(RemovalError):
    """The input is within the byte and pixel limits but would cost too much to decode or process:
    more progressive-JPEG scans than allowed, or decoding past its CPU-time budget."""

    code = "image_too_complex"
    http_status = 422


class InvalidOption(RemovalError):
    """An option has a bad value; the message names the option and why."""

    code = "invalid_option"

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"invalid option {option!r}: {reason}")
        self.option = option


class UrlRefused(RemovalError):
    """A URL input that is not fetched: a scheme, port or host that is not allowed (SSRF guard)."""

    code = "url_refused"


class UrlFetchFailed(RemovalError):
    """A URL input whose server did not deliver an image body (status, timeout, too many redirects)."""

    code = "url_fetch_failed"


class ModelNotAvailable(RemovalError):
    """The model's weights are missing and could not be fetched."""

    code = "model_not_available"
    http_status = 503


class ProviderUnavailable(RemovalError):
    """The requested execution provider cannot run here; carries onnxruntime's reason."""

    code = "provider_unavailable"
    http_status = 503


class ClusterUnavailable(RemovalError):
    """The Ray cluster that runs removals (``--ray-address``) cannot be reached, or lost the
    request's replica twice; nothing was returned, so trying again later is safe."""

    code = "cluster_unavailable"
    http_status = 503
    retry_after_s = 1
