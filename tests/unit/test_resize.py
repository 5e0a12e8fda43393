"""MATLAB-compatible imresize: hand-derived kernel weights, invariants, and the released SR bicubic images."""

from __future__ import annotations

import numpy as np
import pytest

from dip.data import resize
from dip.data.imageio import read_image
from dip.errors import DipInputError
from dip.eval.metrics import psnr_sr_paper

SR_DIR = "DmitryUlyanov/dmitryulyanov.github.io/master/assets/deep-image-prior/SR"
SET5 = ("baby", "bird", "butterfly", "head", "woman")

# Keys' cubic (a = -0.5) at distances 0.25, 0.75, 1.25, 1.75 -- exact binary fractions:
#   k(t) = 1.5 t^3 - 2.5 t^2 + 1 (t <= 1),  -0.5 t^3 + 2.5 t^2 - 4 t + 2 (1 < t <= 2)
K025, K075, K125, K175 = 0.8671875, 0.2265625, -0.0703125, -0.0234375


def _ramp(shape=(12, 10, 3)) -> np.ndarray:
    return np.random.default_rng(0).random(shape).astype(np.float32)


# --- the kernel weights, derived by hand -------------------------------------------------------------------------


def test_cubic_kernel_values():
    k, width = resize.KERNELS["cubic"]
    assert width == 4
    t = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5])
    np.testing.assert_array_equal(k(t), [1, K025, 0.5625, K075, 0, K125, -0.0625, K175, 0, 0])
    np.testing.assert_array_equal(k(-t), k(t))


def test_upscale_x2_weights():
    # Output pixel x (1-based) sits at u = x/2 + 0.25: x = 11 -> u = 5.75, i.e. 0.75 past pixel 5 (1-based).
    weights, indices = resize.contributions(10, 20, 2.0)
    assert weights.shape == indices.shape and weights.shape[0] == 20
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-15)
    row = dict(zip(indices[10].tolist(), weights[10].tolist()))
    assert {i: w for i, w in row.items() if w} == {3: K175, 4: K075, 5: K025, 6: K125}
    row = dict(zip(indices[11].tolist(), weights[11].tolist()))  # u = 6.25: the mirror image
    assert {i: w for i, w in row.items() if w} == {4: K125, 5: K025, 6: K075, 7: K175}


def test_antialiased_downscale_x2_weights():
    # Shrinking by 2 stretches the kernel: h(t) = k(t/2)/2 over 8 taps; output x = 3 sits at u = 2x - 0.5 = 5.5.
    weights, indices = resize.contributions(12, 6, 0.5)
    expected = [K175 / 2, K125 / 2, K075 / 2, K025 / 2, K025 / 2, K075 / 2, K125 / 2, K175 / 2]
    row = {i: w for i, w in zip(indices[2].tolist(), weights[2].tolist()) if w}
    assert list(row) == list(range(1, 9))
    np.testing.assert_allclose(list(row.values()), expected, rtol=0, atol=1e-16)
    # Without antialiasing it is plain cubic interpolation at the half-pixel positions: 4 taps.
    weights, indices = resize.contributions(12, 6, 0.5, antialias=False)
    row = {i: w for i, w in zip(indices[2].tolist(), weights[2].tolist()) if w}
    assert row == {3: -0.0625, 4: 0.5625, 5: 0.5625, 6: -0.0625}


def test_border_padding_replicate_and_symmetric():
    # First output of a x2 upscale (u = 0.75) reaches 1-based pixels -1 and 0 beyond the edge.
    row = np.array([[0.2, 0.6, 1.0, 0.4]])
    rep = resize.imresize(row, output_shape=(1, 8))
    sym = resize.imresize(row, output_shape=(1, 8), padding="symmetric")
    # replicate: taps -1, 0, 1 -> pixel 1; symmetric: tap 0 -> pixel 1, tap -1 -> pixel 2
    assert rep[0, 0] == pytest.approx((K175 + K075 + K025) * 0.2 + K125 * 0.6, abs=1e-7)
    assert sym[0, 0] == pytest.approx((K075 + K025) * 0.2 + (K175 + K125) * 0.6, abs=1e-7)
    _, idx = resize.contributions(4, 8, 2.0, padding="symmetric")
    assert idx.min() >= 0 and idx.max() <= 3


def test_linear_kernel_upscale_x2():
    out = resize.imresize(np.array([[0.0, 1.0, 0.0]]), output_shape=(1, 6), kernel="bilinear")
    np.testing.assert_allclose(out[0], [0.0, 0.25, 0.75, 0.75, 0.25, 0.0], atol=1e-7)


# --- invariants ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", resize.PADDINGS)
def test_identity_at_scale_one(padding):
    img = _ramp()
    np.testing.assert_array_equal(resize.imresize(img, 1.0, padding=padding), img)
    np.testing.assert_array_equal(resize.imresize(img, output_shape=img.shape[:2], padding=padding), img)


