"""The app as a real server process on a free loopback port: the benchmark's round trips and the tests use it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    """A real ``python app.py`` process on a free loopback port."""

    url: str
    process: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_server(tmp: Path, *flags: str, env: dict[str, str] | None = None, timeout: float = 120) -> Server:
    """Start the app with ``flags`` and wait until ``/healthz`` answers, 200 or 503 (or the process dies)."""
    port = free_port()
    log_path = tmp / f"server-{port}.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), *flags],
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, timeout, log_path)
    except RuntimeError:
        process.kill()
        raise
    return Server(url, process, log_path)


def wait_healthy(
    url: str, process: subprocess.Popen[Any], timeout: float, log_path: Path | None = None, *, degraded: bool = True
) -> None:
    """Return once ``url``'s ``/healthz`` answers 200, or 503 (serving, but degraded or draining: the
    caller reads why) unless ``degraded`` is False; ``RuntimeError``, with the log, when the process
    exits first or ``timeout`` seconds pass."""

    def log() -> str:
        return f":\n{log_path.read_text()}" if log_path else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}{log()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code == 503 and degraded:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server did not answer /healthz in {timeout:.0f} s{log()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
