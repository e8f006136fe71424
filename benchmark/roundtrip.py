"""Round trip through ``gradio_client``: our ``/remove_background`` against the obvious app.

The obvious app is what most rembg WebUIs do: ``gr.Image(type="pil")`` into
``rembg.remove()`` into ``gr.Image(type="pil", format="png")``, queued, so Gradio
decodes the upload and re-encodes the result. Both servers run side by side on
loopback, are called alternately on the same 1080p JPEG after a warm-up, and
the medians are compared.

    python -m benchmark.roundtrip [--runs 5] [--model u2net]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from base.timing import Clock
from benchmark.photos import test_jpeg
from benchmark.server import ROOT, free_port, launch_server, stop_server

OBVIOUS_APP = """
import sys
import gradio as gr
from rembg import new_session, remove

session = new_session(sys.argv[2], providers=["CPUExecutionProvider"])

def cut(image):
    return remove(image, session=session)

with gr.Blocks() as demo:
    inp = gr.Image(type="pil")
    out = gr.Image(type="pil", format="png")
    gr.Button().click(cut, inp, out, api_name="predict")
demo.queue().launch(server_name="127.0.0.1", server_port=int(sys.argv[1]))
"""


def start_obvious(model: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    script = tmp / "obvious_app.py"
    script.write_text(OBVIOUS_APP)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port), model], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    from gradio_client import Client

    deadline = time.monotonic() + 120
    while True:
        try:
            Client(url, verbose=False)
            return proc, url
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("the obvious app did not start") from None
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark.roundtrip", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="u2net")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        image = tmp / "photo-1080p.jpg"
        image.write_bytes(test_jpeg("1080p"))
        ours = launch_server(tmp, "--default-model", args.model, "--default-provider", "cpu")
        obvious, obvious_url = start_obvious(args.model, tmp)
        try:
            ours_client = Client(ours.url, verbose=False)
            obvious_client = Client(obvious_url, verbose=False)
            calls: dict[str, Callable[[], object]] = {
                "ours": lambda: ours_client.predict(handle_file(str(image)), api_name="/remove_background"),
                "obvious": lambda: obvious_client.predict(handle_file(str(image)), api_name="/predict"),
            }
            times: dict[str, list[float]] = {name: [] for name in calls}
            for i in range(args.runs + 1):  # round 0 warms both up (session load, first inference)
                for name, call in calls.items():
                    clock = Clock()
                    call()
                    if i:
                        times[name].append(clock.elapsed_ms())
        finally:
            stop_server(ours)
            obvious.terminate()
    medians = {name: round(statistics.median(v), 1) for name, v in times.items()}
    report = {
        "model": args.model,
        "runs": args.runs,
        "image": "1920x1080 JPEG",
        "median_ms": medians,
        "all_ms": {k: [round(x, 1) for x in v] for k, v in times.items()},
        "speedup": round(medians["obvious"] / medians["ours"], 2),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
