"""Memory amplification: many small requests that each ask for a lot, against one server's memory budget.

    python -m tests.reliability.amplify [--requests 8] [--budget-mb 3072] [--no-options]

Issue 25's finding 1: eight concurrent REST requests, each a small PNG of 40 MP with a
40 MP background image and a 40 MP touch-up image, raised the server's memory by 10.4 GB.
This starts a real server with the shipped limits and ``--memory-budget-mb``, sends the
requests at once, samples the server's resident memory every 20 ms while they run, and
prints one JSON object: every status, the memory before, the peak, the rise, and whether
the issue's target held (a rise of at most 4 GiB, every answer 200 or 503). Exit 1 if not.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from PIL import Image

from core.options import OPTIONS, rest_name
from tests.conftest import stop_server
from tests.reliability.catalogue import GOOD_PNG, SHIPPED_FLAGS
from tests.reliability.common import launch_isolated, new_root, rss_kib

SIZE = (6000, 6600)
TARGET_RISE_BYTES = 4 << 30


def flat_png(mode: str, colour: tuple[int, ...]) -> bytes:
    """A 40 MP PNG of a few hundred KB: flat, with a band so that it is not all one colour."""
    im = Image.new(mode, SIZE, colour)
    im.paste(tuple(255 - c for c in colour), (0, 0, SIZE[0], 64))
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=False, compress_level=9)
    return buf.getvalue()


def _sample(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], rss_kib(pid))
        except (OSError, RuntimeError):
            return
        time.sleep(0.02)


def run(requests: int, budget_mb: int, options: bool) -> dict[str, Any]:
    image = flat_png("RGB", (40, 90, 140))
    files: dict[str, tuple[str, bytes, str]] = {"file": ("big.png", image, "image/png")}
    if options:
        files[rest_name(OPTIONS["background_image"])] = ("bg.png", flat_png("RGB", (200, 180, 40)), "image/png")
        files[rest_name(OPTIONS["mask_edit"])] = ("touch.png", flat_png("RGBA", (0, 0, 0, 0)), "image/png")
    root = new_root("amplify-")
    server = launch_isolated(root, *SHIPPED_FLAGS, "--memory-budget-mb", str(budget_mb), "--read-timeout-s", "120")
    try:
        with httpx.Client(base_url=server.url, timeout=900) as http:
            warm = http.post("/api/remove", files={"file": ("small.png", GOOD_PNG, "image/png")})
            assert warm.status_code == 200, warm.text
            health = http.get("/healthz").json()
        before = rss_kib(server.pid) * 1024
        peak = [before // 1024]
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(server.pid, stop, peak), daemon=True)
        sampler.start()
        started = time.monotonic()

        def one(_: int) -> tuple[int, str]:
            with httpx.Client(base_url=server.url, timeout=900) as http:
                answer = http.post("/api/remove", files=files)
            code = answer.json()["error"]["code"] if answer.status_code != 200 else ""
            return answer.status_code, code

        with ThreadPoolExecutor(requests) as pool:
            answers = list(pool.map(one, range(requests)))
        elapsed = time.monotonic() - started
        stop.set()
        sampler.join()
        rise = peak[0] * 1024 - before
        statuses = [status for status, _ in answers]
        return {
            "requests": requests,
            "image": f"{SIZE[0]}x{SIZE[1]} PNG, {len(image):,} bytes",
            "option_images": options,
            "budget_mb": health.get("memory", {}).get("budget_mb", budget_mb),
            "statuses": statuses,
            "errors": sorted({code for _, code in answers if code}),
            "seconds": round(elapsed, 1),
            "rss_before_mib": round(before / 2**20),
            "rss_peak_mib": round(peak[0] / 1024),
            "rise_mib": round(rise / 2**20),
            "target_held": rise <= TARGET_RISE_BYTES and set(statuses) <= {200, 503},
        }
    finally:
        stop_server(server.server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.amplify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--budget-mb", type=int, default=3072)
    parser.add_argument("--no-options", dest="options", action="store_false", help="without the option images")
    args = parser.parse_args(argv)
    report = run(args.requests, args.budget_mb, args.options)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0 if report["target_held"] else 1


if __name__ == "__main__":
    sys.exit(main())
