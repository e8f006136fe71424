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

import asyncio
import contextlib
import functools
import logging
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from base.edges import ExitCode
from base.errors import InvalidOption, RemovalError
from base.files import atomic_write, folder_bytes
from base.memory import return_large_frees
from base.settings import Settings, SettingsError, auth_users, build_parser, load_settings, quiet_gradio
from core import Engine, custom
from core.formats import format_for_suffix
from core.options import add_option_arguments, options_from_args

if TYPE_CHECKING:
    import gradio as gr

    from api.guard import GuardState

quiet_gradio()  # before Gradio is imported (in create and serve): no analytics
log = logging.getLogger("app")


def configure_process(settings: Settings) -> None:
    """Process-wide state, set once here: logging, Pillow's decompression-bomb guard, and
    freed images returned to the system (``base.memory.return_large_frees``)."""
    return_large_frees()
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
    options = options_from_args(
        args,
        custom_models=[custom.parse(entry)[0].name for entry in settings.custom_model],
        output_format=args.output_format or format_for_suffix(args.output.suffix),
    )
    result = Engine(settings).remove(args.input, options)
    atomic_write(args.output, result.data)  # never a half-written output
    t = result.timings
    log.info(
        "%s -> %s: %dx%d, %s on %s %s (precision %s%s), %.0f ms (inference %.0f ms)",
        args.input,
        args.output,
        result.image.width,
        result.image.height,
        result.model,
        result.backend,
        result.precision,
        result.precision_ran,
        f"; {result.precision_note}" if result.precision_note else "",
        t["total"],
        t["inference"],
    )
    return ExitCode.OK


# --- python app.py (serve) -------------------------------------------------------------


def queue_depth(demo: gr.Blocks, concurrency_id: str | None = None) -> int:
    """Events waiting in Gradio's queue, or in one concurrency group of it (0 before it starts)."""
    queue = getattr(demo, "_queue", None)
    pending = getattr(queue, "event_queue_per_concurrency_id", {}) if queue else {}
    return sum(len(getattr(q, "queue", [])) for cid, q in pending.items() if concurrency_id in (None, cid))


def pending_jobs(demo: gr.Blocks) -> int:
    """Gradio jobs waiting, running, or finished but not yet delivered to their client."""
    queue = getattr(demo, "_queue", None)
    if queue is None:
        return 0
    running = sum(len(job) for job in getattr(queue, "active_jobs", []) if job)
    undelivered = sum(len(ids) for ids in getattr(queue, "pending_event_ids_session", {}).values())
    return queue_depth(demo) + running + undelivered


def remote_engine(settings: Settings) -> Engine:
    """``--ray-address``: an engine whose removals run on the Ray Serve deployment (``serving``);
    it connects in the background (``warm``), and ``/healthz`` is degraded, with the reason, until it has."""
    try:
        from serving.client import ServeEngine  # Ray loads only for this
    except ImportError as exc:
        raise SettingsError(f"--ray-address needs Ray Serve: pip install -r requirements-ray.txt ({exc})") from None
    return ServeEngine(settings)


