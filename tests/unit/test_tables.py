"""dip.eval.scoring (the paper's protocol per task), dip.eval.tables (paper rows beside ours) and dip.eval.figures (smoke)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dip.data.imageio import put_in_center, write_image
from dip.errors import DipInputError
from dip.eval import figures, metrics, scoring, tables
from tests.helpers import REPO

PAPER = REPO / "config" / "paper_numbers.yaml"


# --- the paper's numbers as data ----------------------------------------------------------------------------------


def test_paper_numbers_hold_what_the_issue_quotes():
    reported, released, tol = tables.load_paper_numbers(PAPER)
    assert tol == 0.02

    def value(frame, dataset, method, image="mean"):
        sel = frame[(frame.dataset == dataset) & (frame.method == method) & (frame.image == image)]
        assert len(sel) == 1, (dataset, method, image)
        return float(sel.psnr.iloc[0])

    assert value(reported, "set5", "dip") == 29.90 and value(reported, "set14", "dip") == 27.00
    assert value(reported, "set5", "bicubic") == 28.43 and value(reported, "set14", "srresnet_mse") == 28.53
    assert value(reported, "color9", "dip_raw") == 29.22 and value(reported, "color9", "dip_ensemble") == 31.00
    assert value(reported, "color9", "cbm3d") == 31.42 and value(reported, "color9", "nlm") == 30.26
    table1 = reported[(reported.dataset == "gray11")]
    assert len(table1) == 22
    assert value(reported, "gray11", "papyan", "barbara") == 28.14
    assert value(reported, "gray11", "dip", "montage") == 34.54
    assert value(released, "set14", "dip") == 27.01 and value(released, "color9", "nlm") == 30.23
    assert value(released, "gray11", "dip") == 33.44 and value(released, "gray11", "papyan") == 31.16


def test_table1_images_are_the_benchmark_images():
    from dip.data.benchmarks import BENCHMARKS

    reported, _, _ = tables.load_paper_numbers(PAPER)
    assert set(reported[reported.dataset == "gray11"].image) == set(BENCHMARKS["gray11"].images)


# --- scoring ------------------------------------------------------------------------------------------------------


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


def test_check_published():
    frame = pd.DataFrame(
        [{"dataset": "set5", "task": "sr", "level": 4.0, "method": "dip", "source": "published", "image": i,
          "psnr": p} for i, p in (("a", 29.0), ("b", 30.81))]
    )
    expected = [{"dataset": "set5", "task": "sr", "level": 4, "method": "dip", "image": "mean", "psnr": 29.90},
                {"dataset": "set5", "task": "sr", "level": 4, "method": "dip", "image": "b", "psnr": 30.70},
                {"dataset": "set5", "task": "sr", "level": 4, "method": "bicubic", "image": "mean", "psnr": 28.0}]
    check = scoring.check_published(frame, expected, 0.02)
    assert list(check.ok) == [True, False, False]
    assert np.isnan(check.ours.iloc[2])
    out = tables.published_check_table(check)
    assert list(out.ok) == ["yes", "NO", "NO"]


# --- tables -------------------------------------------------------------------------------------------------------


def _metrics():
    rows = []
    for image, base in (("barbara", 30.0), ("boat", 32.0)):
        for method, source, delta in (("dip", "ours", 0.0), ("biharmonic", "ours", -2.0), ("dip", "published", 1.0),
                                      ("papyan", "published", -1.0), ("input", "ours", -20.0)):
            for seed in ((0, 1) if (method, source) == ("dip", "ours") else (0,)):
                rows.append({"dataset": "gray11", "image": image, "task": "inpaint", "level": 0.5, "method": method,
                             "source": source, "psnr": base + delta + 0.2 * seed, "ssim": 0.9, "seed": seed,
                             "iterations": 10, "seconds": 1.0})
    return pd.DataFrame(rows, columns=scoring.COLUMNS)


def test_results_table_puts_paper_rows_beside_ours():
    reported, _, _ = tables.load_paper_numbers(PAPER)
    table = tables.results_table(_metrics(), reported, "gray11", "inpaint", 0.5)
    assert list(table.columns) == ["Barbara", "Boat", "mean"]
    dip = table.xs("DIP", level="method")
    assert list(dip.index) == ["ours", "released", "paper"]
    assert dip.loc["ours", "Barbara"] == pytest.approx(30.1)  # mean over the two seeds
    assert dip.loc["paper", "Barbara"] == 32.22 and dip.loc["paper", "Boat"] == 33.06
    assert dip.loc["paper", "mean"] == pytest.approx((32.22 + 33.06) / 2)  # mean of the images shown
    assert table.xs("Papyan et al.", level="method").loc["paper", "Barbara"] == 28.14
    assert table.index[0] == ("Degraded input", "ours")  # the input first, DIP last
    assert table.index[-1][0] == "DIP"


def test_results_table_with_mean_only_paper_rows():
    frame = _metrics().assign(dataset="set5", task="sr", level=4.0)
    reported, _, _ = tables.load_paper_numbers(PAPER)
    table = tables.results_table(frame, reported, "set5", "sr", 4)
    paper = table.xs("paper", level="source")
    assert paper.loc["DIP", "mean"] == 29.90 and np.isnan(paper.loc["DIP", "barbara"])
    assert paper.loc["SRResNet-MSE", "mean"] == 32.10


def test_writers(tmp_path):
    reported, _, _ = tables.load_paper_numbers(PAPER)
    table = tables.results_table(_metrics(), reported, "gray11", "inpaint", 0.5)
    caption = tables.table_caption("gray11", "inpaint", 0.5)
    tables.write_table(table, md=tmp_path / "t.md", tex=tmp_path / "t.tex", csv=tmp_path / "t.csv",
                       caption=caption, label="tab:x")
    md = (tmp_path / "t.md").read_text()
    assert "| method | source | Barbara | Boat | mean |" in md and "| DIP | paper | 32.22 | 33.06 | 32.64 |" in md
    tex = (tmp_path / "t.tex").read_text()
    assert r"\begin{tabular}{llrrr}" in tex and r"\label{tab:x}" in tex and "50\\% of the pixels" in tex
    csv = pd.read_csv(tmp_path / "t.csv")
    assert list(csv.columns) == ["method", "source", "Barbara", "Boat", "mean"]
    assert len(csv) == len(table)


def test_latex_escapes():
    assert tables._tex("a_b & 50% #1") == r"a\_b \& 50\% \#1"


# --- figures (smoke: each writes a PNG and a PDF) -----------------------------------------------------------------


def test_learning_curve_targets(photo64):
    for kind in figures.LEARNING_CURVE_KINDS:
        t = figures.learning_curve_target(photo64, kind, seed=0)
        assert t.shape == photo64.shape and t.dtype == np.float32
    shuffled = figures.learning_curve_target(photo64, "shuffled")
    np.testing.assert_allclose(np.sort(shuffled.reshape(-1, 3), axis=0), np.sort(photo64.reshape(-1, 3), axis=0))
    with pytest.raises(DipInputError):
        figures.learning_curve_target(photo64, "stripes")


def test_plots_write_png_and_pdf(tmp_path, photo64):
    hist = [{"step": s, "loss": 0.1 / (s + 1), "psnr_gt": 20 + s / 10, "psnr_gt_avg": 19 + s / 9} for s in range(30)]
    figures.plot_learning_curves({"image": hist, "noise": hist}, tmp_path / "a.png", tmp_path / "a.pdf")
    figures.plot_psnr_curves({"x": hist}, tmp_path / "b.png", tmp_path / "b.pdf", reference={"x": 20.5})
    rows = [{"image": "x", "panels": [("gt", photo64), ("lr", photo64[::4, ::4]), ("grey", photo64[..., :1])]}]
    figures.plot_grid(rows, tmp_path / "c.png", tmp_path / "c.pdf")
    frame = _metrics()
    figures.plot_psnr_per_method(frame, tmp_path / "d.png", tmp_path / "d.pdf", method_labels=tables.METHOD_LABELS)
    for stem in "abcd":
        assert (tmp_path / f"{stem}.png").stat().st_size > 1000
        assert (tmp_path / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    assert not list(tmp_path.glob(".*tmp*"))
