"""Soak: many sequential requests against the real server; memory and temporary files must level off.

    python -m tests.reliability.soak --requests 500 [--model u2netp] [--benchmark-at 100 300]

Launches ``python app.py`` with its temporary folders isolated, then sends the
photos of ``assets/photos`` in turn along every way in: REST and the Gradio client
API alternating, and, as the WebUI page sends them, every ``--matting-every``-th
request the Upload tab with alpha matting, every ``--gallery-every``-th a Gallery run
of four photos, and the Benchmark tab's quick run after the requests named by
``--benchmark-at``. Each response is checked against the library's mask for its own
photo. Reads the server's RSS (``VmRSS`` of ``/proc/PID/status``) and counts its
temporary files after ``--baseline`` requests (50) and after the last one, and prints
both with latency percentiles and error counts. Exit status 1 on any error or
mix-up, a stray temporary file, or (from 100 requests on) RSS at the end over
``--max-rss-growth`` (1.3) times the baseline's or over ``--max-rss-mib`` (1536).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import PHOTOS, stop_server
from tests.reliability.common import (
    Outcome,
    Requester,
    census,
    closing_lines,
    healthy,
    launch_isolated,
    machine_load,
    new_root,
    reference_masks,
    rss_kib,
    strays,
    summarise,
    traffic_lines,
)


def path_of(k: int, matting_every: int, gallery_every: int) -> str:
    """The way in of request ``k``: the UI paths at their intervals, else REST and Gradio alternating."""
    if matting_every and k % matting_every == matting_every // 2:
        return "matting"
    if gallery_every and k % gallery_every == gallery_every // 3:
        return "gallery"
    # photo k % 8 with path k % 2 would pair each photo with one path only; shift every round
    return "rest" if (k + k // len(PHOTOS)) % 2 == 0 else "gradio"


def run(
    requests: int,
    model: str = "u2netp",
    baseline: int = 50,
    server_flags: Sequence[str] = (),
    matting_every: int = 10,
    gallery_every: int = 25,
    benchmark_at: Sequence[int] = (),
) -> dict[str, Any]:
    references = reference_masks(PHOTOS, model)
    root = new_root("rembg-soak-")
    isolated = launch_isolated(root, *server_flags)
    try:
        downloads = root / "client"
        downloads.mkdir()
        requester = Requester(isolated.url, downloads, references, model)
        outcomes: list[Outcome] = []
        at_baseline: dict[str, Any] = {}
        start = time.monotonic()
        for k in range(requests):
            outcomes.append(requester.one(path_of(k, matting_every, gallery_every), PHOTOS[k % len(PHOTOS)]))
            if k + 1 in benchmark_at:
                outcomes.append(requester.benchmark())
            if k + 1 == min(baseline, requests):
                at_baseline = {"after": k + 1, "rss_kib": rss_kib(isolated.pid), "temp_files": census(isolated.temp)}
        elapsed = time.monotonic() - start
        requester.close()
        summary = summarise(outcomes, elapsed)
        end = {"after": requests, "rss_kib": rss_kib(isolated.pid), "temp_files": census(isolated.temp)}
        loaded = httpx.get(f"{isolated.url}/healthz", timeout=30).json().get("models_loaded", [])
        summary.update(
            model=model,
            baseline=at_baseline,
            end=end,
            rss_growth_pct=100.0 * (end["rss_kib"] - at_baseline["rss_kib"]) / at_baseline["rss_kib"],
            peak_rss_kib=_peak_kib(isolated.pid),
            models_loaded=sorted({m["model"] for m in loaded}),
            stray_files=strays(isolated.temp)[:10],
            server_alive=isolated.server.process.poll() is None,
            traceback_in_log="Traceback" in isolated.server.log(),
            machine=machine_load(),
        )
        return summary
    finally:
        stop_server(isolated.server)
        shutil.rmtree(root, ignore_errors=True)


#: What the soak holds the server to: RSS after the soak at most 1.3 times RSS after the baseline, and under
#: 1.5 GiB.
MAX_RSS_GROWTH = 1.3
MAX_RSS_MIB = 1536.0


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def rss_ok(summary: dict[str, Any], max_growth: float = MAX_RSS_GROWTH, max_mib: float = MAX_RSS_MIB) -> bool:
    if summary["requests"] < 100:
        return True
    base, end = summary["baseline"]["rss_kib"], summary["end"]["rss_kib"]
    return end <= max_growth * base and end / 1024 <= max_mib


def passed(summary: dict[str, Any], max_growth: float = MAX_RSS_GROWTH, max_mib: float = MAX_RSS_MIB) -> bool:
    return healthy(summary) and summary["ok"] == summary["requests"] and rss_ok(summary, max_growth, max_mib)


def report(summary: dict[str, Any], max_growth: float = MAX_RSS_GROWTH, max_mib: float = MAX_RSS_MIB) -> str:
    base, end = summary["baseline"], summary["end"]
    ratio = end["rss_kib"] / base["rss_kib"]
    lines = [
        f"soak: {summary['requests']} sequential requests, model {summary['model']}, REST, gradio_client "
        f"and the WebUI's matting, gallery and benchmark ({summary['machine']})",
        f"  ok {summary['ok']}, errors {summary['error']}, mix-ups {summary['mixup']}, refused {summary['refused']}",
        *traffic_lines(summary),
        f"  server RSS after {base['after']}: {base['rss_kib'] / 1024:.1f} MiB; after {end['after']}: "
        f"{end['rss_kib'] / 1024:.1f} MiB ({ratio:.2f}x; limit {max_growth:g}x and {max_mib:.0f} MiB); "
        f"peak {summary['peak_rss_kib'] / 1024:.0f} MiB; loaded at the end: {', '.join(summary['models_loaded'])}",
        f"  temp files after {base['after']}: {json.dumps(base['temp_files'])}",
        f"  temp files after {end['after']}: {json.dumps(end['temp_files'])}",
        *closing_lines(summary, passed(summary, max_growth, max_mib)),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--baseline", type=int, default=50, help="RSS and temp files are compared from here")
    parser.add_argument("--matting-every", type=int, default=10, help="the Upload tab with alpha matting (0: never)")
    parser.add_argument("--gallery-every", type=int, default=25, help="a Gallery run of four photos (0: never)")
    parser.add_argument("--benchmark-at", type=int, nargs="*", default=[100, 300], help="the Benchmark tab's run")
    parser.add_argument("--max-rss-growth", type=float, default=MAX_RSS_GROWTH, help="times, checked from 100 requests")
    parser.add_argument("--max-rss-mib", type=float, default=MAX_RSS_MIB, help="checked from 100 requests")
    args = parser.parse_args(argv)
    summary = run(
        args.requests, args.model, args.baseline, (), args.matting_every, args.gallery_every, args.benchmark_at
    )
    print(report(summary, args.max_rss_growth, args.max_rss_mib), flush=True)
    return 0 if passed(summary, args.max_rss_growth, args.max_rss_mib) else 1


if __name__ == "__main__":
    raise SystemExit(main())