@pytest.mark.parametrize("kernel", ["cubic", "linear", "box", "lanczos2", "lanczos3"])
@pytest.mark.parametrize("scale", [0.25, 0.7, 1.5, 4])
def test_constant_image_stays_constant(kernel, scale):
    img = np.full((16, 20, 3), 0.3, np.float32)
    out = resize.imresize(img, scale, kernel=kernel)
    np.testing.assert_allclose(out, 0.3, atol=1e-6)


def test_shapes_and_layout():
    img = _ramp((10, 12, 3))
    out = resize.imresize(img, 0.25)
    assert out.shape == (3, 3, 3) and out.dtype == np.float32  # MATLAB: ceil(scale * size)
    assert resize.imresize(img, (0.5, 2)).shape == (5, 24, 3)
    assert resize.imresize(img, output_shape=(7, 5)).shape == (7, 5, 3)
    assert resize.imresize(img[..., 0], 3).shape == (30, 36)
    assert resize.imresize(img[..., :1], 3).shape == (30, 36, 1)
    # a scale and the output size it implies are the same resize
    np.testing.assert_array_equal(
        resize.imresize(_ramp((16, 8, 3)), 0.25), resize.imresize(_ramp((16, 8, 3)), output_shape=(4, 2))
    )


def test_channels_are_independent():
    img = _ramp((16, 16, 3))
    out = resize.imresize(img, 0.5)
    for c in range(3):
        np.testing.assert_array_equal(resize.imresize(img[..., c], 0.5), out[..., c])


def test_rejects_bad_arguments():
    img = _ramp()
    with pytest.raises(DipInputError, match="exactly one"):
        resize.imresize(img)
    with pytest.raises(DipInputError, match="exactly one"):
        resize.imresize(img, 0.5, output_shape=(6, 5))
    with pytest.raises(DipInputError, match="kernel"):
        resize.imresize(img, 0.5, kernel="nearestish")
    with pytest.raises(DipInputError, match="padding"):
        resize.imresize(img, 0.5, padding="wrap")
    with pytest.raises(DipInputError, match="positive"):
        resize.imresize(img, -2)
    with pytest.raises(DipInputError, match="multiple of x4"):
        resize.matlab_bicubic_baseline(_ramp((10, 12, 3)), 4)
    with pytest.raises(DipInputError, match="positive integer"):
        resize.matlab_bicubic_baseline(_ramp((12, 12, 3)), 2.5)


def test_baseline_and_lr_helpers():
    gt = resize.modcrop(_ramp((18, 21, 3)), 4)
    assert gt.shape == (16, 20, 3)
    lr = resize.matlab_lr(gt, 4)
    assert lr.shape == (4, 5, 3) and lr.min() >= 0 and lr.max() <= 1
    q = resize.matlab_lr(gt, 4, quantize=True)
    np.testing.assert_allclose(q * 255, np.round(q * 255), atol=1e-4)
    np.testing.assert_allclose(resize.imresize(gt, 0.25).clip(0, 1), lr, atol=1e-6)
    up = resize.matlab_bicubic_baseline(gt, 4)
    assert up.shape == gt.shape and up.dtype == np.float32
    np.testing.assert_allclose(up * 255, np.round(up * 255), atol=1e-4)  # 8-bit, like the released files
    raw = resize.matlab_bicubic_baseline(gt, 4, quantize=False)
    np.testing.assert_allclose(raw, resize.imresize(lr, 4).clip(0, 1), atol=1e-6)


# --- the released bicubic images (benchmark mirror) ----------------------------------------------------------------


@pytest.mark.parametrize("name", SET5)
def test_reproduces_released_set5_x4_bicubic(mirror, name):
    folder = mirror / SR_DIR / "Set5" / "x4"
    gt = read_image(folder / f"{name}_GT.png")
    released = read_image(folder / f"{name}_bicubic.png")
    ours = resize.matlab_bicubic_baseline(gt, 4)
    assert psnr_sr_paper(gt, ours) == pytest.approx(psnr_sr_paper(gt, released), abs=0.02)
    # In fact value for value: the released file is MATLAB's imresize down (double LR) and up, rounded to 8 bits.
    np.testing.assert_array_equal(np.round(ours * 255), np.round(released * 255))


def test_released_bicubic_is_not_symmetric_padding_nor_a_rounded_lr(mirror):
    folder = mirror / SR_DIR / "Set5" / "x4"
    gt = read_image(folder / "butterfly_GT.png")
    released = np.round(read_image(folder / "butterfly_bicubic.png") * 255)
    sym = resize.imresize(resize.imresize(gt, 0.25, padding="symmetric"), 4, padding="symmetric")
    assert np.abs(np.round(np.clip(sym, 0, 1) * 255) - released).max() >= 5  # the border differs
    rounded_lr = resize.imresize(resize.matlab_lr(gt, 4, quantize=True), 4)
    assert np.mean(np.round(np.clip(rounded_lr, 0, 1) * 255) != released) > 0.1
