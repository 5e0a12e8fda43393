"""Several fits at once (dip.fit.stacked): each batched fit is the lone fit of its seed, up to float rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dip import physics
from dip.data import degrade
from dip.errors import DipInputError
from dip.eval import metrics
from dip.fit import fit
from dip.fit.stacked import StackedAdam, fit_many
from dip.restore import restore, restore_many
from tests.helpers import crop_photo, tiny_fit_config


@pytest.fixture(scope="module")
def pair():
    a = crop_photo("astronaut", 64, top=60, left=180)
    b = crop_photo("coffee", 64, top=100, left=200)
    return (a, degrade.add_gaussian_noise(a, 25, seed=0)), (b, degrade.add_gaussian_noise(b, 25, seed=1))


def test_stacked_adam_is_torch_adam_per_slice():
    gen = torch.Generator().manual_seed(0)
    shapes = [(3, 4, 5), (3, 7)]
    stacked = [torch.randn(s, generator=gen).requires_grad_(True) for s in shapes]
    lone = [[p[k].detach().clone().requires_grad_(True) for p in stacked] for k in range(3)]
    opt = StackedAdam(stacked, 3, lr=0.01)
    lone_opts = [torch.optim.Adam(ps, lr=0.01) for ps in lone]
    for _ in range(5):
        grads = [torch.randn(s, generator=gen) for s in shapes]
        for p, g in zip(stacked, grads):
            p.grad = g.clone()
        opt.step()
        for k in range(3):
            for p, g in zip(lone[k], grads):
                p.grad = g[k].clone()
            lone_opts[k].step()
    for k in range(3):
        for p, q in zip(stacked, lone[k]):
            np.testing.assert_allclose(p[k].detach().numpy(), q.detach().numpy(), rtol=0, atol=1e-7)


# How far a packed fit and its lone fit drift apart through float rounding alone (grouped vs single convolutions sum
# in another order, and oneDNN picks other kernels on other CPUs: AVX2, AVX-512, AMX). Measured on an AMD Zen 4 with
# ONEDNN_MAX_CPU_ISA = SSE41, AVX2, AVX512_CORE and the default, on 1 and 2 threads; each bound is the largest gap
# seen, times 2 to 3. Before the first update (the first logged step) the two are the same up to rounding.
# Adam's first update is lr * sign(gradient): gradients that are rounding noise (a convolution bias before batch
# normalisation, some weights) come out as +-lr depending on the kernel, so one step already differs by up to 0.015
# per pixel with AVX2 kernels (3e-5 with AVX-512 ones).
FIRST_UPDATE_GAP = 0.05  # max |output_raw| difference after one step; measured 0.0149
RESTORE_15_STEPS_GAP_DB = 0.5  # |PSNR| difference after 15 inpainting steps; measured 0.25 (0.035 on AVX-512)


def test_first_step_is_the_lone_fit_of_each_seed(pair):
    # Same initial weights, input and input noise per seed: the first output (what the EMA starts from) and loss are
    # the lone fit's up to rounding; after the one update, up to FIRST_UPDATE_GAP.
    (a, na), (b, nb) = pair
    config = tiny_fit_config(iterations=1, channels_last=False)
    batch = fit_many([na, nb, na], physics.Identity(), config, seeds=[0, 0, 3])
    lone = [fit(na, physics.Identity(), config), fit(nb, physics.Identity(), config),
            fit(na, physics.Identity(), config.replace(seed=3))]  # fmt: skip
    for got, want in zip(batch, lone):
        assert np.abs(got.output - want.output).max() < 1e-5  # measured 1.8e-6
        assert got.history[0]["loss"] == pytest.approx(want.history[0]["loss"], rel=1e-5)
        assert np.abs(got.output_raw - want.output_raw).max() < FIRST_UPDATE_GAP
    assert np.abs(batch[0].output - batch[2].output).max() > 1e-2  # the seed matters
    assert np.abs(batch[0].output_raw - batch[2].output_raw).max() > 10 * FIRST_UPDATE_GAP
    assert batch[2].config.seed == 3


def test_batched_fits_reach_the_lone_fits_psnr(pair):
    (a, na), (b, nb) = pair
    config = tiny_fit_config(iterations=30, log_every=10, exp_weight=0.99)
    batch = fit_many([na, nb], [physics.Identity(), physics.Identity()], config, ground_truths=[a, b])
    for (gt, noisy), got in zip(pair, batch):
        want = fit(noisy, physics.Identity(), config, ground_truth=gt)
        diff = abs(metrics.psnr(gt, got.output) - metrics.psnr(gt, want.output))
        assert diff < 0.1, diff
        assert [r["step"] for r in got.history] == [r["step"] for r in want.history]
        assert got.history[-1]["psnr_gt_avg"] == pytest.approx(metrics.psnr(gt, got.output), abs=0.05)
        assert got.output.shape == gt.shape


def test_a_diverging_fit_is_rolled_back_alone(pair):
    (a, na), _ = pair
    config = tiny_fit_config(iterations=12, log_every=5)
    clean = fit_many([na], physics.Identity(), config, seeds=[0, 1])

    def poison(step, params):
        if step == 7:
            with torch.no_grad():
                for p in params.values():
                    p[1].fill_(float("nan"))

    hit = fit_many([na], physics.Identity(), config, seeds=[0, 1], on_step=poison)
    assert hit[1].backtracks == 1 and hit[0].backtracks == 0
    assert any(r.get("backtracked") for r in hit[1].history)
    assert np.isfinite(hit[1].output).all()
    # The other fit of the batch carried on as if nothing happened (up to the kernels' float rounding).
    np.testing.assert_allclose(hit[0].output, clean[0].output, rtol=0, atol=1e-3)


def test_inputs_of_other_shapes_are_refused(pair):
    (a, na), _ = pair
    with pytest.raises(DipInputError, match="one shape"):
        fit_many([na, na[:32, :32]], physics.Identity(), tiny_fit_config(iterations=1))
    with pytest.raises(DipInputError, match="1 or 3"):
        fit_many([na, na, na], physics.Identity(), tiny_fit_config(iterations=1), seeds=[0, 1])


def test_restore_many_is_restore_per_fit():
    # Inpainting, one mask per image, images that need cropping (70 px -> 64): each batched fit gets the same crop,
    # masked observation and operator as its lone restore(), and the same result up to float rounding.
    imgs = [crop_photo("astronaut", 70, top=60, left=180), crop_photo("coffee", 70, top=100, left=200)]
    masks = [degrade.bernoulli_mask(img.shape[:2], 0.5, seed=k) for k, img in enumerate(imgs)]
    config = tiny_fit_config(iterations=15, log_every=5, channels_last=False)
    batch = restore_many("inpaint", imgs, config=config, seeds=[0, 4], masks=masks, ground_truths=imgs)
    for k, got in enumerate(batch):
        want = restore("inpaint", imgs[k], config=config.replace(seed=[0, 4][k]), mask=masks[k], ground_truth=imgs[k])
        assert got.crop_box == want.crop_box == (3, 3, 64, 64)
        assert got.output.shape == want.output.shape == (64, 64, 3)
        assert got.config.seed == [0, 4][k]
        # Before the first update: the same crop, mask, observation and operator give the same loss and PSNR.
        first, lone_first = got.history[0], want.history[0]
        assert first["step"] == lone_first["step"] == 0
        assert first["loss"] == pytest.approx(lone_first["loss"], rel=1e-5)  # measured 1.2e-7
        assert first["psnr_gt"] == pytest.approx(lone_first["psnr_gt"], abs=1e-4)
        # After 15 steps: apart by float rounding only, which DIP's optimisation amplifies (see the bound's comment).
        assert abs(got.history[-1]["psnr_gt"] - want.history[-1]["psnr_gt"]) < RESTORE_15_STEPS_GAP_DB
        assert any("cropped" in n for n in got.notes) and any("batch of 2" in n for n in got.notes)
    with pytest.raises(DipInputError, match="one size"):
        restore_many("denoise", [imgs[0], imgs[0][:40, :40]], config=config, seeds=[0, 1])
    with pytest.raises(DipInputError, match="one of each per fit"):
        restore_many("denoise", imgs, config=config, seeds=[0])


class _Recorder:
    """A hook that keeps what it is shown: steps, logged records, and the averaged output at the last step."""

    def __init__(self):
        self.steps, self.logged, self.ended, self.last_avg = [], [], 0, None

    def on_start(self, state):
        pass

    def on_step(self, state):
        self.steps.append(state.step)
        self.last_avg = state.output_avg.detach().clone()

    def on_log(self, state, record):
        self.logged.append(record)

    def on_end(self, state):
        self.ended += 1


def test_hooks_see_each_fit_of_a_batch_as_a_lone_fit_sees_it(pair):
    (a, na), (b, nb) = pair
    config = tiny_fit_config(iterations=12, log_every=5, channels_last=False)
    hooks = [_Recorder(), _Recorder()]
    results = fit_many([na, nb], physics.Identity(), config, seeds=[0, 1], hooks=[[hooks[0]], [hooks[1]]])
    for hook, result in zip(hooks, results):
        assert hook.steps == list(range(12)) and hook.ended == 1
        assert hook.logged == result.history  # the same records, fit by fit
        np.testing.assert_array_equal(hook.last_avg[0].permute(1, 2, 0).numpy(), result.output_avg)
    assert not np.array_equal(results[0].output_avg, results[1].output_avg)
    with pytest.raises(DipInputError, match="hook lists"):
        fit_many([na, nb], physics.Identity(), config, seeds=[0, 1], hooks=[[]])


def test_restore_many_records_early_stopping_per_fit(pair):
    # ES-WMV recorded (not stopping) in every fit of a pack, as restore() records it in a lone fit.
    (a, na), (b, nb) = pair
    config = tiny_fit_config(iterations=60, log_every=10, channels_last=False)
    es = {"window": 8, "patience": 20, "check_every": 5, "stop": False}
    batch = restore_many("denoise", [na, nb], config=config, seeds=[0, 0], ground_truths=[a, b], early_stopping=es)
    lone = restore("denoise", na, config=config, ground_truth=a, early_stopping=es)
    for got in batch:
        rec = got.early_stopping
        assert rec["iterations_done"] == 60 and not rec["stopped_early"]
        assert 7 <= rec["detected_step"] < 60
        assert got.output_early.shape == got.output.shape == (64, 64, 3)
        assert rec["psnr_detected"] == pytest.approx(metrics.psnr(a if got is batch[0] else b, got.output_early))
    # the first fit of the pack is the lone fit (same image and seed): the same detected step, up to rounding noise
    assert abs(batch[0].early_stopping["detected_step"] - lone.early_stopping["detected_step"]) <= 3
    with pytest.raises(DipInputError, match="stop=False"):
        restore_many("denoise", [na, nb], config=config, seeds=[0, 1], early_stopping={**es, "stop": True})
