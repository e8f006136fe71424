"""Time and peak memory of every bad-input catalogue case on every path: the catalogue's figures.

    python -m tests.reliability.figures [--only ID ...] [--json OUT]

Launches two servers (``catalogue.LIMIT_FLAGS`` and ``catalogue.SHIPPED_FLAGS``) and
sends each case through the library (in this process), REST and the Gradio client
API, one request at a time. A request's time is its wall clock at the client; its
peak memory is how far the process's peak resident set (``VmHWM``) rose above its
resident set before the request, the peak being reset first (``/proc/PID/clear_refs``).
Prints one row per case and path, the worst time and peak, and exits 1 where a
request took longer than its case's ``budget_s`` plus ``SLACK_S`` or raised the peak
by more than ``PEAK_LIMIT_MIB``. Times need a quiet machine; ``test_catalogue.py``
records the same figures in CI (``tests/_artifacts/catalogue-figures.json``) and
asserts only the memory bound.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from base.errors import RemovalError
from core import Engine, RemovalOptions, RemovalResult, load_settings

#: What a request may take beyond its case's budget.
SLACK_S = 1.0
#: How far one request may raise a process's peak resident memory.
PEAK_LIMIT_MIB = 1536.0
ARTIFACTS = Path(__file__).resolve().parent.parent / "_artifacts"
T = TypeVar("T")


@dataclass
class Figure:
    case: str
    path: str  # library, rest or gradio
    seconds: float
    peak_mib: float
    budget_s: float
    outcome: str  # "ok" or the error's code

    @property
    def over_time(self) -> bool:
        return self.seconds > self.budget_s + SLACK_S

    @property
    def over_memory(self) -> bool:
        return self.peak_mib > PEAK_LIMIT_MIB


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for {pid}")


def measured(pid: int, call: Callable[[], T]) -> tuple[T | BaseException, float, float]:
    """Run ``call``; (its result or exception, seconds, rise of ``pid``'s peak RSS in MiB)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from the RSS now
    before = _status_kib(pid, "VmRSS")
    start = time.perf_counter()
    outcome: T | BaseException
    try:
        outcome = call()
    except Exception as exc:  # noqa: BLE001 - the caller judges the outcome
        outcome = exc
    seconds = time.perf_counter() - start
    return outcome, seconds, max(0.0, (_status_kib(pid, "VmHWM") - before) / 1024)


def library_remove(engine: Engine, data: bytes, options: dict[str, Any]) -> RemovalResult:
    """One library call as the server makes it: Pillow's bomb guard set to the engine's pixel limit."""
    from core.pipeline import remove_background

    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, engine.settings.max_pixels
    try:
        return remove_background(data, RemovalOptions.from_values(options), engine=engine)
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def warm_up(remove: Callable[[dict[str, Any]], object]) -> None:
    """One small request, plain and with alpha matting, before any is measured: the figures are
    a warm server's (the first request loads the model; the first matting compiles or loads
    pymatting's numba code)."""
    base = {"model": "u2netp", "provider": "cpu"}
    remove(base)
    remove({**base, "alpha_matting": True})


def code_of(outcome: object) -> str:
    if isinstance(outcome, RemovalError):
        return outcome.code
    if isinstance(outcome, BaseException):
        return type(outcome).__name__
    return "ok"


def summary_lines(figures: Sequence[Figure]) -> list[str]:
    cases = sorted({f.case for f in figures})
    slowest = max(figures, key=lambda f: f.seconds)
    hungriest = max(figures, key=lambda f: f.peak_mib)
    over = [f for f in figures if f.over_time or f.over_memory]
    lines = [
        f"{len(cases)} cases x {len({f.path for f in figures})} paths = {len(figures)} requests",
        f"worst time: {slowest.seconds:.2f} s ({slowest.case}, {slowest.path}; budget {slowest.budget_s:g} s)",
        f"worst peak memory rise: {hungriest.peak_mib:.0f} MiB ({hungriest.case}, {hungriest.path})",
    ]
    lines += [
        f"  ! {f.case} {f.path}: {f.seconds:.2f} s (budget {f.budget_s:g} + {SLACK_S:g} s), {f.peak_mib:.0f} MiB"
        for f in over
    ]
    return lines


def table(figures: Sequence[Figure]) -> str:
    lines = ["| case | path | outcome | seconds | budget | peak MiB |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {f.case} | {f.path} | {f.outcome} | {f.seconds:.2f} | {f.budget_s:g} | {f.peak_mib:.0f} |" for f in figures
    ]
    return "\n".join(lines)


def write(figures: Sequence[Figure], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(f) for f in figures], indent=1))


def measure_case(case: Any, engine: Engine, server: Any, http: Any, client: Any, folder: Path) -> list[Figure]:
    """One case through the library, REST and the Gradio client API of ``server``: three figures."""
    import httpx
    from gradio_client import handle_file

    from tests.reliability.common import rest_remove

    options = {"model": "u2netp", "provider": "cpu", **case.options}
    upload = folder / case.filename
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_bytes(case.data)
    outcome, seconds, peak = measured(os.getpid(), lambda: library_remove(engine, case.data, options))
    found = [Figure(case.id, "library", seconds, peak, case.budget_s, code_of(outcome))]
    response, seconds, peak = measured(server.pid, lambda: rest_remove(http, case.data, case.filename, **options))
    status = str(response.status_code) if isinstance(response, httpx.Response) else code_of(response)
    found.append(Figure(case.id, "rest", seconds, peak, case.budget_s, status))
    result, seconds, peak = measured(
        server.pid, lambda: client.predict(handle_file(str(upload)), api_name="/remove_background", **options)
    )
    found.append(Figure(case.id, "gradio", seconds, peak, case.budget_s, code_of(result)))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    import httpx
    from gradio_client import Client

    from tests.conftest import stop_server
    from tests.reliability.catalogue import CASES, GOOD_PNG, LIMIT_FLAGS, SHIPPED_FLAGS
    from tests.reliability.common import launch_isolated, new_root, rest_remove

    parser = argparse.ArgumentParser(prog="python -m tests.reliability.figures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="case ids (default: every case)")
    parser.add_argument("--json", type=Path, default=ARTIFACTS / "catalogue-figures.json")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.only or c.id in args.only]
    found: list[Figure] = []
    root = new_root("rembg-figures-")
    for limits, flags in (("small", LIMIT_FLAGS), ("shipped", SHIPPED_FLAGS)):
        group = [c for c in cases if c.limits == limits]
        if not group:
            continue
        engine = Engine(load_settings(list(flags)))
        server = launch_isolated(root / limits, *flags)
        try:
            http = httpx.Client(base_url=server.url, timeout=600)
            client = Client(server.url, verbose=False, download_files=str(root / "dl"), analytics_enabled=False)
            warm_up(lambda options, engine=engine: library_remove(engine, GOOD_PNG, options))
            warm_up(lambda options, http=http: rest_remove(http, GOOD_PNG, **options).raise_for_status())
            for case in group:
                three = measure_case(case, engine, server, http, client, root / "in")
                found += three
                print(f"{case.id}: " + ", ".join(f"{f.path} {f.seconds:.2f} s {f.peak_mib:.0f} MiB" for f in three))
        finally:
            stop_server(server.server)
    shutil.rmtree(root, ignore_errors=True)
    write(found, args.json)
    print(table(found))
    print("\n".join(summary_lines(found)))
    return 1 if any(f.over_time or f.over_memory for f in found) else 0


if __name__ == "__main__":
    sys.exit(main())
