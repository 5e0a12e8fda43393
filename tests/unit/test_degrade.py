"""Degraded inputs: seeded noise, the authors' LR images, masks (random, text, from files) and their validation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dip.data import degrade
from dip.data.imageio import write_image
from dip.errors import DipInputError
from dip.tasks import LEARNING_CURVE_KINDS

# --- noise ---------------------------------------------------------------------------------------------------------


def test_noise_is_reproducible_and_seed_dependent(photo64):
    a = degrade.add_gaussian_noise(photo64, 25, seed=1)
    b = degrade.add_gaussian_noise(photo64, 25, seed=1)
    c = degrade.add_gaussian_noise(photo64, 25, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == photo64.shape


def test_noise_std_is_sigma_over_255():
    grey = np.full((128, 128, 3), 0.5, np.float32)  # mid-grey: clipping at 0/1 is negligible at sigma 25
    noisy = degrade.add_gaussian_noise(grey, 25, seed=0)
    assert np.std(noisy - grey) == pytest.approx(25 / 255, rel=0.03)
    assert abs(np.mean(noisy - grey)) < 0.002


def test_noise_is_clipped_and_optionally_quantised(photo64):
    noisy = degrade.add_gaussian_noise(photo64, 50, seed=0)
    assert noisy.min() >= 0 and noisy.max() <= 1
    q = degrade.add_gaussian_noise(photo64, 50, seed=0, quantize=True)
    np.testing.assert_allclose(q * 255, np.round(q * 255), atol=1e-4)
    assert np.abs(q - noisy).max() <= 0.5 / 255 + 1e-6


def test_noise_validation(photo64):
    with pytest.raises(DipInputError, match="sigma"):
        degrade.add_gaussian_noise(photo64, -1, seed=0)
    with pytest.raises(DipInputError, match="seed"):
        degrade.add_gaussian_noise(photo64, 25, seed=1.5)
    zero = degrade.add_gaussian_noise(photo64, 0, seed=0)
    np.testing.assert_array_equal(zero, photo64)


def test_noise_accepts_a_numpy_generator(photo64):
    a = degrade.add_gaussian_noise(photo64, 25, np.random.default_rng(7))
    b = degrade.add_gaussian_noise(photo64, 25, 7)
    np.testing.assert_array_equal(a, b)


# --- low-resolution images -------------------------------------------------------------------------------------------


def test_make_lr_crops_to_32_and_uses_pil_lanczos(photo64):
    frame = np.pad(photo64, ((3, 4), (5, 10), (0, 0)), mode="reflect")  # 71 x 79 -> crop 64 x 64
    hr, lr = degrade.make_lr(frame, 4)
    assert hr.shape == (64, 64, 3) and lr.shape == (16, 16, 3)
    assert hr.dtype == lr.dtype == np.float32
    np.testing.assert_array_equal(hr, frame[3:67, 7:71])  # crop offsets int(7/2)=3, int(15/2)=7
    u8 = np.round(hr * 255).astype(np.uint8)
    expected = np.asarray(Image.fromarray(u8).resize((16, 16), Image.LANCZOS), np.float32) / 255
    np.testing.assert_array_equal(lr, expected)


def test_make_lr_grey_and_x8(grey64):
    hr, lr = degrade.make_lr(grey64, 8)
    assert hr.shape == (64, 64, 1) and lr.shape == (8, 8, 1)


def test_make_lr_refuses_small_images_and_bad_factors(photo64):
    with pytest.raises(DipInputError, match="too small"):
        degrade.make_lr(photo64[:20], 4)
    with pytest.raises(DipInputError, match="factor"):
        degrade.make_lr(photo64, 0)
    # A factor that 32 does not cover widens the crop multiple to lcm(32, 3) = 96 > 64.
    with pytest.raises(DipInputError, match="96"):
        degrade.make_lr(photo64, 3)


# --- masks ---------------------------------------------------------------------------------------------------------


def test_bernoulli_mask_fraction_and_reproducibility():
    m = degrade.bernoulli_mask((128, 128), 0.5, seed=3)
    assert m.shape == (128, 128, 1) and m.dtype == np.float32
    assert set(np.unique(m)) == {0.0, 1.0}
    assert 1 - m.mean() == pytest.approx(0.5, abs=0.02)
    np.testing.assert_array_equal(m, degrade.bernoulli_mask((128, 128), 0.5, seed=3))
    assert not np.array_equal(m, degrade.bernoulli_mask((128, 128), 0.5, seed=4))
    sparse = degrade.bernoulli_mask((128, 128), 0.9, seed=0)
    assert 1 - sparse.mean() == pytest.approx(0.9, abs=0.02)


def test_bernoulli_mask_per_channel():
    m = degrade.bernoulli_mask((64, 64), 0.5, seed=0, channels=3)
    assert m.shape == (64, 64, 3)
    assert not np.array_equal(m[..., 0], m[..., 1])  # independent draws per channel


def test_bernoulli_mask_validation():
    with pytest.raises(DipInputError, match="missing fraction"):
        degrade.bernoulli_mask((8, 8), 1.0, seed=0)
    with pytest.raises(DipInputError, match="missing fraction"):
        degrade.bernoulli_mask((8, 8), -0.1, seed=0)
    with pytest.raises(DipInputError, match="empty"):
        degrade.bernoulli_mask((1, 2), 0.999, seed=0)  # nothing survives on a 2-pixel image


def test_text_mask():
    m = degrade.text_mask((96, 128), text="hello world", font_size=12)
    assert m.shape == (96, 128, 1) and m.dtype == np.float32
    missing = 1 - m.mean()
    assert 0.02 < missing < 0.4  # text covers part of the image, not all of it
    np.testing.assert_array_equal(m, degrade.text_mask((96, 128), text="hello world", font_size=12))
    assert not np.array_equal(m, degrade.text_mask((96, 128), text="other words", font_size=12))
    with pytest.raises(DipInputError, match="empty"):
        degrade.text_mask((32, 32), text="  ")


def test_mask_from_file(tmp_path):
    mask = np.ones((40, 30, 1), np.float32)
    mask[10:20, 5:15] = 0
    path = write_image(tmp_path / "m.png", mask)
    np.testing.assert_array_equal(degrade.mask_from_file(path), mask)
    np.testing.assert_array_equal(degrade.mask_from_file(path, (40, 30)), mask)
    # A white/black mask saved as RGB comes back as one shared channel.
    write_image(tmp_path / "rgb.png", np.repeat(mask, 3, axis=2))
    assert degrade.mask_from_file(tmp_path / "rgb.png").shape == (40, 30, 1)


def test_mask_from_file_binarises_at_one_half(tmp_path):
    grey = np.array([[[0.2], [0.49]], [[0.51], [0.9]]], np.float32)
    path = write_image(tmp_path / "soft.png", grey)
    np.testing.assert_array_equal(degrade.mask_from_file(path)[..., 0], [[0, 0], [1, 1]])


def test_mask_of_another_size_is_refused_with_both_sizes(tmp_path):
    path = write_image(tmp_path / "m.png", np.ones((40, 30, 1), np.float32))
    with pytest.raises(DipInputError) as err:
        degrade.mask_from_file(path, (64, 64))
    assert "30x40" in str(err.value) and "64x64" in str(err.value) and "m.png" in str(err.value)


def test_empty_mask_file_is_refused(tmp_path):
    path = write_image(tmp_path / "black.png", np.zeros((8, 8, 1), np.float32))
    with pytest.raises(DipInputError, match="empty") as err:
        degrade.mask_from_file(path)
    assert "black.png" in str(err.value)


def test_unreadable_mask_file(tmp_path):
    (tmp_path / "m.png").write_text("not a png")
    with pytest.raises(DipInputError, match="m.png"):
        degrade.mask_from_file(tmp_path / "m.png")


def test_mask_from_masked_recovers_the_mask(grey64):
    img = np.clip(grey64, 1 / 255, 1)  # no true zeros, so "exactly 0" means "missing"
    m = degrade.bernoulli_mask(img.shape[:2], 0.5, seed=0)
    np.testing.assert_array_equal(degrade.mask_from_masked(img * m), m)


def test_apply_mask(photo64):
    m = degrade.bernoulli_mask((64, 64), 0.3, seed=0)
    out = degrade.apply_mask(photo64, m)
    np.testing.assert_array_equal(out, photo64 * m)
    with pytest.raises(DipInputError, match="same size"):
        degrade.apply_mask(photo64, m[:32])
    with pytest.raises(DipInputError, match="empty"):
        degrade.apply_mask(photo64, np.zeros_like(m))
    with pytest.raises(DipInputError, match="channels"):
        degrade.apply_mask(photo64, np.ones((64, 64, 2), np.float32))


# --- the targets of Fig. 2's learning curves -----------------------------------------------------------------------


def test_learning_curve_targets(photo64):
    for kind in LEARNING_CURVE_KINDS:
        t = degrade.learning_curve_target(photo64, kind, seed=0)
        assert t.shape == photo64.shape and t.dtype == np.float32
    shuffled = degrade.learning_curve_target(photo64, "shuffled")
    np.testing.assert_allclose(np.sort(shuffled.reshape(-1, 3), axis=0), np.sort(photo64.reshape(-1, 3), axis=0))
    with pytest.raises(DipInputError):
        degrade.learning_curve_target(photo64, "stripes")
