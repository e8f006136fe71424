"""``python app.py batch IN OUT [OPTIONS]``: remove the backgrounds of a folder, a list or a zip.

Exit codes (``base.edges.ExitCode``, shared with ``app.py remove``): 0 every input done or
skipped; 1 some input failed (listed in ``OUT/_report.json``) or an error stopped the run
(weights, provider); 2 bad usage (missing IN, OUT not writable, a bad flag or option value,
out of range as much as of the wrong type, Ray not installed), checked before any model
loads; 130/143 stopped by SIGINT/SIGTERM.
The final summary goes to stdout; logs and the progress bar go to stderr.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from base.settings import Settings, SettingsError, build_parser, load_settings
from batch.inputs import InputError
from batch.job import BatchConfig
from batch.ray_runner import RAY_INSTALL_HINT, ray_available
from batch.runner import run_batch
from core import custom
from core.options import add_option_arguments, options_from_args

PROG = "app.py batch"


def _workers(value: str) -> int | None:
    if value == "auto":
        return None
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return count


def build_batch_parser() -> argparse.ArgumentParser:
    parser = build_parser(
        prog=PROG,
        description="Remove the backgrounds of every image in a folder (recursively), a list file or a zip.",
    )
    parser.add_argument("input", type=Path, metavar="IN", help="a folder, a list file (one path per line) or a zip")
    parser.add_argument("output", type=Path, metavar="OUT", help="output folder; mirrors IN's folders")
    add_option_arguments(parser, format_help="png (default), webp or jpeg (.jpg)")
    parser.set_defaults(output_format="png")
    parser.add_argument(
        "--workers",
        type=_workers,
        default=argparse.SUPPRESS,
        metavar="N|auto",
        help="processes (default 1; auto: one per GPU, or one per 2 physical cores); "
        "on CPU each gets physical cores / N threads unless --threads is given",
    )
    parser.add_argument(
        "--ray",
        metavar="local|auto|ADDRESS",
        help="run on a Ray cluster: local (start one here), auto (the running one) or its address",
    )
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def main(argv: Sequence[str], configure_logging: Callable[[Settings], None] | None = None) -> int:
    """Run ``batch``; ``SettingsError`` (bad flag) and fatal ``RemovalError`` propagate to app.py."""
    parser = build_batch_parser()
    args = parser.parse_args(list(argv))
    settings = load_settings(argv, parser=parser)
    if configure_logging is not None:
        configure_logging(settings)
    if args.ray is not None and not ray_available():
        raise SettingsError(RAY_INSTALL_HINT)
    options = options_from_args(args, custom_models=[custom.parse(entry)[0].name for entry in settings.custom_model])
    # Not given: one process locally (all cores in one session), auto on Ray (fill the cluster).
    workers = getattr(args, "workers", None if args.ray is not None else 1)
    config = BatchConfig(
        source=args.input,
        out=args.output,
        options=options,
        settings=settings,
        workers=workers,
        ray=args.ray,
        overwrite=args.overwrite,
        progress=args.progress,
        background_image=str(args.background_image) if args.background_image else None,
    )
    try:
        result = run_batch(config)
    except InputError as exc:
        raise SettingsError(str(exc)) from None
    print(f"{result.summary.line()}; report: {result.report}", flush=True)  # noqa: T201 - the CLI summary
    return result.exit_code
