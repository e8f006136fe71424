"""``python -m models``: fetch and list the model weights.

    python -m models fetch [NAME ...] [--force] [--quiet]
    python -m models list [--json]
    python -m models build [NAME ...] [--force] [--no-gate] [--no-speed-gate]
    python -m models tune [NAME ...] [--runs N] [--quiet]

The weights folder is the service's ``model_home`` setting (``$U2NET_HOME``,
default ``~/.u2net``), read through ``base.settings`` like everything else.
Exit codes: 0 success, 1 a model could not be fetched, 2 bad usage (unknown
model, bad setting). Each subcommand is one ``_cmd_*`` function registered in
``build_parser``. ``build`` makes the entries whose source is a ``Build`` recipe
(``u2net-int8``...) with the ``variants`` tool; ``fetch`` of such an entry builds it
too. ``tune`` measures every runtime and precision of each installed model (onnxruntime
and OpenVINO; fp32, bf16, int8), gates them and records what ``precision=exact`` and
``precision=fast`` run here (``models.tuned``). This is an entry point, like
``app.py``: it may use every layer. The build tool stands on the engine (onnxruntime,
Pillow) and is imported only to build and tune, so that fetching needs nothing but
``base`` and ``models`` (the Docker images fetch the weights in a layer of their own,
before the rest of the code is copied).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from base.errors import ModelNotAvailable
from base.settings import SettingsError, load_settings
from models import fetch as fetching
from models import measured, tuned
from models.registry import DEFAULT_FETCH, MODELS, ModelSpec, PyPIWheel, Source, Url

PROG = "python -m models"

Handler = Callable[[argparse.Namespace, Path], int]


def _error(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _resolve(names: Sequence[str]) -> list[ModelSpec] | None:
    """Registry entries for ``names`` (deduplicated, in order); None if one is unknown."""
    specs: list[ModelSpec] = []
    for name in dict.fromkeys(names):
        spec = MODELS.get(name)
        if spec is None:
            _error(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
            return None
        specs.append(spec)
    return specs


def _cmd_fetch(args: argparse.Namespace, home: Path) -> int:
    specs = _resolve(args.names or DEFAULT_FETCH)
    if specs is None:
        return 2
    failed = False
    # Keep going after a failure: one unreachable model should not block the rest.
    for spec in specs:
        if spec.build is not None:
            failed |= not _build_one(spec, home, args, gate=True, enforce_speed=None)
            continue
        try:
            result = fetching.fetch(spec, home, progress=not args.quiet, force=args.force)
        except ModelNotAvailable as exc:
            print(exc.message, file=sys.stderr)
            failed = True
            continue
        if result.source is None:
            print(f"{spec.name}: ok (already present, verified) {result.path}")
        else:
            print(f"{spec.name}: fetched from {result.source.describe()} -> {result.path} (verified)")
    return 1 if failed else 0


def _cmd_build(args: argparse.Namespace, home: Path) -> int:
    specs = _resolve(args.names or [s.name for s in MODELS.values() if s.build is not None])
    if specs is None:
        return 2
    not_built = [s.name for s in specs if s.build is None]
    if not_built:
        _error(f"{', '.join(not_built)} are downloaded, not built: use `{PROG} fetch`")
        return 2
    failed = False
    for spec in specs:
        failed |= not _build_one(spec, home, args, gate=args.gate, enforce_speed=args.speed_gate)
    return 1 if failed else 0


def _build_one(spec: ModelSpec, home: Path, args: argparse.Namespace, gate: bool, enforce_speed: bool | None) -> bool:
    """Build one entry, say what happened; False when it failed."""
    from variants import BuildError, build

    try:
        result = build(
            spec, home, gate=gate, enforce_speed=enforce_speed, force=args.force, progress=not args.quiet, say=print
        )
    except (BuildError, ModelNotAvailable) as exc:
        why = exc.phrase if isinstance(exc, BuildError) else exc.message
        print(f"{spec.name}: {why}", file=sys.stderr)
        return False
    gate_figures = result.sidecar.get("gate") or {}
    base = result.sidecar.get("base", {}).get("name")
    figures = ""
    if "mean_mae" in gate_figures:
        figures = f" (alpha MAE {gate_figures['mean_mae']} vs {base}, speed-up {gate_figures['speedup']}x)"
    state = "built" if result.built else "ok (already built, verified)"
    print(f"{spec.name}: {state}{figures} {result.path}")
    return True


def _cmd_tune(args: argparse.Namespace, home: Path) -> int:
    from dataclasses import replace

    from variants.tune import tunable, tune

    specs = _resolve(args.names) if args.names else tunable(home)
    if specs is None:
        return 2
    not_tunable = [s.name for s in specs if s.build is not None]
    if not_tunable:
        _error(f"{', '.join(not_tunable)} are builds, tuned as candidates of their base model")
        return 2
    if not specs:
        _error(f"no model is installed in {home}: `{PROG} fetch` first")
        return 1
    settings = replace(load_settings([]), model_home=home)
    print(f"Measuring every runtime and precision of {', '.join(s.name for s in specs)} on this CPU ...")
    try:
        tune(settings, [s.name for s in specs], runs=args.runs, progress=not args.quiet, say=print)
    except ModelNotAvailable as exc:
        print(exc.message, file=sys.stderr)
        return 1
    print(f"recorded in {tuned.path(home)}")
    return 0


def _choices(home: Path, name: str) -> dict[str, Any] | None:
    """What exact and fast run for ``name`` here, from the tune record; None when it was not tuned."""
    from dataclasses import replace

    from core.catalog import precision_facts

    if not tuned.candidates(home, name):
        return None
    facts = precision_facts(replace(load_settings([]), model_home=home), name)
    return {word: facts[word] for word in ("exact", "fast")}


def _short(source: Source) -> str:
    if isinstance(source, PyPIWheel):
        return f"pypi:{source.package}=={source.version}"
    if isinstance(source, Url):
        return urlsplit(source.url).netloc or source.url
    return f"build:{source.base}+{source.recipe}"


def _mb(size: int | None) -> str:
    return "?" if size is None else f"{size / 1e6:.1f} MB"


def _cmd_list(args: argparse.Namespace, home: Path) -> int:
    rows: list[dict[str, Any]] = []
    rembg_home = getattr(args, "rembg_home", None)
    for spec in MODELS.values():
        st = fetching.status(spec, home, rembg_home)
        rows.append(
            {
                "name": spec.name,
                "filename": spec.filename,
                "path": str(st.path),
                "present": st.present,
                "size": st.size,
                "expected_size": spec.size,
                "verified": st.verified,
                "md5": spec.md5,
                "sources": [source.describe() for source in spec.sources],
                "family": spec.family,
                "get": None if st.verified else f"{fetching.FETCH_COMMAND} {spec.name}",
                "description": spec.description,
                "measured": measured.read(home).get("cpu", {}).get(spec.name),
                "precision": _choices(home, spec.name),
            }
        )
    if args.json:
        print(json.dumps({"home": str(home), "models": rows}, indent=2))
        return 0
    table = [("NAME", "SIZE", "PRESENT", "VERIFIED", "MEASURED", "SOURCES")]
    for spec, row in zip(MODELS.values(), rows, strict=True):
        table.append(
            (
                spec.name,
                _mb(row["size"] if row["present"] else spec.size),
                "yes" if row["present"] else "no",
                "yes" if row["verified"] else ("NO" if row["present"] else "-"),
                measured.describe(row["measured"]) if row["measured"] else "-",
                ", ".join(_short(source) for source in spec.sources),
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
    print(f"weights folder: {home}")
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)]
        print("  ".join([*cells, line[-1]]))
    tuned_rows = [row for row in rows if row["precision"]]
    if tuned_rows:
        print(f"precision here ({tuned.TUNE_COMMAND}, {tuned.read(home).get('measured_at', '?')}):")
    for row in tuned_rows:
        for word, c in row["precision"].items():
            speed = f", {c['speedup']:.2f}x onnxruntime fp32" if c.get("speedup") else ""
            mae = f", alpha MAE {c['mean_mae']:.2f}" if c.get("mean_mae") else ""
            note = f" ({c['note']})" if c.get("note") else ""
            print(f"  {row['name']} {word}: {c.get('runs', c.get('error'))}{speed}{mae}{note}")
    if not tuned_rows:
        print(f"precision: not tuned here; `{tuned.TUNE_COMMAND}` measures what exact and fast run")
    if not all(row["verified"] for row in rows):
        print(
            f"to get one that is not here: {fetching.FETCH_COMMAND} NAME, or put its file in {home} "
            f"(also looked for in {home}/models/NAME/ and {rembg_home or home}/models/NAME/); "
            f"URLs: {PROG} list --json"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Fetch and list the model weights (in $U2NET_HOME, default ~/.u2net).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fetch_cmd = commands.add_parser(
        "fetch",
        help="download model weights (idempotent)",
        description="Download model weights.",
    )
    fetch_cmd.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"models to fetch (default: {' '.join(DEFAULT_FETCH)}); one of {', '.join(MODELS)}",
    )
    fetch_cmd.add_argument(
        "--force",
        action="store_true",
        help="download again even if present and verified",
    )
    fetch_cmd.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    fetch_cmd.set_defaults(handler=_cmd_fetch)

    build_cmd = commands.add_parser(
        "build",
        help="make models built here (u2net-int8) from their base weights (idempotent)",
        description="Quantise a base model here, check the quality gate, install it atomically.",
    )
    build_cmd.add_argument("names", nargs="*", metavar="NAME", help="models to build (default: all built models)")
    build_cmd.add_argument("--force", action="store_true", help="build again even if present and verified")
    build_cmd.add_argument(
        "--no-gate",
        dest="gate",
        action="store_false",
        help="skip the quality gate (masks and speed; recorded as skipped)",
    )
    build_cmd.add_argument(
        "--no-speed-gate",
        dest="speed_gate",
        action="store_const",
        const=False,
        default=None,
        help="record the speeds but never fail on them (by default an int8 build must be 2x faster than u2net "
        "where the CPU has VNNI, 1.5x elsewhere, and at most 1.1x u2netp's time; the mask checks always apply)",
    )
    build_cmd.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    build_cmd.set_defaults(handler=_cmd_build)

    tune_cmd = commands.add_parser(
        "tune",
        help="measure every runtime and precision of the installed models; record what exact and fast run",
        description="Measure onnxruntime fp32/int8 and OpenVINO f32/bf16/int8 of each installed model against "
        "onnxruntime fp32 on the evaluation photos, gate them, print the table and record it "
        f"({tuned.FILENAME} in the weights folder), where the server reads it.",
    )
    tune_cmd.add_argument("names", nargs="*", metavar="NAME", help="models to tune (default: every installed one)")
    tune_cmd.add_argument("--runs", type=int, default=5, help="timed runs per candidate, alternated (default 5)")
    tune_cmd.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    tune_cmd.set_defaults(handler=_cmd_tune)

    list_cmd = commands.add_parser("list", help="show each model and whether it is present and verified")
    list_cmd.add_argument("--json", action="store_true", help="machine-readable output")
    list_cmd.set_defaults(handler=_cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # No flags of the service here; only the environment (U2NET_HOME) applies.
        settings = load_settings([])
    except SettingsError as exc:
        _error(str(exc))
        return 2
    # Warnings (retries, failed sources) on stderr; --quiet keeps only errors.
    logging.basicConfig(
        level=logging.ERROR if getattr(args, "quiet", False) else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    args.rembg_home = settings.rembg_home  # where rembg 2.0.86 keeps its own downloads, also looked in
    handler: Handler = args.handler
    return handler(args, settings.model_home)


if __name__ == "__main__":
    sys.exit(main())
