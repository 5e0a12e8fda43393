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


# --- tables -------------------------------------------------------------------------------------------------------


def _metrics():
    rows = []
    for image, base in (("barbara", 30.0), ("boat", 32.0)):
        for method, source, delta in (("dip", "ours", 0.0), ("biharmonic", "ours", -2.0), ("dip", "released", 1.0),
                                      ("papyan", "released", -1.0), ("input", "ours", -20.0)):
            for seed in ((0, 1) if (method, source) == ("dip", "ours") else (0,)):
                rows.append({"dataset": "gray11", "image": image, "task": "inpaint", "level": 0.5, "method": method,
                             "source": source, "psnr": base + delta + 0.2 * seed, "ssim": 0.9, "seed": seed,
                             "iterations": 10, "seconds": 1.0})
    return pd.DataFrame(rows, columns=scoring.COLUMNS)


def test_results_table_puts_paper_rows_beside_ours():
    reported, _, _ = tables.load_paper_numbers(PAPER)
    table = tables.results_table(_metrics(), reported, "gray11", "inpaint", 0.5)
    assert list(table.columns) == ["Barbara", "Boat", "mean (same images)"]  # 2 of the 11 images
    dip = table.xs("DIP", level="method")
    assert list(dip.index) == ["ours", "released", "paper"]
    assert dip.loc["ours", "Barbara"] == pytest.approx(30.1)  # mean over the two seeds
    assert dip.loc["paper", "Barbara"] == 32.22 and dip.loc["paper", "Boat"] == 33.06
    assert dip.loc["paper", "mean (same images)"] == pytest.approx((32.22 + 33.06) / 2)  # mean of the images shown
    assert table.xs("Papyan et al.", level="method").loc["paper", "Barbara"] == 28.14
    assert table.index[0] == ("Degraded input", "ours")  # the input first, DIP last
    assert table.index[-1][0] == "DIP"


def _set5(ours_images=("baby", "bird", "butterfly", "head", "woman")):
    """Set5 x4 metrics: released DIP and bicubic for all 5 images, ours (DIP, two seeds; bicubic) for some."""
    rows = []
    base = {"baby": 31.0, "bird": 32.0, "butterfly": 26.0, "head": 31.5, "woman": 29.0}
    for image, psnr in base.items():
        rows.append({"image": image, "method": "dip", "source": "released", "psnr": psnr, "seed": None})
        rows.append({"image": image, "method": "bicubic", "source": "released", "psnr": psnr - 2, "seed": None})
        if image in ours_images:
            rows += [{"image": image, "method": "dip", "source": "ours", "psnr": psnr - 0.5 + 0.2 * seed, "seed": seed}
                     for seed in (0, 1)]
            rows.append({"image": image, "method": "bicubic", "source": "ours", "psnr": psnr - 2, "seed": 0})
    frame = pd.DataFrame(rows).assign(dataset="set5", task="sr", level=4.0, ssim=0.9, iterations=None, seconds=None)
    return frame[scoring.COLUMNS]


def test_results_table_with_mean_only_paper_rows():
    reported, _, _ = tables.load_paper_numbers(PAPER)
    table = tables.results_table(_set5(), reported, "set5", "sr", 4)
    assert list(table.columns) == ["baby", "bird", "butterfly", "head", "woman", "mean"]
    assert not table.attrs["subset"] and table.attrs["note"] == ""
    paper = table.xs("paper", level="source")
    assert paper.loc["DIP", "mean"] == 29.90 and np.isnan(paper.loc["DIP", "baby"])
    assert paper.loc["SRResNet-MSE", "mean"] == 32.10
    dip = table.xs("DIP", level="method")
    assert list(dip.index) == ["ours", "released", "paper"]
    assert dip.loc["released", "mean"] == pytest.approx(29.9) and dip.loc["ours", "mean"] == pytest.approx(29.5)


def test_results_table_compares_a_subset_on_the_same_images():
    # A CPU run of 4 of Set5's 5 images: every row is shown on those 4 and averaged over them only.
    reported, _, _ = tables.load_paper_numbers(PAPER)
    four = ("butterfly", "head", "bird", "woman")
    table = tables.results_table(_set5(four), reported, "set5", "sr", 4)
    assert list(table.columns) == ["bird", "butterfly", "head", "woman", "mean (same images)"]
    assert table.attrs["subset"] and table.attrs["images"] == ["bird", "butterfly", "head", "woman"]
    dip = table.xs("DIP", level="method")
    assert list(dip.index) == ["ours", "released"]  # the paper gives only a 5-image mean: no cell left, row dropped
    assert dip.loc["released", "butterfly"] == 26.0 and dip.loc["ours", "butterfly"] == pytest.approx(25.6)
    assert dip.loc["released", "mean (same images)"] == pytest.approx((32.0 + 26.0 + 31.5 + 29.0) / 4)
    assert dip.loc["ours", "mean (same images)"] == pytest.approx((32.0 + 26.0 + 31.5 + 29.0) / 4 - 0.4)
    assert "paper" not in set(table.index.get_level_values("source"))
    note = table.attrs["note"]
    assert "4 of the 5 images (bird, butterfly, head, woman)" in note
    assert "paper: Bicubic 28.43, SRResNet-MSE 32.10, DIP 29.90" in note
    assert "released images: Bicubic 27.90, DIP 29.90" in note  # the 5-image means, for reference
    caption = tables.table_caption("set5", "sr", 4, table)
    assert note in caption and "MATLAB imresize" in caption


