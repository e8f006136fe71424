"""What a batch run works on: the input items of a folder, a list file or a zip.

``plan(IN, OUT, fmt)`` turns the input into ``Item``s, each naming where its bytes
come from and the output path relative to OUT, which mirrors IN's structure with
the output format's extension. Items are plain strings so that they pickle to
worker processes and travel through Ray Data as table columns unchanged.

- A folder is walked recursively; files with an image extension are taken, hidden
  files and folders (a leading dot, which includes our own temporary files) and
  OUT itself (when it lies inside IN) are left out.
- A zip is read in place; its members are filtered like a folder's files.
- Any other file is a list file: one path per line, blank lines and ``#`` comments
  ignored, relative paths relative to the list file's folder. Every listed path is
  attempted whatever its extension (it was named on purpose). Outputs mirror the
  paths relative to the deepest folder holding the list file and every entry.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from batch.outcome import Outcome
from core.decode import INPUT_SUFFIXES
from core.formats import FORMATS

log = logging.getLogger(__name__)


class InputError(ValueError):
    """IN or OUT cannot be used (missing, unreadable, OUT equal to IN); a usage error."""


@dataclass(frozen=True)
class Item:
    """One input image and where its output goes."""

    key: str  # the input's path relative to IN (POSIX), as the report names it
    source: str  # absolute path of the file, or of the zip holding it
    member: str  # the zip member's name; "" for a plain file
    output: str  # the output's path relative to OUT (POSIX)


@dataclass
class Plan:
    """The items to run, the inputs refused before running, and what was left out."""

    kind: str  # "folder", "zip" or "list"
    items: list[Item] = field(default_factory=list)
    refused: list[Outcome] = field(default_factory=list)  # e.g. two inputs mapping to one output
    ignored: int = 0  # files left out by name (not an image extension, hidden)


def plan(source: Path, out: Path, fmt: str) -> Plan:
    """The work of ``batch IN OUT`` with outputs in format ``fmt`` (``png``, ``webp``, ``jpeg``)."""
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    src, dst = source.resolve(), out.resolve()
    if src == dst:
        raise InputError("OUT must differ from IN: outputs would replace the inputs")
    extension = FORMATS[fmt].extension
    if source.is_dir():
        result = Plan("folder")
        pairs = _walk(src, dst, result)
    elif zipfile.is_zipfile(source):
        result = Plan("zip")
        pairs = _zip_members(src, result)
    elif source.suffix.lower() in INPUT_SUFFIXES:
        raise InputError(f"{source}: IN is one image; give a folder, a list file or a zip (or use `app.py remove`)")
    else:
        result = Plan("list")
        pairs = _list_entries(src)
    result.items, result.refused = _assign_outputs(pairs, extension)
    return result


# A pair is (key, source, member, relative path used for the output name).
_Pair = tuple[str, str, str, PurePosixPath]


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _walk(root: Path, out: Path, result: Plan) -> list[_Pair]:
    pairs: list[_Pair] = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        # Sorted, so that the order (and any collision resolution) is the same on every run.
        dirs[:] = sorted(d for d in dirs if _visible(d) and (here / d).resolve() != out)
        for name in sorted(files):
            if not _visible(name) or Path(name).suffix.lower() not in INPUT_SUFFIXES:
                result.ignored += 1
                continue
            rel = PurePosixPath((here / name).relative_to(root).as_posix())
            pairs.append((str(rel), str(here / name), "", rel))
    return pairs


def _zip_members(path: Path, result: Plan) -> list[_Pair]:
    pairs: list[_Pair] = []
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: cannot read the zip: {exc}") from None
    for info in sorted(infos, key=lambda i: i.filename):
        if info.is_dir():
            continue
        rel = PurePosixPath(info.filename)
        if _unsafe(rel):  # reported (refused by _assign_outputs), not silently left out as "hidden"
            pairs.append((info.filename, str(path), info.filename, rel))
            continue
        if not all(_visible(part) for part in rel.parts) or rel.parts[:1] == ("__MACOSX",):
            result.ignored += 1
            continue
        if rel.suffix.lower() not in INPUT_SUFFIXES:
            result.ignored += 1
            continue
        pairs.append((info.filename, str(path), info.filename, rel))
    return pairs


def _list_entries(path: Path) -> list[_Pair]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a folder, a zip or a UTF-8 list of paths") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    entries: list[tuple[str, Path]] = []
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        # Not resolve(): a listed symlink keeps its own name in the output tree.
        entries.append((entry, Path(os.path.abspath(path.parent / Path(entry).expanduser()))))
    if not entries:
        return []
    base = Path(os.path.commonpath([str(path.parent), *(str(p.parent) for _, p in entries)]))
    pairs: list[_Pair] = []
    for entry, absolute in entries:
        rel = PurePosixPath(absolute.relative_to(base).as_posix())
        pairs.append((entry, str(absolute), "", rel))
    return pairs


def _unsafe(rel: PurePosixPath) -> bool:
    """A member name that would write outside OUT (``../x.png``, ``/etc/x.png``): zip slip."""
    return rel.is_absolute() or ".." in rel.parts or rel.as_posix() in ("", ".")


def _assign_outputs(pairs: list[_Pair], extension: str) -> tuple[list[Item], list[Outcome]]:
    """Output names; inputs that differ only by extension keep it (``a.jpg.png``, ``a.png.png``).

    Without that, ``a.jpg`` and ``a.png`` in one folder would both become ``a.png``
    and the second would silently replace (or be skipped as) the first. Names are
    compared case-insensitively, as a case-insensitive OUT (macOS, Windows) would.
    """
    refused: list[Outcome] = []
    safe: list[_Pair] = []
    for pair in pairs:
        if _unsafe(pair[3]):
            refused.append(Outcome.failed(pair[0], "unsafe_path", "the path points outside the output folder"))
        else:
            safe.append(pair)
    groups: dict[str, list[int]] = defaultdict(list)
    for index, (_, _, _, rel) in enumerate(safe):
        groups[rel.with_suffix(extension).as_posix().casefold()].append(index)
    names: list[str] = []
    for _, _, _, rel in safe:
        short = rel.with_suffix(extension)
        clash = len(groups[short.as_posix().casefold()]) > 1
        names.append((rel.with_name(rel.name + extension) if clash else short).as_posix())
    items: list[Item] = []
    taken: set[str] = set()
    for (key, source, member, _), name in zip(safe, names, strict=True):
        if name.casefold() in taken:  # only names equal but for case (A.JPG beside a.jpg) get here
            refused.append(Outcome.failed(key, "output_collision", f"another input already writes {name}"))
            continue
        taken.add(name.casefold())
        items.append(Item(key=key, source=source, member=member, output=name))
    return items, refused
