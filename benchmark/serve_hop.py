"""``python -m benchmark serve``: the cost of the hop, REST through Ray Serve against ``python app.py``.

Both run here as real servers on free ports: ``python app.py``, then ``serve run`` of
``deploy/ray/serve.yaml`` (a local Ray instance on this machine's cores) with the removal
deployment held at 1, then 2 replicas (CPUs split between them). Each is sent the same
photo by ``--clients`` threads (``--requests`` each, after a warm-up) over
``POST /api/remove``; images per second and latency percentiles are printed and saved,
with the ratio Serve / app.py (app.py is measured before and after the Serve runs, and
the ratio taken against the mean, since a shared machine's load drifts). Needs Ray Serve (``requirements-ray.txt``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from base.assets import PHOTOS_DIR
from benchmark.concurrency import callers
from benchmark.server import ROOT, free_port, launch_server, stop_server, wait_healthy

SERVE_YAML = ROOT / "deploy" / "ray" / "serve.yaml"


def measure(url: str, photo: bytes, clients: int, requests: int) -> dict[str, Any]:
    """``clients`` threads, ``requests`` each, after one warm-up request per client."""

    def call() -> tuple[int, float]:
        started = time.perf_counter()
        r = httpx.post(f"{url}/api/remove", files={"file": ("photo.jpg", photo)}, timeout=300)
        return r.status_code, (time.perf_counter() - started) * 1000

    callers(call, clients, requests=1)
    results, seconds = callers(call, clients, requests=requests)
    ms = np.array([t for status, t in results if status == 200])
    return {
        "ok": len(ms),
        "failed": len(results) - len(ms),
        "images_per_s": round(len(ms) / seconds, 3),
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
        "p95_ms": round(float(np.percentile(ms, 95)), 1) if len(ms) else None,
    }


def serve_config(port: int, replicas: int, cpus: int) -> dict[str, Any]:
    """serve.yaml, on ``port``, with the removal deployment held at ``replicas`` sharing ``cpus``."""
    config: dict[str, Any] = yaml.safe_load(SERVE_YAML.read_text())
    config["http_options"]["port"] = port
    config["applications"][0]["args"].update(
        serve_min_replicas=replicas, serve_max_replicas=replicas, serve_cpus_per_replica=max(1, cpus // replicas)
    )
    return config


def run_serve(replicas: int, photo: bytes, clients: int, requests: int, folder: Path) -> dict[str, Any]:
    port = free_port()
    cpus = os.cpu_count() or 1
    config = folder / f"serve-{replicas}.yaml"
    config.write_text(yaml.safe_dump(serve_config(port, replicas, cpus)))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # always a local instance here
    log = (folder / f"serve-{replicas}.log").open("wb")
    process = subprocess.Popen(
        [_serve_cli(), "run", str(config)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process, 300, degraded=False)
        return measure(url, photo, clients, requests)
    finally:
        process.send_signal(signal.SIGINT)  # serve run shuts the application and Ray down on Ctrl-C
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def _serve_cli() -> str:
    return str(Path(sys.executable).with_name("serve"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=8, help="per client, after one warm-up each")
    parser.add_argument("--photo", default="car-1.jpg", help=f"a photo in {PHOTOS_DIR}")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "serve.json")
    args = parser.parse_args(argv)
    photo = (PHOTOS_DIR / args.photo).read_bytes()
    report: dict[str, Any] = {"clients": args.clients, "requests_per_client": args.requests, "photo": args.photo}
    report["cpus"] = os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:

        def app_py() -> dict[str, Any]:
            server = launch_server(Path(tmp))
            try:
                return measure(server.url, photo, args.clients, args.requests)
            finally:
                stop_server(server)

        # app.py before and after the Serve runs: on a shared machine the load drifts, and the
        # ratio is taken against the mean of the two.
        report["app_py_before"] = app_py()
        print(f"python app.py            {report['app_py_before']}")
        rows = {}
        for replicas in args.replicas:
            rows[replicas] = run_serve(replicas, photo, args.clients, args.requests, Path(tmp))
            print(f"Serve, {replicas} replica(s)      {rows[replicas]}")
        report["app_py_after"] = app_py()
        print(f"python app.py (again)    {report['app_py_after']}")
        baseline = (report["app_py_before"]["images_per_s"] + report["app_py_after"]["images_per_s"]) / 2
        for replicas, row in rows.items():
            row["ratio_to_app_py"] = round(row["images_per_s"] / baseline, 3)
            report[f"serve_{replicas}_replicas"] = row
            print(f"Serve, {replicas} replica(s) / app.py: {row['ratio_to_app_py']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
