"""The auto stop's own image from the workflow's fits: a denoising fit runs its budget and keeps the image at the step
where the auto-stop rule fires (``<image>_seed<N>_auto.png``, named in its record); the score job scores it in the
table's metric, the grid shows it, and a task whose rule runs the budget (SR) gets no auto-stop row repeating DIP's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.helpers import scratch, snakemake

pytestmark = pytest.mark.slow

CONFIG = """
results_dir: results
resources_dir: resources
manifest: config/manifest/benchmarks.tsv
paper_numbers: config/paper_numbers.yaml
degrade_seed: 0
datasets:
  photos: {source: embedded, images: [astronaut], size: 64}
experiments:
  - dataset: photos
    task: denoise
    levels: [50]
    seeds: [0]
    baselines: []
    dip:
      preset: denoise
      width: 32
      settings: {iterations: 700, lr: 0.02, exp_weight: 0.9, log_every: 10, device: cpu}
  - dataset: photos
    task: sr
    levels: [4]
    seeds: [0]
    baselines: [bicubic]
    dip:
      width: 8
      settings: {iterations: 10, log_every: 5, device: cpu}
released: {}
learning_curves: null
paper_experiments: {}
figures: {grid_max_images: 1}
fit_resources: {threads: 1, mem_mb: 1000, runtime: 10, gpu: 0}
baseline_resources: {threads: 1, mem_mb: 1000, runtime: 10, gpu: 0}
"""


@pytest.mark.slow(seconds=90)
def test_the_auto_stop_image_is_kept_scored_shown_and_equals_a_fit_stopped_there(tmp_path):
    from dip.data.imageio import read_image, write_image
    from dip.eval.scoring import score_image
    from dip.presets import config_from_spec
    from dip.restore import restore

    work = scratch(tmp_path)
    (work / "auto.yaml").write_text(CONFIG)
    snakemake(work, "--cores", "1", "--configfile", "auto.yaml", timeout=900)
    res = work / "results"
    fit = res / "restored/photos/denoise/sigma50/dip/astronaut_seed0"
    record = json.loads(fit.with_suffix(".json").read_text())
    auto = record["auto_stop"]
    assert auto["fired"] and auto["stop_step"] < auto["last_step"] == 699, auto  # fired before the budget
    kept = fit.with_name(auto["image"])
    assert kept.name == "astronaut_seed0_auto.png" and kept.is_file()

    # the same pixels as a fit of the same spec and inputs that obeyed the rule (stopped there), on as many threads as
    # the job had (fit_resources threads 1: CPU sums split otherwise and the curve drifts by a log step)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    inputs = res / "inputs/photos/denoise/sigma50/astronaut"
    try:
        obeyed = restore("denoise", read_image(inputs / "observation.png"), config=config_from_spec(record["spec"]),
                         ground_truth=read_image(inputs / "gt.png"), auto_stop=True)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert obeyed.iterations_done == auto["stop_step"] + 1
    write_image(tmp_path / "obeyed.png", obeyed.output)
    assert np.array_equal(read_image(tmp_path / "obeyed.png"), read_image(kept))

    # scored in the table's metric (full-image PSNR of the kept PNG), at its step; the table and the grid show it
    scores = pd.read_csv(res / "scores/ours/photos/denoise_sigma50.csv")
    row = scores[scores.method == "dip_auto"].iloc[0]
    psnr, _ = score_image("denoise", read_image(inputs / "gt.png"), read_image(kept))
    assert row.psnr == pytest.approx(psnr, abs=1e-4) and row.iterations == auto["stop_step"] + 1
    assert row.psnr != scores[scores.method == "dip"].psnr.iloc[0]
    assert "| DIP (auto stop) | ours |" in (res / "tables/photos/denoise_sigma50.md").read_text()
    grid_log = (res / "logs/figures/photos/denoise_sigma50_grid.log").read_text()
    assert "astronaut_seed0_auto.png" in grid_log

    # SR: the rule runs the budget there, so no auto-stop row repeats DIP's; the notes say why
    sr = pd.read_csv(res / "scores/ours/photos/sr_x4.csv")
    assert "dip" in set(sr.method) and not {"dip_auto", "dip_auto_logged"} & set(sr.method)
    assert not (res / "restored/photos/sr/x4/dip/astronaut_seed0_auto.png").exists()
    table = (res / "tables/photos/sr_x4.md").read_text()
    assert "auto stop" not in table.split("\n\n")[1] and "DIP (auto stop) equals DIP here" in table