def create(settings: Settings) -> tuple[gr.Blocks, dict[str, Any], GuardState, Path]:
    """The WebUI, the Gradio API and the REST API on one engine: the Blocks (queued), ``launch()``'s
    arguments, the state of the guard every request passes (``api.guard``) and the folder of
    the WebUI's results (removed after a clean stop).

    The REST routes and the guard are handed to Gradio's own FastAPI app (``app_kwargs``) so
    that ``launch()`` keeps working with ``--share``; Gradio's queue is bounded and closed
    to direct REST calls (``api_open=False``), so every Gradio call goes through it.
    """
    import gradio as gr
    import gradio.utils
    from fastapi.exceptions import RequestValidationError
    from starlette.middleware import Middleware

    from api.guard import Guard, guard_state, internal_events, validation_failed
    from api.rest import create_router
    from core.imaging import ALPHA_MATTING_WARMUP
    from ui import build_ui, page
    from ui.activity import Activity

    engine = remote_engine(settings) if settings.ray_address else Engine(settings)
    users = auth_users(settings.auth)
    uploads = Path(gradio.utils.get_upload_folder())
    if not settings.ray_address:
        # Alpha matting compiles on first use; warming it now, beside serving, spares the first user the wait.
        ALPHA_MATTING_WARMUP.start()
    activity = Activity(waiting=lambda lane: queue_depth(demo, lane))
    outputs = Path(tempfile.mkdtemp(prefix="rembg-webui-"))
    demo = build_ui(settings, engine, outputs, activity=activity)
    demo.queue(max_size=settings.queue_size, api_open=False, default_concurrency_limit=1)
    guard = guard_state(
        users, settings.max_upload_bytes, settings.max_batch_bytes, settings.read_timeout_s, settings.max_failed_logins
    )
    guard.internal_fns, guard.internal_names = internal_events(
        (fn._id, fn.api_name, fn.api_visibility) for fn in demo.fns.values()
    )
    guard.upload_quota_bytes = upload_quota_bytes(settings, uploads)
    guard.upload_usage = usage = CachedSize(uploads)
    guard.upload_ended = usage.forget
    router = create_router(engine, users, lambda: queue_depth(demo), lambda: guard.draining)
    # The default model loads (or the Ray cluster is reached) in the background: the first request
    # does not wait for it, and /healthz knows at once whether it can.
    threading.Thread(target=engine.warm, name="warm-up", daemon=True).start()
    launch_kwargs: dict[str, Any] = {
        "server_name": settings.host,
        "server_port": settings.port,
        "share": settings.share,
        "auth": users or None,
        "max_file_size": settings.max_upload_bytes,
        "mcp_server": settings.mcp,
        "theme": gr.themes.Soft(),
        "css": page.CSS,
        "head": page.head(settings),
        "i18n": page.I18N,
        "quiet": True,  # Gradio's start-up lines name launch()'s arguments; serve() logs this app's own
        "show_error": True,  # gr.Error messages only: handlers never let other exceptions through
        "app_kwargs": {
            "routes": router.routes,
            "middleware": [Middleware(Guard, state=guard)],
            "exception_handlers": {RequestValidationError: validation_failed},
        },
        "footer_links": ["api", "gradio", "settings"],
    }
    return demo, launch_kwargs, guard, outputs


#: The share of the free disk (where Gradio keeps uploads) the upload quota takes when ``--upload-disk-mb`` is 0.
UPLOAD_DISK_SHARE = 0.5


def upload_quota_bytes(settings: Settings, folder: Path) -> int:
    """``--upload-disk-mb``, or half the disk free now where Gradio keeps its uploads."""
    if settings.upload_disk_mb:
        return settings.upload_disk_mb << 20
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return int(shutil.disk_usage(probe).free * UPLOAD_DISK_SHARE)
    except OSError:
        return 0  # unknown: no quota (the per-request limit still holds)


class CachedSize:
    """``folder_bytes(folder)``, walked at most once a second (every upload asks), and again after ``forget``."""

    def __init__(self, folder: Path, every_s: float = 1.0) -> None:
        self.folder = folder
        self.every_s = every_s
        self._at = -math.inf
        self._size = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            if time.monotonic() - self._at >= self.every_s:
                self._size = folder_bytes(self.folder)
                self._at = time.monotonic()
            return self._size

    def forget(self) -> None:
        with self._lock:
            self._at = -math.inf


#: Gradio's cache keeps each file in a folder named by the SHA-256 of its content or URL.
_CACHE_ENTRY = re.compile(r"[0-9a-f]{64}")


def cache_entries(folder: Path) -> set[str]:
    """The names in Gradio's cache folder now (taken before serving, so that a stop knows what it added)."""
    try:
        return {p.name for p in folder.iterdir()}
    except OSError:
        return set()


