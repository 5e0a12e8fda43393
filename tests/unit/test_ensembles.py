"""Averaging over restarts ("DIP (K runs)") and mean +- std over seeds."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from dip.data import degrade
from dip.errors import DipInputError
from dip.eval import ensembles, metrics, scoring
from tests.helpers import crop_photo, tiny_fit_config


def test_average_outputs_is_the_pixel_mean():
    assert ensembles.average_outputs is scoring.average_outputs  # one mean of runs: the tables' `_ensemble` rows
    a, b = np.zeros((2, 2, 3), np.float32), np.ones((2, 2, 3), np.float32)
    np.testing.assert_allclose(ensembles.average_outputs([a, b]), 0.5)
    with pytest.raises(DipInputError):
        ensembles.average_outputs([a, np.zeros((3, 2, 3), np.float32)])
    with pytest.raises(DipInputError):
        ensembles.average_outputs([])


def test_restarts_average_the_members_and_record_each_seed(tmp_path):
    clean = crop_photo("astronaut", 32, top=60, left=180)
    noisy = degrade.add_gaussian_noise(clean, 25, seed=0)
    config = tiny_fit_config(iterations=12, log_every=6)
    result = ensembles.restore_restarts("denoise", noisy, config=config, seeds=[0, 1], ground_truth=clean,
                                        checkpoint_dir=tmp_path / "ckpt")
    assert [m.config.seed for m in result.members] == [0, 1]
    np.testing.assert_allclose(result.output, (result.members[0].output + result.members[1].output) / 2, atol=1e-6)
    assert result.psnr_average == pytest.approx(metrics.psnr(clean, result.output))
    # Averaging two different runs is at least as good as their mean PSNR (MSE is convex).
    assert result.psnr_average >= np.mean(result.psnr_members) - 1e-6
    record = ensembles.save_restarts(result, tmp_path / "avg.png", extra={"task": "denoise"})
    on_disk = json.loads((tmp_path / "avg.json").read_text())
    assert on_disk["seeds"] == [0, 1] and on_disk["runs"] == 2 and on_disk["task"] == "denoise"
    assert on_disk["psnr_members_std"] == pytest.approx(record["psnr_members_std"])
    assert (tmp_path / "avg.png").is_file()
    with pytest.raises(DipInputError, match="differ"):
        ensembles.restore_restarts("denoise", noisy, config=config, seeds=[3, 3])


def test_restarts_with_early_stopping_average_the_detected_outputs():
    clean = crop_photo("astronaut", 32, top=60, left=180)
    noisy = degrade.add_gaussian_noise(clean, 50, seed=0)
    config = tiny_fit_config(iterations=16, log_every=8, exp_weight=None)
    result = ensembles.restore_restarts("denoise", noisy, config=config, seeds=[0, 1], ground_truth=clean,
                                        early_stopping={"window": 4, "patience": 6, "check_every": 2, "stop": False})
    assert len(result.early_stopping) == 2 and result.output_early.shape == clean.shape
    with pytest.raises(DipInputError, match="dict"):
        from dip.fit.early_stopping import EarlyStopping

        ensembles.restore_restarts("denoise", noisy, config=config, seeds=[0, 1], early_stopping=EarlyStopping())


def test_mean_std_and_its_text():
    mean, std, n = ensembles.mean_std([30.0, 32.0, None, float("nan")])
    assert (mean, n) == (31.0, 2) and std == pytest.approx(math.sqrt(2))
    assert ensembles.format_mean_std(mean, std) == "31.00 ± 1.41"
    assert ensembles.format_mean_std(31.0, math.nan) == "31.00"
    assert ensembles.format_mean_std(math.nan, math.nan) == ""
    assert math.isnan(ensembles.mean_std([29.0])[1])


def test_seed_summary_groups_a_metrics_table_over_seeds():
    frame = pd.DataFrame({
        "dataset": ["d"] * 4, "image": ["a", "a", "b", "b"], "task": ["denoise"] * 4, "level": [25.0] * 4,
        "method": ["dip"] * 4, "source": ["ours"] * 4, "psnr": [30.0, 31.0, 28.0, 28.0], "ssim": [0.9] * 4,
        "seed": [0, 1, 0, 1], "iterations": [10] * 4, "seconds": [1.0] * 4,
    })
    summary = ensembles.seed_summary(frame)
    assert list(summary["image"]) == ["a", "b"] and list(summary["n"]) == [2, 2]
    assert summary.loc[0, "text"] == "30.50 ± 0.71" and summary.loc[1, "std"] == 0.0
    with pytest.raises(DipInputError):
        ensembles.seed_summary(frame, value="lpips")
