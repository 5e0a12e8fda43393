"""Reading and writing images: every supported pixel mode, every bad file, atomic writes, crops and conversions."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from dip.data.imageio import (
    centre_crop,
    centre_crop_box,
    check_image,
    crop_to_box,
    crop_to_multiple,
    put_in_center,
    read_image,
    to_numpy,
    to_pil,
    to_tensor,
    uint8_roundtrip,
    write_image,
)
from dip.errors import DipInputError


def _u8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


# --- reading -------------------------------------------------------------------------------------------------------


def test_rgb_png_roundtrip_is_exact_8bit(tmp_path, photo64):
    path = write_image(tmp_path / "a.png", photo64)
    back = read_image(path)
    assert back.dtype == np.float32 and back.shape == (64, 64, 3)
    np.testing.assert_array_equal(back, uint8_roundtrip(photo64))
    assert back.min() >= 0 and back.max() <= 1


def test_grey_stays_one_channel_and_mode_L(tmp_path, grey64):
    path = write_image(tmp_path / "g.png", grey64)
    with Image.open(path) as pil:
        assert pil.mode == "L"
    back = read_image(path)
    assert back.shape == (64, 64, 1)
    np.testing.assert_array_equal(back, uint8_roundtrip(grey64))


def test_mode_rgb_repeats_grey_and_mode_grey_uses_luminance(tmp_path, grey64, photo64):
    g = write_image(tmp_path / "g.png", grey64)
    rgb = read_image(g, mode="rgb")
    assert rgb.shape == (64, 64, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    c = write_image(tmp_path / "c.png", photo64)
    grey = read_image(c, mode="grey")
    assert grey.shape == (64, 64, 1)
    q = uint8_roundtrip(photo64).astype(np.float64)
    expected = 0.299 * q[..., 0] + 0.587 * q[..., 1] + 0.114 * q[..., 2]
    np.testing.assert_allclose(grey[..., 0], expected, atol=1e-6)


def test_16bit_grey_png_is_scaled_by_65535(tmp_path):
    values = np.array([[0, 1, 257, 32768], [40000, 65534, 65535, 12345]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as pil:
        assert pil.mode in ("I;16", "I")  # Pillow's 16-bit grey
    back = read_image(path)
    assert back.shape == (2, 4, 1)
    np.testing.assert_allclose(back[..., 0], values / 65535.0, rtol=0, atol=1e-7)


def test_32bit_integer_mode_I_is_read_as_16bit(tmp_path):
    values = np.array([[0, 65535], [1000, 30000]], dtype=np.int32)
    path = tmp_path / "i.tif"
    Image.fromarray(values, mode="I").save(path)
    back = read_image(path)
    np.testing.assert_allclose(back[..., 0], values / 65535.0, atol=1e-7)


def test_palette_image_becomes_rgb(tmp_path, photo64):
    pil = Image.fromarray(_u8(photo64)).quantize(colors=32)
    path = tmp_path / "p.png"
    pil.save(path)
    back = read_image(path)
    assert back.shape == (64, 64, 3)
    expected = np.asarray(pil.convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_array_equal(back, expected)


def test_opaque_alpha_is_dropped(tmp_path, photo64, grey64):
    rgba = np.concatenate([_u8(photo64), np.full((64, 64, 1), 255, np.uint8)], axis=2)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), uint8_roundtrip(photo64))
    la = np.stack([_u8(grey64)[..., 0], np.full((64, 64), 255, np.uint8)], axis=2)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png").shape == (64, 64, 1)


def test_transparency_is_refused_unless_ignored(tmp_path, photo64):
    alpha = np.full((64, 64, 1), 255, np.uint8)
    alpha[:8] = 0
    Image.fromarray(np.concatenate([_u8(photo64), alpha], axis=2), mode="RGBA").save(tmp_path / "t.png")
    with pytest.raises(DipInputError, match="transparen") as err:
        read_image(tmp_path / "t.png")
    assert "t.png" in str(err.value)
    ignored = read_image(tmp_path / "t.png", alpha="ignore")
    np.testing.assert_array_equal(ignored, uint8_roundtrip(photo64))


def test_palette_with_transparency_is_refused(tmp_path, photo64):
    pil = Image.fromarray(_u8(photo64)).quantize(colors=16)
    pil.info["transparency"] = 0
    pil.save(tmp_path / "pt.png", transparency=0)
    with pytest.raises(DipInputError, match="transparen"):
        read_image(tmp_path / "pt.png")


def test_cmyk_becomes_rgb(tmp_path, photo64):
    cmyk = Image.fromarray(_u8(photo64)).convert("CMYK")
    cmyk.save(tmp_path / "c.tif")
    back = read_image(tmp_path / "c.tif")
    assert back.shape == (64, 64, 3)
    np.testing.assert_array_equal(back, np.asarray(cmyk.convert("RGB"), dtype=np.float32) / 255)


def test_missing_file(tmp_path):
    with pytest.raises(DipInputError, match="no such file") as err:
        read_image(tmp_path / "nope.png")
    assert "nope.png" in str(err.value)


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(DipInputError, match="directory"):
        read_image(tmp_path)


@pytest.mark.parametrize("content", [b"hello, I am text\n", b""])
def test_unknown_format(tmp_path, content):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(DipInputError, match="cannot identify") as err:
        read_image(path)
    assert "notes.txt" in str(err.value)


def test_truncated_png_is_caught_at_read_time(tmp_path, photo64):
    good = write_image(tmp_path / "good.png", photo64)
    data = good.read_bytes()
    bad = tmp_path / "cut.png"
    bad.write_bytes(data[: len(data) // 2])  # header intact, pixel data cut
    with pytest.raises(DipInputError, match="damaged or truncated") as err:
        read_image(bad)
    assert "cut.png" in str(err.value)


def test_bad_arguments(tmp_path, photo64):
    path = write_image(tmp_path / "a.png", photo64)
    with pytest.raises(DipInputError, match="read mode"):
        read_image(path, mode="cmyk")
    with pytest.raises(DipInputError, match="alpha policy"):
        read_image(path, alpha="keep")


# --- writing -------------------------------------------------------------------------------------------------------


def test_write_rounds_and_clips(tmp_path):
    img = np.array([[[-0.5], [0.0]], [[0.5 / 255 + 1e-6], [1.7]]], dtype=np.float32)
    path = write_image(tmp_path / "r.png", img)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), [[0, 0], [1, 255]])


def test_write_creates_parents_and_leaves_no_temp_files(tmp_path, photo64):
    out = tmp_path / "deep" / "er" / "x.png"
    write_image(out, photo64)
    write_image(out, photo64 * 0.5)  # overwrite goes through the same temp-and-replace path
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.png"]
    np.testing.assert_array_equal(read_image(out), uint8_roundtrip(photo64 * 0.5))


def test_failed_write_leaves_nothing_behind(tmp_path, photo64, monkeypatch):
    def boom(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        write_image(tmp_path / "x.png", photo64)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path, photo64, monkeypatch):
    out = write_image(tmp_path / "x.png", photo64)
    before = out.read_bytes()
    monkeypatch.setattr(Image.Image, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        write_image(out, photo64 * 0)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_write_refuses_bad_images_and_paths(tmp_path, photo64):
    with pytest.raises(DipInputError, match="NaN"):
        write_image(tmp_path / "n.png", np.full((4, 4, 3), np.nan, np.float32))
    with pytest.raises(DipInputError, match="shape"):
        write_image(tmp_path / "s.png", np.zeros((4, 4, 2), np.float32))
    with pytest.raises(DipInputError, match="float"):
        write_image(tmp_path / "u.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DipInputError, match=r"\.png"):
        write_image(tmp_path / "x.jpg", photo64)
    assert list(tmp_path.iterdir()) == []


def test_written_file_has_normal_permissions(tmp_path, photo64):
    out = write_image(tmp_path / "p.png", photo64)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


# --- conversions and crops -------------------------------------------------------------------------------------------


def test_tensor_roundtrip(photo64, grey64):
    t = to_tensor(photo64)
    assert t.shape == (1, 3, 64, 64) and t.dtype == torch.float32
    assert torch.equal(t[0, 1], torch.from_numpy(photo64[..., 1]))
    np.testing.assert_array_equal(to_numpy(t), photo64)
    assert to_tensor(grey64).shape == (1, 1, 64, 64)
    assert to_numpy(to_tensor(grey64)[0]).shape == (64, 64, 1)  # (C, H, W) accepted too
    with pytest.raises(ValueError):
        to_numpy(torch.zeros(2, 3, 4, 4))


def test_crop_to_multiple_matches_authors_rounding():
    img = np.arange(75 * 101, dtype=np.float32).reshape(75, 101, 1)
    crop, (top, left) = crop_to_multiple(img, 32)
    # crop_image: new = size - size % 32; offset = int((size - new) / 2) -> H: 75->64 (top 5), W: 101->96 (left 2)
    assert crop.shape == (64, 96, 1) and (top, left) == (5, 2)
    np.testing.assert_array_equal(crop, img[5:69, 2:98])
    same, off = crop_to_multiple(img[:64, :96], 32)
    assert same.shape == (64, 96, 1) and off == (0, 0)
    with pytest.raises(DipInputError, match="smaller than 32"):
        crop_to_multiple(img[:20], 32)


def test_one_box_for_every_crop():
    img = np.arange(75 * 101, dtype=np.float32).reshape(75, 101, 1)
    assert centre_crop_box(75, 101, 32) == (5, 2, 64, 96)
    # A centred 50 x 50 (then multiples of 16: 48 x 48) crop; a size larger than the image takes the whole side.
    assert centre_crop_box(75, 101, 16, size=50) == (13, 26, 48, 48)
    assert centre_crop_box(75, 101, size=(200, 40)) == (0, 30, 75, 40)
    np.testing.assert_array_equal(centre_crop(img, 50, 16), img[13:61, 26:74])
    assert centre_crop(img, None) is not img and centre_crop(img, None).shape == img.shape
    with pytest.raises(DipInputError, match="cannot crop a 101x75 image to 8"):
        centre_crop(img, 8, multiple=16)
    with pytest.raises(DipInputError, match="positive"):
        centre_crop_box(75, 101, 0)
    # A box in low-resolution pixels cuts the high-resolution image with scale=factor; None passes through.
    np.testing.assert_array_equal(crop_to_box(img, (1, 2, 3, 4), scale=4), img[4:16, 8:24])
    assert crop_to_box(None, (1, 2, 3, 4)) is None and crop_to_box(img, None) is img
    assert np.shares_memory(crop_to_box(img, [1, 2, 3, 4]), img)  # a view


def test_check_image_and_to_pil(photo64, grey64):
    assert check_image(photo64.astype(np.float64)).dtype == np.float32
    for bad in (photo64[..., 0], np.zeros((4, 4, 2)), np.zeros((4, 4, 4))):
        with pytest.raises(DipInputError, match=r"expected an \(H, W, 1\|3\) mask, got shape"):
            check_image(bad, "mask")
    assert to_pil(grey64).mode == "L" and to_pil(photo64).mode == "RGB"
    np.testing.assert_array_equal(np.asarray(to_pil(photo64)), _u8(photo64))


def test_put_in_center_undoes_the_crop(photo64):
    frame = np.pad(photo64, ((3, 4), (5, 10), (0, 0)), constant_values=0.5)  # 71 x 79
    crop, (top, left) = crop_to_multiple(frame, 32)
    back = put_in_center(crop, frame.shape)
    assert back.shape == frame.shape
    np.testing.assert_array_equal(back[top : top + 64, left : left + 64], crop)
    back[top : top + 64, left : left + 64] = 0
    assert not back.any()  # zeros outside the crop, as in the authors' released outputs


def test_uint8_roundtrip_is_idempotent(photo64):
    q = uint8_roundtrip(photo64)
    assert q.dtype == np.float32
    np.testing.assert_array_equal(uint8_roundtrip(q), q)
    assert np.abs(q - photo64).max() <= 0.5 / 255 + 1e-7
