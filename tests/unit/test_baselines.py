"""Classical baselines: they run, they help, and they refuse tasks they do not apply to."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dip import baselines, physics
from dip.data import degrade
from dip.errors import DipInputError
from dip.eval import metrics


def test_nlm_beats_the_noisy_input(photo64, noisy64):
    out = baselines.nlm(noisy64, 25)
    assert out.shape == photo64.shape and out.dtype == np.float32
    assert metrics.psnr(photo64, out) > metrics.psnr(photo64, noisy64) + 2


def test_cbm3d_beats_the_noisy_input_colour_and_grey(photo64, noisy64, grey64):
    out = baselines.cbm3d(noisy64, 25)
    assert out.shape == photo64.shape
    assert metrics.psnr(photo64, out) > metrics.psnr(photo64, noisy64) + 2
    noisy_grey = degrade.add_gaussian_noise(grey64, 25, seed=0)
    out_grey = baselines.cbm3d(noisy_grey, 25)
    assert out_grey.shape == (64, 64, 1)
    assert metrics.psnr(grey64, out_grey) > metrics.psnr(grey64, noisy_grey) + 2


def test_denoisers_need_sigma(noisy64):
    with pytest.raises(DipInputError, match="sigma"):
        baselines.nlm(noisy64, None)
    with pytest.raises(DipInputError, match="sigma"):
        baselines.run_baseline("cbm3d", "denoise", noisy64, sigma=0)


def test_biharmonic_beats_the_masked_input(grey64, photo64):
    mask = degrade.bernoulli_mask((64, 64), 0.5, seed=0)
    out = baselines.biharmonic(grey64 * mask, mask)
    assert out.shape == (64, 64, 1)
    assert metrics.psnr(grey64, out) > metrics.psnr(grey64, grey64 * mask) + 10
    np.testing.assert_allclose(out[mask[..., 0] > 0], grey64[mask[..., 0] > 0], atol=1e-6)  # known pixels kept
    colour = baselines.run_baseline("biharmonic", "inpaint", photo64 * mask, mask=mask)
    assert metrics.psnr(photo64, colour) > metrics.psnr(photo64, photo64 * mask) + 10


def test_pil_bicubic_upsample_is_pil_bicubic_of_the_lr_image(photo64):
    _, lr = degrade.make_lr(photo64, 4)
    out = baselines.pil_bicubic_upsample(lr, 4)
    assert out.shape == (64, 64, 3) and out.dtype == np.float32
    u8 = np.round(lr * 255).astype(np.uint8)
    expected = np.asarray(Image.fromarray(u8).resize((64, 64), Image.BICUBIC), np.float32) / 255
    np.testing.assert_array_equal(out, expected)


def test_bicubic_baseline_is_the_literature_bicubic_of_the_ground_truth(photo64):
    from dip.data.resize import matlab_bicubic_baseline

    _, lr = degrade.make_lr(photo64, 4)
    out = baselines.run_baseline("bicubic", "sr", lr, factor=4, ground_truth=photo64)
    np.testing.assert_array_equal(out, matlab_bicubic_baseline(photo64, 4))  # from the GT, not from DIP's LR
    assert out.shape == photo64.shape and out.dtype == np.float32
    grey = baselines.run_baseline("bicubic", "sr", lr[..., :1], factor=4, ground_truth=photo64[..., :1])
    assert grey.shape == (64, 64, 1)
    # A GT that is not a multiple of the factor: modcrop, bicubic, edge-padded back to the GT's full frame.
    odd = photo64[:62, :63]
    out = baselines.sr_bicubic(odd, 4)
    assert out.shape == odd.shape
    np.testing.assert_array_equal(out[:60, :60], matlab_bicubic_baseline(odd[:60, :60], 4))
    np.testing.assert_array_equal(out[61], out[59])
    np.testing.assert_array_equal(out[:, 62], out[:, 59])


SR_X4 = "DmitryUlyanov/dmitryulyanov.github.io/master/assets/deep-image-prior/SR/Set5/x4"


def test_workflow_bicubic_scores_as_the_released_bicubic_on_set5_x4(mirror, tmp_path):
    # The workflow's path: degrade (full-frame gt.png, DIP's Lanczos LR) -> the baseline job (bicubic from gt.png)
    # -> the paper's SR metric on the GT frame. Same scores as the authors' released *_bicubic.png, pixel for pixel.
    from dip.data.benchmarks import BENCHMARKS, load_benchmark_image, make_task_inputs
    from dip.data.imageio import read_image, write_image
    from dip.eval.scoring import score_image
    from dip.pipeline import steps

    ours, released = [], []
    for image in BENCHMARKS["set5"].images:
        gt = load_benchmark_image(mirror / SR_X4 / f"{image}_GT.png", "set5")
        made = make_task_inputs("sr", 4, gt)
        files = {k: tmp_path / f"{image}_{k}.png" for k in ("gt", "observation", "target")}
        for key, img in (("gt", made.ground_truth), ("observation", made.observation), ("target", made.fit_target)):
            write_image(files[key], img)
        spec = {"name": "bicubic", "task": "sr", "level": 4.0, "seed": 0, "options": {}}
        out = {"png": str(tmp_path / f"{image}.png"), "json": str(tmp_path / f"{image}.json")}
        steps.baseline(spec, {k: str(v) for k, v in files.items()}, out, threads=1)
        est = read_image(out["png"])
        rel = load_benchmark_image(mirror / SR_X4 / f"{image}_bicubic.png", "set5")
        np.testing.assert_array_equal(np.round(est * 255), np.round(rel * 255))
        gt_frame = read_image(files["gt"])
        ours.append(score_image("sr", gt_frame, est)[0])
        released.append(score_image("sr", gt, rel)[0])
    np.testing.assert_allclose(ours, released, atol=0.02)
    assert np.mean(ours) == pytest.approx(28.44, abs=0.01)  # config/paper_numbers.yaml, released


def test_tv_loss_is_isotropic_total_variation():
    x = torch.zeros(1, 1, 5, 6)
    x[..., 3:] = 1.0  # a vertical step of height 1, crossed by each of the 4 rows of the (H-1) x (W-1) grid
    assert baselines.tv_loss(x).item() == pytest.approx(4.0, abs=1e-4)
    assert baselines.tv_loss(torch.full((1, 3, 8, 8), 0.3)).item() == pytest.approx(0.0, abs=1e-3)
    r = torch.rand(1, 3, 9, 9, generator=torch.Generator().manual_seed(0))
    dx, dy = r[..., :-1, 1:] - r[..., :-1, :-1], r[..., 1:, :-1] - r[..., :-1, :-1]
    assert baselines.tv_loss(r).item() == pytest.approx(torch.sqrt(dx**2 + dy**2).sum().item(), rel=1e-5)


def test_tv_prior_beats_no_prior_on_small_sr(photo64):
    hr, lr = degrade.make_lr(photo64, 4)
    op = physics.LanczosDownsampler(4, 3)
    plain = baselines.no_prior(lr, op, hr.shape, iterations=300, seed=0)
    tv = baselines.tv_prior(lr, op, hr.shape, iterations=300, seed=0)
    assert plain.shape == tv.shape == hr.shape
    assert plain.min() >= 0 and plain.max() <= 1
    assert metrics.psnr(hr, tv) > metrics.psnr(hr, plain) + 0.3
    # Both fit the observation: the data term alone does not tell them apart.
    assert metrics.psnr(lr, op(torch.from_numpy(tv.transpose(2, 0, 1).copy())[None])[0].permute(1, 2, 0).numpy()) > 28


def test_no_prior_is_seeded(photo64):
    _, lr = degrade.make_lr(photo64, 4)
    run = lambda seed: baselines.run_baseline("no_prior", "sr", lr, factor=4, iterations=5, seed=seed)  # noqa: E731
    np.testing.assert_array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))


def test_no_prior_leaves_missing_pixels_at_their_start(grey64):
    mask = degrade.bernoulli_mask((64, 64), 0.5, seed=0)
    out = baselines.run_baseline("no_prior", "inpaint", grey64 * mask, mask=mask, iterations=20, init="zero")
    # The masked data term has no gradient on missing pixels: without a prior nothing fills them.
    assert not out[mask == 0].any()
    known = mask > 0
    assert np.abs(out[known] - grey64[known]).mean() < np.abs(grey64[known]).mean()  # moving towards the data


def test_bicubic_init_starts_from_the_bicubic_image(photo64):
    _, lr = degrade.make_lr(photo64, 4)
    out = baselines.no_prior(lr, physics.LanczosDownsampler(4, 3), (64, 64), iterations=1, lr=1e-9, init="bicubic")
    np.testing.assert_allclose(out, baselines.pil_bicubic_upsample(lr, 4), atol=1e-5)


@pytest.mark.parametrize(
    "name,task,message",
    [
        ("cbm3d", "sr", "does not apply"),
        ("bicubic", "denoise", "does not apply"),
        ("biharmonic", "denoise", "does not apply"),
        ("nlm", "inpaint", "does not apply"),
        ("waifu2x", "sr", "unknown baseline"),
    ],
)
def test_run_baseline_refuses_what_does_not_apply(photo64, name, task, message):
    with pytest.raises(DipInputError, match=message):
        baselines.run_baseline(name, task, photo64, sigma=25, factor=4)


def test_run_baseline_needs_its_inputs(photo64):
    with pytest.raises(DipInputError, match="factor"):
        baselines.run_baseline("bicubic", "sr", photo64)
    with pytest.raises(DipInputError, match="ground truth"):
        baselines.run_baseline("bicubic", "sr", photo64[:16, :16], factor=4)
    with pytest.raises(DipInputError, match="mask"):
        baselines.run_baseline("biharmonic", "inpaint", photo64)
    with pytest.raises(DipInputError, match="option"):
        baselines.run_baseline("no_prior", "sr", photo64[:16, :16], factor=4, iterations=1, tv_weight=1.0)


def test_one_pixel_routine_serves_the_baselines_and_the_tv_preimage():
    from dip.fit import pixels

    assert baselines.tv_loss is pixels.tv_loss
    start = torch.full((1, 1, 6, 6), 0.5)
    target = torch.zeros((1, 1, 6, 6))
    target[..., :3] = 2.0  # half the pixels are pulled above 1: the projection holds them at 1
    logged = []
    x = pixels.optimise_pixels(start, lambda p: torch.mean((p - target) ** 2), iterations=30, lr=0.1, clamp=True,
                               log_every=10, on_log=lambda step, value, _: logged.append((step, float(value))))
    assert [step for step, _ in logged] == [0, 10, 20, 29]
    assert logged[-1][1] < logged[0][1]
    assert x.max().item() == 1.0 and x.min().item() == 0.0
    assert bool(start.eq(0.5).all())  # the start is not changed in place
