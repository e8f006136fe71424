"""Model tier: touch-up (``mask_edit``), blurred background and drop shadow through the library, on real photos.

The same options over REST are in ``tests/api/test_effects_rest.py``; the touch-up
brush in the browser is in ``tests/ui/test_browser.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from core import Engine, InvalidOption, RemovalOptions
from core.imaging import edited_mask, mask_edit_layers
from tests.conftest import PHOTOS_DIR, photo_bytes

pytestmark = pytest.mark.model

PHOTO = "car-1.jpg"  # 480x360
BASE = {"model": "u2netp", "provider": "cpu"}


def run(engine: Engine, photo: str = PHOTO, **options: object) -> tuple[np.ndarray, np.ndarray, Image.Image]:
    """(output RGBA array, mask array, result image) for ``photo`` with ``options`` on u2netp."""
    result = engine.remove(photo_bytes(photo), RemovalOptions(**{**BASE, **options}))  # type: ignore[arg-type]
    return np.asarray(result.image.convert("RGBA")).astype(int), np.asarray(result.mask).astype(int), result.image


def roughness(rgb: np.ndarray, where: np.ndarray) -> float:
    """Mean absolute difference between horizontal neighbours, over ``where``."""
    diff = np.abs(np.diff(rgb[..., :3], axis=1)).sum(axis=2)
    return float(diff[where[:, 1:]].mean())


# --- mask_edit (touch-up) --------------------------------------------------------------------


def test_a_transparent_edit_changes_nothing(engine: Engine) -> None:
    plain = engine.remove(photo_bytes(PHOTO), RemovalOptions(**BASE))  # type: ignore[arg-type]
    edit = Image.new("RGBA", (48, 36), (0, 0, 0, 0))
    edited = engine.remove(photo_bytes(PHOTO), RemovalOptions(**BASE, mask_edit=edit))  # type: ignore[arg-type]
    assert edited.data == plain.data


def test_black_strokes_erase_and_white_strokes_restore_at_full_resolution(engine: Engine) -> None:
    _, mask, _ = run(engine)
    subject = np.argwhere(mask == 255)
    background = np.argwhere(mask == 0)
    (sy, sx), (by, bx) = subject[len(subject) // 2], background[len(background) // 2]
    # Strokes drawn at a tenth of the size: the engine scales them to the photo.
    edit = Image.new("RGBA", (48, 36), (0, 0, 0, 0))
    edit.paste((0, 0, 0, 255), (sx // 10 - 2, sy // 10 - 2, sx // 10 + 3, sy // 10 + 3))
    edit.paste((255, 255, 255, 255), (bx // 10 - 2, by // 10 - 2, bx // 10 + 3, by // 10 + 3))
    out, new_mask, _ = run(engine, mask_edit=edit)
    assert new_mask[sy, sx] == 0 and out[sy, sx, 3] == 0, "erased"
    assert new_mask[by, bx] == 255 and out[by, bx, 3] == 255, "restored"
    photo = np.asarray(Image.open(PHOTOS_DIR / PHOTO).convert("RGB")).astype(int)
    assert (out[by, bx, :3] == photo[by, bx]).all(), "a restored pixel has the photo's own colour"
    untouched = (np.abs(np.indices(mask.shape) - np.array([[[sy]], [[sx]]])).max(axis=0) > 40) & (
        np.abs(np.indices(mask.shape) - np.array([[[by]], [[bx]]])).max(axis=0) > 40
    )
    assert (new_mask[untouched] == mask[untouched]).all(), "nothing changes away from the strokes"


def test_an_opaque_grey_image_is_a_whole_mask(engine: Engine) -> None:
    """An edit without transparency replaces the mask: white subject, black background, grey partly."""
    edit = Image.new("L", (480, 360), 0)
    edit.paste(255, (100, 50, 300, 250))
    edit.paste(128, (300, 50, 400, 250))
    _, mask, _ = run(engine, mask_edit=edit)
    assert (mask == np.asarray(edit)).all()


def test_edit_with_crop_and_alpha_matting(engine: Engine) -> None:
    _, full_mask, _ = run(engine)
    left, _, right, _ = Image.fromarray(full_mask.astype(np.uint8)).point(lambda v: 255 if v > 10 else 0).getbbox()
    edit = Image.new("RGBA", (480, 360), (0, 0, 0, 0))
    edit.paste((0, 0, 0, 255), (0, 0, (left + right) // 2, 360))  # erase the left half of the subject
    result = engine.remove(photo_bytes(PHOTO), RemovalOptions(**BASE, mask_edit=edit, crop=True))  # type: ignore[arg-type]
    assert result.box is not None and result.box[0] >= (left + right) // 2 - 1, "the crop follows the edited mask"
    assert result.input_size == (480, 360)
    assert result.source is not None and result.source.size == result.image.size
    matted = engine.remove(
        photo_bytes(PHOTO),
        RemovalOptions(**BASE, mask_edit=edit, alpha_matting=True, alpha_matting_erode_size=5),  # type: ignore[arg-type]
    )
    assert (np.asarray(matted.image.getchannel("A"))[:, : (left + right) // 2] == 0).all()


def test_edit_layers_arithmetic() -> None:
    mask = Image.new("L", (4, 1), 100)
    edit = Image.new("RGBA", (4, 1), (0, 0, 0, 0))
    edit.putpixel((0, 0), (255, 255, 255, 255))
    edit.putpixel((1, 0), (0, 0, 0, 255))
    edit.putpixel((2, 0), (255, 255, 255, 128))
    target, weight = mask_edit_layers(edit, (4, 1))
    assert np.asarray(edited_mask(mask, target, weight)).ravel().tolist() == [255, 0, 178, 100]


def test_a_bad_edit_is_an_invalid_image(engine: Engine) -> None:
    from core import InvalidImage

    with pytest.raises(InvalidImage):
        engine.remove(photo_bytes(PHOTO), RemovalOptions(**BASE, mask_edit=b"not an image"))  # type: ignore[arg-type]


# --- blur_background -----------------------------------------------------------------------------


def test_blur_keeps_the_subject_and_blurs_the_background(engine: Engine) -> None:
    out, mask, _ = run(engine, blur_background=30)
    photo = np.asarray(Image.open(PHOTOS_DIR / PHOTO).convert("RGB")).astype(int)
    assert (out[..., 3] == 255).all(), "an opaque picture"
    subject, background = mask == 255, mask == 0
    assert (np.abs(out[subject][:, :3] - photo[subject]) <= 1).all(), "the subject as it was"
    assert roughness(out, background) < roughness(photo, background) / 3, "a blurred background"
    stronger, _, _ = run(engine, blur_background=90)
    assert roughness(stronger, background) < roughness(out, background)


def test_blur_leaves_the_subject_out_of_the_background(engine: Engine) -> None:
    """Just outside the subject, the blurred background is the surroundings' colour, not a halo of the subject's."""
    out, mask, _ = run(engine, blur_background=60)
    photo = np.asarray(Image.open(PHOTOS_DIR / PHOTO).convert("RGB"))
    near = np.asarray(Image.fromarray((mask > 10).astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(9))) > 0
    ring = near & (mask == 0)
    naive = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(60 * 360 / 1000))).astype(int)
    surroundings = photo[(mask == 0) & ~near].astype(int).mean(axis=0)
    ours = np.abs(out[ring][:, :3].mean(axis=0) - surroundings).sum()
    plain = np.abs(naive[ring].mean(axis=0) - surroundings).sum()
    assert ours < plain, (ours, plain)


def test_blur_and_another_background_are_refused() -> None:
    with pytest.raises(InvalidOption) as caught:
        RemovalOptions(blur_background=20, bgcolor="#ffffff").validated()
    assert caught.value.option == "blur_background"
    with pytest.raises(InvalidOption):
        RemovalOptions(blur_background=101).validated()


# --- shadow ---------------------------------------------------------------------------------------------


def test_shadow_on_a_colour_darkens_below_right_of_the_subject(engine: Engine) -> None:
    out, mask, _ = run(engine, shadow=True, bgcolor="#ffffff", shadow_offset_x=30, shadow_offset_y=30, shadow_blur=5)
    plain, _, _ = run(engine, bgcolor="#ffffff")
    shift = round(30 * 360 / 1000)
    moved = np.zeros_like(mask)
    moved[shift:, shift:] = mask[:-shift, :-shift]
    under = (moved > 200) & (mask < 5)
    assert under.sum() > 500
    assert (out[under][:, :3] < 200).all(), "the shadow darkens the white where the moved subject falls"
    far = np.zeros_like(mask, dtype=bool)
    far[:20, :20] = True
    assert (out[far] == plain[far]).all(), "far from the subject the background is untouched"
    assert (out[mask == 255] == plain[mask == 255]).all(), "the subject sits on top of its shadow"


def test_shadow_opacity_and_transparent_output(engine: Engine) -> None:
    none, _, _ = run(engine, shadow=True, shadow_opacity=0)
    plain, mask, _ = run(engine)
    assert (none == plain).all()
    out, _, _ = run(engine, shadow=True, shadow_opacity=80)
    around = mask == 0
    assert (out[around][:, 3] > 0).sum() > (plain[around][:, 3] > 0).sum() + 500, "the shadow is half-transparent black"


def test_crop_keeps_the_shadow_in(engine: Engine) -> None:
    _, _, plain = run(engine, crop=True)
    _, _, shadowed = run(engine, crop=True, shadow=True, shadow_offset_x=40, shadow_offset_y=40)
    assert shadowed.width > plain.width and shadowed.height > plain.height


def test_shadow_with_a_background_image_and_jpeg(engine: Engine) -> None:
    backdrop = Image.new("RGB", (64, 48), (10, 200, 30))
    out, _, image = run(engine, shadow=True, background_image=backdrop, output_format="jpeg")
    assert image.mode == "RGB"
    assert (np.abs(out[:10, :10, :3] - [10, 200, 30]) <= 12).all()


def test_shadow_ranges() -> None:
    for name, bad in (
        ("shadow_opacity", 101),
        ("shadow_offset_x", 201),
        ("shadow_offset_y", -201),
        ("shadow_blur", -1),
    ):
        with pytest.raises(InvalidOption) as caught:
            RemovalOptions(**{name: bad}).validated()  # type: ignore[arg-type]
        assert caught.value.option == name
