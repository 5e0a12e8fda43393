"""Every CUDA code path of a fit: fp32, bf16 autocast, channels_last, torch.compile, CUDA graphs, stacked (packed)
fits and checkpoint/resume on the GPU. Marked `cuda`; skipped where no GPU is (CI), run by
reproduce_gpu/run.sh on a GPU machine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dip import physics
from dip.data import degrade
from dip.eval import metrics
from dip.fit import BaseHook, fit
from dip.fit.stacked import fit_many
from tests.helpers import crop_photo, tiny_fit_config

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


@pytest.fixture(scope="module")
def pair():
    clean = crop_photo("astronaut", 64, top=60, left=180)
    return clean, degrade.add_gaussian_noise(clean, 25, seed=0)


def _cuda(**overrides):
    base = dict(device="cuda", iterations=80, log_every=20, exp_weight=0.99)
    base.update(overrides)
    return tiny_fit_config(**base)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("channels_last", [True, False])
def test_a_short_fit_on_the_gpu_improves_on_the_noisy_input(pair, precision, channels_last):
    clean, noisy = pair
    result = fit(noisy, physics.Identity(), _cuda(precision=precision, channels_last=channels_last),
                 ground_truth=clean)
    assert result.device.startswith("cuda")
    assert result.config.precision == precision
    assert np.isfinite(result.output).all()
    assert metrics.psnr(clean, result.output) > metrics.psnr(clean, noisy) + 1.0
    assert result.peak_memory_mb > 0


def test_gpu_and_cpu_fits_agree_within_rounding(pair):
    clean, noisy = pair
    gpu = fit(noisy, physics.Identity(), _cuda(iterations=40, deterministic=True), ground_truth=clean)
    cpu = fit(noisy, physics.Identity(), _cuda(iterations=40, device="cpu"), ground_truth=clean)
    # Same seed, same weights and noise draws (the input noise is drawn on the CPU generator); only the kernels'
    # float rounding differs.
    assert abs(metrics.psnr(clean, gpu.output) - metrics.psnr(clean, cpu.output)) < 0.5


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_fits_match_eager_ones(pair, mode):
    clean, noisy = pair
    eager = fit(noisy, physics.Identity(), _cuda(iterations=40), ground_truth=clean)
    compiled = fit(noisy, physics.Identity(), _cuda(iterations=40, compile=True, compile_mode=mode),
                   ground_truth=clean)
    assert np.isfinite(compiled.output).all()
    assert abs(metrics.psnr(clean, compiled.output) - metrics.psnr(clean, eager.output)) < 0.5


def test_stacked_fits_on_the_gpu_equal_their_lone_fits(pair):
    clean, noisy = pair
    config = _cuda(iterations=40, deterministic=True)
    stacked = fit_many([noisy] * 4, physics.Identity(), config, seeds=[0, 1, 2, 3], ground_truths=[clean] * 4)
    for seed, result in zip([0, 1, 2, 3], stacked):
        lone = fit(noisy, physics.Identity(), config.replace(seed=seed), ground_truth=clean)
        assert abs(metrics.psnr(clean, result.output) - metrics.psnr(clean, lone.output)) < 0.2


class _KillAt(BaseHook):
    def __init__(self, step: int):
        self.step = step

    def on_step(self, state):
        if state.step == self.step:
            raise KeyboardInterrupt("simulated kill")


def test_checkpoint_and_resume_on_the_gpu(pair, tmp_path):
    clean, noisy = pair
    config = _cuda(iterations=60, checkpoint_every=20, deterministic=True)
    whole = fit(noisy, physics.Identity(), config, ground_truth=clean)
    ckpt = tmp_path / "fit.ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit(noisy, physics.Identity(), config, ground_truth=clean, checkpoint_path=ckpt, hooks=[_KillAt(45)])
    assert ckpt.exists()
    resumed = fit(noisy, physics.Identity(), config, ground_truth=clean, checkpoint_path=ckpt)
    assert resumed.resumed_from == 40
    assert abs(metrics.psnr(clean, resumed.output) - metrics.psnr(clean, whole.output)) < 0.05


def test_auto_device_is_the_gpu(pair):
    clean, noisy = pair
    result = fit(noisy, physics.Identity(), _cuda(iterations=5, device="auto"))
    assert result.device.startswith("cuda")
