"""REST throughput against ``rembg s``: the same 1080p JPEG to PNG, the same model, 1 and 4 clients.

Both servers run side by side on loopback. Each round measures every candidate (ours at each
precision, then ``rembg s``) at each client count, in turn, so that the machine's drift hits
them alike; the figure quoted is the median over rounds of each round's ratio to ``rembg s``.

``rembg s`` needs rembg's CLI extras, which pin an older Gradio than this project's, so it runs
from a virtual environment of its own:

    python3 -m venv /tmp/rembg-cli && /tmp/rembg-cli/bin/pip install "rembg[cli]==2.0.86" onnxruntime==1.32.0
    # rembg reads the same weights: U2NET_HOME, default ~/.u2net
    python -m benchmark rest --rembg-python /tmp/rembg-cli/bin/python [--rounds 3] [--requests 8]

Without ``--rembg-python`` only our server is measured (the ratios are then left out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from base.cpu import cpu_info
from base.timing import Clock
from benchmark.photos import test_jpeg
from benchmark.server import ROOT, free_port, launch_server, stop_server

REMBG = "rembg s"


def start_rembg(python: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``rembg s`` (the ``rembg`` script beside ``python``) on a free loopback port, up when it answers."""
    port = free_port()
    log = (tmp / "rembg-s.log").open("wb")
    proc = subprocess.Popen(
        # its UI off: less idle CPU for rembg's side, so the comparison favours it, if anything
        [str(Path(python).parent / "rembg"), "s", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rembg s exited with {proc.returncode}: {(tmp / 'rembg-s.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/api", timeout=2).status_code == 200:  # its API description
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("rembg s did not answer in 180 s")


def throughput(url: str, image: bytes, fields: dict[str, str], clients: int, requests: int) -> float:
    """Images per second for ``requests`` POSTs of ``image`` from ``clients`` threads; every answer must be 200."""

    def one(_: int) -> None:
        answer = httpx.post(f"{url}/api/remove", files={"file": ("photo.jpg", image)}, data=fields, timeout=600)
        if answer.status_code != 200:
            raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:200]}")

    clock = Clock()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))
    return requests / clock.elapsed_s()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark rest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rembg-python", help="a Python with rembg[cli] installed (see above)")
    parser.add_argument("--model", default="u2net")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=8, help="requests per measurement")
    parser.add_argument("--clients", default="1,4")
    parser.add_argument("--precisions", default="exact,fast")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    client_counts = [int(c) for c in args.clients.split(",")]
    precisions = args.precisions.split(",")

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        image = test_jpeg("1080p")
        ours = launch_server(tmp, "--default-model", args.model)
        rembg = start_rembg(args.rembg_python, tmp) if args.rembg_python else None
        candidates = {f"ours {p}": (ours.url, {"model": args.model, "precision": p}) for p in precisions}
        if rembg:
            candidates[REMBG] = (rembg[1], {"model": args.model})
        try:
            for url, fields in candidates.values():  # warm-up: sessions load, first inferences
                throughput(url, image, fields, 1, 2)
            figures: dict[str, dict[int, list[float]]] = {n: {c: [] for c in client_counts} for n in candidates}
            for _ in range(args.rounds):
                for clients in client_counts:
                    for name, (url, fields) in candidates.items():
                        figures[name][clients].append(throughput(url, image, fields, clients, args.requests))
        finally:
            stop_server(ours)
            if rembg:
                rembg[0].terminate()
    report = _report(args, figures, client_counts)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def _report(
    args: argparse.Namespace, figures: dict[str, dict[int, list[float]]], clients: list[int]
) -> dict[str, object]:
    info = cpu_info()
    rows = []
    for name, by_clients in figures.items():
        for c in clients:
            row: dict[str, object] = {
                "server": name,
                "clients": c,
                "img_per_s_median": round(statistics.median(by_clients[c]), 3),
                "img_per_s_all": [round(x, 3) for x in by_clients[c]],
            }
            if REMBG in figures and name != REMBG:
                ratios = [a / b for a, b in zip(by_clients[c], figures[REMBG][c], strict=True)]
                row["vs_rembg_s_median"] = round(statistics.median(ratios), 2)
            rows.append(row)
    return {
        "model": args.model,
        "image": "1920x1080 JPEG -> PNG",
        "rounds": args.rounds,
        "requests_per_measurement": args.requests,
        "cpu": f"{info.model} ({', '.join(info.reported_flags())})",
        "rows": rows,
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
