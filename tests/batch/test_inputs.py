"""Unit tier: what ``batch`` picks up from a folder, a zip or a list file, and where outputs go."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from batch.inputs import InputError, plan
from tests.batch.helpers import BROKEN, GOOD, build_tree, zip_tree


def test_folder_is_walked_recursively_and_mirrored(tmp_path: Path) -> None:
    tree = build_tree(tmp_path / "in")
    result = plan(tree, tmp_path / "out", "webp")
    assert result.kind == "folder"
    assert {i.key: i.output for i in result.items} == {
        rel: str(Path(rel).with_suffix(".webp").as_posix()) for rel in [*GOOD, *BROKEN]
    }
    assert all(Path(i.source).is_absolute() and i.member == "" for i in result.items)
    assert result.ignored == 2  # notes.txt and .hidden.png
    assert result.refused == []


def test_jpeg_outputs_get_jpg(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.PNG").write_bytes(b"")
    assert [i.output for i in plan(tmp_path / "in", tmp_path / "out", "jpeg").items] == ["a.jpg"]


def test_out_inside_in_is_not_read_as_input(tmp_path: Path) -> None:
    tree = build_tree(tmp_path / "in")
    (tree / "out").mkdir()
    (tree / "out" / "car-1.png").write_bytes(b"an earlier output")
    keys = [i.key for i in plan(tree, tree / "out", "png").items]
    assert not any(key.startswith("out/") for key in keys)


def test_names_that_would_collide_keep_their_extension(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for name in ("photo.jpg", "photo.png", "other.jpg"):
        (tmp_path / "in" / name).write_bytes(b"")
    outputs = {i.key: i.output for i in plan(tmp_path / "in", tmp_path / "out", "png").items}
    assert outputs == {"photo.jpg": "photo.jpg.png", "photo.png": "photo.png.png", "other.jpg": "other.png"}


def test_names_equal_but_for_case_are_refused_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "A.jpg").write_bytes(b"")
    (tmp_path / "in" / "a.jpg").write_bytes(b"")
    result = plan(tmp_path / "in", tmp_path / "out", "png")
    assert len(result.items) == 1
    assert [(o.key, o.code) for o in result.refused] == [("a.jpg", "output_collision")]


def test_zip_members_are_filtered_and_zip_slip_refused(tmp_path: Path) -> None:
    tree = build_tree(tmp_path / "in")
    archive = zip_tree(tree, tmp_path / "in.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("../escape.png", b"x")
        zf.writestr("__MACOSX/._car-1.jpg", b"x")
        zf.writestr("folder/", b"")
    result = plan(archive, tmp_path / "out", "png")
    assert result.kind == "zip"
    assert sorted(i.key for i in result.items) == sorted([*GOOD, *BROKEN])
    assert all(i.member == i.key and i.source == str(archive.resolve()) for i in result.items)
    assert [(o.key, o.code) for o in result.refused] == [("../escape.png", "unsafe_path")]


def test_list_file_paths_relative_to_the_list(tmp_path: Path) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    listing = tmp_path / "data" / "list.txt"
    listing.write_text(f"# comment\n\n  sub/a.jpg  \n{tmp_path / 'data' / 'b.tif'}\nmissing.jpg\n")
    result = plan(listing, tmp_path / "out", "png")
    assert result.kind == "list"
    assert [(i.key, i.output) for i in result.items] == [
        ("sub/a.jpg", "sub/a.png"),
        (str(tmp_path / "data" / "b.tif"), "b.png"),
        ("missing.jpg", "missing.png"),  # attempted, and reported when it cannot be read
    ]


def test_list_entries_outside_the_lists_folder_mirror_from_their_common_folder(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    listing = tmp_path / "lists" / "l.txt"
    listing.write_text(f"{tmp_path / 'photos' / 'x.jpg'}\n")
    assert [i.output for i in plan(listing, tmp_path / "out", "png").items] == ["photos/x.png"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nowhere", "no such file or folder"),
        (lambda p: p, "OUT must differ from IN"),
    ],
)
def test_unusable_input_is_a_usage_error(tmp_path: Path, make: object, message: str) -> None:
    source = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(InputError, match=message):
        plan(source, tmp_path, "png")


def test_one_image_as_input_points_to_remove(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(InputError, match=r"app\.py remove"):
        plan(tmp_path / "x.jpg", tmp_path / "out", "png")


def test_binary_non_zip_is_not_a_list(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(InputError, match="UTF-8"):
        plan(tmp_path / "blob.bin", tmp_path / "out", "png")
