"""Soak: many sequential requests against the real server; memory and temporary files must level off.

    python -m tests.reliability.soak --requests 500 [--model u2netp]

Launches ``python app.py`` with its temporary folders isolated, then sends the
photos of ``assets/photos`` in turn, alternating REST and the Gradio client API,
each response checked against the library's mask for its own photo. Reads the
server's RSS (``VmRSS`` of ``/proc/PID/status``) and counts its temporary files
after ``--baseline`` requests (50) and after the last one, and prints both with
latency percentiles and error counts. Exit status 1 on any error or mix-up, a
stray temporary file, or (from 100 requests on) RSS growing by more than
``--max-rss-growth`` percent (10) between the baseline and the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Sequence
from typing import Any

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


def run(requests: int, model: str = "u2netp", baseline: int = 50, server_flags: Sequence[str] = ()) -> dict[str, Any]:
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
            # photo k % 8 with path k % 2 would pair each photo with one path only; shift every round
            path = "rest" if (k + k // len(PHOTOS)) % 2 == 0 else "gradio"
            outcomes.append(requester.one(path, PHOTOS[k % len(PHOTOS)]))
            if k + 1 == min(baseline, requests):
                at_baseline = {"after": k + 1, "rss_kib": rss_kib(isolated.pid), "temp_files": census(isolated.temp)}
        elapsed = time.monotonic() - start
        requester.close()
        summary = summarise(outcomes, elapsed)
        end = {"after": requests, "rss_kib": rss_kib(isolated.pid), "temp_files": census(isolated.temp)}
        summary.update(
            model=model,
            baseline=at_baseline,
            end=end,
            rss_growth_pct=100.0 * (end["rss_kib"] - at_baseline["rss_kib"]) / at_baseline["rss_kib"],
            stray_files=strays(isolated.temp)[:10],
            server_alive=isolated.server.process.poll() is None,
            traceback_in_log="Traceback" in isolated.server.log(),
            machine=machine_load(),
        )
        return summary
    finally:
        stop_server(isolated.server)
        shutil.rmtree(root, ignore_errors=True)


def passed(summary: dict[str, Any], max_rss_growth: float = 10.0) -> bool:
    rss_ok = summary["requests"] < 100 or summary["rss_growth_pct"] < max_rss_growth
    return healthy(summary) and summary["ok"] == summary["requests"] and rss_ok


def report(summary: dict[str, Any], max_rss_growth: float = 10.0) -> str:
    base, end = summary["baseline"], summary["end"]
    lines = [
        f"soak: {summary['requests']} sequential requests, model {summary['model']}, "
        f"REST and gradio_client alternating ({summary['machine']})",
        f"  ok {summary['ok']}, errors {summary['error']}, mix-ups {summary['mixup']}, refused {summary['refused']}",
        *traffic_lines(summary),
        f"  server RSS after {base['after']}: {base['rss_kib'] / 1024:.1f} MiB; after {end['after']}: "
        f"{end['rss_kib'] / 1024:.1f} MiB; growth {summary['rss_growth_pct']:+.1f}% (limit {max_rss_growth:.0f}%)",
        f"  temp files after {base['after']}: {json.dumps(base['temp_files'])}",
        f"  temp files after {end['after']}: {json.dumps(end['temp_files'])}",
        *closing_lines(summary, passed(summary, max_rss_growth)),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--baseline", type=int, default=50, help="RSS and temp files are compared from here")
    parser.add_argument("--max-rss-growth", type=float, default=10.0, help="percent, checked from 100 requests")
    args = parser.parse_args(argv)
    summary = run(args.requests, args.model, args.baseline)
    print(report(summary, args.max_rss_growth), flush=True)
    return 0 if passed(summary, args.max_rss_growth) else 1


if __name__ == "__main__":
    raise SystemExit(main())
