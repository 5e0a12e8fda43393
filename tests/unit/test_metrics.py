"""Scores, and the check that they reproduce the paper's tables from the authors' released result images."""

from __future__ import annotations

import numpy as np
import pytest

from dip.data import degrade
from dip.data.imageio import put_in_center, read_image
from dip.errors import DipInputError
from dip.eval import metrics


def test_psnr_of_identical_images_is_inf(photo64):
    assert metrics.psnr(photo64, photo64.copy()) == float("inf")


def test_psnr_known_value_and_grey_shapes(grey64):
    est = np.clip(grey64 + 0.01, 0, 1)
    est[grey64 > 0.99] = grey64[grey64 > 0.99] - 0.01  # keep the error exactly 0.01 everywhere
    assert metrics.psnr(grey64, est) == pytest.approx(40.0, abs=1e-4)  # MSE 1e-4 on a unit range
    assert metrics.psnr(grey64[..., 0], est[..., 0]) == pytest.approx(metrics.psnr(grey64, est))


def test_psnr_refuses_mismatched_shapes(photo64):
    with pytest.raises(DipInputError, match="different shapes"):
        metrics.psnr(photo64, photo64[:32])


def test_ssim(photo64, noisy64):
    assert metrics.ssim(photo64, photo64) == pytest.approx(1.0)
    assert 0 < metrics.ssim(photo64, noisy64) < 0.9
    tiny = photo64[:5, :5]  # smaller than the default 7x7 window
    assert metrics.ssim(tiny, tiny) == pytest.approx(1.0)
    with pytest.raises(DipInputError, match="3x3"):
        metrics.ssim(photo64[:2, :2], photo64[:2, :2])


