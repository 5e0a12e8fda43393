"""The fit engine's parts: one driver bookkeeps every fit of a run as it bookkeeps a lone fit; checkpoints are
written atomically in the layout a resume reads; results declare every field their readers use."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch

from dip import physics
from dip.errors import DipInputError
from dip.fit import FitInterrupted, FitResult, fit
from dip.fit.checkpoint import CHECKPOINT_FORMAT
from dip.fit.device import resolve_device
from dip.fit.engine import FitDriver
from dip.fit.lone import LoneStepper
from dip.fit.objectives import ObservationTerm
from tests.helpers import PoisonAt, SigtermAt, crop_photo, tiny_fit_config


@pytest.fixture(scope="module")
def jittered32() -> np.ndarray:
    clean = crop_photo("astronaut", 32, top=60, left=180)
    return np.clip(clean + np.random.default_rng(0).normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)


class _LoneStepsSideBySide:
    """K lone steppers stepped one after the other, as one K-fit stepper: the driver's bookkeeping of a K-fit run
    without the vectorised network's float rounding, so its results can be compared bit for bit."""

    def __init__(self, parts: list[LoneStepper]):
        self.parts, self.count = parts, len(parts)
        self.inputs = torch.cat([p.inputs for p in parts])

    def step(self):
        outputs, losses = zip(*(p.step() for p in self.parts))
        return torch.cat(outputs), torch.cat(losses)

    def take_snapshot(self, fits):
        for fit_ in fits:
            self.parts[fit_].take_snapshot([0])

    def roll_back(self, fit_):
        self.parts[fit_].roll_back(0)

    def final_outputs(self):
        return torch.cat([p.final_outputs() for p in self.parts])

    def net_of(self, fit_):
        return self.parts[fit_].net

    def config_of(self, fit_):
        return self.parts[fit_].config

    def label(self, fit_):
        return f"fit {fit_}"


def _without_seconds(history) -> str:
    # as text, so that the NaN a poisoned step logs compares equal to itself
    return repr([{k: v for k, v in record.items() if k != "seconds"} for record in history])


def test_each_fit_of_a_run_is_bookkept_as_its_lone_fit(jittered32):
    # Two seeds in one driver run, the second poisoned at step 7 (NaN guard roll-back) while the first runs on: each
    # ends bit-identical to its lone fit -- history, roll-backs, EMA and output.
    config = tiny_fit_config(iterations=15, log_every=4, exp_weight=0.9, channels_last=False)
    device = resolve_device("cpu")
    terms, parts = [], []
    for seed in (0, 1):
        term = ObservationTerm(physics.Identity(), jittered32, device)
        terms.append(term)
        parts.append(LoneStepper.for_fit(config.replace(seed=seed), device, term))
    driver = FitDriver(_LoneStepsSideBySide(parts), terms, config, device, hooks=[[], [PoisonAt(7)]],
                       started=time.perf_counter(), stop_on_request=False)  # fmt: skip
    together = driver.run()
    alone = [fit(jittered32, physics.Identity(), config.replace(seed=0)),
             fit(jittered32, physics.Identity(), config.replace(seed=1), hooks=[PoisonAt(7)])]  # fmt: skip
    assert [r.backtracks for r in together] == [r.backtracks for r in alone] == [0, 1]
    for got, want in zip(together, alone):
        np.testing.assert_array_equal(got.output, want.output)
        np.testing.assert_array_equal(got.output_raw, want.output_raw)
        assert _without_seconds(got.history) == _without_seconds(want.history)
        assert got.config == want.config


def test_a_run_of_several_fits_is_not_checkpointed(jittered32, tmp_path):
    config = tiny_fit_config(iterations=2)
    device = resolve_device("cpu")
    term = ObservationTerm(physics.Identity(), jittered32, device)
    stepper = _LoneStepsSideBySide([LoneStepper.for_fit(config, device, term) for _ in range(2)])
    with pytest.raises(DipInputError, match="lone fits only"):
        FitDriver(stepper, [term, term], config, device, hooks=[[], []], started=0.0,
                  checkpoint_path=tmp_path / "x.ckpt")  # fmt: skip


def test_checkpoint_is_one_complete_file_in_the_resume_layout(jittered32, tmp_path):
    ckpt = tmp_path / "fit.ckpt"
    with pytest.raises(FitInterrupted):
        fit(jittered32, physics.Identity(), tiny_fit_config(iterations=10, exp_weight=0.9), checkpoint_path=ckpt,
            hooks=[SigtermAt(6)])  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["fit.ckpt"]  # no temporary file left beside it
    state = torch.load(ckpt, weights_only=True)  # the layout a weights-only load takes
    assert state["format"] == CHECKPOINT_FORMAT and state["step"] == 6
    assert set(state) == {"format", "config", "step", "net", "optimizer", "noise_gen", "out_avg", "history",
                          "backtracks", "snapshot", "last_good_psnr", "torch_rng", "extra", "hooks", "inputs"}  # fmt: skip
    assert set(state["snapshot"]) == {"net", "optimizer", "out_avg"}
    assert state["out_avg"].shape == (1, 3, 32, 32)  # one image, as a lone fit's output


def test_fit_result_declares_the_fields_its_readers_use():
    fields = {f.name: f for f in dataclasses.fields(FitResult)}
    for name in ("early_stopping", "output_early", "crop_box", "notes"):
        assert name in fields
    result = fit(np.full((32, 32, 3), 0.5, np.float32), physics.Identity(), tiny_fit_config(iterations=1))
    assert result.early_stopping is None and result.output_early is None and result.notes == []
