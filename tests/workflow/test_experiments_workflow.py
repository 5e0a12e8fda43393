"""The paper's other experiments in the workflow (workflow/rules/experiments.smk): the `experiments` target of the tiny
test config with every experiment on tiny crops (tests.helpers.TINY_EXPERIMENTS, layered on .test/config), dry-run
and linted, and run end to end on the reference repository's files served from the benchmark mirror (slow). The
plan itself (which jobs, which files) is unit-tested in tests/unit/test_plan.py."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.helpers import TEST_CONFIG, job_counts, scratch, snakemake, tiny_experiments_config


def test_experiments_dry_run_and_lint(tmp_path):
    work = scratch(tmp_path)
    layers = [str(TEST_CONFIG), str(tiny_experiments_config(work))]
    # (the target goes first: --configfile takes several values)
    counts = job_counts(snakemake(work, "experiments", "-n", "--cores", "2", "--configfile", *layers).stdout)
    for rule in (
        "download_experiment_data",
        "experiment_jpeg",
        "experiment_jpeg_report",
        "experiment_architectures",
        "experiment_preimage",
        "score_es_photos_denoise_sigma25",
    ):
        assert counts[rule] == 1, rule
    # the early-stopping table shows the tables' DIP rows: the default target's (their scores need the baselines)
    assert "early_stop_table" not in counts and "baseline" not in counts
    assert counts["experiment_architecture"] == 4 and counts["fit_dip"] == 4 and counts["total"] == 27
    lint = snakemake(work, "--lint", "--configfile", *layers, check=False)
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr


@pytest.mark.slow(seconds=100)
def test_every_experiment_end_to_end(tmp_path, mirror_url):
    work = scratch(tmp_path)
    layers = [str(TEST_CONFIG), str(tiny_experiments_config(work, mirror_url))]
    es_table = "results/tables/experiments/early_stopping.md"
    snakemake(work, "experiments", es_table, "--cores", "2", "--configfile", *layers, timeout=1800)
    res = work / "results"
    for name in ("jpeg", "inpaint_text", "inpaint_hole", "architectures", "flash", "sr_prior", "preimage"):
        assert (res / f"figures/experiments/{name}.png").stat().st_size > 1000, name
        table = pd.read_csv(res / f"tables/experiments/{name}.csv")
        assert len(table), name
    arch = pd.read_csv(res / "tables/experiments/architectures.csv")
    assert list(arch["method"]) == ["depth2", "depth6", "unet", "resnet"]
    sr = pd.read_csv(res / "tables/experiments/sr_prior.csv")
    assert set(sr["method"]) == {"bicubic", "no_prior", "tv_prior", "dip"}
    es = pd.read_csv(res / "scores/extra/photos/denoise_sigma25_es.csv")
    assert set(es["method"]) == {"dip_es", "dip_es_ensemble"} and es["psnr"].notna().all()
    # recorded by the core fit itself (one fit per image): its record and the output at the detected step
    record = json.loads((res / "restored/photos/denoise/sigma25/dip/coffee_seed0.json").read_text())
    assert record["early_stopping"]["detected_step"] is not None
    assert record["early_stopping"]["iterations_done"] == record["summary"]["iterations_done"]
    es_png = res / "restored/photos/denoise/sigma25/dip/coffee_seed0_es.png"
    assert es_png.stat().st_size > 1000
    assert not (res / "restored/photos/denoise/sigma25/dip_es").exists()
    assert (work / es_table).read_text().count("| photos, sigma = 25 |") == 4  # one row per fit