def test_rgb_to_y_on_pure_colours():
    colours = np.array([[[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]], np.float32)
    y = metrics.rgb_to_y(colours)[0, :, 0] * 255
    np.testing.assert_allclose(
        y, [16, 235, 16 + 0.299 * 219, 16 + 0.587 * 219, 16 + 0.114 * 219], rtol=0, atol=1e-9
    )


def test_rgb_to_y_grey_goes_through_the_same_scaling(grey64):
    y = metrics.rgb_to_y(grey64)
    np.testing.assert_allclose(y, metrics.rgb_to_y(np.repeat(grey64, 3, axis=2)), atol=1e-12)
    np.testing.assert_allclose(y, grey64 * 219 / 255 + 16 / 255, atol=1e-7)


def test_sr_region_is_the_centre_multiple_of_32_box():
    # Set14 zebra x4: GT 584 x 388 -> DIP crop 576 x 384 at rows 2.., cols 4.. (the authors' crop_image rounding)
    assert metrics.sr_region((388, 584)) == (2, 4, 384, 576)
    assert metrics.sr_region((64, 96)) == (0, 0, 64, 96)


def test_sr_region_from_a_zero_padded_output(photo64):
    dip_out = np.clip(photo64, 1 / 255, 1)  # no black pixels, so the whole crop counts as non-zero
    frame_shape = (71, 79, 3)
    padded = put_in_center(dip_out, frame_shape)
    assert metrics.sr_region_from_output(padded) == metrics.sr_region(frame_shape[:2]) == (3, 7, 64, 64)
    with pytest.raises(DipInputError, match="all zeros"):
        metrics.sr_region_from_output(np.zeros((8, 8, 3)))


def test_psnr_sr_paper_is_y_psnr_on_the_shaved_region(photo64):
    est = degrade.add_gaussian_noise(photo64, 10, seed=0)
    region = (2, 3, 48, 56)
    yg, ye = metrics.rgb_to_y(photo64), metrics.rgb_to_y(est)
    # The eval script's t = nonzero indices; [t[0] + 4 : t[-1] - 4] with t[0] = 2, t[-1] = 2 + 48 - 1.
    rows, cols = slice(2 + 4, 2 + 47 - 4), slice(3 + 4, 3 + 55 - 4)
    mse = np.mean((yg[rows, cols] - ye[rows, cols]) ** 2)
    assert metrics.psnr_sr_paper(photo64, est, region) == pytest.approx(10 * np.log10(1 / mse), abs=1e-9)
    # Errors outside the shaved region do not count.
    est2 = est.copy()
    est2[:6] = 0
    assert metrics.psnr_sr_paper(photo64, est2, region) == pytest.approx(metrics.psnr_sr_paper(photo64, est, region))
    assert metrics.ssim_sr_paper(photo64, photo64, region) == pytest.approx(1.0)
    with pytest.raises(DipInputError, match="put_in_center"):
        metrics.psnr_sr_paper(photo64, est[:32], region)


# --- the paper's numbers, recomputed from the authors' released images ---------------------------------------------

SET5 = ["baby", "bird", "butterfly", "head", "woman"]
SET14 = ["baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers", "foreman", "lenna", "man",
         "monarch", "pepper", "ppt3", "zebra"]
PAGE = "DmitryUlyanov/dmitryulyanov.github.io/master/assets/deep-image-prior"


def _sr_means(folder, names, methods):
    scores = {m: [] for m in methods}
    for name in names:
        gt = read_image(folder / f"{name}_GT.png", mode="rgb")
        dip = read_image(folder / f"{name}_deep_prior.png", mode="rgb", alpha="ignore")
        region = metrics.sr_region_from_output(dip)  # as the authors' eval script does
        for method in methods:
            est = read_image(folder / f"{name}_{method}.png", mode="rgb", alpha="ignore")
            scores[method].append(metrics.psnr_sr_paper(gt, est, region))
    return {m: float(np.mean(v)) for m, v in scores.items()}


@pytest.mark.parametrize(
    "dataset,names,expected",
    [
        ("Set5", SET5, {"deep_prior": 29.90, "bicubic": 28.44, "SRResNet-MSE": 32.10}),
        ("Set14", SET14, {"deep_prior": 27.01, "bicubic": 26.05, "SRResNet-MSE": 28.53}),
    ],
)
def test_paper_sr_table_from_released_images(mirror, dataset, names, expected):
    means = _sr_means(mirror / PAGE / "SR" / dataset / "x4", names, list(expected))
    for method, value in expected.items():
        assert means[method] == pytest.approx(value, abs=0.01), method


@pytest.mark.parametrize("dataset,names", [("Set5", SET5), ("Set14", SET14)])
@pytest.mark.parametrize("scale", ["x4", "x8"])
def test_centre_box_equals_the_released_dip_region(mirror, dataset, names, scale):
    """Our sr_region(GT shape) finds the same box as the non-zero area of every released DIP output."""
    folder = mirror / PAGE / "SR" / dataset / scale
    dip_name = "deep_prior" if scale == "x4" else "deep_prior_005"
    for name in names:
        gt = read_image(folder / f"{name}_GT.png", mode="rgb")
        dip = read_image(folder / f"{name}_{dip_name}.png", mode="rgb", alpha="ignore")
        assert metrics.sr_region(gt.shape) == metrics.sr_region_from_output(dip), name


def test_paper_denoising_baselines_from_released_images(mirror):
    folder = mirror / PAGE / "Denoising" / "Color" / "25"
    names = sorted(p.name[: -len("_GT.png")] for p in folder.glob("*_GT.png"))
    assert len(names) == 9
    scores = {"bm3d": [], "nlm": []}
    for name in names:
        gt = read_image(folder / f"{name}_GT.png")
        for method in scores:
            scores[method].append(metrics.psnr(gt, read_image(folder / f"{name}_{method}.png", alpha="ignore")))
    assert np.mean(scores["bm3d"]) == pytest.approx(31.42, abs=0.01)
    assert np.mean(scores["nlm"]) == pytest.approx(30.23, abs=0.01)


def test_paper_inpainting_table_from_released_images(mirror):
    folder = mirror / PAGE / "Reconstruction" / "Gray" / "50p"
    names = sorted(p.name[: -len("_GT.png")] for p in folder.glob("*_GT.png"))
    assert len(names) == 11
    dip, papyan = [], []
    for name in names:
        gt = read_image(folder / f"{name}_GT.png")
        assert gt.shape[2] == 1
        dip.append(metrics.psnr(gt, read_image(folder / f"{name}_deep_prior.png")))
        papyan.append(metrics.psnr(gt, read_image(folder / f"{name}_papyan.png")))
        # The released masked input is the GT with exactly-zero missing pixels: the mask is recoverable.
        masked = read_image(folder / f"{name}_masked.png")
        mask = degrade.mask_from_masked(masked)
        np.testing.assert_array_equal(gt * mask, masked)
        assert 1 - mask.mean() == pytest.approx(0.5, abs=0.01)
    assert np.mean(dip) == pytest.approx(33.44, abs=0.01)
    assert np.mean(papyan) == pytest.approx(31.16, abs=0.01)
