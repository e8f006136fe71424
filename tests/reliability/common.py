"""Shared pieces of the reliability tests and scripts: an isolated server, temp-file census, requests, figures.

The server is ``tests.conftest.launch_server`` with its own ``TMPDIR`` and
``GRADIO_TEMP_DIR`` under one folder, so every temporary file it makes (Gradio's
upload cache, our ``OutputStore``, Starlette's spooled uploads) can be counted.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from core.options import OPTIONS, rest_name
from tests.conftest import PHOTOS_DIR, Server, launch_server
from ui.activity import HEAVY
from ui.form import FORM, UPLOAD_FIELDS


@dataclass
class IsolatedServer:
    """A launched server whose temporary files all live under ``temp``."""

    server: Server
    temp: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def pid(self) -> int:
        return int(self.server.process.pid)


def launch_isolated(root: Path, *flags: str, timeout: float = 120) -> IsolatedServer:
    """``launch_server`` with ``TMPDIR`` and ``GRADIO_TEMP_DIR`` inside ``root/temp``."""
    temp = root / "temp"
    (temp / "gradio").mkdir(parents=True, exist_ok=True)
    env = {"TMPDIR": str(temp), "GRADIO_TEMP_DIR": str(temp / "gradio")}
    return IsolatedServer(launch_server(root, *flags, env=env, timeout=timeout), temp)


def new_root(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def kind(relpath: str) -> str:
    """What a file under the server's temp folder is, from its path relative to that folder.

    ``stray``: Gradio's loose ``tmp*`` files and any half-written ``.part``/staging
    file, which nothing ever cleans; ``outputs``: results in our ``OutputStore``
    (kept an hour by design, then pruned); ``gradio_cache``: Gradio's
    content-addressed upload/result cache (``delete_cache``); ``other``: the rest.
    """
    parts = Path(relpath).parts
    name = parts[-1]
    if name.endswith(".part") or (parts[0] == "gradio" and len(parts) > 2 and name.startswith(".")):
        return "stray"
    if parts[0] == "gradio" and len(parts) == 2 and name.startswith("tmp"):
        return "stray"
    if parts[0].startswith("rembg-webui-"):
        return "outputs"
    if parts[0] == "gradio" and len(parts) == 3 and len(parts[1]) == 64:
        return "gradio_cache"
    return "other"


def census(temp: Path) -> dict[str, int]:
    """How many files of each ``kind`` are under the server's temp folder."""
    counts = {"stray": 0, "outputs": 0, "gradio_cache": 0, "other": 0}
    for rel in files_under(temp):
        counts[kind(rel)] += 1
    return counts


def strays(temp: Path) -> list[str]:
    """The stray files themselves (for the report), sorted."""
    return sorted(rel for rel in files_under(temp) if kind(rel) == "stray")


