"""The Snakemake workflow: formatting, lint, config validation and the job graphs of the shipped configurations (dry
runs), which must be the planner's (dip.pipeline.plan) job for job.

Each test runs snakemake in a subprocess from a scratch folder that links the repository's config/ (so nothing is
written into the checkout) with `--workflow-profile none`.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from dip.pipeline.plan import build_plan
from tests.helpers import (
    REPO,
    TEST_CONFIG,
    dry_run_jobs,
    exe,
    job_counts,
    paper_cpu_fits,
    scratch,
    snakemake,
    workflow_config,
)


def planned_jobs(monkeypatch, *configfiles, target="all", **overrides) -> dict:
    """The planner's jobs for a config, as dry_run_jobs lists a dry run's."""
    monkeypatch.chdir(REPO)  # the manifest is named relative to the working directory
    plan = build_plan(workflow_config(*configfiles, **overrides))
    jobs: dict = {}
    for job in plan.dag(target):
        key = (job.rule, tuple(sorted(job.outputs)))
        jobs[key] = jobs.get(key, 0) + 1
    return jobs


def test_snakefmt_check():
    proc = subprocess.run(
        [exe("snakefmt"), "--check", "Snakefile", "workflow"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lint_is_clean():
    # From the repository root with no arguments, as the workflow catalog runs it (default config).
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_lint_paper_config():
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--configfile", "config/paper.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_common_smk_is_the_plan_and_input_functions():
    # the DAG's logic lives in dip.pipeline.plan (unit-tested); common.smk only builds the plan and reads it
    assert len((REPO / "workflow/rules/common.smk").read_text().splitlines()) <= 200


def test_default_config_dry_run(tmp_path, monkeypatch):
    out = snakemake(scratch(tmp_path), "-n", "--cores", "2").stdout
    assert dry_run_jobs(out) == planned_jobs(monkeypatch)
    counts = job_counts(out)
    assert counts["fit_dip"] == 9  # 3 photos x 3 tasks, one seed
    assert counts["degrade_denoise"] == counts["degrade_sr"] == counts["degrade_inpaint"] == 3
    assert counts["baseline"] == 3 * 5  # cbm3d, nlm | bicubic, tv_prior | biharmonic
    assert counts["learning_curve"] == 4
    assert counts["table"] == 3 and counts["figure_grid"] == 3
    assert not any(rule.startswith("download") for rule in counts), "the default config must need no network"
    assert "score_released" not in counts


def test_paper_config_dry_run(tmp_path, monkeypatch):
    out = snakemake(scratch(tmp_path), "-n", "--cores", "2", "--configfile", "config/paper.yaml").stdout
    assert dry_run_jobs(out) == planned_jobs(monkeypatch, "config/paper.yaml")
    counts = job_counts(out)
    # one fit per image x task x level: Set5 (5) and Set14 (14) at x4 and x8, 9 colour images at sigma 25 and 50,
    # 11 grey images at 50% missing
    assert counts["fit_dip"] == (5 + 14) * 2 + 9 * 2 + 11 == 67
    assert counts["degrade_sr"] == 38 and counts["degrade_denoise"] == 18 and counts["degrade_inpaint"] == 11
    assert counts["score_released"] == 7 and counts["released_check"] == 1
    assert sorted(r for r in counts if r.startswith("download_")) == sorted(
        [
            "download_color9_sigma25",
            "download_color9_sigma50",
            "download_gray11_missing50",
            "download_set14_x4",
            "download_experiment_data",
            "download_set14_x8",
            "download_set5_x4",
            "download_set5_x8",
        ]
    )
    # the paper's other experiments (workflow/rules/experiments.smk) and the early-stopping rows
    # ES-WMV is recorded inside the core fits: no second fit per image, no separate early-stop fit rule
    assert "fit_dip_es" not in counts and counts["score_es_color9_denoise_sigma25"] == 1
    assert re.search(r"rule fit_dip:.*?output:[^\n]*_seed0_es\.png", out, re.S)
    for rule in (
        "experiment_jpeg",
        "experiment_inpaint_text",
        "experiment_inpaint_hole",
        "experiment_flash",
        "experiment_sr_prior",
        "early_stop_table",
    ):
        assert counts[rule] >= 1, rule
    assert counts["table"] == 7 and counts["total"] == 377
    assert "results/paper/metrics.csv" in out
    # the fits of the paper config ask for a GPU
    assert re.search(r"rule fit_dip:.*?resources:[^\n]*gpu=1", out, re.S)


def test_paper_config_packs_fits_of_one_shape(tmp_path, monkeypatch):
    out = snakemake(
        scratch(tmp_path), "-n", "--cores", "2", "--configfile", "config/paper.yaml", "--config", "pack_fits=4"
    ).stdout
    assert dry_run_jobs(out) == planned_jobs(monkeypatch, "config/paper.yaml", pack_fits=4)
    counts = job_counts(out)
    # Sizes from the manifest: e.g. colour sigma 25 has four 512x512 and four 768x512 images (2 packs, 1 lone fit);
    # Set5's five sizes all differ (5 lone fits). Every fit is made once, by fit_dip or by a pack + unpack_fit.
    assert counts["fit_dip"] == 28 and counts["fit_dip_pack"] == 11 and counts["unpack_fit"] == 39
    packs = re.findall(r"rule fit_dip_pack:\n(?:.*\n)*?\s+output: (\S+)", out)
    assert "results/paper/restored/color9/denoise/sigma25/dip_packs/pack1" in packs
    assert not any("/set5/" in p for p in packs)
    # a pack asks for one GPU and what its fits would ask for one after another
    assert re.search(r"rule fit_dip_pack:.*?resources:[^\n]*gpu=1", out, re.S)
    assert "Exception" not in out  # lone fits are routed to fit_dip without noise


def test_paper_experiments_target(tmp_path, monkeypatch):
    # (the target goes first: --configfile takes several values)
    out = snakemake(scratch(tmp_path), "experiments", "-n", "--cores", "2", "--configfile", "config/paper.yaml").stdout
    assert dry_run_jobs(out) == planned_jobs(monkeypatch, "config/paper.yaml", target="experiments")
    assert job_counts(out)["total"] == 171


def test_released_target_needs_no_fit(tmp_path):
    out = snakemake(scratch(tmp_path), "released", "-n", "--cores", "2", "--configfile", "config/paper.yaml").stdout
    counts = job_counts(out)
    assert "fit_dip" not in counts and "baseline" not in counts and "degrade_sr" not in counts
    assert counts["score_released"] == 7 and counts["released"] == 1


def test_paper_cpu_slice(tmp_path, monkeypatch):
    # config/paper-cpu.yaml layered on config/paper.yaml: `null` turns the learning curves and the other experiments off
    out = snakemake(
        scratch(tmp_path), "-n", "--cores", "2", "--configfile", "config/paper.yaml", "config/paper-cpu.yaml"
    ).stdout
    assert dry_run_jobs(out) == planned_jobs(monkeypatch, "config/paper.yaml", "config/paper-cpu.yaml")
    counts = job_counts(out)
    fits = paper_cpu_fits()  # what its only: names (the committed slice, growing)
    assert counts["fit_dip"] == len(fits)
    set5_x4 = [f for f in fits if f[:2] == ("set5", "x4")]
    assert len(re.findall(r"rule fit_dip:\n(?:    .*\n)*?    wildcards: dataset=set5, task=sr, level=x4", out)) == len(set5_x4)
    assert "learning_curve" not in counts and "figure_learning_curves" not in counts
    assert not any(rule.startswith("experiment") for rule in counts)


def test_test_config_dry_run(tmp_path, monkeypatch):
    out = snakemake(scratch(tmp_path), "-n", "--cores", "2", "--configfile", str(TEST_CONFIG)).stdout
    assert dry_run_jobs(out) == planned_jobs(monkeypatch, TEST_CONFIG)
    assert job_counts(out)["fit_dip"] == 2 * (2 + 1 + 1)  # 2 images; denoising with two seeds


@pytest.mark.parametrize(
    "override,message",
    [
        ("experiments: [{dataset: photos, task: deblur, levels: [1]}]", "deblur"),
        ("download_base_url: ftp://example.org/", "download_base_url"),
        ("experiments: [{dataset: nowhere, task: sr, levels: [4]}]", "nowhere"),
        ("experiments: [{dataset: photos, task: sr, levels: [3.5]}]", "SR level"),
        ("experiments: [{dataset: photos, task: sr, levels: [4], baselines: [cbm3d]}]", "cbm3d"),
        ("released: {set5: [3]}", "no level"),
        ("fit_resources: {threads: 0}", "threads"),
        ("learning_curves: {dataset: photos, image: lena}", "no image 'lena'"),
    ],
)
def test_bad_config_is_refused(tmp_path, override, message):
    work = scratch(tmp_path)
    (work / "bad.yaml").write_text(override + "\n")
    proc = snakemake(work, "-n", "--cores", "1", "--configfile", "bad.yaml", check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def test_default_profile_is_portable():
    lines = (REPO / "profiles/default/profile.yaml").read_text().splitlines()
    settings = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    assert "executor" not in settings and "slurm" not in settings.lower()
    assert not (REPO / "profiles/default/config.yaml").exists()


def test_default_profile_loads_from_the_repository_root():
    # Snakemake looks for profiles/default beside the Snakefile it runs (here the root one) and in the working dir
    proc = subprocess.run([exe("snakemake"), "-n", "--cores", "1"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Using workflow specific profile profiles/default" in proc.stdout + proc.stderr


def test_rules_have_log_and_env():
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        text = smk.read_text()
        if smk.name != "common.smk":
            assert "\ndef " not in text, f"{smk.name}: functions belong in common.smk"
        for block in re.split(r"\n(?=\s*rule\b)", text)[1:]:
            if "script:" in block or "shell:" in block:
                assert "log:" in block and "conda:" in block, block[:200]


def test_every_job_is_one_library_call():
    # no script shims: each rule's shell line runs its function in dip.pipeline.jobs (a script job re-runs whenever
    # its script is newer than its outputs, which a fresh clone decides at random)
    assert not (REPO / "workflow/scripts").exists()
    from dip.pipeline.jobs.runner import find

    plan = build_plan(workflow_config("config/paper.yaml"))
    for rule in {job.rule for job in plan.jobs()} - {"all", "experiments", "released"}:
        if not rule.startswith("download_"):
            assert callable(find(rule)), rule
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        assert "script:" not in smk.read_text(), smk.name


@pytest.mark.slow(seconds=15)
def test_slurm_dry_run_shows_each_fits_memory_and_runtime(tmp_path):
    """docs/SLURM.md: the dry run shows what would be submitted. The fits' memory and time are planned before
    submission (config `fit_resources`, `mem_mb: auto` per image), not expressions of input sizes left <TBD>."""
    profile = str(REPO / "profiles" / "slurm")
    work = scratch(tmp_path)
    (work / "auto.yaml").write_text("fit_resources: {mem_mb: auto, runtime: 7}\n")
    out = snakemake(work, "-n", "--workflow-profile", profile, "--configfile", str(TEST_CONFIG), "auto.yaml").stdout
    fits = re.findall(r"rule (?:fit_dip|learning_curve):\n(?:    .*\n)*?\s+resources: (.*)", out)
    assert len(fits) == job_counts(out)["fit_dip"] + job_counts(out)["learning_curve"] > 0
    for resources in fits:
        mem, runtime = re.search(r"\bmem_mb=(\d+)", resources), re.search(r"\bruntime=(\d+)", resources)
        assert mem and runtime and int(runtime.group(1)) == 7, resources
    plan = build_plan(workflow_config(TEST_CONFIG, work / "auto.yaml"))
    planned = sorted(j.resources["mem_mb"] for j in plan.by_rule("fit_dip") + plan.by_rule("learning_curve"))
    assert sorted(int(re.search(r"\bmem_mb=(\d+)", r).group(1)) for r in fits) == planned  # the model's, per job