def leave_nothing_behind(outputs: Path, cache: Path, before: set[str]) -> int:
    """After a clean stop: remove the results folder, and what this process added to Gradio's cache.

    Gradio deletes most of its cache at close, but not the example photos it cached at start
    nor the files MCP decoded from base64 (``file.png``); the results folder is ours and
    outlived the process (35 files, 13.8 MB after a load run). Only the content-addressed
    folders that were not there at start go, so another Gradio app's files stay (a folder
    shared while both run, with the same content, is the one that could be lost). How many went.
    """
    gone = 0
    for name in sorted(cache_entries(cache) - before):
        path = cache / name
        if _CACHE_ENTRY.fullmatch(name) or (name == "vibe_edit_history" and not any(path.iterdir())):
            shutil.rmtree(path, ignore_errors=True)
            gone += 1
    if outputs.exists():
        shutil.rmtree(outputs, ignore_errors=True)
        gone += 1
    if gone:
        log.info("removed the results folder and %d folder(s) this run added to Gradio's cache", gone - 1)
    return gone


#: Loose ``tmp*`` files in Gradio's upload folder not written for this long are uploads that
#: were cut off (Gradio renames a finished upload into the cache); the folder may be shared
#: with other Gradio apps, whose uploads in progress are younger.
STRAY_UPLOAD_AGE_S = 600.0
SWEEP_EVERY_S = 300.0
#: After the last job is delivered, how long no request may arrive before the process exits
#: (a client fetches its result file right after the result).
DRAIN_QUIET_S = 1.0


def sweep_stray_uploads(folder: Path, older_than_s: float = STRAY_UPLOAD_AGE_S) -> int:
    """Delete loose ``tmp*`` files in Gradio's upload folder not written for ``older_than_s``; how many."""
    removed = 0
    cutoff = time.time() - older_than_s
    try:
        candidates = list(folder.glob("tmp*"))
    except OSError:
        return 0
    for path in candidates:
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue  # gone already, or not ours to delete
    if removed:
        log.info("removed %d cut-off upload file(s) from %s", removed, folder)
    return removed


def _sweep_forever(folder: Path, stop: threading.Event) -> None:
    while not stop.wait(SWEEP_EVERY_S):
        sweep_stray_uploads(folder)


def drain(demo: gr.Blocks, guard: GuardState, timeout_s: float) -> bool:
    """Refuse new work; wait until every admitted job, queued or running, has finished and been
    delivered, and no request came for ``DRAIN_QUIET_S``. False when ``timeout_s`` ran out first."""
    guard.draining = True
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        if pending_jobs(demo) == 0 and guard.active == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= DRAIN_QUIET_S:
                return True
        else:
            quiet_since = None
        time.sleep(0.05)
    return False


#: How long the server's loop gets to deliver the abandoned requests' answers.
ABANDON_WAIT_S = 1.0


def abandon_jobs(demo: gr.Blocks, guard: GuardState) -> int:
    """After a drain that ran out of time: every request in progress gets a 503, every Gradio job an error.

    The work goes on in its threads until the process exits; its clients are answered now,
    on the server's own loop, instead of finding their connections dropped. How many were told.
    """
    from gradio.server_messages import ProcessCompletedMessage

    from api.guard import ABANDONED, abandon

    loop = guard.loop
    if loop is None or loop.is_closed():
        return 0

    async def tell() -> int:
        told = await abandon(guard)
        queue = getattr(demo, "_queue", None)
        if queue is not None:
            running = [event for job in getattr(queue, "active_jobs", []) if job for event in job]
            waiting = [e for q in getattr(queue, "event_queue_per_concurrency_id", {}).values() for e in q.queue]
            for event in running + waiting:
                message = ProcessCompletedMessage(output={"error": ABANDONED}, success=False, title="Error")
                queue.send_message(event, message)
                told += 1
        await asyncio.sleep(0.2)  # the streams take the messages out before the server closes
        return told

    try:
        return asyncio.run_coroutine_threadsafe(tell(), loop).result(ABANDON_WAIT_S + 1)
    except Exception:  # a failure here must not stop the exit
        log.exception("could not tell the clients of the jobs still running")
        return 0


