"""How much memory this process may still take: the machine's available memory, and a container's limit."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

_MEMINFO = Path("/proc/meminfo")
#: cgroup v2: the container's limit and what it uses now ("max" when unlimited).
_CGROUP = Path("/sys/fs/cgroup")
#: glibc's ``M_MMAP_THRESHOLD`` (``mallopt``), and what the server sets it to.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20


def _meminfo_available(text: str) -> int | None:
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _cgroup_headroom(limit: str, current: str) -> int | None:
    limit, current = limit.strip(), current.strip()
    if not limit or limit == "max" or not current:
        return None
    return max(0, int(limit) - int(current))


def rss_bytes() -> int | None:
    """This process's resident memory now (``/proc/self/statm``); None where unknown."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def available_bytes() -> int | None:
    """Bytes that can still be allocated without swapping or the OOM killer; None where unknown.

    The smaller of ``MemAvailable`` and, in a container, its cgroup limit minus its usage
    (``MemAvailable`` there is the host's).
    """
    found: list[int] = []
    try:
        value = _meminfo_available(_MEMINFO.read_text())
        if value is not None:
            found.append(value)
    except OSError:
        pass
    try:
        headroom = _cgroup_headroom((_CGROUP / "memory.max").read_text(), (_CGROUP / "memory.current").read_text())
        if headroom is not None:
            found.append(headroom)
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def return_large_frees() -> bool:
    """Make glibc give every freed block of ``MMAP_THRESHOLD_BYTES`` or more back to the system.

    By default glibc raises this threshold to the largest block freed so far (up to
    32 MiB), so the images and matting arrays of a request (a few MiB to tens of MiB)
    come from malloc's per-thread arenas and stay resident after they are freed: the
    server grew by hundreds of MiB over the WebUI's paths. Fixed at 1 MiB, they are
    mapped and unmapped each time (measured: ``python -m tests.reliability.soak``, docs/limits-and-security.md).
    True where it was set (glibc); elsewhere nothing changes.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
