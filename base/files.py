"""Files that are either complete or absent: written to a temporary file beside the target, then renamed.

The temporary file lives in the target's folder, so ``os.replace`` is a rename on one
file system (atomic on POSIX, NFS and most shared file systems); it is fsynced first,
so a crash after the rename cannot leave a name with lost data. Any exception,
``KeyboardInterrupt`` and ``SystemExit`` included, removes it. Its name is hidden
(``.NAME.<random><suffix>``), so that folder scans and sweeps can tell it apart.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

PART_SUFFIX = ".part"


@contextlib.contextmanager
def atomic_target(path: Path, *, suffix: str = PART_SUFFIX, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is fsynced and renamed to ``path``.

    ``mode``: permissions to give the file (``mkstemp`` makes 0600 files).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, data: bytes | str, *, suffix: str = PART_SUFFIX, mode: int | None = None) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` so that ``path`` is either absent or complete."""
    with atomic_target(path, suffix=suffix, mode=mode) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def folder_bytes(folder: Path) -> int:
    """Bytes the regular files under ``folder`` hold (symbolic links not followed); 0 where it cannot be read."""
    total = 0
    try:
        for dirpath, _, names in os.walk(folder):
            for name in names:
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except OSError:
                    continue  # deleted meanwhile
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
    except OSError:
        return total
    return total