@contextlib.contextmanager
def uvicorn_options(**options: Any) -> Iterator[None]:
    """While Gradio's ``launch()`` runs, its ``uvicorn.Config`` gets ``options`` too.

    Gradio builds the Config inside ``launch()`` and passes none of these through; the one
    name its server module looks up there is replaced for the call, and put back after.
    """
    import gradio.http_server
    import uvicorn

    # The name is Gradio's own import, not an export, so the type checker is not told of it.
    http_server: Any = gradio.http_server
    real = http_server.uvicorn

    class Uvicorn:
        Config = functools.partial(uvicorn.Config, **options)
        Server = uvicorn.Server

    http_server.uvicorn = Uvicorn
    try:
        yield
    finally:
        http_server.uvicorn = real


def serve(argv: Sequence[str]) -> int:
    """Serve until SIGTERM or Ctrl-C; then drain (``drain``) and exit 0. A second signal exits at once."""
    import gradio.utils

    from api.guard import guarded_protocol

    settings = load_settings(argv, parser=build_parser(description=__doc__.split("\n\n")[0]))
    configure_process(settings)
    uploads = Path(gradio.utils.get_upload_folder())
    cached_before = cache_entries(uploads)  # before the Blocks cache their example photos
    demo, launch_kwargs, guard, outputs = create(settings)
    if settings.share and not settings.auth:
        log.warning("--share without --auth: anyone with the public link can use this machine")
    log.info(
        "serving on http://%s:%d (REST: /api/remove, health: /healthz)%s",
        settings.host,
        settings.port,
        "" if settings.share else "; add --share for a public link",
    )
    sweep_stray_uploads(uploads)
    stopping = threading.Event()
    threading.Thread(target=_sweep_forever, args=(uploads, stopping), name="sweep", daemon=True).start()
    signals: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        signals.append(signum)
        if len(signals) > 1:
            raise KeyboardInterrupt  # asked twice: stop now
        stopping.set()

    # SIGTERM (docker stop, systemd) and Ctrl-C alike: new work is refused, admitted jobs finish
    # (REST and Gradio's queue, up to --shutdown-timeout-s), then the server closes and exits 0.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with uvicorn_options(
        http=guarded_protocol(settings.read_timeout_s),
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,
        # after a drain (which waits for the jobs), connections still open get this long to close
        timeout_graceful_shutdown=1,
    ):
        demo.launch(prevent_thread_lock=True, **launch_kwargs)
    abandoned = False
    try:
        while not stopping.wait(0.5):
            pass
        log.info("shutting down: new work is refused; waiting up to %d s for jobs", settings.shutdown_timeout_s)
        if drain(demo, guard, settings.shutdown_timeout_s):
            log.info("every job finished; closing")
        else:
            abandoned = True
            told = abandon_jobs(demo, guard)
            log.warning(
                "jobs still running after --shutdown-timeout-s %d; %d client(s) told to retry; closing",
                settings.shutdown_timeout_s,
                told,
            )
    except KeyboardInterrupt:
        abandoned = True
        log.warning("asked again: closing without waiting for the jobs still running")
    finally:
        if not abandoned:
            demo.close()
        leave_nothing_behind(outputs, uploads, cached_before)
    if abandoned:
        # The abandoned work still runs in pool threads, which closing the server and the interpreter's
        # exit would both wait for (matting: seconds past the timeout, then a cancelled task's traceback).
        # Its clients have their answers; the process ends now, and its sockets with it.
        logging.shutdown()
        os._exit(0)
    return 0


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
        return ExitCode.BAD_FLAG
    except InvalidOption as exc:  # an option value only the engine could judge: still a bad flag
        print(f"app.py: {exc.message}", file=sys.stderr)
        return ExitCode.BAD_FLAG
    except RemovalError as exc:
        print(f"app.py: {exc.message}", file=sys.stderr)
        return ExitCode.FAILED
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
