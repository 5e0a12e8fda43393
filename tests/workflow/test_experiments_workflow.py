"""The extra experiments in the workflow: the plan (no Snakemake), and workflow/rules/experiments.smk wired into a
copy of the workflow exactly as the integration snippets say (include line + schema key), dry-run, linted, and run
end to end on tiny crops of the reference repository's files served from the benchmark mirror (slow)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dip.errors import DipInputError
from dip.pipeline.plan import build_plan
from tests.helpers import REPO, exe

SMALL_NET = dict(channels_down=[8, 8, 8, 8], channels_up=[8, 8, 8, 8], channels_skip=[4] * 4, kernel_down=3,
                 kernel_up=3, upsample="nearest", downsample="avg", pad="zero")

# Every experiment on a tiny crop with a handful of steps (the e2e test's budget).
TINY_EXPERIMENTS = {
    "device": "cpu",
    "jpeg": {"crop": 64, "steps": [4, 9], "dip": {"width": 8, "settings": {"log_every": 5}}},
    "inpaint_text": {"crop": 64, "dip": {"width": 8, "settings": {"iterations": 6, "log_every": 3}}},
    "inpaint_hole": {"crop": 64, "dip": {"width": 8, "settings": {"iterations": 6, "log_every": 3}}},
    "architectures": {"crop": 128, "names": ["depth2", "depth6", "unet", "resnet"], "width": 8, "pad": "zero",
                      "settings": {"iterations": 3, "log_every": 1}},
    "flash": {"crop": 64, "dip": {"width": 8, "settings": {"iterations": 4, "log_every": 2}},
              "bilateral": {"radius": 2}},
    "sr_prior": {"crop": 64, "iterations": 10, "dip": {"width": 8, "settings": {"iterations": 4, "log_every": 2}}},
    "preimage": {"small_cnn": True, "size": 64, "layer": "conv2",
                 "settings": {"iterations": 6, "log_every": 3, "lr": 0.01, "net_kwargs": SMALL_NET}},
    "early_stopping": {"window": 4, "patience": 4, "check_every": 2,
                       "experiments": [{"dataset": "photos", "task": "denoise"}]},
}


# --- the plan ------------------------------------------------------------------------------------------------------


def test_empty_section_plans_nothing():
    plan = build_plan(None, "results", "resources")
    assert plan.names == [] and plan.data_files() == [] and plan.targets([], lambda d: []) == []


def test_plan_lists_inputs_outputs_and_targets():
    plan = build_plan(TINY_EXPERIMENTS, "res/", "rsc")
    assert plan.names == ["jpeg", "inpaint_text", "inpaint_hole", "architectures", "flash", "sr_prior", "preimage"]
    assert plan.specs["jpeg"]["device"] == "cpu"  # the section's device reaches every experiment
    assert plan.inputs("inpaint_text") == {
        "kate": "rsc/DmitryUlyanov/deep-image-prior/master/data/inpainting/kate.png",
        "kate_mask": "rsc/DmitryUlyanov/deep-image-prior/master/data/inpainting/kate_mask.png",
    }
    assert plan.outputs("jpeg") == ["res/experiments/jpeg/input.png", "res/experiments/jpeg/step4.png",
                                    "res/experiments/jpeg/step9.png"]
    assert len(plan.data_files()) == 11
    exps = [{"dataset": "photos", "task": "denoise", "levels": [25], "seeds": [0, 1]},
            {"dataset": "photos", "task": "sr", "levels": [4]}]
    keys = plan.es_keys(exps, lambda d: ["a", "b"])
    assert keys == [("photos", "denoise", "sigma25", i, s) for i in "ab" for s in (0, 1)]
    targets = plan.targets(exps, lambda d: ["a", "b"])
    assert "res/scores/extra/photos/denoise_sigma25_es.csv" in targets
    assert "res/figures/experiments/architectures.png" in targets
    assert "res/tables/experiments/early_stopping.md" in targets


def test_plan_defaults_are_the_papers_and_preimage_needs_weights():
    plan = build_plan({"jpeg": {}, "preimage": {}, "architectures": {}}, "r", "s")
    assert plan.specs["jpeg"]["steps"] == [2399, 49999] and plan.specs["jpeg"]["crop"] is None
    assert plan.specs["architectures"]["names"][:5] == ["depth2", "depth3", "depth4", "depth5", "depth6"]
    assert "preimage" not in plan.names and "AlexNet" in plan.skipped["preimage"]
    assert "preimage" in build_plan({"preimage": {"weights": "alexnet.pth"}}, "r", "s").names


@pytest.mark.parametrize("section, message", [
    ({"jpg": {}}, "unknown experiment"),
    ({"architectures": {"names": ["vgg"]}}, "unknown"),
    ({"jpeg": {"steps": []}}, "at least one step"),
    ({"preimage": {"weights": "x", "images": ["lena"]}}, "unknown image"),
])
def test_bad_sections_are_refused(section, message):
    with pytest.raises(DipInputError, match=message):
        build_plan(section, "r", "s")


# --- the rules, integrated into a copy of the workflow ---------------------------------------------------------------

INCLUDE = 'include: "workflow/rules/experiments.smk"\n'
SCHEMA_ENTRY = (
    "  paper_experiments:\n"
    "    description: \"the paper's other experiments (dip.pipeline.plan); absent or null = none\"\n"
    "    type: [object, \"null\"]\n"
)


def integrated_copy(dest: Path) -> Path:
    """Snakefile, workflow/ and config/ copied to ``dest`` with the integration snippets applied (if not yet)."""
    shutil.copy(REPO / "Snakefile", dest / "Snakefile")
    shutil.copytree(REPO / "workflow", dest / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "config", dest / "config")
    snakefile = (dest / "Snakefile").read_text()
    if "experiments.smk" not in snakefile:
        anchor = 'include: "workflow/rules/common.smk"\n'
        assert anchor in snakefile
        (dest / "Snakefile").write_text(snakefile.replace(anchor, anchor + INCLUDE))
    schema_path = dest / "workflow/schemas/config.schema.yaml"
    schema = schema_path.read_text()
    if "paper_experiments" not in schema:
        assert "\nproperties:\n" in schema
        schema_path.write_text(schema.replace("\nproperties:\n", "\nproperties:\n" + SCHEMA_ENTRY, 1))
    return dest


def run_snakemake(workdir: Path, *args: str, timeout: int = 300, check: bool = True):
    import os

    cmd = [sys.executable, "-m", "snakemake", "-s", str(workdir / "Snakefile"), "--workflow-profile", "none", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def tiny_config(workdir: Path, base_url: str = "https://raw.githubusercontent.com/") -> Path:
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    config["download_base_url"] = base_url
    config["paper_experiments"] = TINY_EXPERIMENTS
    path = workdir / "config_experiments.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_experiments_smk_is_snakefmt_clean():
    proc = subprocess.run([exe("snakefmt"), "--check", "workflow/rules/experiments.smk"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_integrated_dry_run_and_lint(tmp_path):
    work = integrated_copy(tmp_path)
    cfg = tiny_config(work)
    proc = run_snakemake(work, "experiments", "-n", "--configfile", str(cfg))
    out = proc.stdout + proc.stderr
    for rule in ("download_experiment_data", "experiment_jpeg", "experiment_jpeg_report", "experiment_architecture",
                 "experiment_architectures", "experiment_preimage", "score_es_photos_denoise_sigma25",
                 "early_stop_table"):
        assert rule in out, rule
    # The default config (no paper_experiments) keeps its job graph and stays lint-clean with the file included.
    lint = run_snakemake(work, "--lint", check=False)
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    lint_xp = run_snakemake(work, "--lint", "--configfile", str(cfg), check=False)
    assert lint_xp.returncode == 0, lint_xp.stdout + lint_xp.stderr


@pytest.mark.slow
def test_every_experiment_end_to_end(tmp_path):
    from tests.helpers import MIRROR, serve

    if not MIRROR.is_dir():
        pytest.skip(f"benchmark mirror not found at {MIRROR}")
    work = integrated_copy(tmp_path)
    with serve(MIRROR) as url:
        cfg = tiny_config(work, url)
        run_snakemake(work, "experiments", "--cores", "2", "--configfile", str(cfg), timeout=1800)
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
    assert (res / "tables/experiments/early_stopping.md").read_text().count("photos/denoise") == 4
