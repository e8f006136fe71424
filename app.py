"""Entry point of the service.

    python app.py [FLAGS]                        serve the WebUI, the Gradio API and the REST API
    python app.py remove INPUT OUTPUT [OPTIONS]  cut out one image from the command line
    python app.py batch IN OUT [OPTIONS]         a folder, list file or zip (batch/, --workers, --ray)

Every flag is a row of the settings table (``core/settings.py``); ``--help`` lists
them with their environment variables. Logging is configured here and only here.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import RemovalError
from core.settings import Settings, SettingsError, build_parser, load_settings

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


def _remove_parser() -> argparse.ArgumentParser:
    from batch.cli import add_option_arguments

    parser = build_parser(prog="app.py remove", description="Remove the background of one image.")
    parser.add_argument("input", type=Path, help="image file (decoded by content, not by name)")
    parser.add_argument("output", type=Path, help="where to write the result")
    add_option_arguments(parser, format_help="png, webp or jpeg (default: from OUTPUT's suffix)")
    return parser


def remove_command(argv: Sequence[str]) -> int:
    from batch.cli import options_from_args
    from core import Engine

    parser = _remove_parser()
    args = parser.parse_args(list(argv))
    settings = load_settings(argv, parser=parser)
    configure_process(settings)
    suffix = args.output.suffix.lower().lstrip(".")
    options = options_from_args(
        args, args.output_format or (suffix if suffix in ("png", "webp", "jpg", "jpeg") else "png")
    )
    result = Engine(settings).remove(args.input, options)
    tmp = args.output.with_name(f".{args.output.name}.part")
    tmp.write_bytes(result.data)
    tmp.replace(args.output)  # atomic: never a half-written output
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


def serve(argv: Sequence[str]) -> int:
    settings = load_settings(argv, parser=build_parser(description=__doc__.split("\n\n")[0]))
    configure_process(settings)
    from api.server import serve as run_server  # gradio loads only when serving

    # SIGTERM (docker stop, systemd) takes the same path as Ctrl-C: Gradio closes the
    # server, uvicorn lets in-flight requests finish, and the process exits 0.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        run_server(settings)
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
