"""Image URLs given to the Gradio API and MCP: refused or fetched as REST does, never by Gradio's own fetcher.

A Gradio file input may carry ``{"path": "https://..."}`` (the Gradio client, a raw
``queue/join``) and an MCP tool call gives its images as URLs; Gradio then downloads them
itself, whatever ``--allow-url-input`` says, with its own SSRF check. ``guard_url_inputs``
puts the service's rule in its place, process-wide (Gradio's downloader is a module
function; one app is served per process): with URL input off, such a value is refused
with REST's message (``core.remote.URL_INPUT_OFF``); with it on, it is fetched by
``core.remote.fetch_url``, the guard REST uses (public hosts only, one deadline, the
upload byte limit).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import anyio.to_thread
import gradio as gr
from gradio import processing_utils

from base.edges import cut
from core import RemovalError, Settings
from core.remote import URL_INPUT_OFF, fetch_url

log = logging.getLogger(__name__)


@dataclass
class _Policy:
    allowed: bool = False
    max_bytes: int = 0


_POLICY = _Policy()


def _file_name(url: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(urlsplit(url).path).name)[:100].lstrip(".")
    return name or "image"


def fetch_into(url: str, cache_dir: str) -> str:
    """``url`` fetched under the service's rule into Gradio's cache; the file's path. ``gr.Error`` if refused."""
    if not _POLICY.allowed:
        log.info("refused an image URL on the Gradio API: URL input is off (%s)", cut(url))
        raise gr.Error(URL_INPUT_OFF, print_exception=False)
    try:
        data = fetch_url(url, _POLICY.max_bytes)
    except RemovalError as exc:
        log.info("refused an image URL on the Gradio API: %s", exc.message)
        raise gr.Error(exc.message, print_exception=False) from None
    folder = Path(cache_dir) / hashlib.sha256(url.encode()).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _file_name(url)
    path.write_bytes(data)
    return str(path)


async def _async_fetch_into(url: str, cache_dir: str) -> str:
    return await anyio.to_thread.run_sync(fetch_into, url, cache_dir)


def guard_url_inputs(settings: Settings) -> None:
    """Gradio's URL downloads follow ``settings.allow_url_input`` and go through ``fetch_url``."""
    _POLICY.allowed = settings.allow_url_input
    _POLICY.max_bytes = settings.max_upload_bytes
    processing_utils.async_ssrf_protected_download = _async_fetch_into
    processing_utils.ssrf_protected_download = fetch_into
    processing_utils.save_url_to_cache = fetch_into
