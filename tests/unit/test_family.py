"""The DIP family's parts of the engine (dip.fit.family): what defines each method, on tiny fits.

DIP-TV with weight 0 is DIP exactly; the Deep Random Projector never changes its convolutions; SGLD's injected noise
has the authors' variance; SURE's divergence estimate of a linear denoiser is its trace; a resumed fit of each stepper
ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dip.errors import DipInputError
from dip.fit import FitConfig, fit
from dip.fit.family import LangevinStepper, TVTerm, mc_divergence, stepper_for, term_for, total_variation
from dip.fit.objectives import ObservationTerm
from dip.physics import build_operator
from dip.presets import get_preset
from dip.restore import restore, restore_many
from tests.helpers import CrashAt

TINY = dict(width=8, iterations=12, log_every=4, device="cpu")


def _tiny(preset: str, **overrides) -> FitConfig:
    return get_preset(preset, **{**TINY, **overrides})


@pytest.mark.slow(seconds=8)
def test_tv_with_weight_zero_is_dips_loss_exactly(noisy64, photo64):
    term = ObservationTerm(build_operator("denoise", channels=3), noisy64, torch.device("cpu"))
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    assert torch.equal(TVTerm(term, 0.0).loss(x), term.loss(x))
    assert TVTerm(term, 0.5).loss(x) > term.loss(x)
    dip = _tiny("denoise")
    tv0 = dip.replace(method="dip-tv", method_settings={"tv_weight": 0.0})
    a = restore("denoise", noisy64, config=dip, ground_truth=photo64)
    b = restore("denoise", noisy64, config=tv0, ground_truth=photo64)
    np.testing.assert_array_equal(a.output, b.output)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert [h["objective"] for h in b.history] == [h["loss"] for h in b.history]  # the TV adds nothing


def test_total_variation_of_a_step_and_of_a_flat_image():
    flat = torch.full((1, 3, 8, 8), 0.5)
    assert total_variation(flat, "anisotropic") == 0 and total_variation(flat) < 1e-3
    step = flat.clone()
    step[..., 4:] = 1.0  # one vertical edge of height 0.5 across 8 rows, 3 channels
    assert total_variation(step, "anisotropic").item() == pytest.approx(0.5 * 8 * 3 / step.numel())


def test_the_random_projectors_convolutions_never_change(noisy64):
    class Watch:
        def on_start(self, state):
            self.net = state.net
            self.before = {k: v.clone() for k, v in state.net.state_dict().items()}
            self.z = state.output.clone()

        def on_step(self, state):
            pass

        def on_log(self, state, record):
            pass

        def on_end(self, state):
            pass

    watch = Watch()
    config = _tiny("drp-denoise")
    fit(noisy64, build_operator("denoise", channels=3), config, hooks=[watch])
    after = watch.net.state_dict()
    convs = [name for name, m in watch.net.named_modules() if isinstance(m, nn.Conv2d)]
    assert convs
    for name in convs:
        for kind in ("weight", "bias"):
            assert torch.equal(after[f"{name}.{kind}"], watch.before[f"{name}.{kind}"]), name  # bit-identical
    norms = [k for k in after if k.endswith(".weight") and after[k].dim() == 1]
    assert any(not torch.equal(after[k], watch.before[k]) for k in norms)  # the batch norms are fitted


def test_sglds_injected_noise_has_the_authors_variance(noisy64):
    config = get_preset("sgld-denoise", device="cpu", width=64)
    term = term_for(config, ObservationTerm(build_operator("denoise", channels=3), noisy64, torch.device("cpu")))
    stepper = stepper_for(config, torch.device("cpu"), term)
    assert isinstance(stepper, LangevinStepper)
    before = [p.detach().clone() for p in stepper.weights]
    stepper.inject_noise()
    noise = torch.cat([(p.detach() - b).flatten() for p, b in zip(stepper.weights, before)])
    expected = (2.0 * config.lr) ** 2  # GP-DIP: param_noise_sigma = 2, times the learning rate, as a std
    n = noise.numel()
    assert n > 100_000
    assert noise.var().item() == pytest.approx(expected, rel=5 * math.sqrt(2 / n))
    assert abs(noise.mean().item()) < 5 * math.sqrt(expected / n)
    biases = [p for p in stepper.net.parameters() if p.dim() != 4]
    assert biases and all(p.dim() != 4 for p in biases)  # only the convolutions' weights are perturbed


@pytest.mark.parametrize("a", [0.3, 1.7])
def test_sures_divergence_of_a_linear_denoiser_is_a_times_n(a):
    x = torch.rand(1, 3, 64, 64)
    gen = torch.Generator().manual_seed(0)
    n = x.numel()
    estimates = [mc_divergence(lambda y: a * y, x, a * x, 0.05, gen).item() for _ in range(4)]
    # b . (a b eps) / eps = a |b|^2: mean a N, standard deviation a sqrt(2 N) for one probe
    for estimate in estimates:
        assert abs(estimate - a * n) < 4 * a * math.sqrt(2 * n)
    assert len(set(estimates)) == 4  # a fresh probe each time


@pytest.mark.slow(seconds=5)
@pytest.mark.parametrize("preset, settings", [
    ("dd-denoise", {}), ("dip-tv-denoise", {}), ("drp-denoise", {}), ("sure-denoise", {"sigma": 25}),
    ("sgld-denoise", {"burn_in": 3, "sample_every": 2}),
])  # fmt: skip
def test_a_resumed_fit_of_each_method_is_bit_identical(preset, settings, noisy64, tmp_path):
    config = _tiny(preset, checkpoint_every=5)
    config = config.replace(method_settings={**config.method_settings, **settings})
    op = build_operator("denoise", channels=3)
    whole = fit(noisy64, op, config)
    ckpt = tmp_path / "fit.ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit(noisy64, op, config, checkpoint_path=ckpt, hooks=[CrashAt(7)])
    resumed = fit(noisy64, op, config, checkpoint_path=ckpt)
    assert resumed.resumed_from == 5
    np.testing.assert_array_equal(resumed.output, whole.output)
    assert resumed.history[-1] == {**whole.history[-1], "seconds": resumed.history[-1]["seconds"]}


def test_sgld_returns_the_mean_of_its_samples(noisy64):
    config = _tiny("sgld-denoise")
    config = config.replace(method_settings={**config.method_settings, "burn_in": 3, "sample_every": 2})
    result = restore("denoise", noisy64, config=config, auto_stop=True)
    assert "the mean of 4 samples (every 2 steps after step 3)" in " ".join(result.notes)
    assert result.auto_stop["rule"] == "budget" and result.iterations_done == 12


def test_packing_runs_where_the_method_allows_it(noisy64):
    config = _tiny("dd-denoise", iterations=4)
    # 4 layers: a 64 px output from an 8 px input (6 layers would normalise over 2 x 2 pixels, where the batch norm
    # amplifies the grouped convolutions' float rounding to ~3e-3 within 4 steps)
    config = config.replace(net_kwargs={**config.net_kwargs, "layers": 4})
    results = restore_many("denoise", [noisy64, noisy64], config=config, seeds=[0, 1])
    assert len(results) == 2 and not np.array_equal(results[0].output, results[1].output)
    lone = restore("denoise", noisy64, config=config.replace(seed=1))
    np.testing.assert_allclose(results[1].output, lone.output, atol=1e-3)  # the lone fit of seed k (~3e-4 rounding on AMX)
    with pytest.raises(DipInputError, match="SGLD .*fits are not packed"):
        restore_many("denoise", [noisy64, noisy64], config=_tiny("sgld-denoise"), seeds=[0, 1])


def test_restore_picks_the_methods_preset_and_refuses_other_tasks(noisy64, photo64):
    with pytest.raises(DipInputError, match="--method sure .* does not do 'sr'"):
        restore("sr", noisy64[:32, :32], factor=2, method="sure")
    with pytest.raises(DipInputError, match="method 'dd' but the config is a 'dip' fit"):
        restore("denoise", noisy64, config=_tiny("denoise"), method="dd")


def test_memory_saving_is_bit_identical_and_sure_takes_a_grey_image(noisy64, grey64):
    op = build_operator("denoise", channels=3)
    plain = fit(noisy64, op, _tiny("dip-tv-denoise", iterations=4, memory_saving="off"))
    saving = fit(noisy64, op, _tiny("dip-tv-denoise", iterations=4, memory_saving="on"))
    assert any("checkpointing" in note for note in saving.notes)
    np.testing.assert_array_equal(plain.output, saving.output)
    grey = restore("denoise", grey64, config=_tiny("sure-denoise", iterations=2))
    assert grey.output.shape == (64, 64, 1) and grey.config.input_depth == 1
