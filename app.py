"""Entry point of the service: it assembles the server and holds every subcommand.

    python app.py [FLAGS]                        serve the WebUI, the Gradio API and the REST API
    python app.py remove INPUT OUTPUT [OPTIONS]  cut out one image from the command line
    python app.py batch IN OUT [OPTIONS]         a folder, list file or zip (batch/, --workers, --ray)

Every flag is a row of the settings table (``base/settings.py``) or of the removal
options (``core/options.py``); ``--help`` lists them. Logging is configured here and
only here. The top of the layers: it may import every package. Each subcommand
imports what only it needs inside its function, so that ``remove`` does not pay for
loading Gradio and ``serve`` does not pay for Ray.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from base.errors import RemovalError
from base.files import atomic_write
from base.settings import Settings, SettingsError, auth_users, build_parser, load_settings
from core import Engine
from core.formats import format_for_suffix
from core.options import add_option_arguments, options_from_args

if TYPE_CHECKING:
    import gradio as gr

log = logging.getLogger("app")


def configure_process(settings: Settings) -> None:
    """Process-wide state, set once here: logging, and Pillow's decompression-bomb guard."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from PIL import Image

    # Pillow warns past this many pixels (errors past twice it); the decoder turns the
    # warning into ImageTooLarge, so Pillow's guard and ours are the same limit.
    Image.MAX_IMAGE_PIXELS = settings.max_pixels


# --- python app.py remove ------------------------------------------------------------


def remove_command(argv: Sequence[str]) -> int:
    parser = build_parser(prog="app.py remove", description="Remove the background of one image.")
    parser.add_argument("input", type=Path, help="image file (decoded by content, not by name)")
    parser.add_argument("output", type=Path, help="where to write the result")
    add_option_arguments(parser, format_help="png, webp or jpeg (default: from OUTPUT's suffix)")
    args = parser.parse_args(list(argv))
    settings = load_settings(argv, parser=parser)
    configure_process(settings)
    options = options_from_args(args, output_format=args.output_format or format_for_suffix(args.output.suffix))
    result = Engine(settings).remove(args.input, options)
    atomic_write(args.output, result.data)  # never a half-written output
    t = result.timings
    log.info(
        "%s -> %s: %dx%d, %s on %s, %.0f ms (inference %.0f ms)",
        args.input,
        args.output,
        result.image.width,
        result.image.height,
        result.model,
        result.provider,
        t["total"],
        t["inference"],
    )
    return 0


# --- python app.py (serve) -------------------------------------------------------------


def queue_depth(demo: gr.Blocks, concurrency_id: str | None = None) -> int:
    """Events waiting in Gradio's queue, or in one concurrency group of it (0 before it starts)."""
    queue = getattr(demo, "_queue", None)
    pending = getattr(queue, "event_queue_per_concurrency_id", {}) if queue else {}
    return sum(len(getattr(q, "queue", [])) for cid, q in pending.items() if concurrency_id in (None, cid))


def create(settings: Settings) -> tuple[gr.Blocks, dict[str, Any]]:
    """The WebUI, the Gradio API and the REST API on one engine: the Blocks (queued) and ``launch()``'s arguments.

    The REST routes are handed to Gradio's own FastAPI app (``app_kwargs``) so that
    ``launch()`` keeps working with ``--share``; Gradio's queue is bounded and closed
    to direct REST calls (``api_open=False``), so every Gradio call goes through it.
    """
    import gradio as gr

    from api.rest import create_router
    from core.imaging import ALPHA_MATTING_WARMUP
    from ui import build_ui, page
    from ui.activity import Activity

    engine = Engine(settings)
    users = auth_users(settings.auth)
    # Alpha matting compiles on first use; warming it now, beside serving, spares the first user the wait.
    ALPHA_MATTING_WARMUP.start()
    activity = Activity(waiting=lambda lane: queue_depth(demo, lane))
    demo = build_ui(settings, engine, activity=activity)
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
        "css": page.CSS,
        "head": page.SCRIPT,
        "i18n": page.I18N,
        "quiet": True,  # Gradio's start-up lines name launch()'s arguments; serve() logs this app's own
        "show_error": True,  # gr.Error messages only: handlers never let other exceptions through
        "app_kwargs": {"routes": router.routes},
        "footer_links": ["api", "gradio", "settings"],
    }
    return demo, launch_kwargs


def serve(argv: Sequence[str]) -> int:
    settings = load_settings(argv, parser=build_parser(description=__doc__.split("\n\n")[0]))
    configure_process(settings)
    demo, launch_kwargs = create(settings)
    if settings.share and not settings.auth:
        log.warning("--share without --auth: anyone with the public link can use this machine")
    log.info(
        "serving on http://%s:%d (REST: /api/remove, health: /healthz)%s",
        settings.host,
        settings.port,
        "" if settings.share else "; add --share for a public link",
    )
    # SIGTERM (docker stop, systemd) takes the same path as Ctrl-C: Gradio closes the
    # server, uvicorn lets in-flight requests finish, and the process exits 0.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        demo.launch(**launch_kwargs)
    except KeyboardInterrupt:
        pass
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["remove"]:
            return remove_command(args[1:])
        if args[:1] == ["batch"]:
            from batch.cli import main as batch_command  # tqdm (and Ray) load only for batch runs

            return batch_command(args[1:], configure_process)
        return serve(args)
    except SettingsError as exc:
        print(f"app.py: {exc}", file=sys.stderr)
        return 2
    except RemovalError as exc:
        print(f"app.py: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