def files_under(temp: Path) -> set[str]:
    return {str(p.relative_to(temp)) for p in temp.rglob("*") if p.is_file()}


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` from ``/proc/PID/status`` (``VmRSS``), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def rest_form(options: dict[str, Any]) -> dict[str, str]:
    """Engine-named options as REST form fields."""
    form = {}
    for name, value in options.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        form[rest_name(OPTIONS[name])] = text
    return form


def rest_remove(http: httpx.Client, data: bytes, filename: str = "image.png", **options: Any) -> httpx.Response:
    files = {"file": (filename, data, "application/octet-stream")}
    return http.post("/api/remove", files=files, data=rest_form(options))


def decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def alpha(im: Image.Image) -> np.ndarray:
    channel = im if im.mode == "L" else im.getchannel("A")
    return np.asarray(channel)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of alpha > 127; 0 when the sizes differ (a mix-up by definition)."""
    if a.shape != b.shape:
        return 0.0
    x, y = a > 127, b > 127
    union = int((x | y).sum())
    return float((x & y).sum() / union) if union else 1.0


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    arr = np.asarray(values)
    return {f"p{q}": float(np.percentile(arr, q)) for q in (50, 95, 99)}


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


# --- one request through either way in, checked against a reference mask (load and soak) ----------


REFUSAL_STATUSES = (429, 503, 413)


@dataclass
class Outcome:
    path: str  # "rest" or "gradio"
    photo: str
    seconds: float
    status: str  # "ok", "mixup", "refused" or "error"
    detail: str = ""
    iou: float = 1.0


def reference_masks(photos: Sequence[str], model: str, alpha_matting: bool = False) -> dict[str, np.ndarray]:
    """Each photo's alpha from the library, computed once: what every response must match."""
    from core import Engine, RemovalOptions, load_settings

    engine = Engine(load_settings([]))
    options = RemovalOptions(model=model, provider="cpu", alpha_matting=alpha_matting)
    return {p: alpha(engine.remove(PHOTOS_DIR / p, options).image) for p in photos}


class PageClient:
    """The WebUI's own events, driven as the page drives them: the page's cookie (``api.guard``),
    uploads to ``/gradio_api/upload``, ``queue/join`` by ``fn_index`` and the SSE stream."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=1800)
        self.http.get("/").raise_for_status()  # the page: its cookie opens the internal events
        config = self.http.get("/config").json()
        self.fns = {d["api_name"]: d["id"] for d in config["dependencies"] if d.get("api_name")}

    def close(self) -> None:
        self.http.close()

    def upload(self, path: Path) -> dict[str, Any]:
        response = self.http.post("/gradio_api/upload", files={"files": (path.name, path.read_bytes())})
        response.raise_for_status()
        return {"path": response.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def run(self, name: str, data: list[Any]) -> list[Any]:
        """Run the event named ``name`` with ``data``; its output values, or ``PageError`` with its message."""
        import json
        import uuid

        session = uuid.uuid4().hex[:10]
        joined = self.http.post(
            "/gradio_api/queue/join", json={"fn_index": self.fns[name], "data": data, "session_hash": session}
        )
        if joined.status_code == 503:
            raise Refused(joined.text[:200])
        joined.raise_for_status()
        with self.http.stream("GET", f"/gradio_api/queue/data?session_hash={session}") as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    if not message.get("success"):
                        raise PageError(str(message.get("output", {}).get("error"))[:300])
                    return list(message["output"]["data"])
        raise PageError(f"{name}: the stream ended without a result")


class PageError(Exception):
    """A WebUI event that ended in an error."""


#: The Upload tab's widgets as a fresh page has them (``ui.form.FORM``), on the CPU with u2netp.
UPLOAD_FORM: dict[str, Any] = FORM.initial() | {"provider": "cpu", "model": "u2netp"}


def ui_remove_data(image: dict[str, Any], model: str, alpha_matting: bool) -> list[Any]:
    """The Upload tab's inputs, as the page sends them (``ui.handlers.Handlers.ui_remove``)."""
    form = {**UPLOAD_FORM, "model": model, "alpha_matting": alpha_matting}
    return [image, *(form[name] for name in UPLOAD_FIELDS)]


class Requester:
    """One client's connections: an ``httpx.Client`` for REST and a ``gradio_client.Client``."""

    def __init__(self, url: str, downloads: Path, references: dict[str, np.ndarray], model: str) -> None:
        from gradio_client import Client

        self.http = httpx.Client(base_url=url, timeout=600)
        self.gradio = Client(url, verbose=False, download_files=str(downloads), analytics_enabled=False)
        self.references = references
        self.model = model
        self.photos = {p: (PHOTOS_DIR / p).read_bytes() for p in references}
        self.matting_references: dict[str, np.ndarray] = {}
        self._page: PageClient | None = None
        self._url = url

    @property
    def page(self) -> PageClient:
        if self._page is None:
            self._page = PageClient(self._url)
        return self._page

    def close(self) -> None:
        self.http.close()
        if self._page is not None:
            self._page.close()

    def one(self, path: str, photo: str) -> Outcome:
        """One request along ``path``: ``rest``, ``gradio``, or the WebUI's ``matting`` (the Upload tab
        with alpha matting) and ``gallery`` (the Gallery tab, with the next photos as well)."""
        start = time.perf_counter()
        try:
            if path == "gallery":
                outputs = self._gallery(photo)
            else:
                outputs = [(photo, self._rest(photo) if path == "rest" else self._gradio(photo, path))]
        except Refused as exc:
            return Outcome(path, photo, time.perf_counter() - start, "refused", str(exc))
        except Exception as exc:  # noqa: BLE001 - every other failure is counted, with what it was
            return Outcome(path, photo, time.perf_counter() - start, "error", f"{type(exc).__name__}: {exc}"[:300])
        seconds = time.perf_counter() - start
        references = self._matting_reference(photo) if path == "matting" else self.references
        least = MIN_MATTING_IOU if path == "matting" else MIN_IOU
        scores = [iou(alpha(decoded(data)), references[name]) for name, data in outputs]
        if min(scores) < least:
            return Outcome(path, photo, seconds, "mixup", f"IoU {min(scores):.4f} with its own reference", min(scores))
        return Outcome(path, photo, seconds, "ok", iou=min(scores))

    def _matting_reference(self, photo: str) -> dict[str, np.ndarray]:
        """The library's alpha-matted mask of ``photo``, computed on first use."""
        if photo not in self.matting_references:
            self.matting_references.update(reference_masks([photo], self.model, alpha_matting=True))
        return self.matting_references

    def benchmark(self) -> Outcome:
        """The Benchmark tab's quick run (minutes: every model, a 1080p photo, rembg alongside)."""
        start = time.perf_counter()
        try:
            table, chart, _ = self.page.run("run_quick", [])  # the report is server-side state
            assert "| cpu | " in table and chart, table[:300]
        except Exception as exc:  # noqa: BLE001 - counted, with what it was
            return Outcome("benchmark", "-", time.perf_counter() - start, "error", f"{type(exc).__name__}: {exc}"[:300])
        return Outcome("benchmark", "-", time.perf_counter() - start, "ok")

    def _gallery(self, photo: str) -> list[tuple[str, bytes]]:
        names = list(self.references)
        batch = [names[(names.index(photo) + i) % len(names)] for i in range(GALLERY_FILES)]
        files = [self.page.upload(PHOTOS_DIR / name) for name in batch]
        gallery, _, table, *_ = self.page.run("ui_batch", [files, "cpu", self.model, "png"])
        rows = table["data"] if isinstance(table, dict) else table
        assert [row[1] for row in rows] == ["ok"] * len(batch), rows
        return [(name, self._fetch(item["image"]["path"])) for name, item in zip(batch, gallery, strict=True)]

    def _fetch(self, path: str) -> bytes:
        response = self.http.get(f"/gradio_api/file={path}")
        response.raise_for_status()
        return response.content

    def _rest(self, photo: str) -> bytes:
        files = {"file": (photo, self.photos[photo], "application/octet-stream")}
        response = self.http.post("/api/remove", files=files, data={"model": self.model, "provider": "cpu"})
        if response.status_code in REFUSAL_STATUSES:
            raise Refused(f"{response.status_code} {response.text[:120]}")
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        return response.content

    def _gradio(self, photo: str, path: str = "gradio") -> bytes:
        from gradio_client import handle_file

        if path == "matting":
            image = self.page.upload(PHOTOS_DIR / photo)
            lane = f"ui_remove_{HEAVY}"  # the page sends alpha matting to the heavy lane
            _, files, *_ = self.page.run(lane, ui_remove_data(image, self.model, alpha_matting=True))
            return self._fetch(files[0]["path"])
        try:
            out, _ = self.gradio.predict(
                handle_file(str(PHOTOS_DIR / photo)), model=self.model, provider="cpu", api_name="/remove_background"
            )
        except Exception as exc:
            if "queue is full" in str(exc).lower():
                raise Refused(str(exc)) from None
            raise
        result = Path(out)
        data = result.read_bytes()
        result.unlink(missing_ok=True)  # the client's own download, not the server's
        return data


class Refused(Exception):
    """An explicit refusal (full queue, too large): counted apart from errors."""


MIN_IOU = 0.99
#: Alpha matting against the library's own matting (pymatting's solver runs threads: not bit-exact).
MIN_MATTING_IOU = 0.98
#: Photos in one Gallery run of the soak.
GALLERY_FILES = 4


def summarise(outcomes: list[Outcome], elapsed: float) -> dict[str, Any]:
    ok = [o for o in outcomes if o.status == "ok"]
    by_status = {s: sum(1 for o in outcomes if o.status == s) for s in ("ok", "mixup", "refused", "error")}
    summary: dict[str, Any] = {
        "requests": len(outcomes),
        **by_status,
        "elapsed_s": elapsed,
        "throughput_rps": len(ok) / elapsed if elapsed else 0.0,
        "latency_s": percentiles([o.seconds for o in ok]),
        "by_path": {
            path: {
                "ok": sum(1 for o in ok if o.path == path),
                "latency_s": percentiles([o.seconds for o in ok if o.path == path]),
            }
            for path in ("rest", "gradio", "matting", "gallery", "benchmark")
            if path in ("rest", "gradio") or any(o.path == path for o in outcomes)
        },
        "min_iou": min((o.iou for o in ok), default=float("nan")),
        "errors_seen": sorted({o.detail for o in outcomes if o.status in ("error", "mixup")})[:10],
    }
    return summary


def format_latency(p: dict[str, float]) -> str:
    return " ".join(f"{k} {v * 1000:.0f} ms" for k, v in p.items())


def healthy(summary: dict[str, Any]) -> bool:
    """What load and soak both require: no errors or mix-ups, no stray file, the server up and quiet."""
    return (
        summary["error"] == 0
        and summary["mixup"] == 0
        and not summary["stray_files"]
        and summary["server_alive"]
        and not summary["traceback_in_log"]
    )


def traffic_lines(summary: dict[str, Any]) -> list[str]:
    """Throughput, latency overall and per path, and the worst mask agreement."""
    lines = [
        f"  throughput {summary['throughput_rps']:.2f} req/s over {summary['elapsed_s']:.1f} s",
        f"  latency (ok, end to end): {format_latency(summary['latency_s'])}",
    ]
    lines += [
        f"    {path:6} ok {figures['ok']:4}: {format_latency(figures['latency_s'])}"
        for path, figures in summary["by_path"].items()
    ]
    return [*lines, f"  min IoU with own reference: {summary['min_iou']:.4f}"]


def closing_lines(summary: dict[str, Any], passed: bool) -> list[str]:
    """Server state, what went wrong, and the verdict."""
    lines = [f"  server alive: {summary['server_alive']}, traceback in log: {summary['traceback_in_log']}"]
    lines += [f"  ! {e}" for e in summary["errors_seen"]]
    lines += [f"  ! stray temp file: {f}" for f in summary["stray_files"]]
    return [*lines, f"  verdict: {'PASS' if passed else 'FAIL'}"]
