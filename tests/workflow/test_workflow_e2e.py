"""End-to-end runs of the workflow (slow): the tiny test config through every stage and the report, and the paper
config's download + `released` against the benchmark mirror served on 127.0.0.1 (checksums, the paper's numbers
from the released outputs, a wrong checksum and an unreachable URL)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.helpers import REPO, closed_port_url, job_counts, scratch, snakemake

pytestmark = pytest.mark.slow

TEST_CONFIG = str(REPO / ".test" / "config" / "config.yaml")


@pytest.mark.slow(seconds=170)
def test_tiny_end_to_end(tmp_path):
    work = scratch(tmp_path)
    snakemake(work, "--cores", "2", "--configfile", TEST_CONFIG, timeout=1200)
    res = work / "results"
    metrics = pd.read_csv(res / "metrics.csv")
    for column in ("dataset", "image", "task", "level", "method", "source", "psnr", "ssim", "seed", "iterations",
                   "seconds"):
        assert column in metrics.columns
    assert set(metrics.task) == {"denoise", "sr", "inpaint"}
    assert set(metrics.source) == {"ours"}
    dip = metrics[metrics.method == "dip"]
    assert len(dip) == 2 * (2 + 1 + 1) and dip.psnr.notna().all() and (dip.iterations == 20).all()
    assert {"input", "nlm", "cbm3d", "dip_ensemble", "bicubic", "biharmonic", "tv_prior"} <= set(metrics.method)
    for stem in ("photos/denoise_sigma25", "photos/sr_x4", "photos/inpaint_missing50"):
        for ext in ("md", "tex", "csv"):
            assert (res / "tables" / f"{stem}.{ext}").stat().st_size > 100
        for kind in ("grid", "psnr"):
            assert (res / "figures" / f"{stem}_{kind}.png").is_file()
            assert (res / "figures" / f"{stem}_{kind}.pdf").is_file()
    assert (res / "figures/learning_curves.pdf").is_file()
    assert (res / "figures/photos/denoise_sigma25_psnr_curves.png").is_file()
    record = json.loads((res / "restored/photos/sr/x4/dip/coffee_seed0.json").read_text())
    assert record["config"]["seed"] == 0 and record["history"] and "environment" in record
    assert (res / "benchmarks/fit/photos/sr/x4/dip/coffee_seed0.tsv").is_file()
    assert (res / "logs/fit/photos/sr/x4/dip/coffee_seed0.log").stat().st_size > 0

    # the report holds every table and figure
    snakemake(work, "--configfile", TEST_CONFIG, "--report", "results/report.html")
    assert (res / "report.html").stat().st_size > 100_000

    # tables and figures regenerate from existing results without refitting
    (res / "tables/photos/sr_x4.md").unlink()
    (res / "figures/photos/sr_x4_grid.png").unlink()
    out = snakemake(work, "--cores", "2", "--configfile", TEST_CONFIG).stdout
    assert "fit_dip" not in out and "baseline" not in out and "degrade" not in out
    assert (res / "tables/photos/sr_x4.md").is_file() and (res / "figures/photos/sr_x4_grid.png").is_file()
    # rerun triggers: nothing to do when nothing changed; a changed DIP setting re-runs only those fits (params)
    assert "Nothing to be done" in snakemake(work, "-n", "--configfile", TEST_CONFIG).stdout
    changed = (REPO / ".test/config/config.yaml").read_text().replace("settings: {iterations: 20, log_every: 5",
                                                                      "settings: {iterations: 21, log_every: 5", 1)
    (work / "changed.yaml").write_text(changed)
    dry = snakemake(work, "-n", "--configfile", "changed.yaml").stdout
    counts = job_counts(dry)
    assert counts["fit_dip"] == 4  # the denoising fits (2 images x 2 seeds), nothing else refits
    assert "baseline" not in counts and "degrade_sr" not in counts and "learning_curve" not in counts
    # the record's spec differs from the plan's: the stale fit's marker (dip.pipeline.pins), newer than its outputs
    assert "changed_specs/fit_dip/" in dry


@pytest.mark.slow(seconds=60)
def test_paper_released_from_the_mirror(tmp_path, mirror_url):
    work = scratch(tmp_path)
    snakemake(work, "released", "--cores", "2", "--configfile", "config/paper.yaml", "--config",
              f"download_base_url={mirror_url}", timeout=1800)
    res = work / "results" / "paper"
    check = pd.read_csv(res / "tables/released_check.csv")
    assert len(check) == 10
    assert (check.ok == "yes").all(), check.to_string()
    assert check.difference.abs().max() <= 0.02
    scores = pd.concat(pd.read_csv(p) for p in (res / "scores/released").glob("*/*.csv"))
    means = scores.groupby(["dataset", "level", "method"]).psnr.mean().round(2)
    assert means[("set5", 4.0, "dip")] == 29.90 and means[("set14", 4.0, "srresnet_mse")] == 28.53
    assert means[("gray11", 0.5, "dip")] == 33.44 and means[("color9", 25.0, "cbm3d")] == 31.42
    # every downloaded file is there, with its checksum
    from dip.data.manifest import read_manifest, sha256sum

    manifest = read_manifest(REPO / "config/manifest/benchmarks.tsv")
    downloaded = [p for p in (work / "resources").rglob("*.png")]
    assert len(downloaded) == 40 * 2 + 112 * 2 + 45 * 2 + 55
    for path in downloaded[::25]:
        assert sha256sum(path) == manifest[str(path.relative_to(work / "resources"))]


@pytest.mark.slow(seconds=5)
def test_wrong_checksum_fails_and_leaves_no_file(tmp_path, mirror_url):
    work = scratch(tmp_path)
    manifest = (REPO / "config/manifest/benchmarks.tsv").read_text()
    victim = "SR/Set5/x4/baby_GT.png"
    lines = [
        line.split("\t")[0] + "\t" + "0" * 64 if line.split("\t")[0].endswith(victim) else line
        for line in manifest.splitlines()
    ]
    (work / "bad_manifest.tsv").write_text("\n".join(lines) + "\n")
    proc = snakemake(work, "download_set5_x4", "--cores", "1", "--configfile", "config/paper.yaml", "--config",
                     f"download_base_url={mirror_url}", "manifest=bad_manifest.tsv", check=False)
    assert proc.returncode != 0
    log = (work / "results/paper/logs/download/set5_x4.log").read_text()
    assert "checksum mismatch" in log and victim in log
    assert not list((work / "resources").rglob("baby_GT.png"))


@pytest.mark.slow(seconds=5)
def test_unreachable_url_fails_clearly(tmp_path):
    work = scratch(tmp_path)
    url = closed_port_url()
    proc = snakemake(work, "download_set5_x4", "--cores", "1", "--configfile", "config/paper.yaml", "--config",
                     f"download_base_url={url}", "download_retries=1", check=False)
    assert proc.returncode != 0
    log = (work / "results/paper/logs/download/set5_x4.log").read_text()
    assert f"cannot download {url}" in log
    assert "download_base_url=http://127.0.0.1:8000/" in log
    assert not list((work / "resources").rglob("*.png"))


@pytest.mark.slow(seconds=25)
def test_packed_fits_equal_lone_fits(tmp_path):
    # pack_fits: the 4 denoising fits of the test config (2 images x 2 seeds, one size) run as one fit_dip_pack job;
    # unpack_fit puts each fit's files where a lone fit_dip job writes them, with the same result up to float rounding.
    # Early stopping is configured: lone and packed fits alike record ES-WMV and write the detected-step output.
    targets = [f"results/restored/photos/denoise/sigma25/dip/{image}_seed{seed}.json"
               for image in ("astronaut", "coffee") for seed in (0, 1)]  # fmt: skip
    lone_dir, packed_dir = tmp_path / "lone", tmp_path / "packed"
    lone_dir.mkdir(), packed_dir.mkdir()
    es_config = tmp_path / "es.yaml"
    es_config.write_text("paper_experiments: {early_stopping: {window: 5, patience: 8, check_every: 2}}\n")
    # (targets first: --configfile and --config take several values)
    snakemake(scratch(lone_dir), *targets, "--cores", "2", "--configfile", TEST_CONFIG, str(es_config), timeout=600)
    snakemake(scratch(packed_dir), *targets, "--cores", "2", "--configfile", TEST_CONFIG, str(es_config),
              "--config", "pack_fits=4", timeout=600)  # fmt: skip
    pack = packed_dir / "results/restored/photos/denoise/sigma25/dip_packs/pack0"
    assert sorted(p.name for p in pack.glob("*.png")) == sorted(
        f"{i}_seed{s}{suffix}.png" for i in ("astronaut", "coffee") for s in (0, 1) for suffix in ("", "_raw", "_es"))
    for target in targets:
        lone = json.loads((lone_dir / target).read_text())
        packed = json.loads((packed_dir / target).read_text())
        assert packed["pack"]["size"] == 4 and "pack" not in lone
        assert packed["seed"] == lone["seed"] and packed["spec"] == lone["spec"]
        assert [r["step"] for r in packed["history"]] == [r["step"] for r in lone["history"]]
        assert abs(packed["summary"]["final"]["psnr_gt_avg"] - lone["summary"]["final"]["psnr_gt_avg"]) < 0.05, target
        assert (packed_dir / target).with_suffix(".png").is_file()
        assert (packed_dir / target.replace(".json", "_raw.png")).is_file()
        for rec, folder in ((lone, lone_dir), (packed, packed_dir)):
            es = rec["early_stopping"]
            assert es["window"] == 5 and 4 <= es["detected_step"] < es["iterations_done"] == 20, target
            assert (folder / target.replace(".json", "_es.png")).stat().st_size > 1000
    assert (packed_dir / "results/logs/fit/photos/denoise/sigma25/dip_packs/pack0.log").stat().st_size > 0
