"""The reproduction as its users run it, from what a fresh clone holds (the committed results, every file dated as
the checkout made it, none of the git-ignored inputs/): re-render without refitting, one table, a subset, extend a
finished run; and a fit re-runs for its spec and inputs, not for file dates (dip.pipeline.pins)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, job_counts, snakemake

PAPER_CPU = ("--configfile", "config/paper.yaml", "config/paper-cpu.yaml")
# what a run from the repository root loads by itself (its rerun triggers: README, "What re-runs a fit")
PROFILE = ("--workflow-profile", str(REPO / "profiles/default"))
FITS = ("fit_dip", "fit_dip_pack", "baseline")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """The committed config/ and results/ of HEAD, as a fresh clone has them (today's dates, no inputs/)."""
    work = tmp_path_factory.mktemp("fresh")
    archive = subprocess.run(["git", "archive", "HEAD", "config", "results"], cwd=REPO, capture_output=True,
                             check=True).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(work, filter="data")
    return work


def counts(work: Path, *args: str) -> dict[str, int]:
    out = snakemake(work, "-n", "--cores", "2", *args).stdout
    return {} if "Nothing to be done" in out else job_counts(out)


def test_rerender_of_the_committed_reproduction_plans_no_fit(fresh):
    assert not any(r in counts(fresh, *PAPER_CPU) for r in FITS)
    # README "Re-render everything": the tables and figures again, from the committed scores and records
    forced = counts(fresh, *PAPER_CPU, "--forcerun", "table", "figure_psnr", "figure_grid", "figure_psnr_curves",
                    "early_stop_table", "released_check", "metrics")  # fmt: skip
    assert forced["table"] >= 2 and forced["figure_grid"] >= 2
    assert forced["early_stop_table"] == 1 and forced["released_check"] == 1 and forced["metrics"] == 1
    assert not any(r in forced for r in FITS), forced


def test_rerendered_tables_are_byte_identical(fresh, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(fresh, work)
    tables = sorted(p.relative_to(work).as_posix() for p in (work / "results/paper/tables").glob("*/*.md")
                    if p.parent.name != "experiments")  # fmt: skip
    before = {t: (work / t).read_bytes() for t in tables}
    snakemake(work, "--cores", "2", *tables, *PAPER_CPU, "--forcerun", "table", timeout=600)
    assert {t: (work / t).read_bytes() for t in tables} == before


def test_one_table_plans_only_its_own_fits(fresh):
    # a results folder of its own (nothing made yet): Set5 x4's five fits, nothing of another table
    got = counts(fresh, "results/mine/tables/set5/sr_x4.md", "--configfile", "config/paper.yaml", "--config",
                 "results_dir=results/mine")  # fmt: skip
    assert got["fit_dip"] == 5 and got["table"] == 1
    assert not any(r.startswith(("download_set14", "download_color9", "download_gray11", "score_es_color9")) for r in got)
    # the committed table, with the settings and the selection its fits were made with: nothing to do
    assert not any(r in counts(fresh, "results/paper/tables/set5/sr_x4.md", *PAPER_CPU) for r in FITS)


@pytest.mark.parametrize(
    "only,fits",
    # (images too large to be fitted on CPU, so that the counts hold as the committed results grow)
    [("set5/sr/x4/baby/seed0", 1), ("set5/sr/x4/baby", 3), ("[set5/sr/x4/baby/seed0, set14/sr/x4/zebra]", 2)],
)
def test_subset_recipes(fresh, only, fits):
    # README "A part of the reproduction": --config only=...; what is committed is not fitted again
    got = counts(fresh, *PAPER_CPU, "--config", f"only={only}")
    assert got.get("fit_dip", 0) == fits, got
    assert "learning_curve" not in got and not any(r.startswith("experiment_") for r in got)


@pytest.mark.parametrize(
    "only,message",
    [("set15", "no experiment of the config runs dataset 'set15'"), ("set5/sr/x3", "runs no level 'x3'"),
     ("set5/sr/x4/zebra", "no image 'zebra'")],
)  # fmt: skip
def test_subset_mistake_is_one_line(fresh, only, message):
    proc = snakemake(fresh, "-n", "--cores", "1", "--configfile", "config/paper.yaml", "--config", f"only={only}",
                     check=False)  # fmt: skip
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stdout + proc.stderr


def test_switching_a_dataset_off_takes_its_experiments_along(fresh):
    layer = fresh / "no-set14.yaml"
    layer.write_text("datasets: {set14: null}\n")
    got = counts(fresh, "--configfile", "config/paper.yaml", str(layer))
    assert got["fit_dip"] == 67 - 2 * 14  # Set14's 14 images at x4 and x8 gone
    assert not any("set14" in r for r in got)


# --- a finished run on tiny inputs: what re-runs a fit -----------------------------------------------------------


TINY = {
    "results_dir": "results",
    "datasets": {"photos": {"source": "embedded", "images": ["astronaut"], "size": 64}},
    "experiments": [
        {"dataset": "photos", "task": "denoise", "levels": [25], "seeds": [0], "baselines": [],
         "dip": {"preset": "denoise", "width": 4, "settings": {"iterations": 4, "log_every": 2, "device": "cpu"}}},
    ],  # fmt: skip
    "learning_curves": None,
    "figures": {"grid_max_images": 1},
    "fit_resources": {"threads": 1, "mem_mb": 1000, "runtime": 10, "gpu": 0},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("finished")
    (work / "config").symlink_to(REPO / "config", target_is_directory=True)
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    snakemake(work, "--cores", "1", "--configfile", "tiny.yaml", timeout=600)
    return work


def layer(work: Path, name: str, **changes) -> str:
    config = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        if key == "images":
            config["datasets"]["photos"]["images"] = value
        elif key == "iterations":
            config["experiments"][0]["dip"]["settings"]["iterations"] = value
    (work / name).write_text(yaml.safe_dump(config))
    return name


@pytest.mark.slow(seconds=20)
def test_touched_and_remade_inputs_rerun_nothing(finished):
    for path in (finished / "results").rglob("*"):
        if path.is_file() and "inputs" in path.parts:
            os.utime(path)  # newer than every fit
    assert not any(r in counts(finished, "--configfile", "tiny.yaml", *PROFILE) for r in FITS)
    shutil.rmtree(finished / "results/inputs")  # a fresh clone has none
    assert not any(r in counts(finished, "--configfile", "tiny.yaml", *PROFILE) for r in FITS)


@pytest.mark.slow(seconds=5)
def test_adding_an_image_fits_only_that_image(finished):
    more = layer(finished, "more.yaml", images=["astronaut", "coffee"])
    out = snakemake(finished, "-n", "--cores", "1", "--configfile", more, *PROFILE).stdout
    assert job_counts(out)["fit_dip"] == 1 and "image=coffee" in out


@pytest.mark.slow(seconds=5)
def test_a_changed_setting_reruns_its_fits_also_without_snakemake_records(finished, tmp_path):
    work = tmp_path / "clone"
    shutil.copytree(finished, work, symlinks=True, ignore=shutil.ignore_patterns(".snakemake"))
    out = snakemake(work, "-n", "--cores", "1", "--configfile", layer(work, "longer.yaml", iterations=6)).stdout
    assert job_counts(out)["fit_dip"] == 1
    assert "changed_specs/fit_dip/" in out  # the reason the dry run gives: the spec marker, newer than the fit


# --- deployed elsewhere -------------------------------------------------------------------------------------------


def test_dot_test_dry_run():
    # the Snakemake catalog's convention: the test config and data under .test/, run with --directory .test
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--directory", ".test",
                           "--workflow-profile", "none"], cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert job_counts(proc.stdout)["fit_dip"] == 8


@pytest.mark.slow(seconds=15)
def test_deployed_as_a_module_runs(tmp_path):
    # what `snakedeploy deploy-workflow` writes, with the workflow's source as a local folder
    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_text(yaml.safe_dump(TINY))
    (tmp_path / "Snakefile").write_text(
        'configfile: "config/config.yaml"\n\n\n'
        f'module dip_workflow:\n    snakefile:\n        "{REPO}/workflow/Snakefile"\n    config:\n        config\n\n\n'
        "use rule * from dip_workflow\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # dip comes from the workflow's own source
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "--workflow-profile", "none"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = tmp_path / "results/tables/photos/denoise_sigma25.md"
    assert table.is_file() and "DIP" in table.read_text()
