"""The fit loop: it restores, it is seeded, it resumes bit-identically, it rolls back divergence."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

from dip import physics
from dip.errors import DipInputError
from dip.eval import metrics
from dip.fit import FitConfig, FitInterrupted, fit
from dip.restore import restore
from tests.helpers import CrashAt, PoisonAt, SigtermAt, tiny_fit_config


def test_short_denoising_fit_beats_noisy_input_by_2db(photo64, noisy64):
    config = FitConfig(
        net_kwargs=dict(channels_down=[32] * 4, channels_up=[32] * 4, channels_skip=[4] * 4, upsample="bilinear"),
        iterations=400, reg_noise_std=1 / 30, exp_weight=0.99, log_every=50, device="cpu", seed=0,
    )
    result = restore("denoise", noisy64, config=config, ground_truth=photo64)
    noisy_psnr = metrics.psnr(photo64, noisy64)
    dip_psnr = metrics.psnr(photo64, result.output)
    assert dip_psnr >= noisy_psnr + 2.0, (noisy_psnr, dip_psnr)
    # The logged PSNR is the same quantity, computed on the device.
    assert result.history[-1]["psnr_gt_avg"] == pytest.approx(metrics.psnr(photo64, result.output_avg), abs=0.05)


def test_same_seed_same_result_other_seed_differs(photo64):
    config = tiny_fit_config(iterations=12)
    a = fit(photo64, physics.Identity(), config)
    b = fit(photo64, physics.Identity(), config)
    c = fit(photo64, physics.Identity(), config.replace(seed=1))
    np.testing.assert_array_equal(a.output, b.output)
    assert np.abs(a.output - c.output).max() > 1e-4


def test_history_every_k_steps_and_at_the_end(photo64):
    result = fit(photo64, physics.Identity(), tiny_fit_config(iterations=23, log_every=5), ground_truth=photo64)
    assert [r["step"] for r in result.history] == [0, 5, 10, 15, 20, 22]
    assert all(r["psnr_gt"] is not None and np.isfinite(r["loss"]) for r in result.history)
    assert result.iterations_done == 23 and result.resumed_from == 0


def test_killed_fit_resumes_bit_identical(photo64, tmp_path):
    config = tiny_fit_config(iterations=30, checkpoint_every=10, exp_weight=0.9)
    ckpt = tmp_path / "fit.ckpt"
    uninterrupted = fit(photo64, physics.Identity(), config)
    with pytest.raises(KeyboardInterrupt):
        fit(photo64, physics.Identity(), config, checkpoint_path=ckpt, hooks=[CrashAt(24)])
    assert ckpt.exists()
    resumed = fit(photo64, physics.Identity(), config, checkpoint_path=ckpt)
    assert resumed.resumed_from == 20  # the last periodic checkpoint was after step 19
    np.testing.assert_array_equal(resumed.output, uninterrupted.output)
    np.testing.assert_array_equal(resumed.output_raw, uninterrupted.output_raw)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in uninterrupted.history]


def test_sigterm_writes_checkpoint_and_resume_matches(photo64, tmp_path):
    config = tiny_fit_config(iterations=20)
    ckpt = tmp_path / "fit.ckpt"
    uninterrupted = fit(photo64, physics.Identity(), config)
    with pytest.raises(FitInterrupted) as err:
        fit(photo64, physics.Identity(), config, checkpoint_path=ckpt, hooks=[SigtermAt(7)])
    assert err.value.step == 7 and ckpt.exists()
    resumed = fit(photo64, physics.Identity(), config, checkpoint_path=ckpt)
    assert resumed.resumed_from == 8
    np.testing.assert_array_equal(resumed.output, uninterrupted.output)
    # The SIGTERM handler is removed again after the fit.
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None) or callable(signal.getsignal(signal.SIGTERM))


def test_checkpoint_of_other_settings_is_refused(photo64, tmp_path):
    ckpt = tmp_path / "fit.ckpt"
    with pytest.raises(FitInterrupted):
        fit(photo64, physics.Identity(), tiny_fit_config(iterations=10), checkpoint_path=ckpt, hooks=[SigtermAt(3)])
    from dip.errors import DipInputError

    with pytest.raises(DipInputError, match="other settings"):
        fit(photo64, physics.Identity(), tiny_fit_config(iterations=10, lr=0.02), checkpoint_path=ckpt)


def test_divergence_rolls_back_weights_and_adam_state(photo64):
    config = tiny_fit_config(iterations=25, log_every=5)
    result = fit(photo64, physics.Identity(), config, hooks=[PoisonAt(7)])
    assert result.backtracks == 1
    assert any(r.get("backtracked") for r in result.history)
    assert np.isfinite(result.output).all() and np.isfinite(result.history[-1]["loss"])


@pytest.mark.slow(seconds=90)
def test_compiled_fit_matches_eager_fit(photo64):
    # torch.compile changes how the network is executed, not what it computes: a few steps stay within float noise.
    config = tiny_fit_config(iterations=3, channels_last=False)
    eager = fit(photo64, physics.Identity(), config)
    compiled = fit(photo64, physics.Identity(), config.replace(compile=True))
    assert np.abs(compiled.output - eager.output).max() < 1e-3
    assert compiled.config.compile and eager.history[0]["loss"] == pytest.approx(compiled.history[0]["loss"], rel=1e-4)


def test_set_threads_and_compile_settings_are_checked():
    from dip.errors import DipInputError
    from dip.fit import set_threads

    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
        assert set_threads(None) == 1  # None leaves it alone
    finally:
        torch.set_num_threads(before)
    from dip.fit import bf16_is_fast

    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else None
    if flags is not None and "avx512_bf16" not in flags and "amx_bf16" not in flags:
        assert bf16_is_fast("cpu") is False  # emulated bf16 is slower than fp32
    if flags is not None and "avx512_bf16" in flags:
        assert bf16_is_fast("cpu") is True  # AMD Zen 4 / Intel Cooper Lake and newer
    # precision="auto" is resolved on the device, and the record says what it chose
    auto = fit(np.full((32, 32, 3), 0.5, np.float32), physics.Identity(), tiny_fit_config(iterations=2, precision="auto"))
    assert auto.config.precision == ("bf16" if bf16_is_fast("cpu") else "fp32")
    with pytest.raises(DipInputError, match="precision must be one of fp32, bf16, auto"):
        fit(np.zeros((32, 32, 3), np.float32), physics.Identity(), tiny_fit_config(precision="fp16"))
    with pytest.raises(DipInputError, match="compile_mode"):
        fit(np.zeros((32, 32, 3), np.float32), physics.Identity(), tiny_fit_config(compile_mode="fastest"))


@pytest.mark.parametrize(
    "field, value, message",
    [("lr", float("nan"), "finite"), ("lr", float("inf"), "finite"), ("reg_noise_std", float("nan"), "finite"),
     ("seed", -1, "seed")],
)
def test_non_finite_or_negative_settings_are_refused(field, value, message):
    with pytest.raises(DipInputError, match=message):
        FitConfig(**{field: value}).validate()
