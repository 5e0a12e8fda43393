"""dip.eval.tables: the paper's numbers as data, paper rows beside ours on the same images, the seed spread, captions,
the early-stopping table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dip.eval import scoring, tables, writers
from tests.helpers import PAPER_NUMBERS, gray11_scores

# --- the paper's numbers as data ----------------------------------------------------------------------------------


def test_paper_numbers_hold_what_the_issue_quotes():
    reported, released, tol = tables.load_paper_numbers(PAPER_NUMBERS)
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

    reported, _, _ = tables.load_paper_numbers(PAPER_NUMBERS)
    assert set(reported[reported.dataset == "gray11"].image) == set(BENCHMARKS["gray11"].images)


def test_released_records_keep_only_the_levels_a_run_rescores():
    everything = tables.released_records(PAPER_NUMBERS)
    chosen = tables.released_records(PAPER_NUMBERS, {"set5": [4.0], "color9": [25.0, 50.0]})
    assert {(r["dataset"], r["level"]) for r in chosen} == {("set5", 4.0), ("color9", 25.0)}
    assert len(chosen) < len(everything)
    assert tables.released_records(PAPER_NUMBERS, {"set5": [8.0]}) == []  # no released value is listed for x8


# --- tables -------------------------------------------------------------------------------------------------------


def test_results_table_puts_paper_rows_beside_ours():
    reported, _, _ = tables.load_paper_numbers(PAPER_NUMBERS)
    table = tables.results_table(gray11_scores(), reported, "gray11", "inpaint", 0.5)
    # 2 of the 11 images: each row's mean over them, and over all 11 apart
    assert list(table.columns) == ["Barbara", "Boat", "mean, 2 of 11 images", "mean, all 11 images"]
    dip = table.xs("DIP", level="method")
    assert list(dip.index) == ["ours", "ours, seed std", "released", "paper"]
    assert dip.loc["ours", "Barbara"] == pytest.approx(30.1)  # mean over the two seeds
    assert dip.loc["ours, seed std", "Barbara"] == pytest.approx(0.2 / 2**0.5)  # their spread
    assert dip.loc["paper", "Barbara"] == 32.22 and dip.loc["paper", "Boat"] == 33.06
    assert dip.loc["paper", "mean, 2 of 11 images"] == pytest.approx((32.22 + 33.06) / 2)  # over the images shown
    assert dip.loc["paper", "mean, all 11 images"] == pytest.approx(33.48, abs=0.005)  # Table 1's 11 values
    assert np.isnan(dip.loc["ours", "mean, all 11 images"])  # ours has 2 of them: no full-set mean
    assert table.xs("Papyan et al.", level="method").loc["paper", "Barbara"] == 28.14
    assert table.index[0] == ("Degraded input", "ours")  # the input first, DIP last
    assert table.index[-1][0] == "DIP"


def _set5(ours_images=("baby", "bird", "butterfly", "head", "woman"), seeds=(0, 1)):
    """Set5 x4 metrics: released DIP and bicubic for all 5 images, ours (DIP with ``seeds``; bicubic) for some."""
    rows = []
    base = {"baby": 31.0, "bird": 32.0, "butterfly": 26.0, "head": 31.5, "woman": 29.0}
    for image, psnr in base.items():
        rows.append({"image": image, "method": "dip", "source": "released", "psnr": psnr, "seed": None})
        rows.append({"image": image, "method": "bicubic", "source": "released", "psnr": psnr - 2, "seed": None})
        if image in ours_images:
            rows += [{"image": image, "method": "dip", "source": "ours", "psnr": psnr - 0.5 + 0.2 * seed, "seed": seed}
                     for seed in seeds]
            rows.append({"image": image, "method": "bicubic", "source": "ours", "psnr": psnr - 2, "seed": 0})
    frame = pd.DataFrame(rows).assign(dataset="set5", task="sr", level=4.0, ssim=0.9, iterations=None, seconds=None)
    return frame[scoring.COLUMNS]


def test_results_table_with_mean_only_paper_rows():
    reported, _, _ = tables.load_paper_numbers(PAPER_NUMBERS)
    table = tables.results_table(_set5(), reported, "set5", "sr", 4)
    assert list(table.columns) == ["baby", "bird", "butterfly", "head", "woman", "mean, all 5 images"]
    assert not table.attrs["subset"]
    paper = table.xs("paper", level="source")
    assert paper.loc["DIP", "mean, all 5 images"] == 29.90 and np.isnan(paper.loc["DIP", "baby"])
    assert paper.loc["SRResNet-MSE", "mean, all 5 images"] == 32.10
    dip = table.xs("DIP", level="method")
    assert list(dip.index) == ["ours", "ours, seed std", "released", "paper"]
    assert dip.loc["released", "mean, all 5 images"] == pytest.approx(29.9)
    assert dip.loc["ours", "mean, all 5 images"] == pytest.approx(29.5)
    # the spread of the per-seed means of the 5 images (every image ran seeds 0 and 1: 29.4 and 29.6)
    assert dip.loc["ours, seed std", "mean, all 5 images"] == pytest.approx(0.2 / 2**0.5)


def test_results_table_compares_a_subset_on_the_same_images():
    # A CPU run of 4 of Set5's 5 images: every row is shown on those 4 and averaged over them; the full-set means
    # (the released outputs', the paper's) are a column of their own.
    reported, _, _ = tables.load_paper_numbers(PAPER_NUMBERS)
    four = ("butterfly", "head", "bird", "woman")
    table = tables.results_table(_set5(four), reported, "set5", "sr", 4)
    assert list(table.columns) == ["bird", "butterfly", "head", "woman", "mean, 4 of 5 images", "mean, all 5 images"]
    assert table.attrs["subset"] and table.attrs["images"] == ["bird", "butterfly", "head", "woman"]
    dip = table.xs("DIP", level="method")
    assert list(dip.index) == ["ours", "ours, seed std", "released", "paper"]
    assert dip.loc["released", "butterfly"] == 26.0 and dip.loc["ours", "butterfly"] == pytest.approx(25.6)
    assert dip.loc["released", "mean, 4 of 5 images"] == pytest.approx((32.0 + 26.0 + 31.5 + 29.0) / 4)
    assert dip.loc["ours", "mean, 4 of 5 images"] == pytest.approx((32.0 + 26.0 + 31.5 + 29.0) / 4 - 0.4)
    assert dip.loc["released", "mean, all 5 images"] == pytest.approx(29.9)  # the 5-image mean, apart
    assert dip.loc["paper", "mean, all 5 images"] == 29.90 and dip.loc["paper"].iloc[:5].isna().all()
    assert np.isnan(dip.loc["ours", "mean, all 5 images"])
    bicubic = table.xs("Bicubic", level="method")
    assert bicubic.loc["released", "mean, all 5 images"] == pytest.approx(27.9)
    assert bicubic.loc["paper", "mean, all 5 images"] == 28.43


def test_every_mean_of_a_table_is_over_the_images_of_its_neighbours():
    # ours covers 2 of 3 images; the released row has all 3 (the third far off, so a mean over it would show)
    rows = [{"image": i, "method": "dip", "source": "ours", "psnr": p, "seed": 0}
            for i, p in (("a", 30.0), ("b", 32.0))]
    rows += [{"image": i, "method": "dip", "source": "released", "psnr": p, "seed": None}
             for i, p in (("a", 29.0), ("b", 31.0), ("c", 45.0))]
    rows += [{"image": i, "method": "nlm", "source": "released", "psnr": p, "seed": None}
             for i, p in (("a", 27.0), ("b", 28.0), ("c", 40.0))]
    frame = pd.DataFrame(rows).assign(dataset="photos", task="denoise", level=25.0, ssim=0.9, iterations=None,
                                      seconds=None)[scoring.COLUMNS]  # fmt: skip
    table = tables.results_table(frame, None, "photos", "denoise", 25)
    assert list(table.columns) == ["a", "b", "mean, 2 of 3 images", "mean, all 3 images"]
    for key, row in table.iterrows():  # every row's mean is over the same 2 images
        assert row["mean, 2 of 3 images"] == pytest.approx((row["a"] + row["b"]) / 2), key
    assert table.loc[("DIP", "released"), "mean, all 3 images"] == pytest.approx(35.0)  # apart, labelled so
    assert table.loc[("NLM", "released"), "mean, all 3 images"] == pytest.approx(95 / 3)


def test_a_seed_spread_sits_under_the_image_that_ran_with_several_seeds(tmp_path):
    # Set5 x4 with head run with seeds 0, 1, 2 and the others with seed 0 (the CPU slice, extended)
    frame = _set5(("bird", "head"), seeds=(0,))
    head = frame[(frame.image == "head") & (frame.method == "dip") & (frame.source == "ours")]
    frame = pd.concat([frame, head.assign(seed=1, psnr=head.psnr + 0.1), head.assign(seed=2, psnr=head.psnr + 0.2)])
    table = tables.results_table(frame, None, "set5", "sr", 4)
    spread = table.loc[("DIP", "ours, seed std")]
    assert spread["head"] == pytest.approx(0.1) and np.isnan(spread["bird"])  # bird ran once: no spread
    assert np.isnan(spread["mean, 2 of 5 images"])  # the images ran with different seeds: no spread of the mean
    assert table.loc[("DIP", "ours"), "head"] == pytest.approx(31.1)  # the mean over the 3 seeds
    assert table.attrs["seed_counts"] == {("DIP", "ours, seed std"): {"head": 3}}
    assert ("Bicubic", "ours, seed std") not in table.index  # run once: no spread row
    writers.write_table(table, md=tmp_path / "t.md", tex=tmp_path / "t.tex", csv=tmp_path / "t.csv")
    assert "| DIP | ours, seed std | – | 0.10 (n=3) | – | – |" in (tmp_path / "t.md").read_text()
    assert "0.10 (n=3)" in (tmp_path / "t.tex").read_text()
    csv = pd.read_csv(tmp_path / "t.csv").set_index(["method", "source"])
    assert csv.loc[("DIP", "ours, seed std"), "head"] == pytest.approx(0.1)  # numbers stay numbers
    assert csv.loc[("DIP", "ours, seeds"), "head"] == 3 and np.isnan(csv.loc[("DIP", "ours, seeds"), "bird"])


def test_results_table_subset_averages_per_image_paper_rows_over_the_same_images():
    reported, _, _ = tables.load_paper_numbers(PAPER_NUMBERS)
    frame = gray11_scores()[lambda f: ~((f.source == "ours") & (f.image == "boat"))]  # ours: barbara only; released: both
    table = tables.results_table(frame, reported, "gray11", "inpaint", 0.5)
    assert list(table.columns) == ["Barbara", "mean, all 11 images"]  # one image shown: it is its own mean
    dip = table.xs("DIP", level="method")
    assert dip.loc["paper", "Barbara"] == 32.22  # the paper's Barbara, beside ours
    assert dip.loc["released", "Barbara"] == 31.0
    assert dip.loc["paper", "mean, all 11 images"] == pytest.approx(33.48, abs=0.005)
    assert table.loc[("Papyan et al.", "paper"), "mean, all 11 images"] == pytest.approx(31.19, abs=0.005)


def test_results_table_mean_needs_every_image_of_the_row():
    frame = gray11_scores()[lambda f: ~((f.method == "papyan") & (f.image == "boat"))]
    table = tables.results_table(frame, None, "gray11", "inpaint", 0.5)
    assert np.isnan(table.loc[("Papyan et al.", "released"), "mean, 2 of 11 images"])  # never over fewer images
    assert table.loc[("Papyan et al.", "released"), "Barbara"] == 29.0


@pytest.mark.parametrize("ours", [("bird", "head"), ("baby", "bird", "butterfly", "head", "woman")])
def test_captions_are_short_and_hold_no_numbers(ours):
    reported, _, _ = tables.load_paper_numbers(PAPER_NUMBERS)
    table = tables.results_table(_set5(ours), reported, "set5", "sr", 4)
    caption = tables.table_caption("set5", "sr", 4, table)
    assert caption.count(". ") + 1 <= 2 and len(caption.split()) <= 50, caption
    assert "Y channel" in caption and "Set5" in caption
    assert ("2 of 5" in caption) == (len(ours) == 2)
    assert not any(c in caption for c in ("28.43", "29.90", "32.10"))  # the paper's means are in the table
    assert len(tables.EARLY_STOPPING_CAPTION.split()) <= 70
    ours_only = tables.results_table(_set5(ours)[lambda f: f.source == "ours"], None, "set5", "sr", 4)
    assert "released" not in tables.table_caption("set5", "sr", 4, ours_only)  # it names only the rows it has


def _es_record(folder, image, seed, detected, psnr_fixed, history, *, triggered=False, iterations=2000,
               averaged=False, dataset="set5", task="sr", level_dir="x4", level=4.0):
    path = folder / dataset / task / level_dir / "dip" / f"{image}_seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    es = {"detected_step": detected, "iterations_done": iterations, "triggered": triggered, "psnr_detected": 20.0,
          "psnr_final": psnr_fixed, "psnr_peak_logged": 99.0, "peak_step_logged": 7}
    path.write_text(json.dumps({"config": {"iterations": iterations, "exp_weight": 0.99 if averaged else None},
                                "seed": seed, "spec": {"level": level}, "summary": {"iterations_done": iterations},
                                "history": history, "early_stopping": es}))
    return path


def test_early_stopping_table_agrees_with_the_other_tables(tmp_path):
    # SR, no averaging: the logged raw curve (made with a perturbed input) stays below the returned output
    sr_curve = [{"step": s, "psnr_gt": 24.0 + s / 10000, "psnr_gt_avg": None} for s in range(0, 2000, 50)]
    # denoising, averaged: the averaged curve peaks at step 1400 above the fixed step's 31.78; the raw one is lower
    dn_curve = [{"step": s, "psnr_gt": 30.0, "psnr_gt_avg": 32.06 - abs(s - 1400) / 2000} for s in range(0, 1800, 50)]
    paths = [
        _es_record(tmp_path, "butterfly", 0, 1998, 24.91, sr_curve),
        _es_record(tmp_path, "head", 0, 999, 28.45, sr_curve, triggered=True),
        _es_record(tmp_path, "hill", 0, 1059, 31.78, dn_curve, iterations=1800, averaged=True, dataset="color9",
                   task="denoise", level_dir="sigma25", level=25.0),
    ]
    sr = {"dataset": "set5", "task": "sr", "level": 4.0, "source": "ours", "seed": 0}
    scores = pd.DataFrame(
        [{**sr, "image": i, "method": m, "psnr": p}
         for i, m, p in (("butterfly", "dip", 26.58), ("butterfly", "dip_es", 26.23), ("head", "dip", 31.14),
                         ("head", "dip_es", 31.03))]
        + [{"dataset": "color9", "task": "denoise", "level": 25.0, "image": "hill", "source": "ours", "seed": 0,
            "method": m, "psnr": p} for m, p in (("dip", 31.77), ("dip_es", 30.17))]
    )
    table = tables.early_stopping_table(paths, scores)
    assert list(table.index.names) == ["setting", "image", "seed"]
    assert list(table.columns) == ["steps", "ES-WMV", "ES output at", "PSNR, fixed step", "PSNR, ES output",
                                   "ES - fixed", "oracle - fixed (RGB)", "oracle at"]
    butterfly, head, house = (table.xs(i, level="image").iloc[0] for i in ("butterfly", "head", "House"))
    assert "hill" not in table.index.get_level_values("image")  # the display name, as in the other tables
    # the tables' metric: the dip and dip_es rows of the score CSVs (Y channel for SR), not the record's RGB PSNR
    assert butterfly["PSNR, fixed step"] == 26.58 and butterfly["PSNR, ES output"] == 26.23
    assert butterfly["ES - fixed"] == pytest.approx(-0.35)
    assert butterfly["ES-WMV"] == "not triggered" and head["ES-WMV"] == "triggered"
    assert butterfly["ES output at"] == 1999 and head["ES output at"] == 1000  # iterations, 1-based
    # the oracle: the best of the returned output along its logged curve, never below the fixed step
    assert (table["oracle - fixed (RGB)"] >= 0).all()
    assert butterfly["oracle - fixed (RGB)"] == 0 and butterfly["oracle at"] == 2000  # the returned output itself
    assert house["oracle - fixed (RGB)"] == pytest.approx(32.06 - 31.78) and house["oracle at"] == 1401
    md = writers.to_markdown(table, tables.EARLY_STOPPING_CAPTION)
    assert "| Set5, x4 | butterfly | 0 | 2000 | not triggered | 1999 | 26.58 | 26.23 | -0.35 | 0.00 | 2000 |" in md
    assert "| 9 colour images, sigma = 25 | House | 0 | 1800 | not triggered | 1060 | 31.77 | 30.17 |" in md
    # without scores there is no PSNR of the tables' metric to show: empty, never the record's RGB PSNR instead
    assert tables.early_stopping_table(paths)["PSNR, fixed step"].isna().all()


def test_the_auto_stop_rows_sit_beside_dip_and_say_what_a_logged_value_is():
    base = {"dataset": "color9", "task": "denoise", "level": 25.0, "source": "ours", "seed": 0, "ssim": 0.9,
            "iterations": 1800, "seconds": None}
    frame = pd.DataFrame([{**base, "image": "hill", "method": m, "psnr": p}
                          for m, p in (("dip", 31.77), ("dip_auto_logged", 32.04), ("dip_es", 30.17), ("cbm3d", 32.87))],
                         columns=scoring.COLUMNS)  # fmt: skip
    table = tables.results_table(frame, None, "color9", "denoise", 25)
    methods = list(table.index.get_level_values("method"))
    assert methods == ["CBM3D", "DIP", "DIP (auto stop, logged PSNR)", "DIP + early stop"]
    assert table.loc[("DIP (auto stop, logged PSNR)", "ours"), "House"] == 32.04
    notes = tables.table_notes("denoise", table)
    assert any(n.startswith("DIP (auto stop, logged PSNR): the PSNR each DIP fit logged") for n in notes), notes
    assert "logged" not in tables.table_caption("color9", "denoise", 25, table)  # the caption stays short
    scored = frame.replace({"method": {"dip_auto_logged": "dip_auto"}})  # an image scored: nothing logged to explain
    notes = tables.table_notes("denoise", tables.results_table(scored, None, "color9", "denoise", 25))
    assert not any("logged" in n for n in notes) and any(n.startswith("DIP (auto stop): the image") for n in notes)
    assert tables.METHOD_LABELS["dip_auto"] == "DIP (auto stop)"


def test_the_notes_say_where_the_auto_stop_equals_dip_and_where_the_budget_overfits(tmp_path):
    base = {"dataset": "color9", "task": "denoise", "level": 50.0, "source": "ours", "seed": 0, "ssim": 0.9,
            "seconds": None}
    rows = [{**base, "image": "hill", "method": "dip", "psnr": 22.86, "iterations": 3000},
            {**base, "image": "hill", "method": "dip_auto", "psnr": 28.62, "iterations": 1650}]
    table = tables.results_table(pd.DataFrame(rows, columns=scoring.COLUMNS), None, "color9", "denoise", 50)
    notes = tables.table_notes("denoise", table)
    assert any("House: DIP at the preset's 3000 steps overfits the noise (22.86 dB, against 28.62 where the auto "
               "stop ends it, after 1650 steps)" in n for n in notes), notes
    close = [{**rows[0]}, {**rows[1], "psnr": 23.0}]  # within 1 dB: no overfitting said
    table = tables.results_table(pd.DataFrame(close, columns=scoring.COLUMNS), None, "color9", "denoise", 50)
    assert not any("overfits" in n for n in tables.table_notes("denoise", table))
    sr = [{**rows[0], "dataset": "set5", "task": "sr", "level": 4.0, "image": "head"}]  # no auto row: it equals DIP
    table = tables.results_table(pd.DataFrame(sr, columns=scoring.COLUMNS), None, "set5", "sr", 4)
    assert tables.table_notes("sr", table) == [
        "DIP (auto stop) equals DIP here (its rule for super-resolution runs the preset's budget), so it has no row "
        "of its own."]
    writers.write_table(table, md=tmp_path / "t.md", tex=tmp_path / "t.tex", notes=tables.table_notes("sr", table))
    assert (tmp_path / "t.md").read_text().rstrip().endswith("so it has no row of its own.")
    assert "so it has no row of its own." in (tmp_path / "t.tex").read_text()
