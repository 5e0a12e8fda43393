"""ES-WMV early stopping: it finds the variance minimum, stops (or only records), resumes, and reaches the sidecar."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dip import physics
from dip.cli import main
from dip.data import degrade
from dip.errors import DipInputError
from dip.eval import metrics
from dip.fit import BaseHook, FitState, fit
from dip.fit.stopping import EarlyStopping
from dip.restore import restore, save_result
from tests.helpers import CrashAt, save_png, tiny_fit_config

# A 32 px crop with strong noise and a tiny net: the PSNR peaks after ~20 steps and then the net fits the noise.
ES = dict(window=10, patience=40, check_every=10)


def _config(**overrides):
    base = dict(iterations=160, log_every=10, exp_weight=None, reg_noise_std=0.0, backtrack_db=None)
    base.update(overrides)
    return tiny_fit_config(**base)


def _state(step: int, out: torch.Tensor) -> FitState:
    return FitState(step=step, iterations=1000, net=torch.nn.Identity(), output=out, output_avg=None,
                    loss=torch.zeros(()), history=[])


def test_detects_the_minimum_of_a_synthetic_variance_curve():
    # Outputs jitter around a fixed image with an amplitude that falls until step 50 and rises after it: the
    # windowed variance is smallest for the window ending just after 50.
    gen = torch.Generator().manual_seed(0)
    base = torch.rand((1, 3, 8, 8), generator=gen)
    hook = EarlyStopping(window=5, patience=20, check_every=1)
    state = None
    for step in range(200):
        amp = 0.01 * (abs(step - 50) + 1)
        state = _state(step, base + amp * torch.randn((1, 3, 8, 8), generator=gen))
        hook.on_step(state)
        if state.stop:
            break
    assert 48 <= hook.detected_step <= 56
    assert state.stop and hook.stopped_at == hook.detected_step + 20 == state.step
    summary = state.extra["early_stopping"]
    assert summary["detected_step"] == hook.detected_step and summary["triggered"]
    assert hook.best_output().shape == (1, 3, 8, 8)


def test_no_output_before_the_window_fills():
    hook = EarlyStopping(window=5, patience=3)
    for step in range(3):
        hook.on_step(_state(step, torch.zeros((1, 1, 4, 4))))
    assert hook.best_output() is None and hook.detected_step is None


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        EarlyStopping(window=1)
    with pytest.raises(DipInputError, match="early-stopping"):
        restore("denoise", np.zeros((32, 32, 3), np.float32), config=_config(), early_stopping={"windw": 5})


def test_stop_ends_the_fit_and_record_only_finds_the_same_step(noisy32, clean32):
    stopper = EarlyStopping(stop=True, **ES)
    stopped = fit(noisy32, physics.Identity(), _config(), ground_truth=clean32, hooks=[stopper])
    assert stopped.stopped_early and stopped.iterations_done < 160
    assert stopper.stopped_at == stopped.iterations_done - 1
    assert stopper.stopped_at - stopper.detected_step >= ES["patience"]

    recorder = EarlyStopping(stop=False, **ES)
    full = fit(noisy32, physics.Identity(), _config(), ground_truth=clean32, hooks=[recorder])
    assert not full.stopped_early and full.iterations_done == 160
    assert recorder.stopped_at is None
    # Detection is final: the recording run keeps the step and the output a stopping run returns.
    assert recorder.detected_step == stopper.detected_step
    torch.testing.assert_close(recorder.best_output(), stopper.best_output())
    # And on this noisy image it is worth it: the detected output beats the overfitted last one.
    detected = recorder.best_output()[0].permute(1, 2, 0).numpy()
    assert metrics.psnr(clean32, detected) > metrics.psnr(clean32, full.output) + 1.0


def test_resume_from_checkpoint_keeps_the_hook_state(noisy32, tmp_path):
    config = _config(checkpoint_every=20, iterations=100)
    reference = EarlyStopping(stop=False, **ES)
    fit(noisy32, physics.Identity(), config, hooks=[reference])
    assert reference.detected_step is not None

    ckpt = tmp_path / "fit.ckpt"
    first = EarlyStopping(stop=False, **ES)
    with pytest.raises(KeyboardInterrupt):
        # Killed after the window filled but before detection: the ring buffer and the minimum must survive.
        fit(noisy32, physics.Identity(), config, checkpoint_path=ckpt, hooks=[first, CrashAt(45)])
    assert first.detected_step is None
    resumed_hook = EarlyStopping(stop=False, **ES)
    resumed = fit(noisy32, physics.Identity(), config, checkpoint_path=ckpt, hooks=[resumed_hook, BaseHook()])
    assert resumed.resumed_from == 40
    assert resumed_hook.detected_step == reference.detected_step
    torch.testing.assert_close(resumed_hook.best_output(), reference.best_output())


def test_restore_records_early_stopping_in_the_sidecar(noisy32, clean32, tmp_path):
    result = restore("denoise", noisy32, config=_config(), ground_truth=clean32,
                     early_stopping={**ES, "stop": False})
    es = result.early_stopping
    assert es["detected_step"] is not None and es["iterations_done"] == 160 and not es["stopped_early"]
    assert result.output_early.shape == clean32.shape
    assert es["psnr_detected"] == pytest.approx(metrics.psnr(clean32, result.output_early))
    assert es["psnr_detected"] > es["psnr_final"]
    assert es["psnr_peak_logged"] >= es["psnr_final"]
    record = save_result(result, tmp_path / "out.png")
    assert json.loads((tmp_path / "out.json").read_text())["early_stopping"] == json.loads(json.dumps(record["early_stopping"]))


def test_cli_early_stop_record_writes_both_outputs(photo64, tmp_path):
    noisy = degrade.add_gaussian_noise(photo64, 50, seed=0)
    src, gt = save_png(tmp_path / "noisy.png", noisy), save_png(tmp_path / "gt.png", photo64)
    out = tmp_path / "out.png"
    # The preset's 5-level net needs 64 px; 8 channels keep it quick.
    args = ["denoise", str(src), "-o", str(out), "--gt", str(gt), "--iters", "60", "--device", "cpu", "--quiet",
            "--preset", "denoise", "--width", "8", "--log-every", "10", "--es-window", "10", "--es-patience", "20"]
    assert main([*args, "--early-stop-record"]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["summary"]["iterations_done"] == 60
    assert record["early_stopping"]["output"] == str(tmp_path / "out.early.png")
    assert (tmp_path / "out.early.png").is_file()

    stop_out = tmp_path / "stop.png"
    assert main([*args[:3], str(stop_out), *args[4:], "--early-stop"]) == 0
    stop_record = json.loads(stop_out.with_suffix(".json").read_text())
    assert stop_record["output_step"] == stop_record["early_stopping"]["detected_step"]
    assert stop_record["summary"]["iterations_done"] <= 60


def test_emv_detects_the_minimum_of_a_synthetic_variance_curve():
    # ES-EMV on the same kind of curve: jitter falling until step 80, rising after it.
    from dip.fit.stopping import EarlyStoppingEMV

    gen = torch.Generator().manual_seed(0)
    base = torch.rand((1, 3, 8, 8), generator=gen)
    hook = EarlyStoppingEMV(alpha=0.1, patience=40, check_every=1, burn_in=20, keep="average")
    state = None
    for step in range(300):
        amp = 0.01 * (abs(step - 80) + 1)
        out = base + amp * torch.randn((1, 3, 8, 8), generator=gen)
        state = FitState(step=step, iterations=1000, net=None, output=out, output_avg=out * 0 + step,
                         loss=torch.zeros(()), history=[])  # fmt: skip
        hook.on_step(state)
        if state.stop:
            break
    assert 70 <= hook.detected_step <= 100
    assert state.stop and hook.stopped_at - hook.detected_step >= 40
    assert float(hook.best_output().flatten()[0]) == hook.detected_step  # keep="average": the fit's average there
    restored = EarlyStoppingEMV()
    restored.load_state_dict(hook.state_dict())
    assert restored.detected_step == hook.detected_step
    with pytest.raises(ValueError):
        EarlyStoppingEMV(alpha=1.0)
