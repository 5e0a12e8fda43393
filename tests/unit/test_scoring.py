"""dip.eval.scoring: the paper's protocol per task (the SR crop put back in the GT frame, full-image PSNR), tidy rows of
our outputs (the degraded input, ensembles) and the released outputs checked against the values they give."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dip.data.imageio import put_in_center, write_image
from dip.errors import DipInputError
from dip.eval import metrics, scoring, tables


def test_sr_scores_put_a_cropped_output_back_in_the_gt_frame(photo64):
    gt = np.pad(photo64, ((3, 4), (1, 2), (0, 0)), mode="edge")  # 71 x 67: DIP restores the centre 64 x 64
    est = np.clip(photo64 + 0.02, 0, 1)
    psnr, ssim = scoring.score_image("sr", gt, est)
    region = metrics.sr_region(gt.shape[:2])
    assert psnr == pytest.approx(metrics.psnr_sr_paper(gt, put_in_center(est, gt.shape), region))
    assert 0 < ssim <= 1
    # a full-frame estimate is scored on the same region
    full = put_in_center(est, gt.shape)
    assert scoring.score_image("sr", gt, full)[0] == pytest.approx(psnr)


def test_denoise_scores_are_full_image_psnr(photo64):
    est = np.clip(photo64 + 0.01, 0, 1)
    assert scoring.score_image("denoise", photo64, est)[0] == pytest.approx(metrics.psnr(photo64, est))
    # an output of a cropped fit is compared with the same crop of the GT
    crop = est[8:40, 0:32]
    assert scoring.score_image("denoise", photo64, crop, crop_box=(8, 0, 32, 32))[0] == pytest.approx(
        metrics.psnr(photo64[8:40, 0:32], crop)
    )


def _write_run(tmp_path, name, img, seed, exp_weight=0.99, seconds=1.5):
    png = tmp_path / f"{name}_seed{seed}.png"
    write_image(png, img)
    js = png.with_suffix(".json")
    js.write_text(json.dumps({"seed": seed, "config": {"exp_weight": exp_weight},
                              "summary": {"iterations_done": 10, "seconds": seconds}, "crop_box": None}))
    return png, js


def test_score_outputs_rows_input_and_ensemble(tmp_path, photo64):
    gt, obs = tmp_path / "gt.png", tmp_path / "obs.png"
    write_image(gt, photo64)
    write_image(obs, np.clip(photo64 + 0.2, 0, 1))
    outputs = []
    for seed, shift in ((0, 0.03), (1, -0.03)):
        png, js = _write_run(tmp_path, "dip", np.clip(photo64 + shift, 0, 1), seed)
        outputs.append({"method": "dip", "seed": seed, "png": png, "json": js})
    raw_png, raw_js = _write_run(tmp_path, "sr", photo64, 0, exp_weight=None)
    outputs.append({"method": "dip_raw", "seed": 0, "png": raw_png, "json": raw_js, "only_if_averaged": True})
    rows = scoring.score_outputs("photos", "denoise", 25, "astro", gt, obs, outputs)
    frame = pd.DataFrame(rows, columns=scoring.COLUMNS)
    assert list(frame.columns) == scoring.COLUMNS
    assert set(frame.method) == {"input", "dip", "dip_ensemble"}  # dip_raw skipped: that fit did not average
    ens = frame[frame.method == "dip_ensemble"].psnr.iloc[0]
    assert ens > frame[frame.method == "dip"].psnr.max()  # the two shifts cancel
    dip0 = frame[(frame.method == "dip") & (frame.seed == 0)].iloc[0]
    assert dip0.iterations == 10 and dip0.seconds == 1.5 and dip0.source == "ours"


def test_check_released():
    frame = pd.DataFrame(
        [{"dataset": "set5", "task": "sr", "level": 4.0, "method": "dip", "source": "released", "image": i,
          "psnr": p} for i, p in (("a", 29.0), ("b", 30.81))]
    )
    expected = [{"dataset": "set5", "task": "sr", "level": 4, "method": "dip", "image": "mean", "psnr": 29.90},
                {"dataset": "set5", "task": "sr", "level": 4, "method": "dip", "image": "b", "psnr": 30.70},
                {"dataset": "set5", "task": "sr", "level": 4, "method": "bicubic", "image": "mean", "psnr": 28.0}]
    check = scoring.check_released(frame, expected, 0.02)
    assert list(check.ok) == [True, False, False]
    assert np.isnan(check.ours.iloc[2])
    out = tables.released_check_table(check)
    assert list(out.ok) == ["yes", "NO", "NO"]


# --- the auto stop, from the same fits ----------------------------------------------------------------------------


def _fit(tmp_path, photo64, seed=0):
    png, js = _write_run(tmp_path, "dip", np.clip(photo64 + 0.03 * (seed + 1), 0, 1), seed)
    return {"method": "dip", "seed": seed, "png": png, "json": js}


def _logged(seconds_per_step=2.0, steps=range(0, 1800, 50), last=1799):
    return {"history": [{"step": s, "seconds": seconds_per_step * (s + 1)} for s in [*steps, last]]}


def test_where_the_rule_runs_the_budget_the_auto_stop_row_scores_the_fixed_budget_image(tmp_path, photo64):
    gt = tmp_path / "gt.png"
    write_image(gt, photo64)
    fit = _fit(tmp_path, photo64)
    budget = {"rule": "budget", "fired": False, "stop_step": None, "psnr_stop": 12.3, "replayed": True}
    entry = scoring.auto_stop_output(fit, _logged(), budget)
    assert entry == {"method": scoring.AUTO_STOP, "seed": 0, "png": fit["png"], "json": fit["json"],
                     "same_as_fit": True}
    frame = pd.DataFrame(scoring.score_outputs("set5", "sr", 4, "bird", gt, None, [fit, entry]))
    dip, auto = (frame[frame.method == m].iloc[0] for m in ("dip", scoring.AUTO_STOP))
    assert auto.psnr == dip.psnr and auto.ssim == dip.ssim and auto.iterations == dip.iterations  # the same image
    # a fit that itself stopped where its rule fired saved that image: it is scored too
    obeyed = {"rule": "discrepancy", "fired": True, "stop_step": 99, "obeyed": True, "psnr_stop": 30.0}
    assert scoring.auto_stop_output(fit, _logged(), obeyed)["method"] == scoring.AUTO_STOP


def test_an_auto_stop_before_the_budget_is_the_psnr_the_fit_logged_there(tmp_path, photo64):
    gt = tmp_path / "gt.png"
    write_image(gt, photo64)
    fits = [_fit(tmp_path, photo64, seed) for seed in (0, 1)]
    fired = {"rule": "discrepancy", "fired": True, "stop_step": 1500, "obeyed": False, "psnr_stop": 32.04,
             "last_step": 1799, "replayed": True}
    entry = scoring.auto_stop_output(fits[0], _logged(), fired)
    assert entry == {"method": scoring.AUTO_STOP_LOGGED, "seed": 0, "logged_psnr": 32.04, "iterations": 1501,
                     "seconds": 3002.0}
    never = {**fired, "fired": False, "stop_step": None, "psnr_stop": 31.78}  # ran the budget: the last logged step
    assert scoring.auto_stop_output(fits[1], _logged(), never) == {
        "method": scoring.AUTO_STOP_LOGGED, "seed": 1, "logged_psnr": 31.78, "iterations": 1800, "seconds": 3600.0}
    entries = [entry, scoring.auto_stop_output(fits[1], _logged(), never)]
    frame = pd.DataFrame(scoring.score_outputs("color9", "denoise", 25, "hill", gt, None, [*fits, *entries]),
                         columns=scoring.COLUMNS)
    logged = frame[frame.method == scoring.AUTO_STOP_LOGGED].set_index("seed")
    assert list(logged.psnr) == [32.04, 31.78] and logged.ssim.isna().all()  # no image: no SSIM
    assert list(logged.iterations) == [1501, 1800] and logged.loc[0, "seconds"] == 3002.0
    assert set(frame.method) == {"dip", "dip_ensemble", scoring.AUTO_STOP_LOGGED}  # no ensemble of logged values


def test_an_auto_stop_image_kept_by_the_fit_is_scored_at_its_step(tmp_path, photo64):
    gt = tmp_path / "gt.png"
    write_image(gt, photo64)
    fit = _fit(tmp_path, photo64)
    kept = Path(fit["png"]).with_name("dip_seed0_auto.png")
    write_image(kept, np.clip(photo64 + 0.01, 0, 1))  # closer to the GT than the fit's final output
    own = {"rule": "discrepancy", "fired": True, "stop_step": 1499, "obeyed": False, "last_step": 1799,
           "image": kept.name}
    entry = scoring.auto_stop_output(fit, _logged(steps=[*range(0, 1800, 50), 1499]), own)
    assert entry["method"] == scoring.AUTO_STOP and entry["png"] == str(kept) and "same_as_fit" not in entry
    assert entry["iterations"] == 1500 and entry["seconds"] == 3000.0
    frame = pd.DataFrame(scoring.score_outputs("color9", "denoise", 25, "hill", gt, None, [fit, entry]))
    dip, auto = (frame[frame.method == m].iloc[0] for m in ("dip", scoring.AUTO_STOP))
    assert auto.psnr > dip.psnr + 5 and auto.iterations == 1500 and not math.isnan(auto.ssim)
    kept.unlink()
    with pytest.raises(DipInputError, match="auto stop's image .* is missing"):
        scoring.auto_stop_output(fit, _logged(), own)


def test_where_the_fits_own_hook_never_fired_the_auto_stop_is_the_fit_and_a_level_of_such_has_no_row(tmp_path, photo64):
    fit = _fit(tmp_path, photo64)
    never = {"rule": "discrepancy", "fired": False, "stop_step": None, "obeyed": False, "last_step": 1799}
    at_last = {**never, "fired": True, "stop_step": 1799}  # fired at the budget's last step: the same image
    for own in (never, at_last):
        assert scoring.auto_stop_output(fit, _logged(), own).get("same_as_fit") is True
    entries = [scoring.auto_stop_output(fit, _logged(), own) for own in (never, at_last)]
    assert scoring.drop_repeated(entries) == []
    kept = {"method": scoring.AUTO_STOP, "png": "x_auto.png"}
    assert scoring.drop_repeated([*entries, kept]) == [*entries, kept]  # one image of its own: every row stays
