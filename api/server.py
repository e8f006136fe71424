"""Assembles and serves everything on one port: the WebUI, the Gradio client API and the REST API.

The REST routes are handed to Gradio's own FastAPI app (``app_kwargs``) so that
``launch()`` keeps working with ``--share``; Gradio's queue is bounded and closed
to direct REST calls (``api_open=False``), so every Gradio call goes through it.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from api.rest import create_router
from core import Engine, Settings
from core.settings import auth_users
from ui import build_ui

log = logging.getLogger(__name__)
CSS = "#provider-note { font-size: 0.85em; opacity: 0.8; }"


def queue_depth(demo: gr.Blocks) -> int:
    """Events waiting in Gradio's queue (0 before it starts)."""
    queue = getattr(demo, "_queue", None)
    pending = getattr(queue, "event_queue_per_concurrency_id", {}) if queue else {}
    return sum(len(getattr(q, "queue", [])) for q in pending.values())


def create(settings: Settings) -> tuple[gr.Blocks, dict[str, Any]]:
    """The Blocks (queued) and the keyword arguments for ``launch()``."""
    engine = Engine(settings)
    users = auth_users(settings.auth)
    demo = build_ui(settings, engine)
    demo.queue(max_size=settings.queue_size, api_open=False, default_concurrency_limit=1)
    router = create_router(engine, users, lambda: queue_depth(demo))
    launch_kwargs: dict[str, Any] = {
        "server_name": settings.host,
        "server_port": settings.port,
        "share": settings.share,
        "auth": users or None,
        "max_file_size": settings.max_upload_bytes,
        "mcp_server": settings.mcp,
        "theme": gr.themes.Soft(),
        "css": CSS,
        "show_error": True,  # gr.Error messages only: handlers never let other exceptions through
        "app_kwargs": {"routes": router.routes},
        "footer_links": ["api", "gradio", "settings"],
    }
    return demo, launch_kwargs


def serve(settings: Settings) -> None:
    """Serve until interrupted."""
    demo, launch_kwargs = create(settings)
    if settings.share and not settings.auth:
        log.warning("--share without --auth: anyone with the public link can use this machine")
    log.info("serving on http://%s:%d (REST: /api/remove, health: /healthz)", settings.host, settings.port)
    demo.launch(**launch_kwargs)
