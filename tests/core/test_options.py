"""Unit tier: option validation and colour parsing."""

from __future__ import annotations

import pytest

from base.errors import InvalidOption
from core.options import RemovalOptions, parse_color


def test_defaults_are_valid() -> None:
    opts = RemovalOptions().validated()
    assert opts.output_format == "png" and opts.bgcolor is None


def test_normalises() -> None:
    opts = RemovalOptions(output_format="JPG", bgcolor="#ff000080").validated()
    assert opts.output_format == "jpeg" and opts.bgcolor == (255, 0, 0, 128)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((1, 2, 3), (1, 2, 3, 255)),
        ([1, 2, 3, 4], (1, 2, 3, 4)),
        ("1,2,3", (1, 2, 3, 255)),
        ("#0a0b0c", (10, 11, 12, 255)),
    ],
)
def test_colours(value: object, expected: tuple[int, ...]) -> None:
    assert parse_color(value) == expected


@pytest.mark.parametrize(
    "value", ["300,0,0", "1,2", "a,b,c", "#12345", (1.5, 2, 3), (-1, 0, 0), 7, "#gggggg", (True, 0, 0)]
)
def test_bad_colours(value: object) -> None:
    with pytest.raises(InvalidOption, match="bgcolor"):
        parse_color(value)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"output_format": "gif"}, "output_format"),
        ({"quality": 101}, "quality"),
        ({"quality": True}, "quality"),
        ({"crop_margin": -1}, "crop_margin"),
        ({"alpha_matting_foreground_threshold": 256}, "alpha_matting_foreground_threshold"),
        ({"alpha_matting_background_threshold": -1}, "alpha_matting_background_threshold"),
        ({"alpha_matting": True, "alpha_matting_background_threshold": 240}, "alpha_matting_background_threshold"),
        ({"alpha_matting_erode_size": 1000}, "alpha_matting_erode_size"),
        ({"bgcolor": (1, 2, 3), "background_image": b"x"}, "bgcolor"),
        ({"only_mask": "yes"}, "only_mask"),
    ],
)
def test_bad_values_name_the_option(kwargs: dict[str, object], option: str) -> None:
    with pytest.raises(InvalidOption) as info:
        RemovalOptions(**kwargs).validated()  # type: ignore[arg-type]
    assert info.value.option == option


@pytest.mark.parametrize(
    ("value", "expected"),
    [("rgb(1, 2, 3)", (1, 2, 3, 255)), ("rgba(10, 20, 30, 0.5)", (10, 20, 30, 128)), ("RGBA(0,0,0,1)", (0, 0, 0, 255))],
)
def test_css_colours(value: str, expected: tuple[int, ...]) -> None:
    assert parse_color(value) == expected


@pytest.mark.parametrize("value", ["rgb(a, b, c)", "RGB(1E400)", "rgb(inf, 0, 0)", "rgba(0, 0, 0, nan)"])
def test_bad_css_colour(value: str) -> None:
    with pytest.raises(InvalidOption):  # the last three once escaped as OverflowError/ValueError (found by fuzzing)
        parse_color(value)
