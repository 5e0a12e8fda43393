"""The auto stop (dip.fit.stopping): the discrepancy rule on synthetic curves, the hook in lone, packed and resumed
fits, replaying it on a logged curve, and what the record says."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from dip import physics
from dip.data import degrade
from dip.errors import DipInputError
from dip.eval import metrics
from dip.fit import BaseHook, FitState, fit
from dip.fit.stopping import (
    RULES, AutoStop, Budget, Discrepancy, auto_stop_of, estimate_noise_sigma, make_rule, replay, rule_for,
)  # fmt: skip
from dip.restore import restore, restore_many, save_result
from tests.helpers import CrashAt, crop_photo, tiny_fit_config

SIGMA = 0.1  # the synthetic curves' noise level ([0, 1] units)


def _curve(losses, start=0, every=10):
    return [{"step": start + every * i, "loss": float(v)} for i, v in enumerate(losses)]


def _state(step=0):
    return FitState(step=step, iterations=1000, net=None, output=torch.zeros((1, 1, 2, 2)), output_avg=None,
                    loss=torch.zeros(()), history=[])  # fmt: skip


def _feed(hook, records):
    state = _state()
    hook.on_start(state)
    for record in records:
        state.step = record["step"]
        hook.on_log(state, record)
        if state.stop:
            break
    return state


# --- the rule on synthetic curves ------------------------------------------------------------------------------------


def test_fires_at_the_first_logged_step_at_the_noise_variance():
    # A residual falling from 5 sigma^2 towards 0.8 sigma^2 (the fit reproducing the noise): it crosses sigma^2 once.
    steps = np.arange(0, 2000, 10)
    losses = SIGMA**2 * (0.8 + 4.2 * np.exp(-steps / 300))
    hook = AutoStop(Discrepancy(SIGMA), stop=True)
    state = _feed(hook, _curve(losses))
    first = int(steps[np.argmax(losses <= SIGMA**2)])
    assert hook.stop_step == first and state.stop and state.step == first
    summary = hook.summary(state.step)
    assert summary["fired"] and summary["rule"] == "discrepancy" and summary["stop_step"] == first
    assert summary["sigma_255"] == pytest.approx(25.5) and "<= 1 x sigma_hat^2" in summary["reason"]


def test_does_not_fire_above_the_noise_level_and_says_why():
    losses = SIGMA**2 * (1.2 + np.exp(-np.arange(100) / 20))  # under-fitted: never down to sigma^2
    hook = AutoStop(Discrepancy(SIGMA), stop=True)
    state = _feed(hook, _curve(losses))
    assert hook.stop_step is None and not state.stop and hook.output() is None
    summary = hook.summary(990)
    assert not summary["fired"] and "stayed above" in summary["reason"] and "step 990" in summary["reason"]
    # An unknown noise level (a masked image) never fires either.
    assert AutoStop(Discrepancy(float("nan"))).summary()["reason"].startswith("no noise estimate")
    assert not Discrepancy(float("nan")).update({"step": 0, "loss": 0.0})


def test_noisy_curve_fires_once_and_the_decision_is_final():
    # Per-step jitter of the loss (the input perturbation): the first logged value at or under the threshold decides;
    # later values (above or below) change nothing, as in a stopped fit.
    rng = np.random.default_rng(0)
    steps = np.arange(0, 3000, 10)
    losses = SIGMA**2 * (0.9 + 2 * np.exp(-steps / 400) + 0.03 * rng.standard_normal(steps.size))
    hook = AutoStop(Discrepancy(SIGMA), stop=False)
    state = _feed(hook, _curve(losses))
    first = int(steps[np.argmax(losses <= SIGMA**2)])
    assert hook.stop_step == first and not state.stop  # stop=False: recorded only
    # Rolled-back (diverged) records are not evidence.
    records = _curve([SIGMA**2 * 0.5, SIGMA**2 * 0.99])
    records[0]["backtracked"] = True
    hook = AutoStop(Discrepancy(SIGMA))
    _feed(hook, records)
    assert hook.stop_step == 10


def test_tau_the_observed_fraction_and_the_average_shape_the_threshold():
    assert Discrepancy(SIGMA, tau=1.1).update({"step": 0, "loss": 1.05 * SIGMA**2})
    assert not Discrepancy(SIGMA).update({"step": 0, "loss": 1.05 * SIGMA**2})
    # Inpainting's loss averages over every value, the residual is per observed one.
    assert not Discrepancy(SIGMA, observed_fraction=0.5).update({"step": 0, "loss": 0.6 * SIGMA**2})
    # With the fit's averaging (exp_weight 0.99) the rule follows the averaged residual: a sudden drop of the loss
    # to 0.9 sigma^2 after 2 sigma^2 is reached only after the average has caught up (ln(11)/0.01 ~ 240 steps).
    averaged = Discrepancy(SIGMA, average=0.99)
    records = _curve([2 * SIGMA**2] + [0.9 * SIGMA**2] * 60)
    fired = [r["step"] for r in records if averaged.update(r)]
    assert fired and 220 <= fired[0] <= 250
    assert Discrepancy(SIGMA).update(records[1])  # unaveraged: at once
    for bad in (dict(tau=0), dict(tau=float("inf")), dict(observed_fraction=0), dict(average=1.0)):
        with pytest.raises(DipInputError):
            Discrepancy(SIGMA, **bad)


def test_the_budget_rule_never_fires_and_rules_round_trip():
    assert not Budget().update({"step": 0, "loss": 0.0})
    assert set(RULES) == {"denoise", "jpeg", "sr", "inpaint", "flash"}
    rule = Discrepancy(0.05, tau=0.9, average=0.99)
    assert make_rule(rule.settings()) == rule and isinstance(make_rule({"rule": "budget"}), Budget)
    with pytest.raises(DipInputError, match="unknown auto-stop rule"):
        make_rule({"rule": "nope"})


def test_the_noise_estimate_finds_the_added_noise():
    clean = crop_photo("chelsea", 128, top=50, left=150)
    for sigma in (10, 25, 50):
        noisy = degrade.add_gaussian_noise(clean, sigma, seed=0, quantize=True)
        true = 255 * float(np.std(noisy - clean))
        assert 255 * estimate_noise_sigma(noisy) == pytest.approx(true, rel=0.06)
        assert 255 * estimate_noise_sigma(noisy, method="wavelet") == pytest.approx(true, rel=0.2)
    assert 255 * estimate_noise_sigma(clean) < 3
    assert math.isnan(estimate_noise_sigma(clean, mask=degrade.bernoulli_mask((128, 128), 0.5, 0)))
    assert isinstance(rule_for("sr", clean), Budget) and isinstance(rule_for("denoise", clean), Discrepancy)


def test_replay_on_a_curve_and_every():
    history = [{"step": s, "loss": SIGMA**2 * (1 + 1000 / (s + 100) - 1.5 * s / 1000), "psnr_gt": 20 + s / 100}
               for s in range(0, 1000, 10)]  # fmt: skip
    out = replay(history, Discrepancy(SIGMA))
    first = next(h["step"] for h in history if h["loss"] <= SIGMA**2)
    assert out["stop_step"] == first and out["psnr_stop"] == pytest.approx(20 + first / 100)
    assert out["psnr_best"] == history[-1]["psnr_gt"] and out["curve"] == "psnr_gt"
    coarse = replay(history, Discrepancy(SIGMA), every=50)
    assert coarse["stop_step"] == next(h["step"] for h in history if h["step"] % 50 == 0 and h["loss"] <= SIGMA**2)


# --- the hook in real (tiny) fits --------------------------------------------------------------------------------


def _config(**overrides):
    # Averaging with 0.95 (the presets: 0.99) and a faster learning rate: the averaged output peaks after ~100 steps.
    base = dict(iterations=160, log_every=10, exp_weight=0.95, lr=0.02)
    base.update(overrides)
    return tiny_fit_config(**base)


def test_end_to_end_the_auto_stop_ends_a_denoising_fit_near_its_best(noisy32_8bit, clean32):
    """A tiny, strongly noisy image: the fixed budget overfits, the auto stop ends the fit where the residual reaches
    the estimated noise, and the image it returns is that step's averaged output, better than the overfitted one."""
    stopped = restore("denoise", noisy32_8bit, config=_config(), ground_truth=clean32, auto_stop=True)
    auto = stopped.auto_stop
    assert auto["fired"] and stopped.stopped_early and auto["obeyed"]
    assert stopped.iterations_done == auto["stop_step"] + 1 == auto["returned_step"] + 1
    assert auto["sigma_255"] == pytest.approx(255 * np.std(noisy32_8bit - clean32), rel=0.1)
    assert auto["output_kind"] == "average" and auto["average"] == 0.95
    np.testing.assert_array_equal(stopped.output_auto, stopped.output)
    assert auto["psnr_stop"] == pytest.approx(metrics.psnr(clean32, stopped.output))

    full = restore("denoise", noisy32_8bit, config=_config(), ground_truth=clean32, auto_stop={"stop": False})
    assert full.iterations_done == 160 and not full.stopped_early and full.auto_stop["stop_step"] == auto["stop_step"]
    np.testing.assert_array_equal(full.output_auto, stopped.output)  # recorded = what the stopping fit returned
    assert full.auto_stop["returned_step"] == 159
    # Replaying the rule on the logged curve finds the same step (it decides on logged records only).
    assert replay(full.history, make_rule(auto))["stop_step"] == auto["stop_step"]
    assert auto["psnr_stop"] > metrics.psnr(clean32, full.output) + 0.5
    best = max(h["psnr_gt_avg"] for h in full.history)
    assert best - auto["psnr_stop"] < 0.5


