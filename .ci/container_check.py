"""HTTP checks of a running container for .ci/containers, as a client outside it sees them.

    python .ci/container_check.py healthy URL TIMEOUT        wait for /healthz 200; print the seconds
    python .ci/container_check.py cutout URL PHOTO           one /api/remove: an RGBA PNG, transparent border
    python .ci/container_check.py degraded URL TIMEOUT WORD  wait for /healthz; it must be 503 "degraded",
                                                             with a reason that names the provider and WORD
    podman history --format json IMAGE | python .ci/container_check.py layers
                                                             one layer holds the weights: every layer over
                                                             50 MB is the base, a pip install or the fetch

Exit 0 when the check holds; otherwise 1 with one line saying what was seen instead.
"""

from __future__ import annotations

import io
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from PIL import Image


def fail(message: str) -> None:
    print(f"container_check: {message}", file=sys.stderr)
    raise SystemExit(1)


def health(url: str, timeout: float) -> tuple[int, dict[str, object], float]:
    """The first HTTP answer of /healthz (any status) and the seconds it took to come."""
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
                return response.status, json.load(response), time.monotonic() - started
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc), time.monotonic() - started
        except OSError as exc:
            last = str(exc)
            time.sleep(0.25)
    fail(f"{url}/healthz did not answer in {timeout:g} s ({last})")
    raise AssertionError  # unreachable: fail() exits


def healthy(url: str, timeout: str) -> None:
    status, body, seconds = health(url, float(timeout))
    if status != 200 or body.get("status") != "ok":
        fail(f"/healthz answered {status} {body}, expected 200 ok")
    print(f"{seconds:.1f}")


def degraded(url: str, timeout: str, word: str) -> None:
    status, body, _ = health(url, float(timeout))
    reasons = " ".join(str(r) for r in body.get("reasons", []))  # type: ignore[attr-defined]
    if status != 503 or body.get("status") != "degraded" or "cuda" not in reasons or word not in reasons:
        fail(f"/healthz answered {status} {body}, expected 503 degraded naming cuda and {word!r}")
    print(reasons)


def cutout(url: str, photo: str) -> None:
    boundary = uuid.uuid4().hex
    data = Path(photo).read_bytes()
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{Path(photo).name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{url}/api/remove", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            kind, png = response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as exc:
        fail(f"/api/remove answered {exc.code}: {exc.read()[:300]!r}")
    image = Image.open(io.BytesIO(png))
    if kind != "image/png" or image.format != "PNG" or image.mode != "RGBA":
        fail(f"/api/remove gave {kind} {image.format} {image.mode}, expected an RGBA PNG")
    alpha = image.getchannel("A")
    width, height = image.size
    border = [alpha.getpixel((x, y)) for x in range(width) for y in (0, height - 1)]
    border += [alpha.getpixel((x, y)) for y in range(height) for x in (0, width - 1)]
    solid = sum(alpha.histogram()[128:])  # the subject: alpha at least half
    if max(border) > 8 or solid < width * height // 20:
        fail(f"cutout of {photo}: border alpha up to {max(border)}, {solid} pixels of alpha >= 128")
    print(f"{width}x{height} RGBA PNG, border alpha <= {max(border)}, {solid / (width * height):.0%} of alpha >= 128")


def layers() -> None:
    big = [(layer["size"], layer["CreatedBy"]) for layer in json.load(sys.stdin) if layer["size"] > 50_000_000]
    for size, command in big:
        print(f"  {size / 1e6:6.0f} MB  {command[:100]}")
    fetches = [c for _, c in big if "models fetch" in c]
    others = [c for _, c in big if "models fetch" not in c and "pip install" not in c and "ADD file" not in c]
    if len(fetches) != 1 or others:
        fail(f"{len(fetches)} layers fetch the weights (expected 1); other big layers: {others}")


if __name__ == "__main__":
    commands = {"healthy": healthy, "cutout": cutout, "degraded": degraded, "layers": layers}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        fail(f"usage: {__doc__}")
    commands[sys.argv[1]](*sys.argv[2:])