def test_results_table_subset_averages_per_image_paper_rows_over_the_same_images():
    reported, _, _ = tables.load_paper_numbers(PAPER)
    frame = _metrics()[lambda f: ~((f.source == "ours") & (f.image == "boat"))]  # ours: barbara only; released: both
    table = tables.results_table(frame, reported, "gray11", "inpaint", 0.5)
    assert list(table.columns) == ["Barbara", "mean (same images)"]
    dip = table.xs("DIP", level="method")
    assert dip.loc["paper", "mean (same images)"] == 32.22  # the paper's Barbara, not its 11-image mean
    assert dip.loc["released", "mean (same images)"] == 31.0
    assert "paper: Papyan et al. 31.19, DIP 33.48" in table.attrs["note"]  # the mean of Table 1's 11 values


def test_results_table_mean_needs_every_image_of_the_row():
    frame = _metrics()[lambda f: ~((f.method == "papyan") & (f.image == "boat"))]
    table = tables.results_table(frame, None, "gray11", "inpaint", 0.5)
    assert np.isnan(table.loc[("Papyan et al.", "released"), "mean (same images)"])  # never over fewer images
    assert table.loc[("Papyan et al.", "released"), "Barbara"] == 29.0


def test_writers(tmp_path):
    reported, _, _ = tables.load_paper_numbers(PAPER)
    table = tables.results_table(_metrics(), reported, "gray11", "inpaint", 0.5)
    caption = tables.table_caption("gray11", "inpaint", 0.5)
    tables.write_table(table, md=tmp_path / "t.md", tex=tmp_path / "t.tex", csv=tmp_path / "t.csv",
                       caption=caption, label="tab:x")
    md = (tmp_path / "t.md").read_text()
    assert "| method | source | Barbara | Boat | mean (same images) |" in md
    assert "| DIP | paper | 32.22 | 33.06 | 32.64 |" in md
    tex = (tmp_path / "t.tex").read_text()
    assert r"\begin{tabular}{llrrr}" in tex and r"\label{tab:x}" in tex and "50\\% of the pixels" in tex
    csv = pd.read_csv(tmp_path / "t.csv")
    assert list(csv.columns) == ["method", "source", "Barbara", "Boat", "mean (same images)"]
    assert len(csv) == len(table)


def test_write_table_adds_the_same_images_note_to_the_caption(tmp_path):
    reported, _, _ = tables.load_paper_numbers(PAPER)
    table = tables.results_table(_set5(("bird", "head")), reported, "set5", "sr", 4)
    tables.write_table(table, md=tmp_path / "t.md", caption=tables.table_caption("set5", "sr", 4))
    md = (tmp_path / "t.md").read_text()
    assert md.count("2 of the 5 images (bird, head)") == 1
    assert "| method | source | bird | head | mean (same images) |" in md
    tables.write_table(table, md=tmp_path / "u.md", caption=tables.table_caption("set5", "sr", 4, table))
    assert (tmp_path / "u.md").read_text().count("2 of the 5 images") == 1  # not twice


def _es_record(folder, image, seed, detected, psnr_es, psnr_fixed, iterations=2000):
    path = folder / "set5" / "sr" / "x4" / "dip" / f"{image}_seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    es = {"detected_step": detected, "iterations_done": iterations, "psnr_detected": psnr_es,
          "psnr_final": psnr_fixed, "psnr_peak_logged": 30.0, "peak_step_logged": 900}
    path.write_text(json.dumps({"config": {"iterations": iterations}, "seed": seed, "spec": {"level": 4.0},
                                "early_stopping": es}))
    return path


def test_early_stopping_table_answers_how_much_of_the_budget_was_needed(tmp_path):
    paths = [_es_record(tmp_path, "bird", 0, 999, 29.5, 29.0), _es_record(tmp_path, "head", 0, None, None, 28.0)]
    table = tables.early_stopping_table(paths)
    assert list(table.columns) == ["detected step", "fixed steps", "fraction of budget", "PSNR at detected step",
                                   "PSNR at fixed step", "difference", "best logged PSNR", "at step", "PSNR metric"]
    bird = table.loc["set5/sr/x4/bird_seed0"]
    assert bird["detected step"] == 999 and bird["fixed steps"] == 2000 and bird["fraction of budget"] == 0.5
    assert bird["difference"] == pytest.approx(0.5) and bird["PSNR metric"].startswith("record")
    assert pd.isna(table.loc["set5/sr/x4/head_seed0", "fraction of budget"])
    # with metrics.csv: the tables' own scores (the paper's metric) of the dip_es and dip rows of that image and seed
    frame = pd.DataFrame([{"dataset": "set5", "task": "sr", "level": 4.0, "image": "bird", "source": "ours",
                           "seed": 0, "method": m, "psnr": p} for m, p in (("dip_es", 31.0), ("dip", 31.25))])
    scored = tables.early_stopping_table(paths, metrics=frame).loc["set5/sr/x4/bird_seed0"]
    assert scored["PSNR at detected step"] == 31.0 and scored["difference"] == pytest.approx(-0.25)
    assert scored["PSNR metric"].startswith("paper")
    md = tables.to_markdown(table, tables.EARLY_STOPPING_CAPTION)
    assert "| set5/sr/x4/bird_seed0 | 999 | 2000 | 0.50 | 29.50 | 29.00 | 0.50 |" in md


def test_latex_escapes():
    assert tables._tex("a_b & 50% #1") == r"a\_b \& 50\% \#1"


# --- figures (smoke: each writes a PNG and a PDF; how they read: test_figures.py) ---------------------------------


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


def test_released_records_keep_only_the_levels_a_run_rescores():
    everything = tables.released_records(PAPER)
    chosen = tables.released_records(PAPER, {"set5": [4.0], "color9": [25.0, 50.0]})
    assert {(r["dataset"], r["level"]) for r in chosen} == {("set5", 4.0), ("color9", 25.0)}
    assert len(chosen) < len(everything)
    assert tables.released_records(PAPER, {"set5": [8.0]}) == []  # no released value is listed for x8
