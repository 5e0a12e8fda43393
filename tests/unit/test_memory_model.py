"""The torch-free memory model of a fit (dip.fit.memory_model) against the library's dry-run estimate
(dip.fit.memory.fit_memory): the planner's mem_mb (fit_resources mem_mb "auto") and the bound that lets a small fit
skip the dry run."""

from __future__ import annotations

import pytest

from dip.fit.memory_model import CHEAP_BOUND_PIXELS, plain_memory_bound
from dip.pipeline.memory_model import fit_mem_mb  # the planner's import path
from dip.pipeline.plan import AUTO_MEM_MB_DEFAULT, build_plan
from tests.helpers import REPO, workflow_config

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
        model = fit_mem_mb(preset, width, size, size, 3, "fp32")
    estimate = fit_memory(config, size, size, channels=3, precision="fp32").plain / 2**20
    assert estimate <= model <= 1.6 * estimate, (preset, width, size, model, estimate, model / estimate)


def test_model_grows_with_pixels_width_and_precision():
    assert fit_mem_mb("denoise", None, 512, 512) > fit_mem_mb("denoise", None, 256, 256)
    assert fit_mem_mb("denoise", 32, 256, 256) < fit_mem_mb("denoise", None, 256, 256)
    assert fit_mem_mb("denoise", None, 256, 256, 3, "bf16") < fit_mem_mb("denoise", None, 256, 256, 3, "fp32")
    # "auto" precision counts as fp32, settings override the preset's
    fp32 = fit_mem_mb("denoise", None, 256, 256)
    assert fit_mem_mb("denoise", None, 256, 256, settings={"precision": "auto"}) == fp32
    assert fit_mem_mb("denoise", None, 256, 256, settings={"precision": "bf16"}) < fp32


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


def test_auto_mem_mb_per_fit_and_summed_for_a_pack(monkeypatch):
    monkeypatch.chdir(REPO)
    plan = build_plan(workflow_config("config/paper.yaml", pack_fits=4, fit_resources={"mem_mb": "auto"}))
    # colour sigma 25: 512x512 and 768x512 images; the bigger image asks for more
    fits = [j for j in plan.by_rule("fit_dip") if j.wildcards["level"] == "sigma25"]
    packs = [j for j in plan.by_rule("fit_dip_pack") if j.wildcards["level"] == "sigma25"]
    assert packs
    per_size = {}
    for pack in packs:
        members = pack.params["spec"]["members"]
        fit_of = {k: v for k, v in pack.wildcards.items() if k != "pack"}
        mems = [plan.get("fit_dip", fit_of | {"image": m["image"], "seed": str(m["seed"])}).resources["mem_mb"]
                for m in members]  # fmt: skip
        assert pack.resources["mem_mb"] == sum(mems) and len(set(mems)) == 1
        size = plan.source_size(pack.wildcards["dataset"], "denoise", "sigma25", members[0]["image"])
        per_size[size[0] * size[1]] = mems[0]
    assert len(per_size) == 2 and per_size[768 * 512] > per_size[512 * 512]
    assert all(j.resources["mem_mb"] != AUTO_MEM_MB_DEFAULT for j in fits)
    # jobs without an image (the paper's other experiments) ask for the stated default, as FIT_RES does
    assert plan.fit_resources["mem_mb"] == AUTO_MEM_MB_DEFAULT


def test_auto_mem_mb_for_embedded_photos_and_learning_curves(monkeypatch):
    monkeypatch.chdir(REPO)
    small = build_plan(workflow_config(fit_resources={"mem_mb": "auto"}))
    big = build_plan(workflow_config(fit_resources={"mem_mb": "auto"}, datasets={"photos": {"size": 256}}))
    for rule in ("fit_dip", "learning_curve"):
        a, b = small.by_rule(rule)[0], big.by_rule(rule)[0]
        assert a.resources["mem_mb"] < b.resources["mem_mb"], rule
    # an integer mem_mb stays what every fit job asks for
    plan = build_plan(workflow_config())
    assert {j.resources["mem_mb"] for j in plan.by_rule("fit_dip")} == {plan.fit_resources["mem_mb"]}
