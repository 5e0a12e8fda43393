"""dip.pipeline.jobs.scores: the score job's rows, the auto stop's from the same DIP fits (its rule replayed on each
fit's logged curve, the noise estimated from the fit's input)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dip.data import degrade
from dip.data.imageio import read_image, write_image
from dip.fit.stopping import auto_stop_of
from dip.pipeline.jobs import scores
from dip.pipeline.plan import Job


def _record(task, level, steps=400):
    """A fixed-budget fit's record: the loss falls below sigma 25's variance (0.0096) at step 250, PSNR rising."""
    history = [{"step": s, "loss": 0.02 - 0.04 * s / 1000, "psnr_gt": 20 + s / 100, "psnr_gt_avg": 21 + s / 100,
                "seconds": 0.5 * (s + 1)} for s in [*range(0, steps, 50), steps - 1]]
    return {"spec": {"task": task, "level": level}, "config": {"exp_weight": None}, "seed": 0, "crop_box": None,
            "summary": {"iterations_done": steps, "seconds": 0.5 * steps}, "history": history}


def _job(tmp_path, task, level, label, gt, observation, record):
    folder = tmp_path / task
    folder.mkdir()
    files = {"gt": folder / "gt.png", "observation": folder / "observation.png", "png": folder / "dip_seed0.png",
             "json": folder / "dip_seed0.json"}
    write_image(files["gt"], gt)
    write_image(files["observation"], observation)
    write_image(files["png"], np.clip(gt + 0.02, 0, 1))
    files["json"].write_text(json.dumps(record))
    plan = [{"image": "astro", "method": "dip", "seed": 0, "png": str(files["png"]), "json": str(files["json"])}]
    return Job("score", [str(folder / "scores.csv")],
               {"gt": [str(files["gt"])], "observation": [str(files["observation"])],
                "outputs": [str(files["png"]), str(files["json"])]},
               {"plan": plan, "level": level, "images": ["astro"]},
               {"dataset": "photos", "task": task, "level": label})  # fmt: skip


def test_the_score_job_adds_the_auto_stop_of_each_dip_fit(tmp_path, photo64):
    noisy = degrade.add_gaussian_noise(photo64, 25, seed=0, quantize=True)
    record = _record("denoise", 25)
    frame = scores.score(_job(tmp_path, "denoise", 25, "sigma25", photo64, noisy, record))
    assert set(frame.method) == {"input", "dip", "dip_auto_logged"}
    logged = frame[frame.method == "dip_auto_logged"].iloc[0]
    expected = auto_stop_of(record, observation=read_image(tmp_path / "denoise" / "observation.png"))
    assert expected["fired"] and expected["estimate_source"] == "estimate_noise_sigma(observation)"
    assert logged.iterations == expected["stop_step"] + 1 < 400  # stopped before the budget, on the logged curve
    assert logged.psnr == pytest.approx(expected["psnr_stop"], abs=1e-4) and np.isnan(logged.ssim)
    assert pd.read_csv(tmp_path / "denoise" / "scores.csv").method.tolist() == frame.method.tolist()


def test_where_the_task_runs_its_budget_the_auto_stop_has_no_row_repeating_dips(tmp_path, grey64):
    mask = degrade.bernoulli_mask(grey64.shape[:2], 0.5, seed=0)
    frame = scores.score(_job(tmp_path, "inpaint", 0.5, "missing50", grey64, degrade.apply_mask(grey64, mask),
                              _record("inpaint", 0.5)))
    assert set(frame.method) == {"input", "dip"}  # the auto stop returns DIP's image: no row of its own
    assert frame[frame.method == "dip"].iterations.iloc[0] == 400
