"""The paper's other experiments as library functions, each on a tiny input with a few steps."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from dip import experiments
from dip.data import degrade
from dip.errors import DipInputError
from dip.eval import metrics
from dip.fit import FitConfig
from dip import nets
from tests.helpers import crop_photo

# 3 levels of 8 channels: a few ms per step at 32-64 px.
TINY_NET = dict(channels_down=[8] * 3, channels_up=[8] * 3, channels_skip=[4] * 3, upsample="bilinear")


def tiny(**overrides) -> FitConfig:
    base = dict(net="skip", net_kwargs=dict(TINY_NET), input_depth=8, iterations=10, log_every=5, device="cpu",
                exp_weight=None, backtrack_db=None)
    base.update(overrides)
    return FitConfig(**base)


def _jpeg(img: np.ndarray, quality: int = 15) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray((img * 255).round().astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf)).astype(np.float32) / 255.0


def test_experiment_table_names_files_in_the_mirror_manifest():
    from dip.data.manifest import read_manifest

    manifest = read_manifest("config/manifest/benchmarks.tsv")
    for name, (_, _, files, preset) in experiments.EXPERIMENTS.items():
        for key in files:
            assert experiments.DATA_FILES[key] in manifest, (name, key)


def test_jpeg_keeps_the_output_at_each_requested_step():
    jpeg = _jpeg(crop_photo("astronaut", 32, top=60, left=180))
    result, snaps = experiments.jpeg_restoration(jpeg, tiny(iterations=5, exp_weight=0.9), [3, 11])
    assert result.iterations_done == 12  # raised to reach the last snapshot
    assert sorted(snaps) == [3, 11] and all(s.shape == jpeg.shape for s in snaps.values())
    assert np.abs(snaps[3] - snaps[11]).max() > 1e-3
    # "avg" keeps the running average: the last snapshot is the fit's averaged output.
    np.testing.assert_allclose(snaps[11], result.output_avg, atol=1e-6)
    with pytest.raises(DipInputError):
        experiments.jpeg_restoration(jpeg, tiny(), [])


def test_hole_psnr_counts_missing_pixels_only():
    gt = np.zeros((4, 4, 3), np.float32)
    est = gt.copy()
    mask = np.ones((4, 4, 1), np.float32)
    mask[0, 0] = 0
    est[1, 1] = 1.0  # an error where the pixel is known: ignored
    assert experiments.hole_psnr(gt, est, mask) == float("inf")
    est[0, 0] = 0.1
    assert experiments.hole_psnr(gt, est, mask) == pytest.approx(20.0)
    assert np.isnan(experiments.hole_psnr(gt, est, np.ones_like(mask)))


def test_inpainting_comparison_scores_input_biharmonic_and_dip():
    img = crop_photo("astronaut", 64, top=60, left=180)
    mask = degrade.text_mask(img.shape[:2], text="DIP", font_size=10)
    out = experiments.inpainting_comparison(img, mask, tiny(iterations=8))
    assert set(out) == {"input", "biharmonic", "dip"}
    for entry in out.values():
        assert entry["image"].shape == img.shape and np.isfinite(entry["psnr"])
    # Filling the text in beats leaving it black.
    assert out["biharmonic"]["psnr_hole"] > out["input"]["psnr_hole"] + 5
    assert out["dip"]["result"].iterations_done == 8


def test_meshgrid_hole_preset_runs_on_a_tiny_crop():
    img = crop_photo("coffee", 64, top=100, left=200)
    mask = np.ones((64, 64, 1), np.float32)
    mask[20:40, 24:44] = 0
    config = tiny(input_kind="meshgrid", input_depth=2, iterations=5,
                  net_kwargs=dict(TINY_NET, channels_skip=[0] * 3, upsample="nearest"))
    out = experiments.inpainting_comparison(img, mask, config)
    assert np.isfinite(out["dip"]["psnr_hole"])


def test_every_architecture_builds_and_keeps_the_size():
    # The full-size library net matches the parameter count of the authors' skip_depth6 (their library notebook).
    assert experiments.architecture_parameters(experiments.architecture_config("depth6")) == 2_996_467
    # 128 px: a 6-level hourglass shrinks 64 px to 1x1 at its centre, too small for batch norm.
    z = torch.rand(1, 1, 128, 128)
    for name in experiments.DEFAULT_ARCHITECTURES:
        config = experiments.architecture_config(name, width=8, pad="zero")
        assert config.input_depth == 1
        net = nets.build_net(config.net, 1, 3, **config.net_kwargs)
        with torch.no_grad():
            assert net(z).shape == (1, 3, 128, 128), name
        assert experiments.architecture_parameters(config) < 60_000, name
    assert experiments.architecture_config("unet").lr == experiments.architecture_config("resnet").lr == 0.001
    assert experiments.architecture_config("depth4").lr == 0.01
    with pytest.raises(DipInputError, match="unknown architecture"):
        experiments.architecture_config("vgg")


def test_architecture_fit_on_a_tiny_library_crop():
    from dip.restore import restore

    img = crop_photo("astronaut", 64, top=60, left=180)
    mask = np.ones((64, 64, 1), np.float32)
    mask[::4] = 0
    config = experiments.architecture_config("depth3", width=8, pad="zero", iterations=4, device="cpu")
    result = restore("inpaint", img, config=config, mask=mask, ground_truth=img)
    scores = experiments.score_inpainting(img, result.output, mask, result.crop_box)
    assert set(scores) == {"psnr", "ssim", "psnr_hole"}


def test_sr_prior_comparison_runs_every_method():
    hr = crop_photo("chelsea", 64, top=80, left=150)
    out = experiments.sr_prior_comparison(hr, 4, dip_config=tiny(input_depth=3, iterations=4, reg_noise_std=1 / 30),
                                          iterations=15)
    assert out["lr"]["image"].shape == (16, 16, 3)
    for method in ("bicubic", "no_prior", "tv_prior", "dip"):
        assert out[method]["image"].shape == (64, 64, 3) and np.isfinite(out[method]["psnr"]), method
    assert not np.allclose(out["no_prior"]["image"], out["tv_prior"]["image"])
    assert experiments.PRIOR_EFFECT_DIP.input_depth == 3
    with pytest.raises(DipInputError):
        experiments.sr_prior_comparison(hr, 4, methods=["magic"])


def test_joint_bilateral_smooths_flat_regions_and_keeps_guide_edges():
    rng = np.random.default_rng(0)
    guide = np.zeros((32, 32, 3), np.float32)
    guide[:, 16:] = 1.0  # a clean vertical edge
    noisy = np.clip(guide * 0.6 + 0.2 + rng.normal(0, 0.05, guide.shape), 0, 1).astype(np.float32)
    out = experiments.joint_bilateral(noisy, guide, radius=3, sigma_space=2.0, sigma_range=0.1)
    assert out[:, 2:12].std() < noisy[:, 2:12].std() / 2  # noise removed in the flat half
    assert out[:, 17].mean() - out[:, 14].mean() > 0.5  # the edge of the guide survives
    with pytest.raises(DipInputError):
        experiments.joint_bilateral(noisy, guide[:16])


def test_flash_no_flash_feeds_the_flash_image():
    noflash = crop_photo("astronaut", 32, top=60, left=180) * 0.5
    flash = np.clip(noflash * 1.8, 0, 1)
    out = experiments.flash_no_flash(noflash, flash, tiny(input_kind="image", input_depth=3, iterations=4, lr=0.1),
                                     bilateral={"radius": 2})
    assert out["dip"]["image"].shape == noflash.shape
    assert out["dip"]["result"].config.input_kind == "image"
    assert np.isfinite(out["joint_bilateral"]["psnr_to_noflash"])


def test_metrics_psnr_of_identical_images_is_inf():
    # score_inpainting relies on metrics.psnr's convention for a perfect estimate.
    img = crop_photo("astronaut", 16)
    assert metrics.psnr(img, img) == float("inf")


def test_config_from_spec_is_the_presets_one_for_workflow_jobs():
    """One function turns a workflow job's spec into a FitConfig: the experiments' `dip:` sections and the fit jobs."""
    from dip.presets import config_from_spec, get_preset

    job = {"preset": "sr8", "width": 16, "settings": {"iterations": 7}, "seed": 3}
    assert config_from_spec(job) == get_preset("sr8", width=16, iterations=7).replace(seed=3)
    section = {"width": 32, "settings": {"log_every": 50}}
    assert config_from_spec(section, default_preset="jpeg", device="cpu") == get_preset(
        "jpeg", width=32, log_every=50, device="cpu")
    assert config_from_spec({"settings": {"device": "cuda"}}, default_preset="jpeg", device="cpu").device == "cuda"
    based = config_from_spec({"width": 8}, base=experiments.PRIOR_EFFECT_DIP)
    assert based.net_kwargs["channels_down"] == [8] * 5 and based.iterations == experiments.PRIOR_EFFECT_DIP.iterations
    with pytest.raises(DipInputError, match="no preset"):
        config_from_spec(None)