def test_the_hook_adds_no_host_sync(noisy32_8bit, monkeypatch):
    """The rule reads the records the engine logs; it never reads a device tensor itself."""
    reads = []
    for name in ("item", "tolist", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            reads.append(1)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    fit(noisy32_8bit, physics.Identity(), _config(iterations=40), hooks=[])
    without, reads[:] = len(reads), []
    hook = AutoStop(Discrepancy(0.3), stop=False)
    fit(noisy32_8bit, physics.Identity(), _config(iterations=40), hooks=[hook])
    assert hook.stop_step is not None and len(reads) == without


def test_resume_from_a_checkpoint_is_bit_identical_with_the_hook(noisy32_8bit, tmp_path):
    config = _config(checkpoint_every=20)
    rule = lambda: Discrepancy(estimate_noise_sigma(noisy32_8bit), average=config.exp_weight)  # noqa: E731
    reference = AutoStop(rule(), stop=False)
    ref = fit(noisy32_8bit, physics.Identity(), config, hooks=[reference])
    assert reference.stop_step is not None
    ckpt = tmp_path / "fit.ckpt"
    # Killed once after the rule fired (its kept output must survive) ...
    crash_at = min(reference.stop_step + 25, 155)
    assert crash_at - reference.stop_step >= 20  # a checkpoint falls between the stop and the crash
    first = AutoStop(rule(), stop=False)
    with pytest.raises(KeyboardInterrupt):
        fit(noisy32_8bit, physics.Identity(), config, checkpoint_path=ckpt, hooks=[first, CrashAt(crash_at)])
    resumed_hook = AutoStop(rule(), stop=False)
    resumed = fit(noisy32_8bit, physics.Identity(), config, checkpoint_path=ckpt, hooks=[resumed_hook, BaseHook()])
    assert resumed.resumed_from > reference.stop_step
    assert resumed_hook.stop_step == reference.stop_step
    assert torch.equal(resumed_hook.output(), reference.output())
    np.testing.assert_array_equal(resumed.output, ref.output)
    # ... and a checkpoint of another rule is refused rather than mixed in.
    with pytest.raises(DipInputError, match="auto-stop rule"):
        AutoStop(Discrepancy(0.3)).load_state_dict(first.state_dict())


def test_packed_fits_record_each_fit_own_stop(noisy32_8bit, clean32):
    """restore_many: every fit gets its own noise estimate and stop step, recorded (a batch runs its budget); each
    equals replaying the rule on that fit's own logged curve."""
    other = degrade.add_gaussian_noise(clean32, 25, seed=1, quantize=True)
    results = restore_many("denoise", [noisy32_8bit, other], config=_config(), seeds=[0, 0],
                           ground_truths=[clean32, clean32], auto_stop=True)  # fmt: skip
    sigmas = [r.auto_stop["sigma_255"] for r in results]
    assert sigmas[0] == pytest.approx(255 * np.std(noisy32_8bit - clean32), rel=0.1)
    assert sigmas[1] == pytest.approx(255 * np.std(other - clean32), rel=0.1)
    for result in results:
        auto = result.auto_stop
        assert result.iterations_done == 160 and not auto["obeyed"]
        assert replay(result.history, make_rule(auto))["stop_step"] == auto["stop_step"]
        if auto["fired"]:
            assert result.output_auto.shape == clean32.shape
            assert auto["psnr_stop"] == pytest.approx(metrics.psnr(clean32, result.output_auto))
    # The strongly noisy fit reaches its noise level sooner than the mildly noisy one.
    assert results[0].auto_stop["fired"]
    lone = restore("denoise", noisy32_8bit, config=_config(), ground_truth=clean32, auto_stop={"stop": False})
    assert abs(lone.auto_stop["stop_step"] - results[0].auto_stop["stop_step"]) <= 10  # float rounding only


def test_the_record_holds_the_rule_and_auto_stop_of_reads_or_replays_it(noisy32_8bit, clean32, tmp_path):
    result = restore("denoise", noisy32_8bit, config=_config(), ground_truth=clean32, auto_stop={"stop": False})
    save_result(result, tmp_path / "out.png", extra={"task": "denoise"})
    record = json.loads((tmp_path / "out.json").read_text())
    auto = record["auto_stop"]
    for key in ("rule", "sigma", "sigma_255", "threshold", "stop_step", "fired", "reason", "obeyed"):
        assert key in auto
    assert auto_stop_of(tmp_path / "out.json") == auto
    assert auto_stop_of(result) == result.auto_stop
    # A record written without the auto stop (the workflow's fixed fits): the rule is replayed on its history.
    del record["auto_stop"]
    record["spec"] = {"task": "denoise", "level": 50}
    replayed = auto_stop_of(record)
    assert replayed["replayed"] and replayed["estimate_source"] == "the record's declared noise level"
    assert replayed["sigma_255"] == pytest.approx(50)
    again = auto_stop_of(record, sigma=auto["sigma"])
    assert again["stop_step"] == auto["stop_step"]
    del record["task"]
    assert auto_stop_of({**record, "spec": {"task": "sr", "level": 4}})["rule"] == "budget"
    with pytest.raises(DipInputError, match="auto-stop settings"):
        restore("denoise", noisy32_8bit, config=_config(), auto_stop={"stp": False})
