"""The torch-free memory model of a fit (dip.fit.memory_model) against the library's dry-run estimate
(dip.fit.memory.fit_memory): the planner's mem_mb (fit_resources mem_mb "auto") and the bound that lets a small fit
skip the dry run."""

from __future__ import annotations

import pytest

from dip.fit.memory_model import CHEAP_BOUND_PIXELS, fit_mem_mb, plain_memory_bound
from dip.presets import preset_net

# The paper's presets share one network (the dry runs are cached per network and size: three dry runs in all).
CASES = [(p, None, s) for p in ("denoise", "sr4", "sr8", "inpaint-pixels") for s in (256, 512)]
CASES.append((None, 32, 128))  # the default config: FitConfig's defaults with its 32-channel width


@pytest.mark.parametrize("preset, width, size", CASES)
def test_model_asks_for_at_least_the_dry_run_estimate_and_at_most_60_percent_more(preset, width, size):
    pytest.importorskip("torch")
    from dip.fit import FitConfig
    from dip.fit.memory import fit_memory
    from dip.presets import _DEFAULT_SKIP, get_preset, with_width

    if preset is None:
        config = with_width(FitConfig(net_kwargs=dict(_DEFAULT_SKIP)), width)
        model = fit_mem_mb(config.to_dict(), None, size, size, 3, "fp32")
    else:
        config = get_preset(preset)
        model = fit_mem_mb(preset_net(preset), width, size, size, 3, "fp32")
    estimate = fit_memory(config, size, size, channels=3, precision="fp32").plain / 2**20
    assert estimate <= model <= 1.6 * estimate, (preset, width, size, model, estimate, model / estimate)


DENOISE = preset_net("denoise")  # what the planner passes for a fit of the denoise preset


def test_model_grows_with_pixels_width_and_precision():
    assert fit_mem_mb(DENOISE, None, 512, 512) > fit_mem_mb(DENOISE, None, 256, 256)
    assert fit_mem_mb(DENOISE, 32, 256, 256) < fit_mem_mb(DENOISE, None, 256, 256)
    assert fit_mem_mb(DENOISE, None, 256, 256, 3, "bf16") < fit_mem_mb(DENOISE, None, 256, 256, 3, "fp32")
    # "auto" precision counts as fp32, settings override the preset's
    fp32 = fit_mem_mb(DENOISE, None, 256, 256)
    assert fit_mem_mb(DENOISE, None, 256, 256, settings={"precision": "auto"}) == fp32
    assert fit_mem_mb(DENOISE, None, 256, 256, settings={"precision": "bf16"}) < fp32


# (network, settings, input depth, size): the paper's default net, the library nets of Fig. 8, a narrow skip net
BOUND_CASES = {
    "default skip": ("skip", {}, 32, 512),
    "skip_depth6": ("skip_depth6", {}, 1, 192),
    "unet fig8": ("unet", dict(feature_scale=8, more_layers=1), 1, 256),
    "resnet fig8": ("resnet", {}, 1, 256),
    "narrow skip": ("skip", dict(channels_down=[16] * 3, channels_up=[16] * 3, channels_skip=[4] * 3), 8, 64),
}


@pytest.mark.parametrize("case", list(BOUND_CASES))
def test_the_bound_is_above_the_dry_run_estimate(case):
    # What makes skipping the dry run safe: where the bound fits the budget, so does the plain fit.
    pytest.importorskip("torch")
    from dip.fit import FitConfig
    from dip.fit.memory import fit_memory

    net, kwargs, depth, size = BOUND_CASES[case]
    config = FitConfig(net=net, net_kwargs=kwargs, input_depth=depth)
    for precision in ("fp32", "bf16"):
        estimate = fit_memory(config.replace(precision=precision), size, size, precision=precision).plain
        assert estimate < plain_memory_bound(config.replace(precision=precision), size, size), (case, precision)


def test_the_bound_is_for_small_images_only():
    from dip.fit import FitConfig

    side = int(CHEAP_BOUND_PIXELS**0.5)
    assert plain_memory_bound(FitConfig(), side, side) is not None
    assert plain_memory_bound(FitConfig(), side, side + 1) is None
    assert plain_memory_bound(FitConfig(), 256, 256, channels=1) < plain_memory_bound(FitConfig(), 256, 256)


