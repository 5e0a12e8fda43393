"""The workflow's planner (dip.pipeline.plan), without Snakemake's DAG and without torch: the jobs of every shipped
config (the numbers are those of `snakemake -n`), looking jobs up, what the config turns off, the paper's other
experiments' files and targets, the jobs' resources."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dip.data.manifest import Manifest
from dip.errors import DipInputError
from dip.pipeline.plan import AUTO_MEM_MB_DEFAULT, build_plan, runs_fits
from tests.helpers import REPO, TEST_CONFIG, TINY_EXPERIMENTS, plan_of, workflow_config

pytestmark = pytest.mark.usefixtures("in_repo")  # the configs name the manifest relative to it


# --- torch-free --------------------------------------------------------------------------------------------------


def test_planning_imports_no_torch():
    # What workflow/rules/common.smk imports and does, in a fresh interpreter: plan the paper config (downloads,
    # packs, experiments) and look the jobs up; torch must stay out (the DAG is built in seconds, on any machine).
    code = (
        "import sys, pandas, snakemake.utils, dip.tasks\n"
        "from dip.pipeline.plan import build_plan\n"
        "from tests.helpers import workflow_config\n"
        "plan = build_plan(workflow_config('config/paper.yaml', pack_fits=4))\n"
        "assert plan.counts()['fit_dip_pack'] == 11\n"
        "print('torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# --- the jobs of the shipped configs (as `snakemake -n` counts them) ---------------------------------------------


def test_default_config_jobs():
    counts = plan_of().counts()
    assert counts == {
        "degrade_denoise": 3,
        "degrade_sr": 3,
        "degrade_inpaint": 3,
        "fit_dip": 9,
        "baseline": 15,
        "score": 3,
        "metrics": 1,
        "table": 3,
        "figure_grid": 3,
        "figure_psnr": 3,
        "figure_psnr_curves": 1,
        "learning_curve": 4,
        "figure_learning_curves": 1,
        "all": 1,
    }
    assert sum(counts.values()) == 53


def test_test_config_jobs():
    counts = plan_of(TEST_CONFIG).counts()
    assert sum(counts.values()) == 42
    assert counts["fit_dip"] == 2 * (2 + 1 + 1) and counts["baseline"] == 10 and counts["learning_curve"] == 2
    packed = plan_of(TEST_CONFIG, pack_fits=4).counts()
    assert "fit_dip" not in packed and packed["fit_dip_pack"] == 3 and packed["unpack_fit"] == 8


def test_paper_config_jobs():
    plan = plan_of("config/paper.yaml")
    counts = plan.counts()
    assert sum(counts.values()) == 377
    assert counts["fit_dip"] == (5 + 14) * 2 + 9 * 2 + 11 == 67
    assert counts["degrade_sr"] == 38 and counts["degrade_denoise"] == 18 and counts["degrade_inpaint"] == 11
    assert counts["baseline"] == 161 and counts["score"] == 7 and counts["table"] == 7
    assert counts["score_released"] == 7 and counts["released_check"] == 1
    assert sorted(r for r in counts if r.startswith("download_")) == [
        "download_color9_sigma25",
        "download_color9_sigma50",
        "download_experiment_data",
        "download_gray11_missing50",
        "download_set14_x4",
        "download_set14_x8",
        "download_set5_x4",
        "download_set5_x8",
    ]
    assert counts["experiment_architecture"] == 9 and "experiment_preimage" not in counts  # no AlexNet weights
    assert sum(n for r, n in counts.items() if r.startswith("score_es_")) == 7 and counts["early_stop_table"] == 1
    # every fit records ES-WMV: its _es.png is one of its outputs, and its params say so
    fit = plan.by_rule("fit_dip")[0]
    assert fit.output["es"].endswith("_seed0_es.png") and fit.params["spec"]["early_stopping"]["stop"] is False
    assert fit.resources["gpu"] == 1
    assert sum(plan.counts("experiments").values()) == 171
    released = plan.counts("released")
    assert sum(released.values()) == 16 and "fit_dip" not in released and released["score_released"] == 7


def test_paper_config_packs_fits_of_one_shape():
    plan = plan_of("config/paper.yaml", pack_fits=4)
    counts = plan.counts()
    assert sum(counts.values()) == 388
    assert counts["fit_dip"] == 28 and counts["fit_dip_pack"] == 11 and counts["unpack_fit"] == 39
    packs = {job.wildcards["pack"]: job for job in plan.by_rule("fit_dip_pack") if job.wildcards["level"] == "sigma25"}
    # colour sigma 25: four 512x512 and four 768x512 images -> 2 packs + 1 lone fit; Set5's sizes all differ
    assert len(packs) == 2 and all(len(job.params["spec"]["members"]) == 4 for job in packs.values())
    assert not any(job.wildcards["dataset"] == "set5" for job in plan.by_rule("fit_dip_pack"))
    # a pack asks for what its fits would ask for one after another, and one GPU
    assert packs["pack0"].resources == {"threads": 4, "mem_mb": 4 * 16000, "runtime": 4 * 240, "gpu": 1}
    # fit_dip still answers for a packed fit (Snakemake asks every rule that could make a file); its pack folder
    member = {"dataset": "color9", "task": "denoise", "level": "sigma25", "seed": "0"}
    member["image"] = packs["pack0"].params["spec"]["members"][0]["image"]
    assert plan.get("fit_dip", member).params["spec"]["seed"] == 0
    assert plan.pack_folder(member).endswith("color9/denoise/sigma25/dip_packs/pack0")
    lone = plan.by_rule("fit_dip")[0].wildcards
    assert plan.pack_folder(lone).endswith("/dip_packs/none")


def test_paper_cpu_layers_on_paper():
    # learning_curves: null and the paper's other experiments set to null in the layered config turn them off
    from tests.helpers import paper_cpu_fits

    plan = plan_of("config/paper.yaml", "config/paper-cpu.yaml")
    counts = plan.counts()
    w = [j.wildcards for j in plan.by_rule("fit_dip")]
    assert sorted((x["dataset"], x["level"], x["image"], int(x["seed"])) for x in w) == paper_cpu_fits()
    assert ("set5", "x4", "butterfly", 0) in paper_cpu_fits() and ("color9", "sigma25", "hill", 0) in paper_cpu_fits()
    assert "learning_curve" not in counts and "figure_learning_curves" not in counts
    assert not any(rule.startswith("experiment") for rule in counts) and plan.experiment_names == []
    # the released outputs of the levels the slice fits, no other
    assert counts["score_released"] == len({(d, lv) for d, lv, _, _ in paper_cpu_fits()})


def test_experiments_on_the_tiny_config(tmp_path):
    from tests.helpers import tiny_experiments_config

    plan = plan_of(TEST_CONFIG, tiny_experiments_config(tmp_path))
    assert plan.experiment_names == [
        "jpeg",
        "inpaint_text",
        "inpaint_hole",
        "architectures",
        "flash",
        "sr_prior",
        "preimage",
    ]
    assert sum(plan.counts("experiments").values()) == 27 and sum(plan.counts().values()) == 63
    assert plan.counts("experiments")["experiment_architecture"] == 4
    assert plan.get("score_es_photos_denoise_sigma25").params["runs"] == [
        (image, seed) for image in ("astronaut", "coffee") for seed in (0, 1)
    ]


def test_job_lookup_by_wildcards():
    plan = plan_of(TEST_CONFIG)
    wc = {"dataset": "photos", "task": "sr", "level": "x4", "image": "coffee", "seed": "0"}
    fit = plan.get("fit_dip", wc)
    assert fit.input == {
        "observation": "results/inputs/photos/sr/x4/coffee/observation.png",
        "target": "results/inputs/photos/sr/x4/coffee/hr.png",
    }
    assert fit.params["spec"] == {
        "task": "sr",
        "level": 4,
        "preset": "sr4",
        "width": 8,
        "seed": 0,
        "settings": {"iterations": 20, "log_every": 5, "device": "cpu"},
    }
    assert plan.get("degrade_sr", {"dataset": "photos", "level": "x4", "image": "coffee"}).input == {}
    with pytest.raises(DipInputError, match="plans no fit_dip job with .*seed=7"):
        plan.get("fit_dip", {**wc, "seed": "7"})


def test_jobs_that_fit_are_known_by_their_rule(monkeypatch):
    # The shims turn progress lines on by rule name (a job does not rebuild the plan): the rules planned with fit or
    # baseline resources, in the paper config with packs and every experiment.
    monkeypatch.chdir(REPO)
    plan = build_plan(workflow_config("config/paper.yaml", pack_fits=4))
    rules = {job.rule: bool(job.resources) for job in plan.jobs()}
    assert {"fit_dip_pack", "experiment_jpeg", "experiment_architecture", "learning_curve", "baseline"} <= set(rules)
    assert {rule: runs_fits(rule) for rule in rules} == rules


# --- what the config reads and turns off --------------------------------------------------------------------------


def test_manifest_is_read_once_and_only_when_needed(monkeypatch):
    reads = []
    original = Manifest.read.__func__
    monkeypatch.setattr(Manifest, "read", classmethod(lambda cls, path: reads.append(path) or original(cls, path)))
    assert plan_of().manifest is None and reads == []  # the default config downloads nothing
    plan = plan_of("config/paper.yaml", pack_fits=4)
    assert reads == ["config/manifest/benchmarks.tsv"]
    assert plan.manifest.sizes["DmitryUlyanov/deep-image-prior/master/data/denoising/F16_GT.png"] == (512, 512, 3)


def test_null_turns_a_layered_entry_off():
    plan = plan_of(learning_curves=None, released=None, paper_experiments={"jpeg": {}, "early_stopping": None})
    assert plan.learning is None and plan.released == {} and plan.experiment_names == ["jpeg"]
    assert plan.early_stopping is None and "learning_curve" not in plan.counts()
    paper = plan_of(
        "config/paper.yaml",
        released={"set14": None, "gray11": None},
        datasets={"gray11": None},
        experiments=[{"dataset": "set5", "task": "sr", "levels": [4]}],
    )
    assert list(paper.released) == ["set5", "color9"] and "gray11" not in paper.dataset_names


# --- the paper's other experiments --------------------------------------------------------------------------------


def test_experiment_inputs_outputs_and_targets():
    plan = plan_of(TEST_CONFIG, paper_experiments=TINY_EXPERIMENTS, results_dir="res/", resources_dir="rsc")
    assert plan.experiment_spec("jpeg")["device"] == "cpu"  # the section's device reaches every experiment
    assert plan.experiment_inputs("inpaint_text") == {
        "kate": "rsc/DmitryUlyanov/deep-image-prior/master/data/inpainting/kate.png",
        "kate_mask": "rsc/DmitryUlyanov/deep-image-prior/master/data/inpainting/kate_mask.png",
    }
    assert plan.experiment_outputs("jpeg") == [
        "res/experiments/jpeg/input.png",
        "res/experiments/jpeg/step4.png",
        "res/experiments/jpeg/step9.png",
    ]
    assert len(plan.experiment_data) == 11
    assert plan.es_keys == [("photos", "denoise", "sigma25", i, s) for i in ("astronaut", "coffee") for s in (0, 1)]
    targets = plan.experiment_targets()
    assert "res/scores/extra/photos/denoise_sigma25_es.csv" in targets
    assert "res/figures/experiments/architectures.png" in targets
    # the early-stopping table shows the tables' DIP rows: the default target's, with the scores it needs
    assert "res/tables/experiments/early_stopping.md" not in targets
    assert "res/tables/experiments/early_stopping.md" in plan.final_targets()


# --- resources -----------------------------------------------------------------------------------------------------


def test_auto_mem_mb_per_fit_and_summed_for_a_pack(monkeypatch):
    monkeypatch.chdir(REPO)
    plan = build_plan(workflow_config("config/paper.yaml", pack_fits=4, fit_resources={"mem_mb": "auto"}))
    # colour sigma 25: 512x512 and 768x512 images; the bigger image asks for more
    fits = [j for j in plan.by_rule("fit_dip") if j.wildcards["level"] == "sigma25"]
    packs = [j for j in plan.by_rule("fit_dip_pack") if j.wildcards["level"] == "sigma25"]
    assert packs
    per_size = {}
    for pack in packs:
        members = pack.params["spec"]["members"]
        fit_of = {k: v for k, v in pack.wildcards.items() if k != "pack"}
        mems = [plan.get("fit_dip", fit_of | {"image": m["image"], "seed": str(m["seed"])}).resources["mem_mb"]
                for m in members]  # fmt: skip
        assert pack.resources["mem_mb"] == sum(mems) and len(set(mems)) == 1
        size = plan.source_size(pack.wildcards["dataset"], "denoise", "sigma25", members[0]["image"])
        per_size[size[0] * size[1]] = mems[0]
    assert len(per_size) == 2 and per_size[768 * 512] > per_size[512 * 512]
    assert all(j.resources["mem_mb"] != AUTO_MEM_MB_DEFAULT for j in fits)
    # jobs without an image (the paper's other experiments) ask for the stated default, as FIT_RES does
    assert plan.fit_resources["mem_mb"] == AUTO_MEM_MB_DEFAULT


def test_auto_mem_mb_for_embedded_photos_and_learning_curves(monkeypatch):
    monkeypatch.chdir(REPO)
    small = build_plan(workflow_config(fit_resources={"mem_mb": "auto"}))
    big = build_plan(workflow_config(fit_resources={"mem_mb": "auto"}, datasets={"photos": {"size": 256}}))
    for rule in ("fit_dip", "learning_curve"):
        a, b = small.by_rule(rule)[0], big.by_rule(rule)[0]
        assert a.resources["mem_mb"] < b.resources["mem_mb"], rule
    # an integer mem_mb stays what every fit job asks for
    plan = build_plan(workflow_config())
    assert {j.resources["mem_mb"] for j in plan.by_rule("fit_dip")} == {plan.fit_resources["mem_mb"]}


def test_a_fit_is_planned_with_the_degradation_its_inputs_are_made_by():
    # issue #28 item 1: dip.pipeline.pins compares it with the fit's record before the inputs are re-made
    def made_from(**overrides):
        plan = plan_of(TEST_CONFIG, **overrides)
        fit = plan.by_rule("fit_dip")[0]
        return fit, fit.made_from[fit.wildcards["image"]]

    fit, made = made_from()
    degrade = plan_of(TEST_CONFIG).get(f"degrade_{fit.wildcards['task']}", {k: fit.wildcards[k] for k in (
        "dataset", "level", "image")})  # fmt: skip
    assert made == {**degrade.params["spec"], "gt_sha256": None}  # an embedded photo: its name and size define it
    assert "made_from" not in fit.to_json()  # not in the params Snakemake records: a working copy sees no change
    assert made_from(degrade_seed=7)[1]["seed"] == 7
    dataset = fit.wildcards["dataset"]
    datasets = workflow_config(TEST_CONFIG)["datasets"]
    assert made_from(datasets={**datasets, dataset: {**datasets[dataset], "size": 96}})[1]["size"] == 96
    bench = plan_of("config/paper.yaml")
    fit = bench.by_rule("fit_dip")[0]
    assert len(fit.made_from[fit.wildcards["image"]]["gt_sha256"]) == 64  # a benchmark's: the manifest's sha256
