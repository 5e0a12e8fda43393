"""The table of the DIP family (dip.methods): torch-free, every method denoises with a preset of its own, settings and
tasks checked in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dip.errors import DipInputError
from dip.fit.config import FitConfig
from dip.methods import METHODS, check_task, describe, get_method, preset_for, settings_of
from dip.presets import PRESETS, get_preset


def test_the_table_imports_without_torch():
    code = "import sys, dip.methods, dip.presets; assert 'torch' not in sys.modules, 'torch loaded'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", [m for m in METHODS if m != "dip"])
def test_every_method_denoises_with_a_preset_of_its_own(name):
    method = get_method(name)
    assert "denoise" in method.tasks
    for task, preset in method.presets.items():
        config = PRESETS[preset][1]
        assert config.method == name, preset
        get_preset(preset).validate()
        assert set(config.method_settings) == set(method.settings)  # the preset says every setting it runs
    assert name in dict(describe())


def test_a_task_the_paper_does_not_do_is_refused_in_one_line():
    with pytest.raises(DipInputError) as err:
        check_task("dd", "sr")
    assert str(err.value) == "--method dd (Deep Decoder) does not do 'sr'; it does denoise (use --method dip for sr)"
    assert preset_for("dip", "sr") is None and preset_for("sure", "denoise") == "sure-denoise"
    with pytest.raises(DipInputError, match="unknown method 'bm3d'; choose one of: dip, dd"):
        get_method("bm3d")


@pytest.mark.parametrize("settings, message", [
    (dict(method="dip-tv", method_settings={"tv": 1}), "method dip-tv has no setting tv; its settings: tv_weight"),
    (dict(method="dip-tv", method_settings={"tv_weight": -1}), "tv_weight must be a finite number >= 0, got -1"),
    (dict(method="sgld", method_settings={"sample_every": 0}), "sample_every must be an integer >= 1, got 0"),
    (dict(method="sure", method_settings={"epsilon": 0}), "epsilon must be > 0"),
    (dict(method="dd", memory_saving="on"), "--memory-saving on: the Deep Decoder's network has no activation"),
    (dict(method="drp", memory_saving="on"), "the Deep Random Projector's network has no activation checkpointing"),
    (dict(method="nope"), "unknown method 'nope'"),
])  # fmt: skip
def test_bad_method_settings_are_one_line(settings, message):
    with pytest.raises(DipInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FitConfig(**settings).validate()


def test_settings_fill_in_the_defaults():
    assert settings_of(FitConfig(method="sgld", method_settings={"burn_in": 10}))["sample_every"] == 50
    assert settings_of(FitConfig()) == {}
