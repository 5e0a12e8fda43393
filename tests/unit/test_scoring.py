"""dip.eval.scoring: the paper's protocol per task (the SR crop put back in the GT frame, full-image PSNR), tidy rows of
our outputs (the degraded input, ensembles) and the released outputs checked against the values they give."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dip.data.imageio import put_in_center, write_image
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
