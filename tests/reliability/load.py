"""Load: concurrent clients against the real server for a fixed time, REST and ``gradio_client`` mixed.

    python -m tests.reliability.load --seconds 60 --clients 8 [--model u2netp] [--queue-size N]

Launches ``python app.py`` on a free loopback port (``tests.conftest.launch_server``)
with its temporary folders isolated. Client ``i`` sends photo ``(i + k) % 8`` of
``assets/photos`` on its ``k``-th request, alternating REST and the Gradio client
API, so concurrent requests carry distinct images. Every response is checked
against the library's mask for its own photo (IoU of alpha > 127 at least 0.99;
a different size is a mix-up). Prints p50/p95/p99 latency, throughput, errors,
mix-ups and explicit refusals (503/429/413, Gradio's full queue) counted apart,
and the server's RSS and temporary files at the end. Exit status 1 on any error or
mix-up, or a stray temporary file; refusals alone do not fail.
"""

from __future__ import annotations

import argparse
import json
import shutil
import threading
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


def run(seconds: float, clients: int, model: str = "u2netp", server_flags: Sequence[str] = ()) -> dict[str, Any]:
    references = reference_masks(PHOTOS, model)
    root = new_root("rembg-load-")
    isolated = launch_isolated(root, *server_flags)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)
    try:
        requesters = []
        for i in range(clients):
            downloads = root / f"client-{i}"
            downloads.mkdir()
            requesters.append(Requester(isolated.url, downloads, references, model))
        deadline = 0.0

        def client(i: int) -> None:
            ready.wait()
            k = 0
            while time.monotonic() < deadline:
                photo = PHOTOS[(i + k) % len(PHOTOS)]
                outcome = requesters[i].one("rest" if (i + k) % 2 == 0 else "gradio", photo)
                with lock:
                    outcomes.append(outcome)
                k += 1

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        for t in threads:
            t.start()
        start = time.monotonic()
        deadline = start + seconds
        ready.wait()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        for r in requesters:
            r.close()
        summary = summarise(outcomes, elapsed)
        summary.update(
            clients=clients,
            seconds=seconds,
            model=model,
            server_rss_kib=rss_kib(isolated.pid),
            temp_files=census(isolated.temp),
            stray_files=strays(isolated.temp)[:10],
            server_alive=isolated.server.process.poll() is None,
            traceback_in_log="Traceback" in isolated.server.log(),
            machine=machine_load(),
        )
        return summary
    finally:
        stop_server(isolated.server)
        shutil.rmtree(root, ignore_errors=True)


def passed(summary: dict[str, Any]) -> bool:
    return healthy(summary) and summary["ok"] > 0


def report(summary: dict[str, Any]) -> str:
    lines = [
        f"load: {summary['clients']} clients x {summary['seconds']:.0f} s, model {summary['model']}, "
        f"REST and gradio_client mixed ({summary['machine']})",
        f"  requests {summary['requests']}: ok {summary['ok']}, errors {summary['error']}, "
        f"mix-ups {summary['mixup']}, refused (queue full/too large) {summary['refused']}",
        *traffic_lines(summary),
        f"  server RSS at the end: {summary['server_rss_kib'] / 1024:.0f} MiB",
        f"  temp files at the end: {json.dumps(summary['temp_files'])}",
        *closing_lines(summary, passed(summary)),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--queue-size", type=int, help="passed to the server (default: its own)")
    args = parser.parse_args(argv)
    flags = ["--queue-size", str(args.queue_size)] if args.queue_size else []
    summary = run(args.seconds, args.clients, args.model, flags)
    print(report(summary), flush=True)
    return 0 if passed(summary) else 1


if __name__ == "__main__":
    raise SystemExit(main())
