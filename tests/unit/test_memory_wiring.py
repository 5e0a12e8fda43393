"""``--memory-saving`` wired into the fits, the CLI and the checkpoints (dip.fit.lone / stacked, dip.cli).

The networks' checkpointing and the estimates themselves are tested in test_memory_saving.py; here: which mode a fit
chooses, that it says so, that it changes no number, and the refusals.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dip import physics
from dip.cli import main
from dip.errors import DipInputError
from dip.fit import FitConfig, FitInterrupted, fit
from dip.fit.config import plain_memory_bound
from dip.fit.stacked import fit_many
from dip.nets import memory
from tests.helpers import SigtermAt, save_png, tiny_fit_config

QUICK = ["--iters", "2", "--width", "8", "--device", "cpu", "--quiet", "--log-every", "1"]


def _no_dry_run(*args, **kwargs):
    raise AssertionError("the dry-run estimate ran")


def test_on_gives_the_same_fit_as_off_bit_for_bit(photo64):
    config = tiny_fit_config(iterations=4, log_every=2)
    off = fit(photo64, physics.Identity(), config.replace(memory_saving="off"), ground_truth=photo64)
    on = fit(photo64, physics.Identity(), config.replace(memory_saving="on"), ground_truth=photo64)
    np.testing.assert_array_equal(on.output, off.output)
    np.testing.assert_array_equal(on.output_raw, off.output_raw)
    assert [r["loss"] for r in on.history] == [r["loss"] for r in off.history]
    assert any(n.startswith("memory: checkpointing (asked for") for n in on.notes)
    assert not any(n.startswith("memory:") for n in off.notes)


def test_auto_on_a_small_image_chooses_plain_without_a_dry_run(photo64, monkeypatch):
    monkeypatch.setattr(memory, "fit_memory", _no_dry_run)
    config = tiny_fit_config(iterations=2)
    assert plain_memory_bound(config, 64, 64) is not None
    auto = fit(photo64, physics.Identity(), config)  # memory_saving="auto" is the default
    off = fit(photo64, physics.Identity(), config.replace(memory_saving="off"))
    np.testing.assert_array_equal(auto.output, off.output)
    assert not any(n.startswith("memory:") for n in auto.notes)


def _budget_between(config: FitConfig, size: int) -> tuple[int, memory.FitMemory]:
    estimate = memory.fit_memory(config, size, size, channels=3, precision="fp32", channels_last=True)
    assert estimate.checkpoint < estimate.plain
    return (estimate.checkpoint + estimate.plain) // 2 // 2**20, estimate


def test_a_small_budget_makes_auto_checkpoint_and_say_so(capsys):
    # Wide enough at 128 px that checkpointing saves more than its allowance costs.
    config = FitConfig(net_kwargs=dict(channels_down=[64] * 3, channels_up=[64] * 3, channels_skip=[4] * 3),
                       input_depth=8, iterations=1, log_every=1, device="cpu")  # fmt: skip
    budget_mb, estimate = _budget_between(config, 128)
    image = np.random.default_rng(0).random((128, 128, 3)).astype(np.float32)
    result = fit(image, physics.Identity(), config.replace(memory_budget_mb=budget_mb))
    notes = [n for n in result.notes if n.startswith("memory: checkpointing (estimate plain")]
    assert len(notes) == 1 and "> budget" in notes[0]
    assert "activation checkpointing on" in capsys.readouterr().err
    with pytest.raises(DipInputError, match="--memory-saving"):
        fit(image, physics.Identity(), config.replace(memory_budget_mb=max(1, estimate.checkpoint // 2**20 // 2)))
    # "off" neither estimates nor refuses: the fit runs plainly whatever the budget.
    plain = fit(image, physics.Identity(), config.replace(memory_budget_mb=budget_mb, memory_saving="off"))
    np.testing.assert_array_equal(plain.output, result.output)


def test_settings_are_validated():
    with pytest.raises(DipInputError, match="memory_saving"):
        tiny_fit_config(memory_saving="yes").validate()
    with pytest.raises(DipInputError, match="memory_budget_mb"):
        tiny_fit_config(memory_budget_mb=0).validate()


def test_stacked_fits_refuse_on_and_a_budget_they_cannot_meet(photo64):
    config = tiny_fit_config(iterations=1)
    with pytest.raises(DipInputError, match="vmap"):
        fit_many([photo64, photo64], physics.Identity(), config.replace(memory_saving="on"))
    with pytest.raises(DipInputError, match="batch of 2"):
        fit_many([photo64, photo64], physics.Identity(), config.replace(memory_budget_mb=1))
    assert len(fit_many([photo64, photo64], physics.Identity(), config)) == 2


def test_a_checkpoint_resumes_under_another_memory_setting(photo64, tmp_path):
    config = tiny_fit_config(iterations=8, memory_saving="off")
    ckpt = tmp_path / "fit.ckpt"
    uninterrupted = fit(photo64, physics.Identity(), config)
    with pytest.raises(FitInterrupted):
        fit(photo64, physics.Identity(), config, checkpoint_path=ckpt, hooks=[SigtermAt(3)])
    resumed = fit(photo64, physics.Identity(), config.replace(memory_saving="on", memory_budget_mb=100_000),
                  checkpoint_path=ckpt)  # fmt: skip
    assert resumed.resumed_from == 4
    np.testing.assert_array_equal(resumed.output, uninterrupted.output)


def test_the_cli_flags_reach_the_record(tmp_path, photo64):
    src = save_png(tmp_path / "noisy.png", photo64)
    out = tmp_path / "out.png"
    assert main(["denoise", str(src), "-o", str(out), "--memory-saving", "on", "--memory-budget", "64", *QUICK]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["memory_saving"] == "on" and record["config"]["memory_budget_mb"] == 64 * 1024
    assert any(n.startswith("memory: checkpointing") for n in record["notes"])


@pytest.mark.parametrize("args", [["--memory-saving", "maybe"], ["--memory-budget", "0"],
                                  ["--memory-budget", "nan"], ["--memory-budget", "lots"]])  # fmt: skip
def test_bad_cli_values_exit_2_with_one_line(tmp_path, photo64, capsys, caplog, args):
    src = save_png(tmp_path / "noisy.png", photo64)
    out = tmp_path / "out.png"
    try:
        code = main(["denoise", str(src), "-o", str(out), *args, *QUICK])
    except SystemExit as stop:  # argparse's own checks (choices, types)
        code = stop.code
    assert code == 2 and not out.exists()
    # argparse writes its line to stderr; dip's own checks log theirs (dip.cli's handler)
    lines = capsys.readouterr().err.strip().splitlines() + [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "--memory" in lines[0]
